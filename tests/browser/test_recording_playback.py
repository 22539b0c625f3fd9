"""In a real browser: find a call's recording from its ticket's acceptance number and play it."""
from __future__ import annotations

import math
import struct
import wave

from playwright.sync_api import expect

from .conftest import login

PASSWORD = "correct-horse-battery-1"


def _tone(path, seconds=3.0, rate=8000):
    """A 440 Hz tone, the kind of PCM file FreeSWITCH's record_session writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(9000 * math.sin(2 * math.pi * 440 * i / rate)))
                               for i in range(int(seconds * rate))))


def _recorded_ticket(config, seconds=3.0):
    """A centre user, and an answered, recorded call that produced a ticket; returns (ticket number, rec id)."""
    from caseflow import services
    from caseflow.accounts import create_user
    from core.db import database
    from recorder.cdr import CdrRecorder
    from recorder.integrity import record_key
    from recorder.storage import RecordingStore

    with database.connection_context():
        create_user("3001", "李主任", PASSWORD, roles=["centre"])
        cdr = CdrRecorder(record_key(config.secret_key, config.extra))
        store = RecordingStore.from_config(config)
        cdr.call_started("browser-call-1", caller="13800138000", called="12345")
        rec = store.begin("browser-call-1")
        cdr.agent_answered("browser-call-1", "1001")
        _tone(store.raw_path(rec), seconds)
        cdr.hangup("browser-call-1", "NORMAL_CLEARING", "caller")
        rec = store.finish(rec)
        assert rec.status == "ok", rec.failure_reason
        ticket = services.create_ticket("小区路灯不亮，请派人维修", citizen_phone="13800138000",
                                        call_uuid="browser-call-1")
        return ticket.number, rec.id


def test_find_recording_from_ticket_and_play(page, live_server):
    """Should find the recording by the ticket's acceptance number, play it in Chromium (A-law WAV with
    Range requests), and log the listen under the user's name."""
    from core.db import database
    from recorder.models import RecordingAccess

    number, rec_id = _recorded_ticket(live_server.config)
    login(page, live_server, "3001", PASSWORD)
    page.goto(live_server("/recordings/"))
    page.fill("input[name=ticket]", number)
    with page.expect_navigation():
        page.click("form[role=search] button[type=submit]")
    row = page.locator(f"tr[data-recording='{rec_id}']")
    expect(row).to_be_visible()
    with page.expect_navigation():
        row.get_by_role("link", name="播放").click()
    player = page.get_by_test_id("recording-player")
    expect(player).to_be_visible()
    player.click()  # a user gesture, so the page may start audio
    player.evaluate("audio => audio.play()")
    page.wait_for_function(
        "() => { const a = document.querySelector('[data-testid=recording-player]');"
        " return a && !a.error && a.currentTime > 0.3 && a.duration > 2.5; }")
    assert player.evaluate("audio => audio.error") is None
    with database.connection_context():
        listens = list(RecordingAccess.select().where(RecordingAccess.recording == rec_id))
    assert listens and listens[0].action == "listen" and listens[0].user_label.startswith("3001")


def test_long_recording_plays_past_the_first_slice(page, live_server):
    """Should play a recording longer than one listening slice (a minute of A-law) in Chromium: the player
    learns the whole duration from the first 206 and, sought to the end, fetches the later slices itself."""
    from webui.blueprints.recordings import LISTEN_SLICE

    seconds = 75.0
    assert seconds * 8000 > LISTEN_SLICE + 44  # A-law: one byte a sample
    _number, rec_id = _recorded_ticket(live_server.config, seconds)
    login(page, live_server, "3001", PASSWORD)
    page.goto(live_server(f"/recordings/{rec_id}"))
    player = page.get_by_test_id("recording-player")
    player.click()
    player.evaluate("audio => audio.play()")
    page.wait_for_function(
        "() => { const a = document.querySelector('[data-testid=recording-player]');"
        " return a && !a.error && a.duration > 74; }")
    player.evaluate("audio => { audio.currentTime = 72; }")
    page.wait_for_function(
        "() => { const a = document.querySelector('[data-testid=recording-player]');"
        " return a && !a.error && a.currentTime > 72.3; }")
    assert player.evaluate("audio => audio.error") is None
