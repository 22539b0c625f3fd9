"""The reconciliation sweep and a hung-up IVR call still waiting for the IVR's last word (review H1): the sweep
leaves it to its IVR (which writes the record and files its message) up to recorder.sweep.IVR_WORD_LIMIT, then
writes it as it ended, listing an unserved caller; neither raises the "lost hang-ups" alarm."""
from __future__ import annotations

from ops.models import SystemAlarm
from recorder.models import CallRecord, MissedCall
from recorder.recording import RecordingService
from recorder.sweep import IVR_WORD_LIMIT, Sweeper
from tests.unit.recorder.test_wavfile import write_pcm


def _hung_up_in_the_ivr(cdr, store, tmp_path, clock):
    """An IVR call whose caller hung up after recording a message the IVR has not filed yet; its sweeper."""
    message = tmp_path / "ivr-word-1-complaint.wav"
    write_pcm(message, seconds=1.0)
    sweeper = Sweeper(cdr, recordings=RecordingService(store), servers=lambda: ["A"],
                      unfiled_recordings=lambda uuid: [message] if message.exists() else [])
    cdr.call_started("ivr-word-1", caller="13800000003", called="12345", server="A", ivr=True)
    clock.advance(seconds=30)
    cdr.hangup("ivr-word-1", side="recv_bye")
    return sweeper, message


def _lost_hangup_alarms() -> int:
    return SystemAlarm.select().where(SystemAlarm.kind == "calls_cut_off").count()


def test_a_hung_up_ivr_call_is_left_to_its_ivr(cdr, store, tmp_path, clock):
    """Should leave a call that hung up 10 s ago and waits for its IVR's word open, its message where the IVR
    is filing it, with no alarm; the IVR's word then writes it once."""
    sweeper, message = _hung_up_in_the_ivr(cdr, store, tmp_path, clock)
    clock.advance(seconds=10)
    report = sweeper("A", set())
    assert not any(report.values()) and "ivr-word-1" in cdr.drafts and message.exists()
    assert not CallRecord.get(CallRecord.call_uuid == "ivr-word-1").finalised and _lost_hangup_alarms() == 0
    cdr.ivr_ended("ivr-word-1")
    assert CallRecord.get(CallRecord.call_uuid == "ivr-word-1").finalised
    assert [m.reason for m in MissedCall.select()] == ["ivr_hangup"]


def test_an_ivr_word_that_never_comes_is_written_late(cdr, store, tmp_path, clock):
    """Should, once the IVR's word is IVR_WORD_LIMIT late, write the record as the call ended and list the
    unserved caller, without the "lost hang-ups" alarm and without filing what the IVR was filing."""
    sweeper, message = _hung_up_in_the_ivr(cdr, store, tmp_path, clock)
    clock.advance(seconds=IVR_WORD_LIMIT + 1)
    report = sweeper("A", set())
    assert report["records_written_late"] == 1 and report["records_cut_off"] == 0
    record = CallRecord.get(CallRecord.call_uuid == "ivr-word-1")
    assert record.finalised and record.disposition == "self_service" and record.hangup_side == "caller"
    assert [m.reason for m in MissedCall.select()] == ["ivr_hangup"]
    assert "ivr-word-1" not in cdr.drafts and message.exists() and _lost_hangup_alarms() == 0
