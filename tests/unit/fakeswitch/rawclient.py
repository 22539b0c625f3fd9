"""A tiny raw-socket ESL client used to test the fake switch (deliberately not switch/'s codec)."""
from __future__ import annotations

import json
import time
import urllib.parse

import gevent
import gevent.event
from gevent import socket as gsocket
from gevent.server import StreamServer


class Frame:
    """One frame as read: header pairs (raw), body bytes, raw bytes."""

    def __init__(self, header_pairs, body, raw):
        self.header_pairs = header_pairs
        self.headers = dict(header_pairs)
        self.body = body
        self.raw = raw

    @property
    def content_type(self):
        return self.headers.get("Content-Type")

    def event(self):
        """Decode a text/event-plain or text/event-json body into (headers dict, body str)."""
        if self.content_type == "text/event-json":
            obj = json.loads(self.body.decode("utf-8"))
            return {k: v for k, v in obj.items() if k != "_body"}, obj.get("_body", "")
        if self.content_type == "text/event-plain":
            head, _, rest = self.body.partition(b"\n\n")
            hs = {}
            for line in head.decode("utf-8").split("\n"):
                k, _, v = line.partition(": ")
                hs[k] = urllib.parse.unquote(v)
            return hs, rest.decode("utf-8")
        if self.content_type is None and "Event-Name" in self.headers:
            return {k: urllib.parse.unquote(v) for k, v in self.header_pairs}, ""
        raise ValueError(f"not an event: {self.content_type}")

    def __repr__(self):
        return f"Frame({self.raw[:120]!r})"


class RawClient:
    """Read whole frames and write commands on a gevent socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.frames: list[Frame] = []
        self.pending: list[Frame] = []     # frames read while looking for something else

    @classmethod
    def connect(cls, address, timeout=5.0):
        return cls(gsocket.create_connection(address, timeout=timeout))

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no frame in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except gsocket.timeout as exc:
            raise TimeoutError("no frame in time") from exc
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def read_frame(self, timeout=5.0) -> Frame:
        deadline = time.monotonic() + timeout
        while b"\n\n" not in self.buf:
            self._fill(deadline)
        head, _, rest = self.buf.partition(b"\n\n")
        pairs = []
        for line in head.decode("utf-8").split("\n"):
            k, _, v = line.partition(": ")
            pairs.append((k, v))
        length = int(dict(pairs).get("Content-Length", "0") or 0)
        self.buf = rest
        while len(self.buf) < length:
            self._fill(deadline)
        body, self.buf = self.buf[:length], self.buf[length:]
        frame = Frame(pairs, body, head + b"\n\n" + body)
        self.frames.append(frame)
        return frame

    def command(self, text, timeout=5.0) -> Frame:
        """Send a command and return the next reply frame (command/reply or api/response), keeping events."""
        self.send(text if text.endswith("\n\n") else text + "\n\n")
        return self.read_until(lambda f: f.content_type in ("command/reply", "api/response")
                               or (f.content_type is None and "Reply-Text" in f.headers), timeout)

    def read_until(self, pred, timeout=5.0) -> Frame:
        """The first frame (earlier skipped ones first) matching pred; others are kept for later."""
        for i, f in enumerate(self.pending):
            if pred(f):
                del self.pending[i]
                return f
        deadline = time.monotonic() + timeout
        while True:
            f = self.read_frame(max(0.001, deadline - time.monotonic()))
            if pred(f):
                return f
            self.pending.append(f)

    def read_event(self, name, timeout=5.0, **match):
        """Next event with Event-Name `name` (and header values in `match`); returns (headers, body)."""
        def ok(f):
            if f.content_type not in ("text/event-plain", "text/event-json"):
                return False
            h, _ = f.event()
            return h.get("Event-Name") == name and all(h.get(k.replace("_", "-")) == v for k, v in match.items())
        return self.read_until(ok, timeout).event()

    def close(self):
        self.sock.close()


class AppServer:
    """A stand-in for the app's outbound socket server: each connection runs handler(RawClient)."""

    def __init__(self, handler):
        self.handler = handler
        self.errors = []
        self.done = []
        self._finished = gevent.event.Event()
        self.server = StreamServer(("127.0.0.1", 0), self._handle)

    def _handle(self, sock, address):
        client = RawClient(sock)
        try:
            self.handler(client)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            self.errors.append(exc)
        finally:
            self.done.append(client)
            ev, self._finished = self._finished, gevent.event.Event()
            ev.set()

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop(timeout=1)

    @property
    def address(self):
        return ("127.0.0.1", self.server.address[1])

    def wait_done(self, count=1, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.done) < count:
            ev = self._finished
            if len(self.done) >= count:
                break
            if not ev.wait(max(0.0, deadline - time.monotonic())) and len(self.done) < count:
                raise TimeoutError("app handler did not finish")
        if self.errors:
            raise self.errors[0]


def execute(client, app, arg=None, event_uuid=None, timeout=5.0):
    """sendmsg execute and wait for the CHANNEL_EXECUTE_COMPLETE whose Application-UUID matches."""
    import uuid as uuidlib
    event_uuid = event_uuid or str(uuidlib.uuid4())
    msg = f"sendmsg\ncall-command: execute\nexecute-app-name: {app}\n"
    if arg is not None:
        msg += f"execute-app-arg: {arg}\n"
    msg += f"Event-UUID: {event_uuid}\n\n"
    reply = client.command(msg, timeout)
    assert reply.headers.get("Reply-Text") == "+OK", reply
    return client.read_event("CHANNEL_EXECUTE_COMPLETE", timeout, Application_UUID=event_uuid)
