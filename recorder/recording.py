"""Recording calls through the switch: start on a CallSession (IVR, outbound socket) or on a bridged call
over the inbound connection (ACD), and index the file when the switch reports the recording stopped.

Recording never stops a call: when storage cannot be written, ``start_*`` return None after the store
raised the alert, and the call continues unrecorded.
"""
from __future__ import annotations

import logging
from pathlib import Path

from recorder.models import Recording
from recorder.storage import RecordingStore
from switch import commands

log = logging.getLogger(__name__)


class RecordingService:
    """Starts recordings and finishes them on RecordStopped / hang-up events."""

    def __init__(self, store: RecordingStore):
        self.store = store
        self.pending: dict[str, int] = {}  # switch-side raw path -> Recording id
        self.starting: set[int] = set()  # recordings asked for but not yet confirmed by the switch
        # Recordings being converted and indexed now (sox yields to the hub): the hang-up event and a sweep
        # may both reach one; two conversions into one temporary file marked a whole recording failed.
        self.finishing: set[int] = set()
        # The calls this process started a recording on: only their final hang-up looks for recordings to
        # finish (every hang-up asked the database, 14 % of the app's time in bench/simulation.py's profile).
        # One started by another process, or before a restart, is finished by recorder.sweep.
        self.recorded_calls: set[str] = set()

    def _reserve(self, call_uuid: str, kind: str) -> Recording | None:
        rec = self.store.begin(call_uuid, kind=kind)
        if rec.status != "recording":
            return None
        self.recorded_calls.add(call_uuid)
        self.pending[self.store.switch_raw_path(rec)] = rec.id
        return rec

    def start_on_session(self, session, kind: str = "conversation") -> Recording | None:
        """Record the whole call from now on (record_session); both parties, mixed or one channel each."""
        rec = self._reserve(session.uuid, kind)
        if rec is None:
            return None
        try:
            for name, value in self.store.options.channel_variables().items():
                session.set(name, value)
            session.execute("record_session", self.store.switch_raw_path(rec), timeout=10.0)
        except Exception as exc:  # noqa: BLE001 - the call goes on without a recording
            self._abandon(rec, f"switch refused to record / 交换机未能开始录音: {exc}")
            return None
        return rec

    def start_on_bridged(self, connection, call_uuid: str, kind: str = "conversation") -> Recording | None:
        """Record a bridged call by UUID over an inbound connection (uuid_record), as the ACD bridges it."""
        rec = self._reserve(call_uuid, kind)
        if rec is None:
            return None
        self.starting.add(rec.id)
        try:
            for name, value in self.store.options.channel_variables().items():
                connection.api(commands.uuid_setvar(call_uuid, name, value))
            reply = connection.api(commands.uuid_record(call_uuid, "start", self.store.switch_raw_path(rec)))
            if reply.strip().startswith("-ERR"):
                raise RuntimeError(reply.strip())
        except Exception as exc:  # noqa: BLE001 - the call goes on without a recording
            if "Cannot locate session" in str(exc) or "No such channel" in str(exc):
                # The call ended before the switch got the request: nothing to record, nothing broken.
                self._abandon(rec, "call ended before the recording started / 录音开始前通话已结束", alert=False)
            else:
                self._abandon(rec, f"switch refused to record / 交换机未能开始录音: {exc}")
            return None
        finally:
            self.starting.discard(rec.id)
        return rec

    def _abandon(self, rec: Recording, reason: str, alert: bool = True) -> None:
        from core.alarms import raise_alarm

        self.pending.pop(self.store.switch_raw_path(rec), None)
        rec.status, rec.failure_reason = "failed", reason[:255]
        rec.save(only=[Recording.status, Recording.failure_reason])
        if alert:
            raise_alarm("recording_start", f"call {rec.call_uuid}: {reason}")

    def finish_path(self, switch_path: str) -> Recording | None:
        """Index the recording the switch wrote to ``switch_path`` (after its RecordStopped)."""
        rec_id = self.pending.pop(switch_path, None)
        rec = Recording.get_or_none(Recording.id == rec_id) if rec_id else None
        if rec is None or rec.status != "recording":
            return None
        return self._finish(rec)

    def _finish(self, rec: Recording) -> Recording | None:
        """store.finish once at a time per recording; None when another greenlet is finishing it."""
        if rec.id in self.finishing:
            return None
        self.finishing.add(rec.id)
        try:
            return self.store.finish(rec)
        finally:
            self.finishing.discard(rec.id)

    def finish_call(self, call_uuid: str) -> list[Recording]:
        """Index every recording of a call still open (the call hung up; record_session has stopped)."""
        self.recorded_calls.discard(call_uuid)
        done = []
        for rec in list(Recording.select().where((Recording.call_uuid == call_uuid)
                                                 & (Recording.status == "recording"))):
            if rec.id in self.starting or rec.id in self.finishing or rec.id in self.store.indexing:
                continue  # its start is still in flight, or another greenlet is finishing it: that one settles it
            if done and not Recording.select().where((Recording.id == rec.id)
                                                     & (Recording.status == "recording")).exists():
                continue  # finished meanwhile, while this loop waited for the one before
            self.pending.pop(self.store.switch_raw_path(rec), None)
            finished = self._finish(rec)
            if finished is not None:
                done.append(finished)
        return done

    def on_switch_event(self, event) -> None:
        """Subscribe to the switch: RecordStopped finishes that file; a final hang-up finishes the rest."""
        name = type(event).__name__
        try:
            if name == "RecordStopped":
                path = getattr(event, "path", "")
                if self.finish_path(path) is None and path in self.pending:
                    log.warning("recording %s stopped but could not be indexed", path)
            elif name == "ChannelHangup" and getattr(event, "complete", False):
                if getattr(event, "uuid", "") in self.recorded_calls:
                    self.finish_call(event.uuid)
        except Exception:  # noqa: BLE001 - never let indexing stop the event consumer
            log.exception("recording update from %s failed", name)

    def index_message(self, call_uuid: str, path: str | Path, kind: str = "ivr_message") -> Recording:
        """Store and index a message the IVR recorded itself (complaint recording, voicemail)."""
        return self.store.index_file(call_uuid, Path(path), kind)
