"""The dial-out policy's daily cap per staff member, counted in the database (recorder.dialout.DialOut with
DialOutLog), on both databases."""
from __future__ import annotations

import datetime as dt

import pytest

from caseflow.models import User
from core.clock import FixedClock
from recorder.dialout import DialOut, DialPolicy, DialRefused
from recorder.models import DialOutLog


def test_third_call_of_the_day_over_a_cap_of_two_is_refused_and_logged(db):
    """Should let a staff member with a cap of 2 dial two external numbers, refuse and log the third, never
    count their own seats or 110 against the cap, count another member apart, and start afresh the next
    local day."""
    clock = FixedClock(dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc))
    gate = DialOut(DialPolicy(daily_cap=2), clock=clock)
    agent = User.create(operator_no="1001", name="话务员", password_hash="x", roles="agent")
    other = User.create(operator_no="1002", name="话务员2", password_hash="x", roles="agent")
    for number in ("13800000001", "1005", "110", "02588886666"):
        gate.authorise(number, "outbound", user=agent)
    with pytest.raises(DialRefused, match="今日外呼已达上限 2 次"):
        gate.authorise("13800000002", "call_back", user=agent)
    gate.authorise("13800000002", "outbound", user=other)
    rows = [(r.actor, r.number, r.allowed) for r in DialOutLog.select().order_by(DialOutLog.id)]
    assert rows == [(f"user:{agent.id}", "13800000001", True), (f"user:{agent.id}", "02588886666", True),
                    (f"user:{agent.id}", "13800000002", False), (f"user:{other.id}", "13800000002", True)]
    refused = DialOutLog.get(DialOutLog.allowed == False)  # noqa: E712 - peewee expression
    assert (refused.purpose, refused.user_id, refused.number_class) == ("call_back", agent.id, "mobile")
    clock.advance(hours=16)  # 01:00 the next day in Asia/Shanghai
    assert gate.authorise("13800000003", "outbound", user=agent).allowed
