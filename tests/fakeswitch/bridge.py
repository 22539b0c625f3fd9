"""Two legs talking: the bridge application (ring, link, wait for the end; bridge_pre_execute_app,
hangup_after_bridge), uuid_bridge (switch_ivr_uuid_bridge: hibernate, reset, soft-execute), the end of a
bridge (CHANNEL_UNBRIDGE, the partner hung up or kept by park_after_bridge), uuid_park (the CS_PARK state),
and attended transfer (mod_dptools' att_xfer, att_thread_run). Follows tests/transcripts/park_bridge_states.txt
(uuid_park and uuid_bridge state by state, the originatee parked) and
acd_bridge_eavesdrop_record_transfer_conference.txt (uuid_bridge, CHANNEL_BRIDGE / CHANNEL_UNBRIDGE)."""
from __future__ import annotations

import logging

import gevent

from . import lifecycle
from .apps import ChannelRunner
from .channel import FakeChannel, now_us

log = logging.getLogger(__name__)


class BridgeMixin:
    """Bridges, uuid_park and att_xfer. Part of FakeSwitch (composed in server.py; `self` is the switch)."""

    def api_uuid_park(self, arg):
        ch = self._channel_arg(arg.split())
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


def _dialstatus(cause: str) -> str:
    return {"USER_BUSY": "BUSY", "NO_ANSWER": "NOANSWER", "NO_USER_RESPONSE": "NOANSWER",
            "CALL_REJECTED": "BUSY", "ORIGINATOR_CANCEL": "CANCEL"}.get(cause, "CHANUNAVAIL")
