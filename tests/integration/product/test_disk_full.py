"""Disk full for recordings and attachments, through the whole product on the fake FreeSWITCH (issue 16's
faults list): calls go on, recordings fail loudly with an alarm, no caller is lost.

As root the recordings and attachments live on a real 2 MB tmpfs filled to the last block; otherwise the
disk counts as full by its threshold (HOTLINE_RECORDING_MIN_FREE_MB above any disk's size), which drives the
same code from the same statvfs figures."""
from __future__ import annotations

import os
import subprocess

import pytest

from caseflow.models import Ticket
from core.db import database
from ops.models import SystemAlarm
from recorder.models import CallRecord, MissedCall, Recording
from tests.fakeswitch import Press, Speak, WaitFor
from tests.integration.recorder.test_disk_full import _fill
from tests.integration.recorder.test_product_calls import SECRET, OfficeHoursClock, finalised


@pytest.fixture
def full_disk(tmp_path):
    """(folder on a full disk, extra settings, 'real' or 'threshold')."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    if os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
                                            capture_output=True).returncode == 0:
        try:
            (folder / "recordings").mkdir()
            (folder / "attachments").mkdir()
            _fill(folder)
            yield folder, {"HOTLINE_RECORDING_MIN_FREE_MB": "1"}, "real"
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        return
    yield folder, {"HOTLINE_RECORDING_MIN_FREE_MB": str(1 << 40)}, "threshold"


def test_calls_go_on_when_the_recordings_disk_is_full(make_product, full_disk):
    """Should, with the recordings' disk full: connect a caller to the agent unrecorded (the recording failed
    'disk full'); send a caller who chose to record a complaint to a person instead of recording into
    nothing; finalise both call records; raise one recording_storage alarm (counted) on the consoles."""
    folder, extra, how = full_disk
    product = make_product(clock=OfficeHoursClock(), secret_key=SECRET, demo_queues=False,
                           recordings_dir=str(folder / "recordings"),
                           attachments_dir=str(folder / "attachments"), **extra)
    fs = product.fs
    desk = fs.add_agent("1000", talk_seconds=60, answer_delay=0.2)
    talk = fs.place_call(product.parts["outbound"].address, caller="13912345678", destination="12345", script=[])
    talk.wait_ended(timeout=30)
    assert desk.answered_calls and talk.bridged_to
    assert finalised(product, talk.uuid, lambda r: r.disposition == "answered").agent_no == "1001"

    complaint = fs.place_call(product.parts["outbound"].address, caller="13900001111", destination="12345",
                              script=[Press("2"), Press("2"), Speak(3), Press("#"), Press("1")])
    complaint.wait_ended(timeout=60)
    record = finalised(product, complaint.uuid)
    with database.connection_context():
        recordings = list(Recording.select().where(Recording.call_uuid == talk.uuid))
        assert [r.status for r in recordings] == ["failed"] and "disk full" in recordings[0].failure_reason
        alarm = SystemAlarm.get(SystemAlarm.kind == "recording_storage")
        assert alarm.severity == "critical" and alarm.count >= 2 and alarm.acknowledged_at is None
        served = record.disposition == "answered" or MissedCall.select().where(
            MissedCall.caller == "13900001111").exists() or Ticket.select().where(
            Ticket.citizen_phone == "13900001111").exists()
        assert served, f"the complaint caller was lost ({record.disposition}, {how})"
        assert CallRecord.select().where(CallRecord.finalised == False).count() == 0  # noqa: E712
    print(f"disk full ({how}): agent call answered unrecorded; complaint caller -> {record.disposition} "
          f"{record.agent_no}; recording_storage alarm x{alarm.count}")
