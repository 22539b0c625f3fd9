"""Outbound mode: a call that reaches `socket <app> async full`, and the scripted caller on it.

The fake connects to the application's socket server, waits for `connect`, replies with the channel data,
then answers commands (myevents, linger, event, sendmsg, api, bgapi...) while the channel runs the
applications the app asks for.
"""
from __future__ import annotations

import logging
import time

import gevent
from gevent import socket as gsocket
from gevent.event import Event

from . import wire
from .apps import ChannelRunner, Pulse
from .esl import FORMATS, EslConnection
from .listener import MYEVENTS
from .script import ScriptError

log = logging.getLogger(__name__)


class SocketSession(EslConnection):
    """The switch side of one outbound socket connection."""

    def __init__(self, switch, sock, call):
        super().__init__(switch, sock)
        self.call = call
        self.owned_uuid = call.channel.uuid
        self.connected = False
        self.linger: int | None = None     # None: no linger; -1: until the client closes; N: seconds
        self.resume = False
        self.done_sent = False
        self.released = False              # the channel left the socket app but lives on (transfer)

    def run(self) -> None:
        try:
            self.serve("on the outbound socket")
        finally:
            self.close()
            ch = self.call.channel
            if not ch.hung_up and not self.released:
                if self.dropped:
                    # A test that drops the socket plays a switch-side failure: the channel goes at once.
                    self.sw.hangup(ch, "NORMAL_CLEARING", by="switch")
                else:
                    gevent.spawn(self._after_socket, ch)
            self.call._session_closed(self)

    def _after_socket(self, ch) -> None:
        """The app closed the socket (or said exit) without hanging up: like the real switch, the `socket`
        app returns only when the application in progress (and any already queued) ends, then the
        dialplan's `hangup` runs: NORMAL_CLEARING when answered, NORMAL_TEMPORARY_FAILURE (SIP 503)
        when not.  A park or an endless playback so goes on until the caller hangs up."""
        runner = self.call.runner
        dropped = self.call.app_address
        runner.wait_until(lambda: ch.hung_up or (runner.current is None and not runner.queue), None)
        if ch.hung_up:
            return
        if self.call.standby is not None:
            self.call.failover(dropped)  # the pair dialplan's next actions (freeswitch-conf)
            return
        runner.enqueue("hangup", "NORMAL_CLEARING" if ch.answered else "NORMAL_TEMPORARY_FAILURE")

    def _handle(self, cmd: wire.Command) -> None:
        if self.sw.reply_delay:
            gevent.sleep(self.sw.reply_delay)   # a saturated switch: every reply late, in order
        word, _, rest = cmd.line.partition(" ")
        lw = word.lower()
        ch = self.call.channel
        if lw == "connect":
            self.connected = True
            self.send(wire.channel_data_reply(self.sw.common_headers("CHANNEL_DATA", origin=(
                "mod_event_socket.c", "parse_command", "2029")) + ch.channel_data()))
            self.call.connected.set()
            self.call.runner.poke()
            return
        if self.handle_common(cmd):
            return
        if lw == "myevents":
            for w in rest.split():
                if w.lower() in FORMATS:
                    self.fmt = "json" if w.lower() == "json" else "plain"
            self.session_uuid = ch.uuid
            self.subscribe(sorted(MYEVENTS))
            self.send(wire.command_reply("+OK Events Enabled"))
        elif lw == "linger":
            secs = rest.strip()
            if secs.isdigit() and int(secs) > 0:
                self.linger = int(secs)
                self.send(wire.command_reply(f"+OK will linger {self.linger} seconds"))
            else:
                self.linger = -1
                self.send(wire.command_reply("+OK will linger"))
        elif lw == "nolinger":
            self.linger = None
            self.send(wire.command_reply("+OK will not linger"))
        elif lw == "resume":
            self.resume = True
            self.send(wire.command_reply("+OK"))
        elif lw == "sendmsg":
            target = rest.strip() or ch.uuid
            self.sendmsg(target, cmd)
        elif lw == "getvar":
            self.send(wire.command_reply(ch.get_var(rest.strip(), "") or ""))
        else:
            self.send(wire.command_reply("-ERR command not found"))

    def channel_done(self) -> None:
        """After CHANNEL_HANGUP_COMPLETE: linger notice and wait, or disconnect notice and close."""
        if self.done_sent or self.closed:
            return
        self.done_sent = True
        ch = self.call.channel
        if self.linger is not None:
            self.send(wire.linger_notice(ch.uuid, ch.name, self.linger))
            if self.linger > 0:
                gevent.spawn(self._close_after_linger, self.linger)
            return
        self.send(wire.disconnect_notice(ch.uuid))
        self.close()

    def release(self) -> None:
        """The channel was transferred out of the socket application: disconnect notice, close."""
        self.released = True
        if not self.closed:
            self.send(wire.disconnect_notice(self.call.channel.uuid))
            self.close()

    def _close_after_linger(self, seconds: int) -> None:
        gevent.sleep(seconds * self.sw.time_scale)
        if not self.closed:
            self.send(wire.disconnect_notice(self.call.channel.uuid))
            self.close()


class FakeCall:
    """A caller on a channel handled by the app's outbound socket server. Created by FakeSwitch.place_call."""

    def __init__(self, switch, channel, app_address, script, connect_timeout: float = 5.0, runner=None,
                 standby=None):
        self.sw = switch
        self.channel = channel
        self.uuid = channel.uuid
        self.caller = channel.caller_number
        self.destination = channel.destination
        self.app_address = tuple(app_address)
        self.primary = self.app_address                      # the dialplan's first socket address
        self.standby = tuple(standby) if standby else None   # the dialplan's second socket address
        self.script = list(script or [])
        self.connect_timeout = connect_timeout
        # A channel that reaches the socket later (originated, transferred) keeps its running runner.
        self.runner = runner or ChannelRunner(switch, channel, call=self)
        self.runner.call = self
        channel.runner = self.runner
        self.runner.socket_app = ("socket", f"{app_address[0]}:{app_address[1]} async full")
        # what the socket application leaves on the channel (the connect reply shows them)
        channel.set_var("current_application_data", f"{app_address[0]}:{app_address[1]} async full")
        channel.set_var("current_application", "socket")
        channel.set_var("socket_host", app_address[0])
        self.sessions: list[SocketSession] = []   # one per time the channel entered the socket app
        self.session: SocketSession | None = None
        self.connected = Event()
        self.ended = Event()
        self.changed = Pulse()           # this call's own wake-ups (a thousand calls must not wake each other)
        self.executed: list[tuple[str, str]] = []
        self.played: list[str] = []
        self.not_found: list[str] = []
        self.spoken: list[str] = []
        self.collected: list[str] = []
        self.recordings = []
        self.faxes: list[str] = []
        self.bridged_to = []               # agent legs this call was bridged to
        self.transfers: list[tuple[str, str, str]] = []
        self.pressed: str = ""
        self.script_error: Exception | None = None
        self.connect_error: Exception | None = None
        self._exec_cursor = 0
        self._script_greenlet = None

    # -- outcome ----------------------------------------------------------------------------------------
    @property
    def hangup_cause(self) -> str | None:
        return self.channel.hangup_cause

    @property
    def hangup_by(self) -> str | None:
        """Who ended the call: "caller", "app" (hangup/socket closed), "switch", "agent"."""
        return self.channel.hangup_by

    @property
    def variables(self) -> dict[str, str]:
        return self.channel.variables

    @property
    def sent(self) -> list[bytes]:
        """Frames the fake wrote on this call's socket."""
        return self.session.sent if self.session else []

    @property
    def commands(self):
        """Commands the app sent on this call's socket."""
        return self.session.commands if self.session else []

    def wait_ended(self, timeout: float = 10.0) -> "FakeCall":
        """Wait until the channel is torn down and the socket notice sent; TimeoutError otherwise."""
        if not self.ended.wait(timeout):
            raise TimeoutError(f"call {self.uuid} did not end within {timeout}s; executed={self.executed}")
        return self

    def wait_connected(self, timeout: float = 5.0) -> "FakeCall":
        """Wait until the app sent `connect`."""
        if not self.connected.wait(timeout):
            raise TimeoutError(f"app did not send connect within {timeout}s")
        return self

    def wait_for_app(self, app: str, timeout: float = 10.0) -> None:
        """Wait until the app has executed `app` at least once (not consuming the script cursor)."""
        self._wait(lambda: any(a == app for a, _ in self.executed) or self.ended.is_set(), timeout, app)
        if not any(a == app for a, _ in self.executed):
            raise TimeoutError(f"{app} was not executed; executed={self.executed}")

    # -- caller actions (also usable from a test directly) ------------------------------------------
    def press(self, digits: str, interval: float = 0.1) -> None:
        """Press digits now."""
        self._press(digits, interval)

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """The caller hangs up now."""
        self.sw.hangup(self.channel, cause, by="caller")

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> "FakeCall":
        self.runner.start()
        gevent.spawn(self._connect)
        return self

    def _connect(self, addresses=None, hang_up: bool = True) -> bool:
        """The dialplan's socket actions in order (the app's address, then the pair's standby): the first
        that accepts gets the call. None accepting: hang up (unless ``hang_up`` is False). True if one did."""
        sock = None
        addresses = [a for a in (addresses or (self.app_address, self.standby)) if a]
        for i, address in enumerate(addresses):
            if i > 0:
                # The previous socket app returned at once (refused): the dialplan's next socket action.
                self.runner.socket_app = ("socket", f"{address[0]}:{address[1]} async full")
                self.channel.executed.append(("socket", f"{address[0]}:{address[1]} async full"))
            try:
                sock = gsocket.create_connection(address, timeout=self.connect_timeout)
                sock.settimeout(None)
            except OSError as exc:
                log.info("fake switch: cannot reach the app at %s: %s", address, exc)
                self.connect_error = exc
                continue
            self.app_address, self.connect_error = tuple(address), None
            break
        if sock is None:
            if hang_up:
                self.sw.hangup(self.channel, "NORMAL_CLEARING", by="switch")
            return False
        self.session = SocketSession(self.sw, sock, self)
        self.sessions.append(self.session)
        # Async mode parks the channel once the app is connected (CHANNEL_UNPARK comes at hang-up).
        self.sw.emit_channel(self.channel, "CHANNEL_PARK")
        self.sw.add_listener(self.session)
        self.session.greenlet = gevent.spawn(self.session.run)
        if self._script_greenlet is None:
            self._script_greenlet = gevent.spawn(self._run_script)
        return True

    def failover(self, dropped) -> None:
        """freeswitch-conf's pair dialplan after a socket app returned with the channel still up (the app
        died): the standby's socket when the primary's returned; then, unless the app had bridged the caller
        to someone, the hotline-failover extension: ``switch.failover_wait`` wall seconds, both addresses
        again; then the dialplan's hangup."""
        ch = self.channel
        if tuple(dropped) == self.primary and self.standby and self._connect([self.standby], hang_up=False):
            return
        if ch.hung_up:
            return
        if not ch.variables.get("last_bridge_to"):
            ch.executed.append(("execute_extension", "hotline-failover XML default"))
            gevent.sleep(self.sw.failover_wait)
            if ch.hung_up:
                return
            self.connected.clear()
            if self._connect([self.primary, self.standby], hang_up=False):
                return
        if not ch.hung_up:
            self.runner.enqueue("hangup", "NORMAL_CLEARING" if ch.answered else "NORMAL_TEMPORARY_FAILURE")

    def reenter(self, app_address) -> None:
        """The channel was transferred (back) to an extension that runs the socket app: connect again."""
        self.app_address = tuple(app_address)
        self.runner.socket_app = ("socket", f"{app_address[0]}:{app_address[1]} async full")
        self.channel.set_var("current_application_data", f"{app_address[0]}:{app_address[1]} async full")
        self.channel.set_var("current_application", "socket")
        self.channel.set_var("socket_host", app_address[0])
        self.connected.clear()
        gevent.spawn(self._connect)

    def _run_script(self) -> None:
        try:
            for step in self.script:
                if self.channel.hung_up:
                    return
                step.run(self)
        except ScriptError as exc:
            self.script_error = exc
            log.info("fake switch: caller script stopped: %s", exc)
            self.hangup()

    def _channel_done(self) -> None:
        if self.session is not None:
            self.session.channel_done()
        if self.session is None or self.session.closed:
            self._finish()
        elif self.session.linger is not None:
            # The call is over once the notice is out; the socket may linger until the client closes.
            self._finish()

    def _session_closed(self, session=None) -> None:
        self.sw.remove_listener(session or self.session)
        if self.channel.hung_up and self.runner.ended.is_set():
            self._finish()

    def _finish(self) -> None:
        if not self.ended.is_set():
            self.ended.set()
            self.changed.pulse()
            self.sw.changed.pulse()
            if self._script_greenlet is not None and not self._script_greenlet.dead:
                self._script_greenlet.kill(block=False)

    # -- helpers used by script steps ----------------------------------------------------------------
    def _wait(self, pred, timeout: float, what: str) -> None:
        if not self.changed.wait_for(pred, time.monotonic() + timeout):
            raise ScriptError(f"timed out after {timeout}s waiting for {what}; executed={self.executed}")

    def _sleep_sim(self, seconds: float) -> None:
        self.changed.wait_for(lambda: self.channel.hung_up, time.monotonic() + seconds * self.sw.time_scale)

    def _wait_execution(self, app, arg_contains, timeout) -> None:
        def found():
            for i in range(self._exec_cursor, len(self.executed)):
                a, arg = self.executed[i]
                if (app is None or a == app) and (arg_contains is None or arg_contains in arg):
                    self._exec_cursor = i + 1
                    return True
            return False
        self._wait(lambda: found() or self.channel.hung_up, timeout, f"execution of {app or 'any app'}")
        if self.channel.hung_up:
            raise ScriptError(f"call ended while waiting for {app}")

    def _wait_input(self, kind: str, timeout: float) -> None:
        def ready():
            slot = self.runner.input
            if slot is None or not slot.active:
                return False
            if kind == "record":
                return slot.kind == "record" and not slot.spoken
            return not slot.pressed
        self._wait(lambda: ready() or self.channel.hung_up, timeout, f"a chance to {kind}")
        if self.channel.hung_up:
            raise ScriptError(f"call ended while waiting to {kind}")
        slot = self.runner.input
        if kind == "record":
            slot.spoken = True
        else:
            slot.pressed = True

    def _press(self, digits: str, interval: float) -> None:
        for i, d in enumerate(digits):
            if self.channel.hung_up:
                return
            if i:
                self._sleep_sim(interval)
            self.pressed += d
            self.runner.dtmf(d)

    def _speak(self, seconds: float) -> None:
        self.runner.start_speech()
        try:
            self._sleep_sim(seconds)
        finally:
            self.runner.stop_speech()

    def __repr__(self) -> str:
        return f"FakeCall({self.uuid[:8]} {self.caller}->{self.destination} {self.hangup_cause or 'up'})"
