"""Outbound fax of a ticket's documents: a PDF attachment (the reply letter, consultation material) sent
to a number through recorder.fax.FaxService, with a history row on the ticket."""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Optional

from caseflow import attachments, services
from caseflow.models import Attachment, Ticket, User
from caseflow.services import TicketInputError
from core.clock import Clock

log = logging.getLogger(__name__)

FAX_NUMBER_RE = re.compile(r"^\+?[0-9]{5,20}$")


def clean_fax_number(number) -> str:
    """A dialable fax number: digits (an optional leading +), 5 to 20 long; spaces and dashes dropped."""
    text = re.sub(r"[\s\-()]", "", str(number or ""))
    if not text:
        raise TicketInputError("请填写传真号码 / enter the fax number")
    if not FAX_NUMBER_RE.match(text):
        raise TicketInputError(f"传真号码应为5至20位数字 / a fax number is 5 to 20 digits, got {str(number)[:30]!r}")
    return text


def is_pdf_attachment(row: Attachment) -> bool:
    """True for an attachment stored as a PDF (only PDFs are faxed: they are converted to fax TIFF)."""
    return row.content_type == "application/pdf" or row.filename.lower().endswith(".pdf")


def is_pdf_file(path: Path) -> bool:
    """True if the file starts like a PDF document (the name alone proves nothing)."""
    try:
        with open(path, "rb") as handle:
            return b"%PDF-" in handle.read(1024)
    except OSError:
        return False


def send_attachment(ticket: Ticket, attachment_id, number, actor: Optional[User], fax_service,
                    attachments_root: Path, clock: Optional[Clock] = None):
    """Fax one of the ticket's PDF attachments to ``number``; returns the queued FaxJob.

    The actor must be allowed to write to the ticket (services.may_write: the centre, the handling
    department, whoever recorded it). Raises NotFound, PermissionDenied or TicketInputError (bad number,
    not a PDF, unknown attachment) with the reason.
    """
    from recorder.fax import FaxError

    clock = clock or Clock()
    if actor is not None:
        services.require_write(actor, ticket)
    number = clean_fax_number(number)
    try:
        row = Attachment.get_or_none((Attachment.id == int(attachment_id)) & (Attachment.ticket == ticket))
    except (TypeError, ValueError):
        row = None
    if row is None:
        raise TicketInputError("请选择要传真的附件 / choose an attachment of this ticket to fax")
    try:
        path = attachments.resolve(attachments_root, row)
    except attachments.AttachmentError:
        raise TicketInputError("附件文件不存在 / the attachment file is missing") from None
    if not is_pdf_attachment(row) or not is_pdf_file(path):
        raise TicketInputError(f"只能传真PDF文件：{row.filename} / only PDF documents can be faxed")
    try:
        job = fax_service.send(number, path, ticket=ticket)
    except FaxError as error:
        raise TicketInputError(f"传真未能发送 / the fax was not queued: {error}") from error
    services._history(ticket, actor, "fax", ticket.status, ticket.status,
                      f"传真 {row.filename} 至 {number}（任务 {job.id}）/ fax of {row.filename} to {number} (job {job.id})",
                      services.to_db(clock.now()), label="" if actor else services.SYSTEM)
    log.info("ticket %s: fax of attachment %s to %s queued as job %s", ticket.number, row.id, number, job.id)
    return job
