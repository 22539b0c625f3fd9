"""Originating legs (switch_ivr_originate.c): a dial string rung in turn (`a|b`) or at once (`a,b`, the
race's losers hung up LOSE_RACE), user/NNNN and sofia/gateway/ legs ringing scripted agents (who answer,
refuse, are busy or let it ring; leg_timeout, leg_delay_start), loopback/<ext> pairs (mod_loopback: the B
leg runs the extension), and `api originate <dial> <&app(arg)|ext>`. Follows
tests/transcripts/inbound_plain_and_json.txt (bgapi originate, a failed originate, the whole originate
sequence in its `event json ALL` part) and acd_bridge_eavesdrop_record_transfer_conference.txt (originate
user/1000); loopback legs as in park_bridge_states.txt and fax_spandsp_txfax_rxfax.txt. The events of a
leg's life come from lifecycle.py."""
from __future__ import annotations

import re
import time

import gevent
import gevent.event

from . import lifecycle
from .apps import Pulse
from .channel import FakeChannel, now_us
from .dialstring import dial_target, split_dial, split_outside_brackets, strip_vars


class _Race(gevent.event.Event):
    """A parallel ring's cancel, on one clock for all its legs: when it started and when the winner cancelled
    it. A leg whose answer time came no later than the cancel answered too (and loses the race, LOSE_RACE), as two
    phones answering in the same instant do on FreeSWITCH, however late a loaded machine runs its greenlet."""

    def __init__(self):
        super().__init__()
        self.started, self.at = time.monotonic(), None


class OriginateMixin:
    """Ringing dial strings. Part of FakeSwitch (composed in server.py; `self` is the switch)."""

    def ring(self, dial: str, variables: dict | None = None, timeout: float = 60.0,
             caller: FakeChannel | None = None, cid_name: str | None = None, cid_num: str | None = None):
        """Ring a dial string (user/NNNN, sofia/gateway/GW/NUM, loopback/EXT, a,b or a|b).

        Returns (channel, None) when answered, (None, cause) otherwise. Blocks in simulated time.
        """
        variables = dict(variables or {})
        dial = dial.strip()
        gvars, dial = strip_vars(dial)
        variables.update(gvars)
        sequence = split_outside_brackets(dial, "|")
        if len(sequence) > 1:
            cause = "NO_ANSWER"
            for part in sequence:
                ch, cause = self.ring(part, variables, timeout, caller, cid_name, cid_num)
                if ch is not None:
                    return ch, None
            return None, cause
        parallel = split_outside_brackets(dial, ",")
        if len(parallel) > 1:
            return self._ring_parallel(parallel, variables, timeout, caller, cid_name, cid_num)
        return self._ring_one(dial, variables, timeout, caller, cid_name, cid_num, None)

    def _ring_parallel(self, parts, variables, timeout, caller, cid_name, cid_num):
        cancel = _Race()
        results = []
        greenlets = [gevent.spawn(self._ring_one, p, dict(variables), timeout, caller, cid_name, cid_num, cancel)
                     for p in parts]
        winner = None
        for g in gevent.iwait(greenlets):
            ch, cause = g.value if g.successful() else (None, "NORMAL_TEMPORARY_FAILURE")
            results.append(cause)
            if ch is not None and winner is None:
                winner = ch
                cancel.at = time.monotonic()
                cancel.set()
            elif ch is not None:
                self.hangup(ch, "LOSE_RACE", by="switch")
        if winner is not None:
            return winner, None
        return None, next((c for c in results if c not in ("ORIGINATOR_CANCEL", "LOSE_RACE")), "NO_ANSWER")

    def _ring_one(self, dial, variables, timeout, caller, cid_name, cid_num, cancel):
        lvars, dial = strip_vars(dial.strip())
        variables = {**variables, **lvars}
        timeout = float(variables.get("leg_timeout") or variables.get("originate_timeout") or
                        variables.get("call_timeout") or timeout)
        cid_num = variables.get("origination_caller_id_number") or cid_num or (
            caller.caller_number if caller else "0000000000")
        cid_name = variables.get("origination_caller_id_name") or cid_name or (
            caller.caller_name if caller else "")
        number, kind = dial_target(dial)
        if kind == "error":
            return None, number or "NORMAL_TEMPORARY_FAILURE"
        delay = float(variables.get("leg_delay_start") or 0)
        if delay > 0:
            # ring-progressively: this leg is not even created until its delay has passed (or the race ended).
            gone = lambda: (cancel is not None and cancel.is_set()) or (caller is not None and caller.hung_up)
            if self._wait_sim(gone, delay, self.changed if cancel is not None else None):
                return None, "ORIGINATOR_CANCEL"
            timeout = max(0.0, timeout - delay)
        # this leg's own start on the race's one clock (ring-progressively's legs start after their delay)
        leg_started = cancel.started + delay * self.time_scale if cancel is not None else None
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
        answers_at = None
        if mode is True:
            if delay > timeout:
                self._wait_sim(stopped, timeout, pulse)
                cause = "NO_ANSWER"
            else:
                answers_at = (leg_started if leg_started is not None else time.monotonic()) + delay * self.time_scale
                self._wait_sim(stopped, delay, pulse, since=leg_started)
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
        answered_with_the_winner = (cause is None and answers_at is not None and cancel is not None
                                    and cancel.at is not None and answers_at <= cancel.at)
        if cancel is not None and cancel.is_set() and not ch.hung_up and not answered_with_the_winner:
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

    def _agent_talk_then_hangup(self, ch, seconds):
        self._wait_sim(lambda: ch.hung_up, seconds)
        if not ch.hung_up:
            self.hangup(ch, "NORMAL_CLEARING", by="agent", remote=True)

    def _wait_sim(self, pred, sim_seconds, pulse: Pulse | None = None, since: float | None = None) -> bool:
        deadline = (time.monotonic() if since is None else since) + sim_seconds * self.time_scale
        return bool((pulse or self.changed).wait_for(pred, deadline))

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

    def api_originate(self, arg):
        dial, rest = split_dial(arg)
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
