"""Schema steps of the recorder's tables for databases created before a change (listed in hotline.migrations).

New databases get the models' tables as they are and skip these steps.
"""
from __future__ import annotations

import datetime as dt
import logging

import peewee
from playhouse.migrate import migrate

from recorder.models import CallbackAttempt, CallRecord, MissedCall, MissedCallOccurrence

log = logging.getLogger(__name__)

# The ACD's former call-back request reasons -> the missed-call list's.
_REQUEST_REASONS = {"key": "callback_request", "overflow": "callback_request", "abandoned": "abandoned"}


def one_missed_call_list(migrator, db: peewee.Database) -> list:
    """0001: one missed-call list. Adds the dedupe/claim columns to ``missed_call``, gives every entry its
    occurrence, merges a number's open entries into one, moves the ACD's open ``callback_request`` rows onto
    the list and drops that table (its handled rows' history stays in the ACD's action log)."""
    from recorder.missed import add_missed

    have = {c.name for c in db.get_columns("missed_call")}
    adding = [(name, field) for name, field in (("last_at", MissedCall.last_at), ("calls", MissedCall.calls),
                                                ("wait_seconds", MissedCall.wait_seconds),
                                                ("claimed_by_id", MissedCall.claimed_by),
                                                ("claimed_at", MissedCall.claimed_at)) if name not in have]
    if adding:
        migrate(*[migrator.add_column("missed_call", name, field) for name, field in adding])
    MissedCall.update(last_at=MissedCall.at).where(MissedCall.last_at.is_null()).execute()
    listed = MissedCallOccurrence.select(MissedCallOccurrence.missed)
    for entry in list(MissedCall.select().where(MissedCall.id.not_in(listed))):
        call_uuid = None
        if entry.call_id is not None:
            call_uuid = CallRecord.select(CallRecord.call_uuid).where(CallRecord.id == entry.call_id).scalar()
        if call_uuid and MissedCallOccurrence.select().where(MissedCallOccurrence.call_uuid == call_uuid).exists():
            call_uuid = None
        MissedCallOccurrence.create(missed=entry, call_uuid=call_uuid, reason=entry.reason, source="",
                                    queue=entry.queue, at=entry.at)
    _merge_open_duplicates()
    if db.table_exists("callback_request"):
        rows = db.execute_sql("SELECT r.caller_number, r.call_uuid, r.reason, r.created_at, q.name "
                              "FROM callback_request r LEFT JOIN queue q ON q.id = r.queue_id "
                              "WHERE r.status = 'open' ORDER BY r.id").fetchall()
        for caller, call_uuid, reason, created_at, queue in rows:
            if isinstance(created_at, str):  # SQLite hands raw timestamps back as text
                created_at = dt.datetime.fromisoformat(created_at)
            if caller:
                add_missed(caller, _REQUEST_REASONS.get(reason, "abandoned"), call_uuid=call_uuid or "",
                           queue=queue or "", at=created_at, source="acd")
        db.execute_sql("DROP TABLE callback_request")
        log.info("moved %d open call-back requests onto the missed-call list", len(rows))
    return []


def _merge_open_duplicates() -> None:
    """Older databases listed a number once per missed call: keep its oldest open entry, counting the rest."""
    numbers = (MissedCall.select(MissedCall.caller).where(MissedCall.status == "open")
               .group_by(MissedCall.caller).having(peewee.fn.COUNT(MissedCall.id) > 1).tuples())
    for (caller,) in list(numbers):
        if not any(ch.isdigit() for ch in caller):
            continue
        keep, *rest = list(MissedCall.select().where((MissedCall.caller == caller) & (MissedCall.status == "open"))
                           .order_by(MissedCall.at, MissedCall.id))
        ids = [r.id for r in rest]
        CallbackAttempt.update(missed=keep.id).where(CallbackAttempt.missed.in_(ids)).execute()
        MissedCallOccurrence.update(missed=keep.id).where(MissedCallOccurrence.missed.in_(ids)).execute()
        latest = rest[-1]
        keep.calls = sum(r.calls or 1 for r in [keep, *rest])
        keep.attempts = sum(r.attempts for r in [keep, *rest])
        keep.reason, keep.queue = latest.reason, latest.queue or keep.queue
        keep.last_at = max((r.last_at or r.at) for r in [keep, *rest])
        keep.ticket = next((r.ticket_id for r in reversed([keep, *rest]) if r.ticket_id), None)
        keep.save()
        MissedCall.delete().where(MissedCall.id.in_(ids)).execute()


def chain_call_records(migrator, db: peewee.Database, config=None) -> list:
    """0005: sign every finalised record over all its fields (v2) and chain it, once. The key comes from the
    configuration (HOTLINE_RECORD_KEY, or the development key); a v1 MAC is accepted under that key or the
    one derived from the secret key (the default before HOTLINE_RECORD_KEY was required). Records whose v1
    MAC matches neither keep it: verify reports them instead of the upgrade laundering an edit."""
    from core.config import load_config
    from recorder.integrity import chain_existing, legacy_record_key, record_key

    config = config or load_config()
    key = record_key(config.secret_key, config.extra)
    chained, refused = chain_existing(key, [legacy_record_key(config.secret_key)],
                                      dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    log.info("call-record chain: %d finalised records signed and chained", chained)
    if refused:
        log.error("call-record chain: %d finalised records did not match their old MAC and were left out; "
                  "python -m recorder.verify lists them", refused)
    return []
