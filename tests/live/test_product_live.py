"""The walking skeleton through the whole product (hotline.product.Product, as run.py builds it) on a real
FreeSWITCH (skipped unless HOTLINE_TEST_ESL is set).

The product's inbound connection goes to the live switch, its outbound server listens on 127.0.0.1 port 0
and the test's call carries {hotline_outbound=127.0.0.1:PORT}, so the dialplan's `socket` brings it there.
The test drives the call like a phone would (loopback leg: DTMF and audio) and watches only what the
switch reports (CHANNEL_EXECUTE, RECORD_START, PLAYBACK_STOP), then checks the database and the web UI.
"""
from __future__ import annotations

import subprocess
import uuid as uuidlib
from pathlib import Path

import pytest

from core.db import database
from tests.integration.product.test_walking_skeleton_product import agents_ticket_list
from tests.live.product import AppLeg, start_product, stop_product

SOUNDS = Path(__file__).resolve().parents[2] / "sounds"
pytestmark = pytest.mark.live


@pytest.fixture
def live_product(esl_endpoint, db, db_url, tmp_path, rendered_sounds):
    """The whole product with its ESL on the live switch and every server of its own on 127.0.0.1:0."""
    running = start_product(esl_endpoint, db_url, tmp_path, rendered_sounds)
    yield running
    stop_product(running)


def test_product_call_becomes_ticket_live(live_product, place_call, esl_events, tmp_path):
    """Should welcome a real call, record the complaint (2, 2, voice, #, 1), read back the acceptance number,
    store the ticket with the caller's number, channel phone and recording, and show it to an agent."""
    pool = live_product.parts["pool"]
    assert all(conn.wait_connected(10) for conn in pool.all())
    host, port = live_product.parts["outbound"].address
    # a number of its own: the sqlite and postgres runs may be calling at once on two workers
    caller = "1391%07d" % (uuidlib.uuid4().int % 10_000_000)
    citizen = place_call(caller=caller, outbound=f"{host}:{port}")

    leg = AppLeg(esl_events, citizen, caller)
    leg.wait_menu("main_menu")
    citizen.press("2")
    leg.wait_menu("self_menu")
    citizen.press("2")
    leg.wait(lambda ev: ev.get("Event-Name") == "RECORD_START", "the recording to start")
    leg.speak_tone(tmp_path / "voice.wav", hz=300)
    citizen.press("#")
    leg.wait_menu("record_confirm")
    citizen.press("1")
    leg.wait(lambda ev: ev.get("Event-Name") == "CHANNEL_EXECUTE" and ev.get("Application") == "playback"
         and ev.get("Application-Data", "").endswith("/ticket_thanks.wav"), "the acceptance number and thanks")
    # the events that did not match stay queued, in order: the read-back is among them
    played = [Path(ev.get("Application-Data", "")).stem for ev in esl_events.events
              if leg.matches(ev) and ev.get("Event-Name") == "CHANNEL_EXECUTE" and ev.get("Application") == "playback"]
    i = played.index("acceptance_number")
    digits = [p.removeprefix("digit_") for p in played[i + 1:i + 9]]
    number = "".join(digits)
    assert len(number) == 8 and number.isdigit(), played

    from caseflow.models import Attachment, Ticket

    with database.connection_context():
        ticket = Ticket.get(Ticket.number == number)
        assert (ticket.citizen_phone, ticket.channel) == (caller, "phone")
        attachment = Attachment.get(Attachment.ticket == ticket)
        assert attachment.size > 0 and len(attachment.sha256) == 64
    recorded = list(Path(live_product.config.recordings_dir).rglob("*.wav"))
    assert len(recorded) == 1
    seconds = float(subprocess.run(["soxi", "-D", str(recorded[0])], check=True, timeout=30,
                                   capture_output=True, text=True).stdout)
    assert seconds >= 3.0

    assert number in agents_ticket_list(live_product)
    citizen.hangup()
