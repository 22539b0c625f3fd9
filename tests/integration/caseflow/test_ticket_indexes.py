"""The ticket's indexes over columns a new ticket leaves empty (migration 0024, issue 15 item 7): partial, so a
creation writes no entry in them, and still what the reads that name those columns walk, on both databases."""
from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest

from caseflow import jobs, services
from caseflow import workflow as wf
from caseflow.models import Ticket
from core.clock import FixedClock
from core.db import is_postgres
from hotline.migrations import HELD_INDEXES
from stats import queries, screen
from tests.integration.caseflow.test_public_indexes import _indexes, _statements, migrated_once

NUMBERS = itertools.count(40_000_000)
NOW = dt.datetime(2026, 3, 4, 10, 0)


def _definitions(db) -> dict[str, str]:
    if is_postgres(db):
        return dict(db.execute_sql("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                                   "AND tablename = 'ticket'").fetchall())
    return dict(db.execute_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ticket' "
                               "AND sql IS NOT NULL").fetchall())


def test_a_new_ticket_enters_none_of_the_partial_indexes(org_setup, db):
    """Should keep the department's, handler's, deadline's, closing time's, reminder's, upper department's and
    master's indexes to the tickets where the column is set, and record a ticket with all of them empty (so its
    creation writes no entry in those indexes); the department's and the status's own indexes are gone."""
    definitions = _definitions(db)
    for name in HELD_INDEXES:
        lead = re.search(r'\(\s*"?(\w+)"?', definitions[name].split(" ON ")[1]).group(1)
        column = "department_id" if name in ("ticket_workbench_held", "ticket_held_status_deadline") else lead
        assert re.search(rf'WHERE \(+"?{column}"? IS NOT NULL\)', definitions[name]), definitions[name]
    assert not {"ticket_department_id", "ticket_status", "ticket_deadline", "ticket_workbench"} & set(definitions)
    ticket = Ticket.get_by_id(services.create_ticket("路灯不亮", citizen_phone="13800000001",
                                                     created_by=org_setup.agent).id)
    assert [ticket.department_id, ticket.handler_id, ticket.deadline, ticket.closed_at, ticket.remind_at,
            ticket.upper_department_id, ticket.master_id] == [None] * 7


def _plan(db, sql, params) -> str:
    """The plan of ``sql`` as text, PostgreSQL told to use an index where one serves (a table this small is read
    whole otherwise)."""
    if not is_postgres(db):
        return " / ".join(str(row[-1]) for row in db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall())
    with db.atomic():
        db.execute_sql("SET LOCAL enable_seqscan = off")
        plan = " / ".join(row[0] for row in db.execute_sql("EXPLAIN " + sql.split("; ")[-1], params))
    return plan


def _ticket(department, status, **fields):
    return Ticket.create(number=str(next(NUMBERS)), title="占道经营", content="占道经营", department=department,
                         status=status, created_at=NOW, updated_at=NOW, **fields)


@pytest.mark.parametrize("read, index", [
    ("workbench", "ticket_workbench_held"),
    ("reminders", "ticket_remind_at_set"),
    ("closed", "ticket_closed_set"),
    ("handed down", "ticket_upper_department_set"),
])
def test_the_reads_walk_the_partial_indexes(org_setup, db, monkeypatch, read, index):
    """Should read a department's workbench, the reminders due, the cases closed in a period and the tickets a
    subtree handed down from the partial indexes (their conditions compare the column, which says it is set)."""
    o = org_setup
    for n in range(6):
        _ticket(o.east, wf.DISPATCHED, deadline=NOW + dt.timedelta(days=n), remind_at=NOW - dt.timedelta(hours=n),
                closed_at=NOW - dt.timedelta(days=n), upper_department=o.east if n % 2 else None)
        _ticket(None, wf.RECORDED)
    db.execute_sql("ANALYZE ticket")  # this schema's table, not every one in the database
    clock = FixedClock(NOW)
    calls = {"workbench": lambda: services.department_queue(o.east_user, limit=5),
             "reminders": lambda: jobs.fire_reminders(clock),
             "closed": lambda: screen.closed_count(queries.Scope(None), NOW - dt.timedelta(days=3), NOW),
             "handed down": lambda: list(Ticket.select(Ticket.id).where(Ticket.upper_department.in_([o.east.id])))}
    with _statements(db, monkeypatch) as seen:
        with db.atomic() as transaction:
            calls[read]()
            transaction.rollback()
    reads = [(sql, params) for sql, params in seen if 'FROM "ticket"' in sql and sql.lstrip().startswith("SELECT")]
    plans = [_plan(db, sql, params) for sql, params in reads]
    assert any(index in plan for plan in plans), plans
    assert index in _indexes(db, "ticket")


OLD = {"ticket_workbench": '"department_id", "status", "overdue" DESC, ("deadline" IS NULL), "deadline", "id"',
       "ticket_department_id_status_deadline": '"department_id", "status", "deadline"',
       "ticket_closed_at_status": '"closed_at", "status"', "ticket_deadline": '"deadline"',
       "ticket_remind_at": '"remind_at"', "ticket_upper_department_id": '"upper_department_id"',
       "ticket_handler_id": '"handler_id"', "ticket_master_id": '"master_id"',
       "ticket_department_id": '"department_id"', "ticket_status": '"status"'}


def test_migration_makes_the_indexes_partial(db, monkeypatch):
    """Should replace an existing database's full indexes over those columns once (0024: the partial ones take
    their place, the department's and the status's own go); on PostgreSQL built and dropped CONCURRENTLY
    outside any transaction, the ticket table writable meanwhile."""
    from core.migrations import SchemaMigration

    step = "0024_ticket_indexes_where_set"
    for name in HELD_INDEXES:
        db.execute_sql(f'DROP INDEX "{name}"')
    for name, columns in OLD.items():
        db.execute_sql(f'CREATE INDEX "{name}" ON "ticket" ({columns})')
    SchemaMigration.delete().where(SchemaMigration.name == step).execute()
    built = migrated_once(db, monkeypatch, step)
    tickets = _indexes(db, "ticket")
    assert set(HELD_INDEXES) <= tickets and not set(OLD) & tickets
    if is_postgres(db):
        mine = [(sql, inside) for sql, inside in built if any(f'"{name}"' in sql for name in (*HELD_INDEXES, *OLD))]
        assert len(mine) == len(HELD_INDEXES) + len(OLD), mine
        assert all("CONCURRENTLY" in sql and not inside for sql, inside in mine), mine
        valid = dict(db.execute_sql("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = "
                                    "i.indexrelid WHERE c.relnamespace = current_schema()::regnamespace").fetchall())
        assert all(valid[name] for name in HELD_INDEXES)
