"""Shared pieces of the switch/ tests: an outbound-socket handler that runs a test's call script."""
from __future__ import annotations

import gevent.event
import pytest

from switch.outbound import OutboundServer


class ScriptHandler:
    """Runs a test's call script for every call and keeps the sessions, results and exceptions."""

    def __init__(self, script):
        self.script = script
        self.sessions = []
        self.results = []
        self.errors: list[BaseException] = []
        self.done = gevent.event.Event()

    @property
    def result(self):
        return self.results[-1] if self.results else None

    @property
    def error(self) -> BaseException | None:
        return self.errors[-1] if self.errors else None

    def __call__(self, session):
        self.sessions.append(session)
        try:
            self.results.append(self.script(session))
        except BaseException as exc:
            self.errors.append(exc)
            raise
        finally:
            self.done.set()


@pytest.fixture
def serve():
    """serve(script, **server_options) -> (OutboundServer on 127.0.0.1:0, ScriptHandler); stopped after."""
    servers = []

    def start(script, **kw):
        handler = ScriptHandler(script)
        server = OutboundServer("127.0.0.1", 0, handler, **kw)
        server.start()
        servers.append(server)
        return server, handler

    yield start
    for server in servers:
        server.stop(drain_timeout=2)


@pytest.fixture
def inbound_to():
    """inbound_to(host, port, password="ClueCon", **options) -> a started InboundConnection with fast
    reconnects; stopped after the test."""
    from core.config import EslEndpoint
    from switch.inbound import InboundConnection

    connections = []

    def make(host, port, password="ClueCon", **kw):
        kw.setdefault("backoff_initial", 0.05)
        kw.setdefault("backoff_max", 0.2)
        conn = InboundConnection(EslEndpoint(host, port, password), **kw)
        connections.append(conn)
        conn.start()
        return conn

    yield make
    for conn in connections:
        conn.stop()
