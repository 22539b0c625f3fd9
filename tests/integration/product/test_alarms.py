"""The alarm service and the periodic checks: on the fake FreeSWITCH, both databases."""
from __future__ import annotations

import pytest

from core.config import EslEndpoint
from ops.alarms import AlarmError, AlarmService, shown
from ops.jobs import Checks
from ops.models import SystemAlarm
from ops.rules import Thresholds
from switch.inbound import SwitchPool
from tests.waiting import wait_until


@pytest.fixture(autouse=True)
def no_alarm_sink_from_other_tests():
    """core.alarms' sink is process-wide: a product another test on this worker built and never stopped leaves
    its own connected, which these tests must not see (the leak itself is noted for the next session)."""
    from core import alarms as core_alarms

    before = core_alarms.connected()
    core_alarms.disconnect()
    yield
    core_alarms.disconnect()
    if before is not None:
        core_alarms.connect(before)


@pytest.fixture
def sent():
    """What the SMS hook was handed: (kind, text) per new alarm."""
    return []


@pytest.fixture
def service(sent):
    return AlarmService(notify=lambda row: sent.append((row.kind, row.text)))


@pytest.fixture
def pool(fakeswitch):
    pool = SwitchPool([EslEndpoint("127.0.0.1", fakeswitch.esl_port, "ClueCon")])
    pool.start()
    yield pool
    pool.stop()


@pytest.fixture
def make_user(db):
    from caseflow.accounts import create_user

    return lambda operator_no, roles: create_user(operator_no, "班长", "pass-word-1234", roles=list(roles))


def switch_alarms():
    return list(SystemAlarm.select().where(SystemAlarm.kind == "switch_down").order_by(SystemAlarm.id))


def test_a_disconnected_switch_raises_and_reconnect_keeps_it_for_acknowledgement(db, fakeswitch, pool, service,
                                                                                  sent, make_user):
    """Should raise switch_down once (counted, one SMS) while the switch is away, keep it shown as resolved
    after the reconnect until acknowledged, then close it."""
    checks = Checks(service, switch_status=pool.status)
    conn = next(iter(pool.all()))
    assert conn.wait_connected(5)
    with db.connection_context():
        assert checks.check() == [] and switch_alarms() == []
        fakeswitch.stop_inbound()
        wait_until(lambda: not conn.connected, what="disconnected")
        checks.check()
        checks.check()
        [row] = switch_alarms()
        assert (row.count, row.severity, row.cleared_at, row.closed) == (2, "critical", None, False)
        assert [kind for kind, _text in sent] == ["switch_down"]
        fakeswitch.start_inbound()
        assert conn.wait_connected(5) or wait_until(lambda: conn.connected, what="reconnected")
        checks.check()
        [row] = switch_alarms()
        assert row.cleared_at is not None and not row.closed and [a.id for a in shown()] == [row.id]
        user = make_user("8001", roles=("team_lead",))
        service.acknowledge(row.id, user)
        [row] = switch_alarms()
        assert row.closed and row.acknowledged_by_id == user.id and shown() == []


def test_acknowledged_while_down_closes_at_reconnect_and_a_new_outage_opens_a_new_alarm(db, fakeswitch, pool,
                                                                                        service, sent, make_user):
    """Should keep an acknowledged alarm off the consoles, close it when the switch is back, and open (and
    text) a new one at the next outage."""
    checks = Checks(service, switch_status=pool.status)
    conn = next(iter(pool.all()))
    assert conn.wait_connected(5)
    with db.connection_context():
        fakeswitch.stop_inbound()
        wait_until(lambda: not conn.connected, what="disconnected")
        checks.check()
        first = switch_alarms()[0]
        service.acknowledge(first.id, make_user("8001", roles=("team_lead",)))
        checks.check()
        assert shown() == [] and switch_alarms()[0].count == 2
        fakeswitch.start_inbound()
        assert conn.wait_connected(5)
        checks.check()
        assert switch_alarms()[0].closed
        fakeswitch.stop_inbound()
        wait_until(lambda: not conn.connected, what="disconnected again")
        checks.check()
        rows = switch_alarms()
        assert len(rows) == 2 and not rows[1].closed and [a.id for a in shown()] == [rows[1].id]
        assert [kind for kind, _text in sent] == ["switch_down", "switch_down"]


def test_backup_and_chain_failures_raise_alarms(db, service, sent, tmp_path):
    """Should raise backup_failed when the backup raises (and clear it after a good one), and chain_broken
    for every problem the record check reports or when the check cannot run."""
    def broken_backup():
        raise RuntimeError("pg_dump: connection refused")

    class Problem:
        where, reason = "record 7", "fields altered"

    with db.connection_context():
        checks = Checks(service, run_backup=broken_backup, verify_chain=lambda: [Problem()])
        assert checks.backup() is None
        assert checks.chain()
        rows = {row.kind: row for row in SystemAlarm.select()}
        assert "pg_dump: connection refused" in rows["backup_failed"].text
        assert "record 7" in rows["chain_broken"].text and rows["chain_broken"].severity == "critical"
        checks.run_backup, checks.verify_chain = (lambda: "ok"), (lambda: [])
        assert checks.backup() == "ok" and checks.chain() == []
        assert all(row.cleared_at is not None for row in SystemAlarm.select())
        checks.verify_chain = lambda: 1 / 0
        checks.chain()
        assert "record check failed" in SystemAlarm.get(SystemAlarm.kind == "chain_broken").text
    assert [kind for kind, _ in sent] == ["backup_failed", "chain_broken"]


def test_disk_low_from_the_file_system(db, service, tmp_path):
    """Should measure free space with the file system holding each area (missing folders: their parent)."""
    with db.connection_context():
        checks = Checks(service, storage={"recordings": tmp_path / "not-yet" / "recordings"},
                        thresholds=Thresholds(disk_free_mb=1 << 40))
        [finding] = checks.check()
        assert (finding.kind, finding.subject) == ("disk_low", "recordings")
        checks.thresholds = Thresholds(disk_free_mb=0)
        assert checks.check() == [] and SystemAlarm.get().cleared_at is not None


def test_the_duty_phones_get_a_new_alarm_by_sms(db, tmp_path):
    """Should queue one urgent SMS per duty phone for a new alarm (the channel's DutyPhones hook), none for a
    repeat, and put the alarm on the centre's desk."""
    import dataclasses

    from caseflow.models import Notification
    from caseflow.org import create_department
    from channels.alarms import DutyPhones
    from channels.models import Message
    from channels.settings import SmsSettings
    from core.config import load_config

    settings = SmsSettings.from_config(load_config({"mode": "test", "secret_key": "k" * 40,
                                                    "var_dir": str(tmp_path / "var"),
                                                    "HOTLINE_SMS_SECRET": "s" * 26}))
    settings = dataclasses.replace(settings, duty_phones=("13800000001", "13800000002"))
    with db.connection_context():
        create_department("C", "热线办", None)
        service = AlarmService(notify=DutyPhones(settings))
        row = service.raise_alarm("disk_low", "recordings: 10 MB free", subject="recordings", severity="critical")
        service.raise_alarm("disk_low", "recordings: 9 MB free", subject="recordings", severity="critical")
        texts = [(m.address, m.purpose) for m in Message.select().order_by(Message.address)]
        assert texts == [("13800000001", "alarm"), ("13800000002", "alarm")]
        assert all("disk_low recordings" in m.body and "10 MB" in m.body for m in Message.select())
        [note] = Notification.select().where(Notification.kind == "alarm")
        assert "disk_low recordings" in note.text and SystemAlarm.get_by_id(row.id).count == 2


def test_events_through_core_alarms(db, sent, make_user, caplog):
    """Should store what a lower floor raises through core.alarms once connected (an event: counted while
    nobody has seen it, closed by acknowledging, the next one a new alarm and a new SMS); log it as an
    ERROR when nothing is connected; never raise into the caller when the store fails."""
    from core import alarms as core_alarms

    service = AlarmService(notify=lambda row: sent.append((row.kind, row.text)))
    with db.connection_context():
        assert core_alarms.raise_alarm("fax_failed", "fax 1 failed") is None
        assert "no alarm service connected" in caplog.text and SystemAlarm.select().count() == 0
        core_alarms.connect(service.raise_alarm)
        try:
            first = core_alarms.raise_alarm("fax_failed", "fax 1 failed")
            assert core_alarms.raise_alarm("fax_failed", "fax 2 failed").id == first.id
            row = SystemAlarm.get_by_id(first.id)
            assert (row.count, row.text, row.closed) == (2, "fax 2 failed", False) and row.cleared_at is not None
            service.acknowledge(row.id, make_user("8001", roles=("team_lead",)))
            assert SystemAlarm.get_by_id(row.id).closed and shown() == []
            again = core_alarms.raise_alarm("fax_failed", "fax 3 failed")
            assert again.id != first.id and [a.id for a in shown()] == [again.id]
            assert sent == [("fax_failed", "fax 1 failed"), ("fax_failed", "fax 3 failed")]
            assert core_alarms.raise_alarm("", "no kind") is None  # refused by the store, logged, not raised
        finally:
            core_alarms.disconnect(service.raise_alarm)
    assert core_alarms.connected() is None


def test_bad_input_is_refused(db, service):
    """Should refuse an alarm without kind or text, an unknown severity, and acknowledging a missing alarm."""
    with db.connection_context():
        for kind, text, severity in (("", "x", "warning"), ("k", "  ", "warning"), ("k", "x", "loud")):
            with pytest.raises(AlarmError):
                service.raise_alarm(kind, text, severity=severity)
        with pytest.raises(AlarmError, match="no alarm 99"):
            service.acknowledge(99, None)


def test_old_alarm_tables_move_into_the_one_store(db):
    """Should move the channels' alarm rows (closed: they were noticed and texted when raised) and the
    recorder's alerts (shown until acknowledged, as before) into system_alarm and drop both old tables."""
    from core.migrations import SchemaMigration
    from hotline.schema import create_schema

    step = "0008_one_alarm_store"
    with db.connection_context():
        db.execute_sql('CREATE TABLE "alarm" (id INTEGER PRIMARY KEY, kind VARCHAR(32), text VARCHAR(255), '
                       'repeats INTEGER, created_at TIMESTAMP, last_at TIMESTAMP, sent_at TIMESTAMP)')
        db.execute_sql('CREATE TABLE "recorder_alert" (id INTEGER PRIMARY KEY, kind VARCHAR(32), severity '
                       'VARCHAR(8), message TEXT, at TIMESTAMP, acknowledged BOOLEAN)')
        db.execute_sql("INSERT INTO \"alarm\" VALUES (1, 'sms_gave_up', '短信重试用尽', 2, '2026-03-01 08:00:00', "
                       "'2026-03-01 08:05:00', '2026-03-01 08:00:10')")
        db.execute_sql("INSERT INTO \"recorder_alert\" VALUES (1, 'recording_storage', 'error', 'call u-1: not "
                       "writable', '2026-03-02 09:00:00', FALSE), (2, 'fax_failed', 'warning', 'fax 3 failed', "
                       "'2026-03-02 10:00:00', TRUE)")
        SchemaMigration.delete().where(SchemaMigration.name == step).execute()
        assert step in create_schema()
        assert step not in create_schema()  # once
        assert not db.table_exists("alarm") and not db.table_exists("recorder_alert")
        rows = {row.kind: row for row in SystemAlarm.select()}
        sms, storage, fax = rows["sms_gave_up"], rows["recording_storage"], rows["fax_failed"]
        assert (sms.count, sms.closed, sms.severity) == (3, True, "warning")
        assert (storage.subject, storage.severity, storage.closed, storage.acknowledged_at) == (
            "recordings", "critical", False, None)
        assert fax.closed and fax.acknowledged_at is not None
        assert [a.kind for a in shown()] == ["recording_storage"]
