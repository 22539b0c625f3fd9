"""Closing what a lost hang-up event left open: call records, recordings and campaign attempts whose channel
no switch has any more (the switch restarted, the event socket dropped events, the app was killed).

Run at every reconciliation with a switch (``Acd.reconcilers``: on connect, after each reconnect, and
periodically) with the channel uuids that switch lists now. Pure part: ``gone_uuids`` says which of the
open calls are gone. I/O part: ``Sweeper``:

- a call record this process follows whose channel is gone is closed as cut off (``CdrRecorder.cut_off``:
  end = the last moment anything was heard of it, side unknown, finalised and signed, draft dropped; an
  unserved caller lands on the missed-call list as "cut_off");
- a call whose hang-up was heard is left to its IVR while it waits for the IVR's last word (``IVR_WORD_LIMIT``
  after the hang-up: its greenlet writes the record and files its message); past that, and for a record whose
  writing failed, the sweep writes it as it ended ("records_written_late": no lost hang-up, no alarm);
- an unfinalised record an earlier run of the app left (killed, or stopped without closing it) is adopted
  when its channel is still up (its hang-up finalises it as usual) and closed as cut off when it is gone;
- a recording still "recording" whose channel is gone is indexed with whatever audio reached the disk, or
  marked failed (nothing, or a bare header) with an error in the log and a recorder alert; so is a message
  the IVR was recording itself when its call was cut off (``unfiled_recordings``: the IVR's files of the
  call it never took into the store; a real FreeSWITCH killed mid-`record` leaves a bare header);
- what the floors above placed themselves (campaign attempts) is closed by their own callable, handed in by
  the composition root (``lost_calls``: ``ivr.sweep.fail_lost_attempts``), as is what they know of a call an
  earlier run left open (``call_history``: ``ivr.sweep.call_history``, the IVR's trace). The recorder sits
  below the IVR and does not know it (docs/architecture.md).

Whenever a sweep closed anything, the ``calls_cut_off`` alarm (one per switch, counted) says so through
``core.alarms``: lost hang-ups mean a switch restarted, an event socket dropped events or the app died, and a
person should look even though every caller is already on the call-back list.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Callable, Iterable

from peewee import JOIN

from core.alarms import raise_alarm
from recorder.cdr import CdrRecorder
from recorder.drafts import CallDraft, _utc
from recorder.integrity import SealTurnTimeout
from recorder.models import CallRecord, Recording

log = logging.getLogger(__name__)

# `show channels` lists a channel a moment after it was created (FreeSWITCH writes its core database in
# batches); a call younger than this is left alone until the next reconciliation.
GRACE_SECONDS = 3.0
# A hung-up IVR call waits for the IVR's last word (its trace, else ivr_ended from its greenlet's finally), which
# writes the record. After a recording that word takes sox, db_lock and CreateTicket with its database retries
# (ivr.runner.DATABASE_RETRY_PAUSES, 7 s): seconds under load, while the IVR files its message. The sweep leaves
# such a call to its IVR this long after the hang-up; past it the IVR's greenlet is taken for dead or stuck and
# the sweep writes the record without its word (the missed-call decision made all the same).
IVR_WORD_LIMIT = 60.0


def gone_uuids(open_calls: Iterable[tuple[str, dt.datetime | None]], channels: set[str], now: dt.datetime,
               grace: float = GRACE_SECONDS) -> list[str]:
    """Of ``(uuid, started_at)`` pairs, those no switch lists any more and older than ``grace`` seconds."""
    return [uuid for uuid, started in open_calls
            if uuid not in channels and (started is None or (now - started).total_seconds() >= grace)]


def waiting_for_ivr(draft: CallDraft, now: dt.datetime, limit: float = IVR_WORD_LIMIT) -> bool:
    """Whether a call hung up less than ``limit`` seconds ago and its IVR has not yet said its last word: the
    IVR's greenlet finalises it (and files its message), not the sweep."""
    return draft.awaiting_ivr and draft.ended_at is not None and (now - draft.ended_at).total_seconds() < limit


def _nothing_known(call_uuid: str) -> tuple[list[dict], bool, dt.datetime | None]:
    return [], False, None


class Sweeper:
    """An ``Acd.reconcilers`` callable: ``sweeper(server, channels) -> report``."""

    def __init__(self, cdr: CdrRecorder, recordings=None, servers: Callable[[], list[str]] | None = None,
                 grace: float = GRACE_SECONDS,
                 call_history: Callable[[str], tuple[list[dict], bool, dt.datetime | None]] | None = None,
                 lost_calls: Callable[[set[str], dt.datetime], int] | None = None,
                 unfiled_recordings: Callable[[str], list] | None = None):
        self.cdr = cdr
        self.recordings = recordings  # recorder.recording.RecordingService
        self.servers = servers or (lambda: [])  # the names of every configured switch
        self.grace = grace
        # What the floors above know of a call an earlier run left open: (IVR path, served, last moment).
        self.call_history = call_history or _nothing_known
        # Closes what the floors above placed whose channel no switch lists; returns how many (attempts).
        self.lost_calls = lost_calls
        # The files the IVR recorded itself for a call and never filed (its `record` cut off with the call).
        self.unfiled_recordings = unfiled_recordings or (lambda call_uuid: [])
        self.channels_by_server: dict[str, set[str]] = {}
        # When each switch last listed its channels: another switch's list is as old as its last
        # reconciliation (up to the 30 s period), and says nothing of a channel born after it.
        self.listed_at: dict[str, dt.datetime] = {}
        self.closing: set[str] = set()  # calls a sweep is closing now

    def _now(self) -> dt.datetime:
        return self.cdr._now()

    def _everywhere(self) -> set[str]:
        """Every channel any switch listed at its last reconciliation."""
        return set().union(*self.channels_by_server.values()) if self.channels_by_server else set()

    def _ours(self, record_server: str, server: str) -> bool:
        """Whether a call on ``record_server`` is this reconciliation's to judge (an unknown server's calls
        are judged against the channels of every switch)."""
        return record_server == server or record_server not in self.servers()

    def _listed_since(self, call_server: str, started: dt.datetime | None) -> bool:
        """Whether the switch a channel is on (every switch that listed, when it is not one of them) listed
        its channels ``grace`` seconds or more after the channel began: only then does its absence mean gone."""
        judges = [call_server] if call_server in self.listed_at else list(self.listed_at)
        return started is None or all((self.listed_at[s] - started).total_seconds() >= self.grace for s in judges)

    def _gone_everywhere(self, open_calls: Iterable[tuple[str, str, dt.datetime | None]], anywhere: set[str]
                         ) -> list[str]:
        """Of ``(uuid, server, started_at)``, those no switch lists, each judged by a listing newer than it.
        (Was: by every switch's last listing at this switch's reconciliation, so a conversation on another
        switch begun since that one's last listing was taken for gone and its recording, not yet written,
        marked failed "file missing": 68 of 798 calls in bench/simulation.py with two switches.)"""
        return [uuid for uuid, server, started in open_calls
                if uuid not in anywhere and self._listed_since(server, started)]

    def __call__(self, server: str, channels: set[str]) -> dict:
        now = self._now()
        self.channels_by_server[server] = set(channels)
        self.listed_at[server] = now
        anywhere = self._everywhere()
        report = {"records_cut_off": 0, "records_written_late": 0, "records_adopted": 0, "recordings_closed": 0,
                  "recordings_failed": 0, "attempts_failed": 0}
        # Records this process follows (a hung-up IVR call is its IVR's until IVR_WORD_LIMIT).
        drafts = [d for d in list(self.cdr.drafts.values()) if not waiting_for_ivr(d, now)]
        mine = [(d.call_uuid, d.started_at) for d in drafts if d.server == server]
        unknown = [(d.call_uuid, d.server, d.started_at) for d in drafts
                   if d.server != server and self._ours(d.server, server)]
        for uuid in gone_uuids(mine, channels, now, self.grace) + self._gone_everywhere(unknown, anywhere):
            # A hang-up that was heard (its IVR's word never came, or its writing failed) is written late, not
            # lost: no "lost hang-ups" alarm for it.
            heard = uuid in self.cdr.drafts and self.cdr.drafts[uuid].ended_at is not None
            if self._close(uuid):
                report["records_written_late" if heard else "records_cut_off"] += 1
        # Records an earlier run left open.
        cutoff = now - dt.timedelta(seconds=self.grace)
        for record in (CallRecord.select().where((CallRecord.finalised == False)  # noqa: E712
                                                 & (CallRecord.started_at <= cutoff)).order_by(CallRecord.id)):
            if record.call_uuid in self.cdr.drafts or not self._ours(record.server, server):
                continue
            if record.call_uuid in self.closing or CallRecord.select().where(
                    (CallRecord.id == record.id) & CallRecord.finalised).exists():
                continue  # an overlapping reconciliation closed it since this one listed it
            path, served, last = self.call_history(record.call_uuid)
            self.cdr.adopt(record, ivr_path=path, served=served)
            if record.call_uuid in (channels if record.server == server else anywhere):
                report["records_adopted"] += 1
                log.info("call %s from an earlier run is still up on %s: adopted", record.call_uuid, server)
                continue
            # It ends at the IVR's last word when there is one, else now: nothing later is known of it.
            if self._close(record.call_uuid, at=last or now):
                report["records_cut_off"] += 1
        self._sweep_recordings(server, anywhere, report)
        self._sweep_attempts(anywhere, now, report)
        if any(report.values()):
            log.warning("swept with %s: %s", server, report)
        closed = {name: count for name, count in report.items()
                  if count and name not in ("records_adopted", "records_written_late")}
        if closed:
            raise_alarm("calls_cut_off", f"{server}: 挂机事件丢失，已按中断关闭 / lost hang-ups closed: "
                                         + ", ".join(f"{name} {count}" for name, count in closed.items()),
                        subject=server[:64])
        return report

    def _close(self, uuid: str, at: dt.datetime | None = None) -> bool:
        # Two reconciliations may overlap (on connect and periodic, one per switch; the database yields to
        # the hub): one closes a call, the other leaves it, or its IVR files would be filed twice.
        if uuid in self.closing:
            return False
        self.closing.add(uuid)
        try:
            # The call's recordings first, so the record links what reached the disk.
            if self.recordings is not None:
                self._finish_recordings(uuid)
            record = self.cdr.cut_off(uuid, at=at)
        except SealTurnTimeout:
            # The turn is stuck (its alarm raised): the record stays open for the next sweep.
            log.warning("call %s not closed: no seal turn (the next sweep tries again)", uuid)
            return False
        finally:
            self.closing.discard(uuid)
        if record is None:
            return False
        log.warning("call %s from %s cut off (no switch has its channel): record closed as %s", uuid,
                    record.caller or "?", record.disposition)
        return True

    def _finish_recordings(self, uuid: str) -> list[Recording]:
        draft = self.cdr.drafts.get(uuid)
        if draft is not None and waiting_for_ivr(draft, self._now()):
            return []  # its IVR is filing them now
        done = self.recordings.finish_call(uuid)
        # Once per call (the record is closed right after), and only for a call whose hang-up was lost: one that
        # was heard had its IVR told, which files its own message (still at it, or its file left for a person).
        if draft is not None and draft.ended_at is None:
            done += [self.recordings.index_message(uuid, path, kind="ivr") for path in self.unfiled_recordings(uuid)]
        for rec in done:
            if rec.status == "failed":
                self._recording_failed(rec)
        return done

    @staticmethod
    def _recording_failed(rec: Recording) -> None:
        from core.alarms import raise_alarm

        log.error("recording %s of call %s (cut off) holds no audio: marked failed (%s)", rec.id, rec.call_uuid,
                  rec.failure_reason)
        raise_alarm("recording_cut_off", f"call {rec.call_uuid}: recording cut off with no audio / "
                                         f"通话中断，录音无内容: {rec.failure_reason}")

    def _sweep_recordings(self, server: str, anywhere: set[str], report: dict) -> None:
        if self.recordings is None:
            return
        # The switch each recording's call is on: its call record's (written when the call began).
        rows = list(Recording.select(Recording.id, Recording.call_uuid, Recording.started_at,
                                     CallRecord.server.alias("call_server"))
                    .join(CallRecord, JOIN.LEFT_OUTER, on=(CallRecord.call_uuid == Recording.call_uuid))
                    .where(Recording.status == "recording").objects())
        for uuid in sorted(set(self._gone_everywhere([(r.call_uuid, r.call_server or "", _utc(r.started_at))
                                                      for r in rows if r.id not in self.recordings.starting],
                                                     anywhere))):
            for rec in self._finish_recordings(uuid):
                report["recordings_failed" if rec.status == "failed" else "recordings_closed"] += 1

    def _sweep_attempts(self, anywhere: set[str], now: dt.datetime, report: dict) -> None:
        if self.lost_calls is None:
            return
        if len(self.channels_by_server) < max(1, len(self.servers())):
            return  # not every switch has told its channels yet: an attempt may be on another one
        report["attempts_failed"] += self.lost_calls(anywhere, now)
