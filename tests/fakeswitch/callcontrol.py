"""One live leg: answering (a SIP caller is pre-answered first, api_on_answer runs), hanging up (with
the other half of a loopback pair, the far half of a call between switches, and its bridge), and the
uuid_* api commands that act on one channel: uuid_kill, hupall, uuid_answer, uuid_getvar / uuid_setvar,
uuid_send_dtmf / uuid_recv_dtmf, uuid_break, uuid_hold, uuid_dump, uuid_exists. Follows
tests/transcripts/inbound_plain_and_json.txt (answers, uuid_kill, uuid_send_dtmf, uuid_getvar of a missing
channel) and outbound_socket_sip_caller_rfc2833.txt (PROGRESS_MEDIA before ANSWER on a SIP caller)."""
from __future__ import annotations

import gevent

from . import lifecycle, wire
from .channel import FakeChannel, now_us


class CallControlMixin:
    """One leg: answer, hang-up, uuid_*. Part of FakeSwitch (composed in server.py; `self` is the switch)."""

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

    def api_uuid_exists(self, arg):
        return "true" if self._get(arg) else "false"

    def api_uuid_kill(self, arg):
        p = arg.split()
        ch = self._channel_arg(p)
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
        ch = self._channel_arg(p)
        if len(p) < 2:
            return "-USAGE: <uuid> <var>\n"
        v = ch.get_var(p[1])
        return "_undef_" if v is None else v

    def api_uuid_setvar(self, arg):
        p = arg.split(None, 2)
        ch = self._channel_arg(p)
        if len(p) < 2:
            return "-USAGE: <uuid> <var> [value]\n"
        if len(p) == 2:
            ch.variables.pop(p[1], None)
        else:
            ch.set_var(p[1], p[2])
        return "+OK\n"

    def api_uuid_send_dtmf(self, arg):
        p = arg.split()
        ch = self._channel_arg(p)
        lifecycle.send_dtmf(ch, p[1])
        return f"+OK {ch.uuid} sent DTMF {p[1]}.\n"

    def api_uuid_recv_dtmf(self, arg):
        p = arg.split()
        ch = self._channel_arg(p)
        if len(p) < 2:
            return "-ERR No such channel!\n"
        for d in p[1]:
            ch.runner.dtmf(d)
        return "+OK\n"

    def api_uuid_answer(self, arg):
        ch = self._channel_arg(arg.split())
        self.answer(ch)
        return "+OK\n"

    def api_uuid_dump(self, arg):
        ch = self._channel_arg(arg.split())
        headers = self.common_headers("CHANNEL_DATA") + ch.channel_data()
        # switch_event_serialize: the same URL-encoded values as text/event-plain.
        return "".join(f"{k}: {wire.url_encode(v)}\n" for k, v in headers)

    def api_uuid_break(self, arg):
        p = arg.split()
        ch = self._channel_arg(p)
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
