"""A live call's draft and the pure rules that turn it into a call record: its disposition (``classify``), times
(``durations``), missed-call reason (``missed_reason``) and who hung up (``side_of``, ``who_hung_up``).

No I/O: recorder.cdr fills the drafts from the hooks and the switch's events, recorder.finalising writes them.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

FLAGS = ("blacklisted", "fax", "voicemail", "out_of_hours", "served", "overflowed", "callback_requested",
         "cut_off")


def _utc(moment: dt.datetime) -> dt.datetime:
    """Naive UTC to the second (what the database and the MAC keep)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=0)


@dataclass
class CallDraft:
    """Everything known about a live call; pure data."""

    call_uuid: str
    caller: str = ""
    called: str = ""
    direction: str = "inbound"
    server: str = ""
    started_at: dt.datetime | None = None
    other_uuids: list[str] = field(default_factory=list)
    ivr_path: list[dict] = field(default_factory=list)
    queue: str = ""
    queue_entered_at: dt.datetime | None = None
    queue_left_at: dt.datetime | None = None
    queue_outcome: str = ""  # answered, abandoned, overflowed, timeout
    offers: list[dict] = field(default_factory=list)
    answered_at: dt.datetime | None = None
    agent_no: str = ""
    hold_started_at: dt.datetime | None = None
    hold_total: float = 0.0
    ended_at: dt.datetime | None = None
    hangup_cause: str = ""
    hangup_side: str = ""
    # Evidence of who ended the call, from the legs' own hang-up events (see CdrRecorder.hangup):
    agent_leg_first: bool = False  # an agent's leg hung up while the caller's was still up
    agent_leg_side: str = ""       # that leg's SIP disposition mapped: "agent" (the phone's BYE) or "system"
    caller_side: str = ""          # the caller's leg's disposition mapped: "caller" or "system"
    flags: set[str] = field(default_factory=set)
    record_id: int | None = None  # the CallRecord row written at call start
    # The IVR has the call and has not yet said whether it served the caller (its trace): until it has,
    # a self-service call is not judged missed (the trace often lands just after the hang-up).
    awaiting_ivr: bool = False
    last_event_at: dt.datetime | None = None  # the last moment anything was heard of the call (a cut-off's end)
    finalising: int = 0  # its record's writes under way or handed to the finaliser (recorder.finalising)


def classify(draft: CallDraft) -> str:
    """The disposition: what finally happened to the call (first matching rule wins)."""
    if draft.direction == "outbound":
        return "answered" if draft.answered_at is not None else "no_answer"
    if "blacklisted" in draft.flags:
        return "blacklisted"
    if "fax" in draft.flags:
        return "fax"
    if draft.answered_at is not None:
        return "answered"
    if "voicemail" in draft.flags:
        return "voicemail"
    if "cut_off" in draft.flags:
        return "cut_off"  # the switch lost it before anyone answered (recorder.sweep closed it)
    if "overflowed" in draft.flags or draft.queue_outcome == "overflowed":
        return "overflowed"
    if draft.queue_entered_at is not None:
        return "abandoned"
    return "self_service"


def durations(draft: CallDraft) -> tuple[int, int, int]:
    """(wait, talk, hold) in whole seconds. Wait runs from entering a queue to answer (or leaving)."""
    end = draft.ended_at
    wait = 0.0
    if draft.queue_entered_at is not None:
        stop = draft.answered_at or draft.queue_left_at or end
        if stop is not None:
            wait = (stop - draft.queue_entered_at).total_seconds()
    hold = draft.hold_total
    if draft.hold_started_at is not None and end is not None:
        hold += (end - draft.hold_started_at).total_seconds()
    talk = 0.0
    if draft.answered_at is not None and end is not None:
        talk = (end - draft.answered_at).total_seconds() - hold
    return max(round(wait), 0), max(round(talk), 0), max(round(hold), 0)


def missed_reason(draft: CallDraft, disposition: str) -> str | None:
    """Why this call belongs on the missed-call list, or None (P5 §3.6.4)."""
    if disposition in ("answered", "blacklisted", "fax", "voicemail", "no_answer") or not draft.caller \
            or draft.direction == "outbound":
        return None
    if "callback_requested" in draft.flags and disposition in ("abandoned", "overflowed"):
        return "callback_request"
    if disposition in ("abandoned", "overflowed"):
        return "abandoned"
    if "not_filed" in draft.flags:
        return "not_filed"  # the IVR failed on a bug: the caller's recording is kept with the call, no ticket
    if "not_stored" in draft.flags:
        return "not_stored"  # the IVR could not store what the caller left (the database was away)
    if "no_ticket" in draft.flags:
        return "no_ticket"  # what the caller recorded was not usable: nothing filed, whatever came after
    if "served" in draft.flags:
        return None  # self-service gave the caller what they came for (even after hours)
    if disposition == "cut_off":
        return "cut_off"
    if "out_of_hours" in draft.flags:
        return "out_of_hours"
    if draft.hangup_side in ("caller", ""):
        return "ivr_hangup"
    return None


def _parse_at(text) -> dt.datetime | None:
    """An ISO time kept in a record's JSON (IVR path), as naive UTC; None when absent or unreadable."""
    try:
        return _utc(dt.datetime.fromisoformat(str(text))) if text else None
    except ValueError:
        return None


def side_of(value: str, leg: str) -> str:
    """Map a hang-up side as the switch reports it ("caller" = the far end of that leg hung up, "switch" =
    we hung up, or the raw sip_hangup_disposition) to caller / agent / system."""
    value = (value or "").lower()
    if value in ("agent", "system"):
        return value
    if value in ("caller", "recv_bye", "recv_cancel", "recv_refuse", "remote", "callee"):
        return "agent" if leg == "agent" else "caller"
    if value in ("send_bye", "send_cancel", "send_refuse", "local", "switch"):
        return "system"
    return ""


def who_hung_up(draft: CallDraft) -> str:
    """挂机方 from evidence only: "agent" when an agent's leg hung up while the caller's was up and its SIP
    disposition says the phone sent the BYE; else what the caller's leg says (its BYE: "caller", ours:
    "system"); else "" (unknown). An agent's leg ending first without a disposition proves nothing: the
    system or a loopback caller's leaving may have ended it."""
    if draft.agent_leg_first and draft.agent_leg_side == "agent":
        return "agent"
    return draft.caller_side
