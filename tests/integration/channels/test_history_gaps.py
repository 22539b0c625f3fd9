"""The notice scans never skip a history row committed late (channels.notices.follow_history): on PostgreSQL a
row whose id came from the sequence before a later row's may commit after the scan read the later one; its
citizen's notices (the result SMS, the e-mail result and satisfaction question) are queued once it commits, and
an id a rolled-back transaction burned is waited for only GAP_WAIT on the server's clock, whatever another
session of the shared server holds open. On SQLite (one writer, ids visible in order) no gap is tracked and an idle
scan stays two statements."""
from __future__ import annotations

import logging

import pytest

from caseflow import services
from caseflow.models import TicketHistory
from channels import mailflow, notices
from channels.models import ChannelCursor, Message
from tests.integration.channels.mailservers import make_settings

UNIT_PHONE = "13900000009"
CITIZEN_PHONE = "13800000001"
CITIZEN_MAIL = "c@example.cn"


@pytest.fixture
def other(db, db_url):
    """A second real connection to the test's PostgreSQL database (skipped on SQLite), rolled back and closed
    at the end."""
    if not db_url.startswith("postgres"):
        pytest.skip("commits out of id order need a second writer: PostgreSQL")
    import psycopg2

    connection = psycopg2.connect(db_url, connect_timeout=3)
    yield connection
    connection.rollback()
    connection.close()


@pytest.fixture
def later(monkeypatch):
    """``later(seconds)``: the server's clock as the gap scan reads it moved on by ``seconds`` from now on (the
    test's clock for the gaps: the scan never reads the application's); the writers' start times as they are."""
    read, moved = notices._server_times, [0.0]
    monkeypatch.setattr(notices, "_server_times", lambda: (read()[0] + moved[0], read()[1]))

    def move(seconds: float) -> None:
        moved[0] += seconds

    return move


def _history_row(connection, ticket_id: int, action: str) -> int:
    """A history row written on ``connection`` in its open transaction (not committed): its id."""
    with connection.cursor() as cur:
        cur.execute("SET lock_timeout = '3s'")
        cur.execute("INSERT INTO ticket_history (ticket_id, at, actor_label, action, from_status, to_status, note)"
                    " VALUES (%s, now() AT TIME ZONE 'UTC', 'test', %s, 'replied', 'approved', '') RETURNING id",
                    (ticket_id, action))
        return cur.fetchone()[0]


def _setup(o, clock):
    """The east district with a contact phone, both notice cursors started, a ticket whose citizen asked for the
    reply by e-mail (and left a mobile number) and one more ticket to dispatch."""
    o.east.contact_phone = UNIT_PHONE
    o.east.save()
    notices.start_cursor()
    notices.start_cursor(mailflow.CURSOR)
    waiting = services.create_ticket("路灯不亮", citizen_phone=CITIZEN_PHONE, citizen_email=CITIZEN_MAIL,
                                     reply_by="email", reply="已修复。", created_by=o.agent, clock=clock)
    later = services.create_ticket("井盖丢失", created_by=o.agent, clock=clock)
    return waiting, later


def _scan(sms_settings, mail_settings, clock) -> None:
    notices.scan_history(sms_settings, clock)
    mailflow.scan_history(mail_settings, clock)


def _citizen() -> list[tuple[str, str]]:
    return [(m.channel, m.purpose) for m in Message.select().where(Message.address.in_([CITIZEN_PHONE, CITIZEN_MAIL]))
            .order_by(Message.id)]


def _gaps() -> list[str]:
    return sorted(c.name for c in ChannelCursor.select() if "#" in c.name)


def _last_id() -> int:
    return TicketHistory.select(TicketHistory.id).order_by(TicketHistory.id.desc()).first().id


def test_a_row_committed_after_a_later_one_gets_its_notices_once(org_setup, clock, sms_settings, other, tmp_path):
    """Should queue the later row's alert at once, remember the held row's id on both cursors while its
    transaction is open, queue its SMS result and e-mail result and question once it commits, and nothing twice
    when its gap is read again (a crash before the gap was forgotten)."""
    o = org_setup
    mail_settings = make_settings(tmp_path, HOTLINE_EMAIL_SMTP_HOST="127.0.0.1")
    waiting, later = _setup(o, clock)
    held = _history_row(other, waiting.id, "approve")
    services.dispatch(later, o.centre_user, o.east, clock=clock)  # committed, with an id after the held row's
    _scan(sms_settings, mail_settings, clock)
    assert [m.purpose for m in Message.select().where(Message.address == UNIT_PHONE)] == ["alert"]
    assert _citizen() == []
    assert _gaps() == [f"{notices.CURSOR}#{held}", f"{mailflow.CURSOR}#{held}"]
    assert {c.position for c in ChannelCursor.select().where(
        ChannelCursor.name.in_([notices.CURSOR, mailflow.CURSOR]))} == {_last_id()}

    other.commit()
    _scan(sms_settings, mail_settings, clock)
    expected = [("sms", "result"), ("email", "result"), ("email", "satisfaction")]
    assert _citizen() == expected
    assert _gaps() == []
    _scan(sms_settings, mail_settings, clock)
    ChannelCursor.create(name=f"{notices.CURSOR}#{held}", position=0)
    ChannelCursor.create(name=f"{mailflow.CURSOR}#{held}", position=0)
    _scan(sms_settings, mail_settings, clock)
    assert _citizen() == expected and _gaps() == []


def test_a_long_transaction_committed_late_gets_its_notices(org_setup, clock, sms_settings, other, tmp_path):
    """Should keep every id of a transaction that wrote more history rows than the old limit of 1000 (1500 of
    them, the last an approve) while it is open, and queue the approve's notices once it commits."""
    o = org_setup
    mail_settings = make_settings(tmp_path, HOTLINE_EMAIL_SMTP_HOST="127.0.0.1")
    waiting, second = _setup(o, clock)
    with other.cursor() as cur:
        cur.execute("INSERT INTO ticket_history (ticket_id, at, actor_label, action, from_status, to_status, note) "
                    "SELECT %s, now() AT TIME ZONE 'UTC', 'test', 'note', 'replied', 'replied', '' "
                    "FROM generate_series(1, 1499)", (waiting.id,))
    held = _history_row(other, waiting.id, "approve")
    services.dispatch(second, o.centre_user, o.east, clock=clock)
    _scan(sms_settings, mail_settings, clock)
    assert len(_gaps()) == 2 * 1500 and _citizen() == []
    other.commit()
    _scan(sms_settings, mail_settings, clock)
    assert _citizen() == [("sms", "result"), ("email", "result"), ("email", "satisfaction")]
    assert _gaps() == [] and held < _last_id()


def test_an_id_of_a_rolled_back_insert_is_waited_for_a_minute(org_setup, clock, sms_settings, other, later):
    """Should not hold up the later row's alert for a rolled-back row's id, keep that gap for GAP_WAIT seconds
    on the server's clock and drop it after, though another session of the server holds a writing transaction
    open since before the gap (it writes no history of this schema); the scan's own clock plays no part."""
    o = org_setup
    waiting, second = _setup(o, clock)
    burned = _history_row(other, waiting.id, "approve")
    other.rollback()
    with other.cursor() as cur:  # a bystander's write, open throughout (another test run's, say)
        cur.execute("CREATE TEMP TABLE bystander (i int); INSERT INTO bystander VALUES (1)")
    services.dispatch(second, o.centre_user, o.east, clock=clock)
    assert notices.scan_history(sms_settings, clock) == 1
    assert _gaps() == [f"{notices.CURSOR}#{burned}"]
    clock.advance(hours=2)  # the application's clock is not the gaps'
    later(notices.GAP_WAIT - 2)
    assert notices.scan_history(sms_settings, clock) == 0 and _gaps() == [f"{notices.CURSOR}#{burned}"]
    later(3)
    assert notices.scan_history(sms_settings, clock) == 0 and _gaps() == []
    assert ChannelCursor.get_by_id(notices.CURSOR).position == _last_id()
    assert len(Message.select().where(Message.address == UNIT_PHONE)) == 1


def test_a_gap_waits_while_an_older_writer_is_open_up_to_the_limit(org_setup, clock, sms_settings, other, later,
                                                                  caplog):
    """Should keep a gap past GAP_WAIT while the transaction that took its id is open (it may still commit it),
    whatever the application's clock says, and give it up after GAP_LIMIT on the server's clock with a
    warning."""
    o = org_setup
    waiting, second = _setup(o, clock)
    held = _history_row(other, waiting.id, "approve")
    services.dispatch(second, o.centre_user, o.east, clock=clock)
    notices.scan_history(sms_settings, clock)
    assert _gaps() == [f"{notices.CURSOR}#{held}"]
    started = notices._server_times()[1]
    assert started is not None and started < ChannelCursor.get_by_id(f"{notices.CURSOR}#{held}").position
    clock.advance(hours=2)
    later(notices.GAP_WAIT + 1)
    notices.scan_history(sms_settings, clock)
    assert _gaps() == [f"{notices.CURSOR}#{held}"]
    later(notices.GAP_LIMIT)
    with caplog.at_level(logging.WARNING, logger="channels.notices"):
        notices.scan_history(sms_settings, clock)
    assert _gaps() == [] and "given up" in caplog.text


def test_an_idle_scan_is_two_statements_on_sqlite(org_setup, clock, sms_settings, db_url, caplog):
    """Should read only the cursor and the ids after it when nothing was written (PostgreSQL: and its gaps),
    and write no gap row on SQLite."""
    o = org_setup
    _setup(o, clock)
    notices.scan_history(sms_settings, clock)
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        assert notices.scan_history(sms_settings, clock) == 0
    statements = [r for r in caplog.records if r.name == "peewee"]
    assert len(statements) == (3 if db_url.startswith("postgres") else 2), [r.getMessage() for r in statements]
    assert _gaps() == []
