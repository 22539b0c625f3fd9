"""Live: the phone status query (self-service 2, then 3) on a real FreeSWITCH, skipped unless HOTLINE_TEST_ESL
is set: the 8-digit number, 1 to confirm the read-back, and the ticket's query PIN when the caller's phone is
not the ticket's (checked against its keyed hash, caseflow.pins).

Callers type ahead as people do: the 1 goes in while the number is read back (the read-back is the start of the
confirm question's play_and_get_digits prompt, a file_string, so the switch takes the key and stops it). A
loopback caller walks each path (right PIN, own phone, wrong PIN); a SIP caller on the carrier's trunk, sending
no RTP but its digits as RFC 2833 when the switch cues it with a SIP INFO (tests/live/sipphone.py), walks
the right-PIN path through the whole product.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from caseflow import services as cs
from core.db import database
from tests.live.product import AppLeg, in_thread, wait_until
from tests.live.sipphone import CarrierCaller, Key
# The carrier's fixtures and helpers (test_carrier_live.py walks its menus the same way)
from tests.live.test_carrier_live import (  # noqa: F401 - fixtures
    CarrierLeg, _finish, _number, carrier_port, carrier_route, live_product)
from tests.live.test_ivr_live import live_ivr  # noqa: F401 - fixture

pytestmark = pytest.mark.live

TICKET_PHONE = "13800138000"


def _ticket():
    """A complaint from TICKET_PHONE; its plain PIN is known only to this creation's caller."""
    ticket = cs.create_ticket("live status query", type="complaint", channel="phone", citizen_phone=TICKET_PHONE)
    assert ticket.plain_pin and "$" in type(ticket).get_by_id(ticket.id).query_pin  # stored as its keyed hash
    return ticket


def _read_back(leg):
    """The confirm question, once the switch starts playing it: its PLAYBACK_START, whose path is the whole
    file_string (the read-back, the digits, then the question)."""
    leg.wait_menu("query_you_entered")
    started = leg.wait(lambda ev: ev.get("Event-Name") == "PLAYBACK_START"
                       and "/query_you_entered.wav" in ev.get("Playback-File-Path", ""), "the read-back to play")
    assert started["Playback-File-Path"].startswith("file_string://")
    return started


def _read_back_stopped(leg) -> str:
    """How the read-back's playback ended: "break" when a key stopped it, "done" when it played out."""
    stopped = leg.wait(lambda ev: ev.get("Event-Name") == "PLAYBACK_STOP"
                       and "/query_you_entered.wav" in ev.get("Playback-File-Path", ""), "the read-back's end")
    return stopped.get("Playback-Status", "")


def _walk(live_ivr, place_call, esl_events, caller, number, *, early=True):
    """A loopback citizen from ``caller``: 2, 3, the number; 1 during the read-back (``early``) or after it.
    Returns (citizen, IVR call, leg, how the read-back ended)."""
    host, port = live_ivr.address
    citizen = place_call(caller=caller, outbound=f"{host}:{port}")
    wait_until(lambda: live_ivr.calls, 20, "the call to reach the IVR")
    ivr = live_ivr.calls[0]
    leg = AppLeg(esl_events, citizen, caller)
    leg.wait_menu("main_menu")
    citizen.press("2")
    leg.wait_menu("self_menu")
    citizen.press("3")
    leg.wait_menu("query_enter_number")
    citizen.press(number)
    _read_back(leg)
    if early:
        citizen.press("1")
        ended = _read_back_stopped(leg)
    else:
        ended = _read_back_stopped(leg)
        citizen.press("1")
    return citizen, ivr, leg, ended


def _heard(ivr) -> list[str]:
    return [Path(p).stem for p in ivr.session.played]


def _confirmed(ivr) -> bool:
    return ("status_query", "1") in [(t.node, t.keys) for t in ivr.engine.trace if t.what == "confirm"]


def test_status_by_pin_from_another_phone_live(live_ivr, place_call, esl_events):
    """Should take the 1 typed during the read-back on the real switch (the read-back stops), ask a caller
    whose phone is not the ticket's for the PIN and tell the status for the right one."""
    ticket = _ticket()
    citizen, ivr, leg, ended = _walk(live_ivr, place_call, esl_events, "13900139000", ticket.number)
    assert ended == "break"
    leg.wait_menu("query_enter_pin")
    citizen.press(ticket.plain_pin + "#")
    wait_until(lambda: "status_is" in _heard(ivr), 60, "the status")
    assert _confirmed(ivr) and ivr.engine.served == "status"
    assert ticket.plain_pin not in [t.keys for t in ivr.engine.trace]  # the PIN is never traced
    citizen.hangup()


def test_status_by_own_phone_after_the_read_back_live(live_ivr, place_call, esl_events):
    """Should tell the status without a PIN to the ticket's own phone, the caller pressing 1 only once the
    read-back played out (the question still waits for the key)."""
    ticket = _ticket()
    citizen, ivr, leg, ended = _walk(live_ivr, place_call, esl_events, TICKET_PHONE, ticket.number, early=False)
    assert ended == "done"
    wait_until(lambda: "status_is" in _heard(ivr), 60, "the status")
    assert _confirmed(ivr)
    assert not [t for t in ivr.engine.trace if t.what == "pin entered"]
    citizen.hangup()


def test_wrong_pin_is_refused_live(live_ivr, place_call, esl_events):
    """Should tell nothing for a wrong PIN: no match, and the number asked for again."""
    ticket = _ticket()
    wrong = "%06d" % ((int(ticket.plain_pin) + 1) % 1_000_000)
    citizen, ivr, leg, ended = _walk(live_ivr, place_call, esl_events, "13900139000", ticket.number)
    assert ended == "break"
    leg.wait_menu("query_enter_pin")
    citizen.press(wrong + "#")
    again = leg.wait_menu("query_enter_number")
    assert "/query_no_match.wav" in again["Application-Data"]
    assert ("status_query", "no match") in [(t.node, t.what) for t in ivr.engine.trace]
    assert "status_is" not in _heard(ivr) and not ivr.engine.served
    citizen.hangup()


# sipp keys RFC 2833 from its canned recordings (/usr/share/sip-tester/dtmf_2833_<digit>.pcap), each with fixed
# RTP sequence numbers and timestamps: FreeSWITCH (switch_rtp.c) drops an event whose sequence number is not
# above the last event's (unless it fell back by more than 100) or whose timestamp is the last one's, so a
# repeated digit, or e.g. a 2 after a 3, never arrives. A real phone numbers its packets on; here the ticket gets
# a number and a PIN whose digits, after the menus' 2 and 3, arrive in an order the recordings can key
# (the sequence numbers go 1 < 2 < ... < 9 < # < 0; 1 after the number's 4 falls back by more than 100).
KEYABLE_NUMBER = "45678904"
KEYABLE_PIN = "234567"


def _keyable_ticket():
    """A complaint from TICKET_PHONE numbered KEYABLE_NUMBER, its PIN KEYABLE_PIN (stored as its keyed hash)."""
    from caseflow import pins
    from caseflow.models import Ticket

    ticket = _ticket()
    assert not Ticket.select().where(Ticket.number == KEYABLE_NUMBER).exists()
    Ticket.update(number=KEYABLE_NUMBER, query_pin=pins.hash_pin(KEYABLE_PIN, pins.installed().current)).where(
        Ticket.id == ticket.id).execute()
    return Ticket.get_by_id(ticket.id)


def test_carrier_caller_gets_the_status_by_pin(live_product, carrier_route, carrier_port, sipp, esl, esl_events,
                                              tmp_path):
    """Should walk a carrier's caller (sipp, no RTP but RFC 2833 digits, each sent when the switch cues it with
    a SIP INFO) through 2, 3, the number, 1 typed during the read-back (which stops it) and the right PIN to the
    status, through the whole product."""
    with database.connection_context():
        ticket = _keyable_ticket()
    caller_number = _number("1396")
    typed = ["2", "3", *KEYABLE_NUMBER, "1", *KEYABLE_PIN, "#"]
    caller = CarrierCaller(sipp, tmp_path, carrier_port, caller_number, [Key(d, ("rfc2833",)) for d in typed],
                           telephone_event=True)
    try:
        leg = CarrierLeg(esl, esl_events, caller_number)

        def press(digit: str) -> None:
            leg.cue()
            got = leg.wait(lambda ev: ev.get("Event-Name") == "DTMF", f"the caller's {digit}")
            assert (got.get("DTMF-Digit"), got.get("DTMF-Source")) == (digit, "RTP")

        leg.wait_menu("main_menu")
        press("2")
        leg.wait_menu("self_menu")
        press("3")
        leg.wait_menu("query_enter_number")
        for digit in KEYABLE_NUMBER:
            press(digit)
        _read_back(leg)
        press("1")
        assert _read_back_stopped(leg) == "break"
        leg.wait_menu("query_enter_pin")
        for digit in KEYABLE_PIN + "#":
            press(digit)
        leg.wait(lambda ev: ev.get("Event-Name") == "CHANNEL_EXECUTE" and ev.get("Application") == "playback"
                 and ev.get("Application-Data", "").endswith("/status_is.wav"), "the status")
        assert in_thread(esl.api, f"uuid_kill {leg.uuid}").startswith("+OK")
        _finish(caller)
    finally:
        caller.close()
    from ivr.models import IvrTrace

    def traced():
        with database.connection_context():
            return IvrTrace.select().where(IvrTrace.call_uuid == leg.uuid).first()
    wait_until(traced, 20, "the call's IVR trace")
    steps = [(s["node"], s["what"], s["keys"]) for s in traced().steps]
    assert ("status_query", "confirm", "1") in steps and ("status_query", "served: status", "") in steps
    assert ticket.number == KEYABLE_NUMBER and ("status_query", "pin entered", "******") in steps
    assert KEYABLE_PIN not in [keys for _, _, keys in steps]  # the PIN is never traced
