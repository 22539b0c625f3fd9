"""Voicemail through the whole product on a real FreeSWITCH (skipped unless HOTLINE_TEST_ESL is set).

The product runs with a fixed clock.  At night (Asia/Shanghai) the default IVR tree's time node sends a
caller who asks for a person (1) to the after-hours menu; 1 there leaves a message (node night_message,
kind voicemail, reason closed).  In the morning, 1 then 1 queues the caller for consult, which nobody
answers (no agent logged in) and which overflows to voicemail after 2 s: on_busy -> all_busy ->
leave_message (reason busy).  The caller speaks into the real `record`; the message must become a
ticket whose call carries the indexed recording, and the caller must be on the missed-call list.
"""
from __future__ import annotations

import datetime as dt
import uuid as uuidlib

import pytest

from core.clock import FixedClock
from core.db import database
from tests.live.product import AppLeg, start_product, stop_product, wait_until

pytestmark = pytest.mark.live


SCENARIOS = {
    # clock (Asia/Shanghai, a Wednesday), the menu the caller's 1 reaches, the reason in the ticket title
    "closed": (dt.datetime(2026, 11, 25, 23, 0), "after_hours", "非工作时间"),
    "busy": (dt.datetime(2026, 11, 25, 10, 0), "human_menu", "坐席全忙"),
}


@pytest.fixture(params=sorted(SCENARIOS))
def voicemail_product(request, esl_endpoint, db, db_url, tmp_path, rendered_sounds):
    """The whole product on the live switch, its clock stopped at night (centre closed) or in the morning
    with the consult queue overflowing to voicemail after 2 s (nobody logged in: all agents busy)."""
    moment, menu, reason = SCENARIOS[request.param]

    def overflow_fast(product):
        from acd.models import Queue

        Queue.update(max_wait=2, overflow_kind="voicemail", overflow_target="").where(
            Queue.name == "consult").execute()

    def office_hours(product):
        # The shipped tree answers around the clock (P1 一.1); a centre with office hours closes at night.
        from ivr.edit import edit_settings
        from ivr.tree import load_tree

        trees = product.parts["trees"]
        version = trees.add_version(edit_settings(load_tree(), {"office_hours": "true"}), comment="office hours")
        trees.activate(version.id, "admin")

    running = start_product(esl_endpoint, db_url, tmp_path, rendered_sounds,
                            clock=FixedClock(moment, tz="Asia/Shanghai"),
                            prepare=overflow_fast if request.param == "busy" else office_hours)
    yield running, menu, reason
    stop_product(running)


def test_caller_leaves_a_message_that_becomes_a_ticket(voicemail_product, place_call, esl_events, tmp_path):
    """Should, at night (after-hours menu, 1) or when all agents are busy (consult queue overflowing to
    voicemail), record the caller's message for real and turn it into a voicemail ticket with the caller's
    number and the reason, its call linked to the indexed recording, and the caller on the missed-call
    list for a call-back."""
    from caseflow.models import Ticket, TicketCall
    from recorder.models import MissedCall, Recording

    product, second_menu, reason = voicemail_product
    # a number of its own: the other scenarios may be calling at the same time on another worker
    caller = "1395%07d" % (uuidlib.uuid4().int % 10_000_000)
    pool = product.parts["pool"]
    assert all(conn.wait_connected(10) for conn in pool.all())
    host, port = product.parts["outbound"].address
    citizen = place_call(caller=caller, outbound=f"{host}:{port}")

    leg = AppLeg(esl_events, citizen, caller)
    leg.wait_menu("main_menu")
    citizen.press("1")
    leg.wait_menu(second_menu)
    citizen.press("1")
    started = leg.wait(lambda ev: ev.get("Event-Name") == "RECORD_START", "the message recording to start")
    call_uuid = started["Unique-ID"]
    leg.speak_tone(tmp_path / "message.wav", hz=350)
    citizen.press("#")
    leg.wait(lambda ev: ev.get("Event-Name") == "RECORD_STOP", "the recording to end")

    def filed():
        with database.connection_context():
            return MissedCall.select().where(MissedCall.caller == caller).exists()

    wait_until(filed, 30, "the message to be filed")
    with database.connection_context():
        missed = MissedCall.get(MissedCall.caller == caller)
        assert missed.status == "open" and missed.ticket is not None
        ticket = Ticket.get_by_id(missed.ticket_id)
        assert ticket.citizen_phone == caller and "留言" in ticket.title and reason in ticket.title
        assert TicketCall.select().where((TicketCall.ticket == ticket)
                                         & (TicketCall.call_uuid == call_uuid)).exists()
        rec = Recording.get((Recording.call_uuid == call_uuid) & (Recording.kind == "voicemail"))
        assert rec.status == "ok" and rec.duration_ms >= 2000, (rec.status, rec.failure_reason)
    citizen.hangup()
