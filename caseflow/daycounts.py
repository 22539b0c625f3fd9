"""Tickets per UTC day of their creation and per value of status (now), category, region and urgency, kept as
tickets are recorded, move and are edited (the region, category, status and urgency reports, issue 14).

A report's period runs from a local midnight to a local midnight in HOTLINE_TZ, which in UTC falls anywhere
(half-hour zones included): the whole UTC days inside it are read from these counts and the two partial days
at its ends from the tickets themselves (``stats.report_queries.tickets_by``), so the zone may change without
rebuilding anything. Kept by the one writer of each field: ``recorded`` in ``services.create_ticket``,
``changed`` in ``transitions.transition`` (status) and ``services.update`` (category, region, urgency), each
inside the ticket's transaction, by an upsert adding to the count (concurrent writers add, never overwrite).
``rebuild`` counts again from the tickets (migration 0016, ``python -m stats.reindex daycounts``, after
tickets written around the workflow: an import, the benchmark's bulk history).
"""
from __future__ import annotations

import datetime as dt
from typing import Mapping

from peewee import EXCLUDED, fn

from caseflow.models import Ticket, TicketDayCount
from core.db import database, is_postgres, schema_change

DIMENSIONS = ("status", "category", "region", "urgency")


def values_of(ticket: Ticket) -> dict[str, str]:
    """The ticket's counted values (ids as text, "" for none)."""
    return {"status": ticket.status or "", "category": str(ticket.category_id or ""),
            "region": str(ticket.region_id or ""), "urgency": ticket.urgency or ""}


def _day(created) -> dt.date:
    if isinstance(created, dt.datetime):
        return created.date()
    return dt.datetime.fromisoformat(str(created)).date()


def _add(day: dt.date, dimension: str, value: str, tickets: int) -> None:
    (TicketDayCount.insert(day=day, dimension=dimension, value=value, tickets=tickets)
     .on_conflict(conflict_target=[TicketDayCount.day, TicketDayCount.dimension, TicketDayCount.value],
                  update={TicketDayCount.tickets: TicketDayCount.tickets + EXCLUDED.tickets}).execute())


def recorded(ticket: Ticket) -> None:
    """Count a new ticket (inside its transaction)."""
    day = _day(ticket.created_at)
    for dimension, value in values_of(ticket).items():
        _add(day, dimension, value, 1)


def changed(ticket: Ticket, before: Mapping[str, str]) -> None:
    """Move a ticket's counts from ``before`` (``values_of`` it before the change) to its values now."""
    day = _day(ticket.created_at)
    for dimension, value in values_of(ticket).items():
        if before[dimension] != value:
            _add(day, dimension, before[dimension], -1)
            _add(day, dimension, value, 1)


def counts(dimension: str, first: dt.date, end: dt.date) -> dict[str, int]:
    """Tickets per value of ``dimension`` created on the UTC days [first, end)."""
    return {value: int(total) for value, total in
            TicketDayCount.select(TicketDayCount.value, fn.SUM(TicketDayCount.tickets))
            .where((TicketDayCount.dimension == dimension) & (TicketDayCount.day >= first)
                   & (TicketDayCount.day < end))
            .group_by(TicketDayCount.value).tuples() if total}


def _computed() -> list[str]:
    day = "CAST(created_at AS DATE)" if is_postgres() else "date(created_at)"
    text = {"status": "status", "urgency": "urgency",
            "category": "COALESCE(CAST(category_id AS VARCHAR(24)), '')",
            "region": "COALESCE(CAST(region_id AS VARCHAR(24)), '')"}
    return [f"SELECT {day} AS day, '{dimension}' AS dimension, {text[dimension]} AS value, COUNT(*) AS tickets "
            f"FROM {Ticket._meta.table_name} GROUP BY 1, 3" for dimension in DIMENSIONS]


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
