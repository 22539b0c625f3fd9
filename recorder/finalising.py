"""A finished call's record written: the row whole with its MAC, the quarter-hour counts, the seal, the
recordings' links and the missed-call entry, in one transaction taken in this process's seal turn
(recorder.integrity.seal_turn); and ``Finaliser``, the greenlet that writes them for the switches' events.

``cdr.CdrRecorder`` keeps the calls' drafts and decides when a record is (re)finalised; this module writes it.
The turn serialises every finalisation of the process, whichever switch's call it is: a switch's event-dispatch
greenlet that waited for it held up that switch's later events, the ACD's hang-ups
among them. The hang-up events therefore hand their finalisations to the recorder's ``Finaliser``, one greenlet
writing them one by one in the order handed over, so a call's later finalisation (its final hang-up event's
side) is never written before its earlier one. The record is built when its turn comes, from the draft as it is
then: what a later event of the call added meanwhile is written with it.
"""
from __future__ import annotations

import collections
import datetime as dt
import json
import logging
from typing import Callable

import gevent

from core.db import ahead_in_pool
from recorder import aggregates, missed
from recorder.drafts import CallDraft, classify, durations, missed_reason
from recorder.integrity import SealTurnTimeout, append_seal, compute_mac, record_fields, seal_turn
from recorder.models import CallRecord, MissedCall, Recording

log = logging.getLogger(__name__)


def write_record(key: bytes, draft: CallDraft, prepare: Callable[[CallDraft], None],
                 now: Callable[[], dt.datetime]) -> tuple[CallRecord, MissedCall | None]:
    """Write ``draft``'s complete record with its MAC and seal, in the seal turn; ``prepare(draft)`` first,
    in the turn (what other parts know). Returns the record and its missed-call entry when newly counted."""
    database = CallRecord._meta.database
    # The turn before the connection (integrity.seal_turn); in it, its statements' connections ahead of the
    # other waiters for the pool's (core.db.ahead_in_pool): every record of the process waits for this one, and
    # each statement of it queued behind hundreds under load (bench/simulation.py on PostgreSQL).
    with seal_turn(database), ahead_in_pool():
        prepare(draft)
        record = _record_of(draft)
        disposition = record.disposition
        with database.atomic():
            if record.id is None:
                existing = CallRecord.get_or_none(CallRecord.call_uuid == draft.call_uuid)
                record.id = existing.id if existing else None
            counted_before = aggregates.stored_count(record.id)  # a record finalised again takes its counts back
            if record.id is None:
                record.save(force_insert=True)
            record.finalised = True
            record.mac = compute_mac(key, record_fields(record))
            record.save()
            aggregates.apply(counted_before, aggregates.counted(record))
            # Every (re)finalisation is the next link of the day's chain: deletions and replays show.
            append_seal(key, record, now())
            # Recordings started before the agent was known get the call's caller and agent for search.
            Recording.update(call=record, caller=record.caller, agent_no=record.agent_no).where(
                Recording.call_uuid == record.call_uuid).execute()
            # Whether a self-service caller was served is the IVR's to say: no missed-call entry (nor its
            # log line) until it has, so a served caller is never listed, not even for a moment.
            undecided = draft.awaiting_ivr and disposition == "self_service"
            entry = None if undecided else _missed_entry(record, draft, missed_reason(draft, disposition))
    return record, entry


def _record_of(draft: CallDraft) -> CallRecord:
    """The row written at call start overwritten whole (one UPDATE); without one it is inserted."""
    from caseflow.models import User

    wait, talk, hold = durations(draft)
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
    record.disposition = classify(draft)
    record.agent_no = draft.agent_no
    record.agent = User.get_or_none(User.operator_no == draft.agent_no) if draft.agent_no else None
    return record


def _missed_entry(record: CallRecord, draft: CallDraft, reason: str | None) -> MissedCall | None:
    """Keep the call on the missed-call list in line with its (re)finalised record, through recorder.missed
    (which counts a call the ACD already reported only once, and leaves entries someone acted on alone);
    returns the entry when the call was newly counted."""
    if reason is None:
        missed.withdraw(record.call_uuid, source="cdr")
        return None
    wait = durations(draft)[0] if draft.queue_entered_at is not None else 0
    entry, added = missed.note_missed(draft.caller, reason, call=record, queue=draft.queue, wait_seconds=wait,
                                      at=draft.ended_at, source="cdr")
    return entry if added else None


class Finaliser:
    """One greenlet finalising the drafts handed to it, one at a time in the order handed over; started when
    there is work, gone when there is none. ``finalise(draft)`` does the work (its failure is logged)."""

    def __init__(self, finalise: Callable[[CallDraft], object]):
        self.finalise = finalise
        self.waiting: collections.deque[CallDraft] = collections.deque()
        self._greenlet: gevent.Greenlet | None = None

    def hand(self, draft: CallDraft) -> None:
        """Finalise ``draft`` after those handed before it; returns at once."""
        draft.finalising += 1
        self.waiting.append(draft)
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def settle(self, timeout: float) -> bool:
        """Wait until everything handed over is written (tests, a stop); False after ``timeout``."""
        greenlet = self._greenlet
        return greenlet is None or greenlet.join(timeout) is not None or greenlet.dead

    def _run(self) -> None:
        try:
            while self.waiting:
                draft = self.waiting.popleft()
                try:
                    self.finalise(draft)
                except SealTurnTimeout as e:  # its alarm raised once; the draft stays for the sweep
                    log.warning("call record of %s not finalised: %s", draft.call_uuid, e)
                except Exception:  # noqa: BLE001 - the call's draft stays for the sweep to close
                    log.exception("call record of %s not finalised", draft.call_uuid)
                finally:
                    draft.finalising -= 1
        finally:
            self._greenlet = None
