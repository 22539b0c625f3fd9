"""Several fake switches on one network, as the hotline's pair of servers: reach() joins two, and a leg
dialled to the other's internal profile (`sofia/internal/<ext>@<sip_address>`) is challenged there and
arrives, as the peer account, in the hotline_peer context that bridges user/<ext>
(freeswitch-conf/dialplan/peer.xml, directory/agents.xml). There is no capture of this: the legs' events are
those of originate.py's SIP legs and of dialplan.py's inbound ones."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import gevent

from . import lifecycle
from .channel import FakeChannel, now_us

if TYPE_CHECKING:
    from .server import FakeSwitch


# The directory user the hotline's servers call each other as, and the shipped peer_password
# (freeswitch-conf: directory/agents.xml, vars.xml).
PEER_USER = "hotline-peer"
PEER_PASSWORD = "change-this-peer-password"


class PeersMixin:
    """Calls between switches. Part of FakeSwitch (composed in server.py; `self` is the switch)."""

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
