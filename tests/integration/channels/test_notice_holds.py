"""The notices' history scan holds a pooled connection only for its statements (issue 15): in transactions of 50
history rows it kept its connection across every row's work, up to 59 s in the loaded simulation
(docs/performance.md) while the pool's other waiters timed out. Run on a releasing pool (core.db._ReleasingPool,
as run.py's process has it) over the test's database, on SQLite and PostgreSQL."""
from __future__ import annotations

import peewee
import pytest
from playhouse import db_url as urls

from caseflow import services
from caseflow.models import TicketHistory
from channels import notices, templates
from channels.models import ChannelCursor, Message
from core import db as core_db

UNIT_PHONE = "13900000009"


@pytest.fixture
def pooled(db, db_url):
    """The models bound to a releasing pool on the test's database for the test, then to ``db`` again."""
    if db_url.startswith("sqlite"):
        pool = core_db._pooled_sqlite_class()(db_url.split("///", 1)[1], max_connections=2, timeout=5,
                                              pragmas=core_db.SQLITE_PRAGMAS, check_same_thread=False)
    else:
        params = urls.parse(db_url)
        pool = core_db._cooperative_postgres_class(core_db._pooled(peewee.PostgresqlDatabase), True)(
            params.pop("database"), max_connections=3, timeout=10, **params)
    core_db.database.initialize(pool)
    try:
        yield pool
    finally:
        core_db.database.initialize(db)
        pool.close_all()


def _dispatched(o, clock, count: int) -> list[str]:
    """``count`` tickets dispatched to the east district, whose contact phone gets an alert for each."""
    o.east.contact_phone = UNIT_PHONE
    o.east.save()
    notices.start_cursor()
    return [services.dispatch(services.create_ticket(f"井盖丢失{n}", created_by=o.agent, clock=clock), o.centre_user,
                              o.east, clock=clock).number for n in range(count)]


def _alerts() -> list[str]:
    return [m.body for m in Message.select().where(Message.address == UNIT_PHONE).order_by(Message.id)]


def test_the_history_scan_holds_no_connection_between_its_statements(org_setup, clock, sms_settings, pooled,
                                                                    monkeypatch):
    """Should render each row's messages with no connection out of the pool and no transaction open (each
    statement takes one and gives it back), queue every alert and move the cursor past the rows."""
    numbers = _dispatched(org_setup, clock, 3)
    render, seen = templates.render, []

    def rendering(*args, **kwargs):
        seen.append((pooled.in_transaction(), len(pooled._in_use)))
        return render(*args, **kwargs)

    monkeypatch.setattr(templates, "render", rendering)
    notices.scan_history(sms_settings, clock)
    assert seen and set(seen) == {(False, 0)}, seen
    assert [number in body for number, body in zip(numbers, _alerts())] == [True] * 3
    last = TicketHistory.select(TicketHistory.id).order_by(TicketHistory.id.desc()).first().id
    assert ChannelCursor.get(ChannelCursor.name == notices.CURSOR).position == last
    assert not pooled._in_use


def test_a_scan_cut_short_is_taken_up_again_without_doubles(org_setup, clock, sms_settings, pooled, monkeypatch):
    """Should keep the messages queued before a row failed and the cursor where it was, and the next scan
    queues the rest, none twice."""
    numbers = _dispatched(org_setup, clock, 3)
    handle = notices._notices_for

    def failing_on_the_second(row, *args, **kwargs):
        if row.ticket.number == numbers[1]:
            raise RuntimeError("the row's work failed")
        return handle(row, *args, **kwargs)

    monkeypatch.setattr(notices, "_notices_for", failing_on_the_second)
    with pytest.raises(RuntimeError):
        notices.scan_history(sms_settings, clock)
    assert len(_alerts()) == 1
    monkeypatch.setattr(notices, "_notices_for", handle)
    notices.scan_history(sms_settings, clock)
    assert [number in body for number, body in zip(numbers, _alerts())] == [True] * 3
    assert notices.scan_history(sms_settings, clock) == 0 and len(_alerts()) == 3
