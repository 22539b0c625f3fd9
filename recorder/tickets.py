"""The recorder's few touches on tickets, all through caseflow: create a ticket, add a note, link a call,
notify the centre. Kept in one module so the recorder follows caseflow's services as they evolve.
"""
from __future__ import annotations

import logging
from recorder.models import CallRecord

log = logging.getLogger(__name__)


def add_ticket_note(ticket, text: str, actor_label: str = "recorder") -> None:
    """Append a note to the ticket's timeline (no status change)."""
    try:
        from caseflow import services
    except ImportError:  # caseflow services not installed yet: the history row is the note
        services = None
    note = getattr(services, "add_note", None)
    if note is not None:
        note(ticket, text, actor=None, actor_label=actor_label)
        return
    from caseflow.models import TicketHistory

    TicketHistory.create(ticket=ticket, actor_label=actor_label, action="note", note=text)


def create_ticket(content: str, *, channel: str, type: str = "consult", title: str = "",
                  citizen_phone: str = "", call_uuid: str | None = None, actor_label: str = "recorder",
                  note: str = "", creation_key: str | None = None):
    """A new ticket in its initial state, through caseflow.services.create_ticket (links the call)."""
    from caseflow import services

    return services.create_ticket(content, type=type, channel=channel, title=title, citizen_phone=citizen_phone,
                                  actor_label=actor_label, call_uuid=call_uuid, note=note,
                                  creation_key=creation_key)


def ticket_by_creation_key(key: str | None):
    """The ticket an earlier try filed with this creation key, or None (none given or none filed)."""
    from caseflow import services

    return services.ticket_by_creation_key(key) if key else None


def link_call(call: CallRecord | str, ticket, purpose: str = "intake"):
    """Link a call to a ticket (once per purpose). When the call's recording failed, the ticket says so."""
    from caseflow import services
    from caseflow.models import TicketCall
    from recorder.models import Recording

    call_uuid = call if isinstance(call, str) else call.call_uuid
    existing = TicketCall.get_or_none((TicketCall.ticket == ticket) & (TicketCall.call_uuid == call_uuid))
    if existing is not None:
        return existing
    link = services.link_call(ticket, call_uuid, purpose)
    for rec in Recording.select().where((Recording.call_uuid == call_uuid) & (Recording.status == "failed")):
        note_recording_failure(ticket, rec)
    return link


def note_recording_failure(ticket, rec) -> bool:
    """Note on the ticket that a recording of its call failed, unless it says so already; True if added."""
    from caseflow.models import TicketHistory

    marker = f"(录音 #{rec.id})"
    if TicketHistory.select().where((TicketHistory.ticket == ticket) & TicketHistory.note.contains(marker)).exists():
        return False
    add_ticket_note(ticket, f"本通话录音失败 {marker} / Recording of this call failed: {rec.failure_reason}")
    return True


def sweep_recording_notes(since) -> int:
    """Note failed recordings on tickets linked to their calls since ``since`` (naive UTC), however the link
    was made (the agent desk links calls through caseflow directly). Returns the notes added."""
    from caseflow.models import Ticket, TicketCall
    from recorder.models import Recording

    rows = (TicketCall.select(TicketCall, Recording).join(Recording, on=(Recording.call_uuid == TicketCall.call_uuid))
            .where((TicketCall.at >= since) & (Recording.status == "failed")))
    added = 0
    for link in rows:
        ticket = Ticket.get_or_none(Ticket.id == link.ticket_id)
        if ticket is not None and note_recording_failure(ticket, link.recording):
            added += 1
    return added


def notify_centre(text: str, ticket=None, kind: str = "warn") -> None:
    """Leave a message on the hotline centre's desk (alerts, voicemail, faxes)."""
    from caseflow import services

    centre = services.centre_department()
    if centre is None:
        log.warning("no centre department to notify: %s", text)
        return
    services.notify(text, department=centre, ticket=ticket, kind=kind)
