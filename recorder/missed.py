"""Missed calls (P5 §3.6.4): callers nobody served, listed for call-back; every attempt and outcome kept.

Entries come from call records (abandoned in a queue, out of hours, hung up in the IVR unserved), from
voicemail and from failed inbound faxes. A call-back that reaches the caller closes every open entry of
that number, so the same citizen is not called five times for five missed calls.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import peewee

from recorder.models import CALLBACK_OUTCOMES, MISSED_REASONS, CallbackAttempt, MissedCall, utcnow

log = logging.getLogger(__name__)

REASON_LABELS = {
    "abandoned": ("排队放弃", "Abandoned in queue"),
    "callback_request": ("请求回拨", "Asked to be called back"),
    "out_of_hours": ("非工作时间", "Out of hours"),
    "ivr_hangup": ("语音导航中挂机", "Hung up in the menu"),
    "voicemail": ("留言", "Voicemail"),
    "fax_failed": ("传真接收失败", "Fax not received"),
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


class MissedCallError(ValueError):
    """A call-back request that cannot be recorded (unknown entry, outcome, or not allowed)."""


@dataclass(frozen=True)
class MissedEntry:
    """A row of the missed-call list with how often the number called while the entry was open."""

    missed: MissedCall
    calls_from_number: int


def add_missed(caller: str, reason: str, *, call=None, queue: str = "", ticket=None,
               at: dt.datetime | None = None) -> MissedCall:
    """Put a caller on the list (the CDR does this itself for calls it finalises)."""
    if reason not in MISSED_REASONS:
        raise MissedCallError(f"unknown missed-call reason {reason!r}")
    return MissedCall.create(caller=(caller or "")[:32], reason=reason, call=call, queue=queue[:64],
                             ticket=ticket, at=at or utcnow())


def list_missed(status: str = "open", *, caller: str = "", reason: str = "", since: dt.datetime | None = None,
                limit: int = 200, offset: int = 0) -> list[MissedEntry]:
    """The missed-call list, newest first, with the number of open entries per caller."""
    query = MissedCall.select()
    if status in ("open", "done"):
        query = query.where(MissedCall.status == status)
    if caller:
        query = query.where(MissedCall.caller.contains(caller.strip()[:32]))
    if reason:
        query = query.where(MissedCall.reason == reason)
    if since:
        query = query.where(MissedCall.at >= since)
    rows = list(query.order_by(MissedCall.at.desc(), MissedCall.id.desc()).limit(max(1, min(limit, 1000)))
                .offset(max(0, offset)))
    callers = {r.caller for r in rows}
    counts = {}
    if callers:
        counts = dict(MissedCall.select(MissedCall.caller, peewee.fn.COUNT(MissedCall.id))
                      .where((MissedCall.caller.in_(list(callers))) & (MissedCall.status == "open"))
                      .group_by(MissedCall.caller).tuples())
    return [MissedEntry(r, int(counts.get(r.caller, 0))) for r in rows]


def record_attempt(missed_id: int, outcome: str, *, agent=None, call_uuid: str = "", note: str = "",
                   at: dt.datetime | None = None) -> CallbackAttempt:
    """Keep one call-back attempt; a reaching outcome closes all open entries of that number."""
    if outcome not in CALLBACK_OUTCOMES:
        raise MissedCallError(f"unknown call-back outcome {outcome!r} / 未知回拨结果; expected one of "
                              + ", ".join(CALLBACK_OUTCOMES))
    if agent is not None:
        from caseflow.roles import can

        if not can(agent, "ticket.callback"):
            raise MissedCallError("您没有回拨权限 / you may not call citizens back")
    missed = MissedCall.get_or_none(MissedCall.id == missed_id)
    if missed is None:
        raise MissedCallError(f"no missed call {missed_id} / 未接来电不存在")
    at = at or utcnow()
    database = MissedCall._meta.database
    with database.atomic():
        attempt = CallbackAttempt.create(missed=missed, agent=agent, at=at, outcome=outcome,
                                         call_uuid=(call_uuid or "")[:64], note=(note or "")[:2000])
        MissedCall.update(attempts=MissedCall.attempts + 1).where(MissedCall.id == missed.id).execute()
        if outcome in CLOSING_OUTCOMES:
            MissedCall.update(status="done", closed_at=at).where(
                (MissedCall.caller == missed.caller) & (MissedCall.status == "open")).execute()
    log.info("call-back of %s (missed %s): %s", missed.caller, missed.id, outcome)
    return attempt


def attempts_of(missed_id: int) -> list[CallbackAttempt]:
    """Every attempt on one entry, oldest first."""
    return list(CallbackAttempt.select().where(CallbackAttempt.missed == missed_id)
                .order_by(CallbackAttempt.at, CallbackAttempt.id).limit(MAX_ATTEMPTS_SHOWN))
