"""The day counts' updates (migration 0028, issue 15 item 7): no index holds the count, so PostgreSQL adds to a
count in place (a HOT update: no index entry, no dead row left for VACUUM), on both databases; the migration puts
an existing database's covering index away once."""
from __future__ import annotations

import datetime as dt

from caseflow import daycounts, services
from caseflow.models import TicketDayCount
from core.clock import FixedClock
from core.db import is_postgres
from hotline.migrations import DAY_COUNT_INDEX
from tests.integration.caseflow.test_public_indexes import _indexes, migrated_once

OLD = "ticket_day_count_dimension_day_value_tickets"


def _indexed_columns(db) -> set[str]:
    return {column for index in db.get_indexes(TicketDayCount._meta.table_name) for column in index.columns}


def test_no_index_holds_the_count(db):
    """Should index the counts by (day, dimension, value) and (dimension, day, value), neither with the count."""
    assert {DAY_COUNT_INDEX, "ticket_day_count_day_dimension_value"} <= _indexes(db, "ticket_day_count")
    assert OLD not in _indexes(db, "ticket_day_count")
    assert "tickets" not in _indexed_columns(db)


def test_a_second_ticket_of_the_day_adds_in_place(org_setup, db):
    """Should add a day's second ticket to its six counts without a new index entry (PostgreSQL: every update of
    the counts in the transaction is HOT), the reports reading both tickets."""
    clock = FixedClock(dt.datetime(2026, 3, 4, 10, 0))
    day = dt.date(2026, 3, 4)
    with db.atomic() as transaction:
        for phone in ("13800000001", "13800000002"):
            services.create_ticket("路灯不亮", citizen_phone=phone, created_by=org_setup.agent, clock=clock)
        assert daycounts.counts("urgency", day, day + dt.timedelta(days=1)) == {"normal": 2}
        if is_postgres(db):
            updated, hot = db.execute_sql(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
                "WHERE relid = 'ticket_day_count'::regclass").fetchone()
            assert updated >= 6 and hot == updated, (updated, hot)
        transaction.rollback()


def test_migration_puts_the_covering_index_away(db, monkeypatch):
    """Should replace an existing database's (dimension, day, value, tickets) index once (0028); on PostgreSQL
    built and dropped CONCURRENTLY outside any transaction, the counts writable meanwhile."""
    from core.migrations import SchemaMigration

    step = "0028_day_count_updates_hot"
    db.execute_sql(f'DROP INDEX "{DAY_COUNT_INDEX}"')
    db.execute_sql(f'CREATE INDEX "{OLD}" ON "ticket_day_count" ("dimension", "day", "value", "tickets")')
    SchemaMigration.delete().where(SchemaMigration.name == step).execute()
    built = migrated_once(db, monkeypatch, step)
    assert DAY_COUNT_INDEX in _indexes(db, "ticket_day_count") and OLD not in _indexes(db, "ticket_day_count")
    assert "tickets" not in _indexed_columns(db)
    if is_postgres(db):
        mine = [(sql, inside) for sql, inside in built if f'"{DAY_COUNT_INDEX}"' in sql or f'"{OLD}"' in sql]
        assert len(mine) == 2 and all("CONCURRENTLY" in sql and not inside for sql, inside in mine), mine
