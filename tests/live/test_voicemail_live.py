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
import subprocess
import uuid as uuidlib

import gevent
import pytest

from core.clock import FixedClock
from core.config import load_config
from core.db import database
from core.product import Product

pytestmark = pytest.mark.live


def _in_thread(func, *args):
    return gevent.get_hub().threadpool.apply(func, args)


SCENARIOS = {
    # clock (Asia/Shanghai, a Wednesday), the menu the caller's 1 reaches, the reason in the ticket title
    "closed": (dt.datetime(2026, 11, 25, 23, 0), "after_hours", "非工作时间"),
    "busy": (dt.datetime(2026, 11, 25, 10, 0), "human_menu", "坐席全忙"),
}


@pytest.fixture(params=sorted(SCENARIOS))
def voicemail_product(request, esl_endpoint, db, db_url, tmp_path, rendered_sounds):
    """The whole product on the live switch, its clock stopped at night (centre closed) or in the morning
    with the consult queue overflowing to voicemail after 2 s (nobody logged in: all agents busy)."""
    host, port, password = esl_endpoint
    var = tmp_path / "var"
    var.mkdir()
    var.chmod(0o777)  # FreeSWITCH may run as its own user and writes recordings below
    config = load_config({
        "database_url": db_url, "var_dir": str(var), "sounds_dir": str(rendered_sounds),
        "esl": f"{host}:{port}:{password}", "outbound": "127.0.0.1:0", "http": "127.0.0.1:0",
        "mode": "test", "secret_key": "k" * 40, "load_demo": True,
    })
    moment, menu, reason = SCENARIOS[request.param]
    running = Product(config, clock=FixedClock(moment, tz="Asia/Shanghai")).build()
    if request.param == "busy":
        from acd.models import Queue

        Queue.update(max_wait=2, overflow_kind="voicemail", overflow_target="").where(
            Queue.name == "consult").execute()
    running.start()
    yield running, menu, reason
    running.stop(drain_timeout=10)
    if database.obj is not None and not database.is_closed():
        database.close()


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

    def app_leg(event):
        return event.get("Unique-ID") != citizen.uuid and event.get("Caller-Caller-ID-Number") == caller

    def wait(predicate, what, timeout=60):
        try:
            return _in_thread(esl_events.wait_event, lambda ev: app_leg(ev) and predicate(ev), timeout)
        except Exception as exc:  # noqa: BLE001 - say which step of the call it was
            raise AssertionError(f"waiting for {what}: {exc}") from exc

    def menu(prompt):
        return lambda ev: (ev.get("Event-Name") == "CHANNEL_EXECUTE"
                           and ev.get("Application") == "play_and_get_digits"
                           and f"/{prompt}.wav" in ev.get("Application-Data", ""))

    wait(menu("main_menu"), "the main menu")
    citizen.press("1")
    wait(menu(second_menu), f"the {second_menu} menu")
    citizen.press("1")
    started = wait(lambda ev: ev.get("Event-Name") == "RECORD_START", "the message recording to start")
    call_uuid = started["Unique-ID"]
    voice = tmp_path / "message.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(voice), "synth", "4", "sine", "350"],
                   check=True, timeout=30)
    voice.chmod(0o644)
    citizen.speak(str(voice))
    _in_thread(esl_events.wait_event, lambda ev: ev.get("Event-Name") == "PLAYBACK_STOP"
               and ev.get("Unique-ID") == citizen.uuid, 30)
    citizen.press("#")
    wait(lambda ev: ev.get("Event-Name") == "RECORD_STOP", "the recording to end")

    def filed():
        with database.connection_context():
            return MissedCall.select().where(MissedCall.caller == caller).exists()

    with gevent.Timeout(30, AssertionError("the message was not filed within 30 s")):
        while not filed():
            gevent.sleep(0.1)
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
