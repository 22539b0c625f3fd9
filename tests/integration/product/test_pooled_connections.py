"""PostgreSQL connections of a process whose connection state is per greenlet (run.py, the web workers): pooled
and held only for a statement or a transaction (core.db._ReleasingPool), so a thousand calls in the IVR do not
ask the server for a thousand connections (issue 15 item 9). The tests on the ``pool`` fixture run on SQLite's
pool too (test_pooled_sqlite.py has its own)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import peewee
import pytest
from playhouse import db_url

from core import db as core_db
from tests.conftest import _PG_URL

REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(not _PG_URL, reason="PostgreSQL not reachable")


def test_a_statement_gives_its_connection_back(pool):
    """Should hold a connection only while a statement runs, and keep a transaction's until it ends."""
    assert pool.execute_sql("SELECT 1").fetchall() == [(1,)]
    assert pool.is_closed() and len(pool._in_use) == 0 and len(pool._connections) == 1
    with pool.atomic():
        pool.execute_sql("SELECT 1")
        with pool.atomic():  # a savepoint: still the transaction's one connection
            pool.execute_sql("SELECT 2")
            assert len(pool._in_use) == 1
        assert not pool.is_closed()
    assert pool.is_closed() and len(pool._in_use) == 0
    with pytest.raises(peewee.DatabaseError):
        with pool.atomic():
            pool.execute_sql("SELECT no_such_column")
    assert pool.is_closed() and len(pool._in_use) == 0  # rolled back and given back


def test_connection_contexts_survive_the_releases(pool):
    """Should keep connection_context() blocks counted while statements inside them give connections back."""
    with pool.connection_context():
        pool.execute_sql("SELECT 1")
        with pool.connection_context():
            pool.execute_sql("SELECT 2")
        pool.execute_sql("SELECT 3")
    assert pool.is_closed() and len(pool._in_use) == 0


def test_a_failed_statement_gives_its_connection_back(pool):
    """Should give the connection back when a statement outside a transaction fails, so a greenlet that
    catches the error and ends does not keep it out of the pool for good."""
    for _ in range(5):  # more failures than the pool has connections
        with pytest.raises(peewee.DatabaseError):
            pool.execute_sql("SELECT no_such_column")
        assert pool.is_closed() and len(pool._in_use) == 0
    assert pool.execute_sql("SELECT 1").fetchall() == [(1,)]


def test_a_full_pool_fails_with_a_database_timeout():
    """Should refuse a statement that finds every pooled connection taken for the pool's wait with
    DatabaseTimeout (what callers handle), not playhouse's MaxConnectionsExceeded (a ValueError)."""
    import threading

    cls = core_db._cooperative_postgres_class(core_db._pooled(peewee.PostgresqlDatabase), True)
    params = db_url.parse(_PG_URL)
    database = cls(params.pop("database"), max_connections=1, timeout=1, **params)
    raised = []

    def other_thread():  # a connection state of its own (threads: the pool's waits are threading's here)
        try:
            database.execute_sql("SELECT 1")
        except Exception as error:  # noqa: BLE001 - asserted below
            raised.append(error)

    try:
        with database.atomic():
            database.execute_sql("SELECT 1")
            thread = threading.Thread(target=other_thread)
            thread.start()
            thread.join(30)
        assert len(raised) == 1 and isinstance(raised[0], core_db.DatabaseTimeout), raised
        assert "max_connections" in str(raised[0])
        assert database.execute_sql("SELECT 2").fetchall() == [(2,)]
    finally:
        database.close_all()


# 40 greenlets of a monkey-patched process (as run.py: gevent's threading.local, locks and conditions) share
# a pool of three: those finding every connection taken wait in gevent for one to come back. In a child
# process: unpatched, the pool's threading.Condition blocks the whole thread and no greenlet gives its
# connection back (the hang seen with py-spy in PooledDatabase.connect).
_MANY_GREENLETS_CHILD = r"""
from gevent import monkey; monkey.patch_all()
import sys
import time
import gevent
import peewee
from core import db as core_db

database = core_db.open_database(sys.argv[1])
seen, failed = set(), []

def work(n):
    for _ in range(3):
        with database.atomic():
            seen.add(database.execute_sql("SELECT pg_backend_pid()").fetchone()[0])
            database.execute_sql("SELECT pg_sleep(0.01)")
        database.execute_sql("SELECT %s", (n,))
        try:
            database.execute_sql("SELECT no_such_column")
        except peewee.ProgrammingError:
            failed.append(n)

gevent.joinall([gevent.spawn(work, n) for n in range(40)], timeout=60, raise_error=True)
print(len(seen), len(failed), len(database._in_use), len(database._connections), flush=True)
database.close_all()
"""


def test_many_greenlets_share_a_few_connections():
    """Should serve 40 greenlets' transactions, statements and failing statements with at most the pool's
    three connections, every one of them back in the pool at the end."""
    url = _PG_URL + ("&" if "?" in _PG_URL else "?") + "max_connections=3"
    try:
        done = subprocess.run([sys.executable, "-c", _MANY_GREENLETS_CHILD, url], capture_output=True, text=True,
                              timeout=90, cwd=REPO)
    except subprocess.TimeoutExpired:
        pytest.fail("greenlets waiting for a pooled connection blocked the process")
    assert done.returncode == 0, done.stderr[-2000:]
    connections, failures, in_use, idle = map(int, done.stdout.split())
    assert 1 <= connections <= 3 and failures == 120
    assert in_use == 0 and 1 <= idle <= 3


@pytest.mark.parametrize("pool", ["postgres"], indirect=True)
def test_a_connection_the_server_ended_leaves_the_pool(pool):
    """Should drop a connection the server terminated from the pool's accounts and connect anew."""
    with pool.atomic():
        pid = pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    killer = core_db.open_database(_PG_URL)
    killer.execute_sql("SELECT pg_terminate_backend(%s)", (pid,))
    killer.close()
    for _ in range(2):  # the first statement may find the connection dead; the next one works
        try:
            assert pool.execute_sql("SELECT 1").fetchall() == [(1,)]
            break
        except peewee.OperationalError:
            continue
    assert len(pool._in_use) == 0
    assert pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid


def test_a_patched_process_pools_its_postgresql_connections():
    """Should open a pooled, releasing database in a monkey-patched process (run.py) and a plain one otherwise,
    the pool's size and wait taken from the URL when it says so."""
    script = ("from gevent import monkey; monkey.patch_all()\n"
              "import sys; from playhouse.pool import PooledDatabase; from core import db\n"
              "d = db.open_database(sys.argv[1]); e = db.open_database(sys.argv[1] + sep + 'max_connections=7')\n"
              "assert isinstance(d, PooledDatabase) and isinstance(d, db._ReleasingPool), type(d).__mro__\n"
              "assert d._max_connections == db.POOL_SIZE and e._max_connections == 7\n"
              "d.execute_sql('SELECT 1'); assert d.is_closed() and not d._in_use\n"
              "print('ok')\n").replace("sep", repr("&" if "?" in _PG_URL else "?"))
    done = subprocess.run([sys.executable, "-c", script, _PG_URL], capture_output=True, text=True, timeout=60,
                          cwd=REPO)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
    plain = core_db.open_database(_PG_URL)
    assert not isinstance(plain, core_db.PooledDatabase)


def test_patched_after_peewee_was_imported_is_not_pooled():
    """Should keep the plain database when the process was monkey-patched after peewee was imported: peewee's
    connection state is then still the thread's, shared by every greenlet, and releasing it after each
    statement took connections from under other greenlets ("Connection already opened")."""
    script = ("import peewee\n"
              "from gevent import monkey; monkey.patch_all()\n"
              "import sys; from playhouse.pool import PooledDatabase; from core import db\n"
              "assert not db.greenlet_local_connections()\n"
              "assert not isinstance(db.open_database(sys.argv[1]), PooledDatabase)\n"
              "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", script, _PG_URL], capture_output=True, text=True, timeout=60,
                          cwd=REPO)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


# A greenlet waiting for the only connection of the pool while another holds the pool's lock for a slow
# connect: its connect timeout strikes as the wait takes that lock again (threading.Condition's wait left the
# lock without its owner: "cannot release un-acquired lock", 150 of 1000 callers in bench/ivr.py).
_WAIT_STRUCK_BY_TIMEOUT_CHILD = r"""
from gevent import monkey; monkey.patch_all()
import sys
import time
import gevent
from core import db as core_db

import gevent.event
from tests.waiting import wait_until

database = core_db.open_database(sys.argv[1], core_db.DbTimeouts(connect=2.0))
holding, waiter_done = gevent.event.Event(), gevent.event.Event()

def holder():   # the pool's only connection, until the waiter has its answer
    with database.atomic():
        database.execute_sql("SELECT 1")
        holding.set()
        waiter_done.wait(20)

def slow_connect():   # the pool's lock, from the waiter's queueing to its answer
    wait_until(lambda: len(database._pool_available._queue) == 1, 10, "the waiter queued")
    with database._pool_lock:
        waiter_done.wait(20)

def waiter():
    holding.wait(10)
    try:
        database.execute_sql("SELECT 2")
        return "ran"
    except Exception as error:
        return type(error).__name__
    finally:
        waiter_done.set()

greenlets = [gevent.spawn(holder), gevent.spawn(slow_connect), gevent.spawn(waiter)]
gevent.joinall(greenlets, timeout=20)
print(greenlets[2].value, database.execute_sql("SELECT 3").fetchone()[0], len(database._in_use), flush=True)
database.close_all()
"""


def test_a_wait_for_the_pool_cut_by_the_connect_timeout_fails_cleanly():
    """Should fail a statement whose wait for a pooled connection outlasts the connect timeout with
    DatabaseTimeout, and leave the pool usable, while another greenlet holds the pool's lock."""
    url = _PG_URL + ("&" if "?" in _PG_URL else "?") + "max_connections=1"
    done = subprocess.run([sys.executable, "-c", _WAIT_STRUCK_BY_TIMEOUT_CHILD, url], capture_output=True,
                          text=True, timeout=90, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["DatabaseTimeout", "3", "0"], done.stderr[-2000:]


# PostgreSQL only: SQLite's pooled class puts _ReleasingPool before _TransactionEnd (core.db._pooled_sqlite_class),
# so there the deferred call runs while the transaction's connection is still out ([(False, 1)]).
@pytest.mark.parametrize("pool", ["postgres"], indirect=True)
def test_what_waits_for_the_transaction_runs_with_its_connection_given_back(pool):
    """Should run what after_transaction deferred once the outermost transaction has rolled back, after its
    connection went back to the pool (an alarm stored then takes a connection of its own)."""
    seen = []
    with pytest.raises(RuntimeError):
        with pool.atomic():
            pool.execute_sql("SELECT 1")
            core_db.after_transaction(lambda: seen.append((pool.in_transaction(), len(pool._in_use))), pool)
            assert seen == []
            raise RuntimeError("rolled back")
    assert seen == [(False, 0)]


def _terminate_idle(pool) -> int:
    """The backend of the pool's one idle connection, terminated (_terminate)."""
    pid = pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    assert len(pool._connections) == 1 and not pool._in_use
    return _terminate(pid)


def _terminate(pid: int) -> int:
    """Backend ``pid`` terminated from another connection (as a restart or an administrator does), and gone
    from pg_stat_activity before this returns."""
    import psycopg2

    admin = psycopg2.connect(_PG_URL.split("?", 1)[0], connect_timeout=5)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
            for _ in range(100):
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
                if cursor.fetchone()[0] == 0:
                    break
                time.sleep(0.02)
    finally:
        admin.close()
    return pid


@pytest.fixture
def statements(monkeypatch):
    """Every statement psycopg2 sends for core.db's connections (one round trip each), the pool's ping too."""
    cursor_class = core_db._psycopg2_classes()[1]
    sent, execute = [], cursor_class.execute

    def counted(self, sql, *args, **kwargs):
        sent.append(sql)
        return execute(self, sql, *args, **kwargs)

    monkeypatch.setattr(cursor_class, "execute", counted)
    return sent


@pytest.mark.parametrize("pool", ["postgres"], indirect=True)
def test_a_read_takes_its_connection_without_a_ping_and_a_write_too(pool, statements):
    """Should send a read alone (one round trip, not playhouse's SELECT 1 first), BEGIN alone, and a write
    outside a transaction alone while the server has said nothing on its idle connection (the ping cost each
    such write a second round trip under the simulation's load)."""
    pool.execute_sql("SELECT 1")  # the pool's connection opened
    statements.clear()
    for n in range(10):
        assert pool.execute_sql("SELECT %s", (n,)).fetchone() == (n,)
    assert statements == ["SELECT %s"] * 10
    statements.clear()
    with pool.atomic():
        pool.execute_sql("SELECT 2")
    assert statements == ["BEGIN", "SELECT 2", "COMMIT"]
    statements.clear()
    pool.execute_sql("CREATE TEMPORARY TABLE IF NOT EXISTS dbping_t (a integer)")
    assert statements == ["CREATE TEMPORARY TABLE IF NOT EXISTS dbping_t (a integer)"]


@pytest.mark.parametrize("pool", ["postgres"], indirect=True)
def test_a_read_on_a_terminated_connection_runs_again_on_another(pool, statements):
    """Should answer a read whose pooled connection the server had ended, run once more on a new
    connection, the dead one out of the pool; a transaction's BEGIN the same way."""
    pid = _terminate_idle(pool)
    statements.clear()
    assert pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid
    assert statements == ["SELECT pg_backend_pid()", "SELECT pg_backend_pid()"]  # the new one: no ping
    assert not pool._in_use and len(pool._connections) == 1
    pid = _terminate_idle(pool)
    with pool.atomic():
        assert pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid
    assert not pool._in_use and len(pool._connections) == 1


@pytest.mark.parametrize("pool", ["postgres"], indirect=True)
def test_a_write_on_a_terminated_connection_runs_once(pool):
    """Should store a write outside a transaction exactly once when its pooled connection was dead (the
    ping finds it; the write itself is never run again)."""
    table = f"dbping_write_{os.getpid()}"
    pool.execute_sql(f"CREATE TABLE {table} (a integer)")
    try:
        _terminate_idle(pool)
        pool.execute_sql(f"INSERT INTO {table} VALUES (1)")
        assert pool.execute_sql(f"SELECT count(*) FROM {table}").fetchone() == (1,)
    finally:
        pool.execute_sql(f"DROP TABLE {table}")


@pytest.mark.parametrize("pool", ["postgres"], indirect=True)
def test_a_write_pings_the_connection_only_once_the_server_ended_it(pool, statements):
    """Should send a write outside a transaction alone on a live idle connection, and ask the server first
    (SELECT 1) on one whose backend was terminated: the FATAL message or the close is on its socket, so the
    dead connection is found and the write goes once to a new one."""
    table = f"dbping_alone_{os.getpid()}"
    pool.execute_sql(f"CREATE TABLE {table} (a integer)")
    try:
        statements.clear()
        pool.execute_sql(f"INSERT INTO {table} VALUES (1)")
        assert statements == [f"INSERT INTO {table} VALUES (1)"]
        _terminate_idle(pool)
        statements.clear()
        pool.execute_sql(f"INSERT INTO {table} VALUES (2)")
        assert statements[0] == "SELECT 1" and statements.count(f"INSERT INTO {table} VALUES (2)") == 1
        assert pool.execute_sql(f"SELECT count(*) FROM {table}").fetchone() == (2,)
    finally:
        pool.execute_sql(f"DROP TABLE {table}")


@pytest.mark.parametrize("pool", ["postgres"], indirect=True)
def test_a_write_pings_a_connection_idle_past_the_limit(pool, statements, monkeypatch):
    """Should ask the server (SELECT 1) before a write outside a transaction on a connection idle longer than
    IDLE_PING_AFTER even when nothing arrived on its socket (a host lost, an address moved), so a connection
    that died silently is replaced and the write goes once to a new one; one used just now is not asked."""
    table = f"dbping_idle_{os.getpid()}"
    pool.execute_sql(f"CREATE TABLE {table} (a integer)")
    monkeypatch.setattr(core_db, "_server_spoke", lambda conn: False)  # the silence of a lost host
    try:
        statements.clear()
        pool.execute_sql(f"INSERT INTO {table} VALUES (1)")
        assert statements == [f"INSERT INTO {table} VALUES (1)"]
        pid = _terminate_idle(pool)
        assert len(pool._idle_since) == 1
        for key in pool._idle_since:  # gone back longer ago than the limit
            pool._idle_since[key] -= pool.IDLE_PING_AFTER + 1
        statements.clear()
        pool.execute_sql(f"INSERT INTO {table} VALUES (2)")
        assert statements[0] == "SELECT 1" and statements.count(f"INSERT INTO {table} VALUES (2)") == 1
        assert pool.execute_sql(f"SELECT count(*) FROM {table}").fetchone() == (2,)
        assert pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid
    finally:
        pool.execute_sql(f"DROP TABLE {table}")


@pytest.mark.parametrize("pool", ["postgres"], indirect=True)
def test_a_transaction_whose_connection_dies_fails_to_its_caller(pool):
    """Should fail the statement of a transaction whose backend was terminated (nothing of it is run again),
    and serve the next statement on a new connection."""
    with pytest.raises((peewee.OperationalError, peewee.InterfaceError)) as raised:
        with pool.atomic():
            pid = _terminate(pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0])
            pool.execute_sql("SELECT 1")
    assert core_db.connection_lost(raised.value)
    assert pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid
    assert not pool._in_use


def test_only_plain_reads_are_run_again():
    """Should call a read only what cannot take effect twice."""
    for sql in ("SELECT 1", " (SELECT a FROM t) UNION (SELECT 2)", "WITH x AS (SELECT 1) SELECT * FROM x",
                "SHOW statement_timeout", 'SELECT "t"."updated_at" FROM "t"',
                "SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off; SELECT 1"):  # caseflow.portal's
        assert core_db._is_read(sql), sql
    for sql in ("INSERT INTO t VALUES (1)", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
                "SELECT * FROM t FOR UPDATE", "SELECT nextval('s')", "SELECT pg_advisory_lock(1)",
                "SELECT * INTO u FROM t", "UPDATE t SET a = 1", "BEGIN", "SET x = 1", "SET LOCAL x = 1",
                "SET LOCAL x = 1; INSERT INTO t VALUES (1)", "SET x = 1; SELECT 1"):
        assert not core_db._is_read(sql), sql
