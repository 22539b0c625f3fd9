"""Each ticket's handling durations, kept as it moves (the handling-speed report reads them, issue 14).

One ``TicketDuration`` row per ticket, stage and department: hours from the dispatch to that department's
first acceptance (accept), from the dispatch to the reply (reply), from the creation to 办结 (close), with the
ticket's creation time copied for the report's period. The rows are what the report's direct query would
derive from the ticket and its history at this moment (``stage_rows``, the same SQL for both, so the figures
are equal to the last bit): ``keep`` recomputes one ticket's rows inside the workflow's transaction after each
transition (the only writer of the fields they depend on: department, dispatch, reply, close, status, the
acceptances); ``rebuild`` recomputes every ticket's (migration 0014, ``python -m stats.reindex durations``,
after tickets written around the workflow: an import, the benchmark's bulk history).
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional

from peewee import fn

from caseflow import workflow as wf
from caseflow.models import Ticket, TicketDuration, TicketHistory
from core.db import database, is_postgres, schema_change

CLOSED_STATUSES = (wf.CLOSED, wf.ARCHIVED)
REBUILD_STEP = 50_000  # ticket ids per transaction


def hours_sql(alias: str = "x") -> str:
    """Hours from ``alias``.a to ``alias``.b as the database computes them (SQLite: to the millisecond, so a
    bound of whole hours is exact; PostgreSQL: double precision, as the kept column holds it)."""
    if is_postgres():
        return f"CAST(EXTRACT(EPOCH FROM ({alias}.b - {alias}.a)) AS DOUBLE PRECISION) / 3600.0"
    return f"ROUND((julianday({alias}.b) - julianday({alias}.a)) * 86400.0, 3) / 3600.0"


def stage_queries(conditions: list, accept_conditions: list = ()) -> dict[str, object]:
    """Per stage the rows (t: ticket, c: created, d: department, a: from, b: to) of the tickets the peewee
    ``conditions`` on Ticket select; ``accept_conditions`` narrow the acceptances further (an index hint). A
    ticket accepted after its dispatch by two departments (passed down to a street) has a row for each."""
    accept = (TicketHistory.select(Ticket.id.alias("t"), Ticket.created_at.alias("c"),
                                   TicketHistory.department.alias("d"), Ticket.dispatched_at.alias("a"),
                                   fn.MIN(TicketHistory.at).alias("b"))
              .join(Ticket, on=(TicketHistory.ticket == Ticket.id))
              # the first acceptance after the ticket's (last) dispatch: one before it (a reopened ticket's
              # first round, a department that returned it) is not this dispatch's
              .where(TicketHistory.action == "accept", TicketHistory.at >= Ticket.dispatched_at, *conditions,
                     *accept_conditions)
              .group_by(Ticket.id, Ticket.created_at, TicketHistory.department, Ticket.dispatched_at))
    reply = Ticket.select(Ticket.id.alias("t"), Ticket.created_at.alias("c"), Ticket.department.alias("d"),
                          Ticket.dispatched_at.alias("a"), Ticket.replied_at.alias("b"))
    if conditions:
        reply = reply.where(*conditions)
    close = Ticket.select(Ticket.id.alias("t"), Ticket.created_at.alias("c"), Ticket.department.alias("d"),
                          Ticket.created_at.alias("a"), Ticket.closed_at.alias("b")).where(
        Ticket.status.in_(CLOSED_STATUSES), *conditions)
    return {"accept": accept, "reply": reply, "close": close}


def stage_rows(query) -> tuple[str, list]:
    """``query`` (a stage_queries one) as SQL giving (t, c, d, h): the rows with both moments and a
    department, ending at or after they start; h in hours (``hours_sql``)."""
    sql, params = query.sql()
    return (f"SELECT x.t AS t, x.c AS c, x.d AS d, {hours_sql()} AS h FROM ({sql}) AS x "
            f"WHERE x.d IS NOT NULL AND x.a IS NOT NULL AND x.b IS NOT NULL AND x.b >= x.a", list(params))


def _insert(condition) -> None:
    for stage, query in stage_queries([condition]).items():
        sql, params = stage_rows(query)
        database.execute_sql(f"INSERT INTO {TicketDuration._meta.table_name} "
                             f"(ticket_id, stage, department_id, created_at, hours) "
                             f"SELECT y.t, '{stage}', y.d, y.c, y.h FROM ({sql}) AS y", params)


def keep(ticket_ids: Iterable[int]) -> None:
    """Recompute the kept rows of these tickets (call inside the transaction that changed them)."""
    ids = [int(i) for i in ticket_ids]
    if not ids:
        return
    with database.atomic():
        TicketDuration.delete().where(TicketDuration.ticket.in_(ids)).execute()
        _insert(Ticket.id.in_(ids))


def rebuild(*, progress: Optional[Callable[[int, int], object]] = None, step: int = REBUILD_STEP) -> int:
    """Recompute every ticket's rows, ``step`` ticket ids per transaction (PostgreSQL: the table locked
    against the workflow's ``keep`` meanwhile, which then waits and writes after); ``progress(done, total)``
    after each. Running it again changes nothing. Returns the rows kept."""
    low, high = Ticket.select(fn.MIN(Ticket.id), fn.MAX(Ticket.id)).tuples().get()
    with schema_change():
        if is_postgres():
            database.execute_sql(f"LOCK TABLE {TicketDuration._meta.table_name} IN EXCLUSIVE MODE")
        stale = TicketDuration.ticket.is_null(False)
        if low is not None:
            stale = (TicketDuration.ticket < low) | (TicketDuration.ticket > high)
        TicketDuration.delete().where(stale).execute()
    if low is None:
        return 0
    first = low
    while first <= high:
        last = min(high, first + step - 1)
        with schema_change():  # a step of a million-ticket history outlasts a call's statement limit
            if is_postgres():
                database.execute_sql(f"LOCK TABLE {TicketDuration._meta.table_name} IN EXCLUSIVE MODE")
            TicketDuration.delete().where(TicketDuration.ticket.between(first, last)).execute()
            _insert(Ticket.id.between(first, last))
        if progress is not None:
            progress(last - low + 1, high - low + 1)
        first = last + 1
    return TicketDuration.select().count()


def differences(limit: int = 20) -> list[str]:
    """Where the kept rows differ from the tickets (empty when they agree): up to ``limit`` lines."""
    kept = set(TicketDuration.select(TicketDuration.ticket, TicketDuration.stage, TicketDuration.department,
                                     TicketDuration.hours).tuples())
    fresh = set()
    for stage, query in stage_queries([]).items():
        sql, params = stage_rows(query)
        fresh |= {(t, stage, d, h) for t, _c, d, h in database.execute_sql(sql, params)}
    only_kept, only_fresh = sorted(kept - fresh, key=str), sorted(fresh - kept, key=str)
    lines = [f"kept, not derived: {row}" for row in only_kept] + [f"derived, not kept: {row}" for row in only_fresh]
    return lines[:limit]

