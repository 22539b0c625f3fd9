"""Live: citizens calling in over the carrier's trunk, the way a carrier delivers them, through the whole
product (skipped unless HOTLINE_TEST_ESL is set).

The caller is sipp on the external profile (127.0.0.1:5080, dialplan/public.xml), which sends the call to
the switch's global ${hotline_outbound}: a SIP call cannot carry the test's own address, so the
``carrier_route`` fixture points that global at the product's outbound server (``global_setvar``, under the
live-suite lock) and puts it back afterwards.  sipp cannot hear prompts: the test watches the carrier
leg's events and, when the app listens (a menu, a recording), sends the caller a SIP INFO
(``uuid_send_info``; the INVITE says ``X-FS-Support: send_info``) on which the scenario presses its next
key (tests/live/sipphone.py, carrier_scenario).

Callers (issue 17): one that sends no RTP at all (items 1, 2); DTMF as RFC 2833, SIP INFO and in-band tones
in G.711 (item 2); a digit sent every way at once counts once; fax machines on 12345, from the start and
from the middle of a menu (item 8).

Extensions and caller numbers: callers 1395xxxxxxx / 1396xxxxxxx (random), no SIP extension registered.
"""
from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from core.db import database
from tests.live.product import AppLeg, Leg, in_thread, start_product, stop_product, wait_until
from tests.live.sipphone import CarrierCaller, Key

pytestmark = pytest.mark.live


@pytest.fixture
def live_product(esl_endpoint, db, db_url, tmp_path, rendered_sounds):
    running = start_product(esl_endpoint, db_url, tmp_path, rendered_sounds)
    assert all(conn.wait_connected(10) for conn in running.parts["pool"].all())
    yield running
    stop_product(running)


def _set_global(esl, name: str, value: str) -> str:
    before = esl.api(f"global_getvar {name}").strip()
    assert esl.api(f"global_setvar {name}={value}").startswith("+OK")
    return before


@pytest.fixture
def carrier_route(esl, live_product):
    """The switch's global hotline_outbound pointed at the product for this test, restored afterwards."""
    host, port = live_product.parts["outbound"].address
    before = _set_global(esl, "hotline_outbound", f"{host}:{port}")
    yield
    _set_global(esl, "hotline_outbound", before)


@pytest.fixture
def inband_line(esl):
    """The carrier sends digits as tones in the audio (carrier_dtmf_without_2833=inband) for this test."""
    before = _set_global(esl, "carrier_dtmf_without_2833", "inband")
    yield
    _set_global(esl, "carrier_dtmf_without_2833", before)


@pytest.fixture
def carrier_port(esl, sipp) -> int:
    if esl.api("global_getvar external_sip_ip").strip() != "127.0.0.1":
        pytest.skip("the external profile is not on 127.0.0.1 here")
    if shutil.which("sox") is None:
        pytest.skip("sox is not installed")
    return int(esl.api("global_getvar external_sip_port").strip())


def _number(prefix: str) -> str:
    return prefix + "%07d" % random.randrange(10_000_000)


class CarrierLeg(Leg):
    """The sofia/external channel of one carrier caller, as the switch reports it (the app drives it)."""

    def __init__(self, esl, esl_events, caller: str):
        self.esl, self.esl_events, self.caller = esl, esl_events, caller
        self.uuid = ""

    def matches(self, event) -> bool:
        if self.uuid:
            return event.get("Unique-ID") == self.uuid
        if (event.get("Caller-Caller-ID-Number") == self.caller
                and event.get("Channel-Name", "").startswith("sofia/external/")):
            self.uuid = event["Unique-ID"]
            return True
        return False

    def cue(self) -> None:
        """Tell the sipp caller to press its next key (it waits for this INFO)."""
        reply = in_thread(self.esl.api, f"uuid_send_info {self.uuid} cue")
        assert reply.startswith("+OK"), reply

    def answer_menus(self, *prompts: str):
        """At each menu in turn, once it plays, cue the caller's next key; the last menu's event."""
        for prompt in prompts:
            event = self.wait_menu(prompt)
            self.cue()
        return event

    def digits(self) -> list[tuple[str, str]]:
        """(digit, source) of every DTMF the switch took on this leg so far (events already queued)."""
        return [(ev.get("DTMF-Digit"), ev.get("DTMF-Source")) for ev in self.esl_events.events
                if ev.get("Unique-ID") == self.uuid and ev.get("Event-Name") == "DTMF"]


def _finish(caller: CarrierCaller) -> None:
    status, output = in_thread(caller.finished, 60)
    assert status == 0, output


def _leave_complaint(esl, esl_events, sipp, tmp_path, carrier_port, number: str) -> CarrierLeg:
    """A carrier caller sending no RTP (digits by SIP INFO) walks main menu 2, self-service 2, talks, #, 1, and
    hangs up after the ticket's thanks; returns the leg once the complaint's ticket is filed."""
    from caseflow.models import Ticket

    keys = [Key("2", ("info",)), Key("2", ("info",)), Key("#", ("info",), talk_s=4), Key("1", ("info",))]
    caller = CarrierCaller(sipp, tmp_path, carrier_port, number, keys, telephone_event=False)
    try:
        leg = CarrierLeg(esl, esl_events, number)
        leg.answer_menus("main_menu", "self_menu")
        leg.wait(lambda ev: ev.get("Event-Name") == "RECORD_START", "the recording to start")
        leg.cue()
        leg.wait_menu("record_confirm")
        leg.cue()
        leg.wait(lambda ev: ev.get("Event-Name") == "CHANNEL_EXECUTE" and ev.get("Application") == "playback"
                 and ev.get("Application-Data", "").endswith("/ticket_thanks.wav"), "the ticket's thanks")
        _finish(caller)   # after_service times out to goodbye: the app hangs up
    finally:
        caller.close()
    assert [d for d, _ in leg.digits()] == ["2", "2", "#", "1"]

    def filed():
        with database.connection_context():
            return Ticket.select().where(Ticket.citizen_phone == number).count() == 1
    wait_until(filed, 20, "the complaint ticket")
    return leg


def test_caller_sending_no_rtp_leaves_a_complaint_that_becomes_a_ticket(
        live_product, carrier_route, carrier_port, sipp, esl, esl_events, tmp_path):
    """Should bring a carrier caller who sends no RTP at all until the recording (digits by SIP INFO, SDP
    without telephone-event) past the welcome to the main menu, record the complaint (2, 2, talk, #, 1) and
    file it as a ticket with the recording: playback is paced by the switch's clock, not the caller's
    packets."""
    number = _number("1395")
    _leave_complaint(esl, esl_events, sipp, tmp_path, carrier_port, number)
    from caseflow.models import Attachment, Ticket

    with database.connection_context():
        ticket = Ticket.get(Ticket.citizen_phone == number)
        assert ticket.channel == "phone"
        assert Attachment.get(Attachment.ticket == ticket).size > 0
    recorded = list(Path(live_product.config.recordings_dir).rglob("*.wav"))
    assert len(recorded) == 1
    seconds = float(subprocess.run(["soxi", "-D", str(recorded[0])], check=True, timeout=30,
                                   capture_output=True, text=True).stdout)
    assert seconds >= 3.0


def test_carrier_caller_reaches_the_standby_when_the_first_app_closes_the_socket_unread(
        live_product, carrier_port, sipp, esl, esl_events, tmp_path):
    """Should, when the first app address accepts the switch's outbound socket and closes it without a word
    (an app stopping), hand the SIP caller to the standby address (socket_resume before each socket) at once,
    where the caller's complaint is recorded and filed as a ticket."""
    import gevent
    from gevent import socket  # the product's hub runs in this process: accept must not block it

    closing = socket.socket()
    closing.bind(("127.0.0.1", 0))
    closing.listen(16)
    accepted = []

    def close_unread():
        while True:
            conn, _ = closing.accept()
            accepted.append(conn.getpeername())
            conn.close()

    closer = gevent.spawn(close_unread)
    host, port = live_product.parts["outbound"].address
    before = (_set_global(esl, "hotline_outbound", f"127.0.0.1:{closing.getsockname()[1]}"),
              _set_global(esl, "hotline_outbound_standby", f"{host}:{port}"))
    try:
        _leave_complaint(esl, esl_events, sipp, tmp_path, carrier_port, _number("1396"))
    finally:
        _set_global(esl, "hotline_outbound", before[0])
        _set_global(esl, "hotline_outbound_standby", before[1])
        closer.kill()
        closing.close()
    assert accepted, "the first app address was never tried"


def _walk_to_status_query(esl, esl_events, sipp, tmp_path, port, keys, telephone_event) -> CarrierLeg:
    """2 (self-service) at the main menu, 3 (status query) at the self-service menu; the leg once the query
    asks for the ticket number.  A digit counted twice would end the self-service menu with the second
    copy of 2 (the complaint recording) instead."""
    number = _number("1396")
    caller = CarrierCaller(sipp, tmp_path, port, number, keys, telephone_event=telephone_event)
    try:
        leg = CarrierLeg(esl, esl_events, number)
        menu = int(leg.answer_menus("main_menu", "self_menu")["Event-Sequence"])
        nxt = leg.wait(lambda ev: ev.get("Event-Name") == "CHANNEL_EXECUTE" and int(ev["Event-Sequence"]) > menu
                       and ev.get("Application") in ("play_and_get_digits", "playback", "record"), "the next step")
        assert "/query_enter_number.wav" in nxt.get("Application-Data", ""), nxt.get("Application-Data")
        assert in_thread(esl.api, f"uuid_kill {leg.uuid}").startswith("+OK")
        _finish(caller)
    finally:
        caller.close()
    return leg


@pytest.mark.parametrize("kind", ["rfc2833", "info", "inband"])
def test_each_dtmf_kind_walks_the_menu(kind, live_product, carrier_route, carrier_port, sipp, esl, esl_events,
                                       tmp_path, request):
    """Should take a carrier's digits as RFC 2833 (telephone-event offered), as SIP INFO
    (application/dtmf-relay, no telephone-event) and as tones in G.711 audio (no telephone-event, with
    carrier_dtmf_without_2833=inband), each walking 2 then 3 to the status query."""
    if kind == "inband":
        request.getfixturevalue("inband_line")
    keys = [Key("2", (kind,)), Key("3", (kind,))]
    leg = _walk_to_status_query(esl, esl_events, sipp, tmp_path, carrier_port, keys, kind == "rfc2833")
    source = {"rfc2833": "RTP", "info": "ENDPOINT", "inband": "INBAND_AUDIO"}[kind]
    assert leg.digits() == [("2", source), ("3", source)]


@pytest.mark.parametrize("line", ["telephone-event", "info", "inband"])
def test_a_digit_sent_every_way_at_once_counts_once(line, live_product, carrier_route, carrier_port, sipp, esl,
                                                     esl_events, tmp_path, request):
    """Should count a digit the carrier sends as RFC 2833, SIP INFO and tones at once exactly once, whatever
    the line offers: telephone-event (RFC 2833 taken), none with SIP INFO (shipped) or none with in-band."""
    if line == "inband":
        request.getfixturevalue("inband_line")
    every = ("rfc2833", "info", "inband")
    leg = _walk_to_status_query(esl, esl_events, sipp, tmp_path, carrier_port,
                                [Key("2", every), Key("3", every)], line == "telephone-event")
    source = {"telephone-event": "RTP", "info": "ENDPOINT", "inband": "INBAND_AUDIO"}[line]
    assert leg.digits() == [("2", source), ("3", source)]


def _fax_ticket(caller: str):
    from caseflow.models import Ticket

    def filed():
        with database.connection_context():
            return Ticket.select().where(Ticket.citizen_phone == caller, Ticket.channel == "fax").count() == 1
    wait_until(filed, 150, "the fax ticket")
    with database.connection_context():
        return Ticket.get(Ticket.citizen_phone == caller, Ticket.channel == "fax")


def test_fax_machine_calling_12345_becomes_a_fax_ticket(live_product, place_call, esl_events, fax_tiff):
    """Should hear a fax machine (txfax) calling 12345 with the shipped detection, take it to the IVR's fax
    node (rxfax) without any key, and file the fax as a fax ticket."""
    caller = _number("1395")
    host, port = live_product.parts["outbound"].address
    citizen = place_call(caller=caller, outbound=f"{host}:{port}", app=f"txfax({fax_tiff})")
    leg = AppLeg(esl_events, citizen, caller)
    leg.wait(lambda ev: ev.get("Event-Name") == "CHANNEL_EXECUTE" and ev.get("Application") == "rxfax",
             "rxfax", timeout=60)
    ticket = _fax_ticket(caller)
    assert ticket.citizen_phone == caller


def test_fax_tone_in_the_middle_of_a_menu_goes_to_fax(live_product, place_call, esl_events, fax_tiff):
    """Should, when a caller at the main menu starts a fax machine (no key), go to the fax node once the
    menu ends and file the fax as a ticket."""
    caller = _number("1396")
    host, port = live_product.parts["outbound"].address
    citizen = place_call(caller=caller, outbound=f"{host}:{port}")
    leg = AppLeg(esl_events, citizen, caller)
    leg.wait_menu("main_menu")
    citizen.speak(f"txfax::{fax_tiff}")
    leg.wait(lambda ev: ev.get("Event-Name") == "CHANNEL_EXECUTE" and ev.get("Application") == "rxfax",
             "rxfax", timeout=60)
    _fax_ticket(caller)
