"""The web UI's HTTP server: gevent's pywsgi with a connection cap, idle and request-head timeouts, and a
reserve of file descriptors it never takes from the call path.

Plain pywsgi serves every connection it accepts for as long as the peer keeps it open: 300 idle sockets
took the process's last descriptors, and the outbound socket server could no longer accept calls (EMFILE).
Here:
- at most ``max_connections`` connections are open at once. A new one over the cap takes the place of the
  connection that has waited longest for a request (idle keep-alive, a slow request head); when every
  connection is busy in the application, it is answered 503 and closed;
- a connection waiting for its next request is closed after ``idle_timeout`` s (the socket's timeout, which
  also bounds each read of a body and each write of an answer);
- the request line and headers must arrive within ``header_timeout`` s of their first byte (slowloris);
- while fewer than ``fd_reserve`` descriptors remain free in the process, new connections are answered 503
  and closed at once, so calls keep their descriptors.
"""
from __future__ import annotations

import itertools
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

import gevent
from gevent.pywsgi import WSGIHandler, WSGIServer

from core import fds

log = logging.getLogger(__name__)

_REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n"
            b"Retry-After: 5\r\nContent-Length: 12\r\n\r\nserver busy\n")


@dataclass(frozen=True)
class HttpLimits:
    """The web server's limits (Config: http_max_connections, http_idle_timeout, http_header_timeout,
    http_fd_reserve)."""

    max_connections: int = 512
    idle_timeout: float = 30.0
    header_timeout: float = 10.0
    fd_reserve: int = 256

    @classmethod
    def from_config(cls, config) -> "HttpLimits":
        return cls(max_connections=config.http_max_connections, idle_timeout=config.http_idle_timeout,
                   header_timeout=config.http_header_timeout, fd_reserve=config.http_fd_reserve)


class _HeadTimeout(gevent.Timeout):
    """The request line and headers did not arrive in time."""


class _Handler(WSGIHandler):
    """pywsgi's handler that tells the server when it waits for a request, and bounds the request head."""

    _head_timer: gevent.Timeout | None = None

    def handle(self):
        try:
            super().handle()
        except OSError:
            pass  # the peer went away, timed out or was evicted while we wrote: the socket is closed

    def handle_one_request(self):
        try:
            return super().handle_one_request()
        except _HeadTimeout:
            # only this handler starts a _HeadTimeout in its greenlet
            log.info("web: request head from %s not complete within %ss; closing", self.client_address[0],
                     self.server.limits.header_timeout)
            return None
        finally:
            self._cancel_head_timer()
            self.server._busy(self)

    def read_requestline(self):
        self.server._idle(self)
        # Waiting for the first byte of a request: the socket's idle timeout applies (socket.timeout,
        # which pywsgi treats as the peer going away). From the first byte on, the whole head is bounded.
        self.rfile.peek(1)
        self._head_timer = _HeadTimeout(self.server.limits.header_timeout)
        self._head_timer.start()
        return super().read_requestline()

    def read_request(self, raw_requestline):
        try:
            return super().read_request(raw_requestline)
        finally:
            self._cancel_head_timer()
            self.server._busy(self)

    def _cancel_head_timer(self):
        if self._head_timer is not None:
            self._head_timer.close()
            self._head_timer = None


class HttpServer(WSGIServer):
    """WSGIServer with the limits of the module docstring. ``connections`` and ``status()`` for /healthz."""

    handler_class = _Handler
    # One accept per turn of the event loop: the handler decides (evict, refuse) before the next is taken,
    # so a burst of connections never holds more descriptors than the cap.
    max_accept = 1

    def __init__(self, listener, application, limits: HttpLimits = HttpLimits(), *,
                 free_fds: Callable[[], int | None] = fds.fds_free):
        super().__init__(listener, application, log=None)
        self.limits = limits
        self._free_fds = free_fds
        self._order = itertools.count()
        # handler -> None while busy in the application, or the turn at which it began waiting for a request
        self._handlers: dict[_Handler, int | None] = {}
        self.refused = 0
        self.evicted = 0

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._handlers)

    def status(self) -> dict:
        """What /healthz shows of the web server."""
        return {"connections": self.connections, "max_connections": self.limits.max_connections,
                "refused": self.refused, "evicted": self.evicted}

    def handle(self, sock, address):
        if len(self._handlers) >= self.limits.max_connections and not self._evict_one():
            self._refuse(sock, address, "every connection is busy")
            return
        free = self._free_fds()
        if free is not None and free < self.limits.fd_reserve:
            self._refuse(sock, address, f"only {free} file descriptors left for calls")
            return
        sock.settimeout(self.limits.idle_timeout)
        # An answer goes out as soon as it is written: pywsgi writes the head and the body apart, and with Nagle's
        # algorithm the body then waited for the client's delayed acknowledgement of the head, 40 ms on every
        # answer of a kept-alive connection (bench/portal.py).
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        handler = self.handler_class(sock, address, self)
        self._handlers[handler] = None
        try:
            handler.handle()
        finally:
            self._handlers.pop(handler, None)

    def _idle(self, handler) -> None:
        if handler in self._handlers:
            self._handlers[handler] = next(self._order)

    def _busy(self, handler) -> None:
        if handler in self._handlers:
            self._handlers[handler] = None

    def _evict_one(self) -> bool:
        """Close the connection that has waited longest for a request; False when none is waiting."""
        waiting = [(turn, id(h), h) for h, turn in self._handlers.items() if turn is not None]
        if not waiting:
            return False
        _, _, victim = min(waiting)
        # Out of the count at once; the shutdown wakes the victim's read with end-of-file and it closes.
        del self._handlers[victim]
        self.evicted += 1
        try:
            victim.socket.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass  # already closed (AttributeError: pywsgi dropped its socket attribute)
        return True

    def _refuse(self, sock, address, why: str) -> None:
        self.refused += 1
        log.warning("web: refusing connection from %s: %s", address[0], why)
        try:
            sock.settimeout(0)  # never wait on a peer that does not read
            sock.send(_REFUSED)
        except OSError:
            pass
        # StreamServer closes the socket when handle returns
