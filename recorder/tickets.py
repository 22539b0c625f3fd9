"""The recorder's few touches on tickets, all through caseflow: create a ticket, attach a file, add a note,
link a call. Kept in one module so the recorder follows caseflow's services as they evolve.
"""
from __future__ import annotations

import logging
from pathlib import Path

from recorder.models import CallRecord, CallTicket

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


def create_ticket(*, channel: str, type: str, title: str, content: str, citizen_phone: str = "",
                  actor_label: str = "recorder"):
    """A new ticket in its initial state, through caseflow.services.create_ticket."""
    from caseflow import services

    return services.create_ticket(channel=channel, type=type, title=title, content=content,
                                  citizen_phone=citizen_phone, actor=None, actor_label=actor_label)


def attach_file(ticket, *, kind: str, filename: str, stored_path: str, content_type: str, size: int,
                sha256: str):
    """Record that ``ticket`` carries a stored file (path relative to its storage root, e.g. 'recordings/...')."""
    from caseflow.models import Attachment

    return Attachment.create(ticket=ticket, kind=kind, filename=filename, path=stored_path,
                             content_type=content_type, size=size, sha256=sha256)


def link_call(call: CallRecord, ticket) -> CallTicket:
    """Link a call to a ticket (idempotent). When the call's recording failed, the ticket says so."""
    from recorder.models import Recording

    link, created = CallTicket.get_or_create(call=call, ticket=ticket)
    if created:
        for rec in Recording.select().where((Recording.call_uuid == call.call_uuid) & (Recording.status == "failed")):
            add_ticket_note(ticket, f"本通话录音失败 / Recording of this call failed: {rec.failure_reason}")
    return link


def file_name(path: Path) -> str:
    return Path(path).name
