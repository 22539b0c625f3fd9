"""Fixtures of the product's tests: ``pool``, a releasing pool (core.db._ReleasingPool) of a few connections on
SQLite and on PostgreSQL (skipped when PostgreSQL is not reachable); a test of one engine's behaviour picks it
with ``@pytest.mark.parametrize("pool", ["postgres"], indirect=True)``."""
from __future__ import annotations

import peewee
import pytest
from playhouse import db_url

from core import db as core_db
from tests.conftest import _PG_URL


@pytest.fixture(params=["sqlite", "postgres"])
def pool(request, tmp_path):
    """SQLite: two pooled connections to a file holding a table ``t``; PostgreSQL: three to the test database."""
    if request.param == "sqlite":
        database = core_db._pooled_sqlite_class()(str(tmp_path / "pool.sqlite3"), max_connections=2, timeout=5,
                                                  pragmas=core_db.SQLITE_PRAGMAS, check_same_thread=False)
        database.execute_sql("CREATE TABLE t (a INTEGER)")
    else:
        if not _PG_URL:
            pytest.skip("PostgreSQL not reachable")
        cls = core_db._cooperative_postgres_class(core_db._pooled(peewee.PostgresqlDatabase), True)
        params = db_url.parse(_PG_URL)
        database = cls(params.pop("database"), max_connections=3, timeout=10, **params)
    yield database
    database.close_all()
