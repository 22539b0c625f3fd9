"""A channel's life as the real switch reports it: state-machine events (CHANNEL_STATE, CHANNEL_CALLSTATE),
codec negotiation (CODEC), the originate sequence (CHANNEL_UUID, CHANNEL_OUTGOING, CHANNEL_ORIGINATE), the
API event, the hang-up timers and dispositions, DTMF sources, transfers' caller profiles.

Every order, header name and value shape here was read off tests/transcripts (the `event json ALL` part of
inbound_plain_and_json.txt shows a whole originate; the acd capture shows transfers), not from switch/.
"""
from __future__ import annotations

from datetime import datetime

from .channel import STATE_NUMBERS, new_uuid, now_us

# switch_channel_callstate_t
CALL_STATE_NUMBERS = {"DOWN": 0, "DIALING": 1, "RINGING": 2, "EARLY": 3, "ACTIVE": 4, "HELD": 5,
                      "RING_WAIT": 6, "HANGUP": 7, "UNHELD": 8}

ORIGINS = {
    "CHANNEL_STATE": ("switch_channel.c", "switch_channel_perform_set_running_state", "2409"),
    "CHANNEL_CALLSTATE": ("switch_channel.c", "switch_channel_perform_set_callstate", "302"),
    "CODEC_READ": ("switch_core_codec.c", "switch_core_session_set_read_codec", "300"),
    "CODEC_WRITE": ("switch_core_codec.c", "switch_core_session_set_write_codec", "471"),
    "CHANNEL_UUID": ("switch_core_session.c", "switch_core_session_set_uuid", "2056"),
    "CHANNEL_OUTGOING": ("switch_core_session.c", "switch_core_session_outgoing_channel", "768"),
    "CHANNEL_ORIGINATE": ("switch_core_state_machine.c", "switch_core_session_run", "632"),
    "CHANNEL_DESTROY": ("switch_core_session.c", "switch_core_session_perform_destroy", "1588"),
    "CALL_UPDATE": ("switch_channel.c", "switch_channel_flip_cid", "3279"),
    "API": ("switch_loadable_module.c", "switch_api_execute", "3140"),
}

# How a digit reaches the switch, by the channel's dtmf_type (mod_sofia: rfc2833, info, inband; loopback and
# uuid_send_dtmf: none of those), and the DTMF-Duration each source reports (in samples at 8 kHz): an RFC 2833
# end packet carries the sender's duration (sipp: 2240), INFO the Duration= of the body (default 250 ms =
# 2000), the in-band detector the tone it measured; a queued digit the default 2000.
DTMF_SOURCES = {"rfc2833": ("RTP", "2240"), "info": ("INFO", "2000"), "inband": ("INBAND_AUDIO", "1600"),
                "": ("UNKNOWN", "2000")}


def _emit(sw, ch, name, pre=None, post=None, origin=None, state=None, call_state=None, state_number=None,
          with_variables=None):
    body = ch.event_body(name, pre=pre, post=post, state=state, call_state=call_state,
                         state_number=state_number, with_variables=with_variables)
    sw.emit(name, body, origin=origin or ORIGINS.get(name))


def set_state(sw, ch, state: str) -> None:
    """switch_channel_perform_set_running_state: the channel enters `state` (CHANNEL_STATE, no variables)."""
    ch.state = state
    if ch.pending_state == state:
        ch.pending_state = None
    _emit(sw, ch, "CHANNEL_STATE", state=state, state_number=STATE_NUMBERS[state])


def set_callstate(sw, ch, call_state: str) -> None:
    """switch_channel_perform_set_callstate: CHANNEL_CALLSTATE with the previous call state."""
    old = ch.call_state
    if old == call_state:
        return
    ch.call_state = call_state
    _emit(sw, ch, "CHANNEL_CALLSTATE", pre=[("Original-Channel-Call-State", old),
                                            ("Channel-Call-State-Number", str(CALL_STATE_NUMBERS[call_state]))],
          state=ch.state, call_state=call_state)


def set_codec(sw, ch, codec: tuple[str, int, int]) -> None:
    """The read codec, then the write codec is set (two CODEC events), and the variables applications read."""
    name, rate, bits = codec
    old, ch.codec = ch.codec, None
    read = [("Channel-Read-Codec-Name", name), ("Channel-Read-Codec-Rate", str(rate)),
            ("Channel-Read-Codec-Bit-Rate", str(bits))]
    write = [("Channel-Write-Codec-Name", name), ("Channel-Write-Codec-Rate", str(rate)),
             ("Channel-Write-Codec-Bit-Rate", str(bits))]
    # CODEC carries the channel block only (no caller profile), then the codec headers; the write event
    # repeats the read ones, and both end with the lower-case copies the core adds.
    base = [h for h in ch.channel_block() if not h[0].startswith(("Channel-Read-Codec", "Channel-Write-Codec"))]
    sw.emit("CODEC", base + read + [(k.lower(), v) for k, v in read], origin=ORIGINS["CODEC_READ"])
    sw.emit("CODEC", base + read + write + [("Channel-Write-codec-bit-rate", str(bits))],
            origin=ORIGINS["CODEC_WRITE"])
    ch.codec = codec if old is None or old != codec else old
    for k, v in (("read_codec", name), ("read_rate", rate), ("write_codec", name), ("write_rate", rate)):
        ch.set_var(k, v)


def outgoing(sw, ch, origination_uuid: bool, codec_name: str | None = None) -> None:
    """switch_core_session_outgoing_channel: CODEC (loopback sets its codec first, named after the whole dial
    string), CHANNEL_UUID when the originate named the uuid (with the channel's first variables),
    CHANNEL_OUTGOING, CHANNEL_STATE CS_INIT (before CHANNEL_CREATE)."""
    # With an origination_uuid the session is made with a uuid of its own first, then renamed (CHANNEL_UUID
    # names the old one): the codec events come before, under the old uuid.
    old = new_uuid() if origination_uuid else ch.uuid
    if ch.codec is not None:
        kept = ch.name, ch.uuid, ch.variables.get("call_uuid")
        ch.name, ch.uuid, ch.variables["call_uuid"] = codec_name or ch.name, old, old
        set_codec(sw, ch, ch.codec)
        ch.name, ch.uuid = kept[:2]
        ch.set_var("call_uuid", kept[2])
    if origination_uuid:
        _emit(sw, ch, "CHANNEL_UUID", pre=[("Old-Unique-ID", old)], state="CS_NONE", state_number=1)
    _emit(sw, ch, "CHANNEL_OUTGOING", state="CS_NONE", state_number=1, with_variables=False)
    set_state(sw, ch, "CS_INIT")


def originate(sw, ch) -> None:
    """After CHANNEL_CREATE of an outbound leg: CHANNEL_ORIGINATE, then routing (an originated leg has no
    dialplan of its own: CS_ROUTING, then CS_CONSUME_MEDIA while it rings)."""
    _emit(sw, ch, "CHANNEL_ORIGINATE", state="CS_INIT", state_number=2)
    set_state(sw, ch, "CS_ROUTING")
    set_state(sw, ch, "CS_CONSUME_MEDIA")


def incoming(sw, ch, inline: bool = False) -> None:
    """An inbound leg after CHANNEL_CREATE: it rings, is routed, and runs its extension (the state is
    CS_ROUTING already when the ringing is reported, as captured). An inline dialplan's extension runs with
    the destination it had before (none for a new leg: inline_executes)."""
    ch.state = "CS_ROUTING"
    set_callstate(sw, ch, "RINGING")
    set_state(sw, ch, "CS_ROUTING")
    if inline:
        inline_executes(ch)
    set_state(sw, ch, "CS_EXECUTE")


def inline_executes(ch) -> None:
    """Once an inline dialplan (`app:arg,...` as destination) runs, the caller profile's destination is the
    one before it again and RDNIS is gone (as captured: a fresh inline loopback leg has no destination,
    a leg transferred inline into a conference reads its earlier one)."""
    ch.destination, ch.rdnis = ch.rdnis, ""


def flip_cid(sw, ch) -> None:
    """switch_channel_flip_cid: the caller id becomes the callee's (the callee id the old caller's, blank once
    bridged), the old one is kept in pre_transfer_caller_id_*, and CALL_UPDATE (Direction RECV) tells it."""
    bridged = ch.other is not None
    for part in ("name", "number"):
        caller, callee = getattr(ch, f"caller_{part}"), getattr(ch, f"callee_{part}")
        if callee:
            if caller:
                ch.set_var(f"pre_transfer_caller_id_{part}", caller)
            setattr(ch, f"caller_{part}", callee)
            setattr(ch, f"callee_{part}", "" if bridged else caller)
        elif bridged:
            setattr(ch, f"callee_{part}", "")
    ch.set_var("channel_cid_flipped", "yes")
    ch.cid_sorted = True
    _emit(sw, ch, "CALL_UPDATE", pre=[("Direction", "RECV")] + ([("Bridged-To", ch.other.uuid)] if bridged else []))


def sort_cid(sw, ch) -> None:
    """switch_channel_sort_cid, when a channel is given an extension to run (originate's, a transfer's): an
    originated (outbound) leg takes the identity of the party it reached the first time (the loopback A leg,
    an agent's leg originated to `&park`; a leg originated by `bridge` runs none until transferred), and
    again after a uuid_bridge made it an originatee; an inbound leg a uuid_bridge marked B leg flips once."""
    if ch.direction == "inbound" and getattr(ch, "bleg", False):
        flip_cid(sw, ch)
        ch.bleg = False
    elif ch.direction == "outbound" and not getattr(ch, "cid_sorted", False):
        flip_cid(sw, ch)


def invert_cid(ch) -> None:
    """switch_channel_invert_cid: caller and callee id swapped (an empty one reads Unknown)."""
    ch.caller_name, ch.callee_name = ch.callee_name or "Unknown", ch.caller_name
    ch.caller_number, ch.callee_number = ch.callee_number or "Unknown", ch.caller_number


def bridge_display(a, b) -> None:
    """switch_ivr_bridge_display as a bridge starts (send_display both ways): what each leg is told to show,
    kept as last_sent_callee_id_* (`a` runs the bridge: it sends `b` b's own caller id, `b` sends `a` its
    callee id, or its destination)."""
    def told(leg, name, number):
        number = (number or "UNKNOWN").rsplit("/", 1)[-1]
        name = (name or number).rsplit("/", 1)[-1]
        leg.set_var("last_sent_callee_id_name", name)
        leg.set_var("last_sent_callee_id_number", number)
    told(b, b.caller_name or a.caller_name, b.caller_number or a.caller_number)
    told(a, b.callee_name, b.callee_number or b.destination)


def api_event(sw, command: str, argument: str) -> None:
    """switch_api_execute fires API for every command (before it runs)."""
    headers = [("API-Command", command)]
    if argument:
        headers.append(("API-Command-Argument", argument))
    sw.emit("API", headers, origin=ORIGINS["API"])


def dtmf_post(ch, digit: str, source: str | None = None, duration: int | None = None) -> list[tuple[str, str]]:
    """DTMF-Digit / -Duration / -Source for a digit on this channel (its dtmf_type, unless given)."""
    if source is None:
        kind = (ch.get_var("dtmf_type") or "").lower()
        source, length = DTMF_SOURCES.get(kind, DTMF_SOURCES[""])
    else:
        length = {"RTP": "2240", "INFO": "2000", "INBAND_AUDIO": "1600"}.get(source, "2000")
    if duration is not None:
        length = str(duration)
    return [("DTMF-Digit", digit), ("DTMF-Duration", length), ("DTMF-Source", source)]


def send_dtmf(ch, digits: str) -> None:
    """uuid_send_dtmf <uuid> <digits>[@<ms>]: the channel sends the digits to its far end. On a loopback leg
    the far end is the other leg, which receives them (DTMF-Source UNKNOWN, the duration in samples at
    8 kHz, 2000 by default: as captured); a phone or a carrier reports nothing back."""
    digits, _, ms = digits.partition("@")
    duration = int(ms) * 8 if ms.isdigit() and int(ms) > 0 else None
    peer = getattr(ch, "loopback_peer", None)
    if peer is None or peer.runner is None:
        return
    for d in digits:
        peer.runner.dtmf(d, "UNKNOWN", duration)


def transfer_profile(ch, dest: str, dialplan: str, context: str, how: str) -> None:
    """A new caller profile after a transfer: RDNIS is the old destination, Transfer-Source says who moved it
    (`<epoch>:<uuid>:<how>:<dest>/<context>/<dialplan>`), transfer_history keeps every one. (The Other-Leg
    block of a bridge partner is a copy from before: it never carries these.)"""
    source = f"{now_us() // 1_000_000}:{_uuid4()}:{how}:{dest}/{context}/{dialplan}"
    ch.rdnis = ch.destination
    ch.destination, ch.dialplan, ch.context = dest, dialplan, context
    ch.transfer_source = source
    ch.profile_index = getattr(ch, "profile_index", 1) + 1
    ch.profile_created_us = now_us()
    ch.peer_block = None   # a new profile has no other leg, no bridge time; the leg leaves its bond
    ch.bridged_us = 0
    ch.set_var("signal_bond", "")
    history = ch.get_var("transfer_history")
    if history:
        items = history[len("ARRAY::"):].split("|:") if history.startswith("ARRAY::") else [history]
        ch.set_var("transfer_history", "ARRAY::" + "|:".join(items + [source]))
    else:
        ch.set_var("transfer_history", source)
    ch.set_var("transfer_source", source)


def bridge_source(ch, other) -> None:
    """uuid_bridge moves a leg through a transfer (uuid_br) before the bridge: a new caller profile."""
    ch.transfer_source = f"{now_us() // 1_000_000}:{_uuid4()}:uuid_br:{other.uuid}"
    ch.profile_index = getattr(ch, "profile_index", 1) + 1
    ch.profile_created_us = now_us()
    ch.peer_block = None
    ch.set_var("transfer_source", ch.transfer_source)
    if not ch.get_var("transfer_history"):
        ch.set_var("transfer_history", ch.transfer_source)


_FROZEN_TIMES = ("-Time", "-Last-Hold", "-Hold-Accum")


def other_leg_block(ch, zero_times: bool = False) -> list[tuple[str, str]]:
    """A copy of `ch`'s caller profile as its partner's Other-Leg block, taken when a uuid_bridge links them:
    its values stay as they were then; the originator's copy on the originatee reads every time 0, and both
    read Logical-Direction inbound (as captured)."""
    out = []
    for k, v in ch.profile_block("Other-Leg"):
        if k == "Other-Leg-Logical-Direction":
            v = "inbound"
        elif zero_times and k.endswith(_FROZEN_TIMES):
            v = "0"
        out.append((k, v))
    return out


def uuid_bridge_profiles(sw, a, b) -> None:
    """What switch_ivr_uuid_bridge does to the legs' profiles before they leave what they run (the UNPARK and
    EXECUTE_COMPLETE that follow show it): each goes through a uuid_br transfer (new caller profile, the
    original_* variables), the partner's profile is copied in as Other-Leg, the originator `a` becomes
    logically inbound and takes the originatee's caller id as its callee id."""
    seen_b = other_leg_block(b)
    seen_a = other_leg_block(a, zero_times=True)
    # the caller ids, as switch_ivr_uuid_bridge sorts them (CF_DIALPLAN is cid_sorted, CF_BLEG bleg)
    if a.direction == "outbound" and not getattr(a, "cid_sorted", False):
        flip_cid(sw, a)
    if b.direction == "outbound" and getattr(b, "cid_sorted", False):
        b.cid_sorted = False   # its next extension flips it again
    if (a.direction == "inbound" and getattr(a, "bleg", False)) or \
            (a.direction == "outbound" and not getattr(a, "cid_sorted", False)):
        invert_cid(a)
        if a.direction == "inbound":
            b.bleg = False
    if (b.direction == "inbound" and not getattr(b, "bleg", False)) or \
            (b.direction == "outbound" and getattr(b, "cid_sorted", False)):
        invert_cid(b)
        if b.direction == "inbound":
            b.bleg = True
    a.set_var("uuid_bridge", b.uuid)
    for x, y in ((a, b), (b, a)):
        x.set_var("bridge_channel", y.name)
        x.set_var("bridge_uuid", y.uuid)
        x.set_var("signal_bond", y.uuid)
        if not x.get_var("original_destination_number"):
            x.set_var("original_destination_number", x.destination)
            x.set_var("original_caller_id_name", x.caller_name)
            x.set_var("original_caller_id_number", x.caller_number)
        bridge_source(x, y)
    a.peer_block = ("originatee", seen_b)
    b.peer_block = ("originator", seen_a)
    a.logical_direction = "inbound"
    a.callee_name, a.callee_number = b.orig_caller_name, b.orig_caller_number
    loop = getattr(a, "loopback_peer", None)
    if loop is not None:   # mod_loopback passes the display update on to its other leg
        loop.callee_name, loop.callee_number = a.callee_name, a.callee_number
    if getattr(b, "loopback_peer", None) is None:
        # a SIP originatee shows the originator's caller id from then on (as captured: the agent's leg)
        b.caller_name, b.caller_number = a.caller_name, a.caller_number
    b.hit_dialplan = False


def uuid_bridge_states(sw, a, b) -> None:
    """Once both legs left what they ran: each hibernates, resets and soft-executes its `uuid_bridge`
    extension; the originator runs the bridge (CHANNEL_BRIDGE in CS_SOFT_EXECUTE), the originatee exchanges
    media and takes the originator's call uuid (as captured in park_bridge_states.txt)."""
    for x in (a, b):
        for state in ("CS_HIBERNATE", "CS_RESET", "CS_SOFT_EXECUTE"):
            set_state(sw, x, state)
    a.set_var("uuid_bridge", "")   # uuid_bridge_on_soft_execute takes it
    for x, y, line in ((a, b, "1236"), (b, a, "1243")):
        _emit(sw, x, "CHANNEL_EXECUTE", post=[("Application", "uuid_bridge"), ("Application-Data", y.uuid)],
              origin=("switch_ivr_bridge.c", "uuid_bridge_on_soft_execute", line))
    a.bridged_us = b.bridged_us = now_us()




def _uuid4() -> str:
    return new_uuid()


def _stamp(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6).strftime("%Y-%m-%d %H:%M:%S")


def hangup_disposition(ch) -> str | None:
    """mod_sofia's sip_hangup_disposition: who ended the SIP dialog and how (None off SIP)."""
    if not ch.name.startswith("sofia/"):
        return None
    remote = getattr(ch, "hangup_remote", ch.hangup_by == "caller")
    if ch.answered_us:
        return "recv_bye" if remote else "send_bye"
    if ch.direction == "inbound":
        return "recv_cancel" if remote else "send_refuse"
    return "recv_refuse" if remote else "send_cancel"


def hangup_variables(ch, end: int) -> list[tuple[str, object]]:
    """The variables switch_channel_set_timestamps and the hang-up add, in the captured order."""
    created, answered, progress, media = ch.created_us, ch.answered_us, ch.progress_us, ch.progress_media_us
    bridged, hold = ch.bridged_us, ch.hold_us
    out: list[tuple[str, object]] = [("start_stamp", _stamp(created)), ("profile_start_stamp", _stamp(created))]
    if answered:
        out.append(("answer_stamp", _stamp(answered)))
    if bridged:
        out.append(("bridge_stamp", _stamp(bridged)))
    if progress:
        out.append(("progress_stamp", _stamp(progress)))
    if media:
        out.append(("progress_media_stamp", _stamp(media)))
    out.append(("end_stamp", _stamp(end)))
    for name, us in (("start", created), ("profile_start", created), ("answer", answered), ("bridge", bridged),
                     ("last_hold", hold)):
        out += [(f"{name}_epoch", us // 1_000_000), (f"{name}_uepoch", us)]
    out += [("hold_accum_seconds", 0), ("hold_accum_usec", 0), ("hold_accum_ms", 0),
            ("resurrect_epoch", 0), ("resurrect_uepoch", 0)]
    for name, us in (("progress", progress), ("progress_media", media), ("end", end)):
        out += [(f"{name}_epoch", us // 1_000_000), (f"{name}_uepoch", us)]
    duration = end - created
    bill = end - answered if answered else 0
    spans = {"duration": duration, "bill": bill,
             "progress": progress - created if progress else 0,
             "answer": answered - created if answered else 0,
             "wait": bridged - created if bridged else 0,
             "progress_media": media - created if media else 0,
             "flow_bill": duration}
    names = ("bill", "progress", "answer", "wait", "progress_media", "flow_bill")
    out += [("duration", duration // 1_000_000)] + [(f"{n}sec", spans[n] // 1_000_000) for n in names]
    out += [("mduration", duration // 1000)] + [(f"{n}msec", spans[n] // 1000) for n in names]
    out += [("uduration", duration)] + [(f"{n}usec", spans[n]) for n in names]
    return out
