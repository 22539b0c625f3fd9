"""Read the real ESL captures (tests/transcripts/*.txt, from ../shared/esl) and replay one connection's switch-side bytes.

Transcript line format: `[seconds] <conn> C->S|S->C <python bytes literal>`; `^` and `##` lines are notes.
"""
from __future__ import annotations

import ast
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import gevent
import gevent.event
from gevent import socket as gsocket
from gevent.server import StreamServer

from . import wire

log = logging.getLogger(__name__)

# The captures of ../shared/esl, kept in the repository (tests/transcripts) so a clean clone has them.
ESL_DIR = Path(os.environ.get("HOTLINE_ESL_TRANSCRIPTS") or Path(__file__).resolve().parents[1] / "transcripts")

_LINE = re.compile(r"^\[\s*([\d.]+)\]\s+(\S+)\s+(C->S|S->C)\s+(.*)$")


@dataclass
class Step:
    """One wire event: time, connection name, direction, bytes (None for a close note)."""
    t: float
    conn: str
    direction: str
    data: bytes | None
    note: str = ""


class Transcript:
    """All wire events of one capture file, in order."""

    def __init__(self, path: Path, steps: list[Step], header: str):
        self.path = path
        self.steps = steps
        self.header = header

    @property
    def connections(self) -> list[str]:
        seen: list[str] = []
        for s in self.steps:
            if s.conn not in seen:
                seen.append(s.conn)
        return seen

    def frames(self, conn: str | None = None) -> list[bytes]:
        """S->C frames (complete, as read) of one connection (or all)."""
        return [s.data for s in self.steps if s.direction == "S->C" and s.data is not None
                and (conn is None or s.conn == conn)]

    def commands(self, conn: str | None = None) -> list[bytes]:
        """C->S writes of one connection (or all)."""
        return [s.data for s in self.steps if s.direction == "C->S" and s.data is not None
                and (conn is None or s.conn == conn)]

    def of(self, conn: str) -> list[Step]:
        return [s for s in self.steps if s.conn == conn]


def load(path: str | os.PathLike) -> Transcript:
    """Parse a transcript file; raises ValueError on a malformed wire line."""
    path = Path(path)
    steps: list[Step] = []
    header = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("#") and not steps:
            header.append(line)
        m = _LINE.match(line)
        if not m:
            continue
        t, conn, direction, rest = m.groups()
        rest = rest.strip()
        if rest.startswith("<"):
            steps.append(Step(float(t), conn, direction, None, rest))
            continue
        try:
            data = ast.literal_eval(rest)
        except (ValueError, SyntaxError) as exc:
            raise ValueError(f"{path.name}:{n}: not a bytes literal: {exc}") from exc
        if not isinstance(data, bytes):
            raise ValueError(f"{path.name}:{n}: not bytes")
        steps.append(Step(float(t), conn, direction, data))
    return Transcript(path, steps, "\n".join(header))


def available() -> list[Path]:
    """The transcript files present (empty when the directory is not there)."""
    if not ESL_DIR.is_dir():
        return []
    return sorted(ESL_DIR.glob("*.txt"))


def replay_on(sock, transcript: Transcript, conn: str, received: list | None = None,
              step_timeout: float = 10.0) -> None:
    """Play one connection's switch side on a connected socket: send each S->C frame in order; before
    going past a C->S step, read one command from the client (its bytes need not match)."""
    reader = wire.CommandReader(sock)
    for step in transcript.of(conn):
        if step.direction == "S->C":
            if step.data is None:
                if "FIN" in step.note:
                    break
                continue
            sock.sendall(step.data)
        else:
            if step.data is None:
                # The client closed: wait for EOF (bounded).
                with gevent.Timeout(step_timeout, False):
                    while reader.read() is not None:
                        pass
                break
            with gevent.Timeout(step_timeout, TimeoutError(f"client did not send {step.data[:40]!r}")):
                cmd = reader.read()
            if cmd is None:
                return
            if received is not None:
                received.append(cmd)


class ReplayServer:
    """A server that replays the switch side of `conn` (an inbound connection) to whoever connects."""

    def __init__(self, transcript: Transcript, conn: str):
        self.transcript = transcript
        self.conn = conn
        self.received: list[wire.Command] = []
        self.errors: list[Exception] = []
        self.finished = gevent.event.Event()
        self._server = StreamServer(("127.0.0.1", 0), self._handle)

    def _handle(self, sock, address):
        try:
            replay_on(sock, self.transcript, self.conn, self.received)
        except (OSError, TimeoutError) as exc:
            self.errors.append(exc)
        finally:
            try:
                sock.close()
            finally:
                self.finished.set()

    def start(self) -> "ReplayServer":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(timeout=1)

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self._server.address[1])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def replay_outbound(transcript: Transcript, conn: str, app_address, received: list | None = None) -> None:
    """Connect to the app's outbound socket server and replay `conn`'s switch side (blocks until done)."""
    sock = gsocket.create_connection(tuple(app_address), timeout=5)
    sock.settimeout(None)
    try:
        replay_on(sock, transcript, conn, received)
    finally:
        sock.close()

