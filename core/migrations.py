"""Schema creation and the engine of named migration steps.

Tables are created from the models; a later change to an existing database is a named ``Step`` run once, in
order, and recorded in ``schema_migration``. A fresh database marks every step as applied because its tables
already match the models. The product's list of steps is not here: it touches every package's tables, so it
lives in the composition root (``hotline/migrations.py``, run through ``hotline.schema.create_schema``);
core only runs the list it is given.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable

import peewee
from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

from core.db import BaseModel, database, held_connection, is_postgres, schema_change

log = logging.getLogger(__name__)


class SchemaMigration(BaseModel):
    """One applied migration step."""

    name = peewee.CharField(primary_key=True, max_length=100)
    applied_at = peewee.DateTimeField(default=lambda: dt.datetime.now(dt.timezone.utc))


@dataclass(frozen=True)
class Step:
    """One named change of an existing database: ``operations(migrator, db)`` returns playhouse.migrate
    operations (or does its work itself and returns []). A step runs in one transaction, except with
    ``transaction=False`` on PostgreSQL: each statement commits on its own (CREATE INDEX CONCURRENTLY can run in
    no transaction), so the step must be safe to run again after an interruption; it is recorded once it
    has ended. SQLite runs every step in a transaction.

    ``builds_indexes``: names of the models' indexes the step builds itself (``build_indexes_concurrently``, in a
    step with ``transaction=False``): on an existing PostgreSQL database create_schema's ``create_tables`` leaves
    them to the step while it is pending. Built there, inside create_schema's transaction, each held the
    table's writes (a ticket's creation) for its whole build, minutes at 1,000,000 tickets. A new database
    gets them from ``create_tables`` as usual.

    ``batches``: with ``transaction=False``, SQLite too runs the step outside a transaction: it rewrites a big
    table in batches, each committed by the step itself (a transaction of its own), so a write waits for one
    batch, not the whole table, and an interrupted run keeps what it converted."""

    name: str
    operations: Callable[[object, peewee.Database], Iterable]
    transaction: bool = True
    builds_indexes: tuple[str, ...] = ()
    batches: bool = False


def create_schema(models: Iterable[type[peewee.Model]], steps: Iterable[Step]) -> list[str]:
    """Create missing tables and run the pending ones of ``steps``; returns the names of the steps run."""
    db = database.obj
    steps = list(steps)
    with db.connection_context(), held_connection(db), _migration_lock(db):
        fresh = not db.table_exists(SchemaMigration._meta.table_name)
        # Every schema change with PostgreSQL's per-statement timeout lifted (core.db.schema_change): a new
        # index on an existing big table, or a step rewriting one, takes minutes, not the seconds a call's
        # queries are allowed.
        with schema_change(db):
            db.create_tables([SchemaMigration], safe=True)
            done = {row.name for row in SchemaMigration.select()}
            left = set() if fresh or not is_postgres(db) else {
                name for step in steps if step.name not in done and not step.transaction
                for name in step.builds_indexes}
            _create_tables(db, models, left)
        ran = []
        migrator = PostgresqlMigrator(db) if is_postgres(db) else SqliteMigrator(db)
        for step in steps:
            if step.name in done:
                continue
            if not fresh and not step.transaction and (is_postgres(db) or step.batches):
                log.info("applying migration %s outside a transaction (on a big table this may take minutes)",
                         step.name)
                with _no_statement_timeout(db):
                    migrate(*step.operations(migrator, db))
                ran.append(step.name)
                SchemaMigration.create(name=step.name)
                continue
            with schema_change(db):
                if not fresh:
                    log.info("applying migration %s (on a big table this may take minutes)", step.name)
                    migrate(*step.operations(migrator, db))
                    ran.append(step.name)
                SchemaMigration.create(name=step.name)
    return ran


# create_schema's PostgreSQL advisory lock, a session lock held for the whole run: (MIGRATION_LOCK_CLASS, the
# hash of the schema's name), so one lock per hotline database and schema, as the active lock's key
# (core.leader.LOCK_CLASS = 12345, a class of its own). A second process migrating at once (the admin CLI, a
# benchmark, the app taking over) waits, then finds the steps recorded; without it, an index the first was
# still building looked INVALID to it (pg_index.indisvalid is false until the build ends), and it dropped it.
MIGRATION_LOCK_CLASS = 12346
_LOCK_KEY = "%s, hashtext(current_schema()) & 2147483647"
MIGRATION_LOCK_POLL = 0.5  # seconds between tries; a migration takes seconds to minutes
MIGRATION_LOCK_REPORT = 60.0  # seconds between "still waiting" lines


@contextmanager
def _migration_lock(db: peewee.Database):
    """PostgreSQL: the block runs while this session holds the migration lock (on the connection the caller
    holds: held_connection). Waited for by polling, not pg_advisory_lock: a pooled connection's statement
    timeout (seconds) would cancel a wait that lasts as long as the other's migration. SQLite: one process."""
    if not is_postgres(db):
        yield
        return
    waited_since = reported = None
    while not db.execute_sql(f"SELECT pg_try_advisory_lock({_LOCK_KEY})", (MIGRATION_LOCK_CLASS,)).fetchone()[0]:
        now = time.monotonic()
        if reported is None or now - reported >= MIGRATION_LOCK_REPORT:
            log.info("waiting for another process's schema change (migration lock %s held)", MIGRATION_LOCK_CLASS)
            waited_since, reported = waited_since or now, now
        time.sleep(MIGRATION_LOCK_POLL)
    if waited_since is not None:
        log.info("migration lock taken after %.0f s", time.monotonic() - waited_since)
    try:
        yield
    finally:
        try:
            db.execute_sql(f"SELECT pg_advisory_unlock({_LOCK_KEY})", (MIGRATION_LOCK_CLASS,))
        except (peewee.OperationalError, peewee.InterfaceError) as error:  # its session gone, the lock with it
            log.warning("migration lock not released (%s): its connection ended", str(error).strip()[:80])


def _create_tables(db: peewee.Database, models: Iterable[type[peewee.Model]], left: set[str]) -> None:
    """``create_tables(models, safe=True)`` without the indexes named in ``left`` (a pending step builds them)."""
    for model in peewee.sort_models(list(models)):
        indexes = model._meta.fields_to_index()
        if not any(index._name in left for index in indexes):
            model.create_table(safe=True)
            continue
        schema = model._schema  # peewee's create_all, index by index
        schema.create_sequences()
        schema.create_table(safe=True)
        for index in indexes:
            if index._name not in left:
                db.execute(schema._create_index(index, safe=True))


def build_indexes_concurrently(db: peewee.Database, model: type[peewee.Model], names: Iterable[str]) -> list[str]:
    """PostgreSQL: ``model``'s indexes named ``names`` (as the model declares them) built with CREATE INDEX
    CONCURRENTLY: reads and writes of the table go on during the build. Outside a transaction (a step with
    ``transaction=False``), so an interrupted run is picked up by the next: an index found valid is kept, one a
    build cut short left INVALID is dropped and built again. Returns the names built."""
    names = list(names)
    declared = {index._name: index for index in model._meta.fields_to_index()}
    unknown = [name for name in names if name not in declared]
    if unknown:
        raise ValueError(f"{model.__name__} declares no index {', '.join(unknown)}")
    found = dict(db.execute_sql(
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "  # not current_schema()::regnamespace: a name needing quotes
        "WHERE n.nspname = current_schema() AND c.relname = ANY(%s)", (names,)).fetchall())
    built = []
    for name in names:
        if found.get(name):
            continue
        if name in found:
            log.info("dropping index %s, left INVALID by an interrupted build", name)
            concurrently(db, f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
        sql, params = model._schema._create_index(declared[name], safe=False).query()
        log.info("building index %s without locking %s (reads and writes go on): this may take minutes on a big "
                 "table", name, model._meta.table_name)
        concurrently(db, re.sub(r"^CREATE (UNIQUE )?INDEX ", r"CREATE \1INDEX CONCURRENTLY ", sql), params)
        built.append(name)
    return built


# CREATE/DROP INDEX CONCURRENTLY wait for every transaction that may use the table to end; the waits hold up no
# reader or writer (their lock conflicts with neither), so they may last longer than a call's lock timeout.
CONCURRENT_LOCK_WAIT = 600  # seconds; a transaction open longer (a session idle in one) fails the step clearly


def concurrently(db: peewee.Database, sql: str, params=None) -> None:
    """One CONCURRENTLY statement (never in a transaction) without a statement timeout (a build takes minutes),
    its lock waits allowed CONCURRENT_LOCK_WAIT; the session's timeouts set back after it. All on one held
    connection: the pool gives a connection back after each statement outside a transaction, and with another
    greenlet holding the oldest idle one the build ran on a connection still under the call's statement
    timeout (cancelled, an INVALID index left), while one with no timeout went back to the pool."""
    if db.in_transaction():
        raise RuntimeError(f"{sql.split(' ON ')[0]} cannot run inside a transaction (a migration step with "
                           "transaction=False)")
    with held_connection(db):
        before = db.execute_sql("SELECT current_setting('statement_timeout'), "
                                "current_setting('lock_timeout')").fetchone()
        db.execute_sql(f"SET statement_timeout = 0; SET lock_timeout = {CONCURRENT_LOCK_WAIT * 1000}")
        try:
            db.execute_sql(sql, params)
        finally:
            db.execute_sql("SELECT set_config('statement_timeout', %s, false), "
                           "set_config('lock_timeout', %s, false)", before)


@contextmanager
def _no_statement_timeout(db: peewee.Database):
    """The session's statement_timeout lifted for a step outside a transaction (schema_change's SET LOCAL
    needs one; SQLite has none), set back after it whatever happened; the lock timeout stays (the step may set
    its own). The block's statements on the connection that got the SET (held_connection, as in
    ``concurrently``)."""
    if db.in_transaction():
        raise RuntimeError("a migration step with transaction=False cannot run inside a transaction")
    if not is_postgres(db):  # SQLite (a step in batches): no statement timeout to lift
        yield db
        return
    with held_connection(db):
        before = db.execute_sql("SELECT current_setting('statement_timeout')").fetchone()[0]
        db.execute_sql("SET statement_timeout = 0")
        try:
            yield db
        finally:
            db.execute_sql("SELECT set_config('statement_timeout', %s, false)", (before,))


def drop_schema(models: Iterable[type[peewee.Model]]) -> None:
    """Drop every table (tests)."""
    db = database.obj
    db.drop_tables([SchemaMigration, *models], safe=True, cascade=is_postgres(db))
