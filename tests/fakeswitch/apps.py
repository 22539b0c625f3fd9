"""Dialplan applications on a fake channel: an execute queue run by one greenlet per channel, as in
FreeSWITCH's async socket mode (sendmsg execute queues; apps run one at a time; hang-up interrupts).
The applications that play, gather digits and record, and the caller's input they take, are in
playrecord.py (``PlayAndRecord``, mixed into ``ChannelRunner``); the rest are here.

Durations are simulated seconds; the switch's `time_scale` turns them into wall-clock waits.
"""
from __future__ import annotations

import logging
import time
from collections import deque

import gevent
from gevent.event import Event

from . import lifecycle
from .channel import Q850, new_uuid, now_us
from .playrecord import InputSlot, PlayAndRecord, Recording  # noqa: F401 Recording: its former home

log = logging.getLogger(__name__)

# Applications the fake knows. Anything else: +OK, then the channel hangs up DESTINATION_OUT_OF_ORDER and no
# EXECUTE_COMPLETE ever comes for it, as on the real switch.
KNOWN_APPS = frozenset({
    "answer", "pre_answer", "ring_ready", "set", "export", "unset", "multiset", "log", "info", "sleep",
    "playback", "endless_playback", "speak", "say", "play_and_get_digits", "read", "record", "bridge",
    "hangup", "respond", "transfer", "rxfax", "txfax", "park", "eavesdrop", "three_way", "conference",
    "record_session", "stop_record_session", "echo", "event", "hash", "db", "sched_hangup", "break",
    "socket", "send_dtmf", "flush_dtmf", "att_xfer",
})

SIP_CAUSES = {
    "404": "UNALLOCATED_NUMBER", "403": "CALL_REJECTED", "480": "NO_USER_RESPONSE", "486": "USER_BUSY",
    "487": "ORIGINATOR_CANCEL", "488": "INCOMPATIBLE_DESTINATION", "500": "NORMAL_TEMPORARY_FAILURE",
    "503": "NORMAL_TEMPORARY_FAILURE", "600": "USER_BUSY", "603": "CALL_REJECTED",
}


class Pulse:
    """Wake every waiter at once; a waiter takes `current` before checking its condition (no lost wake-up)."""

    def __init__(self):
        self._ev = Event()

    @property
    def current(self) -> Event:
        return self._ev

    def pulse(self) -> None:
        ev, self._ev = self._ev, Event()
        ev.set()

    def wait_for(self, pred, deadline: float | None = None, step: float = 1.0):
        """pred()'s first truthy value, checked at every pulse (and at least every `step` seconds); its last,
        falsy, value once time.monotonic() has passed `deadline` (None: no deadline)."""
        while True:
            ev = self.current
            value = pred()
            if value:
                return value
            if deadline is None:
                ev.wait(step)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return value
            ev.wait(min(remaining, step))


class AppRun:
    """One execution of an application."""

    def __init__(self, name: str, arg: str, event_uuid: str):
        self.name = name
        self.arg = arg
        self.event_uuid = event_uuid
        self.started = time.monotonic()


class ChannelRunner(PlayAndRecord):
    """Runs the applications of one channel, receives its DTMF and speech, and tears it down on hang-up."""

    def __init__(self, switch, channel, call=None):
        self.sw = switch
        self.ch = channel
        self.call = call                # the FakeCall when this channel is a scripted caller
        self.queue: deque = deque()
        self.wake = Pulse()
        self.current: AppRun | None = None
        self.input: InputSlot | None = None
        self.digits: deque[str] = deque()
        self.accept_digits = False
        self.breaking = False
        self.break_seq = 0
        self.ended = Event()
        self.socket_app: tuple[str, str] | None = None
        self.speech: list[list] = []    # [start_sim, end_sim or None]
        self.speech_version = 0
        self.fax_pages_to_send = 0      # set by a caller's SendFax step
        self.inline: deque = deque()    # uuid_broadcast apps for a leg running bridge: run inside the bridge
        self.bridge_done = Event()
        self.session_records: dict[str, float] = {}   # uuid_record / record_session path -> start sim
        self.loops: dict[str, list[tuple[int, int]]] = {}   # event uuid -> (current_loop, total_loops) per run
        self.to_park = False            # uuid_park: enter CS_PARK once the running application has ended
        self.to_route = False           # a transfer: route (CS_ROUTING, CS_EXECUTE) before the new extension
        self.in_cs_park = False
        self._greenlet = None

    # -- control from outside -------------------------------------------------------------------------
    def start(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def enqueue(self, name: str, arg: str = "", event_uuid: str | None = None, front: bool = False,
                loop: tuple[int, int] | None = None) -> None:
        """Queue an application (sendmsg execute, uuid_broadcast...). `loop`: (n, of) for an application
        a message executes (switch_ivr_parse_event sets current_loop / total_loops around it)."""
        event_uuid = event_uuid or new_uuid()
        if loop is not None:
            self.loops[event_uuid] = self.loops.get(event_uuid, []) + [loop]
        item = (name, arg or "", event_uuid)
        if front:
            self.queue.appendleft(item)
        else:
            self.queue.append(item)
        self.poke()

    def poke(self) -> None:
        """Wake this channel's application, its scripted caller, and test-level waiters."""
        self.wake.pulse()
        if self.call is not None:
            self.call.changed.pulse()
        self.sw.changed.pulse()

    def interrupt(self) -> None:
        """Break the running application (uuid_break, bridge, transfer)."""
        self.breaking = True
        self.break_seq += 1
        self.poke()

    # -- waiting in simulated time ------------------------------------------------------------------
    def wait_until(self, pred, sim_seconds: float | None) -> bool:
        """Wait until pred() or the simulated time passes; True when pred() held. Never blocks forever."""
        deadline = None if sim_seconds is None else time.monotonic() + max(0.0, sim_seconds) * self.sw.time_scale
        return bool(self.wake.wait_for(pred, deadline))

    def _stopped(self) -> bool:
        return self.ch.hung_up or self.breaking

    # -- the loop -----------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self.ch.hung_up:
                if self.to_route:
                    self.to_route = False
                    lifecycle.set_state(self.sw, self.ch, "CS_ROUTING")
                    lifecycle.set_state(self.sw, self.ch, "CS_EXECUTE")
                elif self.to_park:
                    self.to_park = False
                    self._cs_park()
                elif self.queue:
                    name, arg, event_uuid = self.queue.popleft()
                    self._execute(name, arg, event_uuid)
                else:
                    self.wait_until(lambda: bool(self.queue) or self.to_park or self.to_route or self.ch.hung_up,
                                    None)
        except Exception:  # noqa: BLE001 - keep the fake alive and the channel torn down
            log.exception("fake switch: application crashed on %s", self.ch.uuid)
            self.sw.hangup(self.ch, "NORMAL_TEMPORARY_FAILURE", by="switch")
        finally:
            self.queue.clear()
            self._teardown()

    def _execute(self, name: str, arg: str, event_uuid: str) -> None:
        ch = self.ch
        if name not in KNOWN_APPS:
            log.info("fake switch: unknown application %r on %s", name, ch.uuid)
            self._log_exec(name, arg)
            self.sw.hangup(ch, "DESTINATION_OUT_OF_ORDER", by="switch")
            return
        if arg and (ch.get_var("app_disable_expand_variables") or "").lower() not in ("true", "1", "yes"):
            arg = ch.expand(arg)  # as switch_core_session_execute_application does
        self.breaking = False
        run = AppRun(name, arg, event_uuid)
        self.current = run
        loop = self.loops.get(event_uuid, [None]).pop(0) if event_uuid in self.loops else None
        if event_uuid in self.loops and not self.loops[event_uuid]:
            del self.loops[event_uuid]
        if loop is not None:
            ch.set_var("current_loop", loop[0])
            ch.set_var("total_loops", loop[1])
        ch.set_var("current_application", name)
        ch.set_var("current_application_data", arg)        # none: unset
        ch.set_var("current_application_response", "")   # switch_core_session_execute_application
        post = [("Application", name)]
        if arg:
            post.append(("Application-Data", arg))
        post.append(("Application-UUID", event_uuid))
        self._log_exec(name, arg)
        self.sw.emit_channel(ch, "CHANNEL_EXECUTE", post=post)
        handler = getattr(self, "app_" + name)
        response = handler(arg) or "_none_"
        self.accept_digits = False
        self.digits.clear()
        if self.input is not None:
            self.input.active = False
            self.input = None
        if response != "_none_":
            ch.set_var("current_application_response", response)
        post = [("Application", name)]
        if arg:
            post.append(("Application-Data", arg))
        post += [("Application-Response", response), ("Application-UUID", event_uuid)]
        self.sw.emit_channel(ch, "CHANNEL_EXECUTE_COMPLETE", post=post)
        if loop is not None:
            ch.set_var("current_loop", "")
            ch.set_var("total_loops", "")
        self.current = None
        self.breaking = False
        self.poke()

    def _log_exec(self, name: str, arg: str) -> None:
        self.ch.executed.append((name, arg))
        if self.call is not None:
            self.call.executed.append((name, arg))
        self.poke()

    def _teardown(self) -> None:
        ch = self.ch
        sw = self.sw
        for path in list(self.session_records):
            self.stop_session_record(path)
        if self.socket_app is not None:
            sw.emit_channel(ch, "CHANNEL_UNPARK", state="CS_EXECUTE", state_number=10)
            app, data = self.socket_app
            # the response is whatever the last application inside the socket left (as captured)
            response = ch.get_var("current_application_response") or "_none_"
            sw.emit_channel(ch, "CHANNEL_EXECUTE_COMPLETE", state="CS_EXECUTE", state_number=10, post=[
                ("Application", app), ("Application-Data", data), ("Application-Response", response),
                ("Application-UUID", new_uuid())])
        # As captured: the events up to here (CHANNEL_HANGUP, the app's end, CHANNEL_STATE CS_HANGUP) still
        # read Hangup-Time 0.
        lifecycle.set_state(sw, ch, "CS_HANGUP")
        ch.hangup_us = now_us()
        lifecycle.set_callstate(sw, ch, "HANGUP")
        self._hangup_variables()
        lifecycle.set_state(sw, ch, "CS_REPORTING")
        sw.emit_channel(ch, "CHANNEL_HANGUP_COMPLETE", pre=[("Hangup-Cause", ch.hangup_cause)])
        if self.call is not None:
            self.call._channel_done()
        # As captured: CHANNEL_DESTROY still reads CS_REPORTING (number 12), then the state becomes CS_DESTROY.
        sw.emit_channel(ch, "CHANNEL_DESTROY", state="CS_REPORTING", state_number=12, skip_socket=True)
        ch.state = "CS_DESTROY"
        sw.emit_channel(ch, "CHANNEL_STATE", skip_socket=True)
        sw.channel_gone(ch)
        self.ended.set()
        sw.changed.pulse()

    def _hangup_variables(self) -> None:
        ch = self.ch
        end = now_us()
        ch.set_var("hangup_cause", ch.hangup_cause)
        ch.set_var("hangup_cause_q850", Q850.get(ch.hangup_cause, 16))
        ch.set_var("digits_dialed", getattr(ch, "digits_dialed", "") or "none")
        timers = lifecycle.hangup_variables(ch, end)
        split = next(i for i, (k, _) in enumerate(timers) if k == "duration")
        for k, v in timers[:split]:
            ch.set_var(k, v)
        ch.set_var("last_app", ch.executed[-1][0] if ch.executed else "")
        ch.set_var("last_arg", ch.executed[-1][1] if ch.executed else "")
        # '"name" <number>', the number alone without a name (as captured)
        ch.set_var("caller_id", f'"{ch.caller_name}" <{ch.caller_number}>' if ch.caller_name else ch.caller_number)
        for k, v in timers[split:]:
            ch.set_var(k, v)
        disposition = lifecycle.hangup_disposition(ch)
        if disposition:
            ch.set_var("sip_hangup_disposition", disposition)
        if ch.source == "mod_loopback":
            ch.set_var("is_loopback", "1")   # mod_loopback's channel_on_hangup

    # -- applications ----------------------------------------------------------------------------------
    def app_answer(self, arg):
        self.sw.answer(self.ch)

    def app_pre_answer(self, arg):
        self.sw.pre_answer(self.ch)

    def app_ring_ready(self, arg):
        if not self.ch.progress_us:
            self.ch.progress_us = now_us()
            self.sw.emit_channel(self.ch, "CHANNEL_PROGRESS")

    def app_set(self, arg):
        # mod_dptools base_set expands the value once more (after the execute's own expansion of the
        # argument): a literal ${...} cannot be set this way, whereas export and uuid_setvar keep it.
        self._set(arg, expand=True)

    def app_export(self, arg):
        self._set(arg, expand=False)

    def _set(self, arg, expand: bool):
        name, _, value = arg.partition("=")
        if name:
            value = self.ch.expand(value) if expand else value
            if value == "":
                self.ch.variables.pop(name, None)
            else:
                self.ch.set_var(name, value)

    def app_unset(self, arg):
        self.ch.variables.pop(arg.strip(), None)

    def app_multiset(self, arg):
        for part in arg.split():
            self.app_set(part)

    def app_log(self, arg):
        log.info("fake switch log on %s: %s", self.ch.uuid, arg)

    def app_info(self, arg):
        pass

    def app_event(self, arg):
        pass

    def app_hash(self, arg):
        pass

    def app_db(self, arg):
        pass

    def app_echo(self, arg):
        self.wait_until(self._stopped, None)

    def app_break(self, arg):
        pass

    def app_socket(self, arg):
        # `originate <leg> &socket(host:port async full)`: the answered leg enters the app's socket, as a
        # channel transferred to a socket extension does (the dialer's outbound campaign calls).
        # Only `async full` is simulated; anything else (an unquoted originate argument split at its spaces
        # leaves just host:port, a synchronous socket) is hung up so that the mistake shows.
        words = arg.split()
        host, _, port = (words or [""])[0].rpartition(":")
        if host and port.isdigit() and words[1:] == ["async", "full"]:
            self.sw.attach_socket(self.ch, (host, int(port)), getattr(self.ch.agent, "script", None))
        else:
            log.warning("fake switch: socket %r is not `host:port async full`; hanging up", arg)
            self.sw.hangup(self.ch, "DESTINATION_OUT_OF_ORDER", by="switch")

    def app_flush_dtmf(self, arg):
        self.digits.clear()

    def app_send_dtmf(self, arg):
        peer = self.ch.other
        if peer is not None and peer.runner is not None:
            for d in arg.split("@")[0]:
                peer.runner.dtmf(d)

    def app_sched_hangup(self, arg):
        parts = arg.split()
        if parts:
            delay = float(parts[0].lstrip("+") or 0)
            cause = parts[1] if len(parts) > 1 else "ALLOTTED_TIMEOUT"
            sw, ch = self.sw, self.ch

            def later():
                gevent.sleep(delay * sw.time_scale)
                sw.hangup(ch, cause, by="switch")
            gevent.spawn(later)

    def app_sleep(self, arg):
        try:
            ms = int(arg.strip() or 0)
        except ValueError:
            ms = 0
        self._accept(None)
        self.wait_until(self._stopped, ms / 1000.0)

    def _cs_park(self) -> None:
        """The CS_PARK state uuid_park puts a channel in (not the park application): CHANNEL_STATE CS_PARK,
        CHANNEL_PARK; queued applications run inside it; leaving it (a bridge, a transfer, a hang-up) sends
        CHANNEL_UNPARK, as captured in park_bridge_states.txt."""
        ch, sw = self.ch, self.sw
        lifecycle.set_state(sw, ch, "CS_PARK")
        sw.emit_channel(ch, "CHANNEL_PARK")
        ch.parked = True
        self.in_cs_park = True
        self._accept(None)
        seq = self.break_seq
        broken = lambda: ch.hung_up or self.break_seq != seq
        while True:
            self.wait_until(lambda: broken() or bool(self.queue), None)
            if broken():
                break
            name, qarg, event_uuid = self.queue.popleft()
            self._execute(name, qarg, event_uuid)
            self._accept(None)
        ch.parked = False
        self.in_cs_park = False
        self.to_park = False
        sw.emit_channel(ch, "CHANNEL_UNPARK")
        self.poke()

    def app_park(self, arg):
        self.sw.emit_channel(self.ch, "CHANNEL_PARK")
        self.ch.parked = True
        self._accept(None)
        seq = self.break_seq
        broken = lambda: self.ch.hung_up or self.break_seq != seq
        while True:
            self.wait_until(lambda: broken() or bool(self.queue), None)
            if broken():
                break
            # Like switch_ivr_park, run queued applications (sendmsg, uuid_broadcast) inside the park.
            outer = self.current
            name, qarg, event_uuid = self.queue.popleft()
            self._execute(name, qarg, event_uuid)
            self.current = outer
            self._accept(None)
        self.ch.parked = False
        self.sw.emit_channel(self.ch, "CHANNEL_UNPARK")   # a hang-up too ends the park (as captured)

    def app_respond(self, arg):
        code = arg.strip().split(" ", 1)[0]
        if code.startswith("18"):
            self.sw.pre_answer(self.ch)
        elif code.startswith("2"):
            self.sw.answer(self.ch)
        elif code[:1] in ("4", "5", "6"):
            self.sw.hangup(self.ch, SIP_CAUSES.get(code, "NORMAL_TEMPORARY_FAILURE"), by="app")

    def app_hangup(self, arg):
        cause = arg.strip() or "NORMAL_CLEARING"
        self.sw.hangup(self.ch, cause, by="app")

    def app_bridge(self, arg):
        return self.sw.bridge_app(self, arg)

    def app_transfer(self, arg):
        p = arg.split()
        if not p:
            return "_none_"
        self.sw.transfer(self.ch, p[0], p[1] if len(p) > 1 else "XML", p[2] if len(p) > 2 else "default",
                         from_app=True)

    def app_att_xfer(self, arg):
        return self.sw.att_xfer_app(self, arg.strip())

    def run_inline(self) -> None:
        """Run the apps uuid_broadcast queued while this leg runs bridge (switch_ivr_parse_all_events in the
        bridge loop), each as its own execution, then go back to the bridge."""
        while self.inline and not self.ch.hung_up:
            outer = self.current
            name, arg, event_uuid = self.inline.popleft()
            self._execute(name, arg, event_uuid)
            self.current = outer

    def app_eavesdrop(self, arg):
        return self.sw.eavesdrop_app(self, arg.strip(), mode="listen")

    def app_three_way(self, arg):
        return self.sw.eavesdrop_app(self, arg.strip(), mode="three_way")

    def app_conference(self, arg):
        return self.sw.conference_app(self, arg.strip())

    def app_rxfax(self, arg):
        return self.sw.fax_app(self, "rx", arg.strip())

    def app_txfax(self, arg):
        return self.sw.fax_app(self, "tx", arg.strip())


