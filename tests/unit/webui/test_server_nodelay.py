"""The web server sends each answer at once (TCP_NODELAY): pywsgi writes an answer's head and body apart, and
with Nagle's algorithm the body waited for the client's delayed acknowledgement of the head, 40 ms on every
answer of a kept-alive connection (found by bench/portal.py)."""
from __future__ import annotations

import http.client
import socket

import gevent

from webui.server import HttpServer, _Handler


def test_every_connection_has_nagle_off():
    """Should switch Nagle's algorithm off on each accepted TCP connection before serving it, and keep
    serving several answers on one kept-alive connection."""
    seen = []

    class Recording(_Handler):
        def handle(self):
            seen.append(self.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            super().handle()

    def app(_environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5000")])
        return [b"x" * 5000]

    server = HttpServer(("127.0.0.1", 0), app)
    server.handler_class = Recording
    server.start()
    try:
        def talk():
            connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
            bodies = []
            for _ in range(3):
                connection.request("GET", "/")
                bodies.append(connection.getresponse().read())
            connection.close()
            return bodies

        # A blocking client in a thread of the hub's pool: this process is not monkey-patched.
        bodies = gevent.get_hub().threadpool.spawn(talk).get(timeout=20)
    finally:
        server.stop()
    assert bodies == [b"x" * 5000] * 3
    assert seen == [1]  # one connection, Nagle off
