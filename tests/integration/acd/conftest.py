"""Fixtures for ACD tests: users with agents and queues in the database, an Acd over the in-process doubles."""
from __future__ import annotations

import pytest

from acd.dispatcher import Acd, AcdSettings, create_agent, create_queue
from acd.prompts import AcdPrompts
from caseflow.models import User
from tests.integration.acd.doubles import Conn, Pool, World
from tests.waiting import wait_until


wait_for = wait_until  # the ACD tests' name for it


def make_user(no: str, extension: str | None, roles: str = "agent", name: str = "") -> User:
    return User.create(operator_no=no, name=name or f"话务员{no}", password_hash="x", roles=roles,
                       extension=extension)


@pytest.fixture
def world():
    return World()


@pytest.fixture
def prompts(tmp_path):
    def render(text, path):
        path.write_bytes(b"RIFF" + text.encode())

    return AcdPrompts(tmp_path / "sounds", render=render)


@pytest.fixture
def make_acd(db, world, prompts):
    """Build an Acd over the doubles after the test created its queues and agents."""
    made = []

    def build(**settings):
        acd = Acd(Pool(Conn(world)), settings=AcdSettings(reconcile_interval=3600, **settings), prompts=prompts)
        acd.start()
        made.append(acd)
        return acd

    yield build
    for acd in made:
        acd.stop()


@pytest.fixture
def setup_agents(db, world):
    """Create n agents (extensions 1001...) with skill 'consult' and registered phones."""

    def create(n=2, skill="consult", level=5, registered=True, **phone):
        agents = []
        for i in range(1, n + 1):
            ext = f"{1000 + i}"
            user = make_user(f"{8000 + i}", ext)
            agents.append(create_agent(user, {skill: level}))
            world.add_phone(ext, registered=registered, **phone)
        return agents

    return create


@pytest.fixture
def queue(db):
    return create_queue("consult", "consult", ring_timeout=20, max_wait=60, wrap_up_seconds=0,
                        announce_interval=0)
