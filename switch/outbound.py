"""OutboundServer: the socket FreeSWITCH's `socket 127.0.0.1:8084 async full` connects to, one greenlet per call.

Built on gevent.server.StreamServer rather than greenswitch.OutboundESLServer, which accepts by polling a
non-blocking socket every 0.1 s, calls sys.exit() when it cannot bind, rejects over-capacity calls by
connecting and dropping them, and has no way to drain on shutdown.  StreamServer blocks in accept on the
event loop and runs `_on_connection` in a fresh greenlet per connection.
"""
from __future__ import annotations

import ipaddress
import logging
import socket
import time
from typing import Callable, Iterable

import gevent
import gevent.event
from gevent.server import StreamServer

from switch.admission import Admission
from switch.errors import CallHangup, SwitchError
from switch.session import CallSession

log = logging.getLogger(__name__)


class PeerAllowList:
    """The addresses allowed to connect: anyone else could pose as FreeSWITCH and feed the app channel data
    (a forged campaign call rating a ticket, a caller sent to any IVR node)."""

    def __init__(self, networks: Iterable):
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    @classmethod
    def resolve(cls, entries: Iterable[str], getaddrinfo=socket.getaddrinfo) -> "PeerAllowList":
        """Addresses and networks as given; host names looked up now (one that does not resolve is logged and
        allows nobody)."""
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            try:
                infos = getaddrinfo(entry, None, 0, socket.SOCK_STREAM)
            except OSError as exc:
                log.error("outbound ESL server: allowed peer %r does not resolve (%s); it cannot connect", entry,
                          exc)
                continue
            networks.extend(ipaddress.ip_network(info[4][0].split("%")[0]) for info in infos)
        return cls(dict.fromkeys(networks))

    def allows(self, host: str) -> bool:
        """True if a peer at ``host`` (an IP address as the socket reports it) may connect."""
        try:
            address = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False
        mapped = getattr(address, "ipv4_mapped", None)
        address = mapped or address
        return any(address.version == n.version and address in n for n in self.networks)

    def __str__(self) -> str:
        return ", ".join(str(n) for n in self.networks) or "nobody"


class RefusalLog:
    """Log refused peers at most once a minute per address (with how many were not logged): a scan or a
    misconfigured switch must not flood the log."""

    def __init__(self, interval: float = 60.0, clock=time.monotonic, max_peers: int = 1024):
        self.interval = interval
        self.clock = clock
        self.max_peers = max_peers
        self._peers: dict[str, tuple[float, int]] = {}

    def refused(self, host: str, port: int) -> None:
        now = self.clock()
        last, quiet = self._peers.get(host, (None, 0))
        if last is not None and now - last < self.interval:
            self._peers[host] = (last, quiet + 1)
            return
        if len(self._peers) >= self.max_peers:
            self._peers.clear()
        self._peers[host] = (now, 0)
        more = f" ({quiet} more since the last message)" if quiet else ""
        log.warning("outbound ESL server: refused a connection from %s:%s, not an allowed FreeSWITCH address "
                    "(HOTLINE_OUTBOUND_ALLOW)%s", host, port, more)


class OutboundServer:
    """Accept calls, run `handler(session)` for each; cap concurrent calls; drain on stop."""

    def __init__(self, host: str, port: int, handler: Callable[[CallSession], None], max_calls: int = 1000, *,
                 linger: bool | int = True, reply_timeout: float = 10.0, reject_cause: str = "NORMAL_CIRCUIT_CONGESTION",
                 shutdown_cause: str = "SYSTEM_SHUTDOWN", max_rejecting: int = 64, backlog: int = 1024,
                 allow: PeerAllowList | None = None, admission: Admission | None = None, busy_prompt: str = "",
                 on_setup_lost: Callable[[CallSession, SwitchError], None] | None = None):
        self.host = host
        # None serves any peer (tests on loopback); the product always passes the configured list.
        self.allow = allow
        self.refusals = RefusalLog()
        self.calls_refused = 0
        self.port = port
        self.handler = handler
        self.max_calls = max_calls
        # The door (switch.admission): max_calls, and new calls refused while the ESL replies or the app's
        # own loop are slow. Without one only max_calls counts.
        self.admission = admission
        # What a caller refused in "busy" mode hears (a path the switch can play) before the hang-up.
        self.busy_prompt = busy_prompt
        # Told of a call lost during set-up after its channel data came (the switch stopped answering, the
        # socket dropped): the handler never runs for it, so whoever keeps call records must hear of it here.
        self.on_setup_lost = on_setup_lost
        self.linger = linger
        self.reply_timeout = reply_timeout
        self.reject_cause = reject_cause
        self.shutdown_cause = shutdown_cause
        self.max_rejecting = max_rejecting
        # a burst of calls (a carrier failing over to us) must not overflow the kernel's accept queue
        self.backlog = backlog
        self.calls_total = 0
        self.calls_rejected = 0
        self._calls: dict[CallSession, gevent.Greenlet] = {}
        self._rejecting = 0
        self._idle = gevent.event.Event()
        self._idle.set()
        self._stopping = False
        self._server: StreamServer | None = None

    def start(self) -> None:
        """Bind and start accepting (returns at once)."""
        self._server = StreamServer((self.host, self.port), self._on_connection, backlog=self.backlog)
        self._server.start()
        if self.admission is not None:
            self.admission.lag.start()
        log.info("outbound ESL server listening on %s:%s (max %d calls, peers: %s)", *self.address, self.max_calls,
                 "any" if self.allow is None else self.allow)

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the real port when 0 was asked for."""
        if self._server is None:
            return (self.host, self.port)
        return self._server.server_host, self._server.server_port

    @property
    def active_calls(self) -> int:
        """Calls whose handler is running."""
        return len(self._calls)

    @property
    def accepting(self) -> bool:
        """True between start() and stop()."""
        return self._server is not None and not self._stopping

    def stop(self, drain_timeout: float = 30.0) -> int:
        """Stop accepting; let calls in progress finish for up to drain_timeout s, then cut the rest.

        Returns how many calls had to be cut.
        """
        self._stopping = True
        if self._server is not None:
            self._server.close()
        if self.admission is not None:
            self.admission.lag.stop()
        if self._calls:
            log.info("outbound ESL server: draining %d call(s) for up to %ss", len(self._calls), drain_timeout)
        self._idle.wait(drain_timeout)
        remaining = list(self._calls.items())
        # hang the calls up (together: each waits up to 2 s for its +OK), then close their sockets;
        # the handler's current wait raises CallHangup
        cuts = []
        for session, _ in remaining:
            log.warning("outbound ESL server: cutting call %s still running after drain", session.uuid)
            cuts.append(gevent.spawn(session.close, 2.0, self.shutdown_cause))
        gevent.joinall(cuts, timeout=5)
        gevent.joinall([g for _, g in remaining], timeout=5)
        for _, greenlet in remaining:
            if not greenlet.dead:
                greenlet.kill(block=True, timeout=1)
        return len(remaining)

    def _on_connection(self, sock, address) -> None:
        if self._stopping:
            return                           # StreamServer closes the socket when we return
        if self.allow is not None and not self.allow.allows(address[0]):
            self.calls_refused += 1
            self.refusals.refused(address[0], address[1])
            return                           # closed unread: no `connect`, so no channel data trusted
        if self.admission is not None:
            reason = self.admission.refusal(len(self._calls))
        else:
            reason = "full" if len(self._calls) >= self.max_calls else ""
        if reason:
            self._reject(sock, address, reason)
            return
        session = CallSession(sock, address, reply_timeout=self.reply_timeout)
        self._calls[session] = gevent.getcurrent()
        self._idle.clear()
        try:
            try:
                session.setup(linger=self.linger)
            except SwitchError as exc:
                self._setup_lost(session, exc)
                raise
            self.calls_total += 1
            log.info("call %s from %s to %s (%d active)", session.uuid, session.caller, session.destination,
                     len(self._calls))
            self.handler(session)
        except CallHangup as exc:
            log.info("call %s ended in the handler: %s", session.uuid or address, exc)
        except SwitchError as exc:
            log.warning("call %s: %s", session.uuid or address, exc)
        except Exception:                   # one call's bug must not take the server down
            log.exception("call %s: handler failed", session.uuid or address)
        finally:
            try:
                session.close()
            finally:
                self._calls.pop(session, None)
                if not self._calls:
                    self._idle.set()

    def _setup_lost(self, session: CallSession, exc: SwitchError) -> None:
        """A call whose set-up failed (logged by the caller of this): handed on when its channel data named
        it; without the `connect` reply nothing is known of the caller to hand on."""
        if not session.uuid or self.on_setup_lost is None:
            return
        try:
            self.on_setup_lost(session, exc)
        except Exception:  # noqa: BLE001 - the listener's failure is logged; the server goes on
            log.exception("call %s: handling its loss during set-up failed", session.uuid)

    def _refuse_unanswered(self, sock, address, wait: float = 10.0) -> None:
        """Refuse without waiting for any reply: as many refusals as allowed already wait for the switch's
        (a saturated switch answers in seconds). Closing the socket unread is no refusal: the dialplan goes
        on to the standby and the failover retry (socket_resume), seconds more of the overload, and a switch
        without socket_resume parks the caller in silence once its listener ends before `connect`
        (mod_event_socket.c). Write `connect` and the hang-up at once, then read (and ignore) what comes
        until the switch closes the socket, ``wait`` at most."""
        log.warning("outbound ESL server: refusing call from %s:%s with %s (%d refusals waiting for the switch)",
                    address[0], address[1], self.reject_cause, self._rejecting)
        try:
            sock.sendall(b"connect\n\nsendmsg\ncall-command: hangup\nhangup-cause: "
                         + self.reject_cause.encode("ascii") + b"\n\n")
            with gevent.Timeout(wait, False):
                while sock.recv(65536):
                    pass
        except OSError as exc:
            log.info("refusing call from %s:%s: %s", address[0], address[1], exc)

    def _reject(self, sock, address, reason: str = "full") -> None:
        """Over capacity or overloaded: connect and hang up with a congestion cause (SIP 503), or in "busy"
        mode play the short busy prompt in early media and hang up busy; then close."""
        self.calls_rejected += 1
        if self._rejecting >= self.max_rejecting:
            self._refuse_unanswered(sock, address)
            return
        self._rejecting += 1
        busy = bool(self.busy_prompt) and self.admission is not None and self.admission.limits.refuse == "busy"
        session = CallSession(sock, address, reply_timeout=5.0)
        try:
            session.setup(subscribe=busy, linger=False)
            log.warning("outbound ESL server: refusing call %s (%s, %d calls up) with %s", session.uuid, reason,
                        len(self._calls), "the busy prompt" if busy else self.reject_cause)
            if busy:
                try:
                    session.execute("pre_answer", timeout=5.0)    # early media: nothing billed
                    session.playback(self.busy_prompt, timeout=20.0, terminators="")
                except SwitchError as exc:
                    log.info("busy prompt for %s not played: %s", session.uuid, exc)
                session.close(cause="USER_BUSY")
                return
            session.close(cause=self.reject_cause)    # explicit hangup (the caller hears 503), then close
        except SwitchError as exc:
            log.info("rejecting call from %s:%s: %s", *address, exc)
            session._channel.stop()
        finally:
            self._rejecting -= 1
