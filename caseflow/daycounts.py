"""Tickets per UTC day and value, kept as tickets are recorded, move and are edited (issue 14): by the day of
their creation per status (now), category, region, urgency, department and recording user (the region,
category, status, urgency, departments and agents reports), by the day of 办结 per department, and by the
day of the deadline per department and whether they were replied by it, after it or not yet (the
departments report).

A report's period runs from a local midnight to a local midnight in HOTLINE_TZ, which in UTC falls anywhere
(half-hour zones included): the whole UTC days inside it are read from these counts and the two partial days
at its ends from the tickets themselves (``stats.report_queries.tickets_by``), so the zone may change without
rebuilding anything. Kept by the one writer of each field: ``recorded`` in ``services.create_ticket``,
``changed`` in ``transitions.transition`` (status, department, deadline, reply, close) and
``services.edit_ticket`` (category, region, urgency), each inside the ticket's transaction, by an upsert
adding to the count (concurrent writers add, never overwrite).
``rebuild`` counts again from the tickets (migrations 0016-0017, ``python -m stats.reindex daycounts``, after
tickets written around the workflow: an import, the benchmark's bulk history).
"""
from __future__ import annotations

import datetime as dt
from peewee import EXCLUDED, fn

from caseflow import workflow as wf
from caseflow.durations import CLOSED_STATUSES
from caseflow.models import Ticket, TicketDayCount
from core.db import database, is_postgres, schema_change
from core.statements import execute_insert

DIMENSIONS = ("status", "category", "region", "urgency")  # the dimension reports', by the creation's day
DEPARTMENT, CLOSED, DEADLINE = "dept", "closed", "deadline"  # the departments report's (volume by the creation's
# day; 办结 by the close's day; by the deadline's day, whether replied by it, after it or not yet)
CREATOR = "creator"  # the agents report's tickets recorded per user, by the creation's day


def entries(ticket: Ticket) -> set[tuple[dt.date, str, str]]:
    """What the ticket counts for: (day, dimension, value) each once (ids as text, "" for none)."""
    created = _day(ticket.created_at)
    department = str(ticket.department_id or "")
    out = {(created, "status", ticket.status or ""), (created, "category", str(ticket.category_id or "")),
           (created, "region", str(ticket.region_id or "")), (created, "urgency", ticket.urgency or ""),
           (created, DEPARTMENT, department), (created, CREATOR, str(ticket.created_by_id or ""))}
    if ticket.status in CLOSED_STATUSES and ticket.closed_at is not None:
        out.add((_day(ticket.closed_at), CLOSED, department))
    if ticket.status != wf.MERGED and ticket.deadline is not None:
        state = _deadline_state(ticket.replied_at, ticket.deadline)
        out.add((_day(ticket.deadline), DEADLINE, f"{department}:{state}"))
    return out


def _deadline_state(replied, deadline) -> str:
    if replied is None:
        return "open"
    return "on_time" if _moment(replied) <= _moment(deadline) else "late"


def _moment(value) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


def _day(moment) -> dt.date:
    return _moment(moment).date()


def _add(rows: list[tuple[dt.date, str, str, int]]) -> None:
    """One statement for all of a ticket's count changes (a round trip each cost a new ticket 6-7 more): its
    VALUES in the order given, which is the order PostgreSQL takes the rows' locks in."""
    if not rows:
        return
    data = [dict(zip(ROW_FIELDS, row)) for row in rows]

    def build():
        return (TicketDayCount.insert_many(data)
                .on_conflict(conflict_target=[TicketDayCount.day, TicketDayCount.dimension, TicketDayCount.value],
                             update={TicketDayCount.tickets: TicketDayCount.tickets + EXCLUDED.tickets})
                .returning())  # nothing back (PostgreSQL's peewee would add RETURNING id)

    execute_insert(TicketDayCount, data, "add", build)  # the text built once per row count (core.statements)


ROW_FIELDS = ("day", "dimension", "value", "tickets")  # a count row's order (_add, changes, caseflow.new_ticket)


def recorded(ticket: Ticket) -> None:
    """Count a new ticket (inside its transaction, as late as it can: PostgreSQL keeps the rows it adds to
    locked until the commit)."""
    changed(ticket, set())


def changed(ticket: Ticket, before: set) -> None:
    """Move a ticket's counts from ``before`` (its ``entries`` before the change) to its entries now. The rows
    in one order for every writer (sorted): two transactions never wait for each other's rows in a cycle.
    ``before`` and the entries now are sets, so no row comes twice in the one statement (PostgreSQL refuses an
    upsert touching a row twice)."""
    _add(changes(ticket, before))


def changes(ticket: Ticket, before: set) -> list[tuple[dt.date, str, str, int]]:
    """``changed``'s rows (day, dimension, value, change), sorted; ``before`` empty for a new ticket (whose
    counts caseflow.new_ticket adds in the ticket's own statement on PostgreSQL)."""
    after = entries(ticket)
    return [(*entry, change) for entry, change in
            sorted([(e, -1) for e in before - after] + [(e, 1) for e in after - before])]


def counts(dimension: str, first: dt.date, end: dt.date) -> dict[str, int]:
    """Tickets per value of ``dimension`` created on the UTC days [first, end)."""
    return {value: int(total) for value, total in
            TicketDayCount.select(TicketDayCount.value, fn.SUM(TicketDayCount.tickets))
            .where((TicketDayCount.dimension == dimension) & (TicketDayCount.day >= first)
                   & (TicketDayCount.day < end))
            .group_by(TicketDayCount.value).tuples() if total}


def _computed() -> list[str]:
    """Every dimension's counts as SELECT statements over the tickets (``entries``, in SQL)."""
    def day(column):
        return f"CAST({column} AS DATE)" if is_postgres() else f"date({column})"

    def text(column):
        return f"COALESCE(CAST({column} AS VARCHAR(24)), '')"

    table = Ticket._meta.table_name
    created = {"status": "status", "urgency": "urgency", "category": text("category_id"),
               "region": text("region_id"), DEPARTMENT: text("department_id"), CREATOR: text("created_by_id")}
    selects = [f"SELECT {day('created_at')} AS day, '{dimension}' AS dimension, {value} AS value, "
               f"COUNT(*) AS tickets FROM {table} GROUP BY 1, 3" for dimension, value in created.items()]
    closed = ", ".join(f"'{status}'" for status in CLOSED_STATUSES)
    selects.append(f"SELECT {day('closed_at')}, '{CLOSED}', {text('department_id')}, COUNT(*) FROM {table} "
                   f"WHERE status IN ({closed}) AND closed_at IS NOT NULL GROUP BY 1, 3")
    state = ("CASE WHEN replied_at IS NULL THEN 'open' WHEN replied_at <= deadline THEN 'on_time' "
             "ELSE 'late' END")
    selects.append(f"SELECT {day('deadline')}, '{DEADLINE}', {text('department_id')} || ':' || {state}, COUNT(*) "
                   f"FROM {table} WHERE status <> '{wf.MERGED}' AND deadline IS NOT NULL GROUP BY 1, 3")
    return selects


def rebuild() -> int:
    """Count every ticket again in one transaction (PostgreSQL: the table locked against the writers, who
    then wait and add to the new counts). Running it again changes nothing. Returns the rows kept."""
    table = TicketDayCount._meta.table_name
    with schema_change():
        if is_postgres():
            database.execute_sql(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        TicketDayCount.delete().execute()
        for select in _computed():
            database.execute_sql(f"INSERT INTO {table} (day, dimension, value, tickets) {select}")
    return TicketDayCount.select().count()


def differences(limit: int = 20) -> list[str]:
    """Where the kept counts differ from the tickets (empty when they agree): up to ``limit`` lines."""
    kept = {(_day(d), k, v): n for d, k, v, n in TicketDayCount.select(
        TicketDayCount.day, TicketDayCount.dimension, TicketDayCount.value, TicketDayCount.tickets).tuples() if n}
    fresh = {}
    for select in _computed():
        for d, k, v, n in database.execute_sql(select):
            fresh[(_day(d), k, v)] = int(n)
    keys = sorted(set(kept) | set(fresh), key=str)
    return [f"{key}: kept {kept.get(key, 0)}, tickets {fresh.get(key, 0)}" for key in keys
            if kept.get(key, 0) != fresh.get(key, 0)][:limit]
