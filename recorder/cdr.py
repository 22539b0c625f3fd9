"""Call records from the calling hooks (IVR runner, ACD) and switch domain events; finalised with a MAC.

Pure part: ``CallDraft`` collects what happened to one call; ``classify``, ``durations`` and
``missed_reason`` turn it into the record's disposition, times and missed-call reason.
I/O part: ``CdrRecorder`` keeps the drafts of live calls, writes the CallRecord row when the call starts
and finalises it (with the keyed MAC) on hang-up, creating the missed-call entry when nobody served the
caller; every finalisation is chained by a seal (recorder.integrity). Hooks are cheap and never raise
into the call: a failure is logged, the call goes on.
"""
from __future__ import annotations

import collections
import datetime as dt
import json
import time
import logging
from dataclasses import dataclass, field

from recorder.integrity import append_seal, compute_mac, record_fields, seal_turn
from recorder import aggregates, missed
from recorder.models import CallRecord, MissedCall, Recording

log = logging.getLogger(__name__)

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
    if "not_stored" in draft.flags:
        return "not_stored"  # the IVR could not store what the caller left (the database was away)
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


class CdrRecorder:
    """Builds call records from hooks and events. One per process; thread/greenlet-safe enough for gevent
    (every method runs to completion without yielding before it touches the draft)."""

    def __init__(self, key: bytes, clock=None, on_missed=None, keep_finished: int = 5000,
                 keep_seconds: float = 300.0, monotonic=time.monotonic):
        self.key = key
        self.clock = clock
        self.drafts: dict[str, CallDraft] = {}
        self.leg_of: dict[str, str] = {}  # other leg uuid -> call uuid
        self.finished_leg_of: dict[str, str] = {}  # the same for calls in ``finished`` (late hang-up events)
        self.on_missed = on_missed  # callback(MissedCall) e.g. to notify the desk
        # Drafts of recently ended calls: the IVR trace and the queue's last word can arrive just after the
        # hang-up event, and then the record is finalised again with them (and re-signed).
        # At most ``keep_seconds`` (late words come within seconds) and ``keep_finished``: about 3.4 KiB each
        # with the IVR path, 5,000 kept whatever their age were 17 MiB of the process (issue 15 item 11).
        self.finished: collections.OrderedDict[str, CallDraft] = collections.OrderedDict()
        self.keep_finished, self.keep_seconds, self._monotonic = keep_finished, keep_seconds, monotonic
        self._finished_at: dict[str, float] = {}
        # Callables(draft) run before every finalisation, to fill in what other parts know (ACD queue rows).
        self.enrichers: list = []

    def _now(self) -> dt.datetime:
        return _utc(self.clock.now() if self.clock else dt.datetime.now(dt.timezone.utc))

    def _at(self, at) -> dt.datetime:
        return _utc(at) if at is not None else self._now()

    def draft(self, call_uuid: str) -> CallDraft | None:
        draft = self.drafts.get(self.leg_of.get(call_uuid, call_uuid))
        if draft is not None:
            draft.last_event_at = self._now()  # every hook looks its call up here: the call was heard of now
        return draft

    def amend(self, call_uuid: str, change) -> CallRecord | None:
        """Apply ``change(draft)`` to a live call, or to a just-ended one and finalise it again."""
        draft = self.draft(call_uuid)
        if draft is not None:
            change(draft)
            return None
        draft = self.finished.get(call_uuid)
        if draft is None:
            return None
        change(draft)
        return self.finalise(draft)

    # -- hooks -------------------------------------------------------------------------------------------
    def call_started(self, call_uuid: str, caller: str = "", called: str = "", direction: str = "inbound",
                     server: str = "", at: dt.datetime | None = None, ivr: bool = False) -> CallRecord:
        """A new call: the row exists from now on (so live calls are visible), not yet finalised. ``ivr``:
        the IVR takes the call and will report (its trace, then ``ivr_ended``) whether it served it."""
        draft = self.start_draft(call_uuid, caller, called, direction, server, at, ivr)
        at = draft.started_at
        fields = dict(call_uuid=call_uuid, caller=draft.caller, called=draft.called, direction=direction,
                      server=draft.server, started_at=at)
        # One statement on the call path; a repeated start of the same channel keeps the first row.
        record_id = CallRecord.insert(**fields).on_conflict_ignore().execute()
        if not record_id:
            existing = CallRecord.get(CallRecord.call_uuid == call_uuid)
            draft.record_id = existing.id
            return existing
        draft.record_id = record_id
        return CallRecord(id=record_id, **fields)

    def start_draft(self, call_uuid: str, caller: str = "", called: str = "", direction: str = "inbound",
                    server: str = "", at: dt.datetime | None = None, ivr: bool = False) -> CallDraft:
        """The call's draft in memory only (call_started without its row, for a database that is away): its
        hang-up writes the record whole, or the sweep closes it as cut off and lists the caller."""
        draft = CallDraft(call_uuid=call_uuid, caller=caller[:32], called=called[:32], direction=direction,
                          server=server[:64], started_at=self._at(at), awaiting_ivr=ivr)
        self.drafts[call_uuid] = draft
        return draft

    def ivr_node(self, call_uuid: str, node: str, at: dt.datetime | None = None) -> None:
        draft = self.draft(call_uuid)
        if draft is not None:
            draft.ivr_path.append({"node": str(node)[:64], "at": self._at(at).isoformat()})

    def flag(self, call_uuid: str, name: str) -> None:
        """Mark the call: blacklisted, fax, voicemail, out_of_hours, served (self-service done), overflowed.
        A call that just ended (a message filed after the caller hung up) is finalised again with it."""
        if name not in FLAGS:
            raise ValueError(f"unknown call flag {name!r}; expected one of {', '.join(FLAGS)}")
        self.amend(call_uuid, lambda draft: draft.flags.add(name))

    def ivr_ended(self, call_uuid: str) -> CallRecord | None:
        """The IVR let go of the call. Normally its trace said so already; when the trace never came (it
        could not be built), the record stops waiting and the missed-call decision is made without it."""
        draft = self.draft(call_uuid)
        if draft is not None:
            draft.awaiting_ivr = False
            return None
        draft = self.finished.get(call_uuid)
        if draft is None or not draft.awaiting_ivr:
            return None
        draft.awaiting_ivr = False
        return self.finalise(draft)

    def queue_entered(self, call_uuid: str, queue: str, at: dt.datetime | None = None) -> None:
        draft = self.draft(call_uuid)
        if draft is not None:
            draft.queue = str(queue)[:64]
            if draft.queue_entered_at is None:
                draft.queue_entered_at = self._at(at)

    def queue_left(self, call_uuid: str, outcome: str, at: dt.datetime | None = None) -> None:
        """The call left its queue: answered, abandoned, overflowed or timeout."""
        draft = self.draft(call_uuid)
        if draft is not None:
            draft.queue_left_at = self._at(at)
            draft.queue_outcome = outcome
            if outcome == "overflowed":
                draft.flags.add("overflowed")

    def agent_offered(self, call_uuid: str, agent_no: str, at: dt.datetime | None = None) -> None:
        draft = self.draft(call_uuid)
        if draft is not None:
            draft.offers.append({"agent": str(agent_no)[:16], "at": self._at(at).isoformat(), "result": ""})

    def agent_offer_result(self, call_uuid: str, agent_no: str, result: str) -> None:
        """How an offer ended: answered, refused, timeout."""
        draft = self.draft(call_uuid)
        if draft is None:
            return
        for offer in reversed(draft.offers):
            if offer["agent"] == agent_no and not offer["result"]:
                offer["result"] = result
                break

    def agent_answered(self, call_uuid: str, agent_no: str, agent_uuid: str = "",
                       at: dt.datetime | None = None) -> None:
        draft = self.draft(call_uuid)
        if draft is None:
            return
        at = self._at(at)
        if draft.answered_at is None:
            draft.answered_at = at
        draft.agent_no = str(agent_no)[:16]
        self.agent_offer_result(call_uuid, agent_no, "answered")
        if draft.queue_entered_at is not None and draft.queue_left_at is None:
            draft.queue_left_at, draft.queue_outcome = at, "answered"
        if agent_uuid:
            self.add_leg(call_uuid, agent_uuid)

    def add_leg(self, call_uuid: str, other_uuid: str) -> None:
        draft = self.draft(call_uuid)
        if draft is not None and other_uuid and other_uuid not in draft.other_uuids and other_uuid != draft.call_uuid:
            draft.other_uuids.append(other_uuid)
            self.leg_of[other_uuid] = draft.call_uuid

    def hold(self, call_uuid: str, on: bool, at: dt.datetime | None = None) -> None:
        draft = self.draft(call_uuid)
        if draft is None:
            return
        at = self._at(at)
        if on and draft.hold_started_at is None:
            draft.hold_started_at = at
        elif not on and draft.hold_started_at is not None:
            draft.hold_total += (at - draft.hold_started_at).total_seconds()
            draft.hold_started_at = None

    def hangup(self, call_uuid: str, cause: str = "NORMAL_CLEARING", side: str = "",
               at: dt.datetime | None = None) -> CallRecord | None:
        """A channel hung up. An agent leg only notes who hung up; the caller's leg finalises the record."""
        main = self.leg_of.get(call_uuid)
        if main is not None:
            draft = self.drafts.get(main)
            if draft is not None:
                if draft.ended_at is None:
                    draft.agent_leg_first = True
                draft.agent_leg_side = side_of(side, "agent") or draft.agent_leg_side
            return None
        draft = self.drafts.get(call_uuid)
        if draft is None:
            return self._late_side(call_uuid, side)
        draft.ended_at = self._at(at)
        draft.hangup_cause = (cause or "")[:64]
        draft.caller_side = side_of(side, "caller") or draft.caller_side
        draft.hangup_side = who_hung_up(draft)
        return self.finalise(draft)

    def _late_side(self, call_uuid: str, side: str) -> CallRecord | None:
        """FreeSWITCH names who ended a SIP dialog (sip_hangup_disposition) only in the channel's final
        hang-up event (CHANNEL_HANGUP_COMPLETE), often after the caller's first one closed the record: the
        evidence it brings (the caller's leg or an agent's) decides the side again, and a changed side is
        finalised again."""
        draft = self.finished.get(call_uuid)
        if draft is not None:
            draft.caller_side = side_of(side, "caller") or draft.caller_side
        else:
            draft = self.finished.get(self.finished_leg_of.get(call_uuid, ""))
            if draft is None:
                return None
            draft.agent_leg_side = side_of(side, "agent") or draft.agent_leg_side
        mapped = who_hung_up(draft)
        if mapped == draft.hangup_side:
            return None
        draft.hangup_side = mapped
        return self.finalise(draft)

    # -- calls the switch lost (recorder.sweep) ------------------------------------------------------------
    def cut_off(self, call_uuid: str, at: dt.datetime | None = None) -> CallRecord | None:
        """Close a live call whose channel no switch has any more (its hang-up event was lost): it ends at the
        last moment anything was heard of it (or ``at``), hang-up side unknown, disposition cut_off unless
        someone answered it; finalised and signed like any record, the draft dropped. An unserved caller
        lands on the missed-call list ("cut_off")."""
        draft = self.drafts.get(call_uuid)
        if draft is None:
            return None
        known = [t for t in (draft.started_at, draft.last_event_at, draft.queue_left_at, draft.answered_at) if t]
        draft.ended_at = _utc(at) if at is not None else (max(known) if known else self._now())
        draft.hangup_cause = draft.hangup_cause or "LOST_CHANNEL"
        draft.hangup_side = ""
        draft.flags.add("cut_off")
        draft.awaiting_ivr = False  # the IVR's last word is not coming any more
        return self.finalise(draft)

    def adopt(self, record: CallRecord, ivr_path: list[dict] | None = None, served: bool = False) -> CallDraft:
        """Take over the open record of a call an earlier run of the app started (it was stopped without
        closing it): a draft from what the row holds, so the call's hang-up, or its sweep, finalises it."""
        draft = CallDraft(call_uuid=record.call_uuid, caller=record.caller, called=record.called,
                          direction=record.direction, server=record.server, started_at=_utc(record.started_at),
                          record_id=record.id, agent_no=record.agent_no or "")
        draft.ivr_path = list(ivr_path or [])
        if served:
            draft.flags.add("served")
        for moment in [draft.started_at] + [_parse_at(n.get("at")) for n in draft.ivr_path]:
            if moment is not None and (draft.last_event_at is None or moment > draft.last_event_at):
                draft.last_event_at = moment
        self.drafts[record.call_uuid] = draft
        for leg in json.loads(record.other_uuids or "[]"):
            self.add_leg(record.call_uuid, leg)
        return draft

    # -- finalisation ------------------------------------------------------------------------------------
    def finalise(self, draft: CallDraft) -> CallRecord:
        """Write the complete record with its MAC; create the missed-call entry when nobody served it."""
        from caseflow.models import User

        if draft.hold_started_at is not None:
            draft.hold_total += (draft.ended_at - draft.hold_started_at).total_seconds()
            draft.hold_started_at = None
        for enrich in self.enrichers:
            try:
                enrich(draft)
            except Exception:  # noqa: BLE001 - a missing detail must not lose the record
                log.exception("call record enricher %r failed for %s", enrich, draft.call_uuid)
        disposition = classify(draft)
        wait, talk, hold = durations(draft)
        # The row written at call start is overwritten whole (one UPDATE); without one it is inserted.
        record = CallRecord(id=draft.record_id, call_uuid=draft.call_uuid)
        record.caller, record.called, record.direction = draft.caller, draft.called, draft.direction
        record.server = draft.server
        record.started_at = draft.started_at or draft.ended_at
        record.other_uuids = json.dumps(draft.other_uuids)
        record.ivr_path = json.dumps(draft.ivr_path, ensure_ascii=False)
        record.queue = draft.queue
        record.queue_entered_at, record.queue_left_at = draft.queue_entered_at, draft.queue_left_at
        record.agents_offered = json.dumps(draft.offers)
        record.answered_at, record.ended_at = draft.answered_at, draft.ended_at
        record.wait_seconds, record.talk_seconds, record.hold_seconds = wait, talk, hold
        record.hangup_cause, record.hangup_side = draft.hangup_cause, draft.hangup_side
        record.disposition = disposition
        record.agent_no = draft.agent_no
        record.agent = User.get_or_none(User.operator_no == draft.agent_no) if draft.agent_no else None
        database = CallRecord._meta.database
        with seal_turn(database), database.atomic():  # the turn before the connection (integrity.seal_turn)
            if record.id is None:
                existing = CallRecord.get_or_none(CallRecord.call_uuid == draft.call_uuid)
                record.id = existing.id if existing else None
            counted_before = aggregates.stored_count(record.id)  # a record finalised again takes its counts back
            if record.id is None:
                record.save(force_insert=True)
            record.finalised = True
            record.mac = compute_mac(self.key, record_fields(record))
            record.save()
            aggregates.apply(counted_before, aggregates.counted(record))
            # Every (re)finalisation is the next link of the day's chain: deletions and replays show.
            append_seal(self.key, record, self._now())
            # Recordings started before the agent was known get the call's caller and agent for search.
            Recording.update(call=record, caller=record.caller, agent_no=record.agent_no).where(
                Recording.call_uuid == record.call_uuid).execute()
            # Whether a self-service caller was served is the IVR's to say: no missed-call entry (nor its
            # log line) until it has, so a served caller is never listed, not even for a moment.
            undecided = draft.awaiting_ivr and disposition == "self_service"
            entry = None if undecided else self._missed_entry(record, draft, missed_reason(draft, disposition))
        self.drafts.pop(draft.call_uuid, None)
        for leg in draft.other_uuids:
            self.leg_of.pop(leg, None)
            self.finished_leg_of[leg] = draft.call_uuid
        self.finished[draft.call_uuid] = draft
        self.finished.move_to_end(draft.call_uuid)
        self._finished_at[draft.call_uuid] = now = self._monotonic()
        while self.finished:
            oldest = next(iter(self.finished))
            if len(self.finished) <= self.keep_finished and now - self._finished_at[oldest] <= self.keep_seconds:
                break
            old = self.finished.pop(oldest)
            self._finished_at.pop(oldest, None)
            for leg in old.other_uuids:
                if self.finished_leg_of.get(leg) == oldest:
                    del self.finished_leg_of[leg]
        if entry is not None and self.on_missed is not None:
            try:
                self.on_missed(entry)
            except Exception:  # noqa: BLE001 - a notifier must not break call records
                log.exception("missed-call notifier failed")
        return record

    @staticmethod
    def _missed_entry(record: CallRecord, draft: CallDraft, reason: str | None) -> MissedCall | None:
        """Keep the call on the missed-call list in line with its (re)finalised record, through
        recorder.missed (which counts a call the ACD already reported only once, and leaves entries someone
        acted on alone); returns the entry when the call was newly counted."""
        if reason is None:
            missed.withdraw(record.call_uuid, source="cdr")
            return None
        wait = durations(draft)[0] if draft.queue_entered_at is not None else 0
        entry, added = missed.note_missed(draft.caller, reason, call=record, queue=draft.queue, wait_seconds=wait,
                                          at=draft.ended_at, source="cdr")
        return entry if added else None

    # -- switch domain events ----------------------------------------------------------------------------
    def on_switch_event(self, event) -> None:
        """Feed a switch.events domain event (subscribe this to the inbound connection)."""
        name = type(event).__name__
        uuid = getattr(event, "uuid", "") or ""
        try:
            if name == "ChannelBridged":
                other = getattr(event, "other_uuid", "")
                if uuid in self.drafts:
                    self.add_leg(uuid, other)
                elif other in self.drafts:
                    self.add_leg(other, uuid)
            elif name == "ChannelHangup":
                self.hangup(uuid, getattr(event, "cause", ""), getattr(event, "hangup_side", "") or "")
        except Exception:  # noqa: BLE001 - never let a bad event stop the event consumer
            log.exception("call record update from %s failed", name)
