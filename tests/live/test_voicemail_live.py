"""Voicemail through the whole product on a real FreeSWITCH (skipped unless HOTLINE_TEST_ESL is set).

The product runs with a fixed clock at night (Asia/Shanghai), so the default IVR tree's time node sends a
caller who asks for a person (1) to the after-hours menu; 1 there leaves a message (node night_message,
kind voicemail, reason closed).  The caller speaks into the real `record`; the message must become a
ticket whose call carries the indexed recording, and the caller must be on the missed-call list.
"""
from __future__ import annotations

import datetime as dt
import subprocess

import gevent
import pytest

from core.clock import FixedClock
from core.config import load_config
from core.db import database
from core.product import Product
from tests.live.test_product_live import rendered_sounds  # noqa: F401 - the module fixture

CALLER = "13955550001"
pytestmark = pytest.mark.live


def _in_thread(func, *args):
    return gevent.get_hub().threadpool.apply(func, args)


@pytest.fixture
def night_product(esl_endpoint, db, db_url, tmp_path, rendered_sounds):  # noqa: F811
    """The whole product on the live switch, its clock stopped at 23:00 on a Wednesday (centre closed)."""
    host, port, password = esl_endpoint
    var = tmp_path / "var"
    var.mkdir()
    var.chmod(0o777)  # FreeSWITCH may run as its own user and writes recordings below
    config = load_config({
        "database_url": db_url, "var_dir": str(var), "sounds_dir": str(rendered_sounds),
        "esl": f"{host}:{port}:{password}", "outbound": "127.0.0.1:0", "http": "127.0.0.1:0",
        "mode": "test", "secret_key": "k" * 40, "load_demo": True,
    })
    clock = FixedClock(dt.datetime(2026, 11, 25, 23, 0), tz="Asia/Shanghai")
    running = Product(config, clock=clock).build()
    running.start()
    yield running
    running.stop(drain_timeout=10)
    if database.obj is not None and not database.is_closed():
        database.close()


def test_after_hours_caller_leaves_a_message_that_becomes_a_ticket(night_product, place_call, esl_events,
                                                                   tmp_path):
    """Should offer the after-hours menu at night, record the caller's message for real, and turn it into a
    voicemail ticket with the caller's number, its call linked to the indexed recording, and the caller on
    the missed-call list for a call-back."""
    from caseflow.models import Ticket, TicketCall
    from recorder.models import MissedCall, Recording

    pool = night_product.parts["pool"]
    assert all(conn.wait_connected(10) for conn in pool.all())
    host, port = night_product.parts["outbound"].address
    citizen = place_call(caller=CALLER, outbound=f"{host}:{port}")

    def app_leg(event):
        return event.get("Unique-ID") != citizen.uuid and event.get("Caller-Caller-ID-Number") == CALLER

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
    wait(menu("after_hours"), "the after-hours menu (the centre is closed at 23:00)")
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
            return MissedCall.select().where(MissedCall.caller == CALLER).exists()

    with gevent.Timeout(30, AssertionError("the message was not filed within 30 s")):
        while not filed():
            gevent.sleep(0.1)
    with database.connection_context():
        missed = MissedCall.get(MissedCall.caller == CALLER)
        assert missed.status == "open" and missed.ticket is not None
        ticket = Ticket.get_by_id(missed.ticket_id)
        assert ticket.citizen_phone == CALLER and "留言" in ticket.title
        assert TicketCall.select().where((TicketCall.ticket == ticket)
                                         & (TicketCall.call_uuid == call_uuid)).exists()
        rec = Recording.get((Recording.call_uuid == call_uuid) & (Recording.kind == "voicemail"))
        assert rec.status == "ok" and rec.duration_ms >= 2000, (rec.status, rec.failure_reason)
    citizen.hangup()
