"""The one missed-call list: dedupe per number, a call counted once whoever reports it, claims, migration."""
from __future__ import annotations

import datetime as dt
import threading

import peewee
import pytest

from caseflow.accounts import create_user
from core.db import is_postgres
from recorder import missed
from recorder.missed import MissedCallError, add_missed, claim, list_missed, note_missed, record_attempt
from caseflow.models import Ticket
from recorder.models import CallbackAttempt, CallRecord, MissedCall, MissedCallOccurrence, utcnow


@pytest.fixture
def agents(db):
    return (create_user("1001", "王芳", "correct horse battery", roles=["agent"]),
            create_user("1002", "赵强", "correct horse battery", roles=["agent"]))


def test_one_open_entry_per_number(db):
    """Should keep one open entry per number, counting its calls and the longest wait, but never merge
    withheld numbers."""
    first = add_missed("13800000001", "abandoned", call_uuid="c-1", queue="consult", wait_seconds=40, source="acd")
    add_missed("13800000001", "callback_request", call_uuid="c-2", queue="complaint", wait_seconds=12.4,
               source="acd")
    add_missed("13800000001", "out_of_hours", call_uuid="c-3", source="cdr")
    entry = MissedCall.get()
    assert MissedCall.select().count() == 1 and entry.id == first.id
    assert (entry.calls, entry.wait_seconds, entry.reason, entry.queue) == (3, 40, "out_of_hours", "complaint")
    assert [o.call_uuid for o in entry.occurrences.order_by(MissedCallOccurrence.id)] == ["c-1", "c-2", "c-3"]
    add_missed("anonymous", "ivr_hangup")
    add_missed("anonymous", "ivr_hangup")
    assert MissedCall.select().where(MissedCall.caller == "anonymous").count() == 2


def test_a_call_is_counted_once(db):
    """Should count a call the ACD reported once when the call record reports it again, keep the ACD's
    reason over the record's guess, and let the record withdraw only what it reported itself."""
    entry, added = note_missed("13800000002", "callback_request", call_uuid="q-1", queue="consult", source="acd")
    assert added
    again, added = note_missed("13800000002", "abandoned", call_uuid="q-1", queue="consult", source="cdr")
    assert not added and again.id == entry.id
    entry = MissedCall.get()
    assert (entry.calls, entry.reason) == (1, "callback_request")
    assert missed.withdraw("q-1") is False and MissedCall.select().count() == 1
    note_missed("13800000002", "ivr_hangup", call_uuid="i-2", source="cdr")
    assert MissedCall.get().calls == 2
    assert missed.withdraw("i-2") is True
    assert (MissedCall.get().calls, MissedCall.get().reason) == (1, "callback_request")
    note_missed("13800000003", "ivr_hangup", call_uuid="i-3", source="cdr")
    assert missed.withdraw("i-3") is True
    assert not MissedCall.select().where(MissedCall.caller == "13800000003").exists()
    with pytest.raises(MissedCallError, match="source"):
        note_missed("13800000004", "abandoned", source="pbx")


def test_claim_two_agents_at_once(db, agents):
    """Should let exactly one of two agents claiming the same entry at the same moment win."""
    entry = add_missed("13800000005", "abandoned")
    barrier = threading.Barrier(2, timeout=10)
    results: dict[str, str] = {}

    def try_claim(user) -> None:
        with db.connection_context():
            barrier.wait()
            try:
                claim(entry.id, user)
                results[user.operator_no] = "won"
            except MissedCallError as exc:
                results[user.operator_no] = str(exc)

    threads = [threading.Thread(target=try_claim, args=(user,)) for user in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(results) == ["1001", "1002"]
    winners = [no for no, result in results.items() if result == "won"]
    assert len(winners) == 1
    loser = next(no for no in results if no not in winners)
    assert "正在回拨" in results[loser]
    assert MissedCall.get_by_id(entry.id).claimed_by.operator_no == winners[0]


def test_claim_rules(db, agents):
    """Should renew one's own claim, refuse another's, let an expired claim be taken over, and refuse a
    closed entry, an unknown one and a user without the call-back permission."""
    first, second = agents
    entry = add_missed("13800000006", "abandoned")
    now = utcnow()
    claim(entry.id, first, at=now)
    claim(entry.id, first, at=now + dt.timedelta(minutes=1))
    with pytest.raises(MissedCallError, match="王芳"):
        claim(entry.id, second, at=now + dt.timedelta(minutes=2))
    with pytest.raises(MissedCallError, match="another agent"):
        record_attempt(entry.id, "reached", agent=second, at=now + dt.timedelta(minutes=2))
    assert CallbackAttempt.select().count() == 0
    later = now + dt.timedelta(minutes=1) + missed.CLAIM_TTL
    assert claim(entry.id, second, at=later).claimed_by_id == second.id
    record_attempt(entry.id, "wrong_number", agent=second, at=later)
    with pytest.raises(MissedCallError, match="dealt with"):
        claim(entry.id, first)
    with pytest.raises(MissedCallError, match="no missed call"):
        claim(999999, first)
    clerk = create_user("2001", "张三", "correct horse battery", roles=["dept"])
    with pytest.raises(MissedCallError, match="回拨权限"):
        claim(add_missed("13800000007", "abandoned").id, clerk)


def test_start_call_back_gives_the_claim_back_when_refused(db, agents):
    """Should release the claim when the outbound call is refused, and keep it while the call goes out."""
    first, second = agents
    entry = add_missed("13800000008", "abandoned")

    def refuse(number):
        raise ValueError("您的话机未注册 / your phone is not registered")

    with pytest.raises(ValueError, match="未注册"):
        missed.start_call_back(entry.id, first, refuse)
    assert MissedCall.get_by_id(entry.id).claimed_by_id is None
    _, call_uuid = missed.start_call_back(entry.id, second, lambda number: f"leg-{number}")
    assert call_uuid == "leg-13800000008" and MissedCall.get_by_id(entry.id).claimed_by_id == second.id
    assert missed.release(entry.id, first) is False and missed.release(entry.id, second) is True


def test_summary_and_oldest_first(db, agents):
    """Should count open and claimed entries per queue, and list the longest waiting first for the desk."""
    now = utcnow()
    old = add_missed("13800000010", "abandoned", queue="consult", at=now - dt.timedelta(minutes=30))
    add_missed("13800000011", "callback_request", queue="consult", at=now - dt.timedelta(minutes=10))
    add_missed("13800000012", "out_of_hours", at=now - dt.timedelta(minutes=20))
    claim(old.id, agents[0], at=now)
    summary = missed.open_summary(now)
    assert (summary["open"], summary["claimed"], summary["oldest_seconds"]) == (3, 1, 1800)
    assert summary["by_queue"] == {"": 1, "consult": 2}
    assert [e.missed.caller for e in list_missed(oldest_first=True)] == ["13800000010", "13800000012",
                                                                         "13800000011"]


def test_migration_moves_call_back_requests_and_merges(db):
    """Should, on a database from before the one list, add the columns, merge a number's open entries,
    and move open call-back requests onto the list before dropping their table."""
    from core.db import BaseModel
    from core.migrations import SchemaMigration
    from hotline.schema import all_models, create_schema

    class OldMissedCall(BaseModel):
        """missed_call as it was before the one list."""

        call = peewee.ForeignKeyField(CallRecord, null=True, on_delete="SET NULL")
        caller = peewee.CharField(max_length=32, index=True)
        reason = peewee.CharField(max_length=16)
        queue = peewee.CharField(max_length=64, default="")
        at = peewee.DateTimeField(index=True)
        ticket = peewee.ForeignKeyField(Ticket, null=True, on_delete="SET NULL")
        status = peewee.CharField(max_length=16, default="open", index=True)
        attempts = peewee.IntegerField(default=0)
        closed_at = peewee.DateTimeField(null=True)

        class Meta:
            table_name = "missed_call"

    db.drop_tables([CallbackAttempt, MissedCallOccurrence, MissedCall], cascade=is_postgres(db))
    db.create_tables([OldMissedCall])
    SchemaMigration.delete().where(SchemaMigration.name == "0001_one_missed_call_list").execute()
    t0 = dt.datetime(2026, 11, 1, 8, 0)
    mark = "?" if not is_postgres(db) else "%s"
    for minutes, reason in ((0, "abandoned"), (5, "ivr_hangup")):
        OldMissedCall.create(caller="13800000020", reason=reason, queue="consult", at=t0 + dt.timedelta(minutes=minutes))
    db.execute_sql("CREATE TABLE callback_request (id INTEGER PRIMARY KEY, queue_id INTEGER, caller_number "
                   "VARCHAR(32), call_uuid VARCHAR(64), reason VARCHAR(16), created_at TIMESTAMP, status VARCHAR(16))")
    for rid, number, reason, status in ((1, "13800000020", "key", "open"), (2, "13800000021", "overflow", "open"),
                                        (3, "13800000022", "abandoned", "done")):
        db.execute_sql(f"INSERT INTO callback_request VALUES ({mark}, NULL, {mark}, {mark}, {mark}, {mark}, {mark})",
                       (rid, number, f"u-{rid}", reason, t0, status))
    assert create_schema(all_models()) == ["0001_one_missed_call_list"]
    assert not db.table_exists("callback_request")
    rows = {m.caller: m for m in MissedCall.select()}
    assert sorted(rows) == ["13800000020", "13800000021"]
    merged = rows["13800000020"]
    assert (merged.calls, merged.reason, merged.last_at) == (3, "callback_request", t0 + dt.timedelta(minutes=5))
    assert merged.at == t0 and MissedCallOccurrence.select().where(MissedCallOccurrence.missed == merged).count() == 3
    assert rows["13800000021"].reason == "callback_request"
