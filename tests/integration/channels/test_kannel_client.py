"""The sendsms client's reading of what happened to a request, against sockets on 127.0.0.1 (no Kannel)."""
import socket
import threading

import pytest

from channels.kannel import GatewayDown, GatewayUnsure, KannelClient
from tests.ports import refusing_port


def _server(reply: bytes):
    """A one-request HTTP server: reads the request, writes ``reply`` (b'': none) and closes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve():
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            if reply:
                conn.sendall(reply)
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/cgi-bin/sendsms", thread


def test_no_answer_after_the_request_is_unsure():
    """Should say 'unsure' when the request was sent and the connection closed without an answer (smsbox
    stopping while it handled the message): it may have taken it."""
    url, thread = _server(b"")
    with pytest.raises(GatewayUnsure):
        KannelClient(url, "u", "p", timeout=5).send(1, "13800000001", "测试")
    thread.join(5)


def test_refused_connection_is_down():
    """Should say 'down' (nothing taken, send again later) when nothing listens."""
    with refusing_port() as port, pytest.raises(GatewayDown) as raised:
        KannelClient(f"http://127.0.0.1:{port}/cgi-bin/sendsms", "u", "p", timeout=5).send(1, "13800000001", "x")
    assert not isinstance(raised.value, GatewayUnsure)


def test_accepted_answer_is_returned():
    """Should return Kannel's answer when it took the message."""
    url, thread = _server(b"HTTP/1.1 202 Accepted\r\nContent-Length: 26\r\nConnection: close\r\n\r\n"
                          b"0: Accepted for delivery\r\n")
    assert KannelClient(url, "u", "p", timeout=5).send(1, "13800000001", "测试") == "0: Accepted for delivery"
    thread.join(5)
