"""Recording storage: recordings/YYYY-MM-DD/<call uuid>.wav (one folder per local day), A-law WAV,
indexed (duration, size, sha256) once the recording stops; storage per day; optional retention.

Flow for one recording:
1. ``store.begin(call_uuid, ...)`` checks the day folder can be written and its disk has at least
   HOTLINE_RECORDING_MIN_FREE_MB free, and creates the Recording row (status "recording"). When it cannot,
   the row is "failed" with the reason (a full disk named as such), an alarm is raised, tickets of the call
   get a note, and the caller of ``begin`` simply does not record: the call goes on.
2. The switch records 16-bit PCM to ``store.switch_raw_path(rec)`` (see recorder.wavfile for why).
3. ``store.finish(rec)`` converts to A-law at the final path, removes the raw file, fills duration, size and
   sha256 and sets status "ok" (or "failed" with the reason: empty, missing, not WAV; the raw file is kept).
   A disk that fills up never cuts a recording silently: a conversion that finds no room keeps the audio
   as recorded (16-bit PCM, noted on the row), a recording much shorter than its call while the disk is
   full is noted as cut short, and both raise the recording_storage alarm.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import shutil
import time
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

import gevent.lock
import peewee

from core import diskspace
from core.alarms import CRITICAL, raise_alarm
from recorder import wavfile
from recorder.models import CallRecord, Recording, utcnow

log = logging.getLogger(__name__)

WRITABLE_CHECK_SECONDS = 30.0
DEFAULT_MIN_FREE_MB = 64
# A recording this much shorter than its call, on a disk below the minimum, was cut short by the disk.
CUT_SHORT_SECONDS = 10.0
_UUID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class RecordingPathError(OSError):
    """The recording folder cannot be created or written."""


class RecordingDiskFull(RecordingPathError):
    """The recording folder's disk has less free space than the configured minimum."""


def check_call_uuid(call_uuid: str) -> str:
    """A channel UUID safe to use as a file name (no separators, no dots); raises ValueError otherwise."""
    if not isinstance(call_uuid, str) or not _UUID_RE.match(call_uuid):
        raise ValueError(f"not a usable call UUID for a file name / 通话标识无效: {call_uuid!r}")
    return call_uuid


def local_day(when: dt.datetime, tz: str = "Asia/Shanghai") -> dt.date:
    """The day in the configured zone of a moment (naive values are taken as UTC, the storage convention)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(ZoneInfo(tz)).date()


def recording_path(call_uuid: str, when: dt.datetime, root: Path | str = "recordings",
                   tz: str = "Asia/Shanghai", suffix: str = "") -> Path:
    """root/YYYY-MM-DD/<call uuid><suffix>.wav, the day taken in the configured zone."""
    check_call_uuid(call_uuid)
    if suffix and not re.match(r"^-[A-Za-z0-9_]{1,16}$", suffix):
        raise ValueError(f"bad recording suffix {suffix!r}")
    return Path(root) / local_day(when, tz).isoformat() / f"{call_uuid}{suffix}.wav"


def raw_name(final: PurePosixPath | Path) -> str:
    """File name the switch writes 16-bit PCM to, next to the final A-law file."""
    return final.name[: -len(".wav")] + ".pcm.wav"


@dataclass(frozen=True)
class RecordingOptions:
    """How calls are recorded: both parties on one channel each (stereo) or mixed, and the sample rate."""

    stereo: bool = False
    sample_rate: int = 8000
    retention_days: int = 0  # 0 = keep forever (the plan's default: download for the archive instead)
    min_free_mb: int = DEFAULT_MIN_FREE_MB  # no recording starts on a disk with less free space

    @classmethod
    def from_config(cls, config) -> "RecordingOptions":
        extra = getattr(config, "extra", {}) or {}
        stereo = str(extra.get("HOTLINE_RECORD_STEREO", "false")).lower() in ("1", "true", "yes", "on")
        try:
            retention = int(extra.get("HOTLINE_RECORDING_RETENTION_DAYS", "0") or 0)
        except ValueError:
            raise ValueError("HOTLINE_RECORDING_RETENTION_DAYS must be a whole number of days") from None
        raw_free = str(extra.get("HOTLINE_RECORDING_MIN_FREE_MB", DEFAULT_MIN_FREE_MB)).strip()
        if not raw_free.isascii() or not raw_free.isdigit():
            raise ValueError(f"HOTLINE_RECORDING_MIN_FREE_MB must be a whole number of MB, got {raw_free!r}")
        return cls(stereo=stereo, retention_days=max(retention, 0), min_free_mb=int(raw_free))

    def channel_variables(self) -> dict[str, str]:
        """Channel variables to set before record_session / uuid_record."""
        return {"RECORD_STEREO": "true" if self.stereo else "false",
                "record_sample_rate": str(self.sample_rate)}


class RecordingStore:
    """Files and index rows of recordings under ``recordings_dir``."""

    def __init__(self, recordings_dir: Path, tz: str = "Asia/Shanghai", switch_dir: str = "",
                 options: RecordingOptions | None = None, archive_dir: Path | None = None, clock=None):
        self.root = Path(recordings_dir)
        self.tz = tz
        self.switch_dir = switch_dir or str(self.root)
        self.options = options or RecordingOptions()
        self.archive_dir = Path(archive_dir) if archive_dir else self.root.parent / "recordings-archive"
        self.clock = clock
        self._checked: dict[Path, float] = {}
        # index_file one at a time per call and kind in this process, so that its take-over of an earlier try's
        # row never takes one another greenlet is still beginning or finishing (sox yields to the hub): two
        # conversions into one row or one temporary file failed a recording or stored the wrong file. Each
        # turn: its semaphore and how many index_files hold or wait for it (dropped at none).
        self._index_turns: dict[tuple[str, str], list] = {}
        self.indexing: set[int] = set()  # rows index_file is finishing now: RecordingService.finish_call skips them

    @classmethod
    def from_config(cls, config, clock=None) -> "RecordingStore":
        extra = getattr(config, "extra", {}) or {}
        archive = extra.get("HOTLINE_RECORDING_ARCHIVE_DIR")
        return cls(config.recordings_dir, tz=config.tz, switch_dir=config.switch_recordings_dir,
                   options=RecordingOptions.from_config(config), archive_dir=Path(archive) if archive else None,
                   clock=clock)

    # -- paths -------------------------------------------------------------------------------------------
    def _now(self) -> dt.datetime:
        return self.clock.now() if self.clock else dt.datetime.now(dt.timezone.utc)

    def local_path(self, rec: Recording) -> Path:
        """Absolute path of the final file."""
        return self.root / rec.path

    def raw_path(self, rec: Recording) -> Path:
        """Absolute local path of the 16-bit PCM file the switch writes."""
        return self.local_path(rec).with_name(raw_name(PurePosixPath(rec.path)))

    def switch_raw_path(self, rec: Recording) -> str:
        """The raw path as FreeSWITCH sees it (switch_recordings_dir when the switch mounts it elsewhere)."""
        rel = PurePosixPath(rec.path)
        return str(PurePosixPath(self.switch_dir) / rel.parent / raw_name(rel))

    def _writable_day_folder(self, folder: Path) -> None:
        # Free space first, at every recording (one statvfs): an empty probe file succeeds on a full disk.
        try:
            diskspace.ensure_free(folder, self.options.min_free_mb * diskspace.MB, "recordings")
        except diskspace.DiskFull as exc:
            raise RecordingDiskFull(str(exc)) from None
        except OSError:
            pass  # the folder's disk cannot be measured: the probe below says whether it can be written
        # A probe file per recording would cost two file operations on the call path: a folder that
        # passed the check is trusted for a short while (a failure later shows as a missing file).
        checked = self._checked.get(folder)
        now = time.monotonic()
        if checked is not None and now - checked < WRITABLE_CHECK_SECONDS:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".probe-{uuidlib.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            self._checked.pop(folder, None)
            if diskspace.is_disk_full(exc):
                raise RecordingDiskFull(f"磁盘已满 / disk full: cannot write recordings to {folder}") from exc
            raise RecordingPathError(f"cannot write recordings to {folder}: {exc.strerror or exc}") from exc
        self._checked[folder] = now

    def ready_folder(self, folder: Path, call_uuid: str = "") -> Path:
        """Check ``folder`` (created when missing) can take a recording now: writable, enough free space.
        Raises RecordingPathError (RecordingDiskFull for a full disk) after raising the alarm."""
        try:
            self._writable_day_folder(Path(folder))
        except RecordingPathError as exc:
            self._storage_alarm(call_uuid, exc)
            raise
        return Path(folder)

    @staticmethod
    def _storage_alarm(call_uuid: str, exc: BaseException, severity: str = CRITICAL) -> None:
        log.error("recording of call %s: %s", call_uuid or "-", exc)
        raise_alarm("recording_storage", f"call {call_uuid or '-'}: {exc}", subject="recordings", severity=severity)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def begin(self, call_uuid: str, kind: str = "conversation", when: dt.datetime | None = None) -> Recording:
        """Reserve the file and the index row of a new recording of ``call_uuid``.

        Returns the Recording: status "recording" when the switch may record to ``switch_raw_path``,
        "failed" when storage cannot be written (alert raised, linked tickets noted; the call goes on).
        """
        check_call_uuid(call_uuid)
        when = when or self._now()
        call = CallRecord.get_or_none(CallRecord.call_uuid == call_uuid)
        existing = Recording.select().where(Recording.call_uuid == call_uuid).count()
        suffix = "" if existing == 0 else f"-{existing + 1}"
        absolute = recording_path(call_uuid, when, self.root, self.tz, suffix)
        relative = absolute.relative_to(self.root).as_posix()
        row = Recording(call=call, call_uuid=call_uuid, kind=kind, path=relative, day=local_day(when, self.tz),
                        started_at=_naive_utc(when), channels=2 if self.options.stereo else 1,
                        caller=call.caller if call else "", agent_no=call.agent_no if call else "")
        try:
            self._writable_day_folder(absolute.parent)
        except RecordingPathError as exc:
            full = isinstance(exc, RecordingDiskFull)
            row.status = "failed"
            row.failure_reason = (str(exc) if full else f"storage not writable / 录音目录不可写: {exc}")[:255]
            row.save()
            self._storage_alarm(call_uuid, exc)
            note_recording_tickets(row)
            return row
        row.status = "recording"
        row.save()
        return row

    def finish(self, rec: Recording, raw: Path | None = None) -> Recording:
        """Convert and index a stopped recording; a bad file marks it failed with the reason, never raises.

        ``raw`` is where the audio was written when it is not ``raw_path(rec)`` (e.g. the IVR runner's own
        path); that file is kept when anything goes wrong, so nothing is lost.
        """
        source = Path(raw) if raw else self.raw_path(rec)
        final = self.local_path(rec)
        if not source.exists() and final.exists():
            source = final  # recorded straight to the final name
        note = ""
        try:
            info = wavfile.read_wav_info(source)
            if info.data_bytes == 0:
                raise wavfile.BadRecording("recording has no audio (0 s) / 录音时长为 0")
            wavfile.repair_sizes(source)  # a switch killed mid-recording left the header's sizes at 0
            if info.format_tag != wavfile.FORMAT_ALAW:
                try:
                    wavfile.convert_to_alaw(source, final)
                except (wavfile.ConversionError, OSError) as exc:
                    if not (diskspace.is_disk_full(exc) or self._disk_full_at(final.parent)):
                        raise
                    # No room for the A-law copy: keep the audio as recorded rather than lose it.
                    note = "磁盘已满，按原格式保存 / disk full: kept as recorded, not converted to A-law"
                    self._storage_alarm(rec.call_uuid, f"recording {rec.id} {note}")
                    if source.resolve() != final.resolve():
                        os.replace(source, final)
                if source.resolve() != final.resolve():
                    source.unlink(missing_ok=True)
            elif source.resolve() != final.resolve():
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, final)
            info = wavfile.read_wav_info(final)
        except (wavfile.BadRecording, wavfile.ConversionError, OSError) as exc:
            full = self._disk_full_at(source.parent) or diskspace.is_disk_full(exc)
            reason = f"{exc} (磁盘已满 / disk full)" if full and not diskspace.is_disk_full(exc) else str(exc)
            rec.status, rec.failure_reason = "failed", reason[:255]
            # Only the fields this step owns: the call record may have filled caller/agent meanwhile.
            rec.save(only=[Recording.status, Recording.failure_reason])
            log.warning("recording %s of call %s failed: %s", rec.id, rec.call_uuid, reason)
            if full:
                self._storage_alarm(rec.call_uuid, f"recording {rec.id} lost: {reason}")
            elif not source.exists():
                # The switch wrote nothing where it was told: storage trouble an operator must see.
                self._storage_alarm(rec.call_uuid, exc, severity="warning")
            note_recording_tickets(rec)
            return rec
        note = note or self._cut_short(rec, info.duration_ms, final.parent)
        rec.duration_ms = info.duration_ms
        rec.channels = info.channels
        rec.format = info.format_name
        rec.size = final.stat().st_size
        rec.sha256 = wavfile.sha256_file(final)
        rec.status, rec.failure_reason = "ok", note[:255]
        rec.save(only=[Recording.duration_ms, Recording.channels, Recording.format, Recording.size, Recording.sha256,
                       Recording.status, Recording.failure_reason])
        return rec

    def _disk_full_at(self, folder: Path) -> bool:
        try:
            return diskspace.free_bytes(folder) < self.options.min_free_mb * diskspace.MB
        except OSError:
            return False

    def _cut_short(self, rec: Recording, audio_ms: int, folder: Path) -> str:
        """A note (and the alarm) when the audio is much shorter than the time it was recording while the
        disk is below its minimum: the switch stopped writing when the disk filled up."""
        if rec.started_at is None:
            return ""
        started = rec.started_at if isinstance(rec.started_at, dt.datetime) else dt.datetime.fromisoformat(
            str(rec.started_at))
        elapsed = (_naive_utc(self._now()) - _naive_utc(started)).total_seconds()
        if elapsed - audio_ms / 1000 < CUT_SHORT_SECONDS or not self._disk_full_at(folder):
            return ""
        note = (f"磁盘已满，录音不完整 / cut short by a full disk: {audio_ms // 1000} s of about "
                f"{int(elapsed)} s recorded")
        self._storage_alarm(rec.call_uuid, f"recording {rec.id}: {note}")
        return note

    def index_file(self, call_uuid: str, source: Path, kind: str, when: dt.datetime | None = None) -> Recording:
        """Take a file recorded elsewhere (the IVR runner's message) into the store and index it.

        Safe to call again after a lost database connection: when ``source`` is gone because an earlier call
        moved it into the store and then lost the connection before its row said so (still "recording"),
        that row is finished from the stored file. Otherwise the caller's retry, looking for the file where it
        was, marked a new row "recording file missing" and the complaint was lost with it. One at a time per call
        and kind in this process (``_index_turns``): the take-over never takes a row another greenlet is still
        indexing (its file not yet in the store either)."""
        source = Path(source)
        with self._index_turn(call_uuid, kind):
            interrupted = self._interrupted_index(call_uuid, kind, stored=not source.exists())
            if interrupted is not None:
                log.info("recording %s of call %s: indexing an earlier try left unfinished", interrupted.id,
                         call_uuid)
                return self._finish_indexing(interrupted, source if source.exists() else None)
            rec = self.begin(call_uuid, kind=kind, when=when)
            if rec.status == "failed":
                return rec
            return self._finish_indexing(rec, source)

    @contextlib.contextmanager
    def _index_turn(self, call_uuid: str, kind: str):
        key = (call_uuid, kind)
        turn = self._index_turns.get(key)
        if turn is None:
            turn = self._index_turns[key] = [gevent.lock.BoundedSemaphore(1), 0]
        turn[1] += 1
        try:
            with turn[0]:
                yield
        finally:
            turn[1] -= 1
            if not turn[1]:
                del self._index_turns[key]

    def _finish_indexing(self, rec: Recording, raw: Path | None) -> Recording:
        self.indexing.add(rec.id)
        try:
            return self.finish(rec, raw=raw)
        finally:
            self.indexing.discard(rec.id)

    def _interrupted_index(self, call_uuid: str, kind: str, stored: bool) -> Recording | None:
        """The call's newest ``kind`` row an index_file left "recording": with its file already in the store
        (``stored``: it stopped between moving the file and finishing the row), or without (the file still where
        it was: the row's INSERT was written but its reply lost with the connection, so the try that wrote it
        never knew; a retry that began another row left this one "recording" for ever). Rows of files taken
        from elsewhere are never recorded to by the switch, so one still "recording" is an unfinished
        index_file."""
        rows = (Recording.select().where((Recording.call_uuid == call_uuid) & (Recording.kind == kind)
                                         & (Recording.status == "recording"))
                .order_by(Recording.id.desc()))
        return next((rec for rec in rows if self.local_path(rec).exists() == stored), None)

    # -- reporting and retention ---------------------------------------------------------------------------
    def storage_per_day(self, start: dt.date | None = None, end: dt.date | None = None) -> list[tuple]:
        """[(day, recordings, bytes)] of indexed recordings (archived excluded), oldest first."""
        query = (Recording.select(Recording.day, peewee.fn.COUNT(Recording.id).alias("n"),
                                  peewee.fn.COALESCE(peewee.fn.SUM(Recording.size), 0).alias("bytes"))
                 .where((Recording.status == "ok") & (Recording.archived == False)))  # noqa: E712
        if start:
            query = query.where(Recording.day >= start)
        if end:
            query = query.where(Recording.day <= end)
        rows = query.group_by(Recording.day).order_by(Recording.day).tuples()
        return [(_as_date(day), int(n), int(total)) for day, n, total in rows]

    def archive_old(self, older_than_days: int | None = None, now: dt.datetime | None = None,
                    limit: int = 1000) -> list[Recording]:
        """Move recordings older than the retention age to the archive folder; skip any an open ticket needs.

        Off unless a positive age is configured or passed. Returns the recordings archived.
        """
        days = self.options.retention_days if older_than_days is None else older_than_days
        if not days or days <= 0:
            return []
        cutoff = local_day(now or self._now(), self.tz) - dt.timedelta(days=days)
        candidates = (Recording.select().where((Recording.status == "ok") & (Recording.archived == False)  # noqa: E712
                                               & (Recording.day < cutoff)).order_by(Recording.day).limit(limit))
        done = []
        for rec in candidates:
            if recording_needed_by_open_ticket(rec):
                continue
            source = self.local_path(rec)
            target = self.archive_dir / rec.path
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(source), str(target))
            except OSError as exc:
                raise_alarm("recording_archive", f"cannot archive {rec.path}: {exc}")
                continue
            rec.archived, rec.archived_at, rec.archive_path = True, utcnow(), str(target)
            rec.save()
            done.append(rec)
        return done

    def open_file(self, rec: Recording):
        """Open the recording for reading, wherever it is now (archive included)."""
        path = Path(rec.archive_path) if rec.archived and rec.archive_path else self.local_path(rec)
        return open(path, "rb")

    def file_size(self, rec: Recording) -> int:
        path = Path(rec.archive_path) if rec.archived and rec.archive_path else self.local_path(rec)
        return path.stat().st_size


def _naive_utc(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return when


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def tickets_of_recording(rec: Recording):
    """Tickets linked (caseflow TicketCall) to the recording's call."""
    from caseflow.models import Ticket, TicketCall

    return list(Ticket.select().join(TicketCall).where(TicketCall.call_uuid == rec.call_uuid).distinct())


def recording_for_attachment(path: str) -> Recording | None:
    """The indexed recording a ticket attachment names ('recordings/<day>/<file>'), so a ticket page can
    play it through /recordings/<id>/audio (access rules and the listen log) instead of serving the file."""
    if not path.startswith("recordings/"):
        return None
    return Recording.get_or_none(Recording.path == path[len("recordings/"):])


def recordings_of_ticket(ticket) -> list[Recording]:
    """Recordings of every call linked to ``ticket``, oldest first."""
    from caseflow.models import TicketCall

    uuids = TicketCall.select(TicketCall.call_uuid).where(TicketCall.ticket == ticket)
    return list(Recording.select().where(Recording.call_uuid.in_(uuids)).order_by(Recording.started_at, Recording.id))


def recording_needed_by_open_ticket(rec: Recording) -> bool:
    """True when a linked ticket is not closed yet (retention must keep such a recording in place)."""
    from caseflow.workflow import FINAL_STATUSES

    return any(t.status not in FINAL_STATUSES for t in tickets_of_recording(rec))


def note_recording_tickets(rec: Recording) -> None:
    """Tell every ticket linked to the recording's call that the recording failed (once per ticket)."""
    from caseflow.models import TicketCall
    from recorder.tickets import note_recording_failure

    for link in TicketCall.select().where(TicketCall.call_uuid == rec.call_uuid):
        note_recording_failure(link.ticket, rec)
