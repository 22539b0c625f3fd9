"""The walking skeleton against a real FreeSWITCH (skipped unless HOTLINE_TEST_ESL is set).

A citizen's call to 12345 reaches the app's real outbound server and the IVR: welcome, 2 (self-service),
2 (complaint recording), speaks, #, 1 (confirm), hears the 8-digit acceptance number digit by digit; a
ticket with that number, the caller's number, channel phone and the recording attached exists.
"""
from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import gevent
import pytest

from caseflow.models import Attachment, Ticket
from core.clock import FixedClock
from core.config import load_config
from ivr import engine as e
from ivr.prompts import LANGUAGES, prompts_file, render_all
from ivr.runner import IvrCall
from hotline.ivr_services import HotlineIvrServices
from ivr.store import TreeStore
from switch.outbound import OutboundServer
from tests.live.product import wait_until

SOUNDS = Path(__file__).resolve().parents[2] / "sounds"
pytestmark = pytest.mark.live



class PlaybackLog:
    """Wraps a CallSession to remember what it played (FreeSWITCH plays it; we note the paths)."""

    def __init__(self, session):
        self._session = session
        self.played: list[str] = []

    def playback(self, path, timeout=120.0, terminators=None):
        self.played.append(path)
        return self._session.playback(path, timeout=timeout, terminators=terminators)

    def __getattr__(self, name):
        return getattr(self._session, name)


@pytest.fixture
def live_ivr(esl_endpoint, db, tmp_path):
    """The IVR on a real outbound server on 127.0.0.1:0, with prompts rendered for real."""
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    for lang in LANGUAGES:
        shutil.copy(prompts_file(SOUNDS, lang), sounds)
    render_all(sounds, 8000)
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    recordings.chmod(0o777)  # FreeSWITCH may run as its own user
    config = load_config({"var_dir": str(tmp_path / "var"), "sounds_dir": str(sounds),
                          "recordings_dir": str(recordings), "mode": "test", "secret_key": "x" * 40})
    trees = TreeStore()
    trees.ensure_default()
    services = HotlineIvrServices(config=config, trees=trees, clock=FixedClock(dt.datetime(2026, 1, 5, 10, 0)))
    calls: list[IvrCall] = []

    def handler(session):
        call = IvrCall(PlaybackLog(session), services, config)
        calls.append(call)
        call.run()

    server = OutboundServer("127.0.0.1", 0, handler)
    server.start()
    server.calls = calls
    yield server
    server.stop(drain_timeout=10)


def _voice(tmp_path: Path) -> Path:
    path = tmp_path / "voice.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", "4", "sine", "300"],
                   check=True, timeout=30)
    path.chmod(0o644)
    return path


def test_walking_skeleton_live(live_ivr, place_call, esl_events, tmp_path):
    """Should turn a real call into a ticket with the recording, reading the number back digit by digit."""
    host, port = live_ivr.address
    citizen = place_call(caller="13800138000", outbound=f"{host}:{port}")
    wait_until(lambda: live_ivr.calls, 20, "the call to reach the IVR")
    ivr = live_ivr.calls[0]

    def at(node, wants=e.DigitsCollected):
        return lambda: ivr.engine.node is not None and ivr.engine.node.id == node and wants in ivr.engine.waiting_for

    wait_until(at("main"), 30, "the main menu")
    citizen.press("2")
    wait_until(at("self_menu"), 30, "the self-service menu")
    citizen.press("2")
    wait_until(at("complaint_record", e.RecordDone), 30, "the recording node")
    # The engine asks for the intro prompt and the recording together; speak once `record` has started.
    # The raw ESL client blocks, so it waits in gevent's thread pool while the app's greenlets keep running.
    wait_event = gevent.get_hub().threadpool.apply
    wait_event(esl_events.wait_event, (
        lambda ev: ev.get("Event-Name") == "RECORD_START" and ev.get("Unique-ID") == ivr.session.uuid, 60))
    voice = _voice(tmp_path)
    citizen.speak(str(voice))
    # FreeSWITCH keeps the recording at its 44-byte header until `record` ends, so wait for the citizen to
    # finish speaking (the broadcast's PLAYBACK_STOP on the citizen's leg), not for the file to grow.
    wait_event(esl_events.wait_event, (
        lambda ev: ev.get("Event-Name") == "PLAYBACK_STOP" and ev.get("Unique-ID") == citizen.uuid
        and ev.get("Playback-File-Path", "").endswith(voice.name), 30))
    citizen.press("#")
    wait_until(at("complaint_record"), 30, "the confirm menu")
    citizen.press("1")
    wait_until(lambda: ivr.engine.tickets, 30, "the ticket")
    number = ivr.engine.tickets[0]
    wait_until(lambda: any(p.endswith("ticket_thanks.wav") for p in ivr.session.played), 60, "the read-back")
    played = [Path(p).stem for p in ivr.session.played]
    i = played.index("acceptance_number")
    assert played[i + 1:i + 9] == [f"digit_{d}" for d in number]
    assert played[0] == "welcome"
    ticket = Ticket.get(Ticket.number == number)
    assert (ticket.citizen_phone, ticket.channel) == ("13800138000", "phone")
    attachment = Attachment.get(Attachment.ticket == ticket)
    assert attachment.size > 0 and len(attachment.sha256) == 64
    recorded = list(Path(ivr.config.recordings_dir).rglob("*.wav"))
    assert len(recorded) == 1
    # sox reads the A-law WAV the recorder stores (Python's wave module reads only PCM)
    seconds = float(subprocess.run(["soxi", "-D", str(recorded[0])], check=True, timeout=30,
                                   capture_output=True, text=True).stdout)
    assert seconds >= 3.0  # the 4-second voice, give or take the first frames
    citizen.hangup()


def test_blacklisted_caller_live(live_ivr, place_call):
    """Should play the blocked notice to a blacklisted number and hang up, with no menu."""
    from caseflow import services as cs

    cs.set_blacklist("13700000000", True, "骚扰")
    host, port = live_ivr.address
    place_call(caller="13700000000", outbound=f"{host}:{port}")
    wait_until(lambda: live_ivr.calls, 20, "the call to reach the IVR")
    ivr = live_ivr.calls[0]
    wait_until(lambda: ivr.engine.done, 60, "the IVR to end the call")
    assert [Path(p).stem for p in ivr.session.played] == ["blocked"]
    assert ivr.engine.outcome == "blacklisted"


def test_no_key_goes_to_a_person_live(live_ivr, place_call):
    """Should leave the menus for a person when the caller presses nothing (nobody registered: a message)."""
    host, port = live_ivr.address
    citizen = place_call(caller="13800138000", outbound=f"{host}:{port}")
    wait_until(lambda: live_ivr.calls, 20, "the call to reach the IVR")
    ivr = live_ivr.calls[0]
    wait_until(lambda: ivr.engine.node is not None and ivr.engine.node.kind == "voicemail", 90,
                "the message after nobody answered")
    visited = [t.node for t in ivr.engine.trace]
    assert "human_time" in visited and "queue_general" in visited
    citizen.hangup()


def _during_welcome(live_ivr, place_call, esl_events):
    """Place a call and return (citizen, ivr call) once the real switch is playing the welcome to it."""
    host, port = live_ivr.address
    citizen = place_call(caller="13800138000", outbound=f"{host}:{port}")
    wait_until(lambda: live_ivr.calls, 20, "the call to reach the IVR")
    ivr = live_ivr.calls[0]
    gevent.get_hub().threadpool.apply(esl_events.wait_event, (
        lambda ev: ev.get("Event-Name") == "PLAYBACK_START" and ev.get("Unique-ID") == ivr.session.uuid
        and ev.get("Playback-File-Path", "").endswith("/welcome.wav"), 60))
    return citizen, ivr


def test_key_during_welcome_skips_to_the_menu_live(live_ivr, place_call, esl_events):
    """Should stop the welcome at the caller's 2 on the real switch and take it as the main menu's key: the
    caller lands in self-service with no main-menu prompt and no wait for the welcome's end."""
    citizen, ivr = _during_welcome(live_ivr, place_call, esl_events)
    citizen.press("2")
    wait_until(lambda: ivr.engine.node is not None and ivr.engine.node.id == "self_menu", 30, "self-service")
    played = [Path(p).stem for p in ivr.session.played]
    assert played == ["welcome"]  # the self-service menu is play_and_get_digits, the main menu never played
    assert ("welcome", "2") in [(t.node, t.keys) for t in ivr.engine.trace]
    citizen.hangup()


def test_must_hear_welcome_ignores_a_key_live(live_ivr, place_call, esl_events):
    """Should play a must-hear welcome on the real switch whatever the caller presses, then the main menu."""
    from ivr.edit import edit_node
    from ivr.tree import load_tree

    trees = TreeStore()
    trees.activate(trees.add_version(edit_node(load_tree(), "welcome", {"must_hear": "true"})).id, "live test")
    citizen, ivr = _during_welcome(live_ivr, place_call, esl_events)
    citizen.press("2")
    wait_until(lambda: ivr.engine.node is not None and ivr.engine.node.id == "main"
               and e.DigitsCollected in ivr.engine.waiting_for, 60, "the main menu after the whole welcome")
    assert "self_menu" not in [t.node for t in ivr.engine.trace]
    assert not [t for t in ivr.engine.trace if t.what.startswith("key during the prompt")]
    citizen.hangup()
