"""A fake channel: its state and the ordered header blocks FreeSWITCH puts into channel events.

The order of headers (channel block, caller profile, other leg, variables) and which events carry the
variables follow the captures under ../shared/esl/.
"""
from __future__ import annotations

import time
import uuid as uuidlib

# switch_channel_event_set_extended_data: only these events carry variable_* headers (DTMF does not).
EVENTS_WITH_VARIABLES = frozenset({
    "CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_UUID", "CHANNEL_ANSWER", "CHANNEL_PARK",
    "CHANNEL_UNPARK", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "REQUEST_PARAMS", "CHANNEL_DATA", "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_DESTROY", "SESSION_HEARTBEAT", "API", "RECORD_START",
    "RECORD_STOP", "PLAYBACK_START", "PLAYBACK_STOP", "CALL_UPDATE", "MEDIA_BUG_START", "MEDIA_BUG_STOP",
    "CHANNEL_HOLD", "CHANNEL_UNHOLD", "CUSTOM",
})

STATE_NUMBERS = {
    "CS_NEW": 0, "CS_INIT": 1, "CS_ROUTING": 2, "CS_SOFT_EXECUTE": 3, "CS_EXECUTE": 4,
    "CS_EXCHANGE_MEDIA": 5, "CS_PARK": 6, "CS_CONSUME_MEDIA": 7, "CS_HIBERNATE": 8, "CS_RESET": 9,
    "CS_HANGUP": 10, "CS_REPORTING": 11, "CS_DESTROY": 12,
}

# Q.850 codes for the causes the fake produces.
Q850 = {
    "NORMAL_CLEARING": 16, "USER_BUSY": 17, "NO_USER_RESPONSE": 18, "NO_ANSWER": 19,
    "SUBSCRIBER_ABSENT": 20, "CALL_REJECTED": 21, "DESTINATION_OUT_OF_ORDER": 27,
    "NORMAL_TEMPORARY_FAILURE": 41, "ORIGINATOR_CANCEL": 487, "USER_NOT_REGISTERED": 606,
    "NO_ROUTE_DESTINATION": 3, "MANAGER_REQUEST": 503, "LOSE_RACE": 502, "ATTENDED_TRANSFER": 602,
}


def now_us() -> int:
    """Microseconds since the epoch, as in Event-Date-Timestamp."""
    return int(time.time() * 1_000_000)


def new_uuid() -> str:
    """A fresh channel or job UUID."""
    return str(uuidlib.uuid4())


class FakeChannel:
    """One leg: identity, caller profile, variables, answer/bridge/hangup state."""

    def __init__(self, *, uuid: str | None = None, name: str, direction: str = "inbound",
                 caller_number: str = "", caller_name: str = "", destination: str = "",
                 context: str = "default", dialplan: str = "XML", source: str = "mod_sofia",
                 username: str | None = None, network_addr: str | None = None,
                 callee_name: str = "", callee_number: str = "", presence_id: str | None = None):
        self.uuid = uuid or new_uuid()
        self.name = name
        self.direction = direction
        self.caller_number = caller_number
        self.caller_name = caller_name
        self.destination = destination
        self.context = context
        self.dialplan = dialplan
        self.source = source
        self.username = username
        self.network_addr = network_addr
        self.callee_name = callee_name
        self.callee_number = callee_number
        # what the channel was created with: a flip of the caller id (lifecycle.flip_cid) keeps these
        self.orig_caller_name = caller_name
        self.orig_caller_number = caller_number
        self.ani = caller_number
        self.presence_id = presence_id
        self.rdnis = ""              # the destination before the last transfer (Caller-RDNIS)
        self.transfer_source = ""    # who moved it there (Caller-Transfer-Source)
        self.profile_index = 1       # a new caller profile per transfer
        self.logical_direction = direction   # uuid_bridge makes its originator's "inbound"
        self.state = "CS_EXECUTE" if direction == "inbound" else "CS_INIT"
        self.pending_state: str | None = None   # asked for, not entered yet: Channel-State-Number shows it
        self.call_state = "RINGING" if direction == "inbound" else "DOWN"
        self.answer_state = "ringing"
        self.hit_dialplan = direction == "inbound"
        self.created_us = now_us()
        self.profile_created_us = self.created_us   # a transfer or uuid_bridge makes a new caller profile
        # The caller profile's other-leg block as the real switch copied it when a uuid_bridge linked the legs
        # ("Other-Type", headers): it stays after the bridge ends, until the next caller profile.
        self.peer_block: tuple[str, list[tuple[str, str]]] | None = None
        self.answered_us = 0
        self.progress_us = 0
        self.progress_media_us = 0
        self.hangup_us = 0
        self.bridged_us = 0
        self.transfer_us = 0
        self.hold_us = 0
        self.codec: tuple[str, int, int] | None = ("PCMU", 8000, 64000)
        self.read_codec: tuple[str, int, int] | None = None   # when reading differs (a conference reads L16)
        self.hangup_cause: str | None = None
        self.hangup_by: str | None = None
        self.other: FakeChannel | None = None      # bridged peer
        self.other_type = ""
        self.on_hold = False
        self.variables: dict[str, str] = {}
        self.global_vars: dict[str, str] = {}  # the switch's, once added to one
        self.variables["direction"] = direction
        self.variables["uuid"] = self.uuid
        self.variables["session_id"] = "1"
        self.variables["channel_name"] = name
        self.variables["call_uuid"] = self.uuid
        if presence_id:
            self.variables["presence_id"] = presence_id

    # -- state ------------------------------------------------------------------------------------------
    @property
    def answered(self) -> bool:
        return self.answer_state == "answered"

    @property
    def hung_up(self) -> bool:
        return self.hangup_cause is not None

    @property
    def call_uuid(self) -> str:
        """Channel-Call-UUID: the call_uuid variable (a bridge's originator's uuid on the other leg)."""
        return self.variables.get("call_uuid") or self.uuid

    def set_var(self, name: str, value) -> None:
        """Set a channel variable (re-setting keeps its place); an empty value unsets it, as
        switch_channel_set_variable does."""
        value = "" if value is None else str(value)
        if value == "":
            self.variables.pop(name, None)
        else:
            self.variables[name] = value

    def get_var(self, name: str, default: str | None = None) -> str | None:
        return self.variables.get(name, default)

    def expand(self, text: str) -> str:
        """switch_channel_expand_variables, the part we use: ``${name}`` from this channel's variables, else
        the switch's globals (empty when neither has it), names that are themselves expanded (``${a_${b}}``), and ``\\$`` for a literal $."""
        out, i = [], 0
        while i < len(text):
            if text.startswith("\\$", i):
                out.append("$")
                i += 2
            elif text.startswith("${", i):
                depth, j = 1, i + 2
                while j < len(text) and depth:
                    depth += {"{": 1, "}": -1}.get(text[j], 0)
                    j += 1
                if depth:
                    out.append(text[i:])
                    break
                name = self.expand(text[i + 2:j - 1])
                out.append(self.variables.get(name, self.global_vars.get(name, "")))
                i = j
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    # -- header blocks -------------------------------------------------------------------------------
    def channel_block(self, state: str | None = None, call_state: str | None = None,
                      state_number: int | None = None) -> list[tuple[str, str]]:
        st = state or self.state
        h = [
            ("Channel-State", "CS_NONE" if st == "CS_NEW" else st),   # a state never run reads CS_NONE
            ("Channel-Call-State", call_state or self.call_state),
            ("Channel-State-Number", str(state_number if state_number is not None else STATE_NUMBERS.get(
                self.pending_state or st, 4))),
            ("Channel-Name", self.name),
            ("Unique-ID", self.uuid),
            ("Call-Direction", self.direction),
            ("Presence-Call-Direction", self.direction),
            ("Channel-HIT-Dialplan", "true" if self.hit_dialplan else "false"),
        ]
        if self.presence_id:
            h.append(("Channel-Presence-ID", self.presence_id))
        h += [("Channel-Call-UUID", self.call_uuid), ("Answer-State", self.answer_state)]
        if self.hangup_cause:
            h.append(("Hangup-Cause", self.hangup_cause))
        if self.codec:
            name, rate, bits = self.codec
            rname, rrate, rbits = self.read_codec or self.codec
            h += [
                ("Channel-Read-Codec-Name", rname), ("Channel-Read-Codec-Rate", str(rrate)),
                ("Channel-Read-Codec-Bit-Rate", str(rbits)), ("Channel-Write-Codec-Name", name),
                ("Channel-Write-Codec-Rate", str(rate)), ("Channel-Write-Codec-Bit-Rate", str(bits)),
            ]
        return h

    def profile_block(self, prefix: str = "Caller") -> list[tuple[str, str]]:
        """The caller profile as `<prefix>-...` headers (Caller-, Channel- in CHANNEL_DATA, Other-Leg-)."""
        p = prefix
        h = [(f"{p}-Direction", self.direction), (f"{p}-Logical-Direction", self.logical_direction)]
        if self.username:
            h.append((f"{p}-Username", self.username))
        other = p == "Other-Leg"
        if self.dialplan:   # an originated SIP leg has none (the captured Other-Leg block has no Profile-Index)
            h.append((f"{p}-Dialplan", self.dialplan))
        if self.caller_name:
            h.append((f"{p}-Caller-ID-Name", self.caller_name))
        h.append((f"{p}-Caller-ID-Number", self.caller_number))
        if self.orig_caller_name:
            h.append((f"{p}-Orig-Caller-ID-Name", self.orig_caller_name))
        h.append((f"{p}-Orig-Caller-ID-Number", self.orig_caller_number))
        if self.callee_name:
            h.append((f"{p}-Callee-ID-Name", self.callee_name))
        if self.callee_number:
            h.append((f"{p}-Callee-ID-Number", self.callee_number))
        if self.network_addr:
            h.append((f"{p}-Network-Addr", self.network_addr))
        h += [
            (f"{p}-ANI", self.ani),
        ] + ([(f"{p}-Destination-Number", self.destination)] if self.destination else []) + [
            (f"{p}-Unique-ID", self.uuid),
            (f"{p}-Source", self.source),
        ] + ([(f"{p}-Transfer-Source", self.transfer_source)] if self.transfer_source and not other else []) + [
            (f"{p}-Context", self.context),
        ] + ([(f"{p}-RDNIS", self.rdnis)] if self.rdnis and not other else []) + [
            (f"{p}-Channel-Name", self.name),
        ] + ([] if other else [(f"{p}-Profile-Index", str(self.profile_index))]) + [
            (f"{p}-Profile-Created-Time", str(self.profile_created_us)),
            (f"{p}-Channel-Created-Time", str(self.created_us)),
            (f"{p}-Channel-Answered-Time", str(self.answered_us)),
            (f"{p}-Channel-Progress-Time", str(self.progress_us)),
            (f"{p}-Channel-Progress-Media-Time", str(self.progress_media_us)),
            (f"{p}-Channel-Hangup-Time", str(self.hangup_us)),
            (f"{p}-Channel-Transfer-Time", str(self.transfer_us)),
            (f"{p}-Channel-Resurrect-Time", "0"),
            (f"{p}-Channel-Bridged-Time", str(self.bridged_us)),
            (f"{p}-Channel-Last-Hold", str(self.hold_us)),
            (f"{p}-Channel-Hold-Accum", "0"),
            (f"{p}-Screen-Bit", "true"),
            (f"{p}-Privacy-Hide-Name", "false"),
            (f"{p}-Privacy-Hide-Number", "false"),
        ]
        return h

    def variable_block(self) -> list[tuple[str, str]]:
        return [(f"variable_{k}", v) for k, v in self.variables.items()]

    def event_body(self, event_name: str, pre: list[tuple[str, str]] | None = None,
                   post: list[tuple[str, str]] | None = None, state: str | None = None,
                   call_state: str | None = None, state_number: int | None = None,
                   with_variables: bool | None = None) -> list[tuple[str, str]]:
        """Headers after the common block: pre, channel block, caller profile, other leg, variables, post."""
        h = list(pre or [])
        h += self.channel_block(state, call_state, state_number)
        h += self.profile_block("Caller")
        other = self.other
        if self.peer_block is not None and event_name not in ("DTMF",):
            h.append(("Other-Type", self.peer_block[0]))
            h += self.peer_block[1]
        elif other is not None and event_name not in ("DTMF",):
            h.append(("Other-Type", self.other_type or "originatee"))
            h += other.profile_block("Other-Leg")
        if with_variables is None:
            with_variables = event_name in EVENTS_WITH_VARIABLES
        if with_variables:
            h += self.variable_block()
        h += list(post or [])
        return h

    def channel_data(self) -> list[tuple[str, str]]:
        """The connect reply's header list (CHANNEL_DATA without the common block)."""
        h = self.profile_block("Channel")
        h += self.channel_block()
        h += self.profile_block("Caller")
        h += self.variable_block()
        return h

    def __repr__(self) -> str:
        return f"FakeChannel({self.uuid[:8]} {self.name} {self.answer_state})"
