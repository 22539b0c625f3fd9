"""CallSession: one outbound-socket call (FreeSWITCH's `socket ... async full`), driven by one greenlet.

The call's greenlet calls execute()/playback()/... which send `sendmsg` with a fresh Event-UUID and wait
for the CHANNEL_EXECUTE_COMPLETE whose Application-UUID matches.  A small reader greenlet (from
switch.protocol) reads the socket meanwhile: it records DTMF, wakes the matching waiter, and on a
hang-up (CHANNEL_HANGUP, a disconnect notice, the socket closing) fails every wait with CallHangup.
"""
from __future__ import annotations

import collections
import itertools
import logging
import sys
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any, Callable

import gevent
import gevent.event
import greenswitch.esl

from switch.codec import Frame
from switch.errors import CallHangup, CommandFailed, SwitchError, SwitchTimeout
from switch.events import DOMAIN_EVENT_NAMES, OUTBOUND_EXTRA_EVENTS, SwitchEvent, to_domain
from switch.protocol import FramedProtocol

log = logging.getLogger(__name__)

DTMF_BUFFER = 64            # digits kept for the app; older ones drop off (a stuck key cannot grow memory)
_var_counter = itertools.count(1)
# what a session reads itself; other events are only parsed when an on_event callback can use them
_SESSION_EVENTS = frozenset({"CHANNEL_EXECUTE_COMPLETE", "DTMF", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"})


# The channel variables a call keeps from its CHANNEL_DATA besides the app's own (variable_hotline_*): read by
# the IVR runner (recorder.fax.fax_tone_detected) and for the uuid.
KEPT_VARIABLES = frozenset({"variable_uuid", "variable_fax_tone_detected"})
SHARED_VALUE_LENGTH = 16    # kept values up to this long are interned (uuids, times and numbers' names are longer)
_intern = sys.intern


def kept_channel_data(data: dict[str, str]) -> dict[str, str]:
    """What a call keeps of its CHANNEL_DATA for its life: the channel's and caller's own headers, and of the
    channel variables only ``KEPT_VARIABLES`` and the app's own (``variable_hotline_*``: campaign attempts,
    hand-back marks, fax detection). A real sofia channel sends about 90 more variables (SIP headers, codecs,
    RTP): 29 KiB of strings a call, half of it never read (issue 15 item 11). A variable read later comes from
    the event that carries it or ``uuid_getvar``, as the channel's variables change during the call.

    The names, and the short values most calls share ("inbound", "CS_EXECUTE", "mod_sofia", "public"), are
    interned: one string for all calls instead of one each (about 9 of the 14 KiB a call kept at 150 calls
    up)."""
    return {_intern(name): _intern(value) if len(value) <= SHARED_VALUE_LENGTH else value
            for name, value in data.items()
            if not name.startswith("variable_") or name.startswith("variable_hotline_") or name in KEPT_VARIABLES}


class ExecuteResult:
    """What CHANNEL_EXECUTE_COMPLETE said: Application-Response and the channel variables (no prefix).

    The variables dict is built on first use: most executes (answer, playback, set) never read it.
    """

    __slots__ = ("app", "response", "_variables", "_event")

    def __init__(self, app: str, response: str, variables: dict[str, str] | None = None, *,
                 event: dict[str, str] | None = None):
        self.app = app
        self.response = response
        self._variables = variables
        self._event = event

    @property
    def variables(self) -> dict[str, str]:
        """Channel variables after the application ran, without the variable_ prefix."""
        if self._variables is None:
            event = self._event or {}
            self._variables = {k[9:]: v for k, v in event.items() if k.startswith("variable_")}
        return self._variables

    def variable(self, name: str) -> str:
        """One channel variable (no prefix) without building the whole dict ("" when not set)."""
        if self._variables is not None:
            return self._variables.get(name, "")
        return (self._event or {}).get(f"variable_{name}", "")

    def __eq__(self, other) -> bool:
        if not isinstance(other, ExecuteResult):
            return NotImplemented
        return (self.app, self.response, self.variables) == (other.app, other.response, other.variables)

    def __repr__(self) -> str:
        return f"ExecuteResult(app={self.app!r}, response={self.response!r})"


@dataclass(frozen=True)
class RecordResult:
    """A finished `record`: the file, the key that ended it ("" for silence/time limit), its length."""

    path: str
    terminator: str = ""
    duration_ms: int | None = None


def _single_token(value: str, what: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"{what} must be one non-empty word without spaces: {value!r}")
    return value


class _OutboundChannel(FramedProtocol, greenswitch.esl.OutboundSession):
    """greenswitch's OutboundSession (connect/myevents/linger/session_data) on our framed reader.

    OutboundSession matches EXECUTE_COMPLETE by application name (two playbacks in a row are confused),
    waits without timeout, and spawns a polling event-processing greenlet per call; we keep its command
    vocabulary and let CallSession do the correlation by Application-UUID.
    """

    def __init__(self, sock, address, owner: "CallSession", reply_timeout: float):
        self._owner = owner
        self._setup_framing(f"call {address[0]}:{address[1]}", reply_timeout)
        super().__init__(address, sock)
        # greenswitch opened a file object for its readline() reader; we recv() directly. Its event queue
        # and handler table feed its process_events greenlet, which never runs here: dropped, a few KiB a
        # call (issue 15 item 11)
        self.sock_file.close()
        self.sock_file = self._esl_event_queue = None
        self.event_handlers = {}

    def on_event_frame(self, frame: Frame) -> None:
        self._owner._on_event(frame)

    def on_disconnect_notice(self, frame: Frame) -> None:
        self._owner._on_disconnect_notice(frame)

    def on_closed(self, reason: str) -> None:
        self._owner._on_closed(reason)

    def _lost_error(self, reason: str) -> SwitchError:
        return CallHangup(self._owner.hangup_cause or "SOCKET_CLOSED", self._owner.uuid)


class CallSession:
    """One call on the outbound socket; see the module docstring.  Not safe to drive from two greenlets."""

    def __init__(self, sock, address, *, reply_timeout: float = 10.0):
        self.peer = (address[0], address[1])
        self.server = f"{address[0]}:{address[1]}"
        self.uuid = ""
        self.caller = ""
        self.destination = ""
        self.channel_data: dict[str, str] = {}
        self.hung_up = False
        self.hangup_cause = ""
        self.dtmf: collections.deque[str] = collections.deque(maxlen=DTMF_BUFFER)
        self._callbacks: list[Callable[[SwitchEvent], None]] = []
        self._executions: dict[str, gevent.event.AsyncResult] = {}
        self._hangup_event = gevent.event.Event()
        self._terminators: str | None = None
        self._terminator_left = False   # playback_terminator_used is set on the channel from an earlier app
        self._channel = _OutboundChannel(sock, address, self, reply_timeout)

    # --- set-up -------------------------------------------------------------------------------------------

    def setup(self, linger: bool | int = True, extra_events=OUTBOUND_EXTRA_EVENTS, subscribe: bool = True) -> None:
        """connect (channel data), then unless subscribe=False: myevents, `event plain` for what myevents
        lacks, and linger (so the last events still arrive after the hang-up)."""
        self._channel.connect()       # greenswitch: send('connect'), keeps the reply headers as session_data
        data = kept_channel_data(self._channel.session_data or {})
        self.channel_data = self._channel.session_data = data
        self.uuid = data.get("Unique-ID") or data.get("Channel-Unique-ID") or data.get("variable_uuid", "")
        self.caller = data.get("Caller-Caller-ID-Number", "") or data.get("Channel-Caller-ID-Number", "")
        self.destination = data.get("Caller-Destination-Number", "") or data.get("Channel-Destination-Number", "")
        self._channel.name = f"call {self.uuid[:8]} ({self.caller}->{self.destination})"
        if not subscribe:
            return
        self._checked("myevents")
        if extra_events:
            self._checked("event plain " + " ".join(extra_events))
        if linger:
            self._checked("linger" if linger is True else f"linger {int(linger)}")

    def _checked(self, command: str, headers=None, body=None, timeout=None) -> Frame:
        reply = self._channel.send(command, headers, body, timeout)
        if not reply.ok:
            raise CommandFailed(command, reply.reply_text or reply.body.strip())
        return reply

    # --- dialplan applications ---------------------------------------------------------------------------

    def execute(self, app: str, arg: str = "", timeout: float = 60.0) -> ExecuteResult:
        """Run a dialplan application and wait for its CHANNEL_EXECUTE_COMPLETE (matched by Event-UUID).

        Raises CallHangup when the call ends first, SwitchTimeout after `timeout` seconds.
        """
        _single_token(app, "application name")
        if self.hung_up:
            raise CallHangup(self.hangup_cause, self.uuid)
        event_uuid = str(uuidlib.uuid4())
        waiter = gevent.event.AsyncResult()
        self._executions[event_uuid] = waiter
        headers = {"call-command": "execute", "execute-app-name": app, "Event-UUID": event_uuid}
        body = None
        if "\n" in arg or "\r" in arg:
            body = arg                        # FreeSWITCH takes a multi-line argument as the message body
        elif arg:
            headers["execute-app-arg"] = arg
        try:
            self._checked("sendmsg", headers, body)
            try:
                frame = waiter.get(timeout=timeout)
            except gevent.Timeout:
                raise SwitchTimeout(f"{app} on {self.uuid} did not complete within {timeout}s") from None
        finally:
            self._executions.pop(event_uuid, None)
        event = frame.event
        # FreeSWITCH leaves playback_terminator_used in place after the app that set it; record() clears it
        self._terminator_left = bool(event.get("variable_playback_terminator_used"))
        return ExecuteResult(app, event.get("Application-Response", ""), event=event)

    def answer(self) -> None:
        """Answer the call."""
        self.execute("answer", timeout=30.0)

    def playback(self, path: str, timeout: float = 120.0, terminators: str | None = None) -> ExecuteResult:
        """Play a file (or tone_stream://, silence_stream://) to the end.

        ``terminators``: the keys that stop it ("" none; None: whatever the channel has, FreeSWITCH's default
        "*"). The playback app takes every key pressed while it plays off the channel (a key that does not
        stop it is gone) and clears then sets ``playback_terminator_used``: ``result.variable(...)`` is the
        key that stopped this playback, "" when it played to the end.
        """
        if terminators is not None and (terminators or "none") != self._terminators:
            self.set("playback_terminators", terminators or "none")
        return self.execute("playback", path, timeout=timeout)

    def play_and_get_digits(self, min_digits: int, max_digits: int, tries: int, timeout_ms: int,
                            terminators: str, file: str, invalid_file: str = "silence_stream://250",
                            regex: str = "\\d+", digit_timeout_ms: int = 3000, timeout: float = 120.0) -> str:
        """Play a prompt and collect digits; "" when nothing valid was entered."""
        for value, what in ((file, "file"), (invalid_file, "invalid_file"), (regex, "regex"),
                            (terminators, "terminators")):
            _single_token(value, what)
        # a fresh variable per call: FreeSWITCH leaves the old value in place when nothing is entered
        var = f"hotline_digits_{next(_var_counter)}"
        arg = (f"{int(min_digits)} {int(max_digits)} {int(tries)} {int(timeout_ms)} {terminators} {file} "
               f"{invalid_file} {var} {regex} {int(digit_timeout_ms)}")
        result = self.execute("play_and_get_digits", arg, timeout=timeout)
        self.dtmf.clear()                    # FreeSWITCH consumed these digits
        return result.variables.get(var, "")

    def record(self, path: str, max_seconds: int, silence_threshold: int = 200, silence_seconds: int = 5,
               timeout: float | None = None, terminators: str = "#") -> RecordResult:
        """Record the caller to `path` until a terminator key, silence or max_seconds."""
        _single_token(path, "path")
        if (terminators or "none") != self._terminators:
            self.set("playback_terminators", terminators or "none")
        timeout = timeout if timeout is not None else max_seconds + 30.0
        if self._terminator_left:
            # else a record ended by silence would report the key that ended an earlier record or playback
            self.execute("unset", "playback_terminator_used", timeout=10.0)
        result = self.execute("record", f"{path} {int(max_seconds)} {int(silence_threshold)} {int(silence_seconds)}",
                              timeout=timeout)
        self.dtmf.clear()
        ms = result.variables.get("record_ms", "")
        return RecordResult(path, result.variables.get("playback_terminator_used", ""),
                            int(ms) if ms.isdigit() else None)

    def bridge(self, target: str, timeout: float = 120.0) -> ExecuteResult:
        """Bridge the caller to `target` (a dial string); returns when the bridge ends or fails."""
        return self.execute("bridge", target, timeout=timeout)

    def set(self, name: str, value: str) -> None:
        """Set a channel variable."""
        _single_token(name, "variable name")
        if "=" in name:
            raise ValueError(f"variable name must not contain '=': {name!r}")
        self.execute("set", f"{name}={value}", timeout=10.0)
        if name == "playback_terminators":
            self._terminators = value        # record() only re-sets it when it differs

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """Hang the call up (no-op when it already ended or the socket is gone)."""
        _single_token(cause, "hangup cause")
        if not self._channel.connected:
            return
        try:
            self._checked("sendmsg", {"call-command": "hangup", "hangup-cause": cause})
        except CallHangup:
            pass        # the socket closed under us: the channel is gone anyway

    def api(self, command: str, timeout: float = 10.0) -> str:
        """Run an API command over this call's socket and return its output."""
        return self._channel.send(f"api {command}", timeout=timeout).body

    def on_event(self, callback: Callable[[SwitchEvent], None]) -> None:
        """Call `callback(domain_event)` for this channel's events; runs in the reader: must not block."""
        self._callbacks.append(callback)

    def wait_for(self, waitable: Any, timeout: float) -> Any:
        """Wait for a gevent Event/AsyncResult while watching the call: CallHangup if it ends first."""
        if self.hung_up:
            raise CallHangup(self.hangup_cause, self.uuid)
        ready = gevent.wait([waitable, self._hangup_event], timeout=timeout, count=1)
        if waitable in ready:
            return waitable.get() if hasattr(waitable, "get") else True
        if self.hung_up:
            raise CallHangup(self.hangup_cause, self.uuid)
        raise SwitchTimeout(f"waited {timeout}s on call {self.uuid}")

    def wait_hangup(self, timeout: float) -> bool:
        """Block until the call has ended; True when it has."""
        return self._hangup_event.wait(timeout)

    @property
    def connected(self) -> bool:
        """True while the outbound socket is open."""
        return self._channel.connected

    def close(self, hangup_timeout: float | None = None, cause: str = "NORMAL_CLEARING") -> None:
        """Hang up with `cause` if the channel is still up, then close the socket.

        The explicit hang-up matters: a real FreeSWITCH only ends the `socket` app when the socket closes,
        and the channel then goes on with whatever it was doing (a playback runs to its end, a `park`
        stays parked, a bridge stays up) before the dialplan's next action; nobody would be in control.
        The hang-up waits at most hangup_timeout (default: the reply timeout, at most 5 s) for the +OK.
        Safe to call from another greenlet than the call's (sends are serialised).
        """
        _single_token(cause, "hangup cause")
        if hangup_timeout is None:
            hangup_timeout = min(5.0, self._channel.reply_timeout)
        if not self.hung_up and self._channel.connected:
            try:
                self._checked("sendmsg", {"call-command": "hangup", "hangup-cause": cause},
                              timeout=hangup_timeout)
            except SwitchError as exc:
                log.debug("%s: hangup on close: %s", self._channel.name, exc)
        self._channel.stop()

    # --- reader side (runs in the reader greenlet; never blocks) -----------------------------------------

    def _on_event(self, frame: Frame) -> None:
        name = frame.event_name
        if not name:                         # malformed (every event has a name): report it
            self._channel.parsed_event(frame)
            return
        if name not in _SESSION_EVENTS and not (self._callbacks and name in DOMAIN_EVENT_NAMES):
            return                           # CHANNEL_EXECUTE, CHANNEL_STATE ...: never parsed
        event = self._channel.parsed_event(frame)
        if event is None:
            return
        name = event.get("Event-Name")
        channel = event.get("Unique-ID", "")
        if name == "CHANNEL_EXECUTE_COMPLETE":
            waiter = self._executions.pop(event.get("Application-UUID", ""), None)
            if waiter is not None:
                waiter.set(frame)
        elif name == "DTMF":
            self.dtmf.append(event.get("DTMF-Digit", ""))
        elif name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE") and (not self.uuid or channel == self.uuid):
            self._mark_hung_up(event.get("Hangup-Cause", "") or "NORMAL_CLEARING")
        if self._callbacks:
            domain = to_domain(event, self.server, frame.event_body)
            if domain is not None:
                for callback in list(self._callbacks):
                    try:
                        callback(domain)
                    except Exception:       # a listener's bug must not stop the call's reader
                        log.exception("%s: event callback %r failed", self._channel.name, callback)

    def _on_disconnect_notice(self, frame: Frame) -> None:
        # linger: the channel hung up and FreeSWITCH keeps the socket for the remaining events;
        # disconnect: the socket closes right after
        self._mark_hung_up(self.hangup_cause or "NORMAL_CLEARING")

    def _on_closed(self, reason: str) -> None:
        self._mark_hung_up(self.hangup_cause or ("PROTOCOL_ERROR" if reason.startswith("protocol") else "SOCKET_CLOSED"))

    def _mark_hung_up(self, cause: str) -> None:
        if self.hung_up:
            return
        self.hung_up = True
        self.hangup_cause = cause
        error = CallHangup(cause, self.uuid)
        waiters, self._executions = self._executions, {}
        for waiter in waiters.values():
            waiter.set_exception(error)
        self._hangup_event.set()
        log.debug("%s: hung up (%s)", self._channel.name, cause)
