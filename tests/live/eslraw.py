"""A small, independent Event Socket client for driving a real FreeSWITCH from the live tests.

Written separately from switch/ (like tests/fakeswitch) so that a bug in the product's codec is not
mirrored here.  One connection, read on demand in the caller's thread (no background reader), so it works
the same in plain threads and under gevent.  Every read has a deadline.
"""
from __future__ import annotations

import socket
import time
import urllib.parse
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Callable

MAX_FRAME = 16 * 1024 * 1024


class EslError(Exception):
    """The switch refused something or the connection broke; the message says what."""


class EslTimeout(EslError):
    """Nothing matching arrived before the deadline."""


@dataclass
class Frame:
    """One ESL frame: outer headers and the body (decoded as UTF-8)."""

    headers: dict[str, str]
    body: str = ""

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def event(self) -> dict[str, str] | None:
        """The event headers (URL-decoded) of a text/event-plain frame, body under "_body"; else None."""
        if self.content_type != "text/event-plain":
            return None
        head, _, rest = self.body.partition("\n\n")
        event = {}
        for line in head.splitlines():
            name, _, value = line.partition(": ")
            if name:
                event[name] = urllib.parse.unquote(value)
        if "Content-Length" in event:
            event["_body"] = rest[: int(event["Content-Length"])]
        return event


def _read_frame(sock: socket.socket, buffer: bytearray, deadline: float) -> Frame:
    """Read exactly one frame from ``sock`` (bytes already read are in ``buffer``)."""
    while b"\n\n" not in buffer:
        _fill(sock, buffer, deadline)
        if len(buffer) > MAX_FRAME:
            raise EslError("header block larger than 16 MiB")
    head, _, _ = bytes(buffer).partition(b"\n\n")
    del buffer[: len(head) + 2]
    headers = {}
    for line in head.decode("utf-8", "replace").splitlines():
        name, _, value = line.partition(": ")
        headers[name] = value
    length = int(headers.get("Content-Length", "0") or 0)
    if length > MAX_FRAME:
        raise EslError(f"Content-Length {length} larger than 16 MiB")
    while len(buffer) < length:
        _fill(sock, buffer, deadline)
    body = bytes(buffer[:length]).decode("utf-8", "replace")
    del buffer[:length]
    return Frame(headers, body)


def _fill(sock: socket.socket, buffer: bytearray, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise EslTimeout("timed out waiting for data from FreeSWITCH")
    sock.settimeout(remaining)
    try:
        chunk = sock.recv(65536)
    except socket.timeout as exc:
        raise EslTimeout("timed out waiting for data from FreeSWITCH") from exc
    if not chunk:
        raise EslError("FreeSWITCH closed the connection")
    buffer.extend(chunk)


@dataclass
class EslConnection:
    """Common reading logic for inbound and outbound connections: replies in order, events queued."""

    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)
    events: list[dict[str, str]] = field(default_factory=list)
    others: list[Frame] = field(default_factory=list)

    def send(self, text: str) -> None:
        """Write one command (the blank line that ends it is added)."""
        self.sock.sendall(text.rstrip("\n").encode("utf-8") + b"\n\n")

    def read_frame(self, timeout: float = 10.0) -> Frame:
        """The next frame of any kind."""
        return _read_frame(self.sock, self.buffer, time.monotonic() + timeout)

    def _reply(self, content_types: tuple[str, ...], timeout: float) -> Frame:
        deadline = time.monotonic() + timeout
        while True:
            frame = _read_frame(self.sock, self.buffer, deadline)
            if frame.content_type in content_types:
                return frame
            self._keep(frame)

    def _keep(self, frame: Frame) -> None:
        event = frame.event()
        if event is not None:
            self.events.append(event)
        else:
            self.others.append(frame)

    def command(self, text: str, timeout: float = 10.0) -> Frame:
        """Send a command and return its command/reply frame."""
        self.send(text)
        return self._reply(("command/reply",), timeout)

    def wait_event(self, predicate: Callable[[dict[str, str]], bool], timeout: float = 10.0) -> dict[str, str]:
        """The first event (already queued or arriving before the deadline) that matches; it is consumed."""
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self.events):
                if predicate(event):
                    return self.events.pop(index)
            try:
                frame = _read_frame(self.sock, self.buffer, deadline)
            except EslTimeout as exc:
                names = [e.get("Event-Name") for e in self.events][-20:]
                raise EslTimeout(f"no matching event within {timeout} s; last events seen: {names}") from exc
            self._keep(frame)

    def wait_disconnect(self, timeout: float = 10.0) -> Frame:
        """The text/disconnect-notice frame."""
        return self._reply(("text/disconnect-notice",), timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class EslClient(EslConnection):
    """Inbound connection to FreeSWITCH's event socket (what the app's control connection does)."""

    @classmethod
    def connect(cls, host: str, port: int, password: str, timeout: float = 5.0) -> "EslClient":
        """Connect and authenticate; EslError with FreeSWITCH's own reason when refused."""
        sock = socket.create_connection((host, port), timeout=timeout)
        client = cls(sock)
        try:
            greeting = client.read_frame(timeout)
            if greeting.content_type == "text/rude-rejection":
                raise EslError(f"rejected by FreeSWITCH (ACL): {greeting.body.strip()}")
            if greeting.content_type != "auth/request":
                raise EslError(f"unexpected greeting {greeting.content_type!r}")
            reply = client.command(f"auth {password}", timeout)
            if not reply.headers.get("Reply-Text", "").startswith("+OK"):
                raise EslError(f"authentication refused: {reply.headers.get('Reply-Text')}")
        except BaseException:
            client.close()
            raise
        return client

    def api(self, command: str, timeout: float = 10.0) -> str:
        """Run an API command and return its body (errors are bodies starting with -ERR)."""
        self.send(f"api {command}")
        return self._reply(("api/response",), timeout).body

    def bgapi(self, command: str, timeout: float = 10.0) -> str:
        """Start a background job and return its Job-UUID; its BACKGROUND_JOB arrives as an event."""
        job = str(uuidlib.uuid4())
        reply = self.command(f"bgapi {command}\nJob-UUID: {job}", timeout)
        if not reply.headers.get("Reply-Text", "").startswith("+OK"):
            raise EslError(f"bgapi refused: {reply.headers.get('Reply-Text')}")
        return job

    def bgapi_nowait(self, command: str) -> None:
        """Start a background job without waiting for its reply (a loop reading frames itself skips it)."""
        self.send(f"bgapi {command}")

    def subscribe(self, *names: str) -> None:
        """`event plain NAMES...`."""
        reply = self.command("event plain " + " ".join(names))
        if not reply.headers.get("Reply-Text", "").startswith("+OK"):
            raise EslError(f"event subscription refused: {reply.headers.get('Reply-Text')}")

    def job_result(self, job_uuid: str, timeout: float = 30.0) -> str:
        """The body of the BACKGROUND_JOB with this Job-UUID (needs a BACKGROUND_JOB subscription)."""
        event = self.wait_event(lambda e: e.get("Event-Name") == "BACKGROUND_JOB"
                                and e.get("Job-UUID") == job_uuid, timeout)
        return event.get("_body", "")


class OutboundCall(EslConnection):
    """One call FreeSWITCH's `socket` app brought to a test's listener (what the app's outbound server gets)."""

    channel: dict[str, str]

    def connect_call(self, timeout: float = 10.0, myevents: bool = True) -> dict[str, str]:
        """`connect` (and `myevents`, without which no execute completion is seen); the channel data."""
        reply = self.command("connect", timeout)
        self.channel = {k: urllib.parse.unquote(v) for k, v in reply.headers.items()}
        if myevents:
            answer = self.command("myevents", timeout)
            if not answer.headers.get("Reply-Text", "").startswith("+OK"):
                raise EslError(f"myevents refused: {answer.headers.get('Reply-Text')}")
        return self.channel

    @property
    def uuid(self) -> str:
        return self.channel["Unique-ID"]

    def execute(self, app: str, arg: str = "", timeout: float = 10.0) -> str:
        """sendmsg execute with a fresh Event-UUID; returns that id (see wait_complete)."""
        event_uuid = str(uuidlib.uuid4())
        lines = ["sendmsg", "call-command: execute", f"execute-app-name: {app}", f"Event-UUID: {event_uuid}"]
        if arg:
            lines.append(f"execute-app-arg: {arg}")
        reply = self.command("\n".join(lines), timeout)
        if not reply.headers.get("Reply-Text", "").startswith("+OK"):
            raise EslError(f"execute {app} refused: {reply.headers.get('Reply-Text')}")
        return event_uuid

    def wait_complete(self, event_uuid: str, timeout: float = 10.0) -> dict[str, str]:
        """The CHANNEL_EXECUTE_COMPLETE whose Application-UUID is ``event_uuid``."""
        return self.wait_event(lambda e: e.get("Event-Name") == "CHANNEL_EXECUTE_COMPLETE"
                               and e.get("Application-UUID") == event_uuid, timeout)

    def run(self, app: str, arg: str = "", timeout: float = 10.0) -> dict[str, str]:
        """execute and wait for its completion."""
        return self.wait_complete(self.execute(app, arg, timeout), timeout)
