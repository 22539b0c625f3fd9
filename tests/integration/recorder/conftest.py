"""Fixtures for recorder integration tests: a signing key, a CDR recorder and a recording store on tmp_path."""
from __future__ import annotations

import datetime as dt

import pytest

from core.clock import FixedClock
from recorder.cdr import CdrRecorder
from recorder.integrity import record_key
from recorder.storage import RecordingStore

SECRET = "test-secret-key-0123456789abcdef0123456789"


@pytest.fixture
def clock():
    return FixedClock(dt.datetime(2026, 11, 27, 9, 30, 0))


@pytest.fixture
def key():
    return record_key(SECRET)


@pytest.fixture
def cdr(db, key, clock):
    return CdrRecorder(key, clock=clock)


@pytest.fixture
def store(db, tmp_path, clock):
    return RecordingStore(tmp_path / "recordings", tz="Asia/Shanghai", clock=clock)


PASSWORD = "correct-horse-battery-1"
WEB_BLUEPRINTS = ["webui.blueprints.recordings", "webui.blueprints.calls"]


@pytest.fixture
def web_config(db_url, tmp_path):
    from core.config import load_config

    return load_config({"database_url": db_url, "var_dir": str(tmp_path / "var"), "mode": "test",
                        "recordings_dir": str(tmp_path / "recordings"), "secret_key": SECRET,
                        "load_demo": False})


@pytest.fixture
def web(db, web_config, clock):
    """The web app with the recorder's blueprints (added when webui.app does not list them yet)."""
    from tests.conftest import app_for_tests
    from webui.app import BLUEPRINTS, Services, create_app

    blueprints = BLUEPRINTS + [b for b in WEB_BLUEPRINTS if b not in BLUEPRINTS]
    return app_for_tests(create_app(web_config, services=Services(clock=clock), blueprints=blueprints))


@pytest.fixture
def web_store(web_config, clock):
    return RecordingStore.from_config(web_config, clock=clock)


@pytest.fixture
def people(db):
    """Departments A and B under the centre, and a user for each role the recordings pages care about."""
    from caseflow.accounts import create_user
    from caseflow.org import create_department

    centre = create_department("C", "热线办")
    dept_a = create_department("A", "城管局", centre)
    dept_b = create_department("B", "住建局", centre)
    users = {
        "centre": create_user("3001", "李主任", PASSWORD, roles=["centre"], department=centre),
        "agent": create_user("1001", "王芳", PASSWORD, roles=["agent"], department=centre),
        "agent2": create_user("1002", "赵强", PASSWORD, roles=["agent"], department=centre),
        "dept_a": create_user("4001", "城管办事员", PASSWORD, roles=["dept"], department=dept_a),
        "dept_a_leader": create_user("4002", "城管领导", PASSWORD, roles=["dept_leader"], department=dept_a),
        "dept_b_leader": create_user("5002", "住建领导", PASSWORD, roles=["dept_leader"], department=dept_b),
        "admin": create_user("9001", "管理员", PASSWORD, roles=["admin"]),
    }
    return {"centre_dept": centre, "A": dept_a, "B": dept_b, **users}
