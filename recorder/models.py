"""Recorder tables: call records (CDR), recordings and who heard them, missed calls and
call-back attempts, fax jobs with their log, and storage alerts.

Calls are linked to tickets by caseflow.models.TicketCall (ticket, call_uuid), shared with the case engine.
Times are stored as naive UTC (like caseflow.models); durations as whole seconds or milliseconds as named.
"""
from __future__ import annotations

import datetime as dt
import json

import peewee

from caseflow.models import Ticket, User
from core.db import BaseModel


def utcnow() -> dt.datetime:
    """Naive UTC now, the storage convention of every table."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


# Dispositions a call record can end with (the list).
DISPOSITIONS = ("self_service", "answered", "abandoned", "overflowed", "voicemail", "blacklisted", "fax",
                "no_answer", "cut_off")  # no_answer: an outbound call (call-back) the citizen did not pick up;
# cut_off: the switch lost the call before anyone answered it (restart, lost connection: recorder.sweep)
HANGUP_SIDES = ("caller", "agent", "system", "")


class CallRecord(BaseModel):
    """One call, from the first event to its hang-up. Finalised records carry a keyed MAC (recorder.integrity)."""

    call_uuid = peewee.CharField(max_length=64, unique=True)
    # Other channels of the same call (agent legs, consultation legs), JSON list of UUIDs.
    other_uuids = peewee.TextField(default="[]")
    caller = peewee.CharField(max_length=32, default="", index=True)
    called = peewee.CharField(max_length=32, default="")
    direction = peewee.CharField(max_length=8, default="inbound")  # inbound, outbound
    server = peewee.CharField(max_length=64, default="")
    started_at = peewee.DateTimeField(default=utcnow, index=True)
    # JSON list of {"node": id, "at": iso} in visiting order.
    ivr_path = peewee.TextField(default="[]")
    queue = peewee.CharField(max_length=64, default="", index=True)
    queue_entered_at = peewee.DateTimeField(null=True)
    queue_left_at = peewee.DateTimeField(null=True)
    # JSON list of {"agent": operator_no, "at": iso, "result": "answered"|"refused"|"timeout"|""}.
    agents_offered = peewee.TextField(default="[]")
    answered_at = peewee.DateTimeField(null=True)
    ended_at = peewee.DateTimeField(null=True)
    wait_seconds = peewee.IntegerField(default=0)
    talk_seconds = peewee.IntegerField(default=0)
    hold_seconds = peewee.IntegerField(default=0)
    hangup_cause = peewee.CharField(max_length=64, default="")
    hangup_side = peewee.CharField(max_length=8, default="")
    disposition = peewee.CharField(max_length=16, default="", index=True)
    agent = peewee.ForeignKeyField(User, null=True, backref="call_records", on_delete="SET NULL")
    agent_no = peewee.CharField(max_length=16, default="", index=True)
    finalised = peewee.BooleanField(default=False)
    # "v1:<hex>" HMAC-SHA256 over the canonical fields; empty until finalised.
    mac = peewee.CharField(max_length=80, default="")

    class Meta:
        indexes = ((("agent_no", "started_at"), False),)

    def ivr_nodes(self) -> list[dict]:
        return json.loads(self.ivr_path or "[]")

    def offers(self) -> list[dict]:
        return json.loads(self.agents_offered or "[]")


# The records not finalised yet (calls in progress, or cut off and not swept yet): few, read as they are beside
# the finalised records' counts in recorder.aggregates.
CallRecord.add_index(CallRecord.index(CallRecord.started_at, where=~CallRecord.finalised, name="call_record_open"))


class CallSlot(BaseModel):
    """Finalised call records per quarter-hour (UTC) of their start and direction (inbound, outbound), kept by
    recorder.aggregates as records are finalised: the calls report reads these, not every record. A quarter
    hour because local days and hours start on one in every zone (half-hour and 45-minute offsets too)."""

    slot = peewee.DateTimeField()
    direction = peewee.CharField(max_length=8)
    calls = peewee.IntegerField(default=0)

    class Meta:
        table_name = "call_slot"
        indexes = ((("slot", "direction"), True),)


class AgentCallSlot(BaseModel):
    """Finalised call records with an agent per quarter-hour (UTC) of their start and agent: calls, talk and
    hold seconds (the agents report's call figures; recorder.aggregates)."""

    slot = peewee.DateTimeField()
    agent = peewee.ForeignKeyField(User, backref="+", on_delete="CASCADE")
    calls = peewee.IntegerField(default=0)
    talk_seconds = peewee.BigIntegerField(default=0)
    hold_seconds = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "agent_call_slot"
        # the second holds the figures too: a year's report (a million rows) reads that index alone
        indexes = ((("slot", "agent"), True), (("slot", "agent", "calls", "talk_seconds", "hold_seconds"), False))


RECORDING_KINDS = ("conversation", "ivr_message", "voicemail")


class Recording(BaseModel):
    """A recorded file under recordings_dir (path relative to it), indexed once the recording stopped."""

    call = peewee.ForeignKeyField(CallRecord, null=True, backref="recordings", on_delete="SET NULL")
    call_uuid = peewee.CharField(max_length=64, index=True)
    kind = peewee.CharField(max_length=16, default="conversation")
    path = peewee.CharField(max_length=512)
    # Local (configured zone) day of the folder, for search and storage per day.
    day = peewee.DateField(index=True)
    started_at = peewee.DateTimeField(default=utcnow, index=True)
    duration_ms = peewee.IntegerField(default=0)
    size = peewee.BigIntegerField(default=0)
    sha256 = peewee.CharField(max_length=64, default="")
    format = peewee.CharField(max_length=16, default="wav-alaw")
    channels = peewee.SmallIntegerField(default=1)
    status = peewee.CharField(max_length=16, default="recording", index=True)  # recording, ok, failed
    failure_reason = peewee.CharField(max_length=255, default="")
    # Denormalised from the call so the search over a million rows needs no join.
    caller = peewee.CharField(max_length=32, default="", index=True)
    agent_no = peewee.CharField(max_length=16, default="", index=True)
    archived = peewee.BooleanField(default=False)
    archived_at = peewee.DateTimeField(null=True)
    archive_path = peewee.CharField(max_length=512, default="")

    class Meta:
        # Search filters by agent or caller and shows the newest first: these serve both at once.
        indexes = ((("agent_no", "started_at"), False), (("caller", "started_at"), False),
                   (("day", "started_at"), False))


class RecordingAccess(BaseModel):
    """Every listen and download of a recording: who, when, from where."""

    recording = peewee.ForeignKeyField(Recording, backref="accesses", on_delete="CASCADE")
    user = peewee.ForeignKeyField(User, null=True, on_delete="SET NULL")
    user_label = peewee.CharField(max_length=64, default="")
    action = peewee.CharField(max_length=16)  # listen, download
    at = peewee.DateTimeField(default=utcnow, index=True)
    remote_addr = peewee.CharField(max_length=64, default="")


MISSED_REASONS = ("abandoned", "callback_request", "out_of_hours", "ivr_hangup", "voicemail", "fax_failed",
                  "cut_off", "not_stored", "no_ticket", "not_filed")
# Who put a call on the list: the ACD (abandoned in a queue, call-back key or overflow), the call record
# (out of hours, hung up in the IVR, anything the ACD did not report), voicemail, fax.
MISSED_SOURCES = ("acd", "cdr", "voicemail", "fax", "")


class MissedCall(BaseModel):
    """A number nobody served (P5 §3.6.4), the one list agents call back from: at most one open entry per
    number (recorder.missed keeps it so), counting how often the number tried to reach us while open."""

    call = peewee.ForeignKeyField(CallRecord, null=True, backref="missed", on_delete="SET NULL")
    caller = peewee.CharField(max_length=32, index=True)
    reason = peewee.CharField(max_length=16)  # of the latest call
    queue = peewee.CharField(max_length=64, default="")
    at = peewee.DateTimeField(default=utcnow, index=True)  # first missed call of this entry
    last_at = peewee.DateTimeField(null=True)  # latest missed call
    calls = peewee.IntegerField(default=1)  # missed calls from the number while this entry was open
    wait_seconds = peewee.IntegerField(default=0)  # longest wait in a queue among them
    ticket = peewee.ForeignKeyField(Ticket, null=True, on_delete="SET NULL")
    status = peewee.CharField(max_length=16, default="open", index=True)  # open, done
    attempts = peewee.IntegerField(default=0)  # call-back attempts
    closed_at = peewee.DateTimeField(null=True)
    # The agent calling this number back now (so two agents do not call the same citizen); expires.
    # No index: claims are found by entry, and an index here would stop older databases from upgrading
    # (create_tables makes indexes before migration step 0001 adds the column).
    claimed_by = peewee.ForeignKeyField(User, null=True, on_delete="SET NULL", index=False)
    claimed_at = peewee.DateTimeField(null=True)


class MissedCallOccurrence(BaseModel):
    """One unserved call behind a MissedCall entry; a call is counted once whoever reports it first."""

    missed = peewee.ForeignKeyField(MissedCall, backref="occurrences", on_delete="CASCADE")
    call_uuid = peewee.CharField(max_length=64, null=True, unique=True)  # NULL: no call (failed fax)
    reason = peewee.CharField(max_length=16)
    source = peewee.CharField(max_length=16, default="")
    queue = peewee.CharField(max_length=64, default="")
    wait_seconds = peewee.IntegerField(default=0)
    at = peewee.DateTimeField(default=utcnow)


CALLBACK_OUTCOMES = ("reached", "no_answer", "busy", "failed", "wrong_number", "left_message")


class CallbackAttempt(BaseModel):
    """One call-back attempt for a missed call and its outcome."""

    missed = peewee.ForeignKeyField(MissedCall, backref="callback_attempts", on_delete="CASCADE")
    agent = peewee.ForeignKeyField(User, null=True, on_delete="SET NULL")
    at = peewee.DateTimeField(default=utcnow)
    outcome = peewee.CharField(max_length=16)
    call_uuid = peewee.CharField(max_length=64, default="")
    note = peewee.TextField(default="")


FAX_STATES = ("queued", "converting", "sending", "receiving", "done", "failed", "timed_out")
FAX_ACTIVE_STATES = ("converting", "sending", "receiving")


class FaxJob(BaseModel):
    """An inbound or outbound fax; never left in an active state past its deadline (the watchdog)."""

    direction = peewee.CharField(max_length=8)  # in, out
    state = peewee.CharField(max_length=16, default="queued", index=True)
    number = peewee.CharField(max_length=32, default="")  # remote party
    call_uuid = peewee.CharField(max_length=64, default="", index=True)
    attempts = peewee.IntegerField(default=0)
    max_attempts = peewee.IntegerField(default=3)
    pages = peewee.IntegerField(default=0)
    result_code = peewee.CharField(max_length=16, default="")
    result_text = peewee.CharField(max_length=255, default="")
    tiff_path = peewee.CharField(max_length=512, default="")  # relative to fax_dir
    pdf_path = peewee.CharField(max_length=512, default="")
    ticket = peewee.ForeignKeyField(Ticket, null=True, backref="fax_jobs", on_delete="SET NULL")
    # Who queued an outbound fax and why (recorder.dialout purpose): the dial-out policy checks again at send time.
    purpose = peewee.CharField(max_length=24, default="fax")
    actor = peewee.ForeignKeyField(User, null=True, on_delete="SET NULL")
    created_at = peewee.DateTimeField(default=utcnow, index=True)
    updated_at = peewee.DateTimeField(default=utcnow)
    # When the current step must have made progress by, or the watchdog ends it.
    deadline_at = peewee.DateTimeField(null=True, index=True)
    next_attempt_at = peewee.DateTimeField(null=True, index=True)
    error = peewee.TextField(default="")


class FaxEvent(BaseModel):
    """The fax log: every step of a job, append-only."""

    job = peewee.ForeignKeyField(FaxJob, backref="events", on_delete="CASCADE")
    at = peewee.DateTimeField(default=utcnow)
    event = peewee.CharField(max_length=32)
    detail = peewee.TextField(default="")


class DialOutLog(BaseModel):
    """recorder.dialout's record: every refused dial-out (who, what, why) and every allowed one of a capped
    actor (a staff member ``user:<id>``, a caller ``caller:<number>``), which the daily cap counts."""

    at = peewee.DateTimeField(default=utcnow)
    actor = peewee.CharField(max_length=64)
    user = peewee.ForeignKeyField(User, null=True, on_delete="SET NULL")
    purpose = peewee.CharField(max_length=24)
    number = peewee.CharField(max_length=32)
    number_class = peewee.CharField(max_length=16)
    allowed = peewee.BooleanField()
    reason = peewee.CharField(max_length=255, default="")

    class Meta:
        indexes = ((("actor", "at"), False),)


class CallRecordSeal(BaseModel):
    """One link of the call-record chain (recorder.integrity): written each time a record is finalised, never
    changed. Numbered per day (UTC) without gaps; its MAC covers the record's MAC and the previous link's, so
    an edited, deleted or replayed record, or a deleted link, shows up in ``python -m recorder.verify``."""

    day = peewee.DateField()
    seq = peewee.IntegerField()
    # Not a foreign key on purpose: a deleted record must leave its links behind as evidence.
    record_id = peewee.IntegerField(index=True)
    call_uuid = peewee.CharField(max_length=64)
    record_mac = peewee.CharField(max_length=80)
    sealed_at = peewee.DateTimeField()
    mac = peewee.CharField(max_length=80)

    class Meta:
        table_name = "call_record_seal"
        indexes = ((("day", "seq"), True),)


MODELS = [CallRecord, CallRecordSeal, CallSlot, AgentCallSlot, Recording, RecordingAccess, MissedCall,
          MissedCallOccurrence, CallbackAttempt, FaxJob, FaxEvent, DialOutLog]
