"""The published cases at scale (bench/portal.py): the indexes the public list and its filters read, the list's
count that stops at its cap, and the migration that drops the narrow created_at index, on both databases."""
from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import re

import pytest

from caseflow import portal
from caseflow.models import Ticket, WebCase


def _indexes(db, table: str) -> set[str]:
    return {index.name for index in db.get_indexes(table)}


def test_the_public_list_has_its_indexes(db):
    """Should build the partial indexes over disclosed tickets (list order and each filter), the (ticket,
    consent) index of web cases, and the period indexes; and no single-column created_at index."""
    tickets = _indexes(db, "ticket")
    assert {"ticket_published_closed", "ticket_published_by_type", "ticket_published_by_category",
            "ticket_published_by_region", "ticket_published_created", "ticket_closed_set",
            "ticket_created_at_status_category_id_type_department_id_channel"} <= tickets
    assert "ticket_created_at" not in tickets and "ticket_public_created" not in tickets
    assert "web_case_ticket_id_consent" in _indexes(db, "web_case")
    assert "ticket_history_action_at" in _indexes(db, "ticket_history")


def test_the_throttles_have_their_window_indexes(db):
    """Should index the audit log by address and by object with the time, the throttles' windows (failed
    logins, website look-ups, Open311 calls per address and per key)."""
    assert {"audit_log_ip_at", "audit_log_obj_type_obj_id_at"} <= _indexes(db, "audit_log")


def test_the_list_walks_the_public_index_without_statistics(db):
    """Should read the published list and its count through the partial index in the list's order on SQLite,
    with no planner statistics (an index on the status, the workbench's, was walked through every closed
    ticket instead)."""
    from core.db import is_sqlite

    if not is_sqlite(db):
        pytest.skip("SQLite's query plan")
    query = portal.published().order_by(Ticket.closed_at.desc(), Ticket.id.desc()).limit(20)
    sql, params = query.sql()
    plan = " ".join(str(row[-1]) for row in db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall())
    assert "ticket_published_closed" in plan and "status" not in plan, plan


@contextlib.contextmanager
def _statements(db, monkeypatch, inside=None):
    """[(sql, params)] of the statements ``db`` runs inside the block; with ``inside`` (a function), each with
    what it said when the statement was sent: [(sql, params, inside())]."""
    seen: list[tuple] = []
    execute = db.execute_sql

    def recorded(sql, params=None, *args, **kwargs):
        seen.append((sql, params) if inside is None else (sql, params, inside()))
        return execute(sql, params, *args, **kwargs)

    monkeypatch.setattr(db, "execute_sql", recorded)
    try:
        yield seen
    finally:
        monkeypatch.setattr(db, "execute_sql", execute)


def migrated_once(db, monkeypatch, step: str) -> list[tuple[str, bool]]:
    """Run create_schema on ``db`` and check that it takes migration ``step`` (and a second run does not);
    [(sql, inside a transaction)] of the CREATE/DROP INDEX statements the first run sent."""
    from hotline.schema import create_schema

    built: list[tuple[str, bool]] = []
    with _statements(db, monkeypatch, inside=db.in_transaction) as seen:
        assert step in create_schema()
    assert step not in create_schema()
    for sql, _params, inside in seen:
        if sql.startswith(("CREATE", "DROP")) and "INDEX" in sql:
            built.append((sql, inside))
    return built


def test_a_month_is_counted_on_its_index_range_to_the_cap(db, monkeypatch):
    """Should count a month's published cases by walking the creation-time partial index over that month in its
    own order, stopping at the cap, on SQLite (counted in the list's order every entry of the month was read and
    sorted first: 8,000 at 1,000,000 tickets); the count stays right."""
    from core.db import is_sqlite

    if not is_sqlite(db):
        pytest.skip("SQLite's query plan")
    monkeypatch.setattr(portal, "MAX_LISTED", 3)
    _published(5, dt.datetime(2026, 1, 1))
    with _statements(db, monkeypatch) as seen:
        assert portal.search_published(month="2026-01", tz=dt.timezone.utc)[1] == 4
    sql, params = next((sql, params) for sql, params in seen if "COUNT(" in sql)
    plan = " ".join(str(row[-1]) for row in db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall())
    assert "ticket_published_created" in plan and "TEMP B-TREE" not in plan, plan


def test_migration_drops_the_narrow_created_at_index(db):
    """Should drop an existing database's ticket_created_at index once, the wider index taking its place."""
    from core.migrations import SchemaMigration
    from hotline.schema import create_schema

    step = "0009_ticket_created_at_index"
    db.execute_sql('CREATE INDEX "ticket_created_at" ON "ticket" ("created_at")')
    SchemaMigration.delete().where(SchemaMigration.name == step).execute()
    assert step in create_schema()
    assert step not in create_schema()
    assert "ticket_created_at" not in _indexes(db, "ticket")


def test_migration_gives_the_month_index_the_id(db):
    """Should drop an existing database's month index without the id once (the month index with it, built by
    create_tables, takes its place)."""
    from core.migrations import SchemaMigration
    from hotline.schema import create_schema

    step = "0018_ticket_public_created_id"
    db.execute_sql('CREATE INDEX "ticket_public_created" ON "ticket" ("created_at") WHERE "public"')
    SchemaMigration.delete().where(SchemaMigration.name == step).execute()
    assert step in create_schema()
    assert step not in create_schema()
    tickets = _indexes(db, "ticket")
    assert "ticket_public_created" not in tickets and "ticket_published_created" in tickets


PUBLISHED = {f"ticket_published_{name}" for name in ("closed", "by_type", "by_category", "by_region", "created")}


def _before_0021(db) -> dict[str, str]:
    """The ticket's published-case indexes as they were before 0021 (the five ticket_public_* without the
    ``public`` column, none of the ticket_published_*), the step pending; returns the old ones' columns."""
    from core.migrations import SchemaMigration

    old = {"closed": '"closed_at", "id"', "type": '"type"', "category": '"category_id"', "region": '"region_id"',
           "created_id": '"created_at", "id"'}
    for name in PUBLISHED:
        db.execute_sql(f'DROP INDEX "{name}"')
    for name, columns in old.items():
        db.execute_sql(f'CREATE INDEX "ticket_public_{name}" ON "ticket" ({columns}, "status") WHERE "public"')
    SchemaMigration.delete().where(SchemaMigration.name == "0021_ticket_published_covering").execute()
    return old


def _valid_indexes(db) -> dict[str, bool]:
    return dict(db.execute_sql("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = "
                               "i.indexrelid WHERE c.relnamespace = current_schema()::regnamespace "
                               "AND c.relname LIKE 'ticket_publi%%'").fetchall())


def test_migration_gives_the_public_indexes_the_public_column(db, monkeypatch):
    """Should replace an existing database's five published-case indexes without the ``public`` column once
    (0021: the ticket_published_* take their place); on PostgreSQL build them CONCURRENTLY outside any
    transaction, create_tables leaving them to the step (in its transaction each build held the ticket table's
    writes for its whole length), and drop the old ones the same way."""
    from core.db import is_postgres

    step = "0021_ticket_published_covering"
    old = _before_0021(db)
    built = [(sql, inside) for sql, inside in migrated_once(db, monkeypatch, step)
             if "ticket_published_" in sql or "ticket_public_" in sql]
    tickets = _indexes(db, "ticket")
    assert not {f"ticket_public_{name}" for name in old} & tickets
    assert PUBLISHED <= tickets
    if is_postgres():
        assert _valid_indexes(db) == dict.fromkeys(PUBLISHED, True)
        creates = [(sql, inside) for sql, inside in built if sql.startswith("CREATE")]
        assert len(creates) == 5 and all(sql.startswith("CREATE INDEX CONCURRENTLY") and not inside
                                         for sql, inside in creates), creates
        drops = [(sql, inside) for sql, inside in built if sql.startswith("DROP")]
        assert len(drops) == 5 and all("CONCURRENTLY" in sql and not inside for sql, inside in drops), drops
        definition = db.execute_sql("SELECT pg_get_indexdef('ticket_published_by_region'::regclass)").fetchone()[0]
        assert '(region_id, closed_at, id, status, type, category_id, created_at, public) WHERE public' in definition


def test_an_interrupted_0021_is_picked_up(db):
    """Should finish a 0021 another start left half done on PostgreSQL: an index a cut-short build left INVALID
    dropped and built again, one built already kept (not built twice), the missing ones built."""
    from core.db import is_postgres
    from hotline.schema import create_schema

    if not is_postgres():
        pytest.skip("PostgreSQL's concurrent build")
    _before_0021(db)
    db.execute_sql('CREATE INDEX "ticket_published_closed" ON "ticket" ("closed_at", "id", "status", "type", '
                   '"category_id", "region_id", "created_at", "public") WHERE "public"')
    Ticket.create(number="10000001", title="a", content="a")
    Ticket.create(number="10000002", title="b", content="b")
    with pytest.raises(Exception, match="could not create unique index"):  # registered, then failed: INVALID
        db.execute_sql('CREATE UNIQUE INDEX CONCURRENTLY "ticket_published_by_type" ON "ticket" ((1))')
    kept = db.execute_sql("SELECT 'ticket_published_closed'::regclass::oid").fetchone()[0]
    assert _valid_indexes(db)["ticket_published_by_type"] is False
    assert "0021_ticket_published_covering" in create_schema()
    assert _valid_indexes(db) == dict.fromkeys(PUBLISHED, True)
    assert db.execute_sql("SELECT 'ticket_published_closed'::regclass::oid").fetchone()[0] == kept
    definition = db.execute_sql("SELECT pg_get_indexdef('ticket_published_by_type'::regclass)").fetchone()[0]
    assert "UNIQUE" not in definition and "WHERE public" in definition


def test_migration_gives_the_filter_indexes_the_id(db, monkeypatch):
    """Should replace an existing database's kind, category and region indexes without the id once (0023: the
    ticket_published_by_* take their place; on PostgreSQL built and dropped CONCURRENTLY outside any
    transaction), after which PostgreSQL pages a list filtered by all three from index entries alone: no table
    page read for a match's id (480 for 146 matches at 1,000,000 tickets)."""
    from caseflow.models import Category, Region
    from core.db import is_postgres
    from core.migrations import SchemaMigration
    from hotline.schema import create_schema

    step = "0023_ticket_published_ids"
    old = {"type": "type", "category": "category_id", "region": "region_id"}
    for name, lead in old.items():  # as 0021 built them: the lead, then the other columns, no id
        rest = [c for c in ("closed_at", "status", "type", "category_id", "region_id", "created_at", "public")
                if c != lead]
        columns = ", ".join(f'"{c}"' for c in [lead, *rest])
        db.execute_sql(f'DROP INDEX "ticket_published_by_{name}"')
        db.execute_sql(f'CREATE INDEX "ticket_published_{name}" ON "ticket" ({columns}) WHERE "public"')
    SchemaMigration.delete().where(SchemaMigration.name == step).execute()
    with _statements(db, monkeypatch) as built:
        assert step in create_schema()
    assert step not in create_schema()
    tickets = _indexes(db, "ticket")
    assert PUBLISHED <= tickets and not {f"ticket_published_{name}" for name in old} & tickets
    if not is_postgres(db):
        return
    assert _valid_indexes(db) == dict.fromkeys(PUBLISHED, True)
    changes = [sql for sql, _params in built if "INDEX" in sql and "ticket_published_" in sql
               and sql.startswith(("CREATE", "DROP"))]
    assert sorted(changes) == sorted(
        [f'DROP INDEX CONCURRENTLY IF EXISTS "ticket_published_{name}"' for name in old]
        + [s for s in changes if s.startswith("CREATE INDEX CONCURRENTLY")]) and len(changes) == 6, changes
    category, region = Category.create(code="K1", name="路灯"), Region.create(code="R1", name="东湖区")
    _published(5, dt.datetime(2026, 1, 1))
    Ticket.update(category=category, region=region, type="help").execute()
    _published(60, dt.datetime(2026, 1, 1), public=False)  # the partial indexes leave these out
    db.execute_sql("ANALYZE ticket")
    with _statements(db, monkeypatch) as seen:
        portal.search_published(type="help", category=str(category.id), region=str(region.id))
    ticket_reads = [(sql, params) for sql, params in seen if 'FROM "ticket"' in sql and "SELECT" in sql]
    assert len(ticket_reads) == 2, ticket_reads  # the count, and the page's rows with its ids
    for sql, params in ticket_reads:
        with db.atomic():
            db.execute_sql("SET LOCAL enable_seqscan = off")  # a table this small is read whole otherwise
            db.execute_sql("SET LOCAL enable_bitmapscan = off")
            plan = " ".join(row[0] for row in db.execute_sql("EXPLAIN " + sql.split("; ")[-1], params))
        scans = re.findall(r"(Index Only Scan|Index Scan)(?: Backward)? using (ticket_published_\w+)", plan)
        assert scans and all(kind == "Index Only Scan" for kind, _name in scans), plan


@pytest.mark.parametrize("filters", [{"category": "K1", "region": "R1"}, {"type": "help", "region": "R1"},
                                     {"category": "K1", "month": "2026-01"}, {}])
def test_a_filtered_list_reads_index_entries_alone(db, monkeypatch, filters):
    """Should count and page a filtered list of published cases from a partial index's entries alone on SQLite
    (a covering index: without the ``public`` column in it, SQLite read the wide ticket row of every entry it
    walked, 20,000 for a category with a region at 1,000,000 tickets), the count in no order; the list stays
    right."""
    from caseflow.models import Category, Region
    from core.db import is_sqlite

    if not is_sqlite(db):
        pytest.skip("SQLite's query plan")
    category, region = Category.create(code="K1", name="路灯"), Region.create(code="R1", name="东湖区")
    shown = _published(3, dt.datetime(2026, 1, 1))
    Ticket.update(category=category, region=region, type="help").execute()
    _published(2, dt.datetime(2026, 1, 5))  # no category, region or kind of these filters
    ids = {"category": str(category.id), "region": str(region.id)}
    with _statements(db, monkeypatch) as seen:
        rows, total = portal.search_published(**{k: ids.get(k, v) for k, v in filters.items()},
                                              tz=dt.timezone.utc)
    assert total == (5 if not filters else 3)
    if filters:
        assert [t.number for t in rows] == [t.number for t in reversed(shown)]
    for sql, params in seen:
        if 'FROM "ticket"' in sql and ("COUNT(" in sql or 'SELECT "t1"."id" FROM' in sql):
            plan = " ".join(str(row[-1]) for row in db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall())
            reads = re.findall(r"(?:SCAN|SEARCH) t1\b(?: USING [A-Z ]*INDEX \w+)?", plan)
            assert reads and all("USING COVERING INDEX ticket_published_" in read for read in reads), plan
            if "COUNT(" in sql:  # counted in no order: stops at the cap, never sorts every match first
                assert "TEMP B-TREE" not in plan and "ORDER BY" not in sql, (sql, plan)


def test_a_month_page_is_read_from_the_month_index(db, monkeypatch):
    """Should read a month's page of published cases from the month index's entries (the id among them), in
    the list's order, on PostgreSQL: not the list's index walked backwards through every later case; and sort
    the month's entries before checking each one's consenting web case, row by row until the page is full (a
    scalar subquery, never a join: joined first, every case of the month was looked up, 8,500 at 1,000,000
    tickets, for a page of 20). Cases without consent or not disclosed stay out, wherever they sort."""
    from core.db import is_postgres

    if not is_postgres(db):
        pytest.skip("PostgreSQL's query plan")
    shown = _published(30, dt.datetime(2026, 1, 1)) + _published(30, dt.datetime(2026, 3, 1))
    _published(3, dt.datetime(2026, 1, 1, 12), consent=False)
    _published(3, dt.datetime(2026, 1, 1, 13), public=False)
    db.execute_sql("ANALYZE ticket")
    with _statements(db, monkeypatch) as seen:
        rows, total = portal.search_published(month="2026-01", tz=dt.timezone.utc)
    assert total == 30 and [t.number for t in rows] == [t.number for t in shown[29:9:-1]]
    assert [t.number for t in portal.search_published(month="2026-01", tz=dt.timezone.utc, page=2)[0]] == [
        t.number for t in shown[9::-1]]
    sql, params = next((sql, params) for sql, params in seen if 'SELECT "ordered"."id" FROM' in sql)
    with db.atomic():
        db.execute_sql("SET LOCAL enable_seqscan = off")  # a table this small is read whole otherwise
        plan = " ".join(row[0] for row in db.execute_sql("EXPLAIN " + sql.split("; ")[-1], params).fetchall())
    assert "ticket_published_created" in plan and "ticket_published_closed" not in plan, plan
    assert "SubPlan" in plan and "Join" not in plan and "Nested Loop" not in plan, plan


def test_a_dense_filter_pages_through_the_list_index_without_a_sort(db, monkeypatch):
    """Should count a filtered list in no order (stopping at the cap on whatever index serves the filters) and,
    on PostgreSQL, read a page of a filter with more matches than the cap by walking the list's index with no
    sort (it took the matches for a few, read them all and sorted them: 1,855 pages for a region's page 5 at
    100,000 tickets), a filter under the cap keeping the planner's own plan, with no bitmap scan either way;
    the pages and totals stay right."""
    from core.db import is_postgres

    monkeypatch.setattr(portal, "MAX_LISTED", 3)
    monkeypatch.setattr(portal, "PAGE_SIZE", 2)
    dense = _published(6, dt.datetime(2026, 1, 1))
    Ticket.update(type="help").where(Ticket.id.in_([t.id for t in dense])).execute()
    _published(2, dt.datetime(2026, 2, 1))  # complaints, newer: under the cap
    with _statements(db, monkeypatch) as seen:
        rows, total = portal.search_published(type="help", page=2)
    assert total == 4 and [t.number for t in rows] == [dense[3].number, dense[2].number]
    count = next(sql for sql, _params in seen if "COUNT(" in sql)
    assert "ORDER BY" not in count, count
    with _statements(db, monkeypatch) as few:
        assert len(portal.search_published(type="complaint")[0]) == 2
    if not is_postgres(db):
        return
    assert any("enable_bitmapscan = off" in sql for sql, _params in seen), seen
    page_sql, params = next((sql, params) for sql, params in seen if 'SELECT "t1"."id" FROM' in sql)
    assert "SET LOCAL enable_sort = off; SELECT" in page_sql, page_sql
    assert not [sql for sql, _params in few if "enable_sort" in sql], few
    with db.atomic():
        db.execute_sql("SET LOCAL enable_seqscan = off")  # a table this small is read whole otherwise
        for statement in page_sql.split("; ")[:-1]:
            db.execute_sql(statement)
        plan = " ".join(row[0] for row in db.execute_sql("EXPLAIN " + page_sql.split("; ")[-1], params))
    # The list's index, or a filter's whose entries come in the list's order (an equal kind): walked backwards,
    # at most an incremental sort of equal closing times by id, never a sort of every match.
    assert re.search(r"Scan Backward using ticket_published_\w+", plan), plan
    assert not re.search(r"(?<!Incremental )Sort  \(cost", plan), plan


NUMBERS = itertools.count(10_000_000)


def _published(count: int, start: dt.datetime, *, consent: bool = True, public: bool = True) -> list[Ticket]:
    """Closed web cases, disclosed (``public``) and consented to (``consent``) unless told otherwise."""
    rows = []
    for n in range(count):
        at = start + dt.timedelta(hours=n)
        ticket = Ticket.create(number=str(next(NUMBERS)), type="complaint", channel="web", status="closed",
                               title=f"第{n}号", content=f"第{n}号来信", created_at=at, updated_at=at,
                               closed_at=at + dt.timedelta(days=1), public=public)
        WebCase.create(ticket=ticket, consent=consent, code_hash="x$y", digest=f"{ticket.id:064x}",
                       captcha_id=f"c{ticket.id}", created_at=at)
        rows.append(ticket)
    return rows


def test_the_list_count_stops_at_its_cap(db, monkeypatch):
    """Should count published cases up to one over the list's cap, newest closed first, never the hidden ones,
    and keep the page number within the pages the list reaches."""
    monkeypatch.setattr(portal, "MAX_LISTED", 3)
    monkeypatch.setattr(portal, "MAX_PAGES", 2)
    monkeypatch.setattr(portal, "PAGE_SIZE", 2)
    shown = _published(5, dt.datetime(2026, 1, 1))
    _published(2, dt.datetime(2026, 2, 1), consent=False)
    _published(2, dt.datetime(2026, 2, 1), public=False)
    rows, total = portal.search_published()
    assert total == 4 and [t.number for t in rows] == [shown[4].number, shown[3].number]
    rows, total = portal.search_published(page=99)
    assert [t.number for t in rows] == [shown[2].number, shown[1].number]  # page 2, the last the list reaches
    rows, total = portal.search_published(month="2026-01", type="complaint", tz=dt.timezone.utc)
    assert total == 4
    assert portal.search_published(type="praise") == ([], 0)
    assert [t.number for t in portal.latest_published(2)] == [shown[4].number, shown[3].number]
    assert portal.published_ids([t.id for t in Ticket.select()]) == {t.id for t in shown}


@pytest.mark.parametrize("count", [0, 2])
def test_small_lists_count_exactly(db, count):
    """Should count a list under the cap exactly."""
    _published(count, dt.datetime(2026, 1, 1))
    assert portal.search_published()[1] == count


def test_postgresql_knows_how_many_tickets_are_publishable(db):
    """Should give PostgreSQL statistics on the status as the published list compares it (migration 0012 on an
    existing database, the product's start on a new one), so its estimate of the publishable tickets is the
    true share and not the 0.5% it assumed for an expression (which made it read the whole table per count)."""
    from core.db import is_postgres
    from core.migrations import SchemaMigration
    from hotline.schema import create_schema

    if not is_postgres(db):
        pytest.skip("PostgreSQL's planner statistics")
    _published(40, dt.datetime(2026, 1, 1))
    for n in range(60):
        Ticket.create(number=f"{30_000_000 + n}", title="未办结", content="未办结", status="recorded")
    step = "0012_ticket_status_statistics"
    SchemaMigration.delete().where(SchemaMigration.name == step).execute()
    db.execute_sql("DROP STATISTICS IF EXISTS ticket_status_text")
    assert step in create_schema()
    names = [row[0] for row in db.execute_sql(
        "SELECT stxname FROM pg_statistic_ext WHERE stxnamespace = current_schema()::regnamespace")]
    assert "ticket_status_text" in names
    plan = db.execute_sql("EXPLAIN SELECT 1 FROM ticket WHERE (status || '') IN ('closed', 'archived')").fetchone()[0]
    estimated = int(plan.split("rows=")[1].split()[0])
    assert 30 <= estimated <= 50, plan  # 40 of 100, not 0.5%
    portal.ensure_statistics()  # idempotent
