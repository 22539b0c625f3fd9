"""Database plumbing: one DatabaseProxy, the BaseModel every model derives from, and schema creation.

SQLite (WAL, foreign keys on) and PostgreSQL go through the same code. Schema changes follow
``core.migrations``: tables are created from the models, later changes are named steps.
"""
from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlparse

import peewee
from playhouse.db_url import connect as url_connect

log = logging.getLogger(__name__)

database = peewee.DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 10000,
    "synchronous": "normal",
    "cache_size": -64 * 1000,
}


class BaseModel(peewee.Model):
    """Base for every model: binds to the proxy so tests and run.py choose the database."""

    class Meta:
        database = database
        legacy_table_names = False


def open_database(url: str) -> peewee.Database:
    """Open (not yet connect) the database named by ``url``: sqlite:///path or postgresql://..."""
    scheme = urlparse(url).scheme
    if scheme.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ":memory:"
        if path not in (":memory:", ""):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return peewee.SqliteDatabase(path or ":memory:", pragmas=SQLITE_PRAGMAS, check_same_thread=False)
    if scheme in ("postgres", "postgresql", "postgresext", "postgresql+pool", "postgres+pool"):
        return url_connect(url, autorollback=True) if "+pool" in scheme else url_connect(url)
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:/// or postgresql://")


def bind_database(url: str) -> peewee.Database:
    """Open the database for ``url`` and point every model at it."""
    db = open_database(url)
    database.initialize(db)
    return db


def is_postgres(db: peewee.Database | None = None) -> bool:
    target = db or database.obj
    return isinstance(target, peewee.PostgresqlDatabase)


def is_sqlite(db: peewee.Database | None = None) -> bool:
    target = db or database.obj
    return isinstance(target, peewee.SqliteDatabase)
