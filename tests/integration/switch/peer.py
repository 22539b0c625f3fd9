"""A scripted raw-socket FreeSWITCH peer that answers with frames copied from the real transcripts.

Deliberately naive and independent of switch.codec: commands are split on the blank line with plain
bytes operations, and what is sent back is the recorded bytes (with the recorded Event-UUID swapped for
the one the app sent; both are 36 characters, so every Content-Length stays exact).
"""
from __future__ import annotations

import re

import gevent
import gevent.event
import gevent.queue
from gevent import socket
from gevent.server import StreamServer

from switch.transcript import load_transcript
from tests.fakeswitch.transcript import ESL_DIR

TRANSCRIPT_DIR = ESL_DIR


def transcript(name: str):
    """The wire lines of one transcript, or skip the test when the captures are not present."""
    import pytest

    path = TRANSCRIPT_DIR / name
    if not path.exists():
        pytest.skip(f"transcript {path} not present")
    return load_transcript(path)


class Command:
    """One command as the app wrote it."""

    def __init__(self, raw: bytes):
        self.raw = raw
        head, _, self.body = raw.partition(b"\n\n")
        lines = head.decode("utf-8").split("\n")
        self.line = lines[0]
        self.headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(": ")
            self.headers[key] = value

    @property
    def app(self) -> str:
        return self.headers.get("execute-app-name", "")

    def __repr__(self) -> str:
        return f"<Command {self.line!r} {self.app}>"


def swap(frame: bytes, swaps) -> bytes:
    """Replace bytes inside a recorded frame's body and fix its outer Content-Length."""
    head, sep, body = frame.partition(b"\n\n")
    new_body = body
    for old, new in swaps:
        new_body = new_body.replace(old, new)
    if new_body == body:
        return frame
    head = re.sub(rb"(?m)^Content-Length: \d+$", b"Content-Length: %d" % len(new_body), head)
    return head + sep + new_body


class ScriptedPeer:
    """FreeSWITCH's side of one event-socket connection, driven step by step by a test."""

    def __init__(self, sock):
        self.sock = sock
        self._buf = b""
        self.commands: list[Command] = []

    @classmethod
    def dial(cls, address) -> "ScriptedPeer":
        """Connect to the app's outbound server, as FreeSWITCH's socket application does."""
        return cls(socket.create_connection(address, timeout=5))

    def read_command(self, timeout: float = 5.0) -> Command | None:
        """The next command the app wrote (None when it closed the socket)."""
        with gevent.Timeout(timeout, AssertionError(f"no command from the app within {timeout}s")):
            while b"\n\n" not in self._buf:
                data = self.sock.recv(65536)
                if not data:
                    return None
                self._buf += data
            head, _, rest = self._buf.partition(b"\n\n")
            match = re.search(rb"(?im)^content-length: *(\d+)$", head)
            need = int(match.group(1)) if match else 0
            while len(rest) < need:
                data = self.sock.recv(65536)
                if not data:
                    return None
                rest += data
            self._buf = rest[need:]
            command = Command(head + b"\n\n" + rest[:need])
            self.commands.append(command)
            return command

    def expect(self, prefix: str, timeout: float = 5.0) -> Command:
        """Read the next command and check that it starts with `prefix`."""
        command = self.read_command(timeout)
        assert command is not None, f"app closed the socket; expected {prefix!r}"
        assert command.line.startswith(prefix), f"expected {prefix!r}, got {command.line!r}"
        return command

    def send(self, *frames: bytes) -> None:
        """Write raw bytes (frames or deliberately broken input)."""
        for frame in frames:
            self.sock.sendall(frame)

    def reply(self, text: str = "+OK") -> None:
        """Send a command/reply."""
        self.send(f"Content-Type: command/reply\nReply-Text: {text}\n\n".encode())

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """True once the app closed its end (remaining commands are collected)."""
        with gevent.Timeout(timeout, AssertionError("app did not close the socket")):
            while True:
                if self.read_command(timeout) is None:
                    return True

    def close(self) -> None:
        self.sock.close()


class TranscriptBlocks:
    """The recorded outbound conversation cut into (command, frames that followed it) blocks."""

    def __init__(self, lines, conn: str = "OUT"):
        self.blocks: list[tuple[Command, list[bytes]]] = []
        for line in lines:
            if line.conn != conn:
                continue
            if line.direction == "C->S":
                self.blocks.append((Command(line.data), []))
            elif self.blocks:
                self.blocks[-1][1].append(line.data)
        self._used: set[int] = set()

    def frames_for(self, command: Command) -> list[bytes]:
        """The recorded answer to a command like this one, with its Event-UUID swapped for the app's."""
        candidates = [i for i, (c, _) in enumerate(self.blocks) if self._same_kind(c, command)]
        assert candidates, f"no recorded block answers {command!r}"
        fresh = [i for i in candidates if i not in self._used]
        index = fresh[0] if fresh else candidates[-1]
        self._used.add(index)
        recorded, frames = self.blocks[index]
        swaps = []
        old, new = recorded.headers.get("Event-UUID"), command.headers.get("Event-UUID")
        if old and new:
            swaps.append((old.encode(), new.encode()))
        if command.app == "play_and_get_digits":          # the app names its own digits variable
            old_var = recorded.headers["execute-app-arg"].split()[7]
            new_var = command.headers["execute-app-arg"].split()[7]
            swaps.append((f"variable_{old_var}: ".encode(), f"variable_{new_var}: ".encode()))
        return [swap(f, swaps) for f in frames]

    @staticmethod
    def _same_kind(recorded: Command, command: Command) -> bool:
        if command.line == "sendmsg":
            return recorded.line == "sendmsg" and recorded.app == command.app and \
                recorded.headers.get("call-command") == command.headers.get("call-command")
        first = command.line.split(" ", 1)[0]
        if first in ("api", "bgapi"):
            return recorded.line.split(" ", 2)[:2] == command.line.split(" ", 2)[:2]
        return recorded.line.split(" ", 1)[0] == first

    def block(self, predicate) -> list[bytes]:
        """Frames of the first recorded block whose command satisfies predicate."""
        for command, frames in self.blocks:
            if predicate(command):
                return frames
        raise AssertionError("no such block")


def replay(peer: ScriptedPeer, blocks: TranscriptBlocks, until_closed: bool = True) -> list[Command]:
    """Answer every command of the app from the transcript until the app closes the socket."""
    while True:
        command = peer.read_command(timeout=10)
        if command is None:
            return peer.commands
        peer.send(*blocks.frames_for(command))


class PeerListener:
    """A listening socket standing in for FreeSWITCH's event socket (inbound mode); one ScriptedPeer per accept."""

    def __init__(self):
        self.accepted = gevent.queue.Queue()
        self._server = StreamServer(("127.0.0.1", 0), self._on_accept)
        self._server.start()
        self.host, self.port = self._server.server_host, self._server.server_port
        self._stops: list = []

    def _on_accept(self, sock, address):
        done = gevent.event.Event()
        self._stops.append(done)
        self.accepted.put(ScriptedPeer(sock))
        done.wait(60)                         # keep the socket open until the test is done with it

    def next_peer(self, timeout: float = 5.0) -> ScriptedPeer:
        """The next connection the app opened."""
        try:
            return self.accepted.get(timeout=timeout)
        except gevent.queue.Empty:
            raise AssertionError(f"the app did not connect within {timeout}s") from None

    def stop(self):
        for done in self._stops:
            done.set()
        self._server.stop(timeout=1)


AUTH_REQUEST = b"Content-Type: auth/request\n\n"
ACCEPTED = b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"
INVALID = b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n"
GOODBYE = (b"Content-Type: text/disconnect-notice\nContent-Length: 67\n\n"
           b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n")


CORE_UUID = "aa027f47-20f5-4b2e-998e-f4c88a105150"      # the recorded FreeSWITCH's


def handshake(peer: ScriptedPeer, password: str = "ClueCon", core_uuid: str = CORE_UUID) -> Command:
    """Greet, check the password, accept the subscription; returns the `event ...` command."""
    peer.send(AUTH_REQUEST)
    auth = peer.expect("auth ")
    assert auth.line == f"auth {password}"
    peer.send(ACCEPTED)
    subscribe = peer.expect("event ")
    fmt = subscribe.line.split()[1]
    peer.reply(f"+OK event listener enabled {fmt}")
    peer.expect("api global_getvar core_uuid")
    peer.send(b"Content-Type: api/response\nContent-Length: %d\n\n%s" % (len(core_uuid), core_uuid.encode()))
    return subscribe
