"""The alarm service and the periodic checks: on the fake FreeSWITCH, both databases."""
from __future__ import annotations

import gevent
import pytest

from core.config import EslEndpoint
from ops.alarms import AlarmError, AlarmService, shown
from ops.jobs import Checks
from ops.models import SystemAlarm
from ops.rules import Thresholds
from switch.inbound import SwitchPool


def wait_until(predicate, timeout=5.0, what="condition"):
    with gevent.Timeout(timeout, AssertionError(f"{what} not reached")):
        while not predicate():
            gevent.sleep(0.005)


@pytest.fixture
def sent():
    """What the stub SMS hook was handed: (kind, text) per call."""
    return []


@pytest.fixture
def service(sent):
    return AlarmService(notify=lambda kind, text: sent.append((kind, text)))


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


def test_the_sms_hook_of_the_channels_gets_the_alarm(db):
    """Should hand a new alarm to channels.alarms.alarm (stored for the duty phones, noticed on the desk)."""
    from channels.models import Alarm

    with db.connection_context():
        AlarmService().raise_alarm("disk_low", "recordings: 10 MB free", subject="recordings", severity="critical")
        assert [(a.kind, a.text) for a in Alarm.select()] == [("disk_low", "recordings: 10 MB free")]


def test_bad_input_is_refused(db, service):
    """Should refuse an alarm without kind or text, an unknown severity, and acknowledging a missing alarm."""
    with db.connection_context():
        for kind, text, severity in (("", "x", "warning"), ("k", "  ", "warning"), ("k", "x", "loud")):
            with pytest.raises(AlarmError):
                service.raise_alarm(kind, text, severity=severity)
        with pytest.raises(AlarmError, match="no alarm 99"):
            service.acknowledge(99, None)
