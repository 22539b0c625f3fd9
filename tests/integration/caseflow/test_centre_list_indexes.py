"""The centre desk's lists and the big screen's district overdue count read from indexes (migration 0025, issue 15
item 7; the overdue list's, 0026): each list in its order from a partial index over its own tickets, the counts and
the screen's count without reading the table whole."""
from __future__ import annotations

import datetime as dt
import itertools

import pytest

from caseflow import services
from caseflow import workflow as wf
from caseflow.models import CENTRE_INDEXES, OVERDUE_INDEX, Ticket
from core.clock import FixedClock
from core.db import is_postgres
from stats import queries, screen
from tests.integration.caseflow.test_public_indexes import _indexes, _statements, migrated_once
from tests.integration.caseflow.test_ticket_indexes import _plan

NUMBERS = itertools.count(41_000_000)
NOW = dt.datetime(2026, 3, 4, 10, 0)
CLOCK = FixedClock(NOW.replace(tzinfo=dt.timezone.utc))


def _ticket(department, status, **fields):
    return Ticket.create(number=str(next(NUMBERS)), title="占道经营", content="占道经营", department=department,
                         status=status, created_at=NOW, updated_at=NOW, **fields)


def _seed(o):
    """Tickets in each list, and more in none of them; the overdue ones past their deadline (the 0th is due now),
    half of them flagged by the sweep."""
    for n in range(6):
        day = dt.timedelta(days=n)
        _ticket(None, wf.RECORDED, urgency="urgent" if n % 2 else "normal")
        _ticket(None, wf.RETURNED, channel="mailbox")
        _ticket(o.east, wf.REPLIED, replied_at=NOW - day, deadline=NOW + day)
        _ticket(o.east_street, wf.IN_PROGRESS, deadline=NOW - day, overdue=n % 2 == 0, supervised=bool(n % 2),
                extension_until=NOW + day if n % 3 == 0 else None)
        _ticket(o.west, wf.CLOSED, deadline=NOW - day, closed_at=NOW)
    db = Ticket._meta.database
    db.execute_sql("ANALYZE ticket")  # this schema's table, not every one in the database


def _ticket_plans(db, monkeypatch, call, *, ordered: bool = False) -> list[str]:
    """The plans of the ticket reads ``call`` runs; ``ordered``: PostgreSQL also told to avoid a sort where an
    index gives the order (with a few rows it sorts them)."""
    with _statements(db, monkeypatch) as seen:
        with db.atomic() as transaction:
            call()
            transaction.rollback()
    reads = [(sql, params) for sql, params in seen if 'FROM "ticket"' in sql and sql.lstrip().startswith("SELECT")]
    if not ordered or not is_postgres(db):
        return [_plan(db, sql, params) for sql, params in reads]
    with db.atomic():
        db.execute_sql("SET LOCAL enable_sort = off")
        return [_plan(db, sql, params) for sql, params in reads]


@pytest.mark.parametrize("kind", ["to_dispatch", "to_review", "overdue", "supervised", "extensions", "mailbox"])
def test_each_centre_list_reads_its_index(org_setup, db, monkeypatch, kind):
    """Should read the centre's list from its partial index, on PostgreSQL in the list's order (no sort; SQLite
    with a few rows may sort them, and reads the mailbox's from the channel's index), and list the same tickets
    in that order."""
    o = org_setup
    _seed(o)
    plans = _ticket_plans(db, monkeypatch, lambda: services.centre_queue(o.centre_user, kind, clock=CLOCK),
                          ordered=True)
    index = OVERDUE_INDEX if kind == "overdue" else f"ticket_centre_{kind}"
    if is_postgres(db) or kind != "mailbox":
        assert len(plans) == 1 and index in plans[0], plans
    if is_postgres(db) and kind == "overdue":  # the page's ids from the index's entries alone, then their rows
        assert f"Index Only Scan using {index}" in plans[0] and "ticket_deadline_set" not in plans[0], plans
    elif is_postgres(db):
        assert "Sort" not in plans[0], plans
    cond, order = services._centre_list(kind, NOW)
    expected = [t.id for t in Ticket.select(Ticket.id).where(cond).order_by(*order)]
    assert [t.id for t in services.centre_queue(o.centre_user, kind, clock=CLOCK)] == expected and expected
    if kind == "overdue":  # past the deadline, swept or not
        assert len(expected) == 5 and {t.overdue for t in Ticket.select().where(Ticket.id.in_(expected))} == \
            {True, False}


def test_queue_counts_count_each_list_up_to_the_cap(org_setup, db, monkeypatch):
    """Should count each list's tickets, up to QUEUE_COUNT_CAP, without reading the wide rows."""
    o = org_setup
    _seed(o)
    counts = services.queue_counts(o.centre_user, CLOCK)
    assert {k: counts[k] for k in ("to_dispatch", "to_review", "overdue", "supervised", "extensions")} == \
        {"to_dispatch": 12, "to_review": 6, "overdue": 5, "supervised": 3, "extensions": 2}
    assert counts["deferred"] == 0 and counts["mailbox"] == 6
    monkeypatch.setattr(services, "QUEUE_COUNT_CAP", 4)
    assert services.queue_counts(o.centre_user)["to_dispatch"] == 4
    with pytest.raises(wf.PermissionDenied):
        services.queue_counts(o.east_user)


def test_the_screens_district_overdue_count_reads_the_held_index(org_setup, db, monkeypatch):
    """Should count a district's overdue tickets from ticket_held_status_deadline (the subtree's) and the
    handed-down ones from ticket_upper_department_set, never the whole table; each ticket once."""
    o = org_setup
    _seed(o)
    _ticket(o.west, wf.IN_PROGRESS, deadline=NOW - dt.timedelta(days=1), upper_department=o.east)  # handed out
    _ticket(o.east_street, wf.DISPATCHED, deadline=NOW - dt.timedelta(days=1), upper_department=o.east)  # and in
    _ticket(None, wf.DISPATCHED, deadline=NOW - dt.timedelta(days=1), upper_department=o.east)  # no holder
    # The city's other overdue tickets, so that reading every overdue ticket costs more than the district's own
    Ticket.insert_many([{"number": str(next(NUMBERS)), "title": "路灯", "content": "路灯", "department": o.bureau,
                         "status": wf.IN_PROGRESS, "deadline": NOW - dt.timedelta(hours=n), "created_at": NOW,
                         "updated_at": NOW} for n in range(1, 401)]).execute()
    db.execute_sql("ANALYZE ticket")
    scope = queries.Scope(o.east)
    plans = _ticket_plans(db, monkeypatch, lambda: screen.overdue_count(scope, NOW))
    assert len(plans) == 2 and "ticket_held_status_deadline" in plans[0], plans
    assert "ticket_upper_department_set" in plans[1], plans
    # 5 held overdue by the east street (n = 1..5: the 0th is due now) + 1 held + 2 handed down elsewhere
    assert screen.overdue_count(scope, NOW) == 5 + 1 + 2
    assert screen.overdue_count(queries.Scope(o.west), NOW) == 1
    assert screen.overdue_count(queries.Scope(None), NOW) == 5 + 3 + 400


def test_migration_builds_the_centre_indexes(db, monkeypatch):
    """Should build the centre lists' indexes on an existing database once; on PostgreSQL CONCURRENTLY outside
    any transaction (the ticket table writable meanwhile)."""
    from core.migrations import SchemaMigration

    step = "0025_centre_list_indexes"
    for name in CENTRE_INDEXES:
        db.execute_sql(f'DROP INDEX "{name}"')
    SchemaMigration.delete().where(SchemaMigration.name == step).execute()
    built = migrated_once(db, monkeypatch, step)
    assert set(CENTRE_INDEXES) <= _indexes(db, "ticket")
    if is_postgres(db):  # CONCURRENTLY: PostgreSQL refuses it inside a transaction
        mine = [(sql, inside) for sql, inside in built
                if sql.startswith("CREATE") and any(f'"{name}"' in sql for name in CENTRE_INDEXES)]
        assert len(mine) == len(CENTRE_INDEXES), mine
        assert all("CONCURRENTLY" in sql and not inside for sql, inside in mine), mine


def test_migration_0026_builds_the_overdue_index_in_place_of_0025s(db, monkeypatch):
    """Should build the handling tickets' deadline index and drop 0025's index over the swept ones on an existing
    database once; on PostgreSQL CONCURRENTLY outside any transaction."""
    from core.migrations import SchemaMigration

    step = "0026_overdue_index"
    db.execute_sql(f'DROP INDEX "{OVERDUE_INDEX}"')
    db.execute_sql('CREATE INDEX "ticket_centre_overdue" ON "ticket" ("deadline") '
                   "WHERE (\"overdue\" AND \"status\" IN ('dispatched', 'in_progress'))")
    SchemaMigration.delete().where(SchemaMigration.name == step).execute()
    built = migrated_once(db, monkeypatch, step)
    assert OVERDUE_INDEX in _indexes(db, "ticket") and "ticket_centre_overdue" not in _indexes(db, "ticket")
    if is_postgres(db):
        mine = [(sql.split(" ON ")[0], inside) for sql, inside in built
                if f'"{OVERDUE_INDEX}"' in sql or '"ticket_centre_overdue"' in sql]
        assert mine == [(f'CREATE INDEX CONCURRENTLY "{OVERDUE_INDEX}"', False),
                        ('DROP INDEX CONCURRENTLY IF EXISTS "ticket_centre_overdue"', False)], mine
