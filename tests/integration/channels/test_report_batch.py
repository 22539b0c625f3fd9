"""channels.reports.ReportBatch on a real database (SQLite and PostgreSQL): the delivery reports of a burst
stored in one transaction, each request answered after the commit, a batch that cannot be stored refused whole."""
import gevent
import peewee

from channels import outbox
from channels.models import Message
from channels.reports import ReportBatch


def _sent(count: int) -> list[int]:
    ids = []
    for n in range(count):
        message = outbox.enqueue(f"1390000{n:04d}", "optout", {}, answer=True)
        Message.update(status="sent").where(Message.id == message.id).execute()
        ids.append(message.id)
    return ids


def test_a_burst_of_reports_is_one_transaction(db):
    """Should store the reports that arrive together in one transaction, hand each request its message as
    stored, and fail an unknown id alone."""
    ids = _sent(20)
    batch = ReportBatch()
    calls = [gevent.spawn(batch.submit, str(mid), "1", "", f"smsc-{mid}") for mid in ids]
    unknown = gevent.spawn(batch.submit, "987654", "1")
    gevent.joinall([*calls, unknown], timeout=30)
    assert [call.value.status for call in calls] == ["delivered"] * 20
    assert isinstance(unknown.exception, LookupError)
    assert batch.batches == 1
    stored = {m.id: m for m in Message.select().where(Message.id.in_(ids))}
    assert {m.status for m in stored.values()} == {"delivered"}
    assert stored[ids[3]].provider_id == f"smsc-{ids[3]}" and stored[ids[3]].delivery_report.startswith("1:")


def test_a_batch_that_cannot_be_stored_is_refused_whole(db):
    """Should give every request of a batch the database's error when the batch cannot be stored, and keep
    nothing of it (Kannel sends the reports again), then store the next reports as usual."""
    ids = _sent(5)
    seen = []

    def failing(message_id, *rest):
        seen.append(message_id)
        if len(seen) == 3:
            raise peewee.OperationalError("database is locked (test)")
        return outbox.apply_report(message_id, *rest)

    batch = ReportBatch(apply=failing)
    calls = [gevent.spawn(batch.submit, str(mid), "1") for mid in ids]
    gevent.joinall(calls, timeout=30)
    assert all(isinstance(call.exception, peewee.OperationalError) for call in calls)
    assert {m.status for m in Message.select().where(Message.id.in_(ids))} == {"sent"}
    assert batch.batches == 0
    # Kannel's retry: stored now.
    again = [gevent.spawn(batch.submit, str(mid), "1") for mid in ids]
    gevent.joinall(again, timeout=30)
    assert [call.value.status for call in again] == ["delivered"] * 5


def test_more_reports_than_a_batch_holds(db):
    """Should store reports beyond the batch size in the batches that follow, none left waiting."""
    ids = _sent(5)
    batch = ReportBatch(most=2)
    calls = [gevent.spawn(batch.submit, str(mid), "2") for mid in ids]
    gevent.joinall(calls, timeout=30)
    assert [call.value.status for call in calls] == ["failed"] * 5
    assert batch.batches == 3
