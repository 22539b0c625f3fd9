"""An alarm raised inside a database transaction outlives its rollback (issue 16): core.alarms stores it once the
outermost transaction has ended (core.db.after_transaction), committed or not, on both databases."""
from __future__ import annotations

from pathlib import Path

import pytest

from caseflow import attachments, services
from caseflow.models import Ticket
from core import db as core_db
from core.alarms import CRITICAL, raise_alarm
from ops.models import SystemAlarm
from tests.integration.recorder.test_disk_full import _FillingWriter


def _alarms(kind):
    return list(SystemAlarm.select().where(SystemAlarm.kind == kind))


def test_an_alarm_outlives_the_rollback_of_its_transaction(db, alarms):
    """Should store an alarm raised inside a transaction that then rolls back (it was rolled back with it)."""
    with pytest.raises(RuntimeError):
        with db.atomic():
            services.create_ticket("市民来电反映路灯不亮", channel="phone", citizen_phone="13800138000")
            raise_alarm("storage_full", "attachments disk full", subject="attachments", severity=CRITICAL)
            raise RuntimeError("the failure the alarm reports")
    assert Ticket.select().count() == 0
    [alarm] = _alarms("storage_full")
    assert (alarm.subject, alarm.severity, alarm.count) == ("attachments", "critical", 1)


def test_an_alarm_is_stored_once_the_outermost_transaction_ends(db, alarms):
    """Should store the alarm of a rolled-back savepoint only when the outer transaction ends (committed),
    and once; outside any transaction at once, returning the row."""
    with db.atomic():
        with pytest.raises(RuntimeError):
            with db.atomic():
                assert raise_alarm("fax_failed", "fax 1 gave up") is None
                raise RuntimeError("savepoint rolled back")
        assert _alarms("fax_failed") == []
    [alarm] = _alarms("fax_failed")
    assert alarm.count == 1
    assert raise_alarm("fax_failed", "fax 2 gave up").id == alarm.id
    assert SystemAlarm.get_by_id(alarm.id).count == 2


def test_a_ticket_filed_with_its_file_on_a_full_disk_keeps_the_alarm(db, tmp_path, monkeypatch, alarms):
    """Should keep storage_full when a ticket filed together with its attachment in one transaction is
    refused by a full disk: the ticket is gone with the rollback, the alarm raised by the store is not."""
    real_open = Path.open

    def filling_open(self, mode="r", *args, **kwargs):
        handle = real_open(self, mode, *args, **kwargs)
        return _FillingWriter(handle, 1000) if self.name.endswith(".part") else handle

    monkeypatch.setattr(Path, "open", filling_open)
    with pytest.raises(attachments.StorageFull):
        with db.atomic():
            ticket = services.create_ticket("来信扫描件", channel="letter", citizen_phone="13800138000")
            attachments.add_attachment(ticket, tmp_path / "att", b"x" * 5000, "letter.pdf", kind="letter")
    monkeypatch.undo()
    assert Ticket.select().count() == 0
    [alarm] = _alarms("storage_full")
    assert alarm.subject == "attachments" and "letter.pdf" in alarm.text


def test_what_runs_after_the_transaction_may_fail_alone(db, caplog):
    """Should run every deferred callback after the rollback even when an earlier one fails (logged)."""
    ran = []

    def failing():
        raise ValueError("deferred failure")

    with pytest.raises(RuntimeError):
        with db.atomic():
            assert core_db.after_transaction(failing) is True
            assert core_db.after_transaction(lambda: ran.append(db.in_transaction())) is True
            raise RuntimeError("rolled back")
    assert ran == [False]
    assert "deferred failure" in caplog.text
    assert core_db.after_transaction(lambda: ran.append("now")) is False and ran[-1] == "now"
