"""Fixtures for the case-engine web pages: an app with every case-engine blueprint, an organisation
with users (password PASSWORD) and logged-in clients per role."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from caseflow import org, services
from caseflow.accounts import hash_password
from caseflow.models import User
from core.clock import FixedClock
from core.config import load_config
from webui.app import BLUEPRINTS, Services, create_app

PASSWORD = "correct-horse-1"
CASEFLOW_BLUEPRINTS = ["webui.blueprints.tickets", "webui.blueprints.centre", "webui.blueprints.dept",
                       "webui.blueprints.kb", "webui.blueprints.entry", "webui.blueprints.admin_org"]
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def clock():
    return FixedClock(dt.datetime(2026, 3, 4, 10, 0, tzinfo=TZ))


@pytest.fixture
def app(db, db_url, tmp_path, clock):
    """The web app with the case-engine blueprints (added if app.py does not list them yet)."""
    from tests.conftest import app_for_tests

    config = load_config({"database_url": db_url, "var_dir": str(tmp_path / "var"), "mode": "test",
                          "secret_key": "test-secret-key-" + "c" * 32, "load_demo": False})
    blueprints = BLUEPRINTS + [b for b in CASEFLOW_BLUEPRINTS if b not in BLUEPRINTS]
    return app_for_tests(create_app(config, services=Services(clock=clock), blueprints=blueprints))


@pytest.fixture
def world(db, clock):
    """Centre, two districts (east with a street), users per role, and a dispatched ticket per district."""
    centre = org.create_department("C", "热线中心", None, "centre")
    east = org.create_department("E", "东区", centre, "district")
    street = org.create_department("E1", "东区街道", east, "street")
    west = org.create_department("W", "西区", centre, "district")
    noise = org.create_category("NOISE", "噪音扰民")
    org.add_responsibility(east, noise)
    hashed = hash_password(PASSWORD)

    def user(no, roles, dept):
        return User.create(operator_no=no, name=f"用户{no}", password_hash=hashed, roles=roles, department=dept)

    w = SimpleNamespace(centre=centre, east=east, street=street, west=west, noise=noise,
                        agent=user("1001", "agent", centre), centre_user=user("9001", "centre", centre),
                        leader=user("9002", "centre_leader,centre", centre), admin=user("0001", "admin", centre),
                        entry=user("6001", "entry", centre), east_user=user("7001", "dept", east),
                        street_user=user("7101", "dept", street), west_user=user("7301", "dept", west))
    made = services.create_ticket("东区某小区夜间施工噪音扰民", type="complaint", citizen_phone="13812345678",
                                  citizen_name="张三丰", category=noise, created_by=w.agent, clock=clock)
    w.east_pin = made.plain_pin  # each ticket's query PIN, as its receipt gave it (stored only hashed)
    w.east_ticket = services.dispatch(made, w.centre_user, east, clock=clock)
    made = services.create_ticket("西区路灯不亮", citizen_phone="13900000000", citizen_name="李四",
                                  created_by=w.agent, clock=clock)
    w.west_pin = made.plain_pin
    w.west_ticket = services.dispatch(made, w.centre_user, west, clock=clock)
    return w


@pytest.fixture
def login(app, world):
    """login(user) -> a test client logged in as that user."""
    def make(user):
        client = app.test_client()
        response = client.login(user.operator_no, PASSWORD)
        assert response.status_code in (302, 303), response.status_code
        return client
    return make
