"""The fake's command reader and frame builders, without sockets in between."""
from __future__ import annotations

import json

import pytest

from tests.fakeswitch import wire


class _Chunks:
    """A socket stand-in that returns the given chunks one recv at a time, then EOF."""

    def __init__(self, *chunks):
        self.chunks = list(chunks)

    def recv(self, n):
        return self.chunks.pop(0) if self.chunks else b""


def test_reader_handles_split_packets_bodies_and_crlf():
    """Should assemble commands split across reads, read a body by content-length, and accept CRLF."""
    r = wire.CommandReader(_Chunks(b"sendmsg\ncall-command: exe", b"cute\nexecute-app-name: playback\n",
                                   b"content-type: text/plain\ncontent-length: 6\n\n/a.w", b"avapi status\r\n\r\n"))
    cmd = r.read()
    assert cmd.line == "sendmsg"
    assert cmd.header("Call-Command") == "execute" and cmd.header("EXECUTE-APP-NAME") == "playback"
    assert cmd.body == "/a.wav"
    nxt = r.read()
    assert nxt.line == "api status" and nxt.headers == []
    assert r.read() is None


def test_reader_survives_bad_utf8_and_refuses_oversized():
    """Should replace undecodable bytes instead of crashing, and refuse a command with no end in sight."""
    r = wire.CommandReader(_Chunks(b"api uuid_getvar \xff\xfe x\n\n"))
    assert r.read().line == "api uuid_getvar \ufffd\ufffd x"
    big = wire.CommandReader(_Chunks(b"x" * (wire.MAX_COMMAND_BYTES + 1)))
    with pytest.raises(wire.CommandTooLarge):
        big.read()
    huge_body = wire.CommandReader(_Chunks(b"sendmsg\ncontent-length: 999999999\n\n"))
    with pytest.raises(wire.CommandTooLarge):
        huge_body.read()


def test_event_builders_plain_and_json():
    """Should build plain events with encoded values and an inner body, and JSON events with _body."""
    plain = wire.event_plain([("Event-Name", "BACKGROUND_JOB"), ("Job-Command-Arg", "a b&c")], body="+OK x\n")
    head, _, inner = plain.partition(b"\n\n")
    assert head == f"Content-Length: {len(inner)}\nContent-Type: text/event-plain".encode()
    assert inner == b"Event-Name: BACKGROUND_JOB\nJob-Command-Arg: a%20b%26c\nContent-Length: 6\n\n+OK x\n"
    js = wire.event_json([("Event-Name", "BACKGROUND_JOB"), ("Job-Command-Arg", "a b&c")], body="+OK x\n")
    head, _, body = js.partition(b"\n\n")
    obj = json.loads(body)
    assert obj == {"Event-Name": "BACKGROUND_JOB", "Job-Command-Arg": "a b&c", "Content-Length": "6",
                   "_body": "+OK x\n"}
    assert head == f"Content-Length: {len(body)}\nContent-Type: text/event-json".encode()
    no_body = wire.event_plain([("Event-Name", "HEARTBEAT")])
    assert no_body.endswith(b"\n\nEvent-Name: HEARTBEAT\n\n")
