"""caseflow.search_layout: migration 0019 (and 0010) bringing an existing database's full-text index to the
current layout, on both databases; on PostgreSQL built CONCURRENTLY outside a transaction and picked up
again after an interruption (a leftover INVALID index dropped and built again); SQLite's FTS5 merging (0022)."""
from __future__ import annotations

import pytest

from caseflow import search, services
from core.db import is_postgres
from core.migrations import SchemaMigration, Step
from core.migrations import create_schema as run_steps
from hotline.schema import all_models, create_schema

STEP = "0019_search_index_pairs"
# The 0010 layout: marker lexemes, but not yet the department/id-bucket pairs (~x, ~y) 0019 adds.
OLDER = ("(search_tsv || array_to_tsvector(ARRAY['~d' || coalesce(department_id, 0)::text, "
         "'~b' || (id >> 13)::text]))")


def _indexes(db) -> dict[str, tuple[str, bool]]:
    return {row[0]: (row[1], row[2]) for row in db.execute_sql(
        "SELECT c.relname, pg_get_indexdef(c.oid), i.indisvalid FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = current_schema()::regnamespace "
        "AND c.relname LIKE 'ticket_search_tsv%%'")}


def _older_layout(db) -> None:
    db.execute_sql("DROP INDEX ticket_search_tsv")
    db.execute_sql(f"CREATE INDEX ticket_search_tsv ON ticket USING gin ({OLDER})")


def _assert_current(db) -> None:
    found = _indexes(db)
    assert set(found) == {"ticket_search_tsv"}, found
    definition, valid = found["ticket_search_tsv"]
    assert valid and "'~x'" in definition and "'~y'" in definition


@pytest.fixture
def tickets(db, org_setup):
    made = [services.create_ticket(text, created_by=org_setup.agent) for text in ("路灯不亮", "井盖丢失", "路灯闪烁")]
    search.ensure_all()
    return made


def _search(org_setup, text):
    return sorted(t.id for t in services.search_tickets(org_setup.centre_user, text=text))


def test_0019_brings_an_existing_index_to_the_layout_once(db, org_setup, tickets):
    """Should rebuild an existing database's index of the older layout (PostgreSQL: the GIN with the pairs;
    SQLite: the FTS5 page size) when 0019 is pending, once, the searches finding what they found."""
    if is_postgres():
        _older_layout(db)
    else:
        db.execute_sql("INSERT INTO ticket_fts(ticket_fts, rank) VALUES ('pgsz', 4050)")
    SchemaMigration.delete().where(SchemaMigration.name == STEP).execute()
    assert create_schema() == [STEP]
    assert create_schema() == []
    if is_postgres():
        _assert_current(db)
    else:
        assert db.execute_sql("SELECT v FROM ticket_fts_config WHERE k = 'pgsz'").fetchone()[0] == search.FTS_PAGE_SIZE
    assert _search(org_setup, "路灯") == [tickets[0].id, tickets[2].id]


def _invalid_new(db) -> None:
    """An INVALID ticket_search_tsv_new, as a CREATE INDEX CONCURRENTLY cut short leaves it (here: a unique
    build over equal values fails after the index was registered)."""
    with pytest.raises(Exception, match="could not create unique index"):
        db.execute_sql("CREATE UNIQUE INDEX CONCURRENTLY ticket_search_tsv_new ON ticket ((1))")
    assert _indexes(db)["ticket_search_tsv_new"][1] is False


@pytest.mark.parametrize("left", ["invalid new", "valid new, old not swapped", "new swapped in, old not dropped",
                                  "old dropped, new not renamed"])
def test_an_interrupted_rebuild_is_picked_up(db, org_setup, tickets, left):
    """Should finish a rebuild another start left half done: an INVALID new index dropped and built again, a
    valid one of the current layout swapped in, a leftover old one dropped; nothing left beside the index."""
    if not is_postgres():
        pytest.skip("PostgreSQL's concurrent build")
    current = search.document("ticket")
    if left == "invalid new":
        _older_layout(db)
        _invalid_new(db)
    elif left == "valid new, old not swapped":
        _older_layout(db)
        db.execute_sql(f"CREATE INDEX ticket_search_tsv_new ON ticket USING gin ({current})")
    elif left == "new swapped in, old not dropped":
        db.execute_sql(f"CREATE INDEX ticket_search_tsv_old ON ticket USING gin ({OLDER})")
    else:
        db.execute_sql("ALTER INDEX ticket_search_tsv RENAME TO ticket_search_tsv_new")
    kept = {name: oid for name, oid in db.execute_sql(
        "SELECT relname, oid FROM pg_class WHERE relname LIKE 'ticket_search_tsv%%' "
        "AND relnamespace = current_schema()::regnamespace")}
    SchemaMigration.delete().where(SchemaMigration.name == STEP).execute()
    assert create_schema() == [STEP]
    _assert_current(db)
    oid = db.execute_sql("SELECT 'ticket_search_tsv'::regclass::oid").fetchone()[0]
    if left == "invalid new":
        assert oid not in kept.values()  # built again
    elif left in ("valid new, old not swapped", "old dropped, new not renamed"):
        assert oid == kept["ticket_search_tsv_new"]  # the finished build kept, not done twice
    assert _search(org_setup, "路灯") == [tickets[0].id, tickets[2].id]


def test_a_step_outside_a_transaction(db):
    """Should run a transaction=False step outside any transaction and without a statement timeout on
    PostgreSQL (each statement its own), the timeout set back after it and the step recorded; in a
    transaction on SQLite."""
    seen = []

    def probe(migrator, database):
        seen.append((database.in_transaction(),
                     database.execute_sql("SELECT current_setting('statement_timeout')").fetchone()[0]
                     if is_postgres(database) else None))
        return []

    before = db.execute_sql("SHOW statement_timeout").fetchone()[0] if is_postgres() else None
    try:
        assert run_steps(all_models(), [Step("zz_probe", probe, transaction=False)]) == ["zz_probe"]
        assert run_steps(all_models(), [Step("zz_probe", probe, transaction=False)]) == []
    finally:
        SchemaMigration.delete().where(SchemaMigration.name == "zz_probe").execute()
    if is_postgres():
        assert seen == [(False, "0")]
        assert db.execute_sql("SHOW statement_timeout").fetchone()[0] == before
    else:
        assert seen == [(True, None)]


def test_a_concurrent_build_refuses_a_transaction(db, org_setup, tickets):
    """Should refuse clearly, not fail half way, when the rebuild is asked inside a transaction."""
    if not is_postgres():
        pytest.skip("PostgreSQL's concurrent build")
    from caseflow import search_layout

    _older_layout(db)
    with pytest.raises(RuntimeError, match="cannot run inside a transaction"):
        with db.atomic():
            search_layout.upgrade(db)
    found = _indexes(db)
    assert set(found) == {"ticket_search_tsv"} and "'~x'" not in found["ticket_search_tsv"][0]


def test_prebuilt_before_the_upgrade_the_takeover_only_swaps(db, org_setup, tickets, monkeypatch):
    """Should build the new index beside the old one from `python -m caseflow.search_layout` (the old one
    left in place for the running release), and have 0019 swap in that very index; SQLite: nothing to do."""
    import io

    from caseflow import search_layout
    from core import db as core_db

    monkeypatch.setattr(core_db, "bind_database", lambda url: db)
    out = io.StringIO()
    if not is_postgres():
        assert search_layout.main(["--database-url", "sqlite://"], out=out) == 0
        assert "nothing to build" in out.getvalue()
        return
    _older_layout(db)
    assert search_layout.main(["--database-url", "postgresql://"], out=out) == 0
    assert "built for: ticket" in out.getvalue()
    found = _indexes(db)
    assert set(found) == {"ticket_search_tsv", "ticket_search_tsv_new"}
    assert "'~x'" not in found["ticket_search_tsv"][0] and found["ticket_search_tsv_new"][1]
    built = db.execute_sql("SELECT 'ticket_search_tsv_new'::regclass::oid").fetchone()[0]
    assert search_layout.prebuild(db) == ["ticket"]  # found built: not built twice
    assert db.execute_sql("SELECT 'ticket_search_tsv_new'::regclass::oid").fetchone()[0] == built
    SchemaMigration.delete().where(SchemaMigration.name == STEP).execute()
    assert create_schema() == [STEP]
    _assert_current(db)
    assert db.execute_sql("SELECT 'ticket_search_tsv'::regclass::oid").fetchone()[0] == built
    assert _search(org_setup, "路灯") == [tickets[0].id, tickets[2].id]


def _merging(db, table: str) -> dict:
    return dict(db.execute_sql(f"SELECT k, v FROM {table}_fts_config WHERE k IN ('automerge', 'crisismerge')"))


def test_the_ticket_index_merges_16_segments_made_and_migrated(db, org_setup, tickets):
    """Should give SQLite's ticket FTS5 index automerge 16 and crisismerge 64 (caseflow.search.FTS_MERGING) when it
    is made, and by step 0022 on an existing database made with FTS5's defaults; the knowledge base's keeps them."""
    if is_postgres():
        pytest.skip("SQLite's FTS5")
    wanted = {"automerge": 16, "crisismerge": 64}
    db.execute_sql("DROP TABLE ticket_fts")
    search.forget(db)
    search.ensure_all()  # made again, the rows picked up by its rebuild
    assert _merging(db, "ticket") == wanted and _merging(db, "knowledge_item") == {}
    db.execute_sql("DELETE FROM ticket_fts_config WHERE k IN ('automerge', 'crisismerge')")  # as made before 0022
    step = "0022_search_index_merging"
    SchemaMigration.delete().where(SchemaMigration.name == step).execute()
    assert create_schema() == [step]
    assert _merging(db, "ticket") == wanted and _merging(db, "knowledge_item") == {}
    assert _search(org_setup, "路灯") == [tickets[0].id, tickets[2].id]
