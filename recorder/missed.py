"""Missed calls (P5 §3.6.4): the one list of callers nobody served, called back from the agent desk, the
team-lead console and /calls/missed; every attempt and its outcome kept.

Calls arrive here from the ACD (abandoned in a queue, the call-back key, overflow into call-back), from call
records (out of hours, hung up in the IVR, anything else unserved), from voicemail and from failed inbound
faxes. A number has at most one open entry: a further missed call from it while open adds to that entry's
count instead of listing the citizen twice, and each call is counted once whoever reports it first (its
uuid). An agent claims an entry before calling (two agents never call the same citizen at once); a claim
expires after ``CLAIM_TTL`` so an entry is never stuck with an agent who went away. A call-back that reaches
the citizen (or finds the number wrong) closes the entry.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Callable

import peewee

from core.db import is_postgres
from recorder.models import (CALLBACK_OUTCOMES, MISSED_REASONS, MISSED_SOURCES, CallbackAttempt, MissedCall,
                             MissedCallOccurrence, utcnow)

log = logging.getLogger(__name__)

REASON_LABELS = {
    "abandoned": ("排队放弃", "Abandoned in queue"),
    "callback_request": ("请求回拨", "Asked to be called back"),
    "out_of_hours": ("非工作时间", "Out of hours"),
    "ivr_hangup": ("语音导航中挂机", "Hung up in the menu"),
    "voicemail": ("留言", "Voicemail"),
    "fax_failed": ("传真接收失败", "Fax not received"),
    "cut_off": ("通话中断", "Cut off"),
    "not_stored": ("系统故障未能受理", "Not taken: system fault"),
    "no_ticket": ("录音无法受理", "Recording not usable: no ticket"),
    "not_filed": ("系统故障，录音已保存待受理", "System fault: recording kept, not filed"),
}
OUTCOME_LABELS = {
    "reached": ("已联系上", "Reached"),
    "no_answer": ("无人接听", "No answer"),
    "busy": ("占线", "Busy"),
    "failed": ("呼叫失败", "Call failed"),
    "wrong_number": ("号码错误", "Wrong number"),
    "left_message": ("已留言", "Left a message"),
}
# Outcomes after which the number needs no further call-back.
CLOSING_OUTCOMES = frozenset({"reached", "wrong_number"})
MAX_ATTEMPTS_SHOWN = 20
# How long a claim holds: about one call-back call and writing down its outcome.
CLAIM_TTL = dt.timedelta(minutes=10)


class MissedCallError(ValueError):
    """A missed-call request that cannot be done (unknown entry or outcome, not allowed, claimed by another)."""


@dataclass(frozen=True)
class MissedEntry:
    """A row of the missed-call list with how often the number called while the entry was open."""

    missed: MissedCall
    calls_from_number: int


def _dedupes(caller: str) -> bool:
    """Withheld or empty numbers ("anonymous") are different people: only real numbers share an entry."""
    return any(ch.isdigit() for ch in caller)


def _naive_utc(at: dt.datetime | None) -> dt.datetime:
    """Naive UTC, the storage convention (callers may hand in a zone-aware time from a clock)."""
    if at is None:
        return utcnow()
    return at.astimezone(dt.timezone.utc).replace(tzinfo=None) if at.tzinfo is not None else at


def _lock_number(database, caller: str) -> None:
    """Serialise writers of one number's entry on PostgreSQL (SQLite serialises all writers anyway)."""
    if is_postgres(database):
        database.execute_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"missed:{caller}",))


def add_missed(caller: str, reason: str, *, call=None, call_uuid: str = "", queue: str = "",
               wait_seconds: float = 0, ticket=None, at: dt.datetime | None = None,
               source: str = "") -> MissedCall:
    """Put a caller on the list (or count one more call on their open entry); returns the entry."""
    return note_missed(caller, reason, call=call, call_uuid=call_uuid, queue=queue, wait_seconds=wait_seconds,
                       ticket=ticket, at=at, source=source)[0]


def note_missed(caller: str, reason: str, *, call=None, call_uuid: str = "", queue: str = "",
                wait_seconds: float = 0, ticket=None, at: dt.datetime | None = None,
                source: str = "") -> tuple[MissedCall, bool]:
    """Record one unserved call: (entry, True) when it was counted now, (entry, False) when this call was
    already on the list (then its reason is brought up to date: an explicit report - ACD, voicemail, fax -
    wins over the call record's guess, never the other way round)."""
    if reason not in MISSED_REASONS:
        raise MissedCallError(f"unknown missed-call reason {reason!r}")
    if source not in MISSED_SOURCES:
        raise MissedCallError(f"unknown missed-call source {source!r}")
    caller = (caller or "").strip()[:32]
    call_uuid = ((call_uuid or (call.call_uuid if call is not None else "")) or "")[:64] or None
    queue = (queue or "")[:64]
    wait = max(0, round(float(wait_seconds or 0)))
    at = _naive_utc(at)
    database = MissedCall._meta.database
    with database.atomic():
        _lock_number(database, caller)
        seen = MissedCallOccurrence.get_or_none(MissedCallOccurrence.call_uuid == call_uuid) if call_uuid else None
        if seen is not None:
            return _update_seen(seen, reason, source, queue, wait, ticket, call), False
        entry = None
        if _dedupes(caller):
            entry = (MissedCall.select().where((MissedCall.caller == caller) & (MissedCall.status == "open"))
                     .order_by(MissedCall.id).first())
        if entry is None:
            entry = MissedCall.create(caller=caller, reason=reason, call=call, queue=queue, at=at, last_at=at,
                                      calls=1, wait_seconds=wait, ticket=ticket)
        else:
            entry.calls += 1
            entry.last_at = max(entry.last_at or entry.at, at)
            _bring_up_to_date(entry, reason, queue, wait, ticket, call)
        MissedCallOccurrence.create(missed=entry, call_uuid=call_uuid, reason=reason, source=source, queue=queue,
                                    wait_seconds=wait, at=at)
    log.info("missed call from %s (%s, %s): entry %s, %s call(s)", caller, reason, source or "-", entry.id,
             entry.calls)
    return entry, True


def _update_seen(seen: MissedCallOccurrence, reason: str, source: str, queue: str, wait: int, ticket,
                 call) -> MissedCall:
    entry = seen.missed
    if seen.source != "cdr" and source == "cdr":
        return entry  # the ACD or voicemail said what happened; the call record only guesses
    seen.reason, seen.source = reason, source
    seen.queue = queue or seen.queue
    seen.wait_seconds = max(seen.wait_seconds, wait)
    seen.save()
    _bring_up_to_date(entry, reason, queue, wait, ticket, call, details=entry.status == "open" and not entry.attempts)
    return entry


def _bring_up_to_date(entry: MissedCall, reason: str, queue: str, wait: int, ticket, call, details=True) -> None:
    """The entry shows its latest call's reason and queue and the longest wait (``details``: not once someone
    acted on it), and keeps any ticket or call record it is given."""
    if details:
        entry.reason = reason
        entry.queue = queue or entry.queue
        entry.wait_seconds = max(entry.wait_seconds, wait)
    entry.ticket = ticket if ticket is not None else entry.ticket
    entry.call = call if call is not None else entry.call
    entry.save()


def withdraw(call_uuid: str, source: str = "cdr") -> bool:
    """Take a call off the list that turned out served (a late IVR trace), if nobody acted on its entry yet
    and ``source`` reported it. Returns whether it was withdrawn."""
    if not call_uuid:
        return False
    database = MissedCall._meta.database
    with database.atomic():
        seen = MissedCallOccurrence.get_or_none((MissedCallOccurrence.call_uuid == call_uuid[:64])
                                                & (MissedCallOccurrence.source == source))
        if seen is None:
            return False
        entry = seen.missed
        if entry.status != "open" or entry.attempts:
            return False
        seen.delete_instance()
        rest = list(entry.occurrences.order_by(MissedCallOccurrence.at.desc(), MissedCallOccurrence.id.desc()))
        if not rest:
            entry.delete_instance()
            return True
        entry.calls = max(1, entry.calls - 1)
        entry.reason, entry.queue, entry.last_at = rest[0].reason, rest[0].queue or entry.queue, rest[0].at
        entry.save()
    return True


def list_missed(status: str = "open", *, caller: str = "", reason: str = "", since: dt.datetime | None = None,
                limit: int = 200, offset: int = 0, oldest_first: bool = False) -> list[MissedEntry]:
    """The missed-call list (latest call first, or longest waiting first), each number's count included."""
    query = MissedCall.select()
    if status in ("open", "done"):
        query = query.where(MissedCall.status == status)
    if caller:
        query = query.where(MissedCall.caller.contains(caller.strip()[:32]))
    if reason:
        query = query.where(MissedCall.reason == reason)
    if since:
        query = query.where(MissedCall.at >= since)
    latest = peewee.fn.COALESCE(MissedCall.last_at, MissedCall.at)
    order = (MissedCall.at, MissedCall.id) if oldest_first else (latest.desc(), MissedCall.id.desc())
    rows = query.order_by(*order).limit(max(1, min(limit, 1000))).offset(max(0, offset))
    return [MissedEntry(r, r.calls) for r in rows]


def open_summary(now: dt.datetime | None = None) -> dict:
    """For the team-lead console: open entries, how many are being called back, the oldest, per queue."""
    now = _naive_utc(now)
    rows = list(MissedCall.select(MissedCall.queue, MissedCall.at, MissedCall.claimed_by, MissedCall.claimed_at)
                .where(MissedCall.status == "open"))
    claimed = [r for r in rows if _claim_live(r, now)]
    by_queue: dict[str, int] = {}
    for row in rows:
        by_queue[row.queue] = by_queue.get(row.queue, 0) + 1
    oldest = min((r.at for r in rows), default=None)
    return {"open": len(rows), "claimed": len(claimed), "oldest_at": oldest,
            "oldest_seconds": int((now - oldest).total_seconds()) if oldest else 0,
            "by_queue": dict(sorted(by_queue.items()))}


def _claim_live(entry: MissedCall, now: dt.datetime) -> bool:
    return entry.claimed_by_id is not None and entry.claimed_at is not None and entry.claimed_at > now - CLAIM_TTL


def claimed_by_other(entry: MissedCall, user, now: dt.datetime | None = None) -> bool:
    """Whether someone other than ``user`` holds a live claim on the entry."""
    return _claim_live(entry, _naive_utc(now)) and (user is None or entry.claimed_by_id != user.id)


def _check_may_call_back(user) -> None:
    from caseflow.roles import can

    if not can(user, "ticket.callback"):
        raise MissedCallError("您没有回拨权限 / you may not call citizens back")


def _get(missed_id) -> MissedCall:
    entry = MissedCall.get_or_none(MissedCall.id == missed_id)
    if entry is None:
        raise MissedCallError(f"no missed call {missed_id} / 未接来电不存在")
    return entry


def claim(missed_id: int, user, *, at: dt.datetime | None = None) -> MissedCall:
    """Take an open entry for calling back; one statement, so of two agents at once exactly one wins.
    Claiming again one's own entry renews it; a claim older than CLAIM_TTL may be taken over."""
    _check_may_call_back(user)
    now = _naive_utc(at)
    won = (MissedCall.update(claimed_by=user.id, claimed_at=now)
           .where((MissedCall.id == missed_id) & (MissedCall.status == "open")
                  & (MissedCall.claimed_by.is_null() | (MissedCall.claimed_by == user.id)
                     | MissedCall.claimed_at.is_null() | (MissedCall.claimed_at <= now - CLAIM_TTL)))
           .execute())
    entry = _get(missed_id)
    if won != 1:
        if entry.status != "open":
            raise MissedCallError("该来电已回拨完毕 / this call has already been dealt with")
        holder = entry.claimed_by
        who = f"{holder.name}（{holder.operator_no}）" if holder is not None else "?"
        raise MissedCallError(f"{who} 正在回拨 / {who} is calling this number back")
    return entry


def release(missed_id: int, user) -> bool:
    """Give a claimed entry back to the list (the agent will not call it after all)."""
    return bool(MissedCall.update(claimed_by=None, claimed_at=None)
                .where((MissedCall.id == missed_id) & (MissedCall.claimed_by == user.id)).execute())


def start_call_back(missed_id: int, user, originate: Callable[[str], str]) -> tuple[MissedCall, str]:
    """Claim the entry, then call the number with ``originate(number) -> call uuid`` (the ACD's outbound
    call: the agent's phone first). A refused call gives the claim back and raises its error."""
    entry = claim(missed_id, user)
    try:
        call_uuid = originate(entry.caller)
    except Exception:
        release(missed_id, user)
        raise
    log.info("call-back of %s (missed %s) by %s: %s", entry.caller, entry.id, user.operator_no, call_uuid)
    return entry, call_uuid or ""


def record_attempt(missed_id: int, outcome: str, *, agent=None, call_uuid: str = "", note: str = "",
                   at: dt.datetime | None = None) -> CallbackAttempt:
    """Keep one call-back attempt and release the claim; reaching the citizen (or a wrong number) closes
    the number's open entry. Refused while another agent holds the entry."""
    if outcome not in CALLBACK_OUTCOMES:
        raise MissedCallError(f"unknown call-back outcome {outcome!r} / 未知回拨结果; expected one of "
                              + ", ".join(CALLBACK_OUTCOMES))
    if agent is not None:
        _check_may_call_back(agent)
    missed = _get(missed_id)
    at = _naive_utc(at)
    if claimed_by_other(missed, agent, at):
        raise MissedCallError(f"{missed.claimed_by.name} 正在回拨 / another agent is calling this number back")
    database = MissedCall._meta.database
    with database.atomic():
        attempt = CallbackAttempt.create(missed=missed, agent=agent, at=at, outcome=outcome,
                                         call_uuid=(call_uuid or "")[:64], note=(note or "")[:2000])
        MissedCall.update(attempts=MissedCall.attempts + 1, claimed_by=None, claimed_at=None).where(
            MissedCall.id == missed.id).execute()
        if outcome in CLOSING_OUTCOMES:
            same = (MissedCall.caller == missed.caller) if _dedupes(missed.caller) else (MissedCall.id == missed.id)
            MissedCall.update(status="done", closed_at=at, claimed_by=None, claimed_at=None).where(
                same & (MissedCall.status == "open")).execute()
    log.info("call-back of %s (missed %s): %s", missed.caller, missed.id, outcome)
    return attempt


def attempts_of(missed_id: int) -> list[CallbackAttempt]:
    """Every attempt on one entry, oldest first."""
    return list(CallbackAttempt.select().where(CallbackAttempt.missed == missed_id)
                .order_by(CallbackAttempt.at, CallbackAttempt.id).limit(MAX_ATTEMPTS_SHOWN))
