"""The IVR's services on the product (``HotlineIvrServices``, the ``ivr.services.IvrServices`` protocol):
tickets, status, blacklist and calendar from caseflow, recordings and voicemail from recorder, queues from
acd. It lives in the composition root because it knows all three; ivr/ only knows the protocol.

Every method that touches the database runs in its own transaction, so a caller hanging up can never leave
half a ticket behind.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ivr import engine as e
from ivr.services import TraceRecord
from ivr.throttle import FailureWindow

log = logging.getLogger(__name__)

# Failed status look-ups a calling number may make per hour (a PIN with a phone-number check is only safe
# if nobody can try thousands of numbers); counted per process (ivr.throttle), for at most this many numbers.
QUERY_FAILURE_LIMIT = 10
QUERY_FAILURE_WINDOW = 3600.0
QUERY_FAILURE_NUMBERS = 10_000
# IVR recording kinds -> (ticket type, channel, Chinese label)
RECORDING_KINDS = {
    "complaint": ("complaint", "phone", "自助投诉举报录音"),
    "report": ("report", "phone", "自助举报录音"),
    "mayor_mailbox": ("suggestion", "mailbox", "市长信箱留言"),
}


def creation_key(call_uuid: str, recording_path: str) -> str:
    """The ticket's creation key for what a caller recorded at one step of one call (the recording's file
    name is unique per step): the same on every try of that step, unique in the database."""
    return f"ivr:{call_uuid}:{Path(recording_path).name}"[:200]


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


@dataclass
class HotlineIvrServices:
    """IvrServices on the product's database.

    ``recordings``: a recorder RecordingStore (or RecordingService); ``acd``: the ACD dispatcher, or None
    until queues exist (then "to a person" bridges to the agent extensions in order).
    """

    config: Any
    trees: Any  # ivr.store.TreeStore
    recordings: Any = None
    acd: Any = None
    clock: Any = None
    agent_dial: str = "user/{extension}"
    agent_ring_seconds: int = 20
    cdr: Any = None
    on_trace: list[Callable[[TraceRecord], None]] = field(default_factory=list)
    db_lock: Any = None  # set by __post_init__ on SQLite: the runner serialises its database work
    live: Any = None  # ivr.live.LiveCalls: where the callers in the IVR are now (set by __post_init__)
    fax: Any = None  # recorder.fax.FaxService; built from the config on the first fax when not given
    # switch.marks.HandBackLedger: the marks the app set on channels it sent back (the ACD's when there is one)
    handbacks: Any = None
    _query_failures: FailureWindow = field(  # caller -> monotonic times of misses, bounded
        default_factory=lambda: FailureWindow(QUERY_FAILURE_LIMIT, QUERY_FAILURE_WINDOW, QUERY_FAILURE_NUMBERS),
        repr=False)

    def __post_init__(self):
        if self.handbacks is None:
            from switch.marks import HandBackLedger

            self.handbacks = getattr(self.acd, "handbacks", None) or HandBackLedger()
        if self.live is None:
            from ivr.live import LiveCalls

            self.live = LiveCalls()
        if self.db_lock is None and str(getattr(self.config, "database_url", "")).startswith("sqlite"):
            import gevent.lock

            self.db_lock = gevent.lock.RLock()

    def _now(self) -> dt.datetime:
        if self.clock is not None:
            return self.clock.now()
        from zoneinfo import ZoneInfo

        return dt.datetime.now(ZoneInfo(self.config.tz))

    # ------------------------------------------------------------------ tree, blacklist, time
    def active_tree(self):
        return self.trees.active_tree("default")

    def is_blacklisted(self, phone: str) -> bool:
        from caseflow import services

        return services.is_blacklisted(phone)

    def time_state(self, check: e.CheckTime) -> str:
        from core.calendar import load_calendar
        from ivr.schedule import time_state

        return time_state(load_calendar(), self._now(), check.open_from, check.open_until, check.weekends_open,
                          office_hours=check.office_hours, rest_days=check.rest_days)

    # ------------------------------------------------------------------ recordings and tickets
    def unfiled_recordings(self, call_uuid: str) -> list[Path]:
        """The files recording_target named for this call that are still where the switch wrote them: never
        taken into the store (filing a message moves its file), e.g. a `record` cut off with the call."""
        from recorder.storage import check_call_uuid

        try:
            check_call_uuid(call_uuid)
        except ValueError:
            return []  # no file was ever named after it
        return sorted((Path(self.config.recordings_dir) / "ivr").glob(f"*/{call_uuid}-*.wav"))

    def keep_after_failure(self, call_uuid: str, error: BaseException) -> int:
        """The IVR failed on a bug with ``call_uuid`` (ivr.runner: an unexpected error, not the caller, the
        switch or a database outage): every message the caller recorded on it that no ticket holds is taken
        into the store with the call (never deleted: the call record links it, staff listen to it and file
        it), and the ``ivr_failed`` alarm is raised. Returns how many such recordings there are (indexed with
        audio, or left where the switch wrote them when indexing failed too); the runner then lists the caller
        as ``not_filed``, or with none as a system fault."""
        from caseflow.models import Attachment
        from core.alarms import CRITICAL, raise_alarm
        from recorder.models import Recording

        left = []
        for path in self.unfiled_recordings(call_uuid):
            try:
                self._store().index_file(call_uuid, path, kind="ivr")
            except Exception:  # noqa: BLE001 - the file stays where the switch wrote it, named after the call
                log.exception("ivr: recording %s of failed call %s not indexed; the file stays", path.name,
                              call_uuid)
                left.append(path)
        kept = [rec for rec in Recording.select().where((Recording.call_uuid == call_uuid)
                                                        & (Recording.kind << ("ivr", "voicemail"))
                                                        & (Recording.status == "ok"))
                if not Attachment.select().where(Attachment.path == "recordings/" + rec.path).exists()]
        count = len(kept) + len(left)
        raise_alarm("ivr_failed", f"call {call_uuid}: 语音导航故障 ({type(error).__name__})，{count} 段录音已保存未受理 / "
                                  f"the IVR failed on a bug: {count} recording(s) kept, not filed"
                                  + (f" ({len(left)} not indexed)" if left else ""), subject="ivr", severity=CRITICAL)
        return count

    def recording_target(self, call_uuid: str, kind: str) -> tuple[str, str]:
        """(path FreeSWITCH writes to, the same file as this process sees it) for an IVR recording."""
        from recorder.storage import check_call_uuid

        check_call_uuid(call_uuid)
        now = self._now()
        stamp = now.strftime("%H%M%S%f")
        rel = Path("ivr") / now.date().isoformat() / f"{call_uuid}-{kind}-{stamp}.wav"
        local = Path(self.config.recordings_dir) / rel
        # Writable with enough free space (a full disk raises the alarm and an OSError: the runner takes
        # the node's failure route instead of recording into a file that gets cut).
        self._store().ready_folder(local.parent, call_uuid)
        switch_root = self.config.switch_recordings_dir or str(self.config.recordings_dir)
        return str(Path(switch_root) / rel), str(local)

    def _store(self):
        if self.recordings is None:
            from recorder.storage import RecordingStore

            self.recordings = RecordingStore.from_config(self.config, clock=self.clock)
        return getattr(self.recordings, "store", self.recordings)

    def prepare_recording(self, recording_path: str) -> None:
        """Convert an IVR recording to A-law in place (what the recorder stores), before the ticket is made.

        The runner calls this outside ``db_lock``: sox takes tens of milliseconds a file, and inside the
        lock it made every other IVR caller wait (bench/ivr.py). The store then only moves and hashes it.
        A file that cannot be converted is left as it is; the store reports it.
        """
        from recorder import wavfile

        path = Path(recording_path)
        try:
            if wavfile.read_wav_info(path).format_tag != wavfile.FORMAT_ALAW:
                wavfile.convert_to_alaw(path, path)
        except (wavfile.BadRecording, wavfile.ConversionError, OSError) as exc:
            log.info("ivr recording %s not converted ahead: %s", path.name, exc)

    def create_ticket_from_recording(self, caller: str, kind: str, recording_path: str, *, duration_ms: int,
                                     confirmed: bool, call_uuid: str, destination: str = "", lang: str = "zh",
                                     reason: str = "") -> str | None:
        """A ticket with the caller's number and the recording attached; its 8-digit number, or None.

        Idempotent per call and recording (``creation_key``): the runner tries this again when the database
        connection was lost, also when it was lost just after the commit (the ticket stored, the reply
        not); the second try then finds the first one's ticket and returns its number instead of filing a
        second one, and a recording the first try already took into the store is used as it is."""
        from caseflow import services
        from caseflow.services import TicketInputError
        from recorder import voicemail

        key = creation_key(call_uuid, recording_path)
        try:
            phone = services.clean_phone(caller)
        except TicketInputError:
            phone = ""  # withheld or odd caller id: the ticket is still taken, without a number
        if kind == "message":
            # leave_message finds an earlier try's ticket itself: that try may have stopped before the caller
            # was listed for the call-back every message gets.
            result = voicemail.leave_message(call_uuid=call_uuid, caller=phone, recording_path=recording_path,
                                             recordings=self._store(), reason=reason if reason in
                                             voicemail.REASONS else "", duration_ms=duration_ms, cdr=self.cdr,
                                             destination=destination, creation_key=key)
            return result.number or None
        earlier = services.ticket_by_creation_key(key)
        if earlier is not None:
            log.info("ivr: ticket %s of %s was filed by an earlier try (%s)", earlier.number, call_uuid, key)
            return earlier.number
        ticket_type, channel, label = RECORDING_KINDS.get(kind, RECORDING_KINDS["complaint"])
        rec = self._step_recording(call_uuid, Path(recording_path))
        if rec.status != "ok":
            log.warning("ivr recording of %s unusable (%s): no ticket", call_uuid, rec.failure_reason)
            return None
        seconds = round(rec.duration_ms / 1000)
        state = "来电者已确认" if confirmed else "来电者挂机前未确认，请核实"
        # The caller's number lives only in citizen_phone, which every page masks for roles that may not
        # see it; written into the title or content it would leak past the masking.
        content = (f"{label}（{state}），录音 {seconds} 秒，请收听录音后补充工单内容。\n"
                   f"IVR recording ({kind}, {'confirmed' if confirmed else 'NOT confirmed by the caller'}), "
                   f"{seconds} s: listen to the recording and complete the ticket.")
        # The spoken complaint is the ticket's substance: attached like any file (size and sha256 let the
        # desk show and verify it), besides the call link the recorder keeps, in the ticket's transaction.
        recording = dict(kind="recording", filename=Path(rec.path).name, path="recordings/" + rec.path,
                         content_type="audio/wav", size=rec.size, sha256=rec.sha256)
        ticket = services.create_ticket(content, type=ticket_type, channel=channel, citizen_phone=phone,
                                        title=label, actor_label="ivr", call_uuid=call_uuid, note=f"IVR {label}",
                                        creation_key=key, attachments=[recording])
        log.info("ivr: ticket %s from %s recording of %s", ticket.number, kind, call_uuid)
        return ticket.number

    def _step_recording(self, call_uuid: str, source: Path):
        """The store's recording of this step: ``source`` taken into the store now, or, when ``source`` is
        gone, the one an earlier try took (the store moved the file, then the ticket's transaction was lost
        with the connection): the call's newest IVR recording that no attachment holds yet."""
        if not source.exists():
            from caseflow.models import Attachment
            from recorder.models import Recording

            taken = (Recording.select().where((Recording.call_uuid == call_uuid) & (Recording.kind == "ivr")
                                              & (Recording.status == "ok"))
                     .order_by(Recording.id.desc()))
            for rec in taken:
                if not Attachment.select().where(Attachment.path == "recordings/" + rec.path).exists():
                    log.info("ivr: recording %s of %s taken by an earlier try", rec.path, call_uuid)
                    return rec
        return self._store().index_file(call_uuid, source, kind="ivr")

    # ------------------------------------------------------------------ status query
    def ticket_status(self, number: str, caller: str, pin: str | None) -> str | None:
        """The citizen status word of ticket ``number`` if the caller's phone (or the PIN) matches it."""
        from caseflow import services

        secret = pin if pin else caller
        if not secret or not re.sub(r"[^0-9]", "", secret):
            return None
        now = time.monotonic()
        if self._query_failures.blocked(caller, now):
            # Someone guessing numbers from this line: answer nothing for a while, whatever they enter.
            log.warning("ivr: status queries from %s refused after %d failures", caller,
                        self._query_failures.count(caller, now))
            return None
        found = services.status_query(number, secret)
        if found is None:
            self._query_failures.fail(caller, now)
            return None
        return found["citizen"]  # caseflow.workflow's one table of citizen words

    # ------------------------------------------------------------------ polls, material, knowledge
    def active_poll(self) -> e.PollLoaded:
        from ivr.models import Poll, PollQuestion

        poll = Poll.select().where(Poll.active).order_by(Poll.id.desc()).first()
        if poll is None:
            return e.PollLoaded(None)
        questions = tuple(e.PollQuestion(q.id, q.choices, text=q.text)
                          for q in poll.questions.order_by(PollQuestion.position, PollQuestion.id))
        return e.PollLoaded(poll.id, questions)

    def record_poll_answer(self, poll_id: int, question_id: int, answer: str, caller: str, call_uuid: str) -> None:
        from ivr.models import PollAnswer, PollQuestion

        question = PollQuestion.get_or_none((PollQuestion.id == question_id) & (PollQuestion.poll == poll_id))
        if question is None or answer not in question.choices:
            log.warning("ivr: poll answer %r to question %s refused", answer, question_id)
            return
        PollAnswer.create(question=question, answer=answer, caller=caller[:32], call_uuid=call_uuid[:64])

    def request_material(self, caller: str, topic: str, channel: str, address: str, call_uuid: str) -> None:
        from caseflow.models import MaterialRequest

        if channel == "email" and not address:
            from caseflow.models import Citizen

            citizen = Citizen.get_or_none(Citizen.phone == caller)
            address = citizen.email if citizen is not None else ""
        MaterialRequest.create(caller=caller[:32], topic=topic[:200], channel=channel, address=address[:255],
                               call_uuid=call_uuid[:64])

    def knowledge_text(self, item_id: str) -> str | None:
        from caseflow.models import KnowledgeItem

        try:
            item = KnowledgeItem.get_or_none(KnowledgeItem.id == int(item_id))
        except ValueError:
            return None
        if item is None or item.review_state != "approved":
            return None  # only reviewed answers are read to citizens
        return f"{item.title}。{item.content}"[:2000]

    # ------------------------------------------------------------------ people
    def route_to_queue(self, session, skill: str, queue: str = "", waited: float = 0.0) -> str:
        """Connect the caller to a person with ``skill`` (or in the named ACD ``queue``): "answered", "busy",
        "failed" or "transferred" (the ACD sent the channel elsewhere: the IVR must leave it alone).
        ``waited``: seconds since the caller asked for a person (the queue node's prompt), part of the wait."""
        if self.acd is not None:
            from acd.dispatcher import AcdError

            try:
                outcome = (self.acd.enter_queue(session, skill or None, queue_name=queue, waited=waited) if queue
                           else self.acd.enter_queue(session, skill, waited=waited))
            except AcdError as exc:
                # No queue serves this skill yet: the node kind stays, the agents are rung in order.
                log.warning("ivr: %s; ringing the agent extensions instead", exc)
                return self._bridge_agents(session)
            return {"answered": "answered", "callback": "answered", "transfer": "answered",
                    "transferred": "transferred", "busy": "busy"}.get(outcome.outcome, "failed")
        return self._bridge_agents(session)

    def agent_extensions(self) -> list[str]:
        from caseflow.models import User

        rows = (User.select(User.extension).where(User.active & User.extension.is_null(False))
                .order_by(User.extension))
        return [row.extension for row in rows if row.extension and row.extension.isdigit()]

    def _bridge_agents(self, session) -> str:
        """Until queues exist: ring the agent extensions one after another (FreeSWITCH "|" failover)."""
        extensions = self.agent_extensions()
        if not extensions:
            return "busy"
        timeout = self.agent_ring_seconds
        target = "|".join(f"[leg_timeout={timeout}]" + self.agent_dial.format(extension=x) for x in extensions)
        session.set("continue_on_fail", "true")
        session.set("hangup_after_bridge", "true")
        result = session.bridge(target, timeout=timeout * len(extensions) + 3600)
        if (result.variables.get("originate_disposition") or "").upper() == "SUCCESS":
            return "answered"
        log.info("no agent answered %s: %s", session.uuid, result.variables.get("originate_disposition", "?"))
        return "busy"

    # ------------------------------------------------------------------ outbound IVR
    def outbound_plan(self, attempt_id: str, call_uuid: str):
        """(tree, variables) for a call the dialer placed on ``call_uuid``, or None when it did not."""
        from ivr.campaigns import call_plan

        plan = call_plan(attempt_id, call_uuid)
        return None if plan is None else (plan[0], plan[1])

    def claim_handback(self, call_uuid: str, channel: dict) -> dict[str, str]:
        """The hand-back marks the app set on this channel (switch.marks.HandBackLedger.claim)."""
        return self.handbacks.claim(call_uuid, channel)

    def finish_outbound(self, attempt_id: str, answers: dict[str, str], outcome: str, call_uuid: str) -> None:
        from ivr.campaigns import finish_call

        finish_call(attempt_id, answers, outcome, call_uuid)

    # ------------------------------------------------------------------ fax and satisfaction
    def receive_fax(self, session) -> tuple[bool, str | None]:
        """Receive a fax on the call (recorder.fax.fax_receive): (received and filed, the ticket's number)."""
        from recorder.fax import FaxService, fax_receive

        if self.fax is None:
            self.fax = FaxService.from_config(self.config, clock=self.clock, cdr=self.cdr)
        job = fax_receive(session, self.fax)
        ticket = job.ticket.number if job.ticket_id else None
        return job.state == "done", ticket

    def save_satisfaction(self, caller: str, rating: str, call_uuid: str) -> None:
        """Keep the rating with the call; apply it to the call's ticket as a call-back in the agent's name
        (the agent who handed the caller back), or note it on the ticket when the workflow refuses."""
        from caseflow import services
        from caseflow.models import Ticket, TicketCall
        from caseflow.workflow import WorkflowError
        from ivr.models import SatisfactionRating

        link = (TicketCall.select().join(Ticket).where(TicketCall.call_uuid == call_uuid[:64])
                .order_by(TicketCall.at.desc(), TicketCall.id.desc()).first())
        ticket = link.ticket if link is not None else None
        applied = ""
        if ticket is not None:
            note = f"来电人工转自动满意度评价 / satisfaction key-press after the call {call_uuid}"
            agent = self._call_agent(call_uuid)
            db = Ticket._meta.database
            try:
                with db.atomic():
                    if agent is None:
                        raise WorkflowError("no agent to act for", "no_actor")
                    services.call_back(ticket, agent, rating, note)
                applied = "call_back"
            except (WorkflowError, PermissionError, services.TicketInputError) as exc:
                # Not in a state for a call-back yet (e.g. still being handled): the rating goes on record.
                log.info("satisfaction %s for %s kept as a note: %s", rating, ticket.number, exc)
                services.add_note(ticket, f"{note}: {rating}", actor=None, actor_label="ivr")
                applied = "note"
        SatisfactionRating.create(call_uuid=call_uuid[:64], caller=caller[:32], rating=rating,
                                  ticket_number=ticket.number if ticket is not None else "", applied=applied)

    @staticmethod
    def _call_agent(call_uuid: str):
        """The agent who talked to the caller on this call (the call record), or None."""
        try:
            from recorder.models import CallRecord
        except ImportError:
            return None
        record = CallRecord.get_or_none(CallRecord.call_uuid == call_uuid[:64])
        return record.agent if record is not None and record.agent_id else None

    # ------------------------------------------------------------------ traces
    def save_trace(self, record: TraceRecord) -> None:
        from ivr.models import IvrTrace

        try:
            IvrTrace.create(call_uuid=record.call_uuid[:64], caller=record.caller[:32],
                            destination=record.destination[:32], direction=record.direction,
                            tree_version=record.version_id, started_at=_naive_utc(record.started_at),
                            ended_at=_naive_utc(record.ended_at), outcome=record.outcome[:32],
                            tickets=",".join(record.tickets)[:255],
                            entries=json.dumps(record.entries, ensure_ascii=False))
        finally:
            # The call record waits for the IVR's word on whether the caller was served: it gets it even
            # when the trace itself could not be stored.
            for hook in self.on_trace:
                hook(record)
