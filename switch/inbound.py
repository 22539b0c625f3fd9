"""InboundConnection: the app's control connection to one FreeSWITCH event socket; SwitchPool for several.

Built on greenswitch.InboundESL (host/port/password, auth, the reply FIFO) with switch.protocol's framed
reader.  What greenswitch lacks and this adds: timeouts on connect/auth/api, a clear error for a wrong
password (greenswitch raises ValueError, or waits forever when the access list rejects us), bgapi
correlated by a Job-UUID we choose (BACKGROUND_JOB carries it back), automatic reconnect with backoff and
resubscription, a visible state, on_connected callbacks, and subscriber callbacks run in their own
greenlet so they may call api() themselves.

Events arrive faster than subscribers may take them: the queue between is bounded, and an event that does
not fit is dropped and counted (``dropped_events``). What the app knew from events is then stale exactly
as after a reconnect, so the same on_connected callbacks run once the events queued before the drop have
been handled (the ACD reconciles with this switch), at most once per ``resync_interval`` seconds.

``conn.channel(uuid)`` gives the channel handle, switch/channel.py's ``Channel`` (importable from here too).
"""
from __future__ import annotations

import logging
import random
import time
import uuid as uuidlib
from dataclasses import dataclass
from typing import Callable, Iterable

import gevent
import gevent.event
import gevent.queue
import greenswitch
from gevent import socket

from switch.channel import Channel
from switch.codec import Frame
from switch.errors import AuthenticationFailed, CommandFailed, SwitchDisconnected, SwitchError, SwitchTimeout
from switch.events import DOMAIN_EVENT_NAMES, INBOUND_DEFAULT_EVENTS, SwitchEvent, to_domain
from switch.protocol import FramedProtocol

log = logging.getLogger(__name__)

CONNECTING = "connecting"
CONNECTED = "connected"
DISCONNECTED = "disconnected"

# Put in the event queue behind the events queued when some were dropped: the dispatcher runs the
# on_connected callbacks when it gets there, so a reconcile sees the switch after those events.
_RESYNC = object()


@dataclass(frozen=True)
class JobResult:
    """The outcome of a bgapi job: ok unless the body starts with -ERR."""

    ok: bool
    body: str
    job_uuid: str = ""


class _InboundClient(FramedProtocol, greenswitch.InboundESL):
    """One TCP connection (one attempt); InboundConnection makes a new one per reconnect."""

    def __init__(self, owner: "InboundConnection", connect_timeout: float, reply_timeout: float):
        self._owner = owner
        endpoint = owner.endpoint
        self._setup_framing(endpoint.name, reply_timeout)
        super().__init__(endpoint.host, endpoint.port, endpoint.password, timeout=connect_timeout)

    def connect(self) -> None:
        """TCP connect, wait for auth/request, authenticate: each step bounded by the connect timeout."""
        try:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise SwitchDisconnected(f"{self.name}: cannot connect: {exc}") from None
        self.sock.settimeout(None)
        self.connected = True
        self.start_event_handlers()
        if not self._auth_request_event.wait(self.timeout):
            raise SwitchTimeout(f"{self.name}: no auth/request within {self.timeout}s (is this an event socket?)")
        if self.rejection:
            raise AuthenticationFailed(f"{self.name}: rejected by the event socket's access list ({self.rejection})")
        if not self.connected:
            raise SwitchDisconnected(f"{self.name}: closed before auth ({self.close_reason})")
        self.authenticate()

    def authenticate(self) -> None:
        """Send the password; AuthenticationFailed when FreeSWITCH answers -ERR."""
        try:
            reply = self.send(f"auth {self.password}", timeout=self.timeout)
        except ValueError:
            raise AuthenticationFailed(f"{self.name}: the configured password contains a newline") from None
        if not reply.ok:
            raise AuthenticationFailed(f"{self.name}: password refused ({reply.reply_text or 'no reason'}); "
                                       "check HOTLINE_ESL against the event socket's password")

    def on_event_frame(self, frame: Frame) -> None:
        self._owner._on_event(self, frame)


class InboundConnection:
    """A self-healing control connection: api, bgapi, event subscription; reconnects on its own."""

    def __init__(self, endpoint, events: Iterable[str] = INBOUND_DEFAULT_EVENTS, api_timeout: float = 10.0, *,
                 bgapi_timeout: float = 60.0, connect_timeout: float = 5.0, backoff_initial: float = 0.5,
                 backoff_max: float = 30.0, event_format: str = "plain", max_queued_events: int = 10000,
                 resync_interval: float = 5.0, heartbeat_timeout: float = 65.0):
        if event_format not in ("plain", "json"):
            raise ValueError(f"event_format must be plain or json, not {event_format!r}")
        self.endpoint = endpoint
        self.name = endpoint.name
        self.events = tuple(events)
        for name in self.events:
            if not name or any(c.isspace() for c in name):
                raise ValueError(f"event names must be single words: {name!r}")
        self.api_timeout = api_timeout
        self.bgapi_timeout = bgapi_timeout
        self.connect_timeout = connect_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.event_format = event_format
        self.state = DISCONNECTED
        self.last_error = ""
        self.core_uuid = ""        # this FreeSWITCH's Core-UUID: outbound calls carry it in their channel data
        self.connects = 0
        self.dropped_events = 0    # since start, across reconnects
        self.resync_interval = resync_interval
        # FreeSWITCH sends HEARTBEAT every 20 s by default (switch.conf event-heartbeat-interval): a connection
        # that heard none for this long is treated as dead even though its socket is open (a hung or
        # frozen switch, a silently dropped route); 0 turns the watch off.
        self.heartbeat_timeout = heartbeat_timeout
        self.last_heartbeat: float | None = None  # time.monotonic() of the last HEARTBEAT on this connection
        self.heartbeat_deaths = 0
        self._resync_pending = False
        self._last_resync = float("-inf")  # time.monotonic() of the last resync after dropped events
        self._dropped_since_resync = 0
        self._client: _InboundClient | None = None
        self._attempt: _InboundClient | None = None
        self._subscribers: list[Callable[[SwitchEvent], None]] = []
        self._connected_callbacks: list[Callable[[], None]] = []
        self._jobs: dict[str, gevent.event.AsyncResult] = {}
        # bounded: a subscriber that blocks must not make the reader buffer without limit
        self._queue: gevent.queue.Queue = gevent.queue.Queue(maxsize=max_queued_events)
        self._connected_event = gevent.event.Event()
        self._stopping = False
        self._supervisor: gevent.Greenlet | None = None
        self._dispatcher: gevent.Greenlet | None = None
        self._resync_greenlet: gevent.Greenlet | None = None

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting in the background (returns at once; see wait_connected)."""
        if self._supervisor is not None:
            return
        self._stopping = False
        self._dispatcher = gevent.spawn(self._dispatch_events)
        self._supervisor = gevent.spawn(self._run)

    def stop(self) -> None:
        """Close the connection and stop reconnecting."""
        self._stopping = True
        client = self._client or self._attempt
        if self._supervisor is not None:
            self._supervisor.kill(block=True, timeout=5)
            self._supervisor = None
        if client is not None:
            client.stop()
        if self._dispatcher is not None:
            self._dispatcher.kill(block=True, timeout=5)
            self._dispatcher = None
        if self._resync_greenlet is not None:
            self._resync_greenlet.kill(block=True, timeout=5)
            self._resync_greenlet = None
        self._resync_pending = False
        self._set_disconnected("stopped")

    @property
    def connected(self) -> bool:
        """True while authenticated and subscribed."""
        return self.state == CONNECTED

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (True) or timeout (False)."""
        return self._connected_event.wait(timeout)

    def status(self) -> dict:
        """What /healthz and the supervisor screen show."""
        return {"name": self.name, "state": self.state, "last_error": self.last_error, "connects": self.connects,
                "dropped_events": self.dropped_events, "core_uuid": self.core_uuid,
                "heartbeat_age": self.heartbeat_age(), "heartbeat_timeout": self.heartbeat_timeout,
                "heartbeat_deaths": self.heartbeat_deaths}

    def heartbeat_age(self) -> float | None:
        """Seconds since this connection last heard a HEARTBEAT (since it connected when none yet), or None
        when not connected."""
        if self.state != CONNECTED or self.last_heartbeat is None:
            return None
        return round(time.monotonic() - self.last_heartbeat, 1)

    # --- commands ----------------------------------------------------------------------------------------

    def api(self, command: str, timeout: float | None = None, check: bool = False) -> str:
        """Run an API command and return its output; with check=True a "-ERR" output raises CommandFailed."""
        client = self._require()
        reply = client.send(f"api {command}", timeout=self.api_timeout if timeout is None else timeout)
        if check and reply.body.startswith("-ERR"):
            raise CommandFailed(command, reply.body.strip())
        return reply.body

    def bgapi(self, command: str, timeout: float | None = None) -> JobResult:
        """Run an API command in the background and wait for its BACKGROUND_JOB (matched by our Job-UUID)."""
        client = self._require()
        timeout = self.bgapi_timeout if timeout is None else timeout
        job_uuid = str(uuidlib.uuid4())
        waiter = gevent.event.AsyncResult()
        self._jobs[job_uuid] = waiter
        try:
            reply = client.send(f"bgapi {command}", {"Job-UUID": job_uuid}, timeout=min(timeout, self.api_timeout))
            if not reply.ok:
                raise CommandFailed(command, reply.reply_text)
            try:
                return waiter.get(timeout=timeout)
            except gevent.Timeout:
                raise SwitchTimeout(f"{self.name}: job {command.split(' ', 1)[0]!r} not done within {timeout}s") from None
        finally:
            self._jobs.pop(job_uuid, None)

    def channel(self, uuid: str, timeout: float | None = None) -> Channel:
        """A handle with verbs (hold, kill, transfer ...) for the channel ``uuid`` on this switch."""
        return Channel(self, uuid, self.api_timeout if timeout is None else timeout)

    def subscribe(self, callback: Callable[[SwitchEvent], None]) -> None:
        """callback(domain_event) for every event, across reconnects; runs in the dispatcher greenlet."""
        self._subscribers.append(callback)

    def on_connected(self, callback: Callable[[], None]) -> None:
        """callback() whenever what events told may be stale, to reconcile state that changed meanwhile:
        after each successful (re)connect, and after events were dropped (see the module docstring)."""
        self._connected_callbacks.append(callback)

    def _run_connected_callbacks(self) -> None:
        for callback in list(self._connected_callbacks):
            try:
                callback()
            except Exception:       # one listener's failure must not stop the connection
                log.exception("%s: on_connected callback %r failed", self.name, callback)

    def _require(self) -> _InboundClient:
        client = self._client
        if client is None or self.state != CONNECTED:
            raise SwitchDisconnected(f"{self.name}: not connected ({self.last_error or self.state})")
        return client

    # --- connection supervisor ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            try:
                self._connect_and_serve()
            except Exception:               # a bug here must not end reconnecting for good
                log.exception("%s: connection supervisor failed; restarting it", self.name)
                self._set_disconnected("internal error")
                gevent.sleep(self.backoff_max)

    def _connect_and_serve(self) -> None:
        delay = self.backoff_initial
        while not self._stopping:
            self.state = CONNECTING
            client = self._attempt = _InboundClient(self, self.connect_timeout, self.api_timeout)
            try:
                client.connect()
                # HEARTBEAT always: the liveness watch below reads it, whatever the subscribers want. First,
                # because FreeSWITCH reads every word after CUSTOM as a subclass name.
                names = (() if "HEARTBEAT" in self.events else ("HEARTBEAT",)) + self.events
                subscribe = f"event {self.event_format} " + " ".join(names)
                reply = client.send(subscribe, timeout=self.connect_timeout)
                if not reply.ok:
                    raise CommandFailed(subscribe, reply.reply_text)
                # a restarted FreeSWITCH has a new Core-UUID; when the variable is missing the next event
                # tells (see _on_event)
                core = client.send("api global_getvar core_uuid", timeout=self.connect_timeout).body.strip()
                self.core_uuid = core if core and not core.startswith("-ERR") and " " not in core else ""
            except SwitchError as exc:
                client.stop()
                self.last_error = str(exc)
                self.state = DISCONNECTED
                level = logging.ERROR if isinstance(exc, AuthenticationFailed) else logging.WARNING
                log.log(level, "%s: %s; retrying in %.1fs", self.name, exc, delay)
                gevent.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.backoff_max)
                continue
            self._client = client
            self.last_heartbeat = time.monotonic()  # the watch counts from the connect
            self.state = CONNECTED
            self.connects += 1
            self.last_error = ""
            self._connected_event.set()
            delay = self.backoff_initial
            log.info("%s: connected to the event socket (connection %d)", self.name, self.connects)
            self._run_connected_callbacks()
            # the connection's lifetime, not a wait for an answer: it ends when the socket does, when the
            # switch falls silent (no HEARTBEAT within heartbeat_timeout) or when stop() kills us
            self._watch(client)
            self._set_disconnected(client.close_reason)
            if not self._stopping:
                log.warning("%s: event socket lost (%s); reconnecting", self.name, client.close_reason)
                gevent.sleep(self.backoff_initial * random.uniform(0.5, 1.0))

    def _watch(self, client: _InboundClient) -> None:
        """Wait for the connection to close; close it when no HEARTBEAT came within heartbeat_timeout."""
        if not self.heartbeat_timeout:
            client.wait_closed()
            return
        while not client.wait_closed(timeout=max(self.heartbeat_timeout / 4, 0.01)):
            silent = time.monotonic() - self.last_heartbeat
            if silent > self.heartbeat_timeout:
                self.heartbeat_deaths += 1
                log.error("%s: no HEARTBEAT for %.0fs (limit %.0fs): the switch is hung or unreachable; "
                          "dropping the connection to reconnect and reconcile", self.name, silent,
                          self.heartbeat_timeout)
                client._abort(f"no heartbeat for {silent:.0f}s")
                client.stop()
                return

    def _set_disconnected(self, reason: str) -> None:
        self._client = None
        self.state = DISCONNECTED
        self._connected_event.clear()
        if reason and reason != "stopped":
            self.last_error = reason
        # a job's BACKGROUND_JOB is never resent on a new connection: fail its waiter now
        jobs, self._jobs = self._jobs, {}
        for waiter in jobs.values():
            waiter.set_exception(SwitchDisconnected(f"{self.name}: connection lost before the job finished"))

    # --- events ------------------------------------------------------------------------------------------

    def _on_event(self, client: _InboundClient, frame: Frame) -> None:
        name = frame.event_name
        if not name:                         # malformed (every event has a name): report it
            client.parsed_event(frame)
            return
        if name == "HEARTBEAT" and client is self._client:
            self.last_heartbeat = time.monotonic()
            if "HEARTBEAT" not in self.events:
                return
        if name != "BACKGROUND_JOB" and not (self._subscribers and name in DOMAIN_EVENT_NAMES) \
                and self.core_uuid:
            return                           # never parsed: nobody would read it
        event = client.parsed_event(frame)
        if event is None:
            return
        if not self.core_uuid:
            self.core_uuid = event.get("Core-UUID", "")
        if event.get("Event-Name") == "BACKGROUND_JOB":
            waiter = self._jobs.pop(event.get("Job-UUID", ""), None)
            if waiter is not None:
                body = frame.event_body
                waiter.set(JobResult(not body.startswith("-ERR"), body, event.get("Job-UUID", "")))
        if not self._subscribers:
            return
        domain = to_domain(event, self.name, frame.event_body)
        if domain is None:
            return
        try:
            self._queue.put_nowait(domain)
        except gevent.queue.Full:
            self._dropped(domain)

    def _dropped(self, event: SwitchEvent) -> None:
        """Count a dropped event and make sure a resync follows (one per burst, logged once)."""
        self.dropped_events += 1
        self._dropped_since_resync += 1
        if self._resync_pending:
            return
        self._resync_pending = True
        log.error("%s: event queue full (%d); dropped %s and will reconcile with this switch", self.name,
                  self._queue.maxsize, type(event).__name__)
        delay = max(0.0, self._last_resync + self.resync_interval - time.monotonic())
        self._resync_greenlet = gevent.spawn_later(delay, self._queue_resync)

    def _queue_resync(self) -> None:
        """Put the resync marker behind the queued events, waiting for room (stop() kills this greenlet)."""
        while True:
            try:
                self._queue.put(_RESYNC, timeout=self.api_timeout)
                return
            except gevent.queue.Full:
                log.warning("%s: event queue still full after %.0fs; the resync waits", self.name, self.api_timeout)

    def _resync_after_drops(self) -> None:
        self._last_resync = time.monotonic()
        self._resync_pending = False
        dropped, self._dropped_since_resync = self._dropped_since_resync, 0
        log.warning("%s: %d events were dropped; reconciling (%d dropped since start)", self.name, dropped,
                    self.dropped_events)
        self._run_connected_callbacks()

    def _dispatch_events(self) -> None:
        while True:
            # blocks without polling (greenswitch polls every second); stop() kills this greenlet
            event = self._queue.get()
            if event is _RESYNC:
                self._resync_after_drops()
                continue
            for callback in list(self._subscribers):
                try:
                    callback(event)
                except Exception:       # one subscriber's bug must not stop the others
                    log.exception("%s: subscriber %r failed on %s", self.name, callback, type(event).__name__)


class SwitchPool:
    """One InboundConnection per FreeSWITCH server, addressed by endpoint name ("host:port")."""

    def __init__(self, endpoints: Iterable, **connection_options):
        self._connections: dict[str, InboundConnection] = {}
        for endpoint in endpoints:
            if endpoint.name in self._connections:
                raise ValueError(f"FreeSWITCH {endpoint.name} listed twice")
            self._connections[endpoint.name] = InboundConnection(endpoint, **connection_options)

    def start(self) -> None:
        """Start every connection."""
        for conn in self._connections.values():
            conn.start()

    def stop(self) -> None:
        """Stop every connection."""
        for conn in self._connections.values():
            conn.stop()

    def get(self, name: str) -> InboundConnection:
        """The connection to `name`; KeyError when there is none."""
        try:
            return self._connections[name]
        except KeyError:
            raise KeyError(f"no FreeSWITCH named {name!r} (known: {', '.join(self._connections)})") from None

    def for_host(self, host: str) -> InboundConnection:
        """The connection whose endpoint host is `host` (an outbound call's peer); KeyError otherwise."""
        matches = [c for c in self._connections.values() if c.endpoint.host == host]
        if len(matches) == 1:
            return matches[0]
        if not matches and len(self._connections) == 1:
            return next(iter(self._connections.values()))
        raise KeyError(f"no single FreeSWITCH at host {host!r}")

    def for_call(self, session) -> InboundConnection:
        """The connection to the FreeSWITCH an outbound call came from: by the Core-UUID in its channel
        data (exact even when several servers share a host), else by the peer's host."""
        core = (getattr(session, "channel_data", None) or {}).get("Core-UUID", "")
        if core:
            for conn in self._connections.values():
                if conn.core_uuid == core:
                    return conn
        return self.for_host(session.peer[0] if getattr(session, "peer", None) else session.server.rpartition(":")[0])

    def name_for_call(self, session) -> str:
        """The name ("host:port" of its event socket) of the FreeSWITCH an outbound call came from, as call
        records show it; the socket peer's address (an ephemeral port) only when no connection matches."""
        try:
            return self.for_call(session).name
        except KeyError:
            return session.server

    def all(self) -> list[InboundConnection]:
        """Every connection, in configuration order."""
        return list(self._connections.values())

    @property
    def connected(self) -> bool:
        """True when at least one FreeSWITCH is connected."""
        return any(c.connected for c in self._connections.values())

    def status(self) -> dict:
        """{name: status dict} for every server."""
        return {name: conn.status() for name, conn in self._connections.items()}
