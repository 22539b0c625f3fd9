"""Which app process is the active one of a pair: a PostgreSQL advisory lock held on a connection of its own.

Two (or more) app processes start on one PostgreSQL database; the one holding the lock drives the
FreeSWITCH servers and takes calls, the others wait as standbys and take the lock when its holder goes.

Why a session-level advisory lock on a dedicated connection, and not a lease row renewed by a heartbeat:

- A holder that dies (kill -9, a crash, the OOM killer) loses the lock the moment the kernel closes its
  socket: PostgreSQL ends the backend and frees its locks, and a standby polling for the lock has it within
  ``poll`` seconds. A lease row frees nothing on death: every takeover waits for the lease to run out, and
  the lease must outlast the longest pause of a healthy holder (a slow disk, a busy database), several
  seconds on top of the fence below.
- Exclusivity is PostgreSQL's own: no clock of one machine compared with another's, no row left behind.
- What it costs: the lock lives exactly as long as that one connection, so (1) the connection goes straight
  to PostgreSQL, never through a pooler in transaction mode (PgBouncer would hand the session to others);
  (2) the holder must learn quickly that its connection is gone: it asks PostgreSQL every
  ``check_interval`` seconds whether it still holds the lock, each answer due within ``check_timeout``,
  and a failed or late answer ends its term (``on_lost``: it stops taking calls and driving switches);
  (3) a new holder waits ``fence`` seconds after taking the lock, longer than the old holder needs to
  notice (check_interval + check_timeout + a margin), before acting: an old holder whose connection was
  cut (pg_terminate_backend, a network partition on its side, a database restart) has stopped before the
  new one starts. That is what makes two active apps impossible. A holder whose host vanishes without
  closing its socket (power loss, a cut cable) keeps its backend, and so the lock, until TCP keepalives
  give up: the keepalives set on this connection and PostgreSQL's ``tcp_keepalives_*`` bound that wait
  (docs/reliability.md); nothing acts twice meanwhile, the takeover is only later.

The lock's key is (LOCK_CLASS, a hash of the schema's name): one lock per hotline database and schema, so
test runs in schemas of their own never meet. With SQLite there is one process and no standby: nothing of
this is used.
"""
from __future__ import annotations

import logging
import re
import socket
import time
from dataclasses import dataclass
from typing import Callable, Mapping

import gevent
import gevent.event

log = logging.getLogger(__name__)

# The advisory lock's first key: the hotline's (classid in pg_locks); the second is the schema's hash.
LOCK_CLASS = 12345
APPLICATION_NAME = "hotline active lock"


def held_by_any(db) -> bool:
    """Whether some session holds the active lock of the PostgreSQL database and schema ``db`` is on: an app
    is active there (python -m hotline.accounts leaves that app's schema to it)."""
    return bool(db.execute_sql(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s"
        " AND objid::bigint = (hashtext(current_schema()) & 2147483647) AND objsubid = 2)",
        (LOCK_CLASS,)).fetchone()[0])


class LeadershipError(RuntimeError):
    """The lock cannot be used: not PostgreSQL, or a bad setting."""


@dataclass(frozen=True)
class PairSettings:
    """HOTLINE_PAIR_*: how the active app of a pair checks its lock.

    HOTLINE_PAIR=off runs without the lock on PostgreSQL too (one app that must never wait, a tool);
    HOTLINE_PAIR_CHECK_INTERVAL / HOTLINE_PAIR_CHECK_TIMEOUT (seconds, default 1 and 2): how often the
    active asks, and how long an answer may take. Shorter gives a quicker takeover (the fence is their sum
    plus half a second) but resigns on a shorter database stall. HOTLINE_NODE names this process in
    pg_stat_activity and the log (default: the host name).
    """

    enabled: bool = True
    check_interval: float = 1.0
    check_timeout: float = 2.0
    node: str = ""

    @classmethod
    def from_extra(cls, extra: Mapping[str, str]) -> "PairSettings":
        raw = str(extra.get("HOTLINE_PAIR", "on")).strip().lower()
        if raw not in ("on", "off", "1", "0", "true", "false", "yes", "no"):
            raise LeadershipError(f"HOTLINE_PAIR must be on or off, got {raw!r}")
        numbers = {}
        for key, default in (("CHECK_INTERVAL", cls.check_interval), ("CHECK_TIMEOUT", cls.check_timeout)):
            text = str(extra.get(f"HOTLINE_PAIR_{key}", default)).strip()
            try:
                value = float(text)
            except ValueError:
                raise LeadershipError(f"HOTLINE_PAIR_{key}: {text!r} is not a number of seconds") from None
            if not 0.1 <= value <= 60:
                raise LeadershipError(f"HOTLINE_PAIR_{key}: {text} s is outside 0.1 to 60 seconds")
            numbers[key.lower()] = value
        node = str(extra.get("HOTLINE_NODE", "") or socket.gethostname()).strip()[:40]
        if not re.fullmatch(r"[\w.:@-]+", node):
            raise LeadershipError(f"HOTLINE_NODE: {node!r}: letters, digits and . : @ _ - only")
        return cls(enabled=raw in ("on", "1", "true", "yes"), node=node, **numbers)


def _connect_params(url: str, name: str, timeout: float) -> dict:
    """psycopg2.connect keywords for ``url`` (every scheme core.db accepts), with TCP keepalives and an
    application name that says which node holds the lock (pg_stat_activity)."""
    from playhouse import db_url

    params = db_url.parse(url)
    params["dbname"] = params.pop("database")
    params.pop("max_connections", None)
    params.pop("stale_timeout", None)
    params.pop("timeout", None)
    params.setdefault("connect_timeout", max(1, round(timeout)))
    # Notice a dead peer within about 10 s even when no statement is running.
    params.update(keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3,
                  application_name=f"{APPLICATION_NAME} {name}"[:63])
    return params


class Leadership:
    """The advisory lock of the active app: ``acquire`` waits for it, then a watch greenlet checks it.

    ``on_lost()`` runs once, in the watch greenlet, when the term ends (the connection failed, the check
    did not answer in time, the lock is gone); it must stop everything that acts on the switches at once.
    """

    def __init__(self, url: str, name: str, *, on_lost: Callable[[], None] | None = None,
                 check_interval: float = 1.0, check_timeout: float = 2.0, poll: float = 0.25,
                 margin: float = 0.5, connect=None):
        if not url.split(":", 1)[0].startswith("postgres"):
            raise LeadershipError("the active/standby pair needs PostgreSQL (HOTLINE_DATABASE_URL=postgresql://...);"
                                  " with SQLite one app process runs alone")
        if not (0 < check_interval <= 60 and 0 < check_timeout <= 60):
            raise LeadershipError(f"pair check every {check_interval!r} s within {check_timeout!r} s: "
                                  "both must be more than 0 and at most 60 seconds")
        self.url = url
        self.name = name
        self.on_lost = on_lost
        self.check_interval = check_interval
        self.check_timeout = check_timeout
        self.poll = poll
        # How long a new holder waits before acting: longer than an old holder may take to notice.
        self.fence = check_interval + check_timeout + margin
        self._connect = connect
        self._conn = None
        self._key: tuple[int, int] | None = None
        self._watch: gevent.Greenlet | None = None
        self._lost = gevent.event.Event()
        self.held = False
        self.acquired_at: float | None = None  # monotonic, when the lock was taken
        self.last_confirmed: float | None = None  # monotonic, the last check that found it held

    # ---------------------------------------------------------------- connection
    def _open(self):
        import psycopg2

        params = _connect_params(self.url, self.name, self.check_timeout + 3)
        conn = (self._connect or psycopg2.connect)(**params)
        conn.autocommit = True
        with conn.cursor() as cur:
            # A statement that hangs (a stalled server) is cancelled by the server too.
            cur.execute("SET statement_timeout = %s", (int(self.check_timeout * 1000),))
            cur.execute("SELECT hashtext(current_schema()) & 2147483647")
            key = (LOCK_CLASS, cur.fetchone()[0])
        self._conn, self._key = conn, key
        return conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - it is being dropped either way
                pass

    def _query(self, sql: str, timeout: float):
        """One statement on the lock's connection, answered within ``timeout`` seconds (gevent.Timeout
        interrupts the cooperative wait; the server's statement_timeout stops it on its side)."""
        with gevent.Timeout(timeout, TimeoutError(f"no answer from PostgreSQL within {timeout:g} s")):
            with self._conn.cursor() as cur:
                cur.execute(sql, self._key)
                return cur.fetchone()[0]

    # ---------------------------------------------------------------- standby
    def acquire(self, stop: gevent.event.Event | None = None, prepare: Callable[[], None] | None = None) -> bool:
        """Wait until this process holds the lock (True), then ``fence`` seconds more, or until ``stop`` is
        set (False). A database that is down is waited for, reconnecting every few seconds.

        ``prepare()`` runs after the fence and before the term begins (the schema change and the build of a
        standby that takes over, hotline.product): it may keep the hub busy longer than a check may be late,
        which in a term would end it, and it acts on no switch. The lock is confirmed after it; lost
        meanwhile, this process waits as a standby again (``prepare`` must bear running again)."""
        stop = stop or gevent.event.Event()
        announced = False
        backoff = 0.5
        while not stop.is_set():
            try:
                if self._conn is None or self._conn.closed:
                    self._open()
                    backoff = 0.5
                if self._query("SELECT pg_try_advisory_lock(%s, %s)", self.check_timeout):
                    break
            except Exception as exc:  # noqa: BLE001 - a database that is away is waited for
                log.warning("standby: cannot ask PostgreSQL for the active lock (%s); again in %.1f s", exc,
                            backoff)
                self._close()
                if stop.wait(backoff):
                    return False
                backoff = min(backoff * 2, 5.0)
                continue
            if not announced:
                log.info("standby: another app process is active; waiting to take over (lock %s/%s)",
                         *self._key)
                announced = True
            if stop.wait(self.poll):
                return False
        else:
            return False
        self.acquired_at = self.last_confirmed = time.monotonic()
        log.info("took the active lock; waiting %.1f s so that a previous active app has stopped", self.fence)
        # Keep checking during the fence: a lock lost meanwhile is not acted on.
        deadline = self.acquired_at + self.fence
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if stop.wait(min(self.check_interval, remaining)):
                self.release()
                return False
            if not self._confirm():
                log.error("lost the active lock during the fence; waiting as a standby again")
                self._close()
                return self.acquire(stop, prepare)
        if prepare is not None:
            prepare()
            if not self._confirm():
                log.error("lost the active lock while preparing to act; waiting as a standby again")
                self._close()
                return self.acquire(stop, prepare)
        self.held = True
        self._watch = gevent.spawn(self._watch_loop)
        log.info("active: this process drives the switches (lock %s/%s)", *self._key)
        return True

    # ---------------------------------------------------------------- active
    def _confirm(self) -> bool:
        try:
            held = self._query(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND classid = %s AND objid = %s AND objsubid = 2)",
                self.check_timeout)
        except BaseException as exc:  # noqa: BLE001 - any failure (a killed greenlet too) ends the term
            if isinstance(exc, gevent.GreenletExit):
                raise
            log.error("active lock check failed: %s", exc)
            return False
        if held:
            self.last_confirmed = time.monotonic()
        return bool(held)

    def _watch_loop(self) -> None:
        while self.held:
            gevent.sleep(self.check_interval)
            if not self.held:
                return
            late = time.monotonic() - (self.last_confirmed or 0)
            if not self._confirm() or late > self.check_interval + self.check_timeout:
                self._end_term()
                return

    def _end_term(self) -> None:
        if not self.held:
            return
        self.held = False
        self._lost.set()
        log.critical("active lock lost (database connection gone or not answering): this process stops "
                     "acting now; a standby takes over after %.1f s", self.fence)
        self._close()
        if self.on_lost is not None:
            try:
                self.on_lost()
            except Exception:  # noqa: BLE001 - logged; the caller's stop event is still set by the process
                log.exception("stopping after the active lock was lost failed")

    @property
    def lost(self) -> gevent.event.Event:
        """Set when a term ended by loss (not by release)."""
        return self._lost

    def release(self) -> None:
        """Give the lock up (a clean stop): closing the connection frees it at once."""
        self.held = False
        if self._watch is not None and self._watch is not gevent.getcurrent():
            self._watch.kill(block=False)
        self._watch = None
        if self._conn is not None and not self._conn.closed and self._key is not None:
            try:
                self._query("SELECT pg_advisory_unlock(%s, %s)", self.check_timeout)
            except Exception:  # noqa: BLE001 - closing frees it anyway
                pass
        self._close()
