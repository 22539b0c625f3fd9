"""The walking skeleton through the whole product (hotline.product.Product, as run.py builds it) on a real
FreeSWITCH (skipped unless HOTLINE_TEST_ESL is set).

The product's inbound connection goes to the live switch, its outbound server listens on 127.0.0.1 port 0
and the test's call carries {hotline_outbound=127.0.0.1:PORT}, so the dialplan's `socket` brings it there.
The test drives the call like a phone would (loopback leg: DTMF and audio) and watches only what the
switch reports (CHANNEL_EXECUTE, RECORD_START, PLAYBACK_STOP), then checks the database and the web UI.
"""
from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid as uuidlib
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

import pytest

from core.db import database
from tests.live.product import AppLeg, in_thread, start_product, stop_product

SOUNDS = Path(__file__).resolve().parents[2] / "sounds"
pytestmark = pytest.mark.live


@pytest.fixture
def live_product(esl_endpoint, db, db_url, tmp_path, rendered_sounds):
    """The whole product with its ESL on the live switch and every server of its own on 127.0.0.1:0."""
    running = start_product(esl_endpoint, db_url, tmp_path, rendered_sounds)
    yield running
    stop_product(running)


class _Browser:
    """A cookie-keeping HTTP client for the product's web server (a greenlet in this process)."""

    def __init__(self):
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def get(self, url: str, data: bytes | None = None) -> str:
        def fetch():
            with self.opener.open(url, data=data, timeout=20) as response:
                return response.read().decode()
        return in_thread(fetch)


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

    base = f"http://{live_product.config.http[0]}:{live_product.parts['web'].server_port}"
    browser = _Browser()
    health = json.loads(browser.get(f"{base}/healthz"))
    assert health["db"] == "ok" and health["switch"] == "connected"
    login_page = browser.get(f"{base}/login")
    token = login_page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    body = urlencode({"operator_no": "1001", "password": "demo1234", "csrf_token": token}).encode()
    browser.get(f"{base}/login", data=body)
    assert number in browser.get(f"{base}/agent/tickets")
    citizen.hangup()
