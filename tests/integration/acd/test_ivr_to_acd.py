"""The product's phone path: the IVR runner hands the caller to the ACD (route_to_queue -> enter_queue),
which offers the call to a skilled agent, over the fake FreeSWITCH."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from acd.dispatcher import Acd, AcdSettings, create_agent, create_queue
from acd.models import QueueEntry
from core.clock import FixedClock
from core.config import EslEndpoint, load_config
from switch.inbound import SwitchPool
from switch.outbound import OutboundServer
from tests.fakeswitch import FakeSwitch
from tests.integration.acd.conftest import make_user, wait_for

SOUNDS = Path(__file__).resolve().parents[3] / "sounds"


@pytest.fixture
def phone_line(db, tmp_path, prompts):
    from ivr.prompts import LANGUAGES, prompt_keys, prompts_file
    from ivr.runner import run_call
    from hotline.ivr_services import HotlineIvrServices
    from ivr.store import TreeStore

    sounds = tmp_path / "sounds"
    sounds.mkdir()
    for lang in LANGUAGES:
        shutil.copy(prompts_file(SOUNDS, lang), sounds)
    config = load_config({"var_dir": str(tmp_path / "var"), "sounds_dir": str(sounds), "mode": "test",
                          "recordings_dir": str(tmp_path / "recordings"), "secret_key": "x" * 40})
    # Prompts are not rendered here (the IVR's own tests do that): the fake plays missing files anyway.
    fs = FakeSwitch(password="ClueCon", record_dir=tmp_path / "fs", time_scale=0.01, strict_files=False)
    fs.start()
    pool = SwitchPool([EslEndpoint("127.0.0.1", fs.esl_port, "ClueCon")])
    pool.start()
    assert pool.all()[0].wait_connected(5)
    acd = Acd(pool, settings=AcdSettings(reconcile_interval=3600), prompts=prompts)
    trees = TreeStore(prompt_keys=prompt_keys(SOUNDS))
    trees.ensure_default()
    services = HotlineIvrServices(config=config, trees=trees, acd=acd,
                                  clock=FixedClock(dt.datetime(2026, 1, 5, 10, 0)))  # a Monday, office hours
    engines = {}

    def handler(session):
        engines[session.uuid] = run_call(session, services, config)

    server = OutboundServer("127.0.0.1", 0, handler)
    server.start()
    yield fs, acd, server, engines
    server.stop(drain_timeout=2)
    acd.stop()
    pool.stop()
    fs.stop()


def _call_to_a_ready_agent(phone_line, operator_no: str, extension: str, caller: str, **phone):
    """(agent, call): queue "general" with one agent (``phone``: how the fake's phone answers), logged in and
    ready; a caller who presses nothing calls 12345 and the call has ended, its IVR finished."""
    fs, acd, server, engines = phone_line
    create_queue("general", "general", wrap_up_seconds=0, announce_interval=0)
    agent = create_agent(make_user(operator_no, extension), {"general": 5})
    fs.add_agent(extension, **phone)
    acd.start()
    acd.transition(agent.id, "login")
    acd.transition(agent.id, "ready")
    call = fs.place_call(server.address, caller=caller, destination="12345")
    call.wait_ended(timeout=30)
    wait_for(lambda: call.uuid in engines, timeout=10, what="IVR finished")
    return agent, call


def test_caller_through_ivr_reaches_skilled_agent(phone_line):
    """Should take a caller who presses nothing from the menu into queue 'general' and bridge an agent."""
    acd = phone_line[1]
    agent, call = _call_to_a_ready_agent(phone_line, "8001", "1001", "13912340000", answer_delay=0.5,
                                         talk_seconds=2)
    entry = QueueEntry.get(QueueEntry.call_uuid == call.uuid)
    assert entry.state == "bridged" and entry.agent_id == agent.id and entry.caller_number == "13912340000"
    assert call.bridged_to and call.bridged_to[0].caller_number == "13912340000"
    wait_for(lambda: acd.agents[agent.id].state == "idle", what="agent idle")
    assert acd.agents[agent.id].calls_today == 1


def test_wait_counts_from_asking_for_a_person_not_from_the_end_of_the_connecting_prompt(phone_line, tmp_path):
    """Should start the caller's queue entry when the menu sends them to the queue, before the queue node's
    "connecting" prompt (30 simulated seconds here) plays: the wait the call record and the 15-second answer
    rate read (GB/T 33358) includes that prompt even when the agent answers at once."""
    import wave

    fs = phone_line[0]
    connecting = tmp_path / "sounds" / "zh" / "connecting.wav"
    connecting.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(connecting), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 8000 * 30)
    agent, call = _call_to_a_ready_agent(phone_line, "8002", "1002", "13912340001", answer_delay=0,
                                         talk_seconds=1)
    assert any(arg.endswith("/zh/connecting.wav") for app, arg in call.executed if app == "playback"), call.executed
    entry = QueueEntry.get(QueueEntry.call_uuid == call.uuid)
    assert entry.state == "bridged"
    prompt_real_seconds = 30 * fs.time_scale       # the fake plays 1 simulated second in time_scale seconds
    assert entry.wait_seconds >= prompt_real_seconds, entry.wait_seconds
    assert (entry.answered_at - entry.entered_at).total_seconds() >= prompt_real_seconds
