"""python -m stats.reindex on SQLite and PostgreSQL: a hotspot index and call counts that drifted from their
tickets and records are rebuilt to what indexing and finalising would have made, from a day on or whole,
with progress shown; running it again changes nothing; a bad day is refused."""
from __future__ import annotations

import datetime as dt
import io
import random

import pytest

from caseflow.models import Ticket, User
from core import db as core_db
from recorder import aggregates
from recorder.models import AgentCallSlot, CallRecord, CallSlot
from stats import hotspots
from stats import reindex
from stats import sample_tickets as st
from stats.models import IndexMark, TicketTopic

TZ = "Asia/Shanghai"


@pytest.fixture
def env(monkeypatch, tmp_path):
    """No instance file of the working tree: the defaults and HOTLINE_TZ only."""
    monkeypatch.setenv("HOTLINE_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("HOTLINE_TZ", TZ)


def run(db, db_url, *args) -> tuple[int, str]:
    out = io.StringIO()
    try:
        status = reindex.main([*args, "--database-url", db_url], out=out)
    finally:
        core_db.database.initialize(db)  # main bound its own connection
        db.connect(reuse_if_open=True)
    return status, out.getvalue()


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def tickets(days: float, per_day: int, end: dt.datetime, seed: int = 3) -> None:
    """The sample's tickets spread over the ``days`` before ``end``, ids rising with time."""
    made = st.install()
    rng = random.Random(seed)
    rows, count = [], int(days * per_day)
    for n in range(count):
        t = st.draw(rng)
        at = end - dt.timedelta(days=days) + dt.timedelta(days=days) * n / count
        rows.append({"number": f"{60000000 + n:08d}", "title": t.title, "content": t.content, "status": "recorded",
                     "category": made["categories"][t.category].id if t.category else None,
                     "region": made["regions"][t.region].id if t.region else None, "created_at": at, "updated_at": at})
    Ticket.insert_many(rows).execute()


def index_rows() -> set[tuple]:
    return set(TicketTopic.select(TicketTopic.ticket, TicketTopic.topic, TicketTopic.rank, TicketTopic.hour,
                                  TicketTopic.region, TicketTopic.district, TicketTopic.category).tuples())


def test_hotspot_index_rebuilt_after_drift(db, db_url, env):
    """Should rebuild an index with rows missing and rows of words no longer found to exactly what indexing
    made, from the oldest ticket it held, showing progress; a second run leaves it the same."""
    now = now_utc()
    tickets(days=3, per_day=60, end=now)
    hotspots.index_all(now)
    good = index_rows()
    assert len({row[0] for row in good}) == 180
    some = sorted({row[0] for row in good})[50:70]
    TicketTopic.delete().where(TicketTopic.ticket.in_(some)).execute()
    TicketTopic.insert(ticket=some[0], topic="旧词", rank=9, hour=dt.datetime(2026, 1, 1)).execute()
    assert index_rows() != good
    status, out = run(db, db_url, "hotspots")
    assert status == 0, out
    assert index_rows() == good
    assert "hotspots / 热点索引: 180 / 180 tickets" in out and "rebuilt: 180 tickets" in out
    assert run(db, db_url, "hotspots")[0] == 0
    assert index_rows() == good
    assert IndexMark.get(IndexMark.name == hotspots.INDEX_NAME).last_id == Ticket.select().order_by(
        Ticket.id.desc()).first().id


def test_hotspot_index_backfilled_from_a_day(db, db_url, env):
    """Should index the tickets created since the local day given, older than the rule's horizon, and
    none before that day."""
    now = now_utc()
    tickets(days=30, per_day=6, end=now)
    hotspots.index_all(now)
    horizon_start = now - hotspots.HotspotSettings().horizon
    indexed = {row[0] for row in index_rows()}
    old = {t.id for t in Ticket.select().where(Ticket.created_at < horizon_start)}
    assert old and not (old & indexed)
    since = (now - dt.timedelta(days=20)).date()
    status, out = run(db, db_url, "hotspots", "--since", since.isoformat())
    assert status == 0, out
    first = dt.datetime.combine(since, dt.time()) - dt.timedelta(hours=8)  # Shanghai's midnight in UTC
    indexed = {row[0] for row in index_rows()}
    assert indexed == {t.id for t in Ticket.select().where(Ticket.created_at >= first)}


def _records(agents, start: dt.datetime, days: int) -> None:
    """Finalised records written in bulk (an import): every 37 minutes over ``days``."""
    rows = []
    for n in range(int(days * 24 * 60 / 37)):
        rows.append({"call_uuid": f"bulk-{n}", "started_at": start + dt.timedelta(minutes=37 * n, seconds=n % 60),
                     "direction": "outbound" if n % 4 == 0 else "inbound", "agent": agents[n % 3].id if n % 5 else None,
                     "agent_no": "", "talk_seconds": 30 + n % 200, "hold_seconds": n % 7, "finalised": True})
    CallRecord.insert_many(rows).execute()


def slot_rows() -> tuple[set, set]:
    return (set(CallSlot.select(CallSlot.slot, CallSlot.direction, CallSlot.calls).tuples()),
            set(AgentCallSlot.select(AgentCallSlot.slot, AgentCallSlot.agent, AgentCallSlot.calls,
                                     AgentCallSlot.talk_seconds, AgentCallSlot.hold_seconds).tuples()))


def test_call_counts_rebuilt_from_a_day_and_whole(db, db_url, env):
    """Should recompute the counts since a local day (those before it untouched), then all of them (a
    count where no record is removed), matching the records; a second run changes nothing."""
    agents = [User.create(operator_no=f"20{n}", name=f"座席{n}", password_hash="!", roles="agent") for n in range(3)]
    start = dt.datetime(2026, 3, 1, 16, 0)  # Shanghai's midnight of 2 March
    _records(agents, start, days=20)
    assert aggregates.differences()  # written without the recorder: not counted yet
    early = dt.datetime(2026, 3, 3, 4, 0)
    CallSlot.insert(slot=early, direction="inbound", calls=99).execute()  # before the day given: kept
    status, out = run(db, db_url, "calls", "--since", "2026-03-10")
    assert status == 0, out
    assert "calls / 来电计数:" in out and "days / 天" in out and "calls rebuilt:" in out
    since = dt.datetime(2026, 3, 9, 16, 0)
    assert CallSlot.get(CallSlot.slot == early).calls == 99
    differing = [dt.datetime.strptime(" ".join(line.split()[1:3]), "%Y-%m-%d %H:%M")
                 for line in aggregates.differences()]
    assert differing and max(differing) < since <= min(CallSlot.select(CallSlot.slot).where(
        CallSlot.slot >= since).tuples())[0]
    assert CallSlot.select().where(CallSlot.slot < since).count() == 1
    CallSlot.insert(slot=dt.datetime(2027, 1, 1), direction="outbound", calls=5).execute()  # no record there
    assert run(db, db_url, "calls")[0] == 0
    assert aggregates.differences() == []
    kept = slot_rows()
    assert run(db, db_url, "calls")[0] == 0
    assert slot_rows() == kept


def test_all_and_a_bad_day(db, db_url, env):
    """Should rebuild both by default, and refuse a malformed day with exit status 2 and a clear message."""
    status, out = run(db, db_url, "--since", "2026-13-01")
    assert status == 2 and "YYYY-MM-DD" in out and "2026-13-01" in out
    status, out = run(db, db_url)
    assert status == 0 and "calls rebuilt: 0" in out and "hotspot index rebuilt: 0 tickets" in out


def test_progress_at_most_every_interval():
    """Should print a line when the interval has passed and the final one always, with the share done."""
    moments = iter([0.0, 0.5, 1.0, 2.5, 3.0, 3.1, 3.2])
    out = io.StringIO()
    show = reindex.Progress("x", out, every=2.0, clock=lambda: next(moments))
    show(1, 10, "t")  # 0.5 s after the start: too soon
    show(2, 10, "t")  # 1.0
    show(5, 10, "t")  # 2.5: shown
    show(6, 10, "t")  # 3.0: too soon after the last
    show(10, 10, "t", final=True)
    show(10, 10, "t", final=True)  # the same final figures again: not repeated
    assert out.getvalue().splitlines() == ["x: 5 / 10 t (50%), 2 s", "x: 10 / 10 t (100%), 3 s"]


def test_handling_durations_and_day_counts_rebuilt(db, db_url, env):
    """Should derive the kept handling durations and the tickets per day and value of tickets written around
    the workflow (an import), with progress shown; a second run changes nothing."""
    from caseflow import daycounts, durations
    from caseflow.models import Department, TicketDayCount, TicketDuration, TicketHistory

    unit = Department.create(code="D1", name="东区", level=2, path="/")
    day = dt.datetime(2026, 3, 1, 16, 0)
    for n in range(30):
        t = Ticket.create(number=f"{70000000 + n:08d}", department=unit, status="closed", created_at=day,
                          updated_at=day, dispatched_at=day + dt.timedelta(hours=1),
                          replied_at=day + dt.timedelta(hours=2 + n), closed_at=day + dt.timedelta(hours=30 + n))
        TicketHistory.create(ticket=t, action="accept", at=day + dt.timedelta(hours=1, minutes=n), department=unit)
    assert durations.differences()
    status, out = run(db, db_url, "durations")
    assert status == 0, out
    assert "durations / 办理时长:" in out and "durations rebuilt: 90 rows" in out
    assert durations.differences() == []
    kept = lambda: set(TicketDuration.select(TicketDuration.ticket, TicketDuration.stage,  # noqa: E731
                                             TicketDuration.hours).tuples())
    before = kept()
    assert run(db, db_url, "durations")[0] == 0
    assert kept() == before
    assert daycounts.differences()
    status, out = run(db, db_url, "daycounts")
    kept = TicketDayCount.select().count()  # one creation day: closed, "", "", normal, the unit, "" (no recorder);
    # 办结 on 3 days
    assert status == 0 and kept == 9 and f"day counts rebuilt: {kept} rows" in out, out
    assert daycounts.differences() == []
