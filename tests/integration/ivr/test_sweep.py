"""The IVR's part of the reconciliation sweep (ivr.sweep, handed to recorder.sweep.Sweeper by the product):
campaign attempts whose call no switch lists fail and are retried per the campaign, and an earlier run's
IVR trace tells the path, whether the caller was served and the last moment heard; both databases."""
from __future__ import annotations

import datetime as dt
import json

from ivr import sweep
from ivr.campaigns import create_group_campaign
from ivr.models import IvrTrace, OutboundAttempt


def test_lost_attempts_fail_and_others_stay(db):
    """Should fail a calling attempt whose channel is gone past the grace (pending again while attempts are
    left), and leave one whose channel is listed and one dialled too recently."""
    create_group_campaign("停水通知", "明天停水", ["13800000001", "13800000002", "13800000003"], max_attempts=2)
    now = dt.datetime(2026, 1, 5, 2, 0, 0)
    long_ago, just_now = now - dt.timedelta(seconds=60), now - dt.timedelta(seconds=5)
    gone, up, young = OutboundAttempt.select().order_by(OutboundAttempt.id)
    for attempt, uuid, at in ((gone, "u-gone", long_ago), (up, "u-up", long_ago), (young, "u-young", just_now)):
        OutboundAttempt.update(state="calling", attempts=1, last_call_uuid=uuid, last_attempt_at=at) \
            .where(OutboundAttempt.id == attempt.id).execute()
    assert sweep.fail_lost_attempts({"u-up"}, now) == 1
    states = {a.last_call_uuid: (a.state, a.outcome) for a in OutboundAttempt.select()}
    assert states == {"u-gone": ("pending", "LOST_CHANNEL"), "u-up": ("calling", ""), "u-young": ("calling", "")}
    assert sweep.fail_lost_attempts({"u-up"}, now) == 0  # nothing twice


def test_call_history_reads_the_trace(db):
    """Should give the nodes entered (a repeat entry once), served when a ticket was filed, and the last
    moment heard; nothing known for a call without a trace."""
    assert sweep.call_history("no-such-call") == ([], False, None)
    entries = [{"at": "2026-01-05T10:00:00+08:00", "node": "welcome", "what": "enter welcome"},
               {"at": "2026-01-05T10:00:05+08:00", "node": "welcome", "what": "enter welcome"},
               {"at": "2026-01-05T10:00:09+08:00", "node": "complaint", "what": "enter complaint"}]
    IvrTrace.create(call_uuid="c-1", entries=json.dumps(entries), tickets="A0001")
    path, served, last = sweep.call_history("c-1")
    assert [p["node"] for p in path] == ["welcome", "complaint"] and served
    assert last == dt.datetime(2026, 1, 5, 2, 0, 9)
