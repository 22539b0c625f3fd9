"""The call-record chain (issue 16 item 7): every field under the MAC, a seal per finalisation numbered per
day and chained, and `python -m recorder.verify` naming each record or seal that is wrong and why."""
from __future__ import annotations

import datetime as dt
import io

import pytest

from core import db as core_db
from recorder import verify
from recorder.integrity import (append_seal, compute_mac, legacy_mac, legacy_record_key, record_fields,
                                record_key, verify_database)
from recorder.migrations import chain_call_records
from recorder.models import CallRecord, CallRecordSeal

from .conftest import SECRET
from .test_call_records import answered_call


def problems(key):
    return [(p.where, p.reason) for p in verify_database(key).problems]


def three_calls(cdr, clock):
    return [answered_call(cdr, clock, f"chain-{n}") for n in range(3)]


def test_clean_records_and_their_seals_verify(cdr, clock, key):
    """Should chain one seal per finalisation, numbered from 1 per day, and find nothing wrong."""
    records = three_calls(cdr, clock)
    clock.advance(days=1)
    records.append(answered_call(cdr, clock, "chain-next-day"))
    seals = list(CallRecordSeal.select().order_by(CallRecordSeal.day, CallRecordSeal.seq))
    assert [(s.seq, s.record_id) for s in seals] == [(1, records[0].id), (2, records[1].id), (3, records[2].id),
                                                      (1, records[3].id)]
    assert seals[3].day == seals[0].day + dt.timedelta(days=1)
    report = verify_database(key)
    assert report.problems == [] and report.seals == 4 and report.finalised == 4
    assert report.head.startswith(f"{seals[3].day.isoformat()} #1 ")


def test_unfinalising_a_record_is_caught(cdr, clock, key, db):
    """Should report a finalised record set back to unfinalised in SQL (v1 neither covered nor checked it)."""
    records = three_calls(cdr, clock)
    db.execute_sql("UPDATE call_record SET finalised = %s WHERE id = %d" % ("false", records[1].id))
    assert problems(key) == [(f"record {records[1].id}",
                              "sealed as finalised but now marked unfinalised / 已签封却被改为未结束")]


def test_unfinalised_flag_alone_breaks_the_mac(cdr, clock, key):
    """Should cover ``finalised`` in the MAC itself."""
    record = three_calls(cdr, clock)[0]
    fields = record_fields(record)
    assert compute_mac(key, fields) != compute_mac(key, {**fields, "finalised": False})


def test_deleted_record_and_deleted_seal_are_caught(cdr, clock, key, db):
    """Should name a deleted record (its seal remains) and a gap in a day's seal numbers."""
    records = three_calls(cdr, clock)
    db.execute_sql("DELETE FROM call_record WHERE id = %d" % records[0].id)
    assert problems(key) == [(f"record {records[0].id}", "record deleted (its seal remains) / 记录被删除")]
    seal = CallRecordSeal.get(CallRecordSeal.record_id == records[1].id)
    db.execute_sql("DELETE FROM call_record_seal WHERE id = %d" % seal.id)
    found = problems(key)
    assert (f"seal {seal.day.isoformat()} #3", "seals %s #2 missing (deleted) / 签封缺号(被删除)"
            % seal.day.isoformat()) in found
    assert (f"record {records[1].id}", "not in the chain (inserted, or its seals deleted) / 不在签封链中") in found


def test_restored_old_version_and_edited_seal_are_caught(cdr, clock, key, db):
    """Should report a record put back to an earlier signed version, and a seal whose fields were edited."""
    cdr.call_started("late", caller="13800138000", called="12345")
    clock.advance(seconds=5)
    first = cdr.hangup("late", "NORMAL_CLEARING", "")
    old_mac = first.mac
    cdr.hangup("late", "NORMAL_CLEARING", "recv_bye")  # the side, late: finalised again, a second seal
    assert CallRecord.get_by_id(first.id).hangup_side == "caller"
    # Everything of the first version, MAC included, written back: valid on its own, but not the newest.
    db.execute_sql("UPDATE call_record SET mac = '%s', hangup_side = '' WHERE id = %d" % (old_mac, first.id))
    found = problems(key)
    assert len(found) == 1 and found[0][0] == f"record {first.id}" and "an earlier version" in found[0][1]
    db.execute_sql("UPDATE call_record_seal SET call_uuid = 'other' WHERE seq = 1")
    assert ("seal %s #1" % CallRecordSeal.get(CallRecordSeal.seq == 1).day.isoformat(),
            "seal altered or out of chain: MAC does not match / 签封校验码不符") in problems(key)


def test_racing_writers_take_the_next_number(cdr, clock, key):
    """Should give a seal the next free number when another writer took the one it read."""
    record = three_calls(cdr, clock)[0]
    at = clock.now().replace(tzinfo=None)
    day = at.date()
    taken = CallRecordSeal.select().where(CallRecordSeal.day == day).count()
    real_select = CallRecordSeal.select
    calls = []

    def stale_select(*args):
        query = real_select(*args)
        calls.append(1)
        if len(calls) == 1:  # the first look sees one seal fewer than there are
            return query.where(CallRecordSeal.seq < taken)
        return query

    CallRecordSeal.select = stale_select
    try:
        seal = append_seal(key, record, at)
    finally:
        CallRecordSeal.select = real_select
    assert seal.seq == taken + 1


def test_verify_command_prints_what_is_wrong(cdr, clock, db, db_url, monkeypatch, tmp_path):
    """Should print one line per problem (where, call UUID, reason) and exit 1."""
    monkeypatch.setenv("HOTLINE_SECRET_KEY", SECRET)
    monkeypatch.setenv("HOTLINE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("HOTLINE_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("HOTLINE_RECORD_KEY", raising=False)
    records = three_calls(cdr, clock)
    db.execute_sql("DELETE FROM call_record WHERE id = %d" % records[2].id)
    out = io.StringIO()
    try:
        assert verify.main(["--database-url", db_url], out=out) == 1
    finally:
        core_db.database.initialize(db)
    lines = out.getvalue().splitlines()
    assert lines[0] == f"record {records[2].id}\tchain-2\trecord deleted (its seal remains) / 记录被删除"
    assert "checked 2 call records (2 finalised, 0 open) and 3 seals" in lines[-1]


@pytest.mark.parametrize("signed_with", ["record_key", "legacy"])
def test_upgrade_chains_existing_records_once(cdr, clock, db, tmp_path, signed_with):
    """Should re-sign and chain every v1 record whose old MAC matches (under the record key or the old
    derived one), leave a v1 record that was edited before the upgrade for verify to report, and do
    nothing the second time."""
    from core.config import load_config

    config = load_config({"secret_key": SECRET, "var_dir": str(tmp_path), "HOTLINE_RECORD_KEY": "n" * 40})
    new_key = record_key(config.secret_key, config.extra)
    old_key = new_key if signed_with == "record_key" else legacy_record_key(SECRET)
    records = three_calls(cdr, clock)
    CallRecordSeal.delete().execute()
    for record in records:  # as the release before the chain wrote them
        CallRecord.update(mac=legacy_mac(old_key, record_fields(record))).where(CallRecord.id == record.id).execute()
    db.execute_sql("UPDATE call_record SET talk_seconds = 1 WHERE id = %d" % records[1].id)
    assert chain_call_records(None, db, config) == []
    assert CallRecordSeal.select().count() == 2
    assert problems(new_key) == [(f"record {records[1].id}", "old v1 MAC, not chained (its v1 MAC did not "
                                  "match at the upgrade) / 旧校验码未入链")]
    chain_call_records(None, db, config)
    assert CallRecordSeal.select().count() == 2
