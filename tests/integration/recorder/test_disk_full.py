"""A full disk under recordings, attachments and faxes (issue 16 item 13): every write fails loudly (a clear
error to the caller, the alarm raised through the one alarm path), nothing is cut silently, nothing
half-written is left behind, and the call or the ticket goes on.

Two ways: ENOSPC simulated at the write boundary (always runs, both databases), and a real full file
system: a 2 MB tmpfs mounted by the test, which needs root (skipped cleanly otherwise)."""
from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from caseflow import attachments, services
from caseflow.models import Attachment, TicketHistory
from core import diskspace
from ops.jobs import Checks
from ops.models import SystemAlarm
from ops.rules import Thresholds
from recorder import wavfile
from recorder.fax import FaxError, FaxService, FaxSettings
from recorder.models import Recording
from recorder.storage import RecordingOptions, RecordingStore
from recorder.tickets import link_call
from tests.unit.recorder.test_wavfile import write_pcm

MB = diskspace.MB


def _ticket():
    return services.create_ticket("市民来电反映路灯不亮", channel="phone", citizen_phone="13800138000")


def _alarm(kind):
    return SystemAlarm.get_or_none(SystemAlarm.kind == kind)


# ---------------------------------------------------------------- simulated at the write boundary
class _FillingWriter:
    """A real file that takes ``room`` bytes and then fails every write with ENOSPC, as a full disk does."""

    def __init__(self, handle, room):
        self.handle, self.room = handle, room

    def write(self, data):
        if len(data) > self.room:
            self.handle.write(data[:self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.handle.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


def test_attachment_write_meets_enospc(db, tmp_path, monkeypatch, alarms):
    """Should refuse an upload whose write meets a full disk with StorageFull (an AttachmentError, so every
    page shows it as a clear message), leave no part file, raise storage_full, and keep the ticket."""
    real_open = Path.open

    def filling_open(self, mode="r", *args, **kwargs):
        handle = real_open(self, mode, *args, **kwargs)
        return _FillingWriter(handle, 100_000) if self.name.endswith(".part") else handle

    ticket = _ticket()
    monkeypatch.setattr(Path, "open", filling_open)
    with pytest.raises(attachments.StorageFull, match="storage full"):
        attachments.add_attachment(ticket, tmp_path / "att", b"x" * 300_000, "scan.pdf")
    monkeypatch.undo()
    assert [p for p in (tmp_path / "att").rglob("*") if p.is_file()] == []
    assert Attachment.select().count() == 0 and TicketHistory.select().where(TicketHistory.ticket == ticket).count() >= 1
    alarm = _alarm("storage_full")
    assert (alarm.subject, alarm.severity) == ("attachments", "critical") and "scan.pdf" in alarm.text
    assert isinstance(attachments.StorageFull(), attachments.AttachmentError)


def test_recording_refused_below_the_minimum(db, cdr, tmp_path, clock, monkeypatch, alarms):
    """Should not start a recording when the disk has less free space than HOTLINE_RECORDING_MIN_FREE_MB:
    the row failed with 'disk full' (not 'not writable'), the alarm raised, the linked ticket told."""
    store = RecordingStore(tmp_path / "recordings", clock=clock, options=RecordingOptions(min_free_mb=64))
    call = cdr.call_started("full-1", caller="13800138000")
    link_call(call, ticket := _ticket())
    monkeypatch.setattr(diskspace, "free_bytes", lambda path: 10 * MB)
    rec = store.begin("full-1")
    assert rec.status == "failed" and "disk full" in rec.failure_reason and "10 MB free" in rec.failure_reason
    alarm = _alarm("recording_storage")
    assert (alarm.subject, alarm.severity) == ("recordings", "critical") and "full-1" in alarm.text
    assert TicketHistory.select().where((TicketHistory.ticket == ticket)
                                        & TicketHistory.note.contains("disk full")).count() == 1
    with pytest.raises(OSError, match="disk full"):
        store.ready_folder(tmp_path / "recordings" / "ivr", "full-2")  # the IVR's record target
    assert SystemAlarm.get_by_id(alarm.id).count == 2


def test_conversion_without_room_keeps_the_audio(db, cdr, store, monkeypatch, alarms):
    """Should keep a recording as recorded (16-bit PCM, status ok, noted) when the A-law copy finds no room,
    rather than lose the only audio of the call; the alarm says so."""
    cdr.call_started("conv-1", caller="1")
    rec = store.begin("conv-1")
    write_pcm(store.raw_path(rec), seconds=2.0)

    def no_room(source, target, timeout=120.0):
        raise wavfile.ConversionError("sox failed (2): sox FAIL formats: can't write: No space left on device")

    monkeypatch.setattr(wavfile, "convert_to_alaw", no_room)
    rec = store.finish(rec)
    assert rec.status == "ok" and rec.format == "wav-pcm" and rec.duration_ms == 2000
    assert "disk full" in rec.failure_reason and store.local_path(rec).exists()
    assert not store.raw_path(rec).exists() and "kept as recorded" in _alarm("recording_storage").text


def test_recording_cut_short_by_a_full_disk_is_noted(db, cdr, store, clock, monkeypatch, alarms):
    """Should note a recording much shorter than the time it ran while the disk is below its minimum (the
    switch stopped writing when the disk filled up), and raise the alarm; a normal one is left alone."""
    cdr.call_started("cut-1", caller="1")
    rec = store.begin("cut-1")
    write_pcm(store.raw_path(rec), seconds=1.0)
    clock.advance(seconds=60)
    monkeypatch.setattr(diskspace, "free_bytes", lambda path: 1 * MB)
    rec = store.finish(rec)
    assert rec.status == "ok" and "cut short" in rec.failure_reason and "1 s of about 60 s" in rec.failure_reason
    assert "cut-1" in _alarm("recording_storage").text
    monkeypatch.undo()
    cdr.call_started("whole-1", caller="1")
    whole = store.begin("whole-1")
    write_pcm(store.raw_path(whole), seconds=1.0)
    assert store.finish(whole).failure_reason == ""


def test_fax_refused_without_room(db, tmp_path, clock, monkeypatch, alarms, sample_pdf):
    """Should refuse to queue a fax (FaxError naming the full disk, no job left queued) and raise
    storage_full when the fax folder's disk has no room for its pages."""
    fax = FaxService(tmp_path / "fax", tmp_path / "att", FaxSettings(), clock=clock)
    monkeypatch.setattr(diskspace, "free_bytes", lambda path: 1024)
    with pytest.raises(FaxError, match="disk full"):
        fax.send("62345678", sample_pdf)
    assert _alarm("storage_full").subject == "fax"


def _pdf(folder: Path) -> Path:
    path = folder / "reply.pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n")
    return path


@pytest.fixture
def sample_pdf(tmp_path):
    return _pdf(tmp_path)


# ---------------------------------------------------------------- a real full file system
@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs of its own (root only: skipped cleanly otherwise), unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path, leave: int = 0) -> Path:
    """Fill ``disk`` until only about ``leave`` bytes are free (0: until the kernel says ENOSPC)."""
    filler = disk / "filler.bin"
    with open(filler, "ab") as out:
        try:
            while diskspace.free_bytes(disk) > leave:
                out.write(b"\0" * min(64 * 1024, max(diskspace.free_bytes(disk) - leave, 4096)))
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_a_real_full_disk(db, cdr, clock, small_disk, alarms):
    """Should, on a real 2 MB file system filled to the last block: keep a recording whose A-law copy got
    ENOSPC from sox (status ok, the audio as recorded), refuse new recordings as 'disk full', refuse an upload
    with StorageFull and no part file, and raise disk_low from the periodic check, every alarm stored."""
    store = RecordingStore(small_disk / "recordings", clock=clock, options=RecordingOptions(min_free_mb=0))
    cdr.call_started("real-1", caller="1")
    rec = store.begin("real-1")
    assert rec.status == "recording"
    write_pcm(store.raw_path(rec), seconds=8.0)  # 128 KB of 16-bit audio, written while there was room
    ivr_message = write_pcm(small_disk / "ivr-message.wav", seconds=4.0)
    _fill(small_disk)
    # sox says "FAIL ... No space left on device" and exits 0 with an empty file: the IVR's in-place
    # conversion must leave the caller's message as it was.
    with pytest.raises(wavfile.ConversionError, match="No space left on device"):
        wavfile.convert_to_alaw(ivr_message, ivr_message)
    assert wavfile.read_wav_info(ivr_message).duration_ms == 4000
    assert diskspace.free_bytes(small_disk) < 64 * 1024
    rec = store.finish(rec)
    assert rec.status == "ok" and rec.duration_ms == 8000 and "disk full" in rec.failure_reason
    assert wavfile.read_wav_info(store.local_path(rec)).data_bytes == 128_000
    assert not list(store.local_path(rec).parent.glob(".*converting*"))

    store.options = RecordingOptions(min_free_mb=1)
    cdr.call_started("real-2", caller="1")
    refused = store.begin("real-2")
    assert refused.status == "failed" and "disk full" in refused.failure_reason

    ticket = _ticket()
    with pytest.raises(attachments.StorageFull):
        attachments.add_attachment(ticket, small_disk / "attachments", b"%PDF-1.4 " + b"x" * 400_000, "a.pdf")
    assert [p for p in (small_disk / "attachments").rglob("*") if p.is_file()] == []

    fax = FaxService(small_disk / "fax", small_disk / "att", FaxSettings(), clock=clock)
    with pytest.raises(FaxError, match="disk full"):
        fax.send("62345678", _pdf(small_disk.parent))

    checks = Checks(alarms, storage={"recordings": small_disk / "recordings", "attachments": small_disk / "att"},
                    thresholds=Thresholds(disk_free_mb=1))
    [finding] = checks.check()
    assert (finding.kind, finding.subject) == ("disk_low", "recordings+attachments")
    kinds = {a.kind: a for a in SystemAlarm.select()}
    assert set(kinds) == {"recording_storage", "storage_full", "disk_low"}
    assert {a.subject for a in SystemAlarm.select().where(SystemAlarm.kind == "storage_full")} == {"attachments", "fax"}
    assert Recording.select().where(Recording.status == "failed").count() == 1
