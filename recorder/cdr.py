"""Call records from the calling hooks (IVR runner, ACD) and switch domain events; finalised with a MAC.

``CdrRecorder`` keeps the drafts of live calls (recorder.drafts: ``CallDraft`` and the pure rules that make
a record of one), writes the CallRecord row when the call starts and finalises it on hang-up: the record
whole with its keyed MAC, its seal in the chain (recorder.integrity) and the missed-call entry when nobody
served the caller, written by recorder.finalising. A switch's hang-up events hand their finalisations to
the recorder's one ``Finaliser`` greenlet, so the switch's event-dispatch greenlet never waits for the
process's seal turn. Hooks are cheap and never raise into the call: a failure is logged, the call goes on.
"""
from __future__ import annotations

import collections
import datetime as dt
import json
import time
import logging

from recorder.drafts import FLAGS, CallDraft, _parse_at, _utc, side_of, who_hung_up
from recorder.finalising import Finaliser, write_record
from recorder.models import CallRecord

log = logging.getLogger(__name__)


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
        self.finaliser = Finaliser(self._finalise)  # the switch events' finalisations, off their greenlet

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
            return self.finalise(draft) if self._due(draft) else None
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
            return self.finalise(draft) if self._due(draft) else None  # as in amend
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
               at: dt.datetime | None = None, wait: bool = True) -> CallRecord | None:
        """A channel hung up. An agent leg only notes who hung up; the caller's leg finalises the record
        (``wait``: as ``finalise``). A call whose finalisation is under way is not ended again: the event
        brings only the side's evidence, as a late one does."""
        main = self.leg_of.get(call_uuid)
        if main is not None:
            draft = self.drafts.get(main)
            if draft is not None:
                if draft.ended_at is None:
                    draft.agent_leg_first = True
                draft.agent_leg_side = side_of(side, "agent") or draft.agent_leg_side
                if draft.finalising:
                    return self._side_again(draft, wait)
            return None
        draft = self.drafts.get(call_uuid)
        if draft is None:
            return self._late_side(call_uuid, side, wait)
        if draft.finalising or draft.ended_at is not None:  # being written, or hung up already
            draft.caller_side = side_of(side, "caller") or draft.caller_side
            return self._side_again(draft, wait)
        draft.ended_at = self._at(at)
        draft.hangup_cause = (cause or "")[:64]
        draft.caller_side = side_of(side, "caller") or draft.caller_side
        draft.hangup_side = who_hung_up(draft)
        if draft.awaiting_ivr:
            # The IVR's last word (its trace, else ivr_ended) comes next and finalises the record once with it;
            # finalised here too, every IVR call was written twice, the first time undecided (issue 15).
            return None
        return self.finalise(draft, wait)

    @staticmethod
    def _due(draft: CallDraft) -> bool:
        """Whether a change to a live draft is written now: its record is being written (and may be built
        already), or the call hung up and only waited for the IVR's word (or its writing failed: written now,
        else by the sweep)."""
        return bool(draft.finalising) or (draft.ended_at is not None and not draft.awaiting_ivr)

    def _late_side(self, call_uuid: str, side: str, wait: bool = True) -> CallRecord | None:
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
        return self._side_again(draft, wait)

    def _side_again(self, draft: CallDraft, wait: bool) -> CallRecord | None:
        """A finalised (or finalising) call's side decided again from new evidence; finalised again if changed."""
        mapped = who_hung_up(draft)
        if mapped == draft.hangup_side:
            return None
        draft.hangup_side = mapped
        return self.finalise(draft, wait) if self._due(draft) else None

    # -- calls the switch lost (recorder.sweep) ------------------------------------------------------------
    def cut_off(self, call_uuid: str, at: dt.datetime | None = None) -> CallRecord | None:
        """Close a live call whose channel no switch has any more (its hang-up event was lost): it ends at the
        last moment anything was heard of it (or ``at``), hang-up side unknown, disposition cut_off unless
        someone answered it; finalised and signed like any record, the draft dropped. An unserved caller
        lands on the missed-call list ("cut_off")."""
        draft = self.drafts.get(call_uuid)
        if draft is None or draft.finalising:
            return None  # gone, or hung up with its record being written
        if draft.ended_at is not None:
            # Hung up, but its finalisation failed (no seal turn within integrity.SEAL_TURN_LIMIT, the database
            # away) or its IVR's last word never came (recorder.sweep.IVR_WORD_LIMIT): written as it ended, not as
            # lost, and no longer waiting for the IVR, so an unserved caller is listed for a call-back.
            draft.awaiting_ivr = False
            return self.finalise(draft)
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
    def finalise(self, draft: CallDraft, wait: bool = True) -> CallRecord | None:
        """Write the complete record with its MAC; create the missed-call entry when nobody served it.
        ``wait=False`` (a switch's event greenlet): handed to the finaliser, written after those handed
        before it, None returned at once."""
        if not wait:
            self.finaliser.hand(draft)
            return None
        draft.finalising += 1
        try:
            return self._finalise(draft)
        finally:
            draft.finalising -= 1

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until the finalisations handed over by switch events are written; False after ``timeout``."""
        return self.finaliser.settle(timeout)

    def _finalise(self, draft: CallDraft) -> CallRecord:
        try:
            record, entry = write_record(self.key, draft, self._prepare, self._now)
        except BaseException:
            self._unwritten(draft)
            raise
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

    def _unwritten(self, draft: CallDraft) -> None:
        """A finalisation that failed (no seal turn within integrity.SEAL_TURN_LIMIT, the database away) leaves
        its draft live, where the sweep finds it (``cut_off``: written as it ended). A call finalised before is
        taken back from ``finished``: its re-finalisation (the IVR's word, a later side) was otherwise lost,
        the record left as first written (an unserved caller never listed)."""
        if self.finished.pop(draft.call_uuid, None) is None:
            return
        self._finished_at.pop(draft.call_uuid, None)
        self.drafts[draft.call_uuid] = draft
        for leg in draft.other_uuids:
            if self.finished_leg_of.get(leg) == draft.call_uuid:
                del self.finished_leg_of[leg]
            self.leg_of[leg] = draft.call_uuid

    def _prepare(self, draft: CallDraft) -> None:
        """The draft completed before its record is built: a hold still on closed, what other parts know."""
        if draft.hold_started_at is not None:
            draft.hold_total += (draft.ended_at - draft.hold_started_at).total_seconds()
            draft.hold_started_at = None
        for enrich in self.enrichers:
            try:
                enrich(draft)
            except Exception:  # noqa: BLE001 - a missing detail must not lose the record
                log.exception("call record enricher %r failed for %s", enrich, draft.call_uuid)

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
                # Written by the finaliser: this greenlet carries the switch's later events (the ACD's too).
                self.hangup(uuid, getattr(event, "cause", ""), getattr(event, "hangup_side", "") or "", wait=False)
        except Exception:  # noqa: BLE001 - never let a bad event stop the event consumer
            log.exception("call record update from %s failed", name)
