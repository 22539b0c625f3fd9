"""Fixtures for IVR integration tests: a Config in a temporary directory, the tree store and the services."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from core.config import load_config
from ivr.prompts import LANGUAGES, prompt_keys, prompts_file
from hotline.ivr_services import HotlineIvrServices
from ivr.store import TreeStore

SOUNDS = Path(__file__).resolve().parents[3] / "sounds"


@pytest.fixture
def ivr_config(tmp_path):
    """A Config whose var, sounds and recordings live under tmp_path (sounds: the prompt texts only)."""
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    for lang in LANGUAGES:
        shutil.copy(prompts_file(SOUNDS, lang), sounds)
    return load_config({"var_dir": str(tmp_path / "var"), "sounds_dir": str(sounds),
                        "recordings_dir": str(tmp_path / "recordings"), "mode": "test",
                        "secret_key": "x" * 40})


@pytest.fixture
def trees(db):
    return TreeStore(prompt_keys=prompt_keys(SOUNDS))


@pytest.fixture
def ivr_services(db, ivr_config, trees):
    return HotlineIvrServices(config=ivr_config, trees=trees)


@pytest.fixture
def phone(db, tmp_path, rendered_sounds, trees, fakeswitch):
    """The IVR served by the real outbound server, with rendered prompts; ``phone.call(script)`` places a
    scripted call through the fake switch (the shared ``fakeswitch`` fixture)."""
    from core.config import load_config
    from ivr.runner import run_call
    from switch.outbound import OutboundServer

    config = load_config({"var_dir": str(tmp_path / "var"), "sounds_dir": str(rendered_sounds),
                          "recordings_dir": str(tmp_path / "recordings"), "mode": "test",
                          "secret_key": "x" * 40})
    from core.clock import FixedClock

    # Office hours on a Monday unless a test says otherwise (the wall clock would make tests time-dependent).
    services = HotlineIvrServices(config=config, trees=trees, clock=FixedClock(dt.datetime(2026, 1, 5, 10, 0)))
    trees.ensure_default()
    engines = {}

    def handler(session):
        engines[session.uuid] = run_call(session, services, config)

    server = OutboundServer("127.0.0.1", 0, handler)
    server.start()

    class Phone:
        def call(self, script, caller="13800138000", destination="12345", timeout=30.0, wait=True):
            placed = fakeswitch.place_call(server.address, caller=caller, destination=destination, script=script)
            if wait:
                self.finish(placed, timeout)
            return placed

        def sent_back(self, script, mark, value, **kw):
            """A caller the app sent back into the socket marked ``mark=value`` (what AgentControls does: note
            the mark, set it on the channel, transfer the channel to 12345)."""
            import uuid as uuidlib

            call_uuid = str(uuidlib.uuid4())
            services.handbacks.expect(call_uuid, mark, value)
            return fakeswitch.place_call(server.address, script=script, variables={mark: value}, uuid=call_uuid,
                                         **kw)

        def finish(self, placed, timeout=30.0):
            """Wait until the call ended and the IVR handler stored its trace."""
            placed.wait_ended(timeout=timeout)
            fakeswitch.wait_for(lambda: placed.uuid in engines, 10.0, "the IVR handler to finish")
            return engines[placed.uuid]

    p = Phone()
    p.config, p.services, p.engines, p.server, p.fs, p.trees = config, services, engines, server, fakeswitch, trees
    p.sounds = rendered_sounds
    yield p
    server.stop(drain_timeout=5)
