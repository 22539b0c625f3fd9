"""Voicemail (P5 §3.4.3): when the centre is closed or every agent is busy the IVR records a message; this
turns it into a ticket carrying the recording, on the centre's desk and on the missed-call list for a
call-back.

The IVR runner records (CallSession.record) and then calls ``leave_message``. The ticket reaches its
recording through the call (caseflow TicketCall -> Recording.call_uuid), so the audio is stored once, under
recordings/, and served by the recordings pages with their access rules and log.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from recorder import tickets
from recorder.missed import add_missed
from recorder.models import CallRecord, MissedCall, Recording

log = logging.getLogger(__name__)

REASONS = {
    "busy": ("坐席全忙", "all agents busy"),
    "closed": ("非工作时间", "out of hours"),
    "": ("来电留言", "message"),
}


@dataclass(frozen=True)
class VoicemailResult:
    """What a message became: the ticket (None when nothing usable was recorded), recording, missed entry."""

    ticket: object | None
    recording: Recording
    missed: MissedCall

    @property
    def number(self) -> str:
        """The acceptance number to read back to the caller ("" when no ticket)."""
        return self.ticket.number if self.ticket is not None else ""


def leave_message(*, call_uuid: str, caller: str, recording_path: str | Path, recordings,
                  reason: str = "", duration_ms: int | None = None, cdr=None, destination: str = "",
                  creation_key: str | None = None) -> VoicemailResult:
    """Index the message, create the ticket with the recording, and list the caller for a call-back.

    ``recordings`` is the RecordingService (or RecordingStore); ``cdr`` the CdrRecorder to mark the call
    as voicemail. A message that is empty or unreadable still puts the caller on the missed-call list (the
    citizen tried to reach us) but creates no ticket; the raw file is kept for inspection. ``creation_key``:
    the ticket's (caseflow.services.create_ticket), for a caller that may try again after a lost commit:
    the try again files no second ticket and finds the recording an earlier try already stored.
    """
    if reason not in REASONS:
        raise ValueError(f"voicemail reason must be one of {sorted(REASONS)}, got {reason!r}")
    store = getattr(recordings, "store", recordings)
    rec = _message_recording(store, call_uuid, Path(recording_path))
    if cdr is not None:
        cdr.flag(call_uuid, "voicemail")
    call = CallRecord.get_or_none(CallRecord.call_uuid == call_uuid)
    zh, en = REASONS[reason]
    ticket = tickets.ticket_by_creation_key(creation_key)  # an earlier try's, committed before its reply was lost
    if ticket is not None:
        log.info("voicemail of call %s: ticket %s filed by an earlier try", call_uuid, ticket.number)
    elif rec.status == "ok":
        seconds = round(rec.duration_ms / 1000)
        # The number stays in citizen_phone only (masked per role); in the text it would leak.
        content = (f"电话留言（{zh}），留言时长 {seconds} 秒，请收听录音并回电。\n"
                   f"Voicemail ({en}), {seconds} s: listen to the recording and call back.")
        ticket = tickets.create_ticket(content, channel="phone", type="other", title=f"电话留言 / Voicemail {zh}",
                                       citizen_phone=_phone_or_blank(caller), call_uuid=call_uuid,
                                       note="语音留言 / voicemail", creation_key=creation_key)
        tickets.notify_centre(f"新留言，请回电 / New voicemail, please call back: {ticket.number}", ticket=ticket,
                              kind="info")
    else:
        log.warning("voicemail of %s on call %s unusable: %s", caller, call_uuid, rec.failure_reason)
    missed = add_missed(caller, "voicemail", call=call, call_uuid=call_uuid, ticket=ticket, source="voicemail")
    return VoicemailResult(ticket, rec, missed)


def _message_recording(store, call_uuid: str, source: Path) -> Recording:
    """The store's recording of this message: ``source`` taken into the store now or, when ``source`` is gone,
    the one an earlier try took (the store moved and indexed it, then the ticket's transaction was lost with
    the database connection): the call's newest indexed voicemail. Looking for the file where it was, the
    retry marked a new row "recording file missing" and filed no ticket for a message that was stored."""
    if not source.exists():
        taken = (Recording.select().where((Recording.call_uuid == call_uuid) & (Recording.kind == "voicemail")
                                          & (Recording.status == "ok"))
                 .order_by(Recording.id.desc()).first())
        if taken is not None:
            log.info("voicemail of call %s: recording %s taken by an earlier try", call_uuid, taken.path)
            return taken
    return store.index_file(call_uuid, source, kind="voicemail")


def _phone_or_blank(caller: str) -> str:
    """A caller ID usable as the citizen's phone (withheld or odd IDs are left out rather than refused)."""
    from caseflow.services import TicketInputError, clean_phone

    try:
        return clean_phone(caller)
    except TicketInputError:
        return ""
