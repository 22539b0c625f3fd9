"""The outbound socket server serves only the allowed FreeSWITCH addresses: anyone else is closed unread."""
from __future__ import annotations

import logging

import gevent
from gevent import socket

from switch.outbound import PeerAllowList


def _connect_from(source: str, address):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.connect(address)
    return sock


def _read_until_closed(sock, timeout=5.0) -> bytes:
    data = b""
    with gevent.Timeout(timeout, AssertionError("the server kept the connection open")):
        while True:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                return data  # closed with what the peer sent still unread

            if not chunk:
                return data
            data += chunk


def test_a_peer_outside_the_allow_list_gets_no_connect(serve, caplog):
    """Should close a connection from a non-allowed address at once, unanswered, without running the
    handler, and log it; an allowed address still gets `connect`."""
    server, handler = serve(lambda session: None, allow=PeerAllowList.resolve(["127.0.0.1"]))
    with caplog.at_level(logging.WARNING, logger="switch.outbound"):
        stranger = _connect_from("127.0.0.2", server.address)
        # It even sends what FreeSWITCH would: nothing of it is read or answered.
        stranger.sendall(b"Content-Type: command/reply\nReply-Text: +OK\n\n")
        assert _read_until_closed(stranger) == b""
    stranger.close()
    assert server.calls_refused == 1 and handler.sessions == []
    assert "refused a connection from 127.0.0.2" in caplog.text

    allowed = _connect_from("127.0.0.1", server.address)
    with gevent.Timeout(5, AssertionError("no connect for the allowed peer")):
        received = b""
        while b"\n\n" not in received:
            received += allowed.recv(4096)
    assert received.startswith(b"connect\n\n")
    allowed.close()
