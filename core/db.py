"""Database plumbing: one DatabaseProxy, the BaseModel every model derives from, and schema creation.

SQLite (WAL, foreign keys on) and PostgreSQL go through the same code. Schema changes follow
``core.migrations``: tables are created from the models, later changes are named steps, each inside
``schema_change()`` (PostgreSQL's per-statement timeout lifted: an index on a big table takes minutes).

Both drivers wait cooperatively, so one slow statement never freezes the gevent hub (every call, the ESL
readers and the web server share it): psycopg2 gets a gevent wait callback and a connect, statement and lock
timeout; SQLite gets no busy_timeout (its C busy handler sleeps with the hub blocked) and instead retries a
statement refused with SQLITE_BUSY after a gevent sleep, up to the lock timeout.

SQLite transactions (``database.atomic()``) begin IMMEDIATE: they take the write lock at BEGIN, so two
overlapping writers queue there (the second waits, cooperatively) instead of the second reading a snapshot
the first then changes, which SQLite refuses at its first write with "database is locked"
(SQLITE_BUSY_SNAPSHOT) however long it waits. ``database.atomic("DEFERRED")`` still asks for the other kind.

Where connection state is per greenlet (a monkey-patched process: run.py, the web workers, the benchmarks),
PostgreSQL connections come from a pool (``max_connections``, 20 unless the URL says otherwise) and a greenlet
holds one only for a statement or a transaction (``_ReleasingPool``), so a thousand calls need a handful;
SQLite's too (``SQLITE_POOL_SIZE``): a connection kept per call parsed the schema again for each.
The call process checkpoints SQLite's WAL from a thread of its own (``WalCheckpointer``, a ``SqliteThread``): a
commit on the hub never syncs the database file.
``after_transaction(fn)`` runs ``fn`` once the caller's outermost transaction has ended, committed or rolled
back (the alarm path uses it: an alarm about the failure that rolls a transaction back must outlive it).
Long because: both drivers' cooperative waiting (SQLite busy retries, psycopg2 waits, the pool) is one concern.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import logging
import math
import re
import sqlite3
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlparse, urlsplit, urlunsplit

import gevent
import gevent.event
import peewee
from gevent.socket import wait_read, wait_write
from playhouse import db_url
from playhouse.pool import MaxConnectionsExceeded, PooledDatabase, _PooledPostgresqlDatabase

from core.logsetup import hide_statement_values

log = logging.getLogger(__name__)

database = peewee.DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    # Never wait for a lock inside SQLite: _CooperativeCursor waits in gevent instead.
    "busy_timeout": 0,
    "synchronous": "normal",
    "cache_size": -64 * 1000,
}


class BaseModel(peewee.Model):
    """Base for every model: binds to the proxy so tests and run.py choose the database."""

    class Meta:
        database = database
        legacy_table_names = False


@dataclass(frozen=True)
class DbTimeouts:
    """How long a database may keep a caller waiting (Config: db_connect_timeout, db_statement_timeout,
    db_lock_timeout), in seconds."""

    connect: float = 10.0
    statement: float = 30.0
    lock: float = 10.0

    @classmethod
    def from_config(cls, config) -> "DbTimeouts":
        return cls(connect=config.db_connect_timeout, statement=config.db_statement_timeout,
                   lock=config.db_lock_timeout)


class DatabaseTimeout(peewee.OperationalError):
    """A statement or connection waited longer than its configured timeout; nothing of it was stored."""


class _TransactionEnd:
    """Mixin for both drivers' databases: what ``after_transaction`` deferred runs once the outermost
    transaction of the connection state (per greenlet where the process is monkey-patched) has ended,
    committed or rolled back. peewee's own ``after_commit`` drops its callbacks on a rollback; this is for
    what must happen either way (an alarm about the very failure that rolled the transaction back)."""

    def commit(self):
        result = super().commit()
        self._transaction_ended()
        return result

    def rollback(self):
        try:
            return super().rollback()
        finally:  # a rollback that fails (the connection lost) ends the transaction all the same
            self._transaction_ended()

    def _transaction_ended(self) -> None:
        if self.transaction_depth():  # a commit inside an open block (txn.commit(), manual_commit)
            return
        pending = getattr(self._state, "after_transaction", None)
        if not pending:
            return
        todo, pending[:] = list(pending), []
        for fn in todo:
            try:
                fn()
            except Exception:  # noqa: BLE001 - the transaction is over; one callback must not stop the next
                log.exception("deferred to the end of a transaction: %r failed", fn)


def after_transaction(fn, db: peewee.Database | None = None) -> bool:
    """Call ``fn()`` now, or, inside a transaction of ``db`` (the bound database), as soon as the outermost
    one has ended, whether it committed or rolled back; its own writes then stand on their own. Returns
    True when deferred. A database without the mixin, or a ``manual_commit`` block, calls it now."""
    target = db or database.obj
    if (not isinstance(target, _TransactionEnd) or not target.in_transaction()
            or isinstance(target.top_transaction(), peewee._manual)):
        fn()
        return False
    state = target._state
    pending = getattr(state, "after_transaction", None)
    if pending is None:
        pending = state.after_transaction = []
    pending.append(fn)
    return True


# PostgreSQL's connection exception class (08...) and the server going down (admin_shutdown, crash_shutdown,
# cannot_connect_now): the statement never ran, the connection is gone.
_CONNECTION_LOST_CODES = ("57P01", "57P02", "57P03")
_CONNECTION_LOST_TEXTS = ("server closed the connection", "connection already closed", "could not connect",
                          "terminating connection", "connection not open", "no connection to the server",
                          "Connection refused")


def connection_lost(error: BaseException) -> bool:
    """True when ``error`` says the database connection failed or went away (PostgreSQL restarted, a backend
    terminated, the network cut), as opposed to a statement that failed or waited too long: what a caller
    may retry on a new connection once the database answers again."""
    if isinstance(error, DatabaseTimeout):
        return False
    if not isinstance(error, (peewee.OperationalError, peewee.InterfaceError)):
        return False
    driver = _driver_error(error)
    code = getattr(driver, "pgcode", None) or ""
    if code.startswith("08") or code in _CONNECTION_LOST_CODES:
        return True
    if driver is not None and type(driver).__module__.startswith("sqlite3"):
        return False
    text = str(driver if driver is not None else error)
    return any(part in text for part in _CONNECTION_LOST_TEXTS)


def _driver_error(error: peewee.PeeweeException) -> BaseException | None:
    """The driver's exception that peewee wrapped (its first argument, and the context it was raised in)."""
    if error.args and isinstance(error.args[0], BaseException):
        return error.args[0]
    return error.__cause__ or error.__context__


# ---- SQLite ----------------------------------------------------------------------------------------------

# SQLITE_BUSY and SQLITE_BUSY_RECOVERY: the lock may come free, so the statement may be run again (it did
# nothing). Not SQLITE_BUSY_SNAPSHOT (517): the transaction read a snapshot that is now stale, and waiting
# cannot help (SQLite's own busy handler is not called for it either).
_RETRY_BUSY = frozenset({5, 261})


def sqlite_busy(error: BaseException) -> bool:
    """Whether an sqlite3 error is a lock not taken (SQLITE_BUSY, SQLITE_BUSY_RECOVERY): nothing was changed, the
    statement may be run again later."""
    return getattr(error, "sqlite_errorcode", None) in _RETRY_BUSY


class _LockTimeout(sqlite3.OperationalError):
    """No lock within the lock timeout (peewee turns it into OperationalError; the database into
    DatabaseTimeout)."""


class _CooperativeCursor(sqlite3.Cursor):
    """A cursor whose statements wait for SQLite's locks in gevent, not in SQLite's busy handler.

    In WAL mode a statement is refused with SQLITE_BUSY only where it needs a lock it cannot take (the
    write lock at BEGIN IMMEDIATE or at a transaction's first write, WAL recovery); it has changed nothing
    then, so running it again later is what the busy handler would have done, while other greenlets run.
    """

    def execute(self, sql, parameters=()):
        return self._retry(super().execute, sql, parameters)

    def executemany(self, sql, seq_of_parameters):
        return self._retry(super().executemany, sql, seq_of_parameters)

    def _retry(self, run, sql, parameters):
        connection = self.connection
        lock_timeout = getattr(connection, "lock_timeout", DbTimeouts.lock)
        deadline = None
        delay = 0.001
        while True:
            in_transaction = connection.in_transaction
            try:
                return run(sql, parameters)
            except sqlite3.OperationalError as error:
                if not sqlite_busy(error):
                    raise
                if in_transaction and not connection.in_transaction:
                    raise  # SQLite rolled the whole transaction back: running the statement alone is wrong
                now = time.monotonic()
                deadline = deadline or now + lock_timeout
                if now >= deadline:
                    raise _LockTimeout(
                        f"database is locked: no lock within {lock_timeout:g} s (HOTLINE_DB_LOCK_TIMEOUT); "
                        "the statement was not run") from error
                gevent.sleep(min(delay, deadline - now))
                delay = min(delay * 2, 0.05)


class _CooperativeConnection(sqlite3.Connection):
    """sqlite3 connection whose cursors are _CooperativeCursor; ``lock_timeout`` set by the database."""

    lock_timeout = DbTimeouts.lock

    def cursor(self, factory=_CooperativeCursor):
        return super().cursor(factory)


class _GreenletSafeConnect:
    """Connecting may now yield to other greenlets (the wait callback, a lock wait in a pragma): peewee's
    lock becomes a gevent lock (a thread lock held across a yield deadlocks the thread when the tests,
    without monkey-patching, share one connection state between greenlets), and a greenlet that waited
    while another connected that shared state takes the connection instead of failing.

    One lock per thread, like the connection state it guards (peewee keeps it in a threading.local): a
    gevent lock belongs to its thread's hub, and one shared by real threads (tests claiming a row from two
    threads at once) failed in the second thread. Monkey-patched, threading.local is per greenlet."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._connect_locks = threading.local()

    def _connect_lock(self):
        lock = getattr(self._connect_locks, "lock", None)
        if lock is None:
            from gevent.lock import RLock

            lock = self._connect_locks.lock = RLock()
        return lock

    # peewee's own thread lock, taken by connect, close and dispose, is this gevent lock too: a greenlet
    # connecting may yield inside it (a pragma waiting for SQLite's lock sleeps in gevent), and another
    # greenlet of the thread closing meanwhile blocked the whole thread on the thread lock for ever (a
    # product test's scheduled SMS job closing its connection_context hung the suite in CI).
    @property
    def _lock(self):
        return self._connect_lock()

    @_lock.setter
    def _lock(self, _peewee_thread_lock):
        pass  # peewee's __init__ assigns a threading.Lock: the property above stands in for it

    def connect(self, reuse_if_open=False):
        lock = self._connect_lock()
        waited = lock.locked()
        with lock:
            return super().connect(reuse_if_open or waited)


_AUTOCHECKPOINT = 1000  # SQLite's default: a commit crossing that many WAL pages checkpoints the file


class SqliteThread:
    """A real OS thread (a gevent thread pool of one, its own) with a connection of its own to an SQLite
    database file, doing ``_round(conn)`` every ``interval`` s until ``stop()``, then ``_last(conn)``: upkeep
    that would otherwise run on the hub inside a commit (WalCheckpointer; caseflow.search_merging.FtsMerger).
    ``beat`` is its heartbeat, ``last_error`` its last failure (no logging in the thread: its locks are gevent's
    in a patched process, not this thread's)."""

    def __init__(self, db: "CooperativeSqliteDatabase", interval: float):
        self.db, self.interval = db, interval
        self.path = db.database
        self.beat = 0.0  # time.monotonic() of the thread's last round
        self.rounds = 0
        self.last_error = ""
        self._stopping = False
        self._wake = self._event()  # the thread's own (unpatched) Event: stop() sets it, a wait ends at once
        self._result = None
        self._pool = None

    # sqlite3.connect's busy timeout (SQLite's own busy handler: fine in a thread of its own)
    busy_timeout = 5.0

    def alive(self) -> bool:
        return self._result is not None and time.monotonic() - self.beat < max(5.0, 5 * self.interval)

    @staticmethod
    def _event():
        from gevent import monkey

        return monkey.get_original("threading", "Event")()

    def start(self):
        self.beat = time.monotonic()
        self._stopping, self._wake = False, self._event()
        # Not the hub's shared pool: its 10 threads are for short work (core.offload: argon2 at log-in, TTS), and
        # each of these runs for the process's life; two of them held two of the ten.
        from gevent.threadpool import ThreadPool

        if self._pool is not None:  # a thread that ended (watch() starts it again): its pool goes with it
            self._pool.kill()
        self._pool = ThreadPool(1)
        self._result = self._pool.spawn(self._run)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after its last round (``_last``)."""
        if self._result is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            self._result.get(timeout=timeout)
        # logged; the caller's clean-up goes on (gevent.Timeout, the wait's own, is a BaseException)
        except (Exception, gevent.Timeout):  # noqa: BLE001
            log.exception("%s of %s", type(self).__name__, self.path)
        self._result = None
        self._pool.kill()  # its thread ends once its round does (at once when it has ended)
        self._pool = None

    def pause(self, seconds: float) -> bool:
        """Wait in the thread (not the hub) up to ``seconds``; False once stop() was asked for."""
        self._wake.wait(seconds)
        return not self._stopping

    def _run(self) -> None:  # in a real thread: blocking here blocks nobody else
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        # as the product's connections: in WAL mode a commit then syncs nothing (FULL, sqlite3's default, synced
        # the WAL at each of the merger's commits with the write lock held; checkpoints sync either way)
        conn.execute(f"PRAGMA synchronous={SQLITE_PRAGMAS['synchronous']}")
        try:
            while not self._stopping:
                self.beat = time.monotonic()
                try:
                    self._round(conn)
                except Exception as error:  # noqa: BLE001 - a round's bug must not end the upkeep: kept, tried again
                    self.last_error = f"{type(error).__name__}: {error}"
                self.rounds += 1
                self._wake.wait(self.interval)
            self._last(conn)
        finally:
            conn.close()

    def _round(self, conn: sqlite3.Connection) -> None:
        raise NotImplementedError

    def _last(self, conn: sqlite3.Connection) -> None:
        """After the last round, before the thread ends (nothing by default)."""


class WalCheckpointer(SqliteThread):
    """Checkpoints an SQLite database's WAL from a thread of its own (SqliteThread), so the sync of the database
    file never runs on the hub inside a commit (issue 15 item 7: SQLite's automatic checkpoint, in whichever
    commit crossed 1,000 WAL pages, was ticket creation's p99).

    Every ``interval`` s a PASSIVE checkpoint (copies what no reader still needs, waits for nobody); a TRUNCATE
    one when the WAL file passed ``truncate_above`` bytes, and at ``stop()``. While its heartbeat is fresh the
    database's connections run with wal_autocheckpoint=0 (CooperativeSqliteDatabase.cursor); a checkpointer
    that died or stopped gives them SQLite's automatic checkpoints back at their next statement. For the
    product's call process (hotline.product.Product) and the benchmarks measuring it, not for short-lived
    tools."""

    def __init__(self, db: "CooperativeSqliteDatabase", interval: float = 1.0,
                 truncate_above: int = 64 * 1024 * 1024):
        super().__init__(db, interval)
        self.truncate_above = truncate_above
        self.checkpoints = 0

    def start(self) -> "WalCheckpointer":
        super().start()
        self.db.wal_checkpointer = self
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after a last TRUNCATE checkpoint (the WAL file left empty if nobody reads)."""
        if self._result is None:
            return
        super().stop(timeout)
        self.db.wal_checkpointer = None

    def _wal_size(self) -> int:
        try:
            return Path(f"{self.path}-wal").stat().st_size
        except OSError:
            return 0

    def _round(self, conn) -> None:
        self._checkpoint(conn, "TRUNCATE" if self._wal_size() > self.truncate_above else "PASSIVE")

    def _last(self, conn) -> None:
        self._checkpoint(conn, "TRUNCATE")

    def _checkpoint(self, conn, mode: str) -> None:
        try:
            conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
            self.checkpoints += 1
        except sqlite3.OperationalError as error:  # busy: the next round tries again
            self.last_error = f"{mode}: {error}"


def sqlite_file(db: peewee.Database) -> bool:
    """Whether ``db`` is an SQLite database in a file (a thread of its own can open it: not PostgreSQL, not an
    in-memory database)."""
    return isinstance(db, CooperativeSqliteDatabase) and db.database not in (":memory:", "")


def start_wal_checkpointer(db: peewee.Database) -> WalCheckpointer | None:
    """A started WalCheckpointer for an SQLite database file (None for PostgreSQL or an in-memory database)."""
    return WalCheckpointer(db).start() if sqlite_file(db) else None


class CooperativeSqliteDatabase(_TransactionEnd, _GreenletSafeConnect, peewee.SqliteDatabase):
    """SqliteDatabase whose lock waits yield to other greenlets (see _CooperativeCursor), and whose
    transactions begin IMMEDIATE (the module docstring says why)."""

    def __init__(self, database, *args, lock_timeout: float = DbTimeouts.lock, **kwargs):
        self.lock_timeout = lock_timeout
        # timeout=0: sqlite3.connect would otherwise set a 5 s busy_timeout of its own
        kwargs.setdefault("timeout", 0)
        kwargs.setdefault("lock_type", "IMMEDIATE")
        super().__init__(database, *args, factory=_CooperativeConnection, **kwargs)

    def _connect(self):
        conn = super()._connect()
        conn.lock_timeout = self.lock_timeout
        return conn

    # The WalCheckpointer checkpointing this database's file in a thread of its own, if one was started.
    wal_checkpointer: "WalCheckpointer | None" = None

    def cursor(self, named_cursor=None):
        cursor = super().cursor(named_cursor)
        conn = cursor.connection
        # Automatic checkpoints off only while the checkpointer is alive (its heartbeat fresh): a commit never
        # syncs the database file then; without it, SQLite's own every 1,000 pages, or the WAL grows for ever.
        wanted = 0 if self.wal_checkpointer is not None and self.wal_checkpointer.alive() else _AUTOCHECKPOINT
        if getattr(conn, "autocheckpoint", _AUTOCHECKPOINT) != wanted:
            conn.execute(f"PRAGMA wal_autocheckpoint={wanted}")
            conn.autocheckpoint = wanted
        return cursor

    def _execute_cursor(self, sql, params, **cursor_options):
        try:
            return super()._execute_cursor(sql, params, **cursor_options)
        except peewee.OperationalError as error:
            if isinstance(_driver_error(error), _LockTimeout):
                raise DatabaseTimeout(str(error)) from error
            raise

    def begin(self, lock_type=None):
        # BEGIN IMMEDIATE is where a transaction waits for the write lock now (peewee runs it on a cursor
        # of its own, not through _execute_cursor).
        try:
            return super().begin(lock_type)
        except peewee.OperationalError as error:
            if isinstance(_driver_error(error), _LockTimeout):
                raise DatabaseTimeout(str(error)) from error
            raise


# ---- PostgreSQL ------------------------------------------------------------------------------------------


def _gevent_wait(conn, timeout=None):
    """psycopg2 wait callback: wait for the server's socket in gevent instead of blocking in libpq.

    When the wait is interrupted (a gevent.Timeout, a killed greenlet) psycopg2 closes the connection: it is
    in the middle of an exchange and cannot be used again.
    """
    import psycopg2.extensions as ext

    while True:
        state = conn.poll()
        if state == ext.POLL_OK:
            return
        if state == ext.POLL_READ:
            wait_read(conn.fileno(), timeout=timeout)
        elif state == ext.POLL_WRITE:
            wait_write(conn.fileno(), timeout=timeout)
        else:
            import psycopg2

            raise psycopg2.OperationalError(f"unexpected poll state {state!r}")


def greenlet_local_connections() -> bool:
    """True when peewee's per-thread connection state is per greenlet: the process is monkey-patched
    (run.py, the benchmarks), so threading.local is gevent's.

    Only then is the gevent wait callback safe. Without monkey-patching (the test suite) every greenlet of a
    thread shares one connection; a query that yields lets another greenlet run its own statements, commit,
    open savepoints or close that connection in the middle of the first one's transaction ("cursor already
    closed", "SAVEPOINT can only be used in transaction blocks"). There queries block as psycopg2 does by
    default; the tests of the cooperative driver install the callback themselves, on connections of their own.
    """
    from gevent import monkey
    from gevent.local import local

    # peewee imported before the patching keeps the thread's own local in its state class: shared still
    return monkey.is_module_patched("threading") and issubclass(getattr(peewee, "_ConnectionLocal", local), local)


def make_psycopg2_cooperative() -> None:
    """Install the gevent wait callback for every psycopg2 connection of this process (idempotent).

    Without it a query blocks in libpq with the hub stopped: one stalled statement froze every call.
    """
    import psycopg2.extensions as ext

    if ext.get_wait_callback() is not _gevent_wait:
        ext.set_wait_callback(_gevent_wait)
        log.debug("psycopg2: gevent wait callback installed")


@functools.cache
def _psycopg2_classes() -> tuple[type, type]:
    """psycopg2 connection and cursor classes under which one statement at a time runs on a connection.

    With the wait callback a statement yields to other greenlets while it waits for the server; two
    greenlets sharing a connection (peewee's state is per thread without monkey-patching, as in the tests)
    would otherwise poll one exchange from both sides and wait on each other for ever.

    Everything else that takes psycopg2's own per-connection mutex (close, commit, session settings...) goes
    under the same gevent lock: psycopg2 holds that thread mutex for a whole statement, also while the wait
    callback yields, so a second greenlet of the thread taking it (a connection_context() closing the shared
    connection) blocked the thread, hub included, for ever: no greenlet could run to release it.
    """
    import psycopg2.extensions as ext
    from gevent.lock import RLock

    def one_at_a_time(method, lock_of):
        @functools.wraps(method)
        def locked(self, *args, **kwargs):
            with lock_of(self):
                return method(self, *args, **kwargs)
        return locked

    def of_cursor(cursor):
        return cursor.connection.statement_lock

    def of_connection(connection):
        return connection.statement_lock

    class OneStatementCursor(ext.cursor):
        pass

    class OneStatementConnection(ext.connection):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.statement_lock = RLock()
            self.cursor_factory = OneStatementCursor

    # Every method and setter that locks psycopg2's mutex (cancel() does not, by design; poll() is the wait).
    for name in ("execute", "executemany", "callproc", "copy_from", "copy_to", "copy_expert"):
        setattr(OneStatementCursor, name, one_at_a_time(getattr(ext.cursor, name), of_cursor))
    for name in ("close", "commit", "rollback", "reset", "set_session", "set_isolation_level",
                 "set_client_encoding", "lobject", "tpc_begin", "tpc_prepare", "tpc_commit", "tpc_rollback",
                 "tpc_recover"):
        setattr(OneStatementConnection, name, one_at_a_time(getattr(ext.connection, name), of_connection))
    for name in ("autocommit", "isolation_level", "readonly", "deferrable"):
        attribute = getattr(ext.connection, name)
        setattr(OneStatementConnection, name,
                property(attribute.__get__, one_at_a_time(attribute.__set__, of_connection)))
    return OneStatementConnection, OneStatementCursor


class _CooperativePostgres:
    """Mixin for peewee's PostgreSQL databases: connect within the connect timeout, and every session with
    statement_timeout and lock_timeout, so a stalled server gives a clear error instead of a hang."""

    def __init__(self, database, *args, timeouts: DbTimeouts = DbTimeouts(), **kwargs):
        self.timeouts = timeouts
        options = " ".join(filter(None, [
            str(kwargs.pop("options", "") or ""),
            f"-c statement_timeout={int(timeouts.statement * 1000)}",
            f"-c lock_timeout={int(timeouts.lock * 1000)}",
        ]))
        # connect_timeout: libpq's own, for a blocking connect; the cooperative one is bounded below.
        kwargs.setdefault("connect_timeout", max(1, round(timeouts.connect)))
        kwargs.setdefault("connection_factory", _psycopg2_classes()[0])
        super().__init__(database, *args, options=options, **kwargs)
        self._idle_since: dict[int, float] = {}  # pooled connection key -> monotonic time it went back

    def _drop_if_broken(self) -> None:
        """Forget a connection the server ended (terminated backend, restart): psycopg2 marks it closed but
        peewee still holds it as open, so every later statement of that connection state (a long-lived
        greenlet's, or the one the tests share) would fail with "connection already closed" for ever.
        Not inside a transaction: that one fails, and the next statement after it connects anew."""
        state = self._state
        conn = state.conn
        if state.closed or conn is None or not getattr(conn, "closed", 0) or state.transactions:
            return
        log.warning("PostgreSQL connection lost (closed by the server): reconnecting at the next statement")
        try:
            if isinstance(self, PooledDatabase):
                self._close(conn, close_conn=True)  # out of the pool's accounts too, or its place is lost
            else:
                conn.close()
        except Exception:  # noqa: BLE001 - it is gone either way
            pass
        state.reset()

    def is_closed(self):
        self._drop_if_broken()
        return super().is_closed()

    # A pooled connection idle longer than this is asked (SELECT 1) before a write outside a transaction.
    # Why 5 s: under load a connection comes back within milliseconds and skips the ping; a silently dead one
    # (a host lost, a network cut, a failover that moved the server's address: nothing arrives on its socket
    # until the write is sent, and the write is not run again) is most likely after a quiet spell.
    IDLE_PING_AFTER = 5.0

    def _close(self, conn, close_conn=False):
        """A pooled connection's check-in notes when it went back (for _is_closed); a discard forgets it."""
        if not isinstance(self, PooledDatabase):
            return super()._close(conn)
        if close_conn:
            self._idle_since.pop(self.conn_key(conn), None)
        else:
            self._idle_since[self.conn_key(conn)] = time.monotonic()
        return super()._close(conn, close_conn)

    def _is_closed(self, conn):
        """The pool's check of an idle connection it hands out. A checkout that may skip it (_ReleasingPool: a
        read or BEGIN, retried once on a connection found dead): libpq's own flags, no round trip. Any other
        (a write outside a transaction): the server is asked (playhouse's SELECT 1) if the connection has been
        idle longer than IDLE_PING_AFTER, or if the server has said something on it (_server_spoke): a session
        the server ended (a terminated backend, a shutdown, a crash on a reachable host) gets its FATAL message
        or its close there, readable before the ping would be sent. A connection that died silently (its host
        lost, its address moved) shows nothing there: within the idle limit its write fails to the caller.
        With TLS the poll may miss bytes OpenSSL already read (a ping skipped), or see a record that carries no
        message (an extra ping).

        Why: the ping cost every such write a second round trip inside the place the pool had granted, and
        under load a second wait for the hub (bench/simulation.py on PostgreSQL at 1,000 calls: a third of the
        app's connections last ran SELECT 1, idle in the server, and samples counted 0-2 of the 20 connections
        in use beside 200-480 waiters: the places were granted, their checkouts not done)."""
        import psycopg2.extensions as ext

        returned = self._idle_since.pop(self.conn_key(conn), None)
        if not conn.closed and conn.info.transaction_status == ext.TRANSACTION_STATUS_IDLE:
            if getattr(self._state, "unpinged_checkout", False):
                return False
            recent = returned is not None and time.monotonic() - returned <= self.IDLE_PING_AFTER
            if recent and not _server_spoke(conn):
                return False
        return super()._is_closed(conn)

    def cursor(self, *args, **kwargs):
        self._drop_if_broken()
        return super().cursor(*args, **kwargs)

    def connect(self, reuse_if_open=False):
        self._drop_if_broken()
        # An asynchronous connect (the wait callback) is not bounded by libpq's connect_timeout.
        timeout = gevent.Timeout(self.timeouts.connect)
        timeout.start()
        try:
            return super().connect(reuse_if_open)
        except gevent.Timeout as raised:
            if raised is not timeout:
                raise
            raise DatabaseTimeout(f"connecting to the server: PostgreSQL did not accept a connection within "
                                  f"{self.timeouts.connect:g} s (HOTLINE_DB_CONNECT_TIMEOUT)") from None
        finally:
            timeout.close()

    def _execute_cursor(self, sql, params, **cursor_options):
        try:
            if hasattr(sql, "prepare"):  # core.statements.Prepared: PREPAREd once on each connection
                return self._execute_prepared(sql, params, **cursor_options)
            return super()._execute_cursor(sql, params, **cursor_options)
        except peewee.OperationalError as error:
            code = getattr(_driver_error(error), "pgcode", None)
            if code in ("57014", "55P03"):  # query_canceled (statement_timeout), lock_not_available
                what = "statement" if code == "57014" else "lock"
                limit = self.timeouts.statement if code == "57014" else self.timeouts.lock
                raise DatabaseTimeout(f"PostgreSQL {what} timeout ({limit:g} s, HOTLINE_DB_"
                                      f"{what.upper()}_TIMEOUT); the statement was rolled back: "
                                      f"{str(error).strip()}") from error
            raise


    def _execute_prepared(self, sql, params, **cursor_options):
        """EXECUTE a core.statements.Prepared on this statement's connection, PREPAREd there first if it was not
        yet. A name the server no longer knows (a PREPARE rolled back with its transaction, a session reset) is
        prepared again: the EXECUTE failed, so nothing of it ran; inside a transaction that failure aborted it,
        so there it reaches the caller."""
        if sql.name in _unpreparable:
            return super()._execute_cursor(sql, params, **cursor_options)
        names = _prepared_on.setdefault(self.connection(), set())
        if sql.name not in names:
            if not self._prepare(sql, cursor_options):
                return super()._execute_cursor(sql, params, **cursor_options)
            names.add(sql.name)
        try:
            return super()._execute_cursor(sql.execute, params, **cursor_options)
        except peewee.DatabaseError as error:
            if getattr(_driver_error(error), "pgcode", None) != "26000" or self.in_transaction():
                raise
        self._prepare(sql, cursor_options)
        return super()._execute_cursor(sql.execute, params, **cursor_options)

    def _prepare(self, sql, cursor_options) -> bool:
        """PREPARE ``sql`` on this connection; False (and never again) when the server refuses it (a parameter
        of no type it can infer: 42P18): the text then runs as it is. Inside a transaction in a savepoint, so
        the refusal does not abort it."""
        inside = self.in_transaction()
        try:
            if inside:
                super()._execute_cursor("SAVEPOINT kept_prepare", (), **cursor_options)
            super()._execute_cursor(sql.prepare, (), **cursor_options)
        except peewee.ProgrammingError as error:
            if inside:
                super()._execute_cursor("ROLLBACK TO SAVEPOINT kept_prepare", (), **cursor_options)
            _unpreparable.add(sql.name)
            log.warning("not prepared, run as text (%s): %s", str(error).strip()[:120], sql.name)
            return False
        if inside:
            super()._execute_cursor("RELEASE SAVEPOINT kept_prepare", (), **cursor_options)
        return True


# The names core.statements.Prepared statements were PREPAREd under, per PostgreSQL connection (a connection closed
# takes its own with it: a new one prepares again).
_prepared_on: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_unpreparable: set[str] = set()  # the names the server would not PREPARE


def _server_spoke(conn) -> bool:
    """Whether the server has sent anything on an idle connection, or closed it: its socket polled without
    waiting (the unpatched poll: no turn of the hub, and no limit on the descriptor's number as select's)."""
    import select

    from gevent import monkey

    poller = monkey.get_original("select", "poll")()
    poller.register(conn.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


class _ReleasingPool:
    """Mixin for the pooled PostgreSQL (and SQLite) database of a process whose connection state is per
    greenlet (run.py, the web workers, the benchmarks): a greenlet holds a connection only while one
    statement, or one transaction, of it runs, and gives it back to the pool as soon as it is done.

    Kept for a greenlet's life, one connection per call: 1000 callers walking the IVR asked PostgreSQL for
    1000 connections ("too many clients" from the hundredth, a 7-second reaction p99 at 100 callers); a
    connection opened per step instead would start a server process each time. The pool holds at most
    ``max_connections`` (20 unless the URL says ``?max_connections=``); a greenlet waits for a free one up to
    the connect timeout. A statement's rows are already read when it returns (psycopg2's cursors hold them),
    so the connection goes back before they are iterated.

    Given back on failure too (finally): a greenlet that ends after a refused statement (a unique key it
    catches, a call hung up mid-statement) would otherwise keep its connection out of the pool for good.
    The pool's lock is threading's, gevent's only once the process is monkey-patched, which is why
    open_database pools only there: unpatched, a greenlet waiting for a free connection blocked the whole
    thread, and the greenlets holding the connections never ran to give them back (py-spy: for ever in
    PooledDatabase.connect's Condition.wait). Its condition is _PoolWait (which says why). On PostgreSQL a read
    or BEGIN takes its connection without playhouse's SELECT 1 and runs again if that was dead (_unpinged)."""

    pool_name = "PostgreSQL"
    # PostgreSQL: a read or BEGIN takes its connection from the pool without playhouse's SELECT 1 and runs
    # once more if that connection was found dead (_unpinged). SQLite's check of a pooled connection is local.
    skips_checkout_ping = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if kwargs.get("timeout"):
            # SQLite's class hands sqlite3.connect a timeout of 0 (no busy wait in C), which playhouse's init()
            # took for its own wait for a connection: 0, for ever. SQLite's pool waited without end.
            self._wait_timeout = kwargs["timeout"]
        self._pool_available = _PoolWait(self._free_places)
        self._holders: dict[int, tuple] = {}  # connection key -> (greenlet, where taken or None)
        self._holders_reported: float | None = None  # monotonic time of the last report of the holders

    def execute_sql(self, sql, params=None):
        return self._unpinged(functools.partial(self._execute_releasing, sql, params), _is_read(sql))

    def _execute_releasing(self, sql, params):
        try:
            return super().execute_sql(sql, params)
        except peewee.OperationalError as error:
            _raise_timeout_inside(error)
            raise
        finally:
            self._release_idle()

    def begin(self, *args, **kwargs):
        return self._unpinged(functools.partial(self._begin_releasing, *args, **kwargs), True)

    def _begin_releasing(self, *args, **kwargs):
        try:
            return super().begin(*args, **kwargs)
        except BaseException as error:
            self._release_idle()  # no transaction began: nothing holds the connection
            _raise_timeout_inside(error)
            raise

    def _unpinged(self, run, retryable: bool):
        """``run()`` (one statement, or BEGIN) on a connection taken from the pool without a ping, and once
        more, on a connection the pool pings, if the first was found dead (_found_dead: the backend
        terminated, the server restarted); the dead one is discarded (its transaction status is unknown:
        playhouse closes it instead of pooling it).

        Why: a connection goes back after every statement, and playhouse's pool pinged each one it handed
        out (SELECT 1), so every statement cost two round trips (a published case page 26.6 ms against 5.0
        ms without the ping, PostgreSQL at load 8). Skipping the ping alone handed dead connections to
        callers after a restart (test_postgres_connections_killed_under_load lost 3).

        What is retried cannot take effect twice: a read (_is_read) outside a transaction, and BEGIN, which
        peewee sends as a statement of its own (autocommit connections): a transaction on a connection that
        died has done nothing. A write outside a transaction is not run again (it may have reached the server
        before the connection died): its connection is pinged if it was idle past a short limit or the server
        said anything on it (_CooperativePostgres._is_closed), and a statement inside a transaction uses the
        transaction's connection, so its failure reaches the caller as before."""
        state = self._state
        if not (retryable and self.skips_checkout_ping and state.closed and not state.transactions):
            return run()
        state.unpinged_checkout = True
        try:
            return run()
        except (peewee.OperationalError, peewee.InterfaceError) as error:
            if not _found_dead(error):
                raise
            log.info("PostgreSQL connection found dead (%s): run again on another", str(error).strip()[:80])
        finally:
            state.unpinged_checkout = False
        return run()

    def commit(self):
        try:
            return super().commit()
        finally:
            self._release_idle()

    def rollback(self):
        try:
            return super().rollback()
        finally:
            self._release_idle()

    def connect(self, reuse_if_open=False):
        """An explicit connect (a connection_context() block, a web request's start) takes nothing from the
        pool: the block's first statement takes a connection and gives it back like any other. Taken at the
        block's start, a connection stayed out of the pool, idle in the server, until that first statement
        ended, whatever the greenlet waited for before it: a call's record finalised at the IVR's end waited
        there for its seal turn (up to 10 s), a recording started on a bridge for the switch's answer, each
        with a connection; under the simulation at 1,000 calls all 20 were out so, idle in PostgreSQL,
        thousands of waits timed out. A transaction still holds its connection from BEGIN to its end."""
        if self._state.closed and self.autoconnect:
            return True
        return self._checkout(reuse_if_open)

    def cursor(self, *args, **kwargs):
        if self.is_closed() and self.autoconnect:  # is_closed: a connection the server ended is dropped first
            self._checkout()
        return super().cursor(*args, **kwargs)

    def connection(self):
        if self.is_closed():
            self._checkout()
        return super().connection()

    def _checkout(self, reuse_if_open=False):
        contexts = self._state.ctx  # connection_context() blocks still open: peewee's connect forgets them
        if not self._state.closed:
            return super().connect(reuse_if_open)  # peewee's answer: already open
        # In turn: a freed connection goes to the greenlet waiting longest, never to a newcomer (playhouse's
        # wait let a woken waiter lose it to one, and waits reached the timeout while holds were short).
        with self._pool_available.turn(self._wait_timeout, getattr(self._state, "ahead", False)) as served:
            if not served:
                self._report_holders()
                raise DatabaseTimeout(self._full_message())
            try:
                opened = super().connect(reuse_if_open)
            except MaxConnectionsExceeded:  # a ValueError: callers expect the database's own errors
                raise DatabaseTimeout(self._full_message()) from None
        self._state.ctx = contexts
        self._holders[self.conn_key(self._state.conn)] = (gevent.getcurrent(), self._taken_where())
        return opened

    def _close(self, conn, close_conn=False):
        """playhouse's check-in, which cannot lose the connection's place: interrupted (the greenlet killed or
        timed out) while it waited for the pool's lock, held by a checkout's round trip (a ping, a new
        connection), the connection stayed counted in use for good while peewee forgot it (close() resets
        the state whatever happens): idle in the server, never given back. It leaves the accounts closed."""
        key = self.conn_key(conn)
        self._holders.pop(key, None)
        try:
            return super()._close(conn, close_conn)
        except BaseException:
            if self._in_use.pop(key, None) is not None:
                self._close_raw(conn)
                self._pool_available.notify()
            raise

    # -- who holds the pool's connections (asked when a wait for one timed out) ----------------------------
    HOLDERS_EVERY = 60.0  # at most one report of the holders a minute
    HOLDER_FRAMES = 6

    def _taken_where(self):
        """Where the connection is taken, recorded only once a wait for a connection has timed out in this
        process (a few microseconds a checkout): the next report says who took them."""
        if self._holders_reported is None:
            return None
        return _app_frames(sys._getframe(1), self.HOLDER_FRAMES)[1:]  # [0]: the checkout itself

    def holders(self) -> list[str]:
        """One line per connection out of the pool: how long it has been out, the greenlet holding it (or that
        it ended without giving it back), where that greenlet is now and where it took the connection."""
        now, lines = time.time(), []
        for key, pooled in sorted(self._in_use.items(), key=lambda item: item[1].checked_out):
            greenlet, taken = self._holders.get(key, (None, None))
            if greenlet is None:
                who, where = "holder unknown", ""
            elif greenlet.dead:
                who, where = f"{greenlet!r} ENDED without giving it back", ""
            else:
                who, where = repr(greenlet), _frames_line(_app_frames(greenlet.gr_frame, self.HOLDER_FRAMES))
            lines.append(f"out {now - pooled.checked_out:.1f} s, {who}" + (f"; now at {where}" if where else "")
                         + (f"; taken at {_frames_line(taken)}" if taken else ""))
        return lines

    def _report_holders(self) -> None:
        now = time.monotonic()
        first = self._holders_reported is None
        if not first and now - self._holders_reported < self.HOLDERS_EVERY:
            return
        self._holders_reported = now
        log.warning("%s pool: no free connection within %g s; %d in use, %d waiting%s:\n  %s", self.pool_name,
                    self._wait_timeout, len(self._in_use), len(self._pool_available._queue),
                    " (where each is taken recorded from now on)" if first else "",
                    "\n  ".join(self.holders()) or "none")

    @contextlib.contextmanager
    def ahead(self):
        """The connections this greenlet takes in the block are handed out before those of greenlets
        waiting without (ahead_in_pool)."""
        state = self._state
        before = getattr(state, "ahead", False)
        state.ahead = True
        try:
            yield
        finally:
            state.ahead = before

    @contextlib.contextmanager
    def held(self):
        """The connection this greenlet takes in the block is kept until the block ends, statements outside a
        transaction included (held_connection)."""
        state = self._state
        depth = getattr(state, "held", 0)
        state.held = depth + 1
        try:
            yield
        finally:
            state.held = depth
            if not depth:
                self._release_idle()

    def _free_places(self) -> float:
        return self._max_connections - len(self._in_use) if self._max_connections else math.inf

    def _connect(self):
        """playhouse's checkout without its lock: _PoolWait grants no more checkouts at once than the pool has
        places, and greenlets of one thread need no lock between them. Under it, every check-in and every
        other checkout waited for a checkout's round trips (a ping, a new connection's connect)."""
        return PooledDatabase._connect.__wrapped__(self)

    def _full_message(self) -> str:
        return (f"waiting for a pooled connection: no free {self.pool_name} connection within "
                f"{self._wait_timeout:g} s, all {self._max_connections} of the pool in use (max_connections in "
                "the URL)")

    def _release_idle(self) -> None:
        """Back to the pool, unless a transaction (peewee pops it before committing: commit() comes here
        again) is still open, or a held() block keeps it. The open connection_context() blocks stay counted
        (each statement in them takes a connection again)."""
        state = self._state
        if not state.closed and not state.transactions and not getattr(state, "held", 0):
            contexts = state.ctx
            self.close()
            state.ctx = contexts


def ahead_in_pool():
    """A block whose pooled connections go ahead of the other waiters' (the bound database's pool), nothing
    elsewhere. For the ACD's writes: a caller and a free agent wait on each one, and queued behind the IVR's
    and the call records' statements an offer's write waited seconds (bench/simulation.py on PostgreSQL)."""
    ahead = getattr(getattr(database, "obj", None), "ahead", None)
    return ahead() if ahead is not None else contextlib.nullcontext()


def held_connection(db: peewee.Database | None = None):
    """A block whose statements all run on one connection, also outside a transaction: a session setting
    (SET statement_timeout), a session advisory lock, or a statement that cannot run in a transaction
    (CREATE INDEX CONCURRENTLY) followed by others that must meet that session. The releasing pool otherwise
    gives the connection back after every statement, and the next one may take another (core.migrations);
    an unpooled database keeps its connection anyway."""
    target = db or database.obj
    held = getattr(target, "held", None)
    return held() if held is not None else contextlib.nullcontext()


_NOT_THE_APP = ("core/db.py", "peewee.py", "playhouse/", "/gevent/", "/greenlet/")


_Frame = collections.namedtuple("_Frame", "filename lineno name")


def _app_frames(frame, most: int) -> list:
    """The innermost frame from ``frame`` out (what it waits in), then the ``most`` innermost of the app's own
    (not this module's, peewee's or gevent's): a statement's wait is a dozen frames deep in those. Read from the
    frames themselves: traceback's StackSummary.extract checks each file's line cache (a stat per file), about
    5 % of the hub's time at every checkout once recorded (bench/simulation.py on PostgreSQL)."""
    frames = []
    while frame is not None and len(frames) < 80:
        frames.append(_Frame(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        frame = frame.f_back
    if not frames:
        return []
    own = [f for f in frames if not any(part in f.filename for part in _NOT_THE_APP)][:most]
    return frames[:1] + [f for f in own if f is not frames[0]]


def _frames_line(frames) -> str:
    return " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames)


# The part of its timeout after which a waiter not ahead is passed by no waiter queued ahead later: with the
# finaliser's, the transitions' and the offers' writes queued ahead without a pause under load, the IVR's
# statements reached their timeout behind them (review1 item 3).
AHEAD_PASSES_FOR = 0.5


class _Waiter:
    __slots__ = ("event", "granted", "ahead", "passed_until")

    def __init__(self, ahead: bool = False, passed_until: float = math.inf):
        self.event, self.granted, self.ahead = gevent.event.Event(), False, ahead
        self.passed_until = passed_until  # (monotonic) until when a waiter arriving ahead may go before it


class _PoolWait:
    """Stands in for the pooled database's threading.Condition: greenlets waiting for a connection, served in
    the order they came (``turn``), without a lock.

    Fair: a checkout that finds others waiting queues behind them, and each place that comes free goes to the
    one waiting longest (playhouse's condition woke a waiter that then lost the freed connection to a newcomer:
    under the simulation's load waits reached the 10 s timeout while holds were short). As many are served at
    once as the pool has places (``free()``, less those granted whose checkout is under way): served one after
    the other, each checkout (a new connection's connect, a ping) and each hand-off (a turn of the hub, slow
    under load) waited for the one before, and at 500 calls 257 waiters timed out with 2 of 20 connections in
    use. The condition's wait took the pool's lock again on its way out; the connect timeout striking there,
    while another greenlet held that lock for a slow connect, left the lock without its owner ("cannot release
    un-acquired lock", bench/ivr.py on PostgreSQL). Greenlets of one thread need no lock to count places and
    then wait: nothing runs between the two; a notice missed all the same costs at most the second after which
    a waiter looks again."""

    def __init__(self, free=lambda: 0):
        self._free = free  # the pool's free places now, checkouts under way not counted
        self._queue: collections.deque[_Waiter] = collections.deque()  # not yet granted, in arrival order
        self._granted = 0  # granted a place, their checkout under way
        self._waiters: list[gevent.event.Event] = []  # playhouse's own wait (a checkout that found no room)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    @contextlib.contextmanager
    def turn(self, timeout: float, ahead: bool = False):
        """Yields True once a place is granted to this greenlet (its checkout counts as using it until the
        block ends), False after ``timeout`` s; a place granted to one interrupted first goes to the next.
        ``ahead``: queued before every waiter not ahead (after those ahead already: database.ahead_in_pool),
        except those waiting since AHEAD_PASSES_FOR of their timeout: ahead waiters coming without a pause
        would keep them waiting until their timeout."""
        now = time.monotonic()
        me = _Waiter(ahead, now + timeout * AHEAD_PASSES_FOR)
        if ahead:
            self._queue.insert(next((i for i, w in enumerate(self._queue) if not w.ahead and w.passed_until > now),
                                    len(self._queue)), me)
        else:
            self._queue.append(me)
        self._grant()
        deadline = now + timeout
        served = False
        try:
            while not me.granted:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                me.event.wait(min(remaining, 1.0))
                me.event.clear()
                self._grant()
            served = me.granted
        finally:
            if not me.granted:
                self._queue.remove(me)
            elif not served:
                self._release_grant()
        if not served:
            yield False
            return
        try:
            yield True
        finally:
            self._release_grant()

    def _release_grant(self) -> None:
        self._granted -= 1
        self._grant()  # a checkout that failed leaves its place to the next

    def _grant(self) -> None:
        free = self._free() - self._granted
        while self._queue and free > 0:
            waiter = self._queue.popleft()
            waiter.granted = True
            self._granted += 1
            free -= 1
            waiter.event.set()

    def wait(self, timeout=None) -> bool:
        waiter = gevent.event.Event()
        self._waiters.append(waiter)
        try:
            return waiter.wait(timeout)
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def notify(self, n: int = 1) -> None:
        for waiter in self._waiters[:n]:
            waiter.set()
            self._waiters.remove(waiter)
        self._grant()

    def notify_all(self) -> None:
        self.notify(len(self._waiters))


# What a statement outside a transaction must not contain to be run again: data-modifying parts (also WITH's
# and SELECT ... FOR UPDATE's), SELECT INTO, and functions with effects of their own.
# A read may carry SET LOCAL planner settings in front (caseflow.portal's list): they last for that string only.
_READ = re.compile(r"\s*(?:SET\s+LOCAL\s+[^;]*;\s*)*\(*\s*(select|with|show)\b", re.IGNORECASE)
_NOT_ONLY_READ = re.compile(r"\b(insert|update|delete|merge|into|copy|nextval|setval|set_config|pg_advisory_\w+|"
                            r"pg_notify|pg_terminate_backend|pg_cancel_backend|lo_\w+)\b", re.IGNORECASE)


def _is_read(sql: str) -> bool:
    """True for a statement that only reads (SELECT, WITH ... SELECT, SHOW): running it twice changes nothing."""
    return isinstance(sql, str) and bool(_READ.match(sql)) and not _NOT_ONLY_READ.search(sql)


def _found_dead(error: BaseException) -> bool:
    """True when ``error`` says the statement's connection was dead: psycopg2 closed it (the server had
    ended it), or the server said it is ending it (57P01-57P03) or the connection failed (class 08). Not a
    connect that failed (no cursor: the statement never had a connection)."""
    if not connection_lost(error):
        return False
    driver = _driver_error(error)
    code = getattr(driver, "pgcode", None) or ""
    connection = getattr(getattr(driver, "cursor", None), "connection", None)
    return bool(getattr(connection, "closed", 0)) or code.startswith("08") or code in _CONNECTION_LOST_CODES


def _raise_timeout_inside(error: BaseException) -> None:
    """Raise the DatabaseTimeout that peewee's exception wrapper turned into a plain OperationalError (a
    connection taken on the way to a statement: the pool full, the server not answering), so callers see
    the timeout and its setting."""
    if isinstance(error, peewee.OperationalError) and not isinstance(error, DatabaseTimeout):
        inner = _driver_error(error)
        if isinstance(inner, DatabaseTimeout):
            raise inner from None


@functools.cache
def _cooperative_postgres_class(base: type, releasing: bool = False) -> type:
    bases = (_ReleasingPool,) if releasing else ()
    return type("Cooperative" + base.__name__,
                (_TransactionEnd, *bases, _CooperativePostgres, _GreenletSafeConnect, base), {})


POOL_SIZE = 20  # default most PostgreSQL connections of one process with per-greenlet connection state
SQLITE_POOL_SIZE = 8  # SQLite writes one at a time anyway; readers in WAL need few
# The pooled connections' page caches together, in KiB as cache_size counts them (negative): 8 MB, 1 MB each.
# They live as long as the process and fill with the pages they read as the file grows, so the one
# connection's 64 MB shared out still grew the call process by 8 MB a connection on a large database (3 KiB per
# finished call on the real switch, issue 15 item 11); the kernel's page cache keeps the rest of the file,
# outside the process's resident memory (a page read from it costs a system call, not a disk read). 8 MB,
# not 16: up to 8 MiB less of the call process's aim of 100 MB at 150 calls, on a database over 8 MB.
SQLITE_POOL_CACHE = -8 * 1000


@functools.cache
def _pooled_sqlite_class() -> type:
    """The SQLite database of a process whose connection state is per greenlet: pooled and given back after
    each statement or transaction, like PostgreSQL's (_ReleasingPool)."""
    return type("PooledCooperativeSqliteDatabase", (_ReleasingPool, PooledDatabase, CooperativeSqliteDatabase),
                {"pool_name": "SQLite", "skips_checkout_ping": False})


@functools.cache
def _pooled(base: type) -> type:
    """The pooled form of a PostgreSQL database class (postgresql:// and postgresext:// alike)."""
    return type("Pooled" + base.__name__, (_PooledPostgresqlDatabase, base), {})


_POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresext", "postgresqlext", "postgresql+pool", "postgres+pool",
                     "postgresext+pool", "postgresqlext+pool")


def in_schema(url: str, schema: str) -> str:
    """PostgreSQL ``url`` with ``schema`` as its search_path: added to the URL's own ``options`` (server settings,
    e.g. ``?options=-csynchronous_commit%3Doff``) when it has them. A second ``options`` parameter replaced the
    first (the URL's query is read as a dict): the caller's settings were dropped without a word. The query is
    edited as written, not decoded and encoded again: libpq reads a '+' as itself, a form decoder as a space."""
    parts = urlsplit(url)
    pairs = parts.query.split("&") if parts.query else []
    path = "-csearch_path%3D" + quote(schema, safe="")
    for n, pair in enumerate(pairs):
        if pair.startswith("options="):
            pairs[n] = f"{pair}%20{path}" if pair != "options=" else f"options={path}"
            break
    else:
        pairs.append(f"options={path}")
    return urlunsplit(parts._replace(query="&".join(pairs)))


def open_database(url: str, timeouts: DbTimeouts | None = None) -> peewee.Database:
    """Open (not yet connect) the database named by ``url``: sqlite:///path or postgresql://...

    Both wait cooperatively within ``timeouts`` (the module docstring says how). Its statements are logged
    (peewee, at DEBUG) without their values from now on in this process, whatever set the logging up
    (core.logsetup.hide_statement_values: once, as configure_logging does it too).
    """
    hide_statement_values()
    timeouts = timeouts or DbTimeouts()
    scheme = urlparse(url).scheme
    if scheme.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ":memory:"
        if path not in (":memory:", ""):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        options = {"pragmas": SQLITE_PRAGMAS, "check_same_thread": False, "lock_timeout": timeouts.lock}
        if greenlet_local_connections() and path not in (":memory:", ""):
            # A connection per greenlet otherwise: each call's greenlet kept one for its life, its schema
            # parsed again (about 260 KiB) with a page cache of its own, and the process's memory stayed at
            # its high-water mark after the calls ended (docs/performance.md, real SIP callers).
            # The pool's connections live as long as the process: their page caches share a budget
            # (SQLITE_POOL_CACHE), or 8 of them warm grew to 8 x the database file (47 MiB for 7 MB).
            options["pragmas"] = {**SQLITE_PRAGMAS, "cache_size": SQLITE_POOL_CACHE // SQLITE_POOL_SIZE}
            return _pooled_sqlite_class()(path, max_connections=SQLITE_POOL_SIZE,
                                          timeout=max(1, round(timeouts.lock)), **options)
        return CooperativeSqliteDatabase(path or ":memory:", **options)
    if scheme in _POSTGRES_SCHEMES:
        params = db_url.parse(url)
        base = db_url.schemes[scheme]
        releasing = greenlet_local_connections()
        if releasing:
            make_psycopg2_cooperative()
            # A connection per greenlet otherwise: pooled, and given back after each statement or transaction.
            if not issubclass(base, PooledDatabase):
                base = _pooled(base)
            params.setdefault("max_connections", POOL_SIZE)
            params.setdefault("timeout", max(1, round(timeouts.connect)))
        cls = _cooperative_postgres_class(base, releasing and issubclass(base, PooledDatabase))
        return cls(params.pop("database"), timeouts=timeouts, **params)
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:/// or postgresql://")


def bind_for_command(url: str | None, out, verb: str = "run") -> peewee.Database | None:
    """A ``python -m`` command's database: ``url`` (its --database-url) or the configured one, bound; None after
    saying why on ``out`` when the configuration cannot give one (the command then exits 2)."""
    from core.config import ConfigError, load_config

    try:
        url = url or load_config().database_url
    except ConfigError as exc:
        print(f"cannot {verb}: {exc}", file=out)
        return None
    return bind_database(url)


def bind_database(url: str, timeouts: DbTimeouts | None = None) -> peewee.Database:
    """Open the database for ``url`` and point every model at it."""
    db = open_database(url, timeouts)
    database.initialize(db)
    return db


def is_postgres(db: peewee.Database | peewee.DatabaseProxy | None = None) -> bool:
    target = db or database.obj
    # A model's _meta.database and core.db.database are proxies: judged by their type, every one of them read as
    # "not PostgreSQL" (recorder.missed never took its advisory lock in the product).
    if isinstance(target, peewee.DatabaseProxy):
        target = target.obj
    return isinstance(target, peewee.PostgresqlDatabase)


@contextlib.contextmanager
def schema_change(db: peewee.Database | None = None, lock_timeout: float | None = None):
    """A transaction (a savepoint inside the caller's) for a schema change that may take minutes on a big table:
    building an index, adding a stored column, a migration step. On PostgreSQL the session's statement_timeout
    (HOTLINE_DB_STATEMENT_TIMEOUT, meant for a call's queries: every pooled connection has it) is lifted for
    it; the lock_timeout stays (``lock_timeout`` s, the configured one by default), so a change waiting behind
    a busy table fails with a clear DatabaseTimeout instead of queueing every caller of the table behind its
    lock request. Both are set back when the block ends (SET LOCAL; a rollback to the savepoint undoes them
    as well). SQLite has no statement timeout: a plain ``atomic()``."""
    db = db or database.obj
    with db.atomic():
        if not is_postgres(db):
            yield db
            return
        before = db.execute_sql("SELECT current_setting('statement_timeout'), "
                                "current_setting('lock_timeout')").fetchone()
        lock = getattr(db, "timeouts", DbTimeouts()).lock if lock_timeout is None else lock_timeout
        db.execute_sql("SET LOCAL statement_timeout = 0")
        db.execute_sql(f"SET LOCAL lock_timeout = {max(1, int(lock * 1000))}")
        yield db
        db.execute_sql("SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)",
                       before)


def is_sqlite(db: peewee.Database | None = None) -> bool:
    target = db or database.obj
    return isinstance(target, peewee.SqliteDatabase)
