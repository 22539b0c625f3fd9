"""A slow or blocked database statement waits in gevent (core.db): calls and other greenlets go on, and a
statement that waits past its timeout fails with a clear error, storing nothing.

The stalled statement runs on a connection of its own, as each greenlet has in production (run.py's
monkey-patching makes peewee's connection state greenlet-local).
"""
from __future__ import annotations

import sqlite3
import time

import gevent
import gevent.event
import pytest

from core import db as core_db
from core.db import DatabaseTimeout, DbTimeouts, open_database
from tests.fakeswitch import WaitFor


@pytest.fixture(autouse=True)
def cooperative_driver():
    """The gevent wait callback, as run.py's monkey-patched process has it (core.db installs it only where
    connection state is per greenlet; the suite is not monkey-patched), removed again afterwards."""
    import psycopg2.extensions as ext

    before = ext.get_wait_callback()
    core_db.make_psycopg2_cooperative()
    yield
    ext.set_wait_callback(before)


class Ticker:
    """A greenlet that counts 50 ms ticks: it only advances while the hub is free."""

    def __init__(self):
        self.ticks = 0
        self.greenlet = gevent.spawn(self._run)

    def _run(self):
        while True:
            gevent.sleep(0.05)
            self.ticks += 1

    def stop(self):
        self.greenlet.kill()


def _place_call(product):
    return product.fs.place_call(product.parts["outbound"].address, caller="13912345678", destination="12345",
                                 script=[WaitFor("playback", "welcome")])


def _url_of(product) -> str:
    return product.config.database_url


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_slow_postgres_query_does_not_stall_the_hub_or_calls(make_product):
    """Should keep other greenlets running (the ticker advances many times) and let a call reach the welcome
    prompt while SELECT pg_sleep(2) runs on PostgreSQL."""
    product = make_product()
    slow_db = open_database(_url_of(product))
    ticker = Ticker()
    try:
        slow_db.connect()
        # returns the ticks counted when the query came back
        query = gevent.spawn(lambda: (slow_db.execute_sql("SELECT pg_sleep(2)").fetchone(), ticker.ticks)[1])
        gevent.sleep(0)  # the query is on the wire before the call starts
        before = ticker.ticks
        call = _place_call(product)
        call.wait_for_app("playback", timeout=10)
        played_while_waiting = not query.ready()
        call.hangup()
        assert query.get(timeout=30) - before >= 10
        assert played_while_waiting
    finally:
        ticker.stop()
        slow_db.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_postgres_statement_over_its_timeout_fails_cleanly(db, db_url):
    """Should fail a statement that runs past HOTLINE_DB_STATEMENT_TIMEOUT with DatabaseTimeout naming the
    setting, roll its transaction back (nothing of it stored, earlier rows kept) and keep the connection
    usable."""
    slow_db = open_database(db_url, DbTimeouts(statement=0.5))
    slow_db.connect()
    try:
        slow_db.execute_sql("CREATE TEMPORARY TABLE kept (x int)")
        slow_db.execute_sql("INSERT INTO kept VALUES (1)")
        with pytest.raises(DatabaseTimeout, match="HOTLINE_DB_STATEMENT_TIMEOUT"):
            with slow_db.atomic():
                slow_db.execute_sql("INSERT INTO kept VALUES (2)")
                slow_db.execute_sql("SELECT pg_sleep(5)")
        assert slow_db.execute_sql("SELECT x FROM kept ORDER BY x").fetchall() == [(1,)]
    finally:
        slow_db.close()


def test_postgres_connect_is_bounded_by_its_timeout():
    """Should give up connecting after HOTLINE_DB_CONNECT_TIMEOUT with DatabaseTimeout when the server
    accepts the TCP connection but never answers (a listener that never speaks), without stalling the hub."""
    from gevent.server import StreamServer

    held = []
    silent = StreamServer(("127.0.0.1", 0), lambda sock, address: (held.append(sock), gevent.sleep(30)))
    silent.start()
    ticker = Ticker()
    try:
        dead_db = open_database(f"postgresql://nobody@127.0.0.1:{silent.server_port}/none",
                                DbTimeouts(connect=1.0))
        with pytest.raises(DatabaseTimeout, match="HOTLINE_DB_CONNECT_TIMEOUT"):
            dead_db.connect()
        assert ticker.ticks >= 5
    finally:
        ticker.stop()
        silent.stop(timeout=1)


def _sqlite_path(url: str) -> str:
    return url.split("///", 1)[1]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_lock_wait_does_not_stall_the_hub_or_calls(make_product):
    """Should keep other greenlets running and answer a new call's socket while a write waits for SQLite's
    write lock held by another connection, then store the write once the lock is released."""
    product = make_product()
    path = _sqlite_path(_url_of(product))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE IF NOT EXISTS lock_probe (x INTEGER)")
    writer_db = open_database(_url_of(product))
    ticker = Ticker()
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO lock_probe VALUES (1)")
        writer_db.connect()
        write = gevent.spawn(writer_db.execute_sql, "INSERT INTO lock_probe VALUES (2)")
        gevent.sleep(0)
        before = ticker.ticks
        call = _place_call(product)
        call.wait_connected(timeout=10)
        # 10 ticks of 50 ms while the write still waits for the lock
        product.fs.wait_for(lambda: ticker.ticks - before >= 10, 10.0, "the ticker")
        assert not write.ready()
        holder.execute("COMMIT")
        write.get(timeout=10)
        call.wait_for_app("playback", timeout=10)
        call.hangup()
        assert holder.execute("SELECT x FROM lock_probe ORDER BY x").fetchall() == [(1,), (2,)]
    finally:
        ticker.stop()
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()
        writer_db.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_lock_wait_over_its_timeout_fails_cleanly(db, db_url):
    """Should fail a write that gets no lock within HOTLINE_DB_LOCK_TIMEOUT with DatabaseTimeout naming the
    setting, roll its transaction back (earlier rows kept, nothing of it stored), keep the hub running
    meanwhile, and write normally once the lock is free."""
    path = _sqlite_path(db_url)
    # A 2 s lock wait holds 40 of the ticker's 50 ms ticks: the 5 asked for still come on a busy machine,
    # where a quarter-second stall in a 0.5 s wait (10 ticks at most) left fewer.
    writer_db = open_database(db_url, DbTimeouts(lock=2.0))
    writer_db.connect()
    writer_db.execute_sql("CREATE TABLE kept (x INTEGER)")
    writer_db.execute_sql("INSERT INTO kept VALUES (1)")
    holder = sqlite3.connect(path, isolation_level=None)
    ticker = Ticker()
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(DatabaseTimeout, match="HOTLINE_DB_LOCK_TIMEOUT"):
            with writer_db.atomic():
                writer_db.execute_sql("INSERT INTO kept VALUES (2)")
        assert ticker.ticks >= 5
        holder.execute("ROLLBACK")
        writer_db.execute_sql("INSERT INTO kept VALUES (3)")
        assert writer_db.execute_sql("SELECT x FROM kept ORDER BY x").fetchall() == [(1,), (3,)]
    finally:
        ticker.stop()
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()
        writer_db.close()


def test_sqlite_busy_snapshot_is_not_retried(tmp_path):
    """Should fail at once, not wait, when a deferred transaction's snapshot went stale
    (SQLITE_BUSY_SNAPSHOT): waiting cannot help it, and running its statement again alone would be wrong.
    (The product's transactions begin IMMEDIATE and never get there; see the next test.)"""
    url = f"sqlite:///{tmp_path / 'snap.sqlite3'}"
    first = open_database(url, DbTimeouts(lock=30))
    first.connect()
    first.execute_sql("CREATE TABLE t (x INTEGER)")
    other = sqlite3.connect(_sqlite_path(url), isolation_level=None)
    try:
        with pytest.raises(core_db.peewee.OperationalError) as raised:
            with first.atomic("DEFERRED"):
                first.execute_sql("SELECT count(*) FROM t").fetchone()  # the snapshot
                other.execute("INSERT INTO t VALUES (1)")  # committed by another connection
                first.execute_sql("INSERT INTO t VALUES (2)")
        assert not isinstance(raised.value, DatabaseTimeout)
        assert other.execute("SELECT x FROM t").fetchall() == [(1,)]
    finally:
        other.close()
        first.close()


def test_sqlite_overlapping_write_transactions_wait_instead_of_failing(tmp_path):
    """Should run two overlapping read-then-write transactions from two threads (two connections) one after
    the other: the second waits at BEGIN IMMEDIATE for the first to commit, then reads its result, so both
    increments are kept and neither fails with "database is locked" (with deferred transactions the second
    read a snapshot the first then changed: SQLITE_BUSY_SNAPSHOT at its write)."""
    import threading

    url = f"sqlite:///{tmp_path / 'writers.sqlite3'}"
    shared = open_database(url, DbTimeouts(lock=10))
    shared.execute_sql("CREATE TABLE counter (n INTEGER)")
    shared.execute_sql("INSERT INTO counter VALUES (0)")
    shared.close()
    first_read, second_begins = threading.Event(), threading.Event()
    errors, seen = [], {}

    def increment(name, before=None, after_read=None):
        try:
            if before is not None:
                before.wait(10)
                second_begins.set()
            with shared.atomic():
                n = shared.execute_sql("SELECT n FROM counter").fetchone()[0]
                seen[name] = n
                if after_read is not None:
                    after_read.set()
                    second_begins.wait(10)
                    time.sleep(0.3)  # the second writer's BEGIN is on its way meanwhile
                shared.execute_sql("UPDATE counter SET n = ?", (n + 1,))
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(f"{name}: {error!r}")
        finally:
            shared.close()

    first = threading.Thread(target=increment, args=("first",), kwargs={"after_read": first_read})
    second = threading.Thread(target=increment, args=("second",), kwargs={"before": first_read})
    first.start()
    second.start()
    first.join(30)
    second.join(30)
    assert errors == []
    assert seen == {"first": 0, "second": 1}
    assert shared.execute_sql("SELECT n FROM counter").fetchone()[0] == 2
    shared.close()


# One psycopg2 connection shared by greenlets (peewee's per-thread state without monkey-patching, as in
# every test process): greenlet A's statement is in flight (psycopg2 holds the connection's own mutex while
# the wait callback yields) when the main greenlet leaves a connection_context() as recorder.hooks does,
# the last context out closing the connection. In a child process: before the fix the whole thread blocked
# in that mutex for ever, no greenlet left to release it (the live product stopped reading its calls).
_SHARED_CONNECTION_CHILD = r"""
import sys

import gevent

from core import db as core_db

database = core_db.bind_database(sys.argv[1])
core_db.make_psycopg2_cooperative()  # not monkey-patched: installed by hand, as the fixture does
database.connect()
ticks = []
ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.05)) for _ in iter(int, 1)])
# 2 s: room for 40 ticks of 50 ms, so the 5 asked for come on a busy machine too (0.5 s held 10 at most)
slow = gevent.spawn(lambda: database.execute_sql("SELECT 'slept' FROM pg_sleep(2)").fetchone()[0])
gevent.sleep(0)  # the slow statement is on the wire, psycopg2's mutex held by its greenlet
with database.connection_context():
    pass
print(slow.get(timeout=10), database.is_closed(), len(ticks) >= 5, flush=True)
"""


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_greenlet_closing_a_shared_connection_waits_for_the_statement_in_flight(db_url):
    """Should let a greenlet close a PostgreSQL connection that another greenlet's statement is still
    running on: the close waits in gevent for that statement (which gets its result), the hub keeps running,
    and nothing blocks the process."""
    import subprocess
    import sys
    from pathlib import Path

    try:
        done = subprocess.run([sys.executable, "-c", _SHARED_CONNECTION_CHILD, db_url],
                              cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("closing a shared connection during another greenlet's statement blocked the process")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["slept", "True", "True"]
