"""Starting and finishing recordings through a session or the inbound connection, driven by switch events."""
from __future__ import annotations

from pathlib import Path

from ops.models import SystemAlarm
from recorder.models import Recording
from recorder.recording import RecordingService
from recorder.storage import RecordingStore
from switch.errors import CallHangup
from switch.events import ChannelHangup, RecordStopped
from tests.unit.recorder.test_wavfile import write_pcm


class Session:
    """The slice of CallSession recording uses; 'records' by writing a PCM file where it was told."""

    def __init__(self, uuid, fail=None):
        self.uuid, self.vars, self.executed, self.fail = uuid, {}, [], fail

    def set(self, name, value):
        self.vars[name] = value

    def execute(self, app, arg="", timeout=60.0):
        if self.fail:
            raise self.fail
        self.executed.append((app, arg))


class Connection:
    def __init__(self, reply="+OK Success\n"):
        self.commands, self.reply = [], reply

    def api(self, command, timeout=None):
        self.commands.append(command)
        return self.reply if command.startswith("uuid_record") else "+OK"


def test_session_recording_indexed_on_record_stopped(cdr, store):
    """Should set the stereo/rate variables, record_session to the raw path, and index on RecordStopped."""
    cdr.call_started("s-1", caller="138")
    service = RecordingService(store)
    session = Session("s-1")
    rec = service.start_on_session(session)
    assert session.vars == {"RECORD_STEREO": "false", "record_sample_rate": "8000"}
    app, path = session.executed[0]
    assert app == "record_session" and path.endswith("/s-1.pcm.wav")
    write_pcm(Path(path), seconds=2.0)
    service.on_switch_event(RecordStopped(server="fs", uuid="s-1", path=path, duration_ms=2000))
    rec = Recording.get_by_id(rec.id)
    assert rec.status == "ok" and rec.duration_ms == 2000 and rec.call.call_uuid == "s-1"


def test_bridged_recording_finished_by_final_hangup(cdr, store):
    """Should uuid_record a bridged call and index it when the final hang-up arrives without RecordStopped."""
    service = RecordingService(store)
    conn = Connection()
    rec = service.start_on_bridged(conn, "b-1")
    assert conn.commands[-1].startswith("uuid_record b-1 start ")
    write_pcm(store.raw_path(rec), seconds=1.0)
    service.on_switch_event(ChannelHangup(server="fs", uuid="b-1", cause="NORMAL_CLEARING"))
    assert Recording.get_by_id(rec.id).status == "recording"  # not the final hang-up yet
    service.on_switch_event(ChannelHangup(server="fs", uuid="b-1", cause="NORMAL_CLEARING", complete=True))
    assert Recording.get_by_id(rec.id).status == "ok"


def test_call_gone_before_recording_started(cdr, store, alarms):
    """Should mark the recording failed without an alert when the call ended before uuid_record arrived."""
    service = RecordingService(store)
    assert service.start_on_bridged(Connection("-ERR Cannot locate session!\n"), "gone-1") is None
    rec = Recording.get()
    assert rec.status == "failed" and "ended before" in rec.failure_reason
    assert SystemAlarm.select().count() == 0


def test_switch_refusal_lets_the_call_go_on(cdr, store, alarms):
    """Should mark the recording failed with an alert, not raise, when the switch refuses to record."""
    service = RecordingService(store)
    assert service.start_on_bridged(Connection("-ERR no reply\n"), "b-2") is None
    assert service.start_on_session(Session("b-3", fail=CallHangup("gone"))) is None
    assert [r.status for r in Recording.select().order_by(Recording.id)] == ["failed", "failed"]
    [alarm] = SystemAlarm.select().where(SystemAlarm.kind == "recording_start")
    assert alarm.count == 2 and "b-3" in alarm.text  # one alarm, counted: the leader's phone buzzes once


def test_unwritable_storage_skips_recording(db, tmp_path, clock):
    """Should not ask the switch to record when storage cannot be written."""
    blocker = tmp_path / "f"
    blocker.write_text("x")
    service = RecordingService(RecordingStore(blocker, clock=clock))
    session = Session("w-1")
    assert service.start_on_session(session) is None and session.executed == []


def test_recording_finished_once_when_hang_up_and_sweep_meet(cdr, store):
    """Should convert a recording once when the sweep reaches it while its RecordStopped is being indexed
    (sox yields to the hub; two conversions into one temporary file marked it failed in bench/simulation.py)."""
    import gevent

    service = RecordingService(store)
    rec = service.start_on_bridged(Connection(), "b-4")
    path = store.switch_raw_path(rec)
    write_pcm(store.raw_path(rec), seconds=1.0)
    converted, finish = [], store.finish

    def slow_finish(recording, raw=None):
        converted.append(recording.id)
        gevent.sleep(0.05)  # sox running
        return finish(recording, raw)

    store.finish = slow_finish
    stopped = gevent.spawn(service.on_switch_event, RecordStopped(server="fs", uuid="b-4", path=path,
                                                                   duration_ms=1000))
    gevent.sleep(0)
    swept = gevent.spawn(service.finish_call, "b-4")  # recorder.sweep: the call's channel is gone
    gevent.joinall([stopped, swept], timeout=10)
    assert converted == [rec.id] and swept.value == []
    assert Recording.get_by_id(rec.id).status == "ok"


def test_only_a_recorded_calls_hang_up_asks_the_database(db, cdr, store, monkeypatch):
    """Should finish a recorded call's recording on its final hang-up, and ask the database nothing on the
    final hang-up of a call without one."""
    service = RecordingService(store)
    rec = service.start_on_bridged(Connection(), "rec-1")
    write_pcm(store.raw_path(rec), seconds=1.0)
    seen = []
    execute = db.execute_sql
    monkeypatch.setattr(db, "execute_sql", lambda sql, params=None, *a, **k: seen.append(sql) or
                        execute(sql, params, *a, **k))
    service.on_switch_event(ChannelHangup(server="fs", uuid="not-recorded", cause="NORMAL_CLEARING", complete=True))
    assert seen == []
    service.on_switch_event(ChannelHangup(server="fs", uuid="rec-1", cause="NORMAL_CLEARING", complete=True))
    assert Recording.get_by_id(rec.id).status == "ok" and "rec-1" not in service.recorded_calls
