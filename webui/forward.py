"""A web worker's road to the call process: the pages that drive the running ACD are passed on over HTTP.

A web worker (``python -m webui.worker``) holds no ACD, no switch connection and no IVR: it serves every page
from the database, and the agent desk's event stream from the pub/sub bus (webui.desk_feed). What acts on
calls (a desk's buttons, the team lead's console, queue settings applied to the running ACD, a call-back
dialled, the live IVR view, the big screen's live figures) needs the process that holds them: the worker
passes those requests, as they came, to the active app's web server and the answer back to the browser,
streamed (server-sent events too). The active app checks the session, the CSRF token and the roles itself,
as for a request of its own; the browser never knows. With an active/standby pair the worker tries each
address of HOTLINE_CALL_PROCESS in order: the standby serves no web (core.leader), so it refuses at once.

``FORWARDED`` names what goes: whole blueprints, less the endpoints a worker serves itself.
"""
from __future__ import annotations

import http.client
import logging
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import Response, request

from core.config import ConfigError
from webui.security import socket_view

log = logging.getLogger(__name__)

# Blueprints whose views use the running ACD, switch or IVR (Services.acd, ivr_live, the dialler).
FORWARDED_BLUEPRINTS = frozenset({"agent_desk", "supervisor", "admin_acd", "admin_dialout", "desk_chat",
                                  "stats_screen", "admin_seats"})
# Single endpoints of other blueprints that do.
FORWARDED_ENDPOINTS = frozenset({"calls.missed", "calls.dial", "ivr_admin.live_json", "ivr_admin.index"})
# Served by the worker itself although their blueprint is forwarded.
SERVED_HERE = frozenset({"agent_desk.events"})
# Hop-by-hop headers (RFC 9110 7.6.1) and those the worker's own server sets.
_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                  "transfer-encoding", "upgrade", "host", "content-length"})
MAX_BODY = 64 * 1024 * 1024  # the biggest request body passed on (uploads are smaller: webui.server limits)


def forwarded(endpoint: str | None, blueprint: str | None) -> bool:
    """True when a worker passes this request to the call process."""
    if endpoint is None or endpoint in SERVED_HERE:
        return False
    return endpoint in FORWARDED_ENDPOINTS or blueprint in FORWARDED_BLUEPRINTS


def parse_call_process(value: str) -> tuple[tuple[str, int], ...]:
    """HOTLINE_CALL_PROCESS: the call processes' web addresses, ``http://host:port`` comma-separated, in the
    order to try (the pair's usual active first)."""
    addresses = []
    for part in (value or "").split(","):
        part = part.strip()
        if not part:
            continue
        url = urlsplit(part if "//" in part else f"http://{part}")
        if url.scheme != "http" or not url.hostname or url.path not in ("", "/") or url.query:
            raise ConfigError(f"HOTLINE_CALL_PROCESS: {part!r} is not http://host:port (the call process's web "
                              "server, reached over the private network)")
        try:
            port = url.port or 80
        except ValueError:
            raise ConfigError(f"HOTLINE_CALL_PROCESS: {part!r} has a bad port") from None
        addresses.append((url.hostname, port))
    if not addresses:
        raise ConfigError("HOTLINE_CALL_PROCESS: give the call process's web address(es), e.g. "
                          "http://10.0.0.11:8080,http://10.0.0.12:8080")
    return tuple(addresses)


@dataclass
class CallProcessForwarder:
    """Passes a request to the first call process that answers (the last one that did is tried first)."""

    addresses: tuple[tuple[str, int], ...]
    timeout: float = 30.0
    stream_timeout: float = 3700.0  # an event stream stays open up to an hour (the desk's own limit)
    trusted_hops: int = 0  # HOTLINE_TRUST_PROXY of this worker: X-Forwarded-For is passed on when trusted
    _preferred: int = field(default=0, init=False)
    forwarded: int = field(default=0, init=False)
    failures: int = field(default=0, init=False)

    def __call__(self):
        """A before_request hook: the answer of the call process for a forwarded request, else None."""
        if not forwarded(request.endpoint, request.blueprint):
            return None
        return self.forward()

    def _headers(self) -> dict[str, str]:
        headers = {name: value for name, value in request.headers.items() if name.lower() not in _HOP}
        # Who asked, by which scheme and host, for the call process's audit, limits and URLs: it trusts one
        # hop more than the worker does, so the worker adds what it saw itself (before its ProxyFix) to each.
        seen = socket_view(request.environ)
        for header, own in (("X-Forwarded-For", seen["REMOTE_ADDR"]), ("X-Forwarded-Proto", seen["wsgi.url_scheme"]),
                            ("X-Forwarded-Host", seen["HTTP_HOST"])):
            chain = [part.strip() for part in ",".join(request.headers.getlist(header)).split(",") if part.strip()]
            headers[header] = ", ".join([*(chain if self.trusted_hops else []), own])
        headers["X-Hotline-Worker"] = "1"
        return headers

    def forward(self) -> Response:
        body = request.get_data(cache=False) if request.content_length else b""
        if len(body) > MAX_BODY:
            return Response("request too large\n", status=413, mimetype="text/plain")
        path = request.full_path if request.query_string else request.path
        streaming = "text/event-stream" in request.headers.get("Accept", "")
        order = list(range(len(self.addresses)))
        order = order[self._preferred:] + order[:self._preferred]
        last_error = None
        for index in order:
            host, port = self.addresses[index]
            conn = http.client.HTTPConnection(host, port, timeout=self.stream_timeout if streaming else self.timeout)
            try:
                conn.request(request.method, path, body=body or None, headers=self._headers())
                answer = conn.getresponse()
            except OSError as exc:
                conn.close()
                last_error = exc
                continue
            self._preferred = index
            self.forwarded += 1
            return self._relay(conn, answer)
        self.failures += 1
        log.error("web worker: no call process answered %s %s (%s): %s", request.method, request.path,
                  ", ".join(f"{h}:{p}" for h, p in self.addresses), last_error)
        return Response("话务进程暂时不可用，请稍后再试。\nThe call process is not reachable; try again shortly.\n",
                        status=503, mimetype="text/plain", headers={"Retry-After": "5"})

    @staticmethod
    def _relay(conn, answer) -> Response:
        headers = [(name, value) for name, value in answer.getheaders() if name.lower() not in _HOP]
        if answer.getheader("Content-Type", "").startswith("text/event-stream"):
            def chunks():
                try:
                    while True:
                        chunk = answer.read1(65536)
                        if not chunk:
                            return
                        yield chunk
                except OSError:
                    return
                finally:
                    conn.close()
            return Response(chunks(), status=answer.status, headers=headers, direct_passthrough=True)
        started = time.monotonic()
        data = answer.read()
        conn.close()
        log.debug("forwarded in %.3f s", time.monotonic() - started)
        return Response(data, status=answer.status, headers=headers)
