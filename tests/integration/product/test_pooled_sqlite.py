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
import gevent.event
from core import db
from tests.waiting import wait_until
database = db.open_database("sqlite:///" + sys.argv[1])
database.execute_sql("CREATE TABLE t (a INTEGER)")
past_the_database, hang_up = [], gevent.event.Event()
def call(i):
    with database.atomic():
        database.execute_sql("INSERT INTO t VALUES (?)", (i,))
    database.execute_sql("SELECT count(*) FROM t").fetchone()
    past_the_database.append(i)
    hang_up.wait(30)   # the call goes on (prompts, the caller talking) without the database
greenlets = [gevent.spawn(call, i) for i in range(100)]
wait_until(lambda: len(past_the_database) == 100, 30, "every call past its statements")
import os
files = sum(1 for fd in os.listdir("/proc/self/fd")
            if os.path.realpath(f"/proc/self/fd/{fd}") == sys.argv[1])
hang_up.set()
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
    # the connections share one page-cache budget (they live as long as the process)
    assert int(cache) * core_db.SQLITE_POOL_SIZE == core_db.SQLITE_POOL_CACHE


_BIG_FILE_CHILD = """
from gevent import monkey; monkey.patch_all()
import ctypes, sqlite3, sys
import gevent
import gevent.event
from core import db
with sqlite3.connect(sys.argv[1]) as plain:   # 40 MB of rows, written without the pool
    plain.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)")
    plain.executemany("INSERT INTO t (b) VALUES (randomblob(4000))", [()] * 10000)
database = db.open_database("sqlite:///" + sys.argv[1])
all_open = gevent.event.Event()
def reader(i):
    for _ in range(2):
        # Each reader holds a connection of its own while it scans the file, in a read transaction: atomic()'s
        # BEGIN IMMEDIATE let one reader at a time in, the others gave up after the 10 s lock timeout (60 s
        # a run, and few connections read the file at all).
        with database.atomic(lock_type="DEFERRED"):
            database.execute_sql("SELECT sum(length(b)) FROM t").fetchone()
            if len(database._in_use) == db.SQLITE_POOL_SIZE:
                all_open.set()
            all_open.wait(30)   # the first readers hold theirs until every pooled connection is open
gevent.joinall([gevent.spawn(reader, i) for i in range(db.SQLITE_POOL_SIZE * 2)], raise_error=True)
lib = ctypes.CDLL("libsqlite3.so.0")
lib.sqlite3_memory_used.restype = ctypes.c_int64
print(len(database._connections), lib.sqlite3_memory_used())
"""


def test_the_pooled_page_caches_stay_within_their_budget_on_a_large_file(tmp_path):
    """Should keep what SQLite holds in the process within the pool's page-cache budget (plus the schemas and
    statements) after every pooled connection has read a 40 MB file through, not 8 x its own budget."""
    done = subprocess.run([sys.executable, "-c", _BIG_FILE_CHILD, str(tmp_path / "big.sqlite3")],
                          capture_output=True, text=True, timeout=180, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    connections, used = (int(v) for v in done.stdout.split())
    assert connections == core_db.SQLITE_POOL_SIZE
    assert used < -core_db.SQLITE_POOL_CACHE * 1024 * 1.5, f"{used / 2**20:.1f} MiB"  # 8 x 8 MB before: 67 MiB
