"""The live suite's own helpers, checked without a switch: HOTLINE_TEST_ESL parsing and the raw ESL
client's framing (so that a live failure is the switch's, not the test client's)."""
from __future__ import annotations

import socket
import threading

import pytest

from tests.live.conftest import parse_endpoint
from tests.live.eslraw import EslClient, EslError, EslTimeout


def test_parse_endpoint_accepts_host_port_password():
    """Should split host:port:password, keeping colons inside the password."""
    assert parse_endpoint("127.0.0.1:8021:ClueCon") == ("127.0.0.1", 8021, "ClueCon")
    assert parse_endpoint("fs1:8021:a:b") == ("fs1", 8021, "a:b")


@pytest.mark.parametrize("value", ["", "127.0.0.1", "127.0.0.1:8021", "127.0.0.1:port:pw", ":8021:pw",
                                   "127.0.0.1:0:pw", "127.0.0.1:70000:pw", "127.0.0.1:8021:"])
def test_parse_endpoint_rejects_malformed_values(value):
    """Should refuse anything but host:port:password with a port from 1 to 65535, saying what is wrong."""
    with pytest.raises(ValueError, match="HOTLINE_TEST_ESL"):
        parse_endpoint(value)


def _serve(script: list[bytes], expect_commands: int = 1):
    """A one-connection fake switch: sends script chunks, each after reading one client command."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    received: list[bytes] = []

    def run():
        conn, _ = server.accept()
        with conn:
            conn.sendall(script[0])
            for chunk in script[1:]:
                data = b""
                while b"\n\n" not in data:
                    part = conn.recv(4096)
                    if not part:
                        return
                    data += part
                received.append(data)
                for piece in (chunk[:7], chunk[7:]):   # split frames across writes
                    conn.sendall(piece)
            conn.recv(4096)
        server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return server.getsockname()[1], received, thread


def test_client_reads_split_frames_and_keeps_events_in_order():
    """Should authenticate, read an api body by Content-Length in UTF-8 bytes, and queue events met on the way."""
    body = "UP 0 years\n12345 热线\n".encode()
    inner = b"Event-Name: CUSTOM\nEvent-Subclass: a%3A%3Ab\nContent-Length: 3\n\nxyz"
    event = b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(inner) + inner
    script = [b"Content-Type: auth/request\n\n",
              b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n",
              event + b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body) + body]
    port, received, thread = _serve(script)
    client = EslClient.connect("127.0.0.1", port, "pw")
    try:
        assert client.api("status") == body.decode()
        assert received == [b"auth pw\n\n", b"api status\n\n"]
        queued = client.wait_event(lambda e: e["Event-Name"] == "CUSTOM", timeout=1)
        assert queued["Event-Subclass"] == "a::b" and queued["_body"] == "xyz"
    finally:
        client.close()
        thread.join(timeout=5)


def test_client_reports_a_refused_password():
    """Should raise EslError carrying FreeSWITCH's -ERR reply when the password is wrong."""
    script = [b"Content-Type: auth/request\n\n", b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n"]
    port, _, thread = _serve(script)
    with pytest.raises(EslError, match="-ERR invalid"):
        EslClient.connect("127.0.0.1", port, "wrong")
    thread.join(timeout=5)


def test_client_reports_an_acl_rejection():
    """Should raise EslError naming the ACL when the switch sends rude-rejection instead of auth/request."""
    body = b"Access Denied, go away.\n"
    script = [b"Content-Type: text/rude-rejection\nContent-Length: %d\n\n" % len(body) + body]
    port, _, thread = _serve(script)
    with pytest.raises(EslError, match="ACL"):
        EslClient.connect("127.0.0.1", port, "pw")
    thread.join(timeout=5)


def test_client_times_out_instead_of_hanging():
    """Should give up with EslTimeout when the switch goes silent."""
    script = [b"Content-Type: auth/request\n\n", b""]
    port, _, thread = _serve(script)
    with pytest.raises(EslTimeout):
        EslClient.connect("127.0.0.1", port, "pw", timeout=0.3)
    thread.join(timeout=5)


def test_client_refuses_an_oversized_frame():
    """Should refuse a Content-Length beyond 16 MiB rather than try to read it."""
    script = [b"Content-Type: auth/request\nContent-Length: 999999999\n\n"]
    port, _, thread = _serve(script)
    with pytest.raises(EslError, match="16 MiB"):
        EslClient.connect("127.0.0.1", port, "pw")
    thread.join(timeout=5)
