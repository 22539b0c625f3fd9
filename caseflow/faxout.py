"""Outbound fax of a ticket's documents: a PDF attachment (the reply letter, consultation material) or the
ticket's reply rendered as a PDF (kept as an attachment), sent to a number through recorder.fax.FaxService,
with a history row on the ticket."""
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

FAX_NUMBER_RE = re.compile(r"^\+?[0-9]{5,20}\Z")
# Fonts with Chinese glyphs, tried in order when HOTLINE_FAX_FONT does not name one (Debian packages
# fonts-wqy-microhei, fonts-wqy-zenhei, fonts-noto-cjk, fonts-droid-fallback).
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)


class FaxError(ValueError):
    """A fax request that cannot be accepted (bad number, bad document). Defined here, where the case
    engine catches it, and raised by recorder.fax.FaxService, which sits a floor above (docs/architecture.md)."""


class FaxFontMissing(TicketInputError):
    """No font with Chinese glyphs is installed to render the reply."""


def find_font(configured: str = "") -> Path:
    """The font the reply PDF is set in: ``configured`` when given (it must exist), else the first
    installed candidate; FaxFontMissing names what to install."""
    if configured:
        if not Path(configured).is_file():
            raise FaxFontMissing(f"传真字体不存在 / HOTLINE_FAX_FONT {configured!r} does not exist")
        return Path(configured)
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise FaxFontMissing("没有可用的中文字体，无法生成答复传真 / no Chinese font installed "
                         "(install fonts-wqy-microhei or set HOTLINE_FAX_FONT)")


def reply_pdf(ticket: Ticket, font: Path, clock: Clock) -> bytes:
    """The ticket's reply as an A4 PDF: acceptance number, title, handling unit, date and the reply text."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    pdf.add_font("cjk", fname=str(font))

    def block(text: str, size: int, height: float, align: str = "L") -> None:
        # Chinese has no spaces to break at: wrap by character, and start each block at the left margin.
        pdf.set_font("cjk", size=size)
        pdf.multi_cell(0, height, text, align=align, wrapmode="CHAR", new_x="LMARGIN", new_y="NEXT")

    block("12345 政务服务便民热线 工单答复 / Reply", 16, 10, "C")
    pdf.ln(4)
    unit = ticket.department.name if ticket.department_id else ""
    for line in (f"受理号 / No.: {ticket.number}", f"标题 / Title: {ticket.title}",
                 f"承办单位 / Unit: {unit}", f"日期 / Date: {clock.now():%Y-%m-%d %H:%M}"):
        block(line, 11, 7)
    pdf.ln(4)
    block(ticket.reply, 12, 8)
    return bytes(pdf.output())


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
        job = fax_service.send(number, path, ticket=ticket, actor=actor)
    except FaxError as error:
        raise TicketInputError(f"传真未能发送 / the fax was not queued: {error}") from error
    services._history(ticket, actor, "fax", ticket.status, ticket.status,
                      f"传真 {row.filename} 至 {number}（任务 {job.id}）/ fax of {row.filename} to {number} (job {job.id})",
                      services.to_db(clock.now()), label="" if actor else services.SYSTEM)
    log.info("ticket %s: fax of attachment %s to %s queued as job %s", ticket.number, row.id, number, job.id)
    return job


def send_reply(ticket: Ticket, number, actor: Optional[User], fax_service, attachments_root: Path,
               font: Path | str = "", clock: Optional[Clock] = None):
    """Render the ticket's reply as a PDF, keep it as a reply attachment, and fax it to ``number``."""
    clock = clock or Clock()
    if actor is not None:
        services.require_write(actor, ticket)
    number = clean_fax_number(number)
    fresh = Ticket.get_by_id(ticket.id)
    if not (fresh.reply or "").strip():
        raise TicketInputError("该工单还没有答复内容 / the ticket has no reply to fax yet")
    data = reply_pdf(fresh, find_font(str(font or "")), clock)
    row = attachments.add_attachment(fresh, attachments_root, data, f"答复-{fresh.number}.pdf", actor=actor,
                                     kind="reply", clock=clock)
    return send_attachment(fresh, row.id, number, actor, fax_service, attachments_root, clock)
