"""The call counts recorder.aggregates keeps as records are finalised (issue 14: the calls and agents reports
at 10 million records) equal what the records themselves give, on both databases: through the recorder's own
hooks (a record finalised again takes its counts back), for calls still in progress, after the rebuild
command, and grouped in a half-hour zone."""
from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from peewee import fn

from caseflow.models import User
from core.clock import FixedClock
from recorder import aggregates
from recorder.models import AgentCallSlot, CallRecord, CallSlot
from stats import report_queries as rq
from stats.breakdowns import call_traffic

START = dt.datetime(2026, 3, 1, 18, 0)  # naive UTC: 02:00 in Shanghai, 23:30 in Kolkata


@pytest.fixture
def agents(db):
    return [User.create(operator_no=f"10{n:02d}", name=f"座席{n}", password_hash="!", roles="agent")
            for n in range(3)]


def _raw_traffic(start, end, tz):
    rows = CallRecord.select(CallRecord.started_at, CallRecord.direction).where(
        (CallRecord.started_at >= start) & (CallRecord.started_at < end)).tuples()
    return call_traffic(rows, tz)


def _raw_agents(start, end):
    return {agent: (int(calls), float(talk or 0), float(hold or 0)) for agent, calls, talk, hold in
            CallRecord.select(CallRecord.agent, fn.COUNT(CallRecord.id), fn.SUM(CallRecord.talk_seconds),
                              fn.SUM(CallRecord.hold_seconds))
            .where((CallRecord.started_at >= start) & (CallRecord.started_at < end) & CallRecord.agent.is_null(False))
            .group_by(CallRecord.agent).tuples()}


def _same_as_records(tz_name="Asia/Shanghai", days=3):
    tz = ZoneInfo(tz_name)
    for first in range(days):
        local = dt.datetime(2026, 3, 1 + first, tzinfo=tz)
        start = local.astimezone(dt.timezone.utc).replace(tzinfo=None)
        for end in (start + dt.timedelta(days=1), start + dt.timedelta(days=days)):
            kept = call_traffic(rq.call_rows(start, end), tz)
            raw = _raw_traffic(start, end, tz)
            assert (kept.by_day, kept.by_hour, kept.heat) == (raw.by_day, raw.by_hour, raw.heat), (tz_name, start)
            assert rq.call_totals(start, end) == {"inbound": raw.total("inbound"), "outbound": raw.total("outbound")}
            assert aggregates.agent_calls(start, end) == _raw_agents(start, end)


def _calls(cdr, clock, agents, count=40):
    """Calls over two days every 47 minutes: answered by the agents in turn, some held, some unanswered,
    every fifth outbound; the last few still in progress."""
    for n in range(count):
        clock.set((START + dt.timedelta(minutes=47 * n)).replace(tzinfo=dt.timezone.utc))
        uuid = f"call-{n}"
        cdr.call_started(uuid, caller=f"1380000{n:04d}", called="12345",
                         direction="outbound" if n % 5 == 0 else "inbound")
        if n % 4 != 3:
            clock.advance(seconds=20)
            cdr.agent_answered(uuid, agents[n % 3].operator_no, agent_uuid=f"{uuid}-agent")
            if n % 2:
                clock.advance(seconds=30)
                cdr.hold(uuid, True)
                clock.advance(seconds=15)
                cdr.hold(uuid, False)
        clock.advance(seconds=60 + n)
        if n < count - 3:
            cdr.hangup(uuid, "NORMAL_CLEARING", "recv_bye")


def test_counts_follow_the_records(cdr, clock, agents):
    """Should count every finalised call in its quarter-hour and with its agent, and read the calls still in
    progress from their records: the reports' figures equal the records' in every period."""
    _calls(cdr, clock, agents)
    assert CallSlot.select().count() > 0 and AgentCallSlot.select().count() > 0
    assert CallRecord.select().where(~CallRecord.finalised).count() == 3
    _same_as_records()
    assert aggregates.differences() == []


def test_a_record_finalised_again_moves_its_counts(cdr, clock, agents):
    """Should take a record's earlier counts back when it is finalised again (a late flag), not count it
    twice, and keep the talk seconds of the later finalisation."""
    _calls(cdr, clock, agents, count=6)
    before = CallSlot.select(fn.SUM(CallSlot.calls)).scalar()
    cdr.flag("call-1", "served")  # just ended: finalised again
    cdr.flag("call-2", "served")
    assert CallSlot.select(fn.SUM(CallSlot.calls)).scalar() == before
    _same_as_records()
    assert aggregates.differences() == []


def test_kept_counts_in_a_half_hour_zone(cdr, clock, agents):
    """Should group quarter-hours into local hours and days of a zone half an hour off UTC's hours."""
    _calls(cdr, clock, agents)
    _same_as_records("Asia/Kolkata")
    _same_as_records("America/St_Johns")


def test_rebuild_and_check(db, db_url, cdr, clock, agents):
    """Should find the counts of records written without the recorder (a bulk import) missing, rebuild them
    from the records, and then find nothing to report."""
    from core import db as core_db

    _calls(cdr, clock, agents, count=10)
    for n in range(25):
        at = START + dt.timedelta(hours=5, minutes=13 * n, seconds=n)
        CallRecord.create(call_uuid=f"bulk-{n}", started_at=at, direction="outbound" if n % 3 else "inbound",
                          agent=agents[n % 3] if n % 2 else None, talk_seconds=n * 7, hold_seconds=n,
                          finalised=True)
    try:
        out = io.StringIO()
        assert aggregates.main(["check", "--database-url", db_url], out=out) == 1
        assert "differences" in out.getvalue() and not out.getvalue().startswith("0 ")
        out = io.StringIO()
        assert aggregates.main(["rebuild", "--database-url", db_url], out=out) == 0
        assert "rebuilt" in out.getvalue()
        assert aggregates.main(["check", "--database-url", db_url], out=io.StringIO()) == 0
    finally:
        core_db.database.initialize(db)
    assert aggregates.differences() == []
    _same_as_records()


def test_slot_of_and_direction():
    """Should floor a moment to its quarter-hour and count everything but outbound as inbound."""
    assert aggregates.slot_of(dt.datetime(2026, 3, 1, 10, 44, 59, 999)) == dt.datetime(2026, 3, 1, 10, 30)
    assert aggregates.slot_of(dt.datetime(2026, 3, 1, 10, 45)) == dt.datetime(2026, 3, 1, 10, 45)
    assert [aggregates.direction_of(d) for d in ("inbound", "outbound", "internal", "")] == \
        ["inbound", "outbound", "inbound", "inbound"]


def test_migration_counts_the_records_already_stored(db, agents):
    """Should count the finalised records an existing database holds when the counts' tables arrive."""
    from core.migrations import SchemaMigration
    from hotline.schema import create_schema

    for n in range(12):
        CallRecord.create(call_uuid=f"old-{n}", started_at=START + dt.timedelta(minutes=20 * n),
                          direction="inbound", agent=agents[n % 3], talk_seconds=30, finalised=True)
    assert CallSlot.select().count() == 0
    step = "0011_call_counts"
    SchemaMigration.delete().where(SchemaMigration.name == step).execute()
    assert step in create_schema()
    assert aggregates.differences() == [] and CallSlot.select(fn.SUM(CallSlot.calls)).scalar() == 12
