"""FakeSwitch: a protocol-level fake FreeSWITCH for tests (inbound event socket + outbound calls).

One process, gevent greenlets, no global monkey-patching: the server and client sockets are gevent's.

This module is the switch itself: its settings, listening and stopping (crash, go_silent, HEARTBEAT), the
connections that receive events (routed by channel), waiting, firing events (the common header block of
every capture in tests/transcripts) and the table of live channels. What it plays comes from one part each,
composed into FakeSwitch below:

| module | simulates |
|---|---|
| api.py | the api / bgapi entry point; status, version, show ... |
| callcontrol.py | one leg: answer, hang-up, uuid_kill, uuid_hold, uuid_getvar / setvar, DTMF ... |
| dialplan.py | a caller reaching the socket app (place_call), extensions, uuid_transfer / transfer |
| originate.py | ringing dial strings: agents, gateways, loopback pairs; api originate |
| peers.py | calls between two fake switches (the hotline's server pair) |
| bridge.py | the bridge app, uuid_bridge, unbridging, uuid_park, att_xfer |
| eavesdrop.py | a supervisor listening, whispering, barging |
| conference.py | the conference app, api conference, conference::maintenance events |
| media.py | prompt lengths, uuid_broadcast, uuid_record, rxfax / txfax |
| sofia.py | SIP phones (Agent), registrations, sofia status / sofia_contact |

The applications a channel runs are apps.py's (ChannelRunner), the socket calls outbound.py's, the inbound
connection esl.py's, a channel's events lifecycle.py's, dial strings dialstring.py's.
"""
from __future__ import annotations

import itertools
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import gevent
from gevent.server import StreamServer

from . import lifecycle
from .api import ApiMixin
from .apps import ChannelRunner, Pulse
from .bridge import BridgeMixin
from .callcontrol import CallControlMixin
from .channel import FakeChannel, new_uuid, now_us
from .conference import Conference, ConferenceMixin
from .dialplan import DialplanMixin
from .eavesdrop import Eavesdrop, EavesdropMixin
from .esl import InboundSession
from .media import MediaMixin
from .originate import OriginateMixin
from .outbound import FakeCall
from .peers import PEER_PASSWORD, PeersMixin
from .sofia import Agent, SofiaMixin

log = logging.getLogger(__name__)


# Event-Calling-File / -Function / -Line-Number as the captures show them.
ORIGINS = {
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", "2949"),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", "2972"),
    "CHANNEL_ANSWER": ("switch_channel.c", "switch_channel_perform_mark_answered", "3848"),
    "CHANNEL_PROGRESS": ("switch_channel.c", "switch_channel_perform_mark_ring_ready_value", "3395"),
    "CHANNEL_PROGRESS_MEDIA": ("switch_channel.c", "switch_channel_perform_mark_pre_answered", "3562"),
    "CHANNEL_HANGUP": ("switch_channel.c", "switch_channel_perform_hangup", "3447"),
    "CHANNEL_HANGUP_COMPLETE": ("switch_core_state_machine.c", "switch_core_session_reporting_state", "943"),
    "CHANNEL_STATE": ("switch_channel.c", "switch_channel_perform_set_running_state", "2409"),
    "CHANNEL_CREATE": ("switch_core_state_machine.c", "switch_core_session_run", "626"),
    "CHANNEL_PARK": ("switch_ivr.c", "switch_ivr_park", "1002"),
    "CHANNEL_UNPARK": ("switch_ivr.c", "switch_ivr_park", "1213"),
    "CHANNEL_BRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1689"),
    "CHANNEL_UNBRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1879"),
    "CHANNEL_HOLD": ("switch_channel.c", "switch_channel_perform_mark_hold", "1237"),
    "CHANNEL_UNHOLD": ("switch_channel.c", "switch_channel_perform_mark_hold", "1245"),
    "DTMF": ("switch_channel.c", "switch_channel_dequeue_dtmf", "678"),
    "PLAYBACK_START": ("switch_ivr_play_say.c", "switch_ivr_play_file", "1649"),
    "PLAYBACK_STOP": ("switch_ivr_play_say.c", "switch_ivr_play_file", "2023"),
    "RECORD_START": ("switch_ivr_play_say.c", "switch_ivr_record_file_event", "770"),
    "RECORD_STOP": ("switch_ivr_play_say.c", "switch_ivr_record_file_event", "1033"),
    "BACKGROUND_JOB": ("mod_event_socket.c", "api_exec", "1580"),
    "CHANNEL_DATA": ("mod_event_socket.c", "parse_command", "2029"),
}


# Each fake's internal profile gets its own SIP address (peers.py).
_sip_ports = itertools.count(15060)


class FakeSwitch(ApiMixin, CallControlMixin, DialplanMixin, OriginateMixin, PeersMixin, BridgeMixin, EavesdropMixin,
                 ConferenceMixin, MediaMixin, SofiaMixin):
    """A fake FreeSWITCH: inbound ESL server, channels, scripted callers and agents, conferences."""

    def __init__(self, password: str = "ClueCon", record_dir=None, time_scale: float = 0.01,
                 host: str = "127.0.0.1", hostname: str = "vm", default_prompt_seconds: float = 1.0,
                 max_record_seconds: int = 300, strict_files: bool = True, keep_frames: bool = True,
                 heartbeat_seconds: float | None = None):
        self.password = password
        self.record_dir = Path(record_dir) if record_dir else None
        self.time_scale = time_scale
        self.host = host
        self.hostname = hostname
        self.default_prompt_seconds = default_prompt_seconds
        self.max_record_seconds = max_record_seconds
        self.strict_files = strict_files
        self.core_uuid = new_uuid()
        self.started_at = time.time()
        self._t0 = time.monotonic()
        self.changed = Pulse()
        self.channels: dict[str, FakeChannel] = {}
        self.gone: dict[str, FakeChannel] = {}
        self.listeners: list = []          # every connection (inbound sessions and outbound sockets)
        self._unscoped: list = []          # connections that see every channel
        self._scoped: dict[str, list] = {} # myevents connections by the channel they follow
        self.keep_frames = keep_frames
        self.inbound_sessions: list[InboundSession] = []
        self.calls: list[FakeCall] = []
        self.agents: dict[str, Agent] = {}
        self.conferences: dict[str, Conference] = {}
        self.eavesdrops: list[Eavesdrop] = []
        self.session_recordings: list[tuple[str, str, float]] = []
        self.socket_routes: dict[str, tuple[str, int]] = {}   # extension -> the app's outbound socket server
        self.api_log: list[str] = []
        # Real seconds an outbound socket takes to answer each command: a saturated switch (overload tests).
        self.reply_delay = 0.0
        # The pair dialplan's wait before trying both apps again (vars.xml hotline_failover_wait), in wall
        # seconds: it is measured against real processes' takeover (place_call(standby=...)).
        self.failover_wait = 5.0
        # The internal profile's address as other switches dial it (nothing listens: see reach()).
        self.sip_address = f"{host}:{next(_sip_ports)}"
        self.global_vars: dict[str, str] = {
            "hostname": hostname, "domain": "127.0.0.1", "peer_password": PEER_PASSWORD,
            "hotline_peer_uri": f"sofia/internal/{{extension}}@{self.sip_address}",
            "hotline_fax_detect": "true"}  # vars.xml's default
        self.peers: dict[str, "FakeSwitch"] = {}  # SIP address -> a switch this one's calls reach
        self._seq = 1000
        self.heartbeat_seconds = heartbeat_seconds   # simulated; None: no HEARTBEAT events
        self._heartbeat = None
        self.silent = False                          # go_silent(): hung, sockets open but nothing written
        self._server: StreamServer | None = None
        self._port = 0

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> "FakeSwitch":
        """Listen on host:0 (or the port used before, after stop_inbound)."""
        self._server = StreamServer((self.host, self._port), self._accept)
        self._server.init_socket()
        self._server.start()
        self._port = self._server.address[1]
        log.info("fake switch listening on %s:%s", self.host, self._port)
        if self.heartbeat_seconds and self._heartbeat is None:
            self._heartbeat = gevent.spawn(self._beat)
        return self

    def _beat(self) -> None:
        # HEARTBEAT as the real switch fires it every 20 s by default (here every heartbeat_seconds, simulated).
        while True:
            gevent.sleep(self.heartbeat_seconds * self.time_scale)
            up = int(time.time() - self.started_at)
            self.emit("HEARTBEAT", [
                ("Event-Info", "System Ready"), ("Up-Time", f"0 years, 0 days, 0 hours, {up // 60} minutes, "
                                                           f"{up % 60} seconds, 0 milliseconds, 0 microseconds"),
                ("FreeSWITCH-Version", "1.10.12-release~64bit"), ("Uptime-msec", str(up * 1000)),
                ("Session-Count", str(len(self.channels))), ("Max-Sessions", "1000"),
                ("Session-Per-Sec", "30"), ("Session-Per-Sec-Last", "0"), ("Session-Per-Sec-Max", "0"),
                ("Session-Since-Startup", str(len(self.channels) + len(self.gone))),
                ("Idle-CPU", "99.000000"), ("Heartbeat-Interval", str(int(self.heartbeat_seconds)))],
                origin=("switch_core.c", "send_heartbeat", "90"))

    def stop(self) -> None:
        """Stop listening, hang up every channel, close every connection."""
        if self._server is not None:
            self._server.stop(timeout=1)
            self._server = None
        if self._heartbeat is not None:
            self._heartbeat.kill(block=False)
            self._heartbeat = None
        for ch in list(self.channels.values()):
            self.hangup(ch, "SYSTEM_SHUTDOWN", by="switch")
        deadline = time.monotonic() + 2
        while self.channels and time.monotonic() < deadline:
            gevent.sleep(0.01)
        for lst in list(self.listeners):
            lst.close()
        self.listeners.clear()
        self._unscoped.clear()
        self._scoped.clear()

    def stop_inbound(self, drop: bool = True) -> None:
        """Stop accepting inbound connections (and drop the current ones) to test reconnects."""
        if self._server is not None:
            self._server.stop(timeout=1)
            self._server = None
        if drop:
            self.drop_inbound()

    def start_inbound(self) -> None:
        """Listen again on the same port."""
        if self._server is None:
            self.start()

    def drop_inbound(self) -> None:
        """Close every inbound connection abruptly (no notice)."""
        for s in list(self.inbound_sessions):
            s.drop()

    def crash(self) -> None:
        """Die like ``kill -9``: the event-socket connections drop first, so the app hears of no hang-up;
        every channel is gone (its socket to the app closes, a record app keeps what it wrote) and nothing
        listens until start_inbound() (the switch started again, with no channels)."""
        self.stop_inbound(drop=True)
        for ch in list(self.channels.values()):
            self.hangup(ch, "CRASH", by="switch")
        deadline = time.monotonic() + 5
        while self.channels and time.monotonic() < deadline:
            gevent.sleep(0.01)

    @property
    def esl_port(self) -> int:
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self._port)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def go_silent(self, silent: bool = True) -> None:
        """Hang like a frozen FreeSWITCH (SIGSTOP, a dead route): every event-socket connection stays open,
        new ones are accepted, but nothing is written to any of them (no greeting, replies, events or
        HEARTBEAT) until go_silent(False)."""
        self.silent = silent
        for session in self.inbound_sessions:
            session.muted = silent
        self.changed.pulse()

    def set_heartbeat(self, seconds: float | None) -> None:
        """Send HEARTBEAT every ``seconds`` (simulated, scaled by time_scale) from now on; None: stop."""
        self.heartbeat_seconds = seconds
        if self._heartbeat is not None:
            self._heartbeat.kill(block=False)
            self._heartbeat = None
        if seconds and self._server is not None:
            self._heartbeat = gevent.spawn(self._beat)

    def _accept(self, sock, address) -> None:
        session = InboundSession(self, sock, address)
        session.muted = self.silent
        self.inbound_sessions.append(session)
        self.add_listener(session)
        self.changed.pulse()
        session.run()

    def add_listener(self, lst) -> None:
        """Register a connection for events."""
        lst.registry = self
        lst.keep_frames = self.keep_frames
        self.listeners.append(lst)
        if lst.session_uuid:
            self._scoped.setdefault(lst.session_uuid, []).append(lst)
        else:
            self._unscoped.append(lst)

    def remove_listener(self, lst) -> None:
        if lst in self.listeners:
            self.listeners.remove(lst)
        self._rescope(lst, lst.session_uuid, None, add=False)

    def _rescope(self, lst, old, new, add: bool = True) -> None:
        # Events are routed by channel so that a thousand outbound sockets do not each inspect every event.
        if old:
            bucket = self._scoped.get(old, [])
            if lst in bucket:
                bucket.remove(lst)
            if not bucket:
                self._scoped.pop(old, None)
        elif lst in self._unscoped:
            self._unscoped.remove(lst)
        if not add or lst not in self.listeners:
            return
        if new:
            self._scoped.setdefault(new, []).append(lst)
        else:
            self._unscoped.append(lst)

    def _inbound_closed(self, session) -> None:
        self.remove_listener(session)
        if session in self.inbound_sessions:
            self.inbound_sessions.remove(session)
        self.changed.pulse()

    # -- waiting -----------------------------------------------------------------------------------
    def wait_for(self, fn, timeout: float = 5.0, what: str = "condition"):
        """Wait until fn() returns something truthy and return it; TimeoutError after timeout seconds."""
        value = self.changed.wait_for(fn, time.monotonic() + timeout, step=0.5)
        if not value:
            raise TimeoutError(f"fake switch: timed out after {timeout}s waiting for {what}")
        return value

    def wait_quietly(self, fn, timeout: float, what: str = "") -> bool:
        """wait_for for the fake's own greenlets: False on timeout instead of raising."""
        try:
            self.wait_for(fn, timeout, what)
            return True
        except TimeoutError:
            return False

    def wait_inbound(self, count: int = 1, timeout: float = 5.0, authed: bool = True) -> list[InboundSession]:
        """Wait until `count` inbound clients are connected (and authenticated)."""
        return self.wait_for(
            lambda: (lambda s: s if len(s) >= count else None)(
                [x for x in self.inbound_sessions if x.authed or not authed]), timeout, "inbound clients")

    def sim_now(self) -> float:
        """Simulated seconds since the switch was created."""
        return (time.monotonic() - self._t0) / self.time_scale

    # -- events ------------------------------------------------------------------------------------
    def common_headers(self, name: str, subclass: str | None = None, origin=None) -> list[tuple[str, str]]:
        self._seq += 1
        ts = now_us()
        local = datetime.fromtimestamp(ts / 1e6)
        gmt = datetime.fromtimestamp(ts / 1e6, tz=timezone.utc)
        file, func, line = origin or ORIGINS.get(name) or lifecycle.ORIGINS.get(
            name, ("switch_event.c", "switch_event_fire_detailed", "1"))
        h = []
        if subclass:
            h.append(("Event-Subclass", subclass))
        h += [
            ("Event-Name", name), ("Core-UUID", self.core_uuid), ("FreeSWITCH-Hostname", self.hostname),
            ("FreeSWITCH-Switchname", self.hostname), ("FreeSWITCH-IPv4", "127.0.0.1"),
            ("FreeSWITCH-IPv6", "::1"), ("Event-Date-Local", local.strftime("%Y-%m-%d %H:%M:%S")),
            ("Event-Date-GMT", gmt.strftime("%a, %d %b %Y %H:%M:%S GMT")),
            ("Event-Date-Timestamp", str(ts)), ("Event-Calling-File", file),
            ("Event-Calling-Function", func), ("Event-Calling-Line-Number", line),
            ("Event-Sequence", str(self._seq)),
        ]
        return h

    def emit(self, name: str, headers: list[tuple[str, str]] | None = None, body: str | None = None,
             subclass: str | None = None, origin=None, job_owner: str | None = None,
             skip_socket_of: str | None = None) -> list[tuple[str, str]]:
        """Fire an event to every subscribed connection. `headers` follow the common block."""
        full = self.common_headers(name, subclass, origin) + list(headers or [])
        targets = list(self._unscoped)
        scope = job_owner if name == "BACKGROUND_JOB" else _unique_id(headers)
        if scope and scope in self._scoped:
            targets += self._scoped[scope]
        for lst in targets:
            if skip_socket_of and getattr(lst, "owned_uuid", None) == skip_socket_of:
                continue
            lst.deliver(name, subclass, full, body, job_owner)
        return full

    def emit_custom(self, subclass: str, headers: list[tuple[str, str]] | None = None, body: str | None = None,
                    origin=None) -> list[tuple[str, str]]:
        """Fire a CUSTOM event with an Event-Subclass (sofia::register, callcenter::info...)."""
        return self.emit("CUSTOM", headers, body, subclass=subclass, origin=origin)

    def emit_channel(self, ch: FakeChannel, name: str, pre=None, post=None, state=None, call_state=None,
                     state_number=None, skip_socket: bool = False, subclass: str | None = None) -> None:
        """Fire a channel event with the channel's header blocks."""
        body = ch.event_body(name, pre=pre, post=post, state=state, call_state=call_state,
                             state_number=state_number)
        self.emit(name, body, subclass=subclass, skip_socket_of=ch.uuid if skip_socket else None)

    # -- channels ----------------------------------------------------------------------------------
    def add_channel(self, ch: FakeChannel, runner: ChannelRunner | None = None) -> FakeChannel:
        ch.global_vars = self.global_vars  # what ${name} falls back to, as switch_channel_get_variable does
        ch.executed = []
        ch.parked = False
        ch.transfers = []
        ch.agent = getattr(ch, "agent", None)
        ch.runner = runner or ChannelRunner(self, ch)
        self.channels[ch.uuid] = ch
        ch.runner.start()
        self.changed.pulse()
        return ch

    def channel_gone(self, ch: FakeChannel) -> None:
        self.channels.pop(ch.uuid, None)
        self.gone[ch.uuid] = ch
        self.changed.pulse()

    def find_channel(self, uuid: str) -> FakeChannel | None:
        return self.channels.get(uuid)

    def _get(self, uuid: str) -> FakeChannel | None:
        return self.channels.get(uuid.strip())

    def _channel_arg(self, words: list[str]) -> FakeChannel:
        """The live channel an api command's first word names; api() answers `-ERR No such channel!` for none."""
        ch = self._get(words[0]) if words else None
        if ch is None:
            raise NoSuchChannel("No such channel!")
        return ch


class NoSuchChannel(ValueError):
    """An api command named no live channel (api() turns a ValueError into its `-ERR <text>` reply)."""


def _unique_id(headers) -> str | None:
    for k, v in headers or ():
        if k == "Unique-ID":
            return v
    return None
