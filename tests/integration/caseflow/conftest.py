"""Fixtures for case-engine tests: a small three-level organisation with a user per role."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from caseflow import org
from caseflow.models import User
from core.clock import FixedClock

TZ = ZoneInfo("Asia/Shanghai")


def make_user(operator_no, roles, dept, name=None):
    """A user without the cost of argon2 (login is not under test here)."""
    return User.create(operator_no=operator_no, name=name or f"用户{operator_no}", password_hash="!",
                       roles=roles, department=dept)


@pytest.fixture
def clock():
    """Wednesday 2026-03-04 10:00 Shanghai."""
    return FixedClock(dt.datetime(2026, 3, 4, 10, 0, tzinfo=TZ))


@pytest.fixture
def org_setup(db):
    """centre > (east district > east street, west district, city bureau); users for each role."""
    centre = org.create_department("C", "热线中心", None, "centre")
    east = org.create_department("E", "东区", centre, "district")
    east_street = org.create_department("E1", "东区一街道", east, "street")
    east_street2 = org.create_department("E2", "东区二街道", east, "street")
    west = org.create_department("W", "西区", centre, "district")
    west_street = org.create_department("W1", "西区街道", west, "street")
    bureau = org.create_department("B", "市城管局", centre, "city_dept")
    noise = org.create_category("NOISE", "噪音扰民")
    food = org.create_category("FOOD", "食品安全")
    r_east = org.create_region("RE", "东区")
    r_west = org.create_region("RW", "西区")
    r_east1 = org.create_region("RE1", "东区一街道", r_east)
    org.add_responsibility(east, noise, r_east)
    org.add_responsibility(west, noise, r_west)
    org.add_responsibility(bureau, noise)
    org.add_responsibility(bureau, food)
    return SimpleNamespace(
        centre=centre, east=east, east_street=east_street, east_street2=east_street2, west=west,
        west_street=west_street, bureau=bureau, noise=noise, food=food, r_east=r_east, r_west=r_west,
        r_east1=r_east1,
        agent=make_user("1001", "agent", centre), centre_user=make_user("9001", "centre", centre),
        leader=make_user("9002", "centre_leader,centre", centre), admin=make_user("0001", "admin", centre),
        entry=make_user("6001", "entry", centre),
        east_user=make_user("7001", "dept", east), east_leader=make_user("7002", "dept_leader,dept", east),
        east_street_user=make_user("7101", "dept", east_street),
        east_street2_user=make_user("7102", "dept", east_street2),
        west_user=make_user("7301", "dept", west), bureau_user=make_user("7201", "dept", bureau),
    )
