"""Fax (P5 §3.5) with mod_spandsp: inbound (IVR option or fax-tone detection -> ``fax_receive``), converted
to PDF and attached to a new ticket; outbound of a reply or material (PDF -> G3 TIFF, originate with txfax)
with retries; every step in the fax log (FaxEvent); a watchdog so no job stays active past its deadline.

Files live under Config.fax_dir: in/YYYY-MM-DD/<uuid>.tif|.pdf and out/YYYY-MM-DD/<job>.tif.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# A refused request is the case engine's FaxError (caseflow.faxout catches it a floor below); raised here.
from caseflow.faxout import FaxError
from core import diskspace
from core.alarms import CRITICAL, raise_alarm
from recorder import faxfile, tickets
from recorder.dialout import DialOut, DialRefused
from recorder.missed import add_missed
from recorder.models import FAX_ACTIVE_STATES, FaxEvent, FaxJob
from recorder.storage import check_call_uuid, local_day
from switch import commands

log = logging.getLogger(__name__)

NUMBER_RE = re.compile(r"^\+?[0-9]{3,20}$")
STATE_LABELS = {
    "queued": ("排队中", "Queued"), "converting": ("转换中", "Converting"), "sending": ("发送中", "Sending"),
    "receiving": ("接收中", "Receiving"), "done": ("完成", "Done"), "failed": ("失败", "Failed"),
    "timed_out": ("超时", "Timed out"),
}


# Fax-tone (CNG) detection on the main number: freeswitch-conf's dialplan starts it on every call to the
# hotline numbers (vars.xml hotline_fax_detect=true by default), and only there: one detector per channel,
# so the app never starts one. When a fax machine calls, the channel variable fax_tone_detected becomes
# "true" (and DETECTED_TONE is sent); the IVR goes to its fax node when the prompt or menu in progress
# ends (the variable rides on that application's result), and the fax node calls fax_receive.


def fax_tone_detected(variables: dict) -> bool:
    """True when the channel variables (an ExecuteResult's) say a fax tone was heard."""
    return str(variables.get("fax_tone_detected", variables.get("variable_fax_tone_detected", ""))).lower() == "true"




@dataclass(frozen=True)
class FaxSettings:
    """Timeouts, retries and how to dial; from HOTLINE_FAX_* settings."""

    receive_timeout: float = 900.0   # one inbound fax call, all pages
    send_timeout: float = 900.0      # one outbound attempt, from originate to result
    convert_timeout: float = 180.0
    max_attempts: int = 3
    retry_after: float = 300.0       # seconds, times the attempt number
    dial_template: str = "sofia/gateway/pstn/{number}"
    station_id: str = "12345"
    header: str = "12345 Hotline"
    switch_fax_dir: str = ""         # fax_dir as FreeSWITCH sees it, when it mounts it elsewhere
    max_sending: int = 2             # the plan's two fax channels

    @classmethod
    def from_config(cls, config) -> "FaxSettings":
        extra = getattr(config, "extra", {}) or {}

        def number(name, default, kind=float):
            raw = extra.get(name)
            if raw in (None, ""):
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"{name} must be a number, got {raw!r}") from None
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {raw!r}")
            return value

        return cls(receive_timeout=number("HOTLINE_FAX_RECEIVE_TIMEOUT", cls.receive_timeout),
                   send_timeout=number("HOTLINE_FAX_SEND_TIMEOUT", cls.send_timeout),
                   max_attempts=number("HOTLINE_FAX_MAX_ATTEMPTS", cls.max_attempts, int),
                   retry_after=number("HOTLINE_FAX_RETRY_AFTER", cls.retry_after),
                   dial_template=extra.get("HOTLINE_FAX_DIAL", cls.dial_template),
                   station_id=extra.get("HOTLINE_FAX_STATION_ID", cls.station_id),
                   switch_fax_dir=extra.get("HOTLINE_SWITCH_FAX_DIR", ""))


def log_event(job: FaxJob, event: str, detail: str = "") -> FaxEvent:
    """Append to the fax log."""
    return FaxEvent.create(job=job, event=event, detail=detail[:2000])


def check_number(number: str) -> str:
    """A fax number safe to dial: digits with an optional +, 3 to 20 long (no dial-string injection)."""
    cleaned = re.sub(r"[\s\-()]", "", str(number or ""))
    if not NUMBER_RE.match(cleaned):
        raise FaxError(f"传真号码格式不正确 / not a fax number: {str(number)[:40]!r}")
    return cleaned


class FaxService:
    """Receives and sends faxes; ``watchdog`` and ``dispatch_due`` run from the scheduler."""

    def __init__(self, fax_dir: Path, attachments_dir: Path, settings: FaxSettings | None = None, tz="Asia/Shanghai",
                 clock=None, cdr=None):
        self.root = Path(fax_dir)
        self.attachments_dir = Path(attachments_dir)
        self.settings = settings or FaxSettings()
        self.tz = tz
        self.clock = clock
        self.cdr = cdr
        self.dialout = DialOut(clock=clock)  # the dial-out policy every fax number passes (recorder.dialout)
        # The calls of outbound faxes being sent (their job "sending"), read once from the database at the first
        # hang-up (jobs started before this process), then kept here: a hang-up of any other call, nearly all
        # of them, asks the database nothing (it did, 17 % of the app's time in bench/simulation.py's profile).
        self._sending_calls: set[str] | None = None

    @classmethod
    def from_config(cls, config, clock=None, cdr=None) -> "FaxService":
        service = cls(config.fax_dir, config.attachments_dir, FaxSettings.from_config(config), config.tz, clock, cdr)
        service.dialout = DialOut.from_config(config, clock=clock)
        return service

    def _now(self) -> dt.datetime:
        moment = self.clock.now() if self.clock else dt.datetime.now(dt.timezone.utc)
        return moment.astimezone(dt.timezone.utc).replace(tzinfo=None, microsecond=0)

    def _day_path(self, direction: str, name: str) -> str:
        return f"{direction}/{local_day(self._now(), self.tz).isoformat()}/{name}"

    def local(self, rel: str) -> Path:
        return self.root / rel

    def switch_path(self, rel: str) -> str:
        return str(PurePosixPath(self.settings.switch_fax_dir or str(self.root)) / rel)

    def _set_state(self, job: FaxJob, state: str, detail: str = "", deadline: float | None = None,
                   **fields) -> FaxJob:
        now = self._now()
        job.state = state
        job.updated_at = now
        job.deadline_at = now + dt.timedelta(seconds=deadline) if deadline else None
        for name, value in fields.items():
            setattr(job, name, value)
        job.save()
        log_event(job, state, detail)
        return job

    # -- inbound -----------------------------------------------------------------------------------------
    def receive(self, session) -> FaxJob:
        """Receive a fax on an answered call (the IVR's fax node, or a fax tone on the main number)."""
        call_uuid = check_call_uuid(session.uuid)
        rel = self._day_path("in", f"{call_uuid}.tif")
        self.local(rel).parent.mkdir(parents=True, exist_ok=True)
        job = FaxJob.create(direction="in", number=(session.caller or "")[:32], call_uuid=call_uuid, attempts=1,
                            max_attempts=1, tiff_path=rel, created_at=self._now(), updated_at=self._now())
        self._set_state(job, "receiving", f"from {job.number}", deadline=self.settings.receive_timeout)
        if self.cdr is not None:
            self.cdr.flag(call_uuid, "fax")
        try:
            diskspace.ensure_free(self.root, faxfile.MIN_FREE, "fax")
        except diskspace.DiskFull as exc:
            # Nowhere to put the pages: say so now rather than receive into a file that gets cut.
            return self._fail_inbound(job, str(exc))
        except OSError:
            pass  # not measurable: rxfax's own result tells
        success, pages, text = False, 0, ""
        try:
            session.set("fax_ident", self.settings.station_id)
            session.set("fax_enable_t38", "true")
            result = session.execute("rxfax", self.switch_path(rel), timeout=self.settings.receive_timeout)
            variables = getattr(result, "variables", {}) or {}
            success = _var(variables, "fax_success") == "1"
            pages = _int(_var(variables, "fax_document_transferred_pages"))
            text = _var(variables, "fax_result_text")
        except Exception as exc:  # noqa: BLE001 - hang-up or timeout mid-fax: judge by what was written
            text = f"{type(exc).__name__}: {exc}"
            log.info("fax call %s ended during rxfax: %s", call_uuid, text)
        return self.finish_inbound(job, success, pages, text)

    def finish_inbound(self, job: FaxJob, success: bool, pages: int = 0, result_text: str = "") -> FaxJob:
        """Convert what was received and file it as a new ticket; any failure leaves the TIFF and a clear
        error on the job, the sender on the missed-call list, and an alert."""
        job = FaxJob.get_by_id(job.id)
        if job.state not in ("receiving", "converting"):
            return job  # the watchdog already ended it
        job.result_text = (result_text or "")[:255]
        tiff = self.local(job.tiff_path)
        self._set_state(job, "converting", f"success={int(success)} pages={pages} {result_text}",
                        deadline=self.settings.convert_timeout)
        pdf_rel = job.tiff_path[: -len(".tif")] + ".pdf"
        try:
            counted = faxfile.tiff_to_pdf(tiff, self.local(pdf_rel), timeout=self.settings.convert_timeout)
        except faxfile.FaxFileError as exc:
            reason = str(exc) if success or tiff.exists() else f"未收到传真 / nothing received ({result_text})"
            return self._fail_inbound(job, reason)
        job.pdf_path, job.pages = pdf_rel, pages or counted
        try:
            ticket = self._file_ticket(job)
        except Exception as exc:  # noqa: BLE001 - the PDF stays; an operator files it by hand
            log.exception("fax %s: ticket not created", job.id)
            return self._fail_inbound(job, f"工单创建失败 / ticket not created: {exc}")
        note = "" if success else f"传输未完整结束 / transfer incomplete: {result_text}"
        return self._set_state(job, "done", f"ticket {ticket.number} {note}".strip(), ticket=ticket,
                               error=note)

    @staticmethod
    def _disk_full_alarm(text: str) -> None:
        log.error("fax storage: %s", text)
        raise_alarm("storage_full", text, subject="fax", severity=CRITICAL)

    def _fail_inbound(self, job: FaxJob, reason: str) -> FaxJob:
        self._set_state(job, "failed", reason, error=reason)
        raise_alarm("fax_failed", f"传真 {job.id} 来自 {job.number or '未知'}: {reason}")
        add_missed(job.number, "fax_failed", call_uuid=job.call_uuid, source="fax")
        return job

    def _file_ticket(self, job: FaxJob):
        from caseflow.attachments import StorageFull, add_attachment

        pages = job.pages
        content = (f"收到传真 {pages} 页，发送方号码 {job.number or '未知'}，请查看附件并登记内容。\n"
                   f"Fax received: {pages} page(s) from {job.number or 'unknown'}; see the attached PDF.")
        phone = ""
        try:
            from caseflow.services import clean_phone

            phone = clean_phone(job.number)
        except ValueError:
            phone = ""
        ticket = tickets.create_ticket(content, channel="fax", type="other", title="传真来件 / Incoming fax",
                                       citizen_phone=phone, call_uuid=job.call_uuid or None, note="传真 / fax")
        try:
            with open(self.local(job.pdf_path), "rb") as handle:
                add_attachment(ticket, self.attachments_dir, handle, f"fax-{job.id}.pdf", kind="fax")
        except StorageFull:
            # The ticket stands (its alarm is raised): the PDF stays in the fax folder for an operator.
            tickets.add_ticket_note(ticket, f"传真 PDF 未能附加（附件存储已满），文件保留在 fax/{job.pdf_path} / "
                                            f"fax PDF not attached (attachments disk full): kept at fax/{job.pdf_path}")
        tickets.notify_centre(f"收到传真，已登记工单 / Fax received as ticket {ticket.number}", ticket=ticket,
                              kind="info")
        return ticket

    # -- outbound ----------------------------------------------------------------------------------------
    def send(self, number: str, pdf: Path, ticket=None, max_attempts: int | None = None, *, actor=None,
             purpose: str = "fax") -> FaxJob:
        """Queue a PDF (a reply, consultation material) for sending; converted to fax TIFF now. The number
        passes the dial-out policy first, on ``actor``'s behalf (refused: FaxError with the reason)."""
        number = check_number(number)
        try:
            number = self.dialout.authorise(number, purpose, user=actor).number
        except DialRefused as exc:
            raise FaxError(str(exc)) from exc
        pdf = Path(pdf)
        try:
            faxfile.check_pdf(pdf)
        except faxfile.FaxFileError as exc:
            raise FaxError(str(exc)) from exc
        try:
            diskspace.ensure_free(self.root, faxfile.MIN_FREE, "fax")
        except diskspace.DiskFull as exc:
            self._disk_full_alarm(str(exc))
            raise FaxError(f"传真未排队 / fax not queued: {exc}") from exc
        except OSError:
            pass  # not measurable: the conversion's own result tells
        job = FaxJob.create(direction="out", number=number, ticket=ticket, created_at=self._now(),
                            updated_at=self._now(), max_attempts=max_attempts or self.settings.max_attempts,
                            purpose=purpose, actor=actor)
        job.tiff_path = self._day_path("out", f"{job.id}.tif")
        self._set_state(job, "converting", f"to {number}", deadline=self.settings.convert_timeout)
        try:
            job.pages = faxfile.pdf_to_tiff(pdf, self.local(job.tiff_path), timeout=self.settings.convert_timeout)
        except faxfile.FaxFileError as exc:
            self._set_state(job, "failed", str(exc), error=str(exc))
            if isinstance(exc, faxfile.FaxDiskFull):
                self._disk_full_alarm(f"传真 {job.id}: {exc}")
            raise FaxError(str(exc)) from exc
        return self._set_state(job, "queued", f"{job.pages} pages", next_attempt_at=self._now())

    def dispatch_due(self, connection) -> list[FaxJob]:
        """Start every queued outbound fax whose time has come, within the free fax channels."""
        now = self._now()
        busy = FaxJob.select().where((FaxJob.direction == "out") & (FaxJob.state == "sending")).count()
        free = max(self.settings.max_sending - busy, 0)
        due = list(FaxJob.select().where((FaxJob.direction == "out") & (FaxJob.state == "queued")
                                         & ((FaxJob.next_attempt_at.is_null()) | (FaxJob.next_attempt_at <= now)))
                   .order_by(FaxJob.next_attempt_at, FaxJob.id).limit(free))
        return [self.start_attempt(job, connection) for job in due]

    def start_attempt(self, job: FaxJob, connection) -> FaxJob:
        """Originate one attempt: the call runs txfax once answered; the result arrives as a FaxResult."""
        call_uuid = str(uuidlib.uuid4())
        try:
            # The policy again, as it is now (a rule may have changed since the fax was queued); not counted
            # against the cap a second time.
            self.dialout.recheck(job.number, job.purpose or "fax", user=job.actor if job.actor_id else None,
                                 detail=f"fax job {job.id}")
        except DialRefused as exc:
            reason = f"dial-out refused when sending / 发送时拨号被拒绝: {exc}"
            self._set_state(job, "failed", reason, error=reason)
            return job
        try:
            command = commands.originate(
                commands.from_template(self.settings.dial_template, number=check_number(job.number)),
                commands.app("txfax", self.switch_path(job.tiff_path)),
                {"origination_uuid": call_uuid, "fax_ident": self.settings.station_id,
                 "fax_header": commands.text(self.settings.header), "fax_verbose": "true",
                 "ignore_early_media": "true", "originate_timeout": 60})
        except commands.CommandError as exc:  # configuration: no retry would fare better
            reason = f"bad fax dial settings / 传真拨号设置有误: {exc}"
            self._set_state(job, "failed", reason, error=reason)
            raise_alarm("fax_failed", f"传真 {job.id} 发往 {job.number} 失败: {reason}")
            return job
        self._set_state(job, "sending", f"attempt {job.attempts + 1} {call_uuid}", deadline=self.settings.send_timeout,
                        attempts=job.attempts + 1, call_uuid=call_uuid, next_attempt_at=None)
        self._sending().add(call_uuid)
        try:
            reply = connection.bgapi(command, timeout=90.0)
            ok, body = bool(getattr(reply, "ok", False)), str(getattr(reply, "body", reply))
        except Exception as exc:  # noqa: BLE001 - switch down: this attempt failed, retry later
            ok, body = False, f"{type(exc).__name__}: {exc}"
        if not ok:
            return self.attempt_failed(FaxJob.get_by_id(job.id), f"originate failed / 呼叫失败: {body.strip()[:200]}")
        return FaxJob.get_by_id(job.id)

    def attempt_failed(self, job: FaxJob, reason: str) -> FaxJob:
        """Retry later while attempts remain, else fail with an alert."""
        if job.attempts < job.max_attempts:
            delay = self.settings.retry_after * max(job.attempts, 1)
            return self._set_state(job, "queued", f"retry in {delay:.0f} s: {reason}", error=reason,
                                   next_attempt_at=self._now() + dt.timedelta(seconds=delay))
        self._set_state(job, "failed", reason, error=reason)
        raise_alarm("fax_failed", f"传真 {job.id} 发往 {job.number} 失败 ({job.attempts} 次): {reason}")
        return job

    def on_fax_result(self, call_uuid: str, success: bool, pages: int = 0, result_text: str = "") -> FaxJob | None:
        """The switch reported the end of a txfax: done, or another attempt."""
        job = FaxJob.get_or_none((FaxJob.call_uuid == call_uuid) & (FaxJob.direction == "out"))
        if job is None or job.state != "sending":
            return job
        if success:
            return self._set_state(job, "done", f"{pages} pages {result_text}", pages=pages or job.pages,
                                   result_text=result_text[:255], error="")
        job.result_text = result_text[:255]
        return self.attempt_failed(job, f"fax not sent / 传真未发送成功: {result_text}")

    def on_switch_event(self, event) -> None:
        """Subscribe to the switch: FaxResult ends a send; a hang-up without a result fails the attempt."""
        name = type(event).__name__
        try:
            if name == "FaxResult" and getattr(event, "direction", "tx") != "rx":
                self.on_fax_result(event.uuid, bool(event.success), int(event.pages or 0), event.result_text or "")
            elif name == "ChannelHangup" and getattr(event, "complete", False) and self._sent_on(event.uuid):
                job = FaxJob.get_or_none((FaxJob.call_uuid == event.uuid) & (FaxJob.direction == "out")
                                         & (FaxJob.state == "sending"))
                if job is not None:
                    self.attempt_failed(job, f"call ended without a fax result / 通话结束未发送: {event.cause}")
        except Exception:  # noqa: BLE001 - never let the fax log stop the event consumer
            log.exception("fax update from %s failed", name)

    def _sending(self) -> set[str]:
        if self._sending_calls is None:
            self._sending_calls = {uuid for (uuid,) in FaxJob.select(FaxJob.call_uuid).where(
                (FaxJob.direction == "out") & (FaxJob.state == "sending")).tuples()}
        return self._sending_calls

    def _sent_on(self, call_uuid: str) -> bool:
        """True (once) when an outbound fax was being sent on ``call_uuid``: its hang-up is the fax's business."""
        sending = self._sending()
        if call_uuid not in sending:
            return False
        sending.discard(call_uuid)
        return True

    # -- watchdog ----------------------------------------------------------------------------------------
    def watchdog(self) -> list[FaxJob]:
        """End every job that made no progress by its deadline: retry an outbound one if it may, else
        timed_out with an alert (and the sender of an inbound fax on the missed-call list)."""
        now = self._now()
        stuck = list(FaxJob.select().where(FaxJob.state.in_(FAX_ACTIVE_STATES) & FaxJob.deadline_at.is_null(False)
                                           & (FaxJob.deadline_at < now)))
        ended = []
        for job in stuck:
            reason = f"no progress since {job.updated_at:%H:%M:%S} in state {job.state} / 无进展超时"
            if job.direction == "out" and job.state == "sending" and job.attempts < job.max_attempts:
                ended.append(self.attempt_failed(job, reason))
                continue
            self._set_state(job, "timed_out", reason, error=reason)
            raise_alarm("fax_timeout", f"传真 {job.id} ({job.direction} {job.number}): {reason}", severity=CRITICAL)
            if job.direction == "in":
                add_missed(job.number, "fax_failed", call_uuid=job.call_uuid, source="fax")
            ended.append(job)
        return ended

    def log_of(self, job_id: int) -> list[FaxEvent]:
        return list(FaxEvent.select().where(FaxEvent.job == job_id).order_by(FaxEvent.at, FaxEvent.id))


def fax_receive(session, fax_service: FaxService) -> FaxJob:
    """The IVR's fax node: receive a fax on this call and file it as a ticket."""
    return fax_service.receive(session)


def _var(variables: dict, name: str) -> str:
    return str(variables.get(name, variables.get(f"variable_{name}", "")) or "")


def _int(text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return 0
