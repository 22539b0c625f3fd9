"""Record a real FreeSWITCH's wire for channel states the other captures do not show (CS_PARK, CS_HIBERNATE,
CS_SOFT_EXECUTE / CS_EXCHANGE_MEDIA of a uuid_bridge, the unbridge by uuid_park) in the transcript format of
tests/transcripts (see its README), for tests/unit/fakeswitch/test_capture_headers.py.

    flock /tmp/live-fs.lock .venv/bin/python -m tests.live.capture_states 127.0.0.1:8021:ClueCon \\
        > tests/transcripts/park_bridge_states.txt

Two loopback calls whose B legs answer and park (inline dialplan `m:^:answer^park`, no dialplan of the
switch's needed), their A legs parked by the originate; then on the first: uuid_broadcast of a tone and of
`sleep` (what an application leaves in current_application_response), uuid_park (CS_PARK), uuid_bridge
with the second (CS_HIBERNATE, then the bridge), uuid_park of the second (the unbridge), and uuid_kill of
both. One inbound connection, subscribed to the channel events by name (not ALL: no heartbeats, no other
client's API events). Every frame is written as read, with its time since the start.
"""
from __future__ import annotations

import re
import socket
import sys
import time
import urllib.parse
import uuid as uuidlib

EVENTS = ("CHANNEL_CREATE CHANNEL_DESTROY CHANNEL_STATE CHANNEL_CALLSTATE CHANNEL_ANSWER CHANNEL_HANGUP "
          "CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_BRIDGE CHANNEL_UNBRIDGE "
          "CHANNEL_PARK CHANNEL_UNPARK CHANNEL_ORIGINATE CHANNEL_OUTGOING CHANNEL_UUID CALL_UPDATE CODEC "
          "BACKGROUND_JOB PLAYBACK_START PLAYBACK_STOP")
# The same inline dialplan twice with another separator, so that the two calls' channels have names of their own.
DIALS = ("loopback/m:^:answer^park/default/inline", "loopback/m:~:answer~park/default/inline")


class Recorder:
    def __init__(self, host: str, port: int, out):
        self.out = out
        self.t0 = time.monotonic()
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buf = b""
        self.events: list[dict[str, str]] = []
        self.note(f"CTL TCP connected to {host}:{port}")

    def _t(self) -> str:
        return f"[{time.monotonic() - self.t0:8.3f}]"

    def note(self, text: str) -> None:
        print(f"{self._t()} {text}", file=self.out)

    def comment(self, text: str) -> None:
        print(f"## {text}", file=self.out)

    def send(self, text: str) -> None:
        data = text.encode("utf-8")
        print(f"{self._t()} CTL C->S {data!r}", file=self.out)
        self.sock.sendall(data)

    def frame(self, deadline: float) -> bytes:
        while True:
            end = self.buf.find(b"\n\n")
            if end >= 0:
                m = re.search(rb"^Content-Length: (\d+)$", self.buf[:end], re.M)
                total = end + 2 + (int(m.group(1)) if m else 0)
                if len(self.buf) >= total:
                    raw, self.buf = self.buf[:total], self.buf[total:]
                    print(f"{self._t()} CTL S->C {raw!r}", file=self.out)
                    self._keep(raw, end)
                    return raw
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("nothing in time")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the switch closed the connection")
            self.buf += data

    def _keep(self, raw: bytes, end: int) -> None:
        if b"Content-Type: text/event-plain" not in raw[:end]:
            return
        inner = raw[end + 2:].partition(b"\n\n")[0].decode("utf-8")
        self.events.append({k: urllib.parse.unquote(v) for k, _, v in
                            (line.partition(": ") for line in inner.split("\n")) if k})

    def command(self, text: str) -> bytes:
        """Send, and read until the reply (events read meanwhile are kept)."""
        self.send(text + "\n\n")
        deadline = time.monotonic() + 30
        while True:
            raw = self.frame(deadline)
            if raw.startswith((b"Content-Type: command/reply", b"Content-Type: api/response")):
                return raw

    def until(self, what: str, pred, timeout: float = 15.0) -> None:
        """Read frames until an event satisfies pred (events already read count)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for e in self.events[seen:]:
                if pred(e):
                    return
            seen = len(self.events)
            try:
                self.frame(deadline)
            except TimeoutError:
                raise TimeoutError(f"waiting for {what}") from None

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.frame(deadline)
        except TimeoutError:
            pass


def _is(name, uuid=None, **headers):
    def pred(e):
        return e.get("Event-Name") == name and (uuid is None or e.get("Unique-ID") == uuid) and \
            all(e.get(k.replace("_", "-")) == v for k, v in headers.items())
    return pred


def main(argv: list[str]) -> int:
    target = argv[1] if len(argv) > 1 else "127.0.0.1:8021:ClueCon"
    host, port, password = target.split(":", 2)
    record(host, int(port), password, sys.stdout)
    return 0


def record(host: str, port: int, password: str, out) -> None:
    """Run the scenario on the switch at host:port, writing the transcript to `out`."""
    u1, u2 = str(uuidlib.uuid4()), str(uuidlib.uuid4())
    print("# ESL wire transcript -- scenario: d. channel states: two parked loopback calls, uuid_broadcast, "
          "uuid_park (CS_PARK), uuid_bridge (CS_HIBERNATE), uuid_park of one bridged leg, uuid_kill", file=out)
    print(f"# Recorded: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} on {host} (event socket "
          f"{host}:{port}) by tests/live/capture_states.py", file=out)
    print(f"#   Calls: `bgapi originate {{origination_uuid=...}}{DIALS[0]} &park` (and {DIALS[1]}): the B leg "
          "runs the inline dialplan answer, park; the A leg parks.", file=out)
    print("#", file=out)
    print("# Line format: [seconds since start] <conn> C->S|S->C <python repr of the exact bytes>", file=out)
    print("# Lines starting with '##' are recorder notes.", file=out)
    r = Recorder(host, int(port), out)
    r.frame(time.monotonic() + 5)
    r.command(f"auth {password}")
    version = r.command("api version")
    r.comment(version.partition(b"\n\n")[2].decode().strip())
    r.command(f"event plain {EVENTS}")
    for u, num, name, dial in ((u1, "5551001", "Caller", DIALS[0]), (u2, "5552002", "Agent", DIALS[1])):
        r.comment(f"Call {name}: A leg {u} parks, its B leg answers and parks.")
        r.command(f"bgapi originate {{origination_uuid={u},origination_caller_id_number={num},"
                  f"origination_caller_id_name={name}}}{dial} &park")
        r.until("the originate's result", _is("BACKGROUND_JOB"))
        r.until("the A leg's park", _is("CHANNEL_PARK", u))
        r.drain(0.3)
        r.events.clear()
    r.comment("A tone on the first A leg (current_application_response FILE PLAYED), then sleep.")
    r.command(f"api uuid_broadcast {u1} tone_stream://%(200,0,440) aleg")
    r.until("the tone's end", _is("CHANNEL_EXECUTE_COMPLETE", u1, Application="playback"))
    r.command(f"api uuid_broadcast {u1} sleep::100 aleg")
    r.until("the sleep's end", _is("CHANNEL_EXECUTE_COMPLETE", u1, Application="sleep"))
    r.drain(0.3)
    r.comment("uuid_park of the first A leg (it leaves the originate's park for CS_PARK).")
    r.command(f"api uuid_park {u1}")
    r.until("CS_PARK", _is("CHANNEL_STATE", u1, Channel_State="CS_PARK"))
    r.drain(0.5)
    r.comment("uuid_bridge of the two A legs.")
    r.command(f"api uuid_bridge {u1} {u2}")
    r.until("the bridge", _is("CHANNEL_BRIDGE"))
    r.drain(0.5)
    r.comment("uuid_park of the second A leg: it leaves the bridge; the first is parked by the switch.")
    r.command(f"api uuid_park {u2}")
    r.until("the unbridge", _is("CHANNEL_UNBRIDGE"))
    r.drain(1.0)
    r.comment("Hang up both calls (the first is gone already: the bridge's end hung it up).")
    for u in (u1, u2):
        if r.command(f"api uuid_kill {u}").endswith(b"+OK\n"):
            r.until("the A leg's destroy", _is("CHANNEL_DESTROY", u))
    r.drain(1.0)
    r.command("exit")
    try:
        while True:
            r.frame(time.monotonic() + 2)
    except (EOFError, TimeoutError):
        pass
    r.note("CTL S->C <TCP FIN: server closed the connection>")
    r.sock.close()
    r.note("CTL C->S <client closes TCP socket>")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
