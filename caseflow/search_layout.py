"""The full-text structures of an existing database brought to ``caseflow.search``'s current layout (the
product's migration steps 0010 and 0019, hotline.migrations), on PostgreSQL without locking the table; ``python -m
caseflow.search_layout`` builds the new indexes before an upgrade so that its takeover only swaps them in."""
from __future__ import annotations

import argparse
import logging
import sys

from caseflow import search
from core.db import is_postgres, schema_change
from core.migrations import concurrently

log = logging.getLogger(__name__)


def upgrade(db) -> None:
    """Bring existing full-text structures to the current layout (the product's migration steps 0010 and 0019):
    on PostgreSQL the GIN index over ``document`` (marker lexemes, the department/id-bucket pairs) instead of an
    older one, built beside it without locking the table (``_rebuild_gin``); on SQLite ``fts_settings``. Outside a
    transaction on PostgreSQL."""
    if is_postgres(db):
        for table in search.INDEXED:
            _rebuild_gin(db, table)
    else:
        fts_settings(db)
    search.forget(db)


def fts_settings(db) -> None:
    """SQLite: the existing FTS5 indexes given ``search.sqlite_fts_settings``' page size (new segments use it;
    merging rewrites the old ones in time) and merging (the product's migration steps 0010, 0019 and 0022)."""
    for table in search.INDEXED:
        if db.execute_sql("SELECT 1 FROM sqlite_master WHERE name = ?", (f"{table}_fts",)).fetchone():
            search.sqlite_fts_settings(db, table)


def gin_options(db) -> None:
    """PostgreSQL: the GIN indexes of an existing database given ``search.GIN_OPTIONS`` (the product's migration
    step 0020), their pending entries moved into the index. A catalogue change: the index's lock is held a moment."""
    for table in search.INDEXED:
        found = db.execute_sql("SELECT to_regclass(%s)", (f"{table}_search_tsv",)).fetchone()[0]
        if found is not None:
            with schema_change(db):
                db.execute_sql(f"ALTER INDEX {table}_search_tsv SET ({search.GIN_OPTIONS})")
                db.execute_sql(f"SELECT gin_clean_pending_list('{table}_search_tsv'::regclass)")


def _current_layout(definition: str, table: str) -> bool:
    return "array_to_tsvector" in definition and (table not in search._SCOPE_MARKS or "'~x'" in definition)


def prebuild(db) -> list[str]:
    """Build the new GIN indexes beside the old ones without swapping them in (``python -m
    caseflow.search_layout`` from the new release while the old one still runs, docs/deploy.md "Upgrade"): the
    migration at the takeover then only swaps them, in a moment. Returns the tables whose index was built or
    found built. The old release's searches go on using the old index; both are kept up to date until then."""
    built = []
    for table in search.INDEXED:
        if is_postgres(db) and _rebuild_gin(db, table, swap=False):
            built.append(table)
    return built


def _rebuild_gin(db, table: str, swap: bool = True) -> bool:
    """Replace ``table``'s GIN index of an older layout by one of ``document``'s: built CONCURRENTLY as
    ``<index>_new`` (reads and writes go on; it took minutes at 1,000,000 tickets, and a plain build held the
    table's exclusive lock so long), swapped in by two renames in one transaction, the old one dropped
    CONCURRENTLY. Each statement commits on its own, so an interrupted run is picked up by the next: a
    leftover INVALID ``_new`` (a build cut short) is dropped and built again, a valid one of the current
    layout kept, a leftover ``_old`` dropped. No index yet: nothing to do (ensure_index builds the current one).
    Without ``swap`` the new index is only built. True when a new index was built or found built."""
    name, new, old = f"{table}_search_tsv", f"{table}_search_tsv_new", f"{table}_search_tsv_old"

    def indexes() -> dict[str, tuple[str, bool]]:
        return {row[0]: (row[1], row[2]) for row in db.execute_sql(
            "SELECT c.relname, pg_get_indexdef(c.oid), i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = current_schema()::regnamespace "
            "AND c.relname IN (%s, %s, %s)", (name, new, old))}

    found = indexes()
    if old in found:
        concurrently(db, f"DROP INDEX CONCURRENTLY IF EXISTS {old}")
    if name in found and found[name][1] and _current_layout(found[name][0], table):
        if new in found:
            concurrently(db, f"DROP INDEX CONCURRENTLY IF EXISTS {new}")
        return False
    if new in found and not (found[new][1] and _current_layout(found[new][0], table)):
        log.info("dropping %s, left by an interrupted rebuild", new)
        concurrently(db, f"DROP INDEX CONCURRENTLY IF EXISTS {new}")
        del found[new]
    if name not in found and new not in found:
        return False
    if new not in found:
        log.info("building the full-text index of %s in its new layout beside the old one (reads and writes go "
                 "on): this may take minutes on a big table", table)
        concurrently(db, f"CREATE INDEX CONCURRENTLY {new} ON {table} USING gin ({search.document(table)}) "
                          f"WITH ({search.GIN_OPTIONS})")
    if not swap:
        return True
    with schema_change(db):
        if name in found:
            db.execute_sql(f"ALTER INDEX {name} RENAME TO {old}")
        db.execute_sql(f"ALTER INDEX {new} RENAME TO {name}")
    if name in found:
        concurrently(db, f"DROP INDEX CONCURRENTLY IF EXISTS {old}")
    return True


def main(argv: list[str] | None = None, out=None) -> int:
    """``python -m caseflow.search_layout``: build the new full-text indexes before an upgrade (``prebuild``);
    exit status 0 when done, 2 when it cannot run."""
    from core.db import bind_for_command

    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="python -m caseflow.search_layout",
                                     description="Build the new full-text indexes beside the old ones "
                                                 "(PostgreSQL), before the upgrade's takeover swaps them in.")
    parser.add_argument("--database-url", help="the database (default: the configured one)")
    args = parser.parse_args(argv)
    database = bind_for_command(args.database_url, out, "build")
    if database is None:
        return 2
    if not is_postgres(database):
        print("SQLite: nothing to build before the upgrade", file=out)
        return 0
    with database.connection_context():
        built = prebuild(database)
    print(f"new full-text index built for: {', '.join(built) or 'none (already in the current layout)'}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
