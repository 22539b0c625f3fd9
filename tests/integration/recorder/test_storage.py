"""Recording storage: files per day, A-law indexing, bad recordings, unwritable storage, retention."""
from __future__ import annotations

import peewee
import pytest

from caseflow import services
from caseflow.models import Notification, Ticket, TicketHistory
from ops.models import SystemAlarm
from recorder.models import Recording
from recorder.storage import RecordingOptions, RecordingStore
from recorder.tickets import link_call
from recorder.wavfile import FORMAT_ALAW, read_wav_info, sha256_file

from tests.unit.recorder.test_wavfile import write_pcm


def test_record_convert_and_index(cdr, store, clock):
    """Should put the recording under YYYY-MM-DD/<uuid>.wav as A-law with duration, size and sha256."""
    cdr.call_started("rec-1", caller="13800138000")
    rec = store.begin("rec-1")
    assert rec.status == "recording" and rec.path == "2026-11-27/rec-1.wav" and rec.caller == "13800138000"
    assert store.switch_raw_path(rec).endswith("2026-11-27/rec-1.pcm.wav")
    write_pcm(store.raw_path(rec), seconds=3.0)
    rec = store.finish(rec)
    final = store.local_path(rec)
    assert rec.status == "ok" and rec.duration_ms == 3000 and rec.format == "wav-alaw"
    assert rec.size == final.stat().st_size and rec.sha256 == sha256_file(final)
    assert read_wav_info(final).format_tag == FORMAT_ALAW
    assert not store.raw_path(rec).exists()
    second = store.begin("rec-1", kind="ivr_message")
    assert second.path == "2026-11-27/rec-1-2.wav"


def test_stereo_option(db, tmp_path, clock):
    """Should ask the switch for one channel per party and keep two channels in the A-law file."""
    store = RecordingStore(tmp_path / "r", options=RecordingOptions(stereo=True), clock=clock)
    assert store.options.channel_variables() == {"RECORD_STEREO": "true", "record_sample_rate": "8000"}
    rec = store.begin("st-1")
    write_pcm(store.raw_path(rec), seconds=1.0, channels=2)
    rec = store.finish(rec)
    assert rec.status == "ok" and rec.channels == 2 and rec.duration_ms == 1000


def test_zero_length_recording_fails_clearly_and_keeps_file(cdr, store):
    """Should mark a zero-length recording failed with the reason, keep the raw file, and note the ticket."""
    call = cdr.call_started("z-1", caller="1")
    ticket = new_ticket()
    link_call(call, ticket)
    rec = store.begin("z-1")
    write_pcm(store.raw_path(rec), seconds=0)
    rec = store.finish(rec)
    assert rec.status == "failed" and "0" in rec.failure_reason
    assert store.raw_path(rec).exists()
    notes = [h.note for h in TicketHistory.select().where(TicketHistory.ticket == ticket)]
    assert any("录音" in n for n in notes)
    empty = store.begin("z-2")
    store.raw_path(empty).write_bytes(b"")
    assert store.finish(empty).failure_reason.startswith("recording is empty")


def test_missing_recording_file(store, alarms):
    """Should fail (not raise) when the switch never wrote the file."""
    rec = store.finish(store.begin("m-1"))
    assert rec.status == "failed" and "missing" in rec.failure_reason
    assert SystemAlarm.get().kind == "recording_storage"


def test_unwritable_storage_raises_alert_and_notes_ticket(db, cdr, tmp_path, clock, alarms):
    """Should let the call go on: recording marked failed, an alert raised, and the ticket says so."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the recordings folder should be")
    store = RecordingStore(blocker, clock=clock)
    call = cdr.call_started("u-1", caller="1")
    ticket = new_ticket()
    link_call(call, ticket)
    rec = store.begin("u-1")
    assert rec.status == "failed" and "not writable" in rec.failure_reason
    alert = SystemAlarm.get()
    assert (alert.kind, alert.subject, alert.severity) == ("recording_storage", "recordings", "critical")
    assert "u-1" in alert.text
    assert TicketHistory.select().where((TicketHistory.ticket == ticket)
                                        & TicketHistory.note.contains("录音失败")).count() == 1
    # A ticket linked after the failure is told too.
    later = new_ticket()
    link_call(call, later)
    assert TicketHistory.select().where((TicketHistory.ticket == later)
                                        & TicketHistory.note.contains("录音失败")).count() == 1


def test_storage_per_day_and_retention(cdr, store, clock, tmp_path):
    """Should sum storage per day and archive only old recordings no open ticket needs."""
    old_open = _recorded(cdr, store, clock, "old-open")
    old_closed = _recorded(cdr, store, clock, "old-closed")
    clock.advance(days=40)
    new = _recorded(cdr, store, clock, "new")
    open_ticket = new_ticket("in_progress")
    link_call(old_open.call, open_ticket)
    done_ticket = new_ticket("closed")
    link_call(old_closed.call, done_ticket)
    per_day = store.storage_per_day()
    assert [(d.isoformat(), n) for d, n, _ in per_day] == [("2026-11-27", 2), ("2027-01-06", 1)]
    assert per_day[0][2] == old_open.size + old_closed.size
    assert store.archive_old() == []  # off by default
    archived = store.archive_old(older_than_days=30)
    assert [r.call_uuid for r in archived] == ["old-closed"]
    moved = Recording.get_by_id(old_closed.id)
    assert moved.archived and not store.local_path(moved).exists()
    with store.open_file(moved) as handle:
        assert handle.read(4) == b"RIFF"
    assert store.local_path(Recording.get_by_id(old_open.id)).exists()
    assert store.local_path(Recording.get_by_id(new.id)).exists()


def _recorded(cdr, store, clock, uuid):
    cdr.call_started(uuid, caller="1")
    rec = store.begin(uuid)
    write_pcm(store.raw_path(rec), seconds=1.0)
    return store.finish(rec)


def new_ticket(status=None):
    ticket = services.create_ticket("市民来电反映路灯不亮", channel="phone", citizen_phone="13800138000")
    if status:
        Ticket.update(status=status).where(Ticket.id == ticket.id).execute()  # test setup, not a workflow
    return Ticket.get_by_id(ticket.id)


def test_alert_reaches_centre_desk(db, tmp_path, clock, alarms):
    """Should leave the storage alert on the hotline centre's desk."""
    from caseflow.org import create_department

    centre = create_department("C", "热线办", None)
    blocker = tmp_path / "f"
    blocker.write_text("x")
    RecordingStore(blocker, clock=clock).begin("n-1")
    note = Notification.get(Notification.department == centre)
    assert "recording_storage" in note.text and "n-1" in note.text and note.kind == "alarm"


def test_ticket_linked_by_caseflow_later_is_told(db, cdr, tmp_path, clock):
    """Should note a failed recording on a ticket the agent desk linked through caseflow after the failure,
    once, however often the sweep runs."""
    import datetime as dt

    from recorder.tickets import sweep_recording_notes

    blocker = tmp_path / "f"
    blocker.write_text("x")
    cdr.call_started("late-1", caller="13800138000")
    RecordingStore(blocker, clock=clock).begin("late-1")
    ticket = services.create_ticket("市民反映噪音扰民", citizen_phone="13800138000", call_uuid="late-1")
    since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=15)
    assert sweep_recording_notes(since) == 1
    assert sweep_recording_notes(since) == 0
    notes = TicketHistory.select().where((TicketHistory.ticket == ticket) & TicketHistory.note.contains("录音失败"))
    assert notes.count() == 1


def test_an_index_retried_after_its_insert_reply_was_lost_finishes_that_row(store, tmp_path, monkeypatch):
    """Should, when index_file's row was written but the reply to its INSERT was lost with the connection (the
    try never knew its row), finish that row on the retry instead of leaving it "recording" beside a second."""
    source = tmp_path / "message.wav"
    write_pcm(source, seconds=2.0)
    save, written = Recording.save, []

    def written_then_lost(self, *args, **kwargs):
        result = save(self, *args, **kwargs)
        if not written:
            written.append(self.id)
            raise peewee.InterfaceError("connection already closed")
        return result

    monkeypatch.setattr(Recording, "save", written_then_lost)
    with pytest.raises(peewee.InterfaceError):
        store.index_file("lost-reply-1", source, kind="voicemail")
    rec = store.index_file("lost-reply-1", source, kind="voicemail")
    rows = Recording.select().where(Recording.call_uuid == "lost-reply-1")
    assert [(r.id, r.status) for r in rows] == [(written[0], "ok")] and rec.id == written[0]
    assert not source.exists() and store.local_path(rec).exists()


def test_an_index_never_takes_the_row_another_greenlet_is_finishing(store, tmp_path, monkeypatch):
    """Should, while one index_file of a call's IVR message is still converting it (its row "recording", its file
    not yet in the store), index a second message of the same call and kind into a row of its own: taking
    over the first's row as an interrupted try's put both files through one row (review M1)."""
    import gevent
    import gevent.event

    from tests.waiting import wait_until

    first, second = write_pcm(tmp_path / "first.wav", seconds=1.0), write_pcm(tmp_path / "second.wav", seconds=2.0)
    finish, calls, release = store.finish, [], gevent.event.Event()

    def held_finish(rec, raw=None):
        calls.append(rec.id)
        if len(calls) == 1:
            release.wait(timeout=10)  # the first conversion still under way
        return finish(rec, raw=raw)

    monkeypatch.setattr(store, "finish", held_finish)
    one = gevent.spawn(store.index_file, "two-msg-1", first, "ivr")
    wait_until(lambda: calls, what="the first index converting")
    two = gevent.spawn(store.index_file, "two-msg-1", second, "ivr")
    # The second either took the first's row (calls grew) or waits for the first's turn.
    waiting = lambda: getattr(store, "_index_turns", {}).get(("two-msg-1", "ivr"), [None, 0])[1] == 2  # noqa: E731
    wait_until(lambda: len(calls) == 2 or waiting(), what="the second")
    release.set()
    gevent.joinall([one, two], timeout=10, raise_error=True)
    rows = list(Recording.select().where(Recording.call_uuid == "two-msg-1").order_by(Recording.id))
    assert [(r.status, r.duration_ms) for r in rows] == [("ok", 1000), ("ok", 2000)]
    assert [one.value.id, two.value.id] == [r.id for r in rows] and not store.indexing
