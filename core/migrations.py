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
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable

import peewee
from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

from core.db import BaseModel, database, is_postgres, schema_change

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
    has ended. SQLite runs every step in a transaction."""

    name: str
    operations: Callable[[object, peewee.Database], Iterable]
    transaction: bool = True


def create_schema(models: Iterable[type[peewee.Model]], steps: Iterable[Step]) -> list[str]:
    """Create missing tables and run the pending ones of ``steps``; returns the names of the steps run."""
    db = database.obj
    steps = list(steps)
    with db.connection_context():
        fresh = not db.table_exists(SchemaMigration._meta.table_name)
        # Every schema change with PostgreSQL's per-statement timeout lifted (core.db.schema_change): a new
        # index on an existing big table, or a step rewriting one, takes minutes, not the seconds a call's
        # queries are allowed.
        with schema_change(db):
            db.create_tables([SchemaMigration, *models], safe=True)
        done = {row.name for row in SchemaMigration.select()}
        ran = []
        migrator = PostgresqlMigrator(db) if is_postgres(db) else SqliteMigrator(db)
        for step in steps:
            if step.name in done:
                continue
            if not fresh and not step.transaction and is_postgres(db):
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


@contextmanager
def _no_statement_timeout(db: peewee.Database):
    """The session's statement_timeout lifted for a step outside a transaction (schema_change's SET LOCAL
    needs one), set back after it whatever happened; the lock timeout stays (the step may set its own)."""
    if db.in_transaction():
        raise RuntimeError("a migration step with transaction=False cannot run inside a transaction")
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
