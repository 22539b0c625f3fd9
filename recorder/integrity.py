"""Tamper evidence for call records (plan P2 §4.2): a keyed HMAC-SHA256 over each finalised record's
canonical fields, and a check that lists every record that no longer matches.

The key is HOTLINE_RECORD_KEY when set (so the MAC key can live apart from the web session key), else one
derived from Config.secret_key. Someone who can edit the database but does not hold the key cannot make
an edited duration match again.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Iterable, Mapping

MAC_VERSION = "v1"

# The fields the MAC covers, in a fixed order. Links to tickets are left out on purpose: a call is linked
# to tickets later (a call-back, a merge) without being re-signed.
CANONICAL_FIELDS = (
    "id", "call_uuid", "other_uuids", "caller", "called", "direction", "server", "started_at", "ivr_path",
    "queue", "queue_entered_at", "queue_left_at", "agents_offered", "answered_at", "ended_at",
    "wait_seconds", "talk_seconds", "hold_seconds", "hangup_cause", "hangup_side", "disposition", "agent_no",
)


class RecordKeyError(ValueError):
    """No usable key to sign or check call records."""


def record_key(secret_key: str, extra: Mapping[str, str] | None = None) -> bytes:
    """The MAC key: HOTLINE_RECORD_KEY if configured, else derived from the secret key (domain-separated)."""
    dedicated = (extra or {}).get("HOTLINE_RECORD_KEY", "")
    if dedicated:
        return dedicated.encode("utf-8")
    if not secret_key:
        raise RecordKeyError("no secret_key and no HOTLINE_RECORD_KEY: call records cannot be signed")
    return hmac.new(secret_key.encode("utf-8"), b"hotline12345 call-record mac", hashlib.sha256).digest()


def _canonical_value(value):
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        # Microseconds dropped: not every database keeps them the same way.
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, bool):
        return int(value)
    if value is None:
        return None
    if isinstance(value, int):
        return value
    return str(value)


def canonical_bytes(fields: Mapping[str, object]) -> bytes:
    """The byte string the MAC covers: the canonical fields as sorted, compact JSON."""
    data = {name: _canonical_value(fields.get(name)) for name in CANONICAL_FIELDS}
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def record_fields(record) -> dict:
    """The canonical fields of a CallRecord (or any object with those attributes)."""
    return {name: getattr(record, name, None) for name in CANONICAL_FIELDS}


def compute_mac(key: bytes, fields: Mapping[str, object]) -> str:
    """'v1:<hex HMAC-SHA256>' of the canonical fields."""
    digest = hmac.new(key, canonical_bytes(fields), hashlib.sha256).hexdigest()
    return f"{MAC_VERSION}:{digest}"


def mac_matches(key: bytes, fields: Mapping[str, object], mac: str) -> bool:
    """True when ``mac`` is the MAC of ``fields`` under ``key`` (constant-time compare)."""
    if not mac or not mac.startswith(MAC_VERSION + ":"):
        return False
    return hmac.compare_digest(compute_mac(key, fields), mac)


@dataclass(frozen=True)
class Mismatch:
    """A finalised call record whose MAC does not match (edited, or signed with another key)."""

    id: int
    call_uuid: str
    reason: str


def check_records(key: bytes, records: Iterable) -> list[Mismatch]:
    """Every finalised record in ``records`` that fails the check, with the reason."""
    bad = []
    for record in records:
        if not record.mac:
            bad.append(Mismatch(record.id, record.call_uuid, "finalised without a MAC / 已结束但无校验码"))
        elif not mac_matches(key, record_fields(record), record.mac):
            bad.append(Mismatch(record.id, record.call_uuid, "MAC does not match / 校验码不符 (record altered)"))
    return bad


def verify_database(key: bytes, batch: int = 2000) -> list[Mismatch]:
    """Check every finalised call record in the bound database, in id order, a batch at a time."""
    from recorder.models import CallRecord

    bad: list[Mismatch] = []
    last_id = 0
    while True:
        rows = list(CallRecord.select().where((CallRecord.finalised == True) & (CallRecord.id > last_id))  # noqa: E712
                    .order_by(CallRecord.id).limit(batch))
        if not rows:
            return bad
        bad.extend(check_records(key, rows))
        last_id = rows[-1].id
