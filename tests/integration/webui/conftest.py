"""Fixtures for web UI tests: users, tickets and apps with a controllable clock or extra blueprints."""
from __future__ import annotations

import datetime as dt
import itertools

import pytest

from core.clock import FixedClock
from core.config import load_config
from webui.app import BLUEPRINTS, Services, create_app

PASSWORD = "correct-horse-1"
START = dt.datetime(2026, 3, 2, 9, 0)  # a Monday morning, Asia/Shanghai


@pytest.fixture
def make_user(db):
    """make_user(operator_no, roles, **fields) -> User with password PASSWORD."""
    from caseflow.accounts import create_user

    def make(operator_no: str, roles=("agent",), name: str = "测试用户", **fields):
        user = create_user(operator_no, name, PASSWORD, roles=list(roles))
        if fields:
            for key, value in fields.items():
                setattr(user, key, value)
            user.save()
        return user

    return make


@pytest.fixture
def logged_in(app, make_user):
    """logged_in(operator_no, roles) -> a test client of ``app`` logged in as a new user with those roles."""
    def log_in(operator_no: str, roles=("agent",)):
        make_user(operator_no, roles=roles)
        client = app.test_client()
        client.login(operator_no, PASSWORD)
        return client

    return log_in


@pytest.fixture
def make_ticket(db):
    """make_ticket(**fields) -> Ticket with a fresh 8-digit number."""
    from caseflow.models import Ticket

    numbers = itertools.count(10000001)

    def make(**fields):
        fields.setdefault("number", str(next(numbers)))
        fields.setdefault("citizen_phone", "13800138000")
        fields.setdefault("citizen_name", "王小明")
        fields.setdefault("content", "小区门口路灯不亮")
        return Ticket.create(**fields)

    return make


@pytest.fixture
def make_app(db, db_url, tmp_path):
    """make_app(services=None, extra_blueprints=(), only_blueprints=None, **config) -> a test app with its
    own settings (only_blueprints replaces the full list, e.g. to test a page before others exist)."""
    from tests.conftest import app_for_tests

    def make(services: Services | None = None, extra_blueprints=(), only_blueprints=None, **config_values):
        values = {"database_url": db_url, "var_dir": str(tmp_path / "var"), "mode": "test",
                  "secret_key": "test-secret-key-" + "y" * 32, "load_demo": False}
        values.update(config_values)
        return app_for_tests(create_app(load_config(values), services=services,
                                      blueprints=list(only_blueprints or BLUEPRINTS) + list(extra_blueprints)))

    return make


@pytest.fixture
def clock():
    return FixedClock(START.replace(tzinfo=dt.timezone(dt.timedelta(hours=8))))
