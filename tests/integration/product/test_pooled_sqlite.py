"""SQLite connections of a process whose connection state is per greenlet (run.py): pooled and held only for a
statement or a transaction (core.db._ReleasingPool, as PostgreSQL's), so a hundred calls in the IVR do not each
keep a connection (its own parsed schema and page cache) for their life (issue 15 item 11)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core import db as core_db

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("pool", ["sqlite"], indirect=True)
def test_the_pooled_sqlite_connections_write_ahead(pool):
    """Should open every pooled SQLite connection in WAL mode (a statement's connection given back, as
    test_pooled_connections.py checks on both engines)."""
    pool.execute_sql("INSERT INTO t VALUES (1)")
    assert pool.execute_sql("PRAGMA journal_mode").fetchone() == ("wal",)


_MANY_CALLS_CHILD = """
from gevent import monkey; monkey.patch_all()
import sys
import gevent
from core import db
database = db.open_database("sqlite:///" + sys.argv[1])
database.execute_sql("CREATE TABLE t (a INTEGER)")
def call(i):
    with database.atomic():
        database.execute_sql("INSERT INTO t VALUES (?)", (i,))
    database.execute_sql("SELECT count(*) FROM t").fetchone()
    gevent.sleep(0.5)   # the call goes on (prompts, the caller talking) without the database
greenlets = [gevent.spawn(call, i) for i in range(100)]
gevent.sleep(0.3)
import os
files = sum(1 for fd in os.listdir("/proc/self/fd")
            if os.path.realpath(f"/proc/self/fd/{fd}") == sys.argv[1])
gevent.joinall(greenlets)
cache = database.execute_sql("PRAGMA cache_size").fetchone()[0]
print(type(database).__name__, files, database.execute_sql("SELECT count(*) FROM t").fetchone()[0], cache)
"""


def test_a_hundred_calls_share_a_few_sqlite_connections(tmp_path):
    """Should serve 100 greenlets of a monkey-patched process (each writes, reads, then goes on without the
    database) with at most the pool's connections open, not one per greenlet, and their page caches within
    one connection's budget."""
    path = str(tmp_path / "calls.sqlite3")
    done = subprocess.run([sys.executable, "-c", _MANY_CALLS_CHILD, path], capture_output=True, text=True,
                          timeout=90, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    name, files, rows, cache = done.stdout.split()
    assert name == "PooledCooperativeSqliteDatabase"
    assert int(files) <= core_db.SQLITE_POOL_SIZE, done.stdout
    assert int(rows) == 100
    # the connections share one connection's page-cache budget (they live as long as the process)
    assert int(cache) * core_db.SQLITE_POOL_SIZE == core_db.SQLITE_PRAGMAS["cache_size"]
