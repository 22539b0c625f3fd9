"""In-process stand-ins for CallSession and the inbound connections, for driving the ACD's logic fast.

They model what the ACD relies on: a caller session whose `playback` of music blocks until `uuid_break`,
whose `bridge` rings scripted phones (answer after a delay, never answer, refuse, unregistered) and emits
the channel events the inbound connection would deliver, and a connection answering `sofia status` and
`show channels as json` from the same state. The end-to-end tests over the wire use tests/fakeswitch.
"""
from __future__ import annotations

import collections
import json
import re
import uuid as uuidlib
from dataclasses import dataclass, field

import gevent
import gevent.event

from switch import events as sw
from switch.errors import CallHangup
from switch.inbound import Channel


@dataclass
class Phone:
    """A scripted agent phone: answer after `answer_delay` (None = never), talk for `talk` seconds."""

    extension: str
    registered: bool = True
    answer_delay: float | None = 0.01
    talk: float = 0.05
    reject: bool = False
    offers: int = 0


@dataclass
class Result:
    app: str
    response: str
    variables: dict = field(default_factory=dict)


class World:
    """The switch state shared by the connection and the sessions."""

    def __init__(self, server: str = "fs1:8021", time_scale: float = 0.01):
        self.server = server
        self.phones: dict[str, Phone] = {}
        self.channels: set[str] = set()
        self.sessions: dict[str, "Session"] = {}
        self.commands: list[str] = []
        self.listeners = []
        self.time_scale = time_scale  # ring timeouts are scaled by this (20 s -> 0.2 s)
        self.talking: dict[str, str] = {}  # agent leg -> caller uuid

    def add_phone(self, extension: str, **kw) -> Phone:
        phone = Phone(extension, **kw)
        self.phones[extension] = phone
        return phone

    def emit(self, event) -> None:
        for listener in list(self.listeners):
            listener(event)

    def kill(self, uuid: str, cause: str = "NORMAL_CLEARING") -> None:
        if uuid in self.sessions:
            self.sessions[uuid].hangup_now(cause)
        elif uuid in self.channels:
            self.channels.discard(uuid)
            self.emit(sw.ChannelHangup(server=self.server, uuid=uuid, cause=cause))


class Conn:
    """The inbound connection double: api/bgapi/subscribe/on_connected."""

    def __init__(self, world: World):
        self.world = world
        self.name = world.server
        self.connected = True
        self.reconnect_callbacks = []

    def subscribe(self, callback) -> None:
        self.world.listeners.append(callback)

    def on_connected(self, callback) -> None:
        self.reconnect_callbacks.append(callback)

    def api(self, command: str, timeout=None) -> str:
        self.world.commands.append(command)
        if command.startswith("sofia status profile"):
            lines = ["Registrations:", "=" * 40]
            for phone in self.world.phones.values():
                if phone.registered:
                    lines += [f"Call-ID:    \tx{phone.extension}", f"User:       \t{phone.extension}@127.0.0.1",
                              f"Contact:    \t\"{phone.extension}\" <sip:{phone.extension}@127.0.0.1:5070>",
                              "Status:     \tRegistered(UDP)", ""]
            lines.append(f"Total items returned: {sum(p.registered for p in self.world.phones.values())}")
            return "\n".join(lines) + "\n"
        if command == "show channels as json":
            rows = [{"uuid": u} for u in sorted(self.world.channels)]
            return json.dumps({"row_count": len(rows), "rows": rows})
        if command.startswith("uuid_break "):
            uuid = command.split()[1]
            session = self.world.sessions.get(uuid)
            if session is None:
                return "-ERR No such channel!\n"
            session.break_playback()
            return "+OK\n"
        if command.startswith("uuid_kill "):
            uuid = command.split()[1]
            if uuid not in self.world.channels:
                return "-ERR No such channel!\n"
            self.world.kill(uuid)
            return "+OK\n"
        if command.startswith(("uuid_hold", "uuid_transfer", "uuid_setvar", "uuid_broadcast")):
            uuid = command.split()[-1] if command.startswith("uuid_hold") else command.split()[1]
            if uuid not in self.world.channels:
                return "-ERR No such channel!\n"
            return "+OK\n"
        return "+OK\n"

    def channel(self, uuid: str, timeout=None) -> Channel:
        return Channel(self, uuid, 10.0 if timeout is None else timeout)

    def bgapi(self, command: str, timeout=None):
        self.world.commands.append(command)
        return Result("bgapi", "+OK", {"ok": True})


class Pool:
    def __init__(self, *conns):
        self.conns = {c.name: c for c in conns}

    def all(self):
        return list(self.conns.values())

    def get(self, name):
        return self.conns[name]


class Session:
    """A caller's CallSession double."""

    def __init__(self, world: World, caller: str = "13800138000"):
        self.world = world
        self.uuid = str(uuidlib.uuid4())
        self.caller = caller
        self.destination = "12345"
        self.server = world.server
        self.channel_data = {}
        self.hung_up = False
        self.dtmf = collections.deque()
        self.executed: list[tuple[str, str]] = []
        self.variables: dict[str, str] = {}
        self._callbacks = []
        self._break = gevent.event.Event()
        self._gone = gevent.event.Event()
        world.sessions[self.uuid] = self
        world.channels.add(self.uuid)

    def on_event(self, callback) -> None:
        self._callbacks.append(callback)

    def _check(self):
        if self.hung_up:
            raise CallHangup(uuid=self.uuid)

    def set(self, name, value):
        self._check()
        self.executed.append(("set", f"{name}={value}"))
        self.variables[name] = value

    def api(self, command, timeout=10.0):
        return Conn(self.world).api(command)

    def break_playback(self):
        self._break.set()

    def press(self, digit: str) -> None:
        self.dtmf.append(digit)
        for cb in list(self._callbacks):
            cb(sw.DtmfReceived(server=self.server, uuid=self.uuid, digit=digit))
        if digit in self.variables.get("playback_terminators", ""):
            self.dtmf.pop()
            self._terminator = digit
            self._break.set()

    def hangup_now(self, cause="NORMAL_CLEARING"):
        if self.hung_up:
            return
        self.hung_up = True
        self.world.channels.discard(self.uuid)
        self._gone.set()
        self._break.set()
        event = sw.ChannelHangup(server=self.server, uuid=self.uuid, cause=cause)
        for cb in list(self._callbacks):
            cb(event)
        self.world.emit(event)

    def wait_hangup(self, timeout):
        return self._gone.wait(timeout)

    def execute(self, app, arg="", timeout=60.0):
        self._check()
        self.executed.append((app, arg))
        if app == "playback" and arg.startswith("local_stream://"):
            self._break.clear()
            self._terminator = ""
            self._break.wait(timeout)
            self._check()
            return Result(app, "FILE PLAYED", {"playback_terminator_used": self._terminator})
        return Result(app, "+OK", {})

    def playback(self, path, timeout=120.0):
        return self.execute("playback", path, timeout)

    def hangup(self, cause="NORMAL_CLEARING"):
        self.hangup_now(cause)

    def bridge(self, target, timeout=120.0):
        self._check()
        self.executed.append(("bridge", target))
        legs = []
        for m in re.finditer(r"\[([^\]]*)\]user/(\w+)", target):
            params = dict(p.split("=", 1) for p in m.group(1).split(","))
            legs.append((params["origination_uuid"], m.group(2), float(params.get("leg_timeout", 20)),
                         float(params.get("leg_delay_start", 0))))
        winner = gevent.event.AsyncResult()
        greenlets = [gevent.spawn(self._ring, leg, ext, ring, delay, winner) for leg, ext, ring, delay in legs]
        done = gevent.spawn(lambda: gevent.joinall(greenlets))
        gevent.wait([winner, done, self._gone], count=1, timeout=timeout)
        if self.hung_up:
            for g in greenlets:
                g.kill()
            for leg, *_ in legs:
                if leg in self.world.channels:
                    self.world.kill(leg, "ORIGINATOR_CANCEL")
            raise CallHangup(uuid=self.uuid)
        if not winner.ready():
            causes = [g.value for g in greenlets if g.value]
            return Result("bridge", "NO_ANSWER", {"originate_disposition": causes[0] if causes else "NO_ANSWER"})
        leg = winner.get()
        for g, (other, *_r) in zip(greenlets, legs):
            if other != leg:
                g.kill()
                if other in self.world.channels:
                    self.world.kill(other, "LOSE_RACE")
        phone = self.world.phones[[ext for l, ext, *_ in legs if l == leg][0]]
        self.world.talking[leg] = self.uuid
        self._gone.wait(phone.talk)
        if leg in self.world.channels:
            self.world.kill(leg, "NORMAL_CLEARING")
        self.world.talking.pop(leg, None)
        return Result("bridge", "+OK", {"originate_disposition": "SUCCESS", "last_bridge_to": leg})

    def _ring(self, leg, ext, ring_timeout, delay, winner):
        gevent.sleep(delay * self.world.time_scale)
        phone = self.world.phones.get(ext)
        if phone is None or not phone.registered:
            return "USER_NOT_REGISTERED"
        phone.offers += 1
        self.world.channels.add(leg)
        self.world.emit(sw.ChannelCreated(server=self.server, uuid=leg, caller=self.caller, destination=ext))
        if phone.reject:
            self.world.kill(leg, "CALL_REJECTED")
            return "CALL_REJECTED"
        ring = ring_timeout * self.world.time_scale
        if phone.answer_delay is None or phone.answer_delay >= ring:
            gevent.sleep(ring)
            if leg in self.world.channels:
                self.world.kill(leg, "NO_ANSWER")
            return "NO_ANSWER"
        gevent.sleep(phone.answer_delay)
        if leg not in self.world.channels or winner.ready():
            return "LOSE_RACE"
        self.world.emit(sw.ChannelAnswered(server=self.server, uuid=leg))
        winner.set(leg)
        return None


def missed_of(call_uuid: str):
    """The missed-call list's record of one call (recorder.missed), or None; .missed is its entry."""
    from recorder.models import MissedCallOccurrence

    return MissedCallOccurrence.get_or_none(MissedCallOccurrence.call_uuid == call_uuid)
