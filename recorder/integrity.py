"""Tamper evidence for call records (plan P2 §4.2): a keyed HMAC-SHA256 over every field of a finalised
record, and a chain of seals that makes deletions and replays visible.

Each finalisation of a record appends a ``CallRecordSeal``: numbered per day (UTC) from 1 without gaps,
holding the record's MAC, with a MAC of its own over the seal and the previous seal's MAC (the first seal of
a day continues from the last seal of the day before). ``verify_database`` walks the chain and every record:
an edited field, a record marked unfinalised again, a record put back to an older version, a deleted record
and a deleted seal are each reported with what is wrong. Deleting the newest seals together with their
records leaves no gap; the summary prints the chain's head so it can be compared with one noted earlier.

Concurrent finalisers of one process take turns (``seal_turn``) before their transaction: on PostgreSQL a
second finaliser's seal insert otherwise waited, connection held, on the first's uncommitted seal of the same
number (a unique-index wait, then the retry), and under load those waits emptied the pool (issue 15 item 10).
The turn is one for the whole process, across every switch's calls, so a switch's event greenlet never waits
for it: its hang-ups hand their finalisations to the recorder's finaliser (recorder.finalising). Other
processes still race through the unique index and the retry.

The key is HOTLINE_RECORD_KEY (required in production, apart from the session key); development falls back
to one derived from Config.secret_key. Someone who can edit the database but does not hold the key cannot
make an edited record match again.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import weakref
from dataclasses import dataclass
from typing import Iterable, Mapping

import gevent.lock

from core.alarms import CRITICAL, raise_alarm

log = logging.getLogger(__name__)

MAC_VERSION = "v2"
LEGACY_VERSION = "v1"

# v1 (before the chain) covered these; kept to check old records once when they are chained.
LEGACY_FIELDS = (
    "id", "call_uuid", "other_uuids", "caller", "called", "direction", "server", "started_at", "ivr_path",
    "queue", "queue_entered_at", "queue_left_at", "agents_offered", "answered_at", "ended_at",
    "wait_seconds", "talk_seconds", "hold_seconds", "hangup_cause", "hangup_side", "disposition", "agent_no",
)
# Every column of the record but the MAC itself and ``agent`` (the user row of ``agent_no``, which is
# covered; the database sets ``agent`` to NULL when that user is deleted). Links to tickets live in another
# table: a call is linked later (a call-back, a merge) without being re-signed.
CANONICAL_FIELDS = LEGACY_FIELDS + ("finalised",)


class RecordKeyError(ValueError):
    """No usable key to sign or check call records."""


def record_key(secret_key: str, extra: Mapping[str, str] | None = None) -> bytes:
    """The MAC key: HOTLINE_RECORD_KEY if configured, else (development) derived from the secret key."""
    dedicated = (extra or {}).get("HOTLINE_RECORD_KEY", "")
    if dedicated:
        return dedicated.encode("utf-8")
    return legacy_record_key(secret_key)


def legacy_record_key(secret_key: str) -> bytes:
    """The key derived from the session secret (domain-separated): development's, and every release's
    before HOTLINE_RECORD_KEY was required in production."""
    if not secret_key:
        raise RecordKeyError("no secret_key and no HOTLINE_RECORD_KEY: call records cannot be signed")
    return hmac.new(secret_key.encode("utf-8"), b"hotline12345 call-record mac", hashlib.sha256).digest()


def _canonical_value(value):
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        # Microseconds dropped: not every database keeps them the same way.
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if value is None:
        return None
    if isinstance(value, int):
        return value
    return str(value)


def canonical_bytes(fields: Mapping[str, object], names: tuple[str, ...] = CANONICAL_FIELDS) -> bytes:
    """The byte string the MAC covers: the named fields as sorted, compact JSON."""
    data = {name: _canonical_value(fields.get(name)) for name in names}
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def record_fields(record) -> dict:
    """The canonical fields of a CallRecord (or any object with those attributes)."""
    return {name: getattr(record, name, None) for name in CANONICAL_FIELDS}


def compute_mac(key: bytes, fields: Mapping[str, object]) -> str:
    """'v2:<hex HMAC-SHA256>' of the canonical fields."""
    digest = hmac.new(key, canonical_bytes(fields), hashlib.sha256).hexdigest()
    return f"{MAC_VERSION}:{digest}"


def legacy_mac(key: bytes, fields: Mapping[str, object]) -> str:
    """'v1:<hex>': the MAC records carried before the chain (``finalised`` not covered)."""
    digest = hmac.new(key, canonical_bytes(fields, LEGACY_FIELDS), hashlib.sha256).hexdigest()
    return f"{LEGACY_VERSION}:{digest}"


def mac_matches(key: bytes, fields: Mapping[str, object], mac: str) -> bool:
    """True when ``mac`` is the current MAC of ``fields`` under ``key`` (constant-time compare)."""
    if not mac or not mac.startswith(MAC_VERSION + ":"):
        return False
    return hmac.compare_digest(compute_mac(key, fields), mac)


def seal_mac(key: bytes, day: dt.date, seq: int, record_id: int, call_uuid: str, record_mac: str,
             sealed_at: dt.datetime, previous: str) -> str:
    """The MAC of one seal: its own fields and the MAC of the seal before it ('' for the very first)."""
    data = {"day": _canonical_value(day), "seq": seq, "record_id": record_id, "call_uuid": call_uuid,
            "record_mac": record_mac, "sealed_at": _canonical_value(sealed_at), "previous": previous}
    payload = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return f"{MAC_VERSION}:{hmac.new(key, payload, hashlib.sha256).hexdigest()}"


# The bound database (the chain lives in it) -> the lock its finalisers take turns on in this process.
_SEAL_TURNS: "weakref.WeakKeyDictionary[object, gevent.lock.BoundedSemaphore]" = weakref.WeakKeyDictionary()


SEAL_TURN_PATIENCE = 10.0  # seconds between the log lines that count the finalisers waiting for the turn
# How long a finaliser waits for the turn before it gives up: its record stays open (the draft kept) and the
# reconciliation sweep finalises it later (recorder.sweep). A turn held this long means a holder that does not
# come back (a database backend gone without TCP keepalive, an enricher stuck on I/O); going on without the
# turn brought back the waits on the quarter-hour's call_slot row (issue 15 item 10).
SEAL_TURN_LIMIT = 300.0


class SealTurnTimeout(RuntimeError):
    """No seal turn within SEAL_TURN_LIMIT: the finalisation was not written (the sweep writes it later)."""


# The bound database -> its finalisers waiting for the turn now; the monotonic time of the last line saying so.
_SEAL_WAITERS: "weakref.WeakKeyDictionary[object, int]" = weakref.WeakKeyDictionary()
_last_waiting_line = [0.0]
_stalled = [False]  # the seal_turn_stuck alarm raised and no turn taken since: one alarm per stall


@contextlib.contextmanager
def seal_turn(database, timeout: float | None = None):
    """This process's turn to write a transaction that appends a seal to ``database``'s chain: enter it before
    the transaction, so a finaliser waits for the one before it without holding a connection, and never on
    its uncommitted seal or quarter-hour counts. One turn serialises the finalisers of every switch's calls:
    take it off a switch's event greenlet (recorder.finalising.Finaliser). Yields whether the turn was taken:
    inside a transaction already (a connection held: waiting would pin it) it goes on without, and the retry
    in append_seal keeps the numbers right; after an explicit ``timeout`` too. Otherwise it waits as long as
    the turns before it take, up to SEAL_TURN_LIMIT, then raises SealTurnTimeout (one seal_turn_stuck alarm
    per stall; until a turn is taken again the next finalisers raise it at once) and the sweep finalises the
    record later. Finalisers that went on without the turn after
    10 s took a pooled connection each and waited on the quarter-hour's call_slot row, held by each other's
    open transactions: under bench/simulation.py on PostgreSQL 19 at once, up to 30 s, 18 of the pool's 20
    connections, and the ACD's offers waited behind them (issue 15 item 10)."""
    target = getattr(database, "obj", None) or database  # the DatabaseProxy's bound database
    if target.in_transaction():
        yield False
        return
    lock = _SEAL_TURNS.get(target)
    if lock is None:
        lock = _SEAL_TURNS[target] = gevent.lock.BoundedSemaphore(1)
    taken = lock.acquire(timeout=timeout) if timeout is not None else _wait_for_turn(target, lock)
    try:
        yield taken
    finally:
        if taken:
            lock.release()


def _wait_for_turn(target, lock) -> bool:
    """Take ``lock`` within SEAL_TURN_LIMIT (True), or raise SealTurnTimeout. Logs how many wait once per
    SEAL_TURN_PATIENCE, not once per waiter (500 waiters made 50 lines a second)."""
    if lock.acquire(blocking=False):
        _stalled[0] = False
        return True
    if _stalled[0]:
        # A waiter gave up and nobody has had a turn since: the next ones give up at once, so the Finaliser's
        # queue and a sweep do not wait SEAL_TURN_LIMIT for each record in turn; the sweep writes them later.
        raise SealTurnTimeout("the seal turn is still held (seal_turn_stuck)")
    _SEAL_WAITERS[target] = _SEAL_WAITERS.get(target, 0) + 1
    try:
        waited, limit = 0.0, SEAL_TURN_LIMIT
        while waited < limit:
            step = min(SEAL_TURN_PATIENCE, limit - waited)
            if lock.acquire(timeout=step):
                _stalled[0] = False
                return True
            waited += step
            now = time.monotonic()
            if now - _last_waiting_line[0] >= SEAL_TURN_PATIENCE:
                _last_waiting_line[0] = now
                log.warning("call record seal: %d finalisers waiting for this process's turn (one for %.0f s)",
                            _SEAL_WAITERS[target], waited)
    finally:
        _SEAL_WAITERS[target] -= 1
    if not _stalled[0]:
        _stalled[0] = True
        raise_alarm("seal_turn_stuck", f"通话记录写入停滞 / call records: no seal turn within {limit:g} s; "
                                       "the records are left open for the reconciliation sweep", severity=CRITICAL)
    raise SealTurnTimeout(f"no seal turn within {limit:g} s")


def append_seal(key: bytes, record, at: dt.datetime):
    """Chain ``record`` (finalised, MAC set) as the next seal of ``at``'s day (naive UTC); call inside the
    transaction that wrote the record. Two writers racing for a number: the loser retries on the next."""
    import peewee

    from recorder.models import CallRecordSeal

    at = at.replace(microsecond=0)
    day = at.date()
    database = CallRecordSeal._meta.database
    for _ in range(20):
        last = (CallRecordSeal.select().where(CallRecordSeal.day == day)
                .order_by(CallRecordSeal.seq.desc()).first())
        if last is None:
            last = (CallRecordSeal.select().where(CallRecordSeal.day < day)
                    .order_by(CallRecordSeal.day.desc(), CallRecordSeal.seq.desc()).first())
            seq, previous = 1, (last.mac if last else "")
        else:
            seq, previous = last.seq + 1, last.mac
        mac = seal_mac(key, day, seq, record.id, record.call_uuid, record.mac, at, previous)
        try:
            with database.atomic():
                return CallRecordSeal.create(day=day, seq=seq, record_id=record.id, call_uuid=record.call_uuid,
                                             record_mac=record.mac, sealed_at=at, mac=mac)
        except peewee.IntegrityError:
            continue
    raise RuntimeError(f"could not chain call record {record.id}: the seal numbers of {day} kept changing")


@dataclass(frozen=True)
class Mismatch:
    """One thing the check found wrong: a record (``id``) or a seal (``seal`` 'day #seq'), and why."""

    id: int | None
    call_uuid: str
    reason: str
    seal: str = ""

    @property
    def where(self) -> str:
        return f"record {self.id}" if self.id is not None else f"seal {self.seal}"


@dataclass
class Report:
    """What ``verify_database`` checked and found."""

    problems: list[Mismatch]
    records: int = 0
    finalised: int = 0
    open: int = 0
    seals: int = 0
    head: str = ""  # the newest seal, 'day #seq mac-prefix'


def check_record(key: bytes, record, latest_seal) -> str | None:
    """Why ``record`` fails the check given its newest seal (or None), or None when it is sound."""
    if not record.finalised:
        if latest_seal is not None:
            return "sealed as finalised but now marked unfinalised / 已签封却被改为未结束"
        if record.mac:
            return "unfinalised but carries a MAC / 未结束却有校验码"
        return None  # a live call (or one item 8's sweep has yet to close)
    if not record.mac:
        return "finalised without a MAC / 已结束但无校验码"
    if record.mac.startswith(LEGACY_VERSION + ":"):
        return "old v1 MAC, not chained (its v1 MAC did not match at the upgrade) / 旧校验码未入链"
    if not mac_matches(key, record_fields(record), record.mac):
        return "fields altered: MAC does not match / 字段被改, 校验码不符"
    if latest_seal is None:
        return "not in the chain (inserted, or its seals deleted) / 不在签封链中"
    if not hmac.compare_digest(latest_seal.record_mac, record.mac):
        return (f"an earlier version: the newest seal {latest_seal.day.isoformat()} #{latest_seal.seq} holds "
                "another MAC / 被回退为旧版本")
    return None


def verify_database(key: bytes, batch: int = 2000) -> Report:
    """Check the seal chain and every call record of the bound database, a batch at a time."""
    import peewee

    from recorder.models import CallRecord, CallRecordSeal

    report = Report(problems=[])
    bad = report.problems
    # 1. The chain: numbers without gaps per day, each seal's MAC over the one before.
    previous, last_day, last_seq = "", None, 0
    after = (dt.date.min, 0)
    while True:
        seals = list(CallRecordSeal.select().where(
            (CallRecordSeal.day > after[0]) | ((CallRecordSeal.day == after[0]) & (CallRecordSeal.seq > after[1])))
            .order_by(CallRecordSeal.day, CallRecordSeal.seq).limit(batch))
        if not seals:
            break
        for seal in seals:
            name = f"{seal.day.isoformat()} #{seal.seq}"
            expected_seq = last_seq + 1 if seal.day == last_day else 1
            if seal.seq != expected_seq:
                gap = f"#{expected_seq}" if seal.seq == expected_seq + 1 else f"#{expected_seq}..#{seal.seq - 1}"
                bad.append(Mismatch(None, seal.call_uuid, f"seals {seal.day.isoformat()} {gap} missing "
                                    "(deleted) / 签封缺号(被删除)", seal=name))
                previous = None  # the link before this seal is gone: its own MAC cannot be checked
            if previous is not None and not hmac.compare_digest(
                    seal_mac(key, seal.day, seal.seq, seal.record_id, seal.call_uuid, seal.record_mac,
                             seal.sealed_at, previous), seal.mac):
                bad.append(Mismatch(None, seal.call_uuid, "seal altered or out of chain: MAC does not match / "
                                    "签封校验码不符", seal=name))
            previous, last_day, last_seq = seal.mac, seal.day, seal.seq
            report.seals += 1
            report.head = f"{name} {seal.mac[:19]}"
        after = (seals[-1].day, seals[-1].seq)
    # 2. Every record against its newest seal.
    last_id = 0
    while True:
        rows = list(CallRecord.select().where(CallRecord.id > last_id).order_by(CallRecord.id).limit(batch))
        if not rows:
            break
        newest = {}
        for seal in (CallRecordSeal.select().where(CallRecordSeal.record_id.in_([r.id for r in rows]))
                     .order_by(CallRecordSeal.day, CallRecordSeal.seq)):
            newest[seal.record_id] = seal
        for record in rows:
            report.records += 1
            report.finalised += bool(record.finalised)
            report.open += not record.finalised and record.id not in newest
            reason = check_record(key, record, newest.get(record.id))
            if reason:
                bad.append(Mismatch(record.id, record.call_uuid, reason))
        last_id = rows[-1].id
    # 3. Seals whose record is gone.
    gone = (CallRecordSeal.select(CallRecordSeal.record_id, CallRecordSeal.call_uuid)
            .join(CallRecord, peewee.JOIN.LEFT_OUTER, on=(CallRecord.id == CallRecordSeal.record_id))
            .where(CallRecord.id.is_null()).group_by(CallRecordSeal.record_id, CallRecordSeal.call_uuid)
            .order_by(CallRecordSeal.record_id))
    for seal in gone:
        bad.append(Mismatch(seal.record_id, seal.call_uuid, "record deleted (its seal remains) / 记录被删除"))
    return report


def chain_existing(key: bytes, legacy_keys: Iterable[bytes], at: dt.datetime, batch: int = 2000) -> tuple[int, int]:
    """Upgrade: give every finalised v1 record whose v1 MAC matches (under ``key`` or one of ``legacy_keys``)
    a v2 MAC and a seal, in id order. A v1 record that does not match keeps its v1 MAC so verify reports it
    (chaining it would launder the edit). Returns (chained, left as they were)."""
    from recorder.models import CallRecord

    keys = [key, *legacy_keys]
    chained = refused = 0
    last_id = 0
    while True:
        rows = list(CallRecord.select().where((CallRecord.finalised == True) & (CallRecord.id > last_id)  # noqa: E712
                                              & CallRecord.mac.startswith(LEGACY_VERSION + ":"))
                    .order_by(CallRecord.id).limit(batch))
        if not rows:
            return chained, refused
        for record in rows:
            fields = record_fields(record)
            if any(hmac.compare_digest(legacy_mac(k, fields), record.mac) for k in keys):
                record.mac = compute_mac(key, fields)
                CallRecord.update(mac=record.mac).where(CallRecord.id == record.id).execute()
                append_seal(key, record, at)
                chained += 1
            else:
                refused += 1
        last_id = rows[-1].id
