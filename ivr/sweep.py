"""The IVR's part of the reconciliation with the switches (recorder.sweep.Sweeper, which sits below the IVR
and is handed these two by hotline.product): what an IVR trace tells of a call an earlier run of the app
left open, and campaign attempts still "calling" whose channel no switch has any more (a lost hang-up).
"""
from __future__ import annotations

import datetime as dt
import json
import logging

from ivr.campaigns import note_failed_attempt
from ivr.models import IvrTrace, OutboundAttempt
from recorder.drafts import _parse_at, _utc
from recorder.sweep import gone_uuids

log = logging.getLogger(__name__)

# A campaign attempt is "calling" before its originate created any channel (the dialer's greenlet): this
# long after its start a missing channel means the call is over.
ATTEMPT_GRACE_SECONDS = 30.0


def call_history(call_uuid: str) -> tuple[list[dict], bool, dt.datetime | None]:
    """What the IVR stored about a call before the app stopped: (path, served, last moment). Its trace is
    stored when the IVR lets go of the call; a call cut off mid-menu has none."""
    trace = IvrTrace.select().where(IvrTrace.call_uuid == call_uuid).order_by(IvrTrace.id.desc()).first()
    if trace is None:
        return [], False, None
    path, last = [], None
    for entry in json.loads(trace.entries or "[]"):
        at = _parse_at(entry.get("at"))
        last = at if at is not None and (last is None or at > last) else last
        node = str(entry.get("node", ""))
        if str(entry.get("what", "")).startswith("enter ") and node and (not path or path[-1]["node"] != node):
            path.append({"node": node[:64], "at": str(entry.get("at", ""))[:32]})
    served = bool((trace.tickets or "").strip())  # a ticket was filed from the call: the caller was heard
    ended = _utc(trace.ended_at) if trace.ended_at else None
    return path, served, ended or last


def fail_lost_attempts(channels: set[str], now: dt.datetime, grace: float = ATTEMPT_GRACE_SECONDS) -> int:
    """Fail (retried per the campaign's rules) every attempt still "calling" whose call is not among
    ``channels`` (those of every switch) ``grace`` seconds after it was dialled; returns how many."""
    rows = list(OutboundAttempt.select().where(OutboundAttempt.state == "calling"))
    gone = set(gone_uuids([(a.last_call_uuid, _utc(a.last_attempt_at) if a.last_attempt_at else None)
                           for a in rows if a.last_call_uuid], channels, now, grace))
    failed = 0
    for attempt in rows:
        if attempt.last_call_uuid in gone:
            log.warning("campaign attempt %s to %s: its call %s is gone (lost hang-up): failed", attempt.id,
                        attempt.phone, attempt.last_call_uuid)
            note_failed_attempt(attempt, "LOST_CHANNEL")
            failed += 1
    return failed
