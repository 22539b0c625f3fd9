"""FakeSwitch: a protocol-level fake FreeSWITCH for tests (inbound event socket + outbound calls).

One process, gevent greenlets, no global monkey-patching: the server and client sockets are gevent's.
"""
from __future__ import annotations

import itertools
import json
import logging
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import gevent
import gevent.event
from gevent.server import StreamServer

from . import audio, conference, lifecycle, wire
from .apps import ChannelRunner, Pulse
from .channel import FakeChannel, new_uuid, now_us
from .esl import InboundSession
from .outbound import FakeCall

log = logging.getLogger(__name__)

VERSION = "FreeSWITCH Version 1.10.12-release~64bit (fake for tests)"

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

EAVESDROP_DTMF = {"2": "whisper", "1": "whisper_other", "3": "three_way", "0": "listen"}


class Agent:
    """A scripted SIP phone registered as user NNNN (or an outside number reached over a gateway)."""

    def __init__(self, switch, number, registered=True, answer=True, answer_delay=0.5, talk_seconds=None,
                 domain="127.0.0.1", max_calls=None, network_port=5070, script=None):
        self.sw = switch
        self.number = str(number)
        self.registered = registered
        self.answer = answer            # True, False/"reject", "busy", "timeout"
        self.answer_delay = answer_delay
        self.talk_seconds = talk_seconds
        self.domain = domain
        self.max_calls = max_calls
        self.network_port = network_port
        self.call_id = f"{new_uuid()[:8]}@127.0.0.1"
        self.script = script                    # steps this party runs when its leg reaches the socket app
        # A desk phone sends RTP once it answered; one that does not never gets an application broadcast to its
        # bridged leg run (FreeSWITCH runs those after the leg has read media: switch_ivr_bridge.c).
        self.sends_media = True
        self.socket_calls: list[FakeCall] = []
        self.channels: list[FakeChannel] = []   # every leg that rang this agent
        self.offered = 0

    @property
    def contact(self) -> str:
        return f"sip:{self.number}@127.0.0.1:{self.network_port}"

    @property
    def current(self) -> FakeChannel | None:
        """The agent's live leg (latest first), if any."""
        for ch in reversed(self.channels):
            if not ch.hung_up:
                return ch
        return None

    @property
    def answered_calls(self) -> list[FakeChannel]:
        return [ch for ch in self.channels if ch.answered_us]

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """The agent hangs up the live leg."""
        ch = self.current
        if ch is not None:
            self.sw.hangup(ch, cause, by="agent", remote=True)

    def press(self, digits: str) -> None:
        """The agent presses digits on the live leg (eavesdrop whisper/barge keys...)."""
        ch = self.current
        if ch is not None:
            for d in digits:
                ch.runner.dtmf(d)

    def wait_ringing(self, timeout: float = 5.0) -> FakeChannel:
        """Wait until a leg rings this agent."""
        count = self.offered
        return self.sw.wait_for(lambda: self.current if self.offered > count or self.current else None,
                                timeout, f"agent {self.number} ringing")

    def wait_answered(self, timeout: float = 5.0) -> FakeChannel:
        return self.sw.wait_for(lambda: self.current if self.current and self.current.answered else None,
                                timeout, f"agent {self.number} answered")

    def __repr__(self) -> str:
        return f"Agent({self.number} registered={self.registered} answer={self.answer})"


class Member:
    def __init__(self, member_id, channel, flags):
        self.id = member_id
        self.channel = channel
        self.flags = set(flags)
        self.join_sim = 0.0


class Conference:
    def __init__(self, name, profile="default"):
        self.name = name
        self.profile = profile
        self.uuid = new_uuid()
        self.members: list[Member] = []
        self.floor: Member | None = None
        self.next_id = 1
        self.created = time.monotonic()


class Eavesdrop:
    """A supervisor leg listening to (and maybe talking into) a call."""

    def __init__(self, supervisor, target, mode):
        self.supervisor = supervisor
        self.target = target
        self.modes = [mode]
        self.active = True

    @property
    def mode(self) -> str:
        return self.modes[-1]


# The directory user the hotline's servers call each other as, and the shipped peer_password
# (freeswitch-conf: directory/agents.xml, vars.xml); each fake's internal profile gets its own address.
PEER_USER = "hotline-peer"
PEER_PASSWORD = "change-this-peer-password"
_sip_ports = itertools.count(15060)


class FakeSwitch:
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

    # -- lifecycle -----------------------------------------------------------------------------------
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

    # -- waiting -------------------------------------------------------------------------------------
    def wait_for(self, fn, timeout: float = 5.0, what: str = "condition"):
        """Wait until fn() returns something truthy and return it; TimeoutError after timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            ev = self.changed.current
            value = fn()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"fake switch: timed out after {timeout}s waiting for {what}")
            ev.wait(min(remaining, 0.5))

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

    # -- events --------------------------------------------------------------------------------------
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

    # -- channels ------------------------------------------------------------------------------------
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

    def answer(self, ch: FakeChannel) -> None:
        if ch.answered or ch.hung_up:
            return
        if ch.codec is None:
            lifecycle.set_codec(self, ch, ("PCMU", 8000, 64000))   # negotiated with the answer's SDP
        if ch.name.startswith("sofia/") and ch.direction == "inbound" and not ch.progress_media_us:
            # A SIP caller answered directly is first marked pre-answered (as captured: PROGRESS_MEDIA reads
            # early/RINGING, the answer early/EARLY), then answered; a leg we originated is answered by its
            # 200 OK straight from RINGING.
            ch.progress_media_us = now_us()
            ch.answer_state = "early"
            ch.set_var("endpoint_disposition", "EARLY MEDIA")
            self.emit_channel(ch, "CHANNEL_PROGRESS_MEDIA")
            lifecycle.set_callstate(self, ch, "EARLY")
        ch.answered_us = now_us()
        ch.answer_state = "answered"
        self.emit_channel(ch, "CHANNEL_ANSWER")
        ch.set_var("endpoint_disposition", "ANSWER")   # as captured: set after CHANNEL_ANSWER went out
        # switch_channel_api_on(channel, "api_on_answer"): every variable starting so, as "command args"
        # with the args expanded on this channel, runs synchronously before the answer is acted on.
        for name, value in list(ch.variables.items()):
            if name.lower().startswith("api_on_answer") and value.strip():
                command, _, args = value.strip().partition(" ")
                self.api(f"{command} {ch.expand(args)}".strip())
        lifecycle.set_callstate(self, ch, "ACTIVE")
        ch.runner.poke()

    def pre_answer(self, ch: FakeChannel) -> None:
        if ch.answered or ch.progress_media_us or ch.hung_up:
            return
        ch.progress_media_us = now_us()
        if ch.codec is None:
            lifecycle.set_codec(self, ch, ("PCMU", 8000, 64000))
        ch.answer_state = "early"
        ch.set_var("endpoint_disposition", "EARLY MEDIA")
        self.emit_channel(ch, "CHANNEL_PROGRESS_MEDIA")
        lifecycle.set_callstate(self, ch, "EARLY")

    def hangup(self, ch: FakeChannel, cause: str = "NORMAL_CLEARING", by: str = "switch",
               remote: bool | None = None) -> bool:
        """Hang up a channel: CHANNEL_HANGUP now; the runner finishes the app and tears down.

        `remote`: the party on this leg ended it (its BYE/CANCEL/refusal, for sip_hangup_disposition);
        by default when `by` is "caller"."""
        if ch.hung_up:
            return False
        ch.hangup_cause = cause
        ch.hangup_by = by
        ch.hangup_remote = (by == "caller") if remote is None else remote
        ch.answer_state = "hangup"
        ch.pending_state = "CS_HANGUP"   # what still happens before CS_HANGUP reads state number 10
        self.emit_channel(ch, "CHANNEL_HANGUP", state_number=10)
        if ch.other is not None:
            self.unbridge(ch)
        for leg in getattr(ch, "ringing", ()):
            leg.runner.poke()
        peer = getattr(ch, "loopback_peer", None)
        if peer is not None and not peer.hung_up:
            # The two halves of a loopback call live and die together. As captured: a half hung up in the
            # park application has the other half's application broken first (it ends answered), then that
            # half hangs up; otherwise (a bridge, eavesdrop, the CS_PARK state) the other half hangs up first.
            in_park = ch.runner.current is not None and ch.runner.current.name == "park"
            if in_park and (peer.runner.current is not None or peer.runner.in_cs_park):
                peer.runner.interrupt()
                gevent.spawn(self._loopback_half_hangup, peer, cause, by)
            else:
                self.hangup(peer, cause, by=by)
        far = getattr(ch, "sip_peer", None)
        if far is not None and not far[1].hung_up:
            # A SIP call between two switches: BYE or CANCEL ends the other switch's half too.
            far[0].hangup(far[1], cause, by="peer")
        for e in self.eavesdrops:
            if e.active and (e.target is ch or e.supervisor is ch):
                e.active = False
        ch.runner.poke()
        self.changed.pulse()
        return True

    def _loopback_half_hangup(self, ch: FakeChannel, cause: str, by: str) -> None:
        self.wait_quietly(lambda: ch.hung_up or (ch.runner.current is None and not ch.runner.in_cs_park), 1.0)
        self.hangup(ch, cause, by=by)

    def find_channel(self, uuid: str) -> FakeChannel | None:
        return self.channels.get(uuid)

    # -- media -----------------------------------------------------------------------------------------
    def media_seconds(self, path: str) -> float | None:
        """Simulated length of a playable; None when the real switch would say FILE NOT FOUND."""
        if path.startswith("silence_stream://"):
            ms = path[len("silence_stream://"):].split(",")[0]
            try:
                v = int(ms)
            except ValueError:
                v = 1000
            return 3600.0 if v < 0 else v / 1000.0
        if path.startswith("tone_stream://"):
            return self._tone_seconds(path)
        if path.startswith(("say:", "speak:")):
            return max(0.5, 0.15 * len(path.split(":", 1)[1]))
        if path.startswith("local_stream://"):
            return 3600.0
        if "://" in path:
            return self.default_prompt_seconds
        if path.startswith("/"):
            p = Path(path)
            if not p.exists():
                return None if self.strict_files else self.default_prompt_seconds
            secs = audio.wav_seconds(p)
            return secs if secs is not None else self.default_prompt_seconds
        return self.default_prompt_seconds

    def _tone_seconds(self, path: str) -> float:
        m = re.search(r"%\(([\d,]+)\)", path)
        loops = re.search(r"loops=(-?\d+)", path)
        if not m:
            return self.default_prompt_seconds
        parts = [int(x) for x in m.group(1).split(",") if x]
        once = (parts[0] + (parts[1] if len(parts) > 1 else 0)) / 1000.0
        n = int(loops.group(1)) if loops else 1
        return 3600.0 if n < 0 else once * max(1, n)

    def note_played(self, runner, path: str, found: bool) -> None:
        call = runner.call
        if call is not None:
            (call.played if found else call.not_found).append(path)
        self.changed.pulse()

    # -- calls into the app ------------------------------------------------------------------------------
    def place_call(self, app_address, caller: str = "13800138000", destination: str = "12345",
                   script=None, caller_name: str = "", channel_name: str | None = None,
                   variables: dict | None = None, connect_timeout: float = 5.0, context: str = "public",
                   gateway: str | None = None, uuid: str | None = None, standby=None) -> FakeCall:
        """A call arriving at `destination` whose dialplan runs `socket <app_address> async full` (`uuid`:
        the channel's, e.g. one the app marked before; a new one when not given). ``standby``: the address
        of the pair's other app, tried when ``app_address`` refuses the connection, as freeswitch-conf's
        second `socket ${hotline_outbound_standby} async full` does."""
        if gateway:
            name = channel_name or f"sofia/external/{caller}@{gateway}"
            source_profile = "external"
        else:
            name = channel_name or f"sofia/internal/{caller}@127.0.0.1"
            source_profile = "internal"
        # A SIP caller without a display name shows its number as the name.
        ch = FakeChannel(uuid=uuid, name=name, direction="inbound", caller_number=caller,
                         caller_name=caller_name or caller,
                         destination=destination, context=context, dialplan="XML", source="mod_sofia",
                         username=caller if not gateway else None, network_addr="127.0.0.1",
                         presence_id=f"{caller}@127.0.0.1" if not gateway else None)
        ch.state, ch.call_state = "CS_NEW", "DOWN"
        ch.codec = None   # negotiated at answer / early media, as on a real SIP leg
        for k, v in (("sip_from_user", caller), ("sip_from_host", "127.0.0.1"),
                     ("sip_to_user", destination), ("sip_req_user", destination),
                     ("sofia_profile_name", source_profile), ("sip_network_ip", "127.0.0.1"),
                     ("sip_network_port", "5060"), ("sip_user_agent", "fake-caller"),
                     ("endpoint_disposition", "DELAYED NEGOTIATION"),   # an INVITE with SDP, as captured
                     ("dtmf_type", "rfc2833")):
            ch.set_var(k, v)
        if gateway:
            ch.set_var("sip_gateway_name", gateway)
        for k, v in (variables or {}).items():
            ch.set_var(k, v)
        host, port = app_address
        self.socket_routes.setdefault(destination, (host, port))
        ch.set_var("current_application_data", f"{host}:{port} async full")
        ch.set_var("current_application", "socket")
        ch.set_var("socket_host", host)
        call = FakeCall(self, ch, app_address, script, connect_timeout=connect_timeout, standby=standby)
        self.add_channel(ch, call.runner)
        self.calls.append(call)
        lifecycle.set_state(self, ch, "CS_INIT")
        self.emit_channel(ch, "CHANNEL_CREATE", state="CS_INIT", call_state="DOWN", state_number=2)
        lifecycle.incoming(self, ch)
        self.emit_channel(ch, "CHANNEL_EXECUTE", post=[
            ("Application", "socket"), ("Application-Data", f"{host}:{port} async full"),
            ("Application-UUID", new_uuid())])
        ch.executed.append(("socket", f"{host}:{port} async full"))
        call.start()
        return call

    # -- agents ------------------------------------------------------------------------------------------
    def add_agent(self, number, registered: bool = True, answer=True, answer_delay: float = 0.5,
                  talk_seconds: float | None = None, max_calls: int | None = None, script=None) -> Agent:
        """A scripted phone for user/NNNN (or an outside number over a gateway)."""
        agent = Agent(self, number, registered=registered, answer=answer, answer_delay=answer_delay,
                      talk_seconds=talk_seconds, max_calls=max_calls, script=script,
                      network_port=5070 + len(self.agents))
        self.agents[agent.number] = agent
        if registered:
            self._emit_register(agent)
        return agent

    def set_registered(self, number, registered: bool) -> None:
        """Register or unregister an agent's phone (sofia::register / sofia::unregister)."""
        agent = self.agents[str(number)]
        if agent.registered == registered:
            return
        agent.registered = registered
        if registered:
            agent.call_id = f"{new_uuid()[:8]}@127.0.0.1"
            self._emit_register(agent)
        else:
            self.emit_custom("sofia::unregister", [
                ("profile-name", "internal"), ("from-user", agent.number), ("from-host", agent.domain),
                ("contact", f'"" <{agent.contact};transport=udp>'), ("call-id", agent.call_id),
                ("rpid", "unknown"), ("status", "Unregistered(UDP)"), ("expires", "0"),
                ("to-user", agent.number), ("to-host", agent.domain), ("network-ip", "127.0.0.1"),
                ("network-port", str(agent.network_port)), ("username", agent.number),
                ("realm", agent.domain), ("user-agent", "fake-agent")],
                origin=("sofia_reg.c", "sofia_reg_handle_register_token", "1580"))

    def _emit_register(self, agent: Agent) -> None:
        self.emit_custom("sofia::register", [
            ("profile-name", "internal"), ("from-user", agent.number), ("from-host", agent.domain),
            ("presence-hosts", f"{agent.domain},{agent.domain}"),
            ("contact", f'"" <{agent.contact};transport=udp>'), ("call-id", agent.call_id),
            ("rpid", "unknown"), ("status", "Registered(UDP)"), ("expires", "600"),
            ("to-user", agent.number), ("to-host", agent.domain), ("network-ip", "127.0.0.1"),
            ("network-port", str(agent.network_port)), ("username", agent.number), ("realm", agent.domain),
            ("user-agent", "fake-agent"), ("sip_number_alias", agent.number),
            ("sip_auth_username", agent.number), ("sip_auth_realm", agent.domain),
            ("number_alias", agent.number), ("user_name", agent.number), ("domain_name", agent.domain),
            ("user_context", "default"), ("effective_caller_id_name", f"Extension {agent.number}"),
            ("effective_caller_id_number", agent.number)],
            origin=("sofia_reg.c", "sofia_reg_handle_register_token", "2059"))

    # -- ringing ---------------------------------------------------------------------------------------------
    def ring(self, dial: str, variables: dict | None = None, timeout: float = 60.0,
             caller: FakeChannel | None = None, cid_name: str | None = None, cid_num: str | None = None):
        """Ring a dial string (user/NNNN, sofia/gateway/GW/NUM, loopback/EXT, a,b or a|b).

        Returns (channel, None) when answered, (None, cause) otherwise. Blocks in simulated time.
        """
        variables = dict(variables or {})
        dial = dial.strip()
        gvars, dial = _strip_vars(dial)
        variables.update(gvars)
        sequence = _split_outside_brackets(dial, "|")
        if len(sequence) > 1:
            cause = "NO_ANSWER"
            for part in sequence:
                ch, cause = self.ring(part, variables, timeout, caller, cid_name, cid_num)
                if ch is not None:
                    return ch, None
            return None, cause
        parallel = _split_outside_brackets(dial, ",")
        if len(parallel) > 1:
            return self._ring_parallel(parallel, variables, timeout, caller, cid_name, cid_num)
        return self._ring_one(dial, variables, timeout, caller, cid_name, cid_num, None)

    def _ring_parallel(self, parts, variables, timeout, caller, cid_name, cid_num):
        cancel = gevent.event.Event()
        results = []
        greenlets = [gevent.spawn(self._ring_one, p, dict(variables), timeout, caller, cid_name, cid_num, cancel)
                     for p in parts]
        winner = None
        for g in gevent.iwait(greenlets):
            ch, cause = g.value if g.successful() else (None, "NORMAL_TEMPORARY_FAILURE")
            results.append(cause)
            if ch is not None and winner is None:
                winner = ch
                cancel.set()
            elif ch is not None:
                self.hangup(ch, "LOSE_RACE", by="switch")
        if winner is not None:
            return winner, None
        return None, next((c for c in results if c not in ("ORIGINATOR_CANCEL", "LOSE_RACE")), "NO_ANSWER")

    def _ring_one(self, dial, variables, timeout, caller, cid_name, cid_num, cancel):
        lvars, dial = _strip_vars(dial.strip())
        variables = {**variables, **lvars}
        timeout = float(variables.get("leg_timeout") or variables.get("originate_timeout") or
                        variables.get("call_timeout") or timeout)
        cid_num = variables.get("origination_caller_id_number") or cid_num or (
            caller.caller_number if caller else "0000000000")
        cid_name = variables.get("origination_caller_id_name") or cid_name or (
            caller.caller_name if caller else "")
        number, kind = _dial_target(dial)
        if kind == "error":
            return None, number or "NORMAL_TEMPORARY_FAILURE"
        delay = float(variables.get("leg_delay_start") or 0)
        if delay > 0:
            # ring-progressively: this leg is not even created until its delay has passed (or the race ended).
            gone = lambda: (cancel is not None and cancel.is_set()) or (caller is not None and caller.hung_up)
            if self._wait_sim(gone, delay, self.changed if cancel is not None else None):
                return None, "ORIGINATOR_CANCEL"
            timeout = max(0.0, timeout - delay)
        if kind == "loopback":
            return self._loopback(number, variables, cid_name, cid_num, dial.split("/")[2:]), None
        far = self.peers.get(dial.rpartition("@")[2]) if dial.startswith("sofia/internal/") else None
        if far is not None:
            return self._ring_peer(far, dial, number, variables, timeout, caller, cid_name, cid_num, cancel)
        if kind is None:
            return None, "CHAN_NOT_IMPLEMENTED"
        agent = self.agents.get(number)
        if agent is None:
            return None, "SUBSCRIBER_ABSENT" if kind == "user" else "NO_ROUTE_DESTINATION"
        if kind == "user" and not agent.registered:
            return None, "USER_NOT_REGISTERED"
        agent.offered += 1
        if agent.max_calls is not None and sum(1 for c in agent.channels if not c.hung_up) >= agent.max_calls:
            return None, "USER_BUSY"
        name = (f"sofia/internal/{number}@127.0.0.1:{agent.network_port}" if kind == "user"
                else f"sofia/gateway/{dial.split('/')[2] if dial.count('/') >= 3 else 'gw'}/{number}")
        # As captured: an originated SIP leg has no dialplan, its callee id is "Outbound Call" <number>, and its
        # network address comes with the answer.
        ch = FakeChannel(uuid=variables.get("origination_uuid"), name=name, direction="outbound",
                         caller_number=cid_num, caller_name=cid_name, destination=number,
                         source="src/switch_ivr_originate.c", dialplan="", callee_name="Outbound Call",
                         callee_number=number, presence_id=f"{number}@{agent.domain}")
        ch.state, ch.call_state = "CS_NEW", "DOWN"
        ch.codec = None   # a SIP leg's codec comes with the answer
        ch.agent = agent
        ch.set_var("is_outbound", "true")
        for k, v in variables.items():
            ch.set_var(k, v)
        ch.set_var("sofia_profile_name", "internal" if kind == "user" else "external")
        ch.set_var("dialed_user", number)
        ch.set_var("dialed_domain", agent.domain)
        ch.set_var("sip_destination_url", f"{agent.contact};transport=udp")
        self.add_channel(ch)
        agent.channels.append(ch)
        lifecycle.outgoing(self, ch, "origination_uuid" in variables)
        self.emit_channel(ch, "CHANNEL_CREATE", state="CS_INIT", call_state="DOWN", state_number=2)
        lifecycle.originate(self, ch)
        ch.progress_us = now_us()
        self.emit_channel(ch, "CHANNEL_PROGRESS")
        lifecycle.set_callstate(self, ch, "RINGING")
        mode = agent.answer
        delay = agent.answer_delay
        stopped = lambda: ch.hung_up or (cancel is not None and cancel.is_set()) or (
            caller is not None and caller.hung_up)
        # A single ring sleeps on its own leg's wake-ups (the caller's hang-up pokes it); parallel rings
        # share the switch-wide pulse so that the winner's cancel reaches the others.
        pulse = self.changed if cancel is not None else ch.runner.wake
        if caller is not None:
            caller.ringing = getattr(caller, "ringing", []) + [ch]
        if mode is True:
            if delay > timeout:
                self._wait_sim(stopped, timeout, pulse)
                cause = "NO_ANSWER"
            else:
                self._wait_sim(stopped, delay, pulse)
                cause = None
        elif mode == "timeout" or mode is None:
            self._wait_sim(stopped, timeout, pulse)
            cause = "NO_ANSWER"
        elif mode == "busy":
            self._wait_sim(stopped, min(delay, timeout), pulse)
            cause = "USER_BUSY"
        else:
            self._wait_sim(stopped, min(delay, timeout), pulse)
            cause = "CALL_REJECTED"
        if caller is not None:
            caller.ringing = [c for c in caller.ringing if c is not ch]
        if cancel is not None and cancel.is_set() and not ch.hung_up:
            self.hangup(ch, "ORIGINATOR_CANCEL", by="switch")
            return None, "ORIGINATOR_CANCEL"
        if caller is not None and caller.hung_up and not ch.hung_up:
            self.hangup(ch, "ORIGINATOR_CANCEL", by="switch")
            return None, "ORIGINATOR_CANCEL"
        if ch.hung_up:
            return None, ch.hangup_cause
        if cause is not None:
            refused = cause in ("USER_BUSY", "CALL_REJECTED")
            self.hangup(ch, cause, by="agent" if refused else "switch", remote=refused)
            return None, cause
        ch.network_addr = "127.0.0.1"
        self.answer(ch)
        lifecycle.set_state(self, ch, "CS_EXECUTE")
        if agent.talk_seconds is not None:
            gevent.spawn(self._agent_talk_then_hangup, ch, agent.talk_seconds)
        return ch, None

    # -- several switches ----------------------------------------------------------------------------------
    def reach(self, other: "FakeSwitch") -> None:
        """Put this switch and ``other`` on one network: each one's calls to the other's internal profile
        (``sofia/internal/<ext>@<sip_address>``) arrive there (see _ring_peer)."""
        self.peers[other.sip_address] = other
        other.peers[self.sip_address] = self

    def _ring_peer(self, far: "FakeSwitch", dial, number, variables, timeout, caller, cid_name, cid_num, cancel):
        """A leg to another switch's internal profile: this switch's outbound leg, that switch's inbound one.

        The far switch challenges the INVITE (auth-calls) and the leg answers with its sip_auth_username /
        sip_auth_password variables: only the peer account passes, into the hotline_peer context, which
        bridges user/<ext> (freeswitch-conf/dialplan/peer.xml). This leg answers when that bridge answers
        and ends with it; ending it (cancel, caller gone, leg timeout) ends the far half as well.
        """
        ch = FakeChannel(uuid=variables.get("origination_uuid"), name=dial, direction="outbound",
                         caller_number=cid_num, caller_name=cid_name, destination=number,
                         source="src/switch_ivr_originate.c", network_addr=far.sip_address.rpartition(":")[0])
        ch.state, ch.call_state = "CS_NEW", "DOWN"
        ch.codec = None
        # The phone this leg reaches (the far switch's): like an agent's leg, it ends with the caller's bridge.
        ch.agent = far.agents.get(number)
        for k, v in variables.items():
            ch.set_var(k, v)
        self.add_channel(ch)
        lifecycle.outgoing(self, ch, "origination_uuid" in variables)
        self.emit_channel(ch, "CHANNEL_CREATE", state="CS_INIT", call_state="DOWN", state_number=2)
        lifecycle.originate(self, ch)
        if variables.get("sip_auth_username") != PEER_USER or \
                variables.get("sip_auth_password") != far.global_vars.get("peer_password"):
            self.hangup(ch, "CALL_REJECTED")  # 403 after the challenge
            return None, "CALL_REJECTED"
        inbound = FakeChannel(name=f"sofia/internal/{PEER_USER}@{self.sip_address}", direction="inbound",
                              caller_number=cid_num, caller_name=cid_name, destination=number,
                              context="hotline_peer", username=PEER_USER,
                              network_addr=self.sip_address.rpartition(":")[0])
        inbound.state, inbound.call_state, inbound.codec = "CS_NEW", "DOWN", None
        far.add_channel(inbound)
        ch.sip_peer, inbound.sip_peer = (far, inbound), (self, ch)
        lifecycle.set_state(far, inbound, "CS_INIT")
        far.emit_channel(inbound, "CHANNEL_CREATE", state="CS_INIT", state_number=2)
        lifecycle.incoming(far, inbound)
        # The hotline_peer context. The dialplan ends after the bridge: a failed one hangs the channel up
        # with its cause (mod_dptools), a finished one with hangup_after_bridge.
        inbound.set_var("hangup_after_bridge", "true")
        inbound.runner.enqueue("bridge", f"user/{number}")
        inbound.runner.enqueue("hangup", "${originate_failed_cause}")
        ch.progress_us = now_us()
        self.emit_channel(ch, "CHANNEL_PROGRESS")
        lifecycle.set_callstate(self, ch, "RINGING")
        over = lambda: inbound.answered or ch.hung_up or inbound.hung_up or (
            cancel is not None and cancel.is_set()) or (caller is not None and caller.hung_up)
        deadline = time.monotonic() + timeout * self.time_scale
        while not over() and time.monotonic() < deadline:
            gevent.wait([self.changed.current, far.changed.current],
                        timeout=min(1.0, deadline - time.monotonic()), count=1)
        if not ch.hung_up and not inbound.answered:
            if (cancel is not None and cancel.is_set()) or (caller is not None and caller.hung_up):
                self.hangup(ch, "ORIGINATOR_CANCEL")
            elif not inbound.hung_up:
                self.hangup(ch, "NO_ANSWER")  # this leg's timeout: CANCEL to the far switch
        if ch.hung_up:
            return None, ch.hangup_cause
        self.answer(ch)
        lifecycle.set_state(self, ch, "CS_EXECUTE")
        return ch, None

    def _agent_talk_then_hangup(self, ch, seconds):
        self._wait_sim(lambda: ch.hung_up, seconds)
        if not ch.hung_up:
            self.hangup(ch, "NORMAL_CLEARING", by="agent", remote=True)

    def _wait_sim(self, pred, sim_seconds, pulse: Pulse | None = None) -> bool:
        deadline = time.monotonic() + sim_seconds * self.time_scale
        pulse = pulse or self.changed
        while True:
            ev = pulse.current
            if pred():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ev.wait(min(remaining, 1.0))

    def _loopback(self, ext, variables, cid_name, cid_num, rest=()) -> FakeChannel:
        # loopback/<ext>[/<context>[/<dialplan>]]; both legs' callee id is "Outbound Call" <the dial string's
        # last part> ("default" with none), as captured
        context = rest[0] if rest and rest[0] else "default"
        dialplan = rest[1] if len(rest) > 1 and rest[1] else "xml"
        callee = rest[-1] if rest and rest[-1] else "default"
        a = FakeChannel(uuid=variables.get("origination_uuid"), name=f"loopback/{ext}-a", direction="outbound",
                        caller_number=cid_num or "0000000000", caller_name=cid_name, destination=ext,
                        source="mod_loopback", dialplan=dialplan, callee_name="Outbound Call",
                        callee_number=callee, context=context)
        a.codec = ("L16", 8000, 128000)
        a.set_var("is_outbound", "true")
        self.add_channel(a)
        b = FakeChannel(name=f"loopback/{ext}-b", direction="inbound", caller_number=cid_num or "0000000000",
                        caller_name=cid_name, destination=ext, source="mod_loopback", dialplan=dialplan,
                        callee_name="Outbound Call", callee_number=callee, context=context)
        b.codec = ("L16", 8000, 128000)
        for k, v in variables.items():   # mod_loopback hands the originate's variables to the B leg too
            b.set_var(k, v)
        b.set_var("other_loopback_leg_uuid", a.uuid)
        b.set_var("loopback_leg", "B")
        a.loopback_peer, b.loopback_peer = b, a
        self.add_channel(b)
        a.state = b.state = "CS_NEW"
        b.call_state = "DOWN"
        # the codec is set while the A leg still has the whole dial string as its name (as captured)
        lifecycle.outgoing(self, a, "origination_uuid" in variables,
                           codec_name=f"loopback/{'/'.join([ext, *rest])}-a")
        for k, v in variables.items():   # the originate's variables come after CHANNEL_UUID
            a.set_var(k, v)
        a.set_var("other_loopback_leg_uuid", b.uuid)
        a.set_var("loopback_leg", "A")
        lifecycle.set_codec(self, b, b.codec)
        self.emit_channel(a, "CHANNEL_CREATE", state="CS_INIT", call_state="DOWN", state_number=2)
        lifecycle.originate(self, a)
        lifecycle.set_state(self, b, "CS_INIT")
        self.emit_channel(b, "CHANNEL_CREATE", state="CS_INIT", call_state="DOWN", state_number=2)
        lifecycle.incoming(self, b, inline=dialplan == "inline")
        self.answer(a)
        if ext in self.socket_routes:
            # loopback/12345: the B leg runs extension 12345, i.e. the socket app (as in the captures).
            b.answer_state = "ringing"
            b.answered_us = 0
            self.attach_socket(b, self.socket_routes[ext])
        else:
            # extension <ext> of the capture's dialplan: answer, then park
            b.runner.enqueue("answer", "")
            b.runner.enqueue("park", "")
        # The A leg takes the B leg's identity once B answers (switch_channel_flip_cid): CALL_UPDATE.
        a.hit_dialplan = True
        lifecycle.flip_cid(self, a)
        lifecycle.set_state(self, a, "CS_EXECUTE")
        return a

    # -- api -------------------------------------------------------------------------------------------------
    def run_job(self, command_line: str, job_uuid: str, owner: str | None) -> None:
        """bgapi: run the command, then fire BACKGROUND_JOB with the result as body."""
        body = self.api(command_line, owner=owner)
        cmd, _, arg = command_line.strip().partition(" ")
        headers = [("Job-UUID", job_uuid)]
        if owner:
            headers.append(("Job-Owner-UUID", owner))
        headers.append(("Job-Command", cmd))
        if arg:
            headers.append(("Job-Command-Arg", arg))
        self.emit("BACKGROUND_JOB", headers, body=body, job_owner=owner)

    def api(self, command_line: str, owner: str | None = None) -> str:
        """Run an api command and return the body the real switch would send."""
        self.api_log.append(command_line)
        self.changed.pulse()
        cmd, _, arg = command_line.strip().partition(" ")
        arg = arg.strip()
        if cmd:
            lifecycle.api_event(self, cmd, arg)
        handler = getattr(self, "api_" + cmd.lower(), None) if cmd else None
        if handler is None:
            return f"-ERR {cmd} Command not found!\n"
        try:
            return handler(arg)
        except (ValueError, IndexError, KeyError) as exc:
            log.info("fake switch: api %r failed: %s", command_line, exc)
            return f"-ERR {exc}\n"

    def api_version(self, arg):
        return VERSION + "\n"

    def api_status(self, arg):
        up = int(time.time() - self.started_at)
        return (f"UP 0 years, 0 days, 0 hours, {up // 60} minutes, {up % 60} seconds, 0 milliseconds, "
                f"0 microseconds\nFreeSWITCH (Version 1.10.12 fake) is ready\n"
                f"{len(self.channels)} session(s) since startup\n{len(self.channels)} session(s) - peak "
                f"{len(self.channels)}, last 5min {len(self.channels)}\n0 session(s) per Sec out of max 30, "
                f"peak 0, last 5min 0\n1000 session(s) max\nmin idle cpu 0.00/99.00\n"
                f"Current Stack Size/Max 240K/8192K\n")

    def api_uptime(self, arg):
        return f"{int(time.time() - self.started_at)}\n"

    def api_global_getvar(self, arg):
        return self.global_vars.get(arg, "")

    def api_reloadxml(self, arg):
        return "+OK [Success]\n"

    def api_hostname(self, arg):
        return self.hostname

    def api_show(self, arg):
        words = arg.split()
        what = words[0].lower() if words else ""
        as_json = len(words) >= 3 and words[-2].lower() == "as" and words[-1].lower() == "json"
        if what in ("channels", "calls"):
            rows = [self._channel_row(ch) for ch in self.channels.values()]
            cols = list(_CHANNEL_COLUMNS)
        elif what == "registrations":
            rows = [self._registration_row(a) for a in self.agents.values() if a.registered]
            cols = ["reg_user", "realm", "token", "url", "expires", "network_ip", "network_port",
                    "network_proto", "hostname", "metadata"]
        else:
            return "-USAGE: show <what>\n" if not what else f"-ERR Cannot find command for [{what}]\n"
        if as_json:
            if not rows:
                return json.dumps({"row_count": 0})
            return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":"), ensure_ascii=False)
        out = ",".join(cols) + "\n"
        for r in rows:
            out += ",".join(str(r.get(c, "")) for c in cols) + "\n"
        return out + f"\n{len(rows)} total.\n"

    def _channel_row(self, ch: FakeChannel) -> dict:
        created = datetime.fromtimestamp(ch.created_us / 1e6).strftime("%Y-%m-%d %H:%M:%S")
        app, data = ch.executed[-1] if ch.executed else ("", "")
        return {
            "uuid": ch.uuid, "direction": ch.direction, "created": created,
            "created_epoch": str(ch.created_us // 1_000_000), "name": ch.name, "state": ch.state,
            "cid_name": ch.caller_name, "cid_num": ch.caller_number, "ip_addr": ch.network_addr or "",
            "dest": ch.destination, "application": app, "application_data": data, "dialplan": ch.dialplan,
            "context": ch.context, "read_codec": ch.codec[0] if ch.codec else "",
            "read_rate": str(ch.codec[1]) if ch.codec else "", "read_bit_rate": str(ch.codec[2]) if ch.codec else "",
            "write_codec": ch.codec[0] if ch.codec else "", "write_rate": str(ch.codec[1]) if ch.codec else "",
            "write_bit_rate": str(ch.codec[2]) if ch.codec else "", "secure": "", "hostname": self.hostname,
            "presence_id": ch.presence_id or "", "presence_data": "", "accountcode": "",
            "callstate": ch.call_state, "callee_name": ch.callee_name, "callee_num": ch.callee_number,
            "callee_direction": "RECV" if ch.get_var("channel_cid_flipped") else "", "call_uuid": ch.call_uuid,
            "sent_callee_name": "", "sent_callee_num": "",
            "initial_cid_name": ch.orig_caller_name, "initial_cid_num": ch.orig_caller_number,
            "initial_ip_addr": ch.network_addr or "", "initial_dest": ch.destination,
            "initial_dialplan": ch.dialplan, "initial_context": ch.context,
        }

    def _registration_row(self, a: Agent) -> dict:
        return {"reg_user": a.number, "realm": a.domain, "token": a.call_id,
                "url": f"sofia/internal/{a.contact};transport=udp", "expires": str(int(time.time()) + 600),
                "network_ip": "127.0.0.1", "network_port": str(a.network_port), "network_proto": "udp",
                "hostname": self.hostname, "metadata": ""}

    def api_sofia(self, arg):
        words = arg.split()
        if words[:4] == ["status", "profile", "internal", "reg"] or words[:4] == ["status", "profile", "internal",
                                                                                  "user"]:
            regs = [a for a in self.agents.values() if a.registered]
            out = "\nRegistrations:\n" + "=" * 97 + "\n"
            for a in regs:
                out += (f"Call-ID:    \t{a.call_id}\nUser:       \t{a.number}@{a.domain}\n"
                        f"Contact:    \t\"\" <{a.contact};transport=udp>\nAgent:      \tfake-agent\n"
                        f"Status:     \tRegistered(UDP)(unknown) EXP(2099-01-01 00:00:00) EXPSECS(599)\n"
                        f"Ping-Status:\tReachable\nPing-Time:\t0.00\nHost:       \t{self.hostname}\n"
                        f"IP:         \t127.0.0.1\nPort:       \t{a.network_port}\nAuth-User:  \t{a.number}\n"
                        f"Auth-Realm: \t{a.domain}\nMWI-Account:\t{a.number}@{a.domain}\n\n")
            out += f"Total items returned: {len(regs)}\n" + "=" * 97 + "\n"
            return out
        if words[:1] == ["status"]:
            return ("                     Name\t   Type\t                                      Data\tState\n"
                    + "=" * 97 + "\n"
                    "                 internal\tprofile\t           sip:mod_sofia@127.0.0.1:5060\tRUNNING (0)\n"
                    + "=" * 97 + "\n1 profile 0 aliases\n")
        return "-ERR Usage: sofia status|... (fake)\n"

    def api_sofia_contact(self, arg):
        user = arg.split("@")[0].split("/")[-1]
        a = self.agents.get(user)
        if a is None or not a.registered:
            return "error/user_not_registered"
        return f"sofia/internal/{a.contact};transport=udp"

    def api_originate(self, arg):
        dial, rest = _split_dial(arg)
        if not dial or not rest:
            return "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] " \
                   "[<cid_name>] [<cid_num>] [<timeout_sec>]\n"
        target = rest[0]
        cid_name = rest[3] if len(rest) > 3 and rest[3] != "undef" else None
        cid_num = rest[4] if len(rest) > 4 and rest[4] != "undef" else None
        timeout = float(rest[5]) if len(rest) > 5 else 60.0
        ch, cause = self.ring(dial, {}, timeout, None, cid_name, cid_num)
        if ch is None:
            return f"-ERR {cause}\n"
        # The leg is given its extension: an originated leg takes the identity of the party it reached.
        ch.hit_dialplan = True
        lifecycle.sort_cid(self, ch)
        if target.startswith("&"):
            # mod_commands: the name up to '(', the argument up to ')' when there is one.
            m = re.match(r"&([\w-]+)(?:\(([^)]*)\)?)?", target, re.S)
            if m:
                ch.runner.enqueue(m.group(1), m.group(2) or "")
        else:
            ch.transfers.append((target, rest[1] if len(rest) > 1 else "XML",
                                 rest[2] if len(rest) > 2 else "default"))
            self._route_extension(ch, target)
        return f"+OK {ch.uuid}\n"

    def route_to_socket(self, extension: str, app_address) -> None:
        """Dialplan: `extension` runs `socket <app_address> async full` (place_call adds its destination)."""
        self.socket_routes[str(extension)] = tuple(app_address)

    def attach_socket(self, ch: FakeChannel, app_address, script=None) -> FakeCall:
        """An existing channel enters the socket application (originated to, or transferred to, 12345)."""
        call = ch.runner.call
        if call is not None:
            call.reenter(app_address)
            return call
        call = FakeCall(self, ch, app_address, script, runner=ch.runner)
        self.calls.append(call)
        if ch.agent is not None:
            ch.agent.socket_calls.append(call)
        gevent.spawn(call._connect)
        self.changed.pulse()
        return call

    def _route_extension(self, ch: FakeChannel, ext: str) -> None:
        if ext in self.socket_routes:
            self.attach_socket(ch, self.socket_routes[ext], getattr(ch.agent, "script", None))
        elif ext in self.agents:
            # The extension ends after its bridge: the end of the dialplan hangs the channel up.
            ch.set_var("hangup_after_bridge", "true")
            ch.runner.enqueue("bridge", f"user/{ext}")
        elif ext == "9999":
            # the captures' dialplan: extension 9999 answers and parks
            ch.runner.enqueue("answer", "")
            ch.runner.enqueue("park", "")
        else:
            ch.runner.enqueue("park", "")

    def _get(self, uuid: str) -> FakeChannel | None:
        return self.channels.get(uuid.strip())

    def api_uuid_exists(self, arg):
        return "true" if self._get(arg) else "false"

    def api_uuid_kill(self, arg):
        p = arg.split()
        ch = self._get(p[0]) if p else None
        if ch is None:
            return "-ERR No such channel!\n"
        self.hangup(ch, p[1] if len(p) > 1 else "NORMAL_CLEARING", by="switch")
        return "+OK\n"

    def api_hupall(self, arg):
        p = arg.split()
        cause = p[0] if p else "NORMAL_CLEARING"
        var, val = (p[1], p[2]) if len(p) >= 3 else (None, None)
        for ch in list(self.channels.values()):
            if var is None or ch.get_var(var) == val:
                self.hangup(ch, cause, by="switch")
        return f"+OK hangup all channels with cause {cause}\n"

    def api_uuid_getvar(self, arg):
        p = arg.split()
        ch = self._get(p[0]) if p else None
        if ch is None:
            return "-ERR No such channel!\n"
        if len(p) < 2:
            return "-USAGE: <uuid> <var>\n"
        v = ch.get_var(p[1])
        return "_undef_" if v is None else v

    def api_uuid_setvar(self, arg):
        p = arg.split(None, 2)
        ch = self._get(p[0]) if p else None
        if ch is None:
            return "-ERR No such channel!\n"
        if len(p) < 2:
            return "-USAGE: <uuid> <var> [value]\n"
        if len(p) == 2:
            ch.variables.pop(p[1], None)
        else:
            ch.set_var(p[1], p[2])
        return "+OK\n"

    def api_uuid_send_dtmf(self, arg):
        p = arg.split()
        ch = self._get(p[0]) if p else None
        if ch is None:
            return "-ERR No such channel!\n"
        lifecycle.send_dtmf(ch, p[1])
        return f"+OK {ch.uuid} sent DTMF {p[1]}.\n"

    def api_uuid_recv_dtmf(self, arg):
        p = arg.split()
        ch = self._get(p[0]) if p else None
        if ch is None or len(p) < 2:
            return "-ERR No such channel!\n"
        for d in p[1]:
            ch.runner.dtmf(d)
        return "+OK\n"

    def api_uuid_answer(self, arg):
        ch = self._get(arg.split()[0]) if arg.split() else None
        if ch is None:
            return "-ERR No such channel!\n"
        self.answer(ch)
        return "+OK\n"

    def api_uuid_park(self, arg):
        ch = self._get(arg.split()[0]) if arg.split() else None
        if ch is None:
            return "-ERR No such channel!\n"
        peer = ch.other
        if ch.runner.socket_app is not None or getattr(ch, "bridge_mode", "") != "uuid" and peer is not None:
            # (a channel its socket or a bridge application controls: parked by a park application)
            if peer is not None:
                self.unbridge(ch, hangup_peer=False)
            if ch.runner.current is not None:
                ch.runner.interrupt()
            ch.runner.enqueue("park", "")
            return "+OK\n"
        if ch.runner.in_cs_park:
            return "+OK\n"
        # switch_ivr_park_session: the channel is to enter CS_PARK (what it runs ends first, its events read
        # state number 6); a uuid_bridge partner's bridge ends and, having nothing left to run, it hangs up.
        ch.pending_state = "CS_PARK"
        if peer is not None:
            self.unbridge(ch, hangup_peer=False)
            if not peer.hung_up and (peer.get_var("park_after_bridge") or "").lower() != "true":
                lifecycle.set_state(self, peer, "CS_EXECUTE")
                self.hangup(peer, "NORMAL_CLEARING", by="switch")
                ch.set_var("last_bridge_hangup_cause", "NORMAL_CLEARING")
        ch.runner.to_park = True
        if ch.runner.current is not None:
            ch.runner.interrupt()
        ch.runner.poke()
        return "+OK\n"

    def api_uuid_dump(self, arg):
        ch = self._get(arg.split()[0]) if arg.split() else None
        if ch is None:
            return "-ERR No such channel!\n"
        headers = self.common_headers("CHANNEL_DATA") + ch.channel_data()
        # switch_event_serialize: the same URL-encoded values as text/event-plain.
        return "".join(f"{k}: {wire.url_encode(v)}\n" for k, v in headers)

    def api_user_exists(self, arg):
        p = arg.split()
        return "true" if len(p) >= 2 and p[1] in self.agents else "false"

    def api_uuid_break(self, arg):
        p = arg.split()
        ch = self._get(p[0]) if p else None
        if ch is None:
            return "-ERR No such channel!\n"
        ch.runner.interrupt()
        return "+OK\n"

    def api_uuid_hold(self, arg):
        p = arg.split()
        mode = None
        if p and p[0] in ("off", "toggle"):
            mode = p.pop(0)
        ch = self._get(p[0]) if p else None
        if ch is None:
            return "-ERR Operation failed\n"
        hold = (not ch.on_hold) if mode == "toggle" else (mode != "off")
        if hold != ch.on_hold:
            ch.on_hold = hold
            if hold:
                ch.hold_us = now_us()
            self.emit_channel(ch, "CHANNEL_HOLD" if hold else "CHANNEL_UNHOLD")
        return "+OK Success\n"

    def api_uuid_record(self, arg):
        p = arg.split()
        if len(p) < 3:
            return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"
        ch = self._get(p[0])
        if ch is None:
            return "-ERR Cannot locate session!\n"
        action, path = p[1].lower(), p[2]
        if action == "start":
            ch.runner.start_session_record(path)
        elif action == "stop":
            if path == "all":
                for q in list(ch.runner.session_records):
                    ch.runner.stop_session_record(q)
            elif not ch.runner.stop_session_record(path):
                return "-ERR Cannot stop record session!\n"
        elif action not in ("mask", "unmask"):
            return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"
        return "+OK Success\n"

    def api_uuid_broadcast(self, arg):
        p = arg.split()
        ch = self._get(p[0]) if p else None
        if ch is None or len(p) < 2:
            return "-ERR Operation Failed\n"
        legs = p[2] if len(p) > 2 else "aleg"
        targets = [ch]
        if legs == "bleg":
            targets = [ch.other] if ch.other else []
        elif legs == "both" and ch.other is not None:
            targets = [ch.other, ch]
        path = p[1]
        app, _, appdata = path.partition("::")
        for t in targets:
            if not appdata:
                app, appdata = "playback", path
            if t.other is not None and t.agent is not None and not t.agent.sends_media:
                t.unread_broadcasts = getattr(t, "unread_broadcasts", []) + [(app, appdata)]   # accepted, never run
                continue
            if t.runner.current is not None and t.runner.current.name == "bridge":
                # A leg running bridge itself (an agent's outbound call) runs it inside the bridge.
                t.runner.inline.append((app, appdata, new_uuid()))
                t.runner.poke()
            else:
                t.runner.enqueue(app, appdata, front=True, loop=(1, 1))   # a message execute, as sendmsg's
            if t.runner.current is not None and t.runner.current.name == "echo":
                t.runner.interrupt()
        return "+OK Message sent\n"

    def api_uuid_bridge(self, arg):
        p = arg.split()
        if len(p) < 2:
            return "-USAGE: <uuid> <other_uuid>\n"
        a, b = self._get(p[0]), self._get(p[1])
        if a is None or b is None:
            return f"-ERR Invalid uuid {p[1] if a else p[0]}\n"
        gevent.spawn(self._uuid_bridge, a, b)
        return f"+OK {b.uuid}\n"

    def _uuid_bridge(self, a, b):
        # switch_ivr_uuid_bridge: `a` (the originator) and `b` get their new profiles, leave what they run
        # (their events read state number 8, CS_HIBERNATE), hibernate and soft-execute the bridge: `a` runs
        # it in CS_SOFT_EXECUTE, `b` exchanges media (as captured in park_bridge_states.txt).
        lifecycle.uuid_bridge_profiles(self, a, b)
        for ch in (a, b):
            ch.bridge_mode = "uuid"
            ch.pending_state = "CS_HIBERNATE"
            if ch.runner.current is not None or ch.runner.in_cs_park:
                ch.runner.interrupt()
        try:
            self.wait_for(lambda: all((c.runner.current is None and not c.runner.in_cs_park) or c.hung_up
                                      for c in (a, b)), 2.0, "idle legs")
        except TimeoutError:
            log.info("fake switch: uuid_bridge with a leg still busy; bridging anyway")
        if a.hung_up or b.hung_up:
            return
        lifecycle.uuid_bridge_states(self, a, b)
        self.link(a, b, after=lambda: lifecycle.set_state(self, b, "CS_EXCHANGE_MEDIA"))
        for ch in (a, b):
            # Each leg's audio_bridge_thread runs its bridge_pre_execute_app as the bridge starts, a
            # uuid_bridge's as well as the bridge application's (the variable stays on the channel).
            pre_app = ch.get_var("bridge_pre_execute_app")
            if pre_app:
                ch.runner.enqueue(pre_app, ch.get_var("bridge_pre_execute_data") or "")

    def link(self, a: FakeChannel, b: FakeChannel, after=None) -> None:
        """Bridge two answered legs (switch_ivr_multi_threaded_bridge, `a` running it): the other leg takes
        a's call_uuid, CHANNEL_BRIDGE on `a`, then (`after` runs first) bridge_to / last_bridge_to on both
        and each is told what to show (lifecycle.bridge_display)."""
        a.other, b.other = b, a
        a.other_type, b.other_type = "originatee", "originator"
        a.bridge_a = True
        b.bridge_a = False
        a.bridged_us = b.bridged_us = now_us()
        a.set_var("bridge_uuid", b.uuid)
        b.set_var("bridge_uuid", a.uuid)
        a.set_var("signal_bond", b.uuid)
        b.set_var("signal_bond", a.uuid)
        for x, y in ((a, b), (b, a)):
            x.set_var("bridge_channel", y.name)
        b.set_var("call_uuid", a.uuid)
        self.emit_channel(a, "CHANNEL_BRIDGE", pre=[("Bridge-A-Unique-ID", a.uuid), ("Bridge-B-Unique-ID", b.uuid)],
                          state="CS_SOFT_EXECUTE")
        if after is not None:
            after()
        for x, y in ((a, b), (b, a)):
            # switch_ivr_bridge.c: the partner while bridged, and the last one, kept after the bridge ends
            x.set_var("bridge_to", y.uuid)
            x.set_var("last_bridge_to", y.uuid)
        lifecycle.bridge_display(a, b)
        a.runner.poke()
        b.runner.poke()

    def unbridge(self, ch: FakeChannel, hangup_peer: bool | None = None) -> FakeChannel | None:
        """Break a bridge (a leg hung up or was transferred); CHANNEL_UNBRIDGE on the A leg."""
        peer = ch.other
        if peer is None:
            return None
        a, b = (ch, peer) if getattr(ch, "bridge_a", False) else (peer, ch)
        for leg in (a, b):   # the bridge's end: no partner, the call uuid its own again
            leg.set_var("bridge_to", "")
        b.set_var("call_uuid", b.uuid)
        # The captured CHANNEL_UNBRIDGE after a transfer carries no Other-Leg block: unlink first (a
        # uuid_bridge's legs keep their profile's copy, peer_block, until their next profile).
        ch.other = None
        if peer.other is ch:   # (an att_xfer leg talks to its target while its bond still points at it)
            peer.other = None
        self.emit_channel(a, "CHANNEL_UNBRIDGE", pre=[("Bridge-A-Unique-ID", a.uuid), ("Bridge-B-Unique-ID", b.uuid)],
                          state="CS_SOFT_EXECUTE")
        if ch.hangup_cause:
            peer.set_var("last_bridge_hangup_cause", ch.hangup_cause)
            peer.set_var("bridge_hangup_cause", ch.hangup_cause)
        if hangup_peer is None and getattr(ch, "inner_bridge", False) and getattr(peer, "inner_bridge", False):
            hangup_peer = False   # att_xfer's consultation bridge: att_xfer itself decides what follows
        if hangup_peer is None:
            hangup_peer = ch.hung_up and (getattr(peer, "bridge_mode", "") == "uuid" or
                                          getattr(ch, "bridge_mode", "") == "uuid" or peer.agent is not None)
            if (peer.get_var("park_after_bridge") or "").lower() == "true":
                hangup_peer = False   # the leg stays up and parks (an ACD plays a survey, re-queues...)
        if hangup_peer and not peer.hung_up:
            by = "agent" if ch.agent is not None else ("caller" if ch.hangup_by == "caller" else "peer")
            self.hangup(peer, "NORMAL_CLEARING", by=by)
        for leg in (ch, peer):
            if not leg.hung_up and leg.state == "CS_EXCHANGE_MEDIA" and not leg.pending_state:
                lifecycle.set_state(self, leg, "CS_EXECUTE")   # back to its own applications
        peer.runner.poke()
        ch.runner.poke()
        return peer

    def bridge_app(self, runner: ChannelRunner, arg: str) -> str:
        """The bridge application on a caller's channel: ring, link, wait until the bridge ends."""
        ch = runner.ch
        timeout = float(ch.get_var("call_timeout") or 60)
        other, cause = self.ring(arg, {}, timeout, caller=ch)
        if other is None:
            ch.set_var("originate_disposition", cause)
            ch.set_var("DIALSTATUS", _dialstatus(cause))
            ch.set_var("originate_failed_cause", cause)
            return "_none_"
        if ch.hung_up:
            self.hangup(other, "ORIGINATOR_CANCEL", by="switch")
            return "_none_"
        if not ch.answered:
            self.answer(ch)
        ch.set_var("originate_disposition", "SUCCESS")
        ch.set_var("DIALSTATUS", "SUCCESS")
        ch.set_var("bridge_uuid", other.uuid)
        ch.set_var("signal_bond", other.uuid)
        if runner.call is not None:
            runner.call.bridged_to.append(other)
        if other.hung_up:
            return "_none_"  # the answered leg left before the bridge began
        lifecycle.set_state(self, other, "CS_EXCHANGE_MEDIA")   # the originated leg: media only
        self.link(ch, other)
        # switch_ivr_multi_threaded_bridge copies the _aleg_ variants to bridge_pre_execute_app / _data, with
        # switch_channel_set_variable's check: data holding ${...} is refused (logged CRIT), never copied.
        aleg_app = ch.get_var("bridge_pre_execute_aleg_app")
        if aleg_app:
            ch.set_var("bridge_pre_execute_app", aleg_app)
            aleg_data = ch.get_var("bridge_pre_execute_aleg_data")
            if aleg_data and "${" not in aleg_data:
                ch.set_var("bridge_pre_execute_data", aleg_data)
        pre_app = ch.get_var("bridge_pre_execute_app")
        if pre_app:
            # The bridge's own thread runs it on the caller (data expanded there) as the bridge starts;
            # the legs are partners already, so a transfer or hang-up meanwhile ends the bridge as usual.
            pre_data = ch.expand(ch.get_var("bridge_pre_execute_data") or "")
            runner._log_exec(pre_app, pre_data)
            if pre_app == "playback":
                runner.play(pre_data)
        while True:
            runner.wait_until(lambda: ch.other is None or ch.hung_up or bool(runner.inline), None)
            if ch.other is None or ch.hung_up:
                break
            runner.run_inline()
        # att_xfer moving this leg on to another bridge (CF_REDIRECT): no hang-up after this bridge.
        redirected, ch.redirected = getattr(ch, "redirected", False), False
        if not ch.hung_up and other.hung_up and not redirected:
            if (ch.get_var("hangup_after_bridge") or "").lower() in ("true", "1", "yes"):
                gevent.spawn(self._hangup_after_bridge, ch)
        return "_none_"

    def _hangup_after_bridge(self, ch):
        self.wait_quietly(lambda: ch.runner.current is None or ch.hung_up, 2.0)
        self.hangup(ch, "NORMAL_CLEARING", by="agent")

    def att_xfer_app(self, runner: ChannelRunner, arg: str) -> str:
        """mod_dptools att_xfer (att_thread_run) on the agent's leg, its partner (the "bond") soft-held.

        The leg originates `arg` and, once answered, is bridged to it; DTMF on the leg: attxfer_hangup_key
        (default *) hangs this leg up, attxfer_cancel_key (#) hangs the target up. When that bridge ends: this
        leg gone and the target up -> uuid_bridge(target, bond), the transfer done; otherwise, this leg up ->
        uuid_bridge(leg, bond), back to the bond. An originate that fails changes nothing (the leg stays
        bridged to the bond as before).
        """
        ch = runner.ch
        bond = ch.other
        if bond is not None:
            ch.set_var("soft_holding_uuid", bond.uuid)
        keys = {name: ch.get_var(name) or default for name, default in (
            ("attxfer_hangup_key", "*"), ("attxfer_cancel_key", "#"))}
        timeout = float(ch.get_var("call_timeout") or 60)
        target, cause = self.ring(arg, {}, timeout, caller=ch)
        if target is None or ch.hung_up:
            if target is not None:
                self.hangup(target, "ORIGINATOR_CANCEL", by="switch")
            ch.set_var("originate_disposition", cause or "ORIGINATOR_CANCEL")
            ch.variables.pop("soft_holding_uuid", None)
            return "_none_"
        ch.inner_bridge = target.inner_bridge = True
        self.link(ch, target)     # the bond still points at this leg: its own bridge goes on, on hold
        runner.accept_digits = True
        while True:
            runner.wait_until(lambda: ch.hung_up or target.hung_up or ch.other is not target or
                              bool(runner.digits), None)
            if ch.hung_up or target.hung_up or ch.other is not target:
                break
            digit = runner.digits.popleft()
            if digit == keys["attxfer_hangup_key"]:
                self.hangup(ch, "NORMAL_CLEARING", by="agent")
            elif digit == keys["attxfer_cancel_key"]:
                self.hangup(target, "NORMAL_CLEARING", by="agent")
        ch.inner_bridge = target.inner_bridge = False
        if ch.other is target:
            self.unbridge(ch, hangup_peer=False)
        ch.variables.pop("soft_holding_uuid", None)
        if bond is None or bond.hung_up:
            if not target.hung_up:
                self.hangup(target, "NORMAL_CLEARING", by="switch")   # nobody left to bridge it to
            return "_none_"
        ch.set_var("signal_bond", bond.uuid)
        if not target.hung_up and ch.hung_up:
            winner = target
        elif not ch.hung_up:
            winner = ch
        else:
            winner = None
        if bond.other is ch:
            # The bond leaves its bridge with this leg for the new one (CF_REDIRECT: it is not hung up).
            bond.redirected = True
            self.unbridge(bond, hangup_peer=False)
        if winner is not None:
            winner.set_var("att_xfer_result", "success")
            gevent.spawn(self._uuid_bridge, winner, bond)
        return "_none_"

    def api_uuid_transfer(self, arg):
        p = arg.split()
        if len(p) < 2:
            return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
        ch = self._get(p[0])
        if ch is None:
            return "-ERR No such channel!\n"
        legs = "aleg"
        rest = p[1:]
        if rest[0] in ("-bleg", "-both"):
            legs = rest.pop(0)[1:]
        if not rest:
            return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
        dest = rest[0]
        dialplan = rest[1] if len(rest) > 1 else "XML"
        context = rest[2] if len(rest) > 2 else "default"
        targets = [ch]
        if legs == "bleg":
            targets = [ch.other] if ch.other else []
        elif legs == "both" and ch.other is not None:
            targets = [ch, ch.other]
        if len(targets) == 2:
            # both legs get their new caller profile first: the UNBRIDGE reads it (no Other-Leg block)
            for t in targets:
                lifecycle.transfer_profile(t, dest, dialplan, context, "bl_xfer")
                t.pending_state = "CS_ROUTING"
            self.unbridge(ch, hangup_peer=False)
        for n, t in enumerate(targets):
            self.transfer(t, dest, dialplan, context, profiled=len(targets) == 2)
            if n == 0 and len(targets) == 2:
                # the named leg gets there first (as captured: it is the conference's member 1)
                self.wait_quietly(lambda: t.hung_up or (not t.runner.to_route and t.runner.current is not None),
                                  1.0)
        return "+OK\n"

    def transfer(self, ch: FakeChannel, dest: str, dialplan: str = "XML", context: str = "default",
                 from_app: bool = False, profiled: bool = False) -> None:
        """Move a channel to a new destination (inline apps, an agent's extension, or park)."""
        # (Channel-Transfer-Time stays 0: the captures' uuid_transfer, inline and XML, never set it)
        ch.transfers.append((dest, dialplan, context))
        if not profiled:
            lifecycle.transfer_profile(ch, dest, dialplan, context, "bl_xfer" if not from_app else "xfer")
        ch.pending_state = "CS_ROUTING"   # what it ran ends reading state number 2, then it is routed
        ch.destination = dest
        call = ch.runner.call
        if call is not None:
            call.transfers.append((dest, dialplan, context))
        if ch.other is not None:
            self.unbridge(ch, hangup_peer=False)
        if not from_app and ch.runner.current is not None:
            ch.runner.interrupt()
        ch.runner.queue.clear()
        if call is not None and call.session is not None and ch.runner.socket_app is not None:
            # The channel leaves the extension that ran the socket application: the app loses control.
            app, data = ch.runner.socket_app
            ch.runner.socket_app = None
            gevent.spawn(self._socket_released, call, call.session, app, data)
        lifecycle.sort_cid(self, ch)   # the channel is given its new extension
        ch.hit_dialplan = True
        ch.runner.to_route = True
        if dialplan == "inline":
            lifecycle.inline_executes(ch)
            for item in dest.split(","):
                app, _, data = item.partition(":")
                ch.runner.enqueue(app, data)
        else:
            self._route_extension(ch, dest)

    def _socket_released(self, call, session, app, data):
        ch = call.channel
        self.wait_quietly(lambda: ch.runner.current is None or ch.runner.current.name != "transfer" or ch.hung_up,
                          2.0, "transfer complete")
        session.released = True
        # The socket app's own completion, seen by that socket before it is told to go.
        body = ch.event_body("CHANNEL_EXECUTE_COMPLETE", post=[
            ("Application", app), ("Application-Data", data), ("Application-Response", "_none_"),
            ("Application-UUID", new_uuid())])
        self.emit("CHANNEL_EXECUTE_COMPLETE", body)
        session.release()

    def eavesdrop_app(self, runner: ChannelRunner, target_uuid: str, mode: str = "listen") -> str:
        """eavesdrop/three_way on a supervisor leg; DTMF 2/1/3/0 switch whisper/other/three-way/listen."""
        target = self._get(target_uuid)
        if target is None:
            return "_none_"
        ch = runner.ch
        if mode == "listen":
            # The channel variables FreeSWITCH's eavesdrop reads pick the starting mode.
            truthy = lambda name: (ch.get_var(name) or "").lower() == "true"
            if truthy("eavesdrop_bridge_aleg") and truthy("eavesdrop_bridge_bleg"):
                mode = "three_way"
            elif truthy("eavesdrop_whisper_aleg"):
                mode = "whisper"
            elif truthy("eavesdrop_whisper_bleg"):
                mode = "whisper_other"
        # eavesdrop shows the supervisor who is listened to (as captured: last_sent_callee_id_*)
        ch.set_var("last_sent_callee_id_name", target.caller_name or target.caller_number)
        ch.set_var("last_sent_callee_id_number", target.caller_number)
        entry = Eavesdrop(runner.ch, target, mode)
        self.eavesdrops.append(entry)
        self.changed.pulse()
        runner.accept_digits = True
        while entry.active and not runner._stopped() and not target.hung_up:
            runner.wait_until(lambda: runner._stopped() or target.hung_up or bool(runner.digits) or
                              not entry.active, None)
            while runner.digits:
                d = runner.digits.popleft()
                if (ch.get_var("eavesdrop_enable_dtmf") or "true").lower() == "false":
                    continue
                if d in EAVESDROP_DTMF:
                    entry.modes.append(EAVESDROP_DTMF[d])
                    self.changed.pulse()
        entry.active = False
        self.changed.pulse()
        return "_none_"

    def conference_app(self, runner: ChannelRunner, arg: str) -> str:
        """Join a conference until hung up, kicked or transferred away."""
        name_part = arg.split("+", 1)[0]
        flags = re.findall(r"flags\{([^}]*)\}", arg)
        name, _, profile = name_part.partition("@")
        conf = self.conferences.get(name)
        if conf is None:
            conf = self.conferences[name] = Conference(name, profile or "default")
            conference.conference_event(self, conf, "conference-create")   # before anyone is in it
        ch = runner.ch
        member = Member(conf.next_id, ch, (flags[0].split("|") if flags else []))
        member.join_sim = self.sim_now()
        conf.next_id += 1
        # what mod_conference leaves on the member's channel; the conference reads its sound as L16
        for k, v in (("conference_name", conf.name), ("app_session_uuid", conf.uuid),
                     ("conference_member_id", member.id),
                     ("conference_moderator", "true" if "moderator" in member.flags else "false"),
                     ("conference_ghost", "false"), ("conference_uuid", conf.uuid)):
            ch.set_var(k, v)
        ch.read_codec = ("L16", 8000, 128000)
        conf.members.append(member)
        conference.joined(self, conf, member)
        self.changed.pulse()
        member.kicked = False
        runner.wait_until(lambda: runner._stopped() or member.kicked, None)
        conference.left(self, conf, member)
        ch.read_codec = None
        if not conf.members:
            self.conferences.pop(name, None)
        if getattr(member, "hup", False):
            # `conference hup`: out of the conference first (the application ends answered), then hung up
            gevent.spawn(self._hangup_after_bridge, ch)
        self.changed.pulse()
        return "_none_"

    def api_conference(self, arg):
        p = arg.split()
        if not p:
            return "-ERR Usage: conference <name> <cmd>\n"
        if p[0] == "list" and len(p) == 1:
            out = ""
            for conf in self.conferences.values():
                out += (f"+OK Conference {conf.name} ({len(conf.members)} member{'s' if len(conf.members) != 1 else ''}"
                        f" rate: 8000 flags: running|answered|enforce_min|dynamic|exit_sound|enter_sound)\n")
                out += self._conf_list(conf)
            return out or "+OK No active conferences.\n"
        conf = self.conferences.get(p[0])
        if conf is None:
            return f"-ERR Conference {p[0]} not found\n"
        sub = p[1] if len(p) > 1 else "list"
        if sub == "list":
            return self._conf_list(conf)
        if sub == "json_list":
            return self._conf_json(conf)
        if sub in ("hup", "kick") and len(p) > 2:
            # (mod_conference walks its member list newest first)
            members = list(reversed(conf.members)) if p[2] == "all" else [m for m in conf.members
                                                                          if str(m.id) == p[2]]
            if not members:
                return f"-ERR Non-Existant ID {p[2]}\n"
            for m in members:
                conference.member_event(self, conf, m, f"{sub}-member")
                m.hup = sub == "hup"
                m.kicked = True
                m.channel.runner.poke()
            return "".join(f"+OK {'hup' if sub == 'hup' else 'kicked'} {m.id}\n" for m in members)
        if sub in ("mute", "unmute", "deaf", "undeaf") and len(p) > 2:
            for m in conf.members:
                if p[2] == "all" or str(m.id) == p[2]:
                    (m.flags.add if sub in ("mute", "deaf") else m.flags.discard)(sub.replace("un", ""))
                    if sub in ("mute", "unmute"):
                        conference.member_event(self, conf, m, f"{sub}-member")
            return f"+OK {sub} {p[2]}\n"
        return f"-ERR Unknown conference command {sub}\n"

    def _conf_list(self, conf: Conference) -> str:
        out = ""
        for m in reversed(conf.members):
            flags = "hear" + ("" if "mute" in m.flags else "|speak") + ("|floor" if conf.floor is m else "") + \
                ("|moderator" if "moderator" in m.flags else "")
            out += (f"{m.id};{m.channel.name};{m.channel.uuid};{m.channel.caller_name};"
                    f"{m.channel.caller_number};{flags};0;0;100\n")
        return out

    def _conf_json(self, conf: Conference) -> str:
        members = [{"type": "caller", "id": m.id, "flags": {
            "can_hear": "deaf" not in m.flags, "can_see": True, "can_speak": "mute" not in m.flags,
            "hold": False, "mute_detect": False, "talking": False, "has_video": False, "video_bridge": False,
            "has_floor": conf.floor is m, "is_moderator": "moderator" in m.flags, "end_conference": False,
            "mandatory_member_end_conference": False, "pass_digits": False},
            "uuid": m.channel.uuid, "caller_id_name": m.channel.caller_name,
            "caller_id_number": m.channel.caller_number, "join_time": int(self.sim_now() - m.join_sim),
            "last_talking": 0, "energy": 100, "volume_in": 0, "volume_out": 0, "output-volume": 0,
            "input-volume": 0} for m in reversed(conf.members)]
        # the fields and their order as captured (mod_conference's conference_jlist)
        return cjson([{"conference_name": conf.name, "member_count": len(conf.members), "ghost_count": 0,
                       "rate": 8000, "run_time": int(time.monotonic() - conf.created),
                       "conference_uuid": conf.uuid, "canvas_count": 0, "max_bw_in": 0, "force_bw_in": 0,
                       "video_floor_packets": 0, "locked": False, "destruct": False, "wait_mod": False,
                       "audio_always": False, "running": True, "answered": True, "enforce_min": True,
                       "bridge_to": False, "dynamic": True, "exit_sound": True, "enter_sound": True,
                       "recording": False, "video_bridge": False, "video_floor_only": False,
                       "video_rfc4579": False, "variables": {}, "members": members}])

    def fax_app(self, runner: ChannelRunner, direction: str, path: str) -> str:
        """rxfax writes a real TIFF when the caller sends a fax; txfax sends an existing file."""
        ch = runner.ch
        sw = self
        runner.accept_digits = False
        if direction == "rx":
            pages = runner.fax_pages_to_send
            if pages <= 0:
                runner.wait_until(runner._stopped, 30.0)
                return self._fax_result(ch, "rx", False, 0, path, "48", "Disconnected after permitted retries")
            sw.emit_channel(ch, "CUSTOM", subclass="spandsp::rxfaxnegociateresult",
                            post=[("fax-success", "1"), ("fax-transfer-rate", "14400"), ("fax-ecm-used", "on")])
            for page in range(1, pages + 1):
                if runner.wait_until(runner._stopped, 10.0):
                    return self._fax_result(ch, "rx", False, page - 1, path, "49", "The call dropped prematurely")
                sw.emit_channel(ch, "CUSTOM", subclass="spandsp::rxfaxpageresult",
                                post=[("fax-document-transferred-pages", str(page))])
            audio.write_tiff(path, pages=pages)
            if runner.call is not None:
                runner.call.faxes.append(path)
            return self._fax_result(ch, "rx", True, pages, path, "0", "OK")
        if not Path(path).exists():
            return self._fax_result(ch, "tx", False, 0, path, "12", "Cannot open source TIFF file")
        if runner.wait_until(runner._stopped, 10.0):
            return self._fax_result(ch, "tx", False, 0, path, "49", "The call dropped prematurely")
        return self._fax_result(ch, "tx", True, 1, path, "0", "OK")

    def _fax_result(self, ch, direction, ok, pages, path, code, text) -> str:
        values = [("fax_success", "1" if ok else "0"), ("fax_result_code", code), ("fax_result_text", text),
                  ("fax_document_transferred_pages", str(pages)), ("fax_document_total_pages", str(pages)),
                  ("fax_transfer_rate", "14400"), ("fax_ecm_used", "on"), ("fax_filename", path)]
        for k, v in values:
            ch.set_var(k, v)
        self.emit_channel(ch, "CUSTOM", subclass=f"spandsp::{direction}faxresult",
                          post=[(k.replace("_", "-"), v) for k, v in values if k != "fax_filename"])
        return "_none_"


_CHANNEL_COLUMNS = (
    "uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num", "ip_addr", "dest",
    "application", "application_data", "dialplan", "context", "read_codec", "read_rate", "read_bit_rate",
    "write_codec", "write_rate", "write_bit_rate", "secure", "hostname", "presence_id", "presence_data",
    "accountcode", "callstate", "callee_name", "callee_num", "callee_direction", "call_uuid", "sent_callee_name",
    "sent_callee_num", "initial_cid_name", "initial_cid_num", "initial_ip_addr", "initial_dest",
    "initial_dialplan", "initial_context",
)


def cjson(v, depth: int = 0) -> str:
    """JSON formatted like cJSON_Print (tabs, `"key":\tvalue`, arrays as `[a, b]`), as conference json_list."""
    if isinstance(v, dict):
        if not v:
            return "{\n" + "\t" * depth + "}"
        items = ["\t" * (depth + 1) + json.dumps(k, ensure_ascii=False) + ":\t" + cjson(x, depth + 1)
                 for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + "\t" * depth + "}"
    if isinstance(v, list):
        return "[" + ", ".join(cjson(x, depth + 1) for x in v) + "]"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v), ensure_ascii=False)


def _unique_id(headers) -> str | None:
    for k, v in headers or ():
        if k == "Unique-ID":
            return v
    return None


def _dialstatus(cause: str) -> str:
    return {"USER_BUSY": "BUSY", "NO_ANSWER": "NOANSWER", "NO_USER_RESPONSE": "NOANSWER",
            "CALL_REJECTED": "BUSY", "ORIGINATOR_CANCEL": "CANCEL"}.get(cause, "CHANUNAVAIL")


def _strip_vars(dial: str) -> tuple[dict, str]:
    """Split a leading {a=b,c='d e'} or [..] block off a dial string."""
    variables: dict[str, str] = {}
    while dial[:1] in ("{", "["):
        close = "}" if dial[0] == "{" else "]"
        end = dial.find(close)
        if end < 0:
            break
        for item in _split_top(dial[1:end], ","):
            k, _, v = item.partition("=")
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                v = v[1:-1]
            if k.strip():
                variables[k.strip()] = v
        dial = dial[end + 1:]
    return variables, dial


def _split_top(s: str, sep: str) -> list[str]:
    out, cur, quote = [], "", ""
    for c in s:
        if quote:
            cur += c
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
            cur += c
        elif c == sep:
            out.append(cur)
            cur = ""
        else:
            cur += c
    if cur:
        out.append(cur)
    return out


def _split_outside_brackets(dial: str, sep: str) -> list[str]:
    """Split a dial string at ``sep`` where it is not inside a [per-leg] or {global} variable block."""
    parts, cur, depth = [], "", 0
    for c in dial:
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth = max(0, depth - 1)
        if c == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    parts.append(cur)
    return [p for p in parts if p.strip()]


def _split_dial(arg: str) -> tuple[str, list[str]]:
    """originate's arguments: the call URL (which may contain spaces inside {...}) and the rest."""
    arg = arg.strip()
    depth = 0
    quote = ""
    for i, c in enumerate(arg):
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"" and depth:
            quote = c
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
        elif c.isspace() and depth == 0:
            return arg[:i], _separate(arg[i:])
    return arg, []


def _separate(text: str) -> list[str]:
    """switch_separate_string on ' ': words, where a '...' or "..." span is one word without its quotes (so
    `'&socket(127.0.0.1:8084 async full)'` stays one argument; unquoted, its spaces split it)."""
    words, word, quote, started = [], "", "", False
    for c in text:
        if quote:
            if c == quote:
                quote = ""
            else:
                word += c
        elif c in "'\"":
            quote, started = c, True
        elif c.isspace():
            if word or started:
                words.append(word)
            word, started = "", False
        else:
            word += c
    if word or started:
        words.append(word)
    return words


def _dial_target(dial: str) -> tuple[str, str | None]:
    """(number, kind) for a single dial string; kind is user, gateway, loopback, error or None."""
    parts = dial.split("/")
    if parts[0] == "user" and len(parts) >= 2:
        return parts[1].split("@")[0], "user"
    if parts[0] == "sofia" and len(parts) >= 3:
        if parts[1] == "gateway" and len(parts) >= 4:
            return parts[3].split("@")[0], "gateway"
        target = "/".join(parts[2:])
        target = target[4:] if target.startswith("sip:") else target
        return target.split("@")[0], "user"
    if parts[0] == "loopback" and len(parts) >= 2:
        return parts[1], "loopback"
    if parts[0] == "error":
        return (parts[1] if len(parts) > 1 else ""), "error"
    return "", None
