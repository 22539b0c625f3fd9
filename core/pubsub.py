"""Publish/subscribe between the app's processes: what the call process announces (an agent's state, a
screen pop, a desk taken by another window) reaches the server-sent-event streams of every web worker.

Two buses with one interface, ``publish(topic, message)`` and ``subscribe(topic, callback)``:

- ``LocalBus``: in the process, callbacks run at once in the publisher's greenlet. SQLite has one process.
- ``PgBus``: PostgreSQL LISTEN/NOTIFY. Each process keeps one connection that LISTENs (a greenlet waits on
  its socket and hands each notification to the subscribers of its topic) and one it NOTIFYs on. A
  message is JSON, at most ``MAX_PAYLOAD`` bytes (PostgreSQL refuses more than 8000). Every process,
  the publisher included, receives a message through PostgreSQL, so all see one order.

Why LISTEN/NOTIFY and not Redis pub/sub: the database is already the one shared part every process
reaches; NOTIFY adds no server to run, secure, watch and fail over, and its throughput (thousands of
small notifications a second) is far above what a desk floor produces (a few per call). Redis would be
better for large payloads or fan-out to tens of thousands of subscribers per message, neither of which
this is. Both deliver at most once: a subscriber that was disconnected misses what was said meanwhile
(the streams are live views; a page reload shows the state from the database).

Channel names carry a hash of the database schema, so two hotlines (or test runs) on one PostgreSQL
server never hear each other.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections import defaultdict
from typing import Any, Callable

import gevent
import gevent.event
import gevent.lock

log = logging.getLogger(__name__)

MAX_PAYLOAD = 7900
TOPIC_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}\Z")

Callback = Callable[[dict], Any]


class PubSubError(ValueError):
    """A topic or message the bus cannot carry."""


def _check_topic(topic: str) -> str:
    if not TOPIC_RE.match(topic or ""):
        raise PubSubError(f"topic {topic!r}: a lower-case letter, then letters, digits or _ (at most 31)")
    return topic


class Subscription:
    """What ``subscribe`` returns: ``close()`` stops the deliveries (idempotent)."""

    def __init__(self, bus: "_Subscribers", topic: str, callback: Callback):
        self._bus, self.topic, self.callback = bus, topic, callback

    def close(self) -> None:
        self._bus._remove(self)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Subscribers:
    def __init__(self):
        self._subscribers: dict[str, list[Subscription]] = defaultdict(list)
        self._mutex = threading.Lock()

    def subscribe(self, topic: str, callback: Callback) -> Subscription:
        subscription = Subscription(self, _check_topic(topic), callback)
        with self._mutex:
            self._subscribers[topic] = [*self._subscribers[topic], subscription]
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        with self._mutex:
            self._subscribers[subscription.topic] = [s for s in self._subscribers[subscription.topic]
                                                     if s is not subscription]

    def subscribers(self, topic: str) -> int:
        return len(self._subscribers.get(topic, ()))

    def _deliver(self, topic: str, message: dict) -> None:
        for subscription in self._subscribers.get(topic, ()):
            try:
                subscription.callback(message)
            except Exception:  # noqa: BLE001 - one listener's bug must not stop the others
                log.exception("pub/sub: a subscriber of %r failed", topic)


def _encode(topic: str, message: dict) -> str:
    _check_topic(topic)
    if not isinstance(message, dict):
        raise PubSubError(f"a message is a dict, got {type(message).__name__}")
    payload = json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str)
    if len(payload.encode()) > MAX_PAYLOAD:
        raise PubSubError(f"message on {topic!r} is {len(payload.encode())} bytes; at most {MAX_PAYLOAD} "
                          "(send an id and let the reader fetch the rest from the database)")
    return payload


class LocalBus(_Subscribers):
    """Subscribers in this process only (SQLite: one process)."""

    kind = "local"

    def publish(self, topic: str, message: dict) -> None:
        # The same checks as PostgreSQL's bus, and a copy through JSON: a test on SQLite fails as it would
        # in production, and no subscriber shares the publisher's objects.
        self._deliver(topic, json.loads(_encode(topic, message)))

    def start(self) -> "LocalBus":
        return self

    def stop(self) -> None:
        pass


class PgBus(_Subscribers):
    """LISTEN/NOTIFY on PostgreSQL (the module docstring says how)."""

    kind = "postgres"

    def __init__(self, url: str, *, reconnect_max: float = 5.0, connect=None):
        super().__init__()
        self.url = url
        self.reconnect_max = reconnect_max
        self._connect_fn = connect
        self._listen_conn = None
        self._publish_conn = None
        self._publish_lock = gevent.lock.RLock()
        self._prefix: str | None = None
        self._listening: set[str] = set()
        self._greenlet: gevent.Greenlet | None = None
        self._stopping = False
        self.delivered = 0
        self.reconnects = 0

    # ---------------------------------------------------------------- connections
    def _connect(self):
        import psycopg2
        from playhouse import db_url

        params = db_url.parse(self.url)
        params["dbname"] = params.pop("database")
        for key in ("max_connections", "stale_timeout", "timeout"):
            params.pop(key, None)
        params.setdefault("connect_timeout", 5)
        params.update(keepalives=1, keepalives_idle=10, keepalives_interval=3, keepalives_count=3,
                      application_name="hotline pub/sub")
        conn = (self._connect_fn or psycopg2.connect)(**params)
        conn.autocommit = True
        if self._prefix is None:
            with conn.cursor() as cur:
                cur.execute("SELECT current_database() || '.' || current_schema()")
                where = cur.fetchone()[0]
            self._prefix = "hotline_" + hashlib.sha1(where.encode()).hexdigest()[:10] + "_"
        return conn

    def channel(self, topic: str) -> str:
        """The PostgreSQL channel of ``topic`` (known once connected)."""
        if self._prefix is None:
            self._publish_connection()
        return self._prefix + _check_topic(topic)

    def _publish_connection(self):
        if self._publish_conn is None or self._publish_conn.closed:
            self._publish_conn = self._connect()
        return self._publish_conn

    # ---------------------------------------------------------------- publish
    def publish(self, topic: str, message: dict) -> None:
        """NOTIFY every process. Raises PubSubError for a bad topic or message, and the driver's error
        when PostgreSQL cannot be reached twice in a row."""
        payload = _encode(topic, message)
        with self._publish_lock:
            for attempt in (1, 2):
                try:
                    conn = self._publish_connection()
                    with conn.cursor() as cur:
                        cur.execute("SELECT pg_notify(%s, %s)", (self.channel(topic), payload))
                    return
                except Exception:  # noqa: BLE001 - a dropped connection: one fresh try
                    self._drop(self._publish_conn)
                    self._publish_conn = None
                    if attempt == 2:
                        raise

    # ---------------------------------------------------------------- listen
    def subscribe(self, topic: str, callback: Callback) -> Subscription:
        subscription = super().subscribe(topic, callback)
        if topic not in self._listening:
            self._listening.add(topic)
            conn = self._listen_conn
            if conn is not None and not conn.closed:
                try:
                    with conn.cursor() as cur:
                        cur.execute(f'LISTEN "{self.channel(topic)}"')
                except Exception:  # noqa: BLE001 - the listener reconnects and listens to every topic again
                    log.warning("pub/sub: LISTEN %s failed; reconnecting", topic)
                    self._drop(conn)
        return subscription

    def start(self) -> "PgBus":
        """Connect and start the listening greenlet (returns once LISTENing)."""
        if self._greenlet is None:
            self._stopping = False
            ready = gevent.event.Event()
            self._greenlet = gevent.spawn(self._run, ready)
            ready.wait(10)
        return self

    def _open_listener(self) -> None:
        conn = self._connect()
        with conn.cursor() as cur:
            for topic in sorted(self._listening):
                cur.execute(f'LISTEN "{self._prefix}{topic}"')
        self._listen_conn = conn

    def _run(self, ready) -> None:
        from gevent.socket import wait_read

        backoff = 0.2
        while not self._stopping:
            try:
                if self._listen_conn is None or self._listen_conn.closed:
                    self._open_listener()
                    if ready is not None:
                        ready.set()
                        ready = None
                    else:
                        log.info("pub/sub: listening again (messages sent meanwhile are lost)")
                    backoff = 0.2
                conn = self._listen_conn
                wait_read(conn.fileno(), timeout=30)
                conn.poll()
                while conn.notifies:
                    notification = conn.notifies.pop(0)
                    self._dispatch(notification.channel, notification.payload)
            except TimeoutError:  # socket.timeout: quiet for 30 s, look again
                continue
            except gevent.GreenletExit:
                break
            except Exception as exc:  # noqa: BLE001 - the database went away: listen again when it is back
                if self._stopping:
                    break
                log.warning("pub/sub: listening connection lost (%s); reconnecting in %.1f s", exc, backoff)
                self._drop(self._listen_conn)
                self._listen_conn = None
                self.reconnects += 1
                gevent.sleep(backoff)
                backoff = min(backoff * 2, self.reconnect_max)

    def _dispatch(self, channel: str, payload: str) -> None:
        if not self._prefix or not channel.startswith(self._prefix):
            return
        topic = channel[len(self._prefix):]
        try:
            message = json.loads(payload)
        except ValueError:
            log.warning("pub/sub: a message on %s is not JSON; dropped", topic)
            return
        if not isinstance(message, dict):
            return
        self.delivered += 1
        self._deliver(topic, message)

    @staticmethod
    def _drop(conn) -> None:
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - it is being dropped
                pass

    def stop(self) -> None:
        self._stopping = True
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=2)
            self._greenlet = None
        self._drop(self._listen_conn)
        self._listen_conn = None
        with self._publish_lock:
            self._drop(self._publish_conn)
            self._publish_conn = None


def open_bus(url: str):
    """The bus for the database at ``url``: PostgreSQL's LISTEN/NOTIFY, else one in the process."""
    scheme = url.split(":", 1)[0]
    return PgBus(url) if scheme.startswith("postgres") else LocalBus()
