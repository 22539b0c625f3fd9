"""Call counts kept as call records are finalised, so the calls and agents reports (issue 14) read a few
thousand quarter-hour rows instead of every record: 10 million records made a year's calls report take 20 s.

``CallSlot`` holds the finalised records per UTC quarter-hour of their start and direction; ``AgentCallSlot``
those with an agent per quarter-hour and agent (calls, talk and hold seconds). ``recorder.finalising``
applies each finalisation's change in the same transaction as the record (``apply``: a record finalised
again, with a later hang-up or the IVR's last word, first takes its earlier counts back). Records not
finalised yet are read as they are (``open_calls``), so the counts equal the records at every moment. A
quarter-hour because local days and hours begin on one in every zone in use (whole, half-hour and 45-minute
offsets alike).

``python -m recorder.aggregates rebuild`` recomputes both tables from the records (after a bulk import, or
to check them: ``check`` compares without changing anything).
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from peewee import fn

from core.db import database, is_postgres
from recorder.models import AgentCallSlot, CallRecord, CallSlot

SLOT_SECONDS = 15 * 60


def slot_of(moment: dt.datetime) -> dt.datetime:
    """The start of the UTC quarter-hour holding ``moment`` (naive UTC)."""
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


def direction_of(direction: str) -> str:
    """Everything but an outbound call counts as inbound (as the reports always read it)."""
    return "outbound" if direction == "outbound" else "inbound"


@dataclass(frozen=True)
class Counted:
    """What one finalised record adds: its slot, direction and, with an agent, the agent's figures."""

    slot: dt.datetime
    direction: str
    agent_id: Optional[int]
    talk_seconds: int
    hold_seconds: int


def counted(record: CallRecord) -> Optional[Counted]:
    """What ``record`` (as stored) adds to the counts: nothing until it is finalised."""
    if not record.finalised or record.started_at is None:
        return None
    return Counted(slot_of(record.started_at), direction_of(record.direction), record.agent_id,
                   int(record.talk_seconds or 0), int(record.hold_seconds or 0))


def stored_count(record_id: Optional[int]) -> Optional[Counted]:
    """What the stored row of ``record_id`` adds now (read before it is written again)."""
    if record_id is None:
        return None
    row = (CallRecord.select(CallRecord.id, CallRecord.finalised, CallRecord.started_at, CallRecord.direction,
                             CallRecord.agent, CallRecord.talk_seconds, CallRecord.hold_seconds)
           .where(CallRecord.id == record_id).first())
    return counted(row) if row is not None else None


def apply(before: Optional[Counted], after: Optional[Counted]) -> None:
    """Move the counts from ``before`` (the record as it was stored, or None) to ``after`` (as it is now
    written, or None): one upsert per row that changes, inside the caller's transaction."""
    calls: dict[tuple, int] = {}
    agents: dict[tuple, list[int]] = {}
    for sign, item in ((-1, before), (1, after)):
        if item is None:
            continue
        key = (item.slot, item.direction)
        calls[key] = calls.get(key, 0) + sign
        if item.agent_id is not None:
            figures = agents.setdefault((item.slot, item.agent_id), [0, 0, 0])
            figures[0] += sign
            figures[1] += sign * item.talk_seconds
            figures[2] += sign * item.hold_seconds
    for (slot, direction), change in calls.items():
        if change:
            (CallSlot.insert(slot=slot, direction=direction, calls=change)
             .on_conflict(conflict_target=[CallSlot.slot, CallSlot.direction],
                          update={CallSlot.calls: CallSlot.calls + change}).execute())
    for (slot, agent_id), (change, talk, hold) in agents.items():
        if change or talk or hold:
            (AgentCallSlot.insert(slot=slot, agent=agent_id, calls=change, talk_seconds=talk, hold_seconds=hold)
             .on_conflict(conflict_target=[AgentCallSlot.slot, AgentCallSlot.agent],
                          update={AgentCallSlot.calls: AgentCallSlot.calls + change,
                                  AgentCallSlot.talk_seconds: AgentCallSlot.talk_seconds + talk,
                                  AgentCallSlot.hold_seconds: AgentCallSlot.hold_seconds + hold}).execute())


# ------------------------------------------------------------------------------------------ reading
def _between(column, start: dt.datetime, end: dt.datetime):
    return (column >= start) & (column < end)


def open_calls(start: dt.datetime, end: dt.datetime):
    """The records started in [start, end) that are not finalised yet (the call_record_open index)."""
    return CallRecord.select().where(~CallRecord.finalised & _between(CallRecord.started_at, start, end))


def call_slots(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, str, int]]:
    """(quarter-hour or start time, direction, calls) of every call started in [start, end): the counted
    quarter-hours, then each record not finalised yet. ``start`` and ``end`` on quarter-hours (local days are)."""
    rows = [(_as_datetime(slot), direction, int(calls)) for slot, direction, calls in
            CallSlot.select(CallSlot.slot, CallSlot.direction, CallSlot.calls)
            .where(_between(CallSlot.slot, start, end) & (CallSlot.calls != 0)).tuples()]
    rows += [(started, direction_of(direction), 1) for started, direction in
             open_calls(start, end).select(CallRecord.started_at, CallRecord.direction).tuples()]
    return rows


def agent_calls(start: dt.datetime, end: dt.datetime) -> dict[int, tuple[int, float, float]]:
    """Per agent's user id: (calls, talk seconds, hold seconds) of the calls started in [start, end)."""
    out: dict[int, list[float]] = {}

    def add(agent_id, calls, talk, hold) -> None:
        figures = out.setdefault(agent_id, [0, 0.0, 0.0])
        figures[0] += int(calls or 0)
        figures[1] += float(talk or 0)
        figures[2] += float(hold or 0)

    for row in (AgentCallSlot.select(AgentCallSlot.agent, fn.SUM(AgentCallSlot.calls),
                                     fn.SUM(AgentCallSlot.talk_seconds), fn.SUM(AgentCallSlot.hold_seconds))
                .where(_between(AgentCallSlot.slot, start, end)).group_by(AgentCallSlot.agent).tuples()):
        add(*row)
    for row in (open_calls(start, end).select(CallRecord.agent, fn.COUNT(CallRecord.id),
                                              fn.SUM(CallRecord.talk_seconds), fn.SUM(CallRecord.hold_seconds))
                .where(CallRecord.agent.is_null(False)).group_by(CallRecord.agent).tuples()):
        add(*row)
    return {agent: (int(c), t, h) for agent, (c, t, h) in out.items() if c or t or h}


def _as_datetime(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return dt.datetime.fromisoformat(str(value))


# ---------------------------------------------------------------------------------------- rebuilding
def _slot_sql() -> str:
    if is_postgres():
        return ("(date_trunc('hour', started_at) + floor(date_part('minute', started_at) / 15) "
                "* interval '15 minutes')")
    return "datetime(CAST(strftime('%s', started_at) AS INTEGER) / 900 * 900, 'unixepoch')"


def computed(where: str = "") -> tuple[str, str]:
    """The two tables' contents as SELECT statements over the finalised records (``where``: a further
    condition on the records, e.g. a span of started_at)."""
    slot = _slot_sql()
    direction = "CASE WHEN direction = 'outbound' THEN 'outbound' ELSE 'inbound' END"
    also = f" AND {where}" if where else ""
    calls = (f"SELECT {slot} AS slot, {direction} AS direction, count(*) AS calls FROM call_record "
             f"WHERE finalised{also} GROUP BY 1, 2")
    agents = (f"SELECT {slot} AS slot, agent_id, count(*) AS calls, sum(talk_seconds) AS talk, "
              f"sum(hold_seconds) AS hold FROM call_record WHERE finalised AND agent_id IS NOT NULL{also} "
              f"GROUP BY 1, 2")
    return calls, agents


REBUILD_STEP = dt.timedelta(days=31)


def _rebuild_span(start: dt.datetime, end: dt.datetime) -> None:
    """Recompute the slots of [start, end) (on quarter-hours) from the records started in it, in one
    transaction (PostgreSQL: finalisations wait for it, then add their call to the new counts)."""
    param = database.param
    calls, agents = computed(f"started_at >= {param} AND started_at < {param}")
    span = (CallRecord.started_at.db_value(start), CallRecord.started_at.db_value(end))
    with database.atomic():
        if is_postgres():
            database.execute_sql("LOCK TABLE call_slot, agent_call_slot IN EXCLUSIVE MODE")
        CallSlot.delete().where(_between(CallSlot.slot, start, end)).execute()
        AgentCallSlot.delete().where(_between(AgentCallSlot.slot, start, end)).execute()
        database.execute_sql(f"INSERT INTO call_slot (slot, direction, calls) {calls}", span)
        database.execute_sql(f"INSERT INTO agent_call_slot (slot, agent_id, calls, talk_seconds, hold_seconds) "
                             f"{agents}", span)


def rebuild(since: Optional[dt.datetime] = None, *,
            progress: Optional[Callable[[dt.datetime, dt.datetime, dt.datetime], object]] = None,
            step: dt.timedelta = REBUILD_STEP) -> tuple[int, int]:
    """Recompute both tables from the finalised records started since ``since`` (naive UTC; None: all of
    them, and counts kept for a time without records are removed), ``step`` of records per transaction;
    ``progress(done_until, first, last)`` after each. Running it again changes nothing. Returns the tables'
    row counts."""
    first_record, last_record = CallRecord.select(fn.MIN(CallRecord.started_at),
                                                  fn.MAX(CallRecord.started_at)).tuples().get()
    start = slot_of(since) if since is not None else (
        slot_of(_as_datetime(first_record)) if first_record is not None else None)
    end = (slot_of(_as_datetime(last_record)) + dt.timedelta(seconds=SLOT_SECONDS)
           if last_record is not None else None)
    with database.atomic():
        if is_postgres():
            database.execute_sql("LOCK TABLE call_slot, agent_call_slot IN EXCLUSIVE MODE")
        for model in (CallSlot, AgentCallSlot):  # counts where no record is: outside the span rebuilt below
            stale = model.slot >= end if end is not None else model.slot.is_null(False)
            if since is None and start is not None:
                stale = stale | (model.slot < start)
            elif since is not None:
                stale = stale & (model.slot >= start)
            model.delete().where(stale).execute()
    if start is not None and end is not None:
        moment = start
        while moment < end:
            upto = min(end, moment + step)
            _rebuild_span(moment, upto)
            moment = upto
            if progress is not None:
                progress(moment, start, end)
    return CallSlot.select().count(), AgentCallSlot.select().count()


def differences() -> list[str]:
    """Where the kept counts differ from the records (empty when they agree): one line per row."""
    calls, agents = computed()
    want = {(_as_datetime(s), d): int(c) for s, d, c in database.execute_sql(calls)}
    have = {(_as_datetime(s), d): int(c) for s, d, c in
            CallSlot.select(CallSlot.slot, CallSlot.direction, CallSlot.calls).where(CallSlot.calls != 0).tuples()}
    out = [f"call_slot {key[0]:%Y-%m-%d %H:%M} {key[1]}: kept {have.get(key, 0)}, records {want.get(key, 0)}"
           for key in sorted(set(want) | set(have)) if want.get(key, 0) != have.get(key, 0)]
    want_a = {(_as_datetime(s), a): (int(c), int(t or 0), int(h or 0))
              for s, a, c, t, h in database.execute_sql(agents)}
    have_a = {(_as_datetime(s), a): (int(c), int(t), int(h)) for s, a, c, t, h in
              AgentCallSlot.select(AgentCallSlot.slot, AgentCallSlot.agent, AgentCallSlot.calls,
                                   AgentCallSlot.talk_seconds, AgentCallSlot.hold_seconds).tuples()
              if (c, t, h) != (0, 0, 0)}
    out += [f"agent_call_slot {key[0]:%Y-%m-%d %H:%M} agent {key[1]}: kept {have_a.get(key, (0, 0, 0))}, "
            f"records {want_a.get(key, (0, 0, 0))}"
            for key in sorted(set(want_a) | set(have_a)) if want_a.get(key, (0, 0, 0)) != have_a.get(key, (0, 0, 0))]
    return out


def main(argv: Iterable[str] | None = None, out=None) -> int:
    """``rebuild`` or ``check``; exit status 0, 1 when ``check`` finds differences, 2 when it cannot run."""
    from core.db import bind_for_command

    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="python -m recorder.aggregates",
                                     description="Recompute or check the calls counted per quarter-hour.")
    parser.add_argument("command", choices=("rebuild", "check"))
    parser.add_argument("--database-url", help="the database (default: the configured one)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    db = bind_for_command(args.database_url, out)
    if db is None:
        return 2
    with db.connection_context():
        if args.command == "rebuild":
            slots, agent_slots = rebuild()
            print(f"rebuilt: {slots} quarter-hours x direction, {agent_slots} quarter-hours x agent / "
                  f"已重建 {slots} 条来电计数、{agent_slots} 条座席计数", file=out)
            return 0
        problems = differences()
    for line in problems:
        print(line, file=out)
    print(f"{len(problems)} differences / {len(problems)} 处不一致", file=out)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
