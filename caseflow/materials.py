"""Consultation material requests (a caller asked in the IVR for material by SMS, e-mail or fax; the IVR
stores them as caseflow.models.MaterialRequest): the centre's list, marking one done, and sending a knowledge
answer's PDF by fax through recorder.fax.FaxService."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from caseflow import attachments, faxout, knowledge
from caseflow.models import Attachment, KnowledgeAnswer, MaterialRequest, User
from caseflow.roles import can
from caseflow.services import TicketInputError, to_db
from caseflow.workflow import PermissionDenied
from core.clock import Clock

log = logging.getLogger(__name__)

CHANNEL_LABELS = {"sms": ("短信", "SMS"), "email": ("电子邮件", "E-mail"), "fax": ("传真", "Fax")}


def _model():
    return MaterialRequest


def _need(actor: Optional[User]) -> None:
    if actor is None or not can(actor, "ticket.answer") or not can(actor, "ticket.view_all"):
        raise PermissionDenied("仅热线中心可以处理资料索取 / only the centre handles material requests")


def pending(actor: User, limit: int = 100) -> list:
    """Open requests, oldest first (they were promised to a caller)."""
    _need(actor)
    model = _model()
    return list(model.select().where(model.status == "pending").order_by(model.created_at, model.id).limit(limit))


def _load(request_id):
    model = _model()
    try:
        row = model.get_or_none(model.id == int(request_id))
    except (TypeError, ValueError):
        row = None
    if row is None:
        raise TicketInputError("没有找到该资料索取 / no such material request")
    return row


def mark_done(request_id, actor: User, clock: Optional[Clock] = None):
    """Mark a request fulfilled (sent by hand, by SMS or e-mail); a request already done is refused."""
    _need(actor)
    clock = clock or Clock()
    row = _load(request_id)
    if row.status != "pending":
        raise TicketInputError("该资料索取已处理 / this request was already handled")
    model = _model()
    done = model.update(status="sent", fulfilled_at=to_db(clock.now())).where(
        (model.id == row.id) & (model.status == "pending")).execute()
    if done != 1:
        raise TicketInputError("该资料索取已处理 / this request was already handled")
    log.info("material request %s done by %s", row.id, actor.operator_no)
    return _load(row.id)


def fax_answers(topic: str, limit: int = 10) -> list[tuple]:
    """(item, answer) pairs whose answer carries a PDF, for the knowledge items matching ``topic``."""
    items = [item for item, _score in knowledge.search_items(topic, limit=limit)]
    if not items:
        return []
    by_id = {item.id: item for item in items}
    answers = KnowledgeAnswer.select().where(KnowledgeAnswer.item.in_(list(by_id)) & (KnowledgeAnswer.attachment_path != "")
                                             & KnowledgeAnswer.deleted_at.is_null())
    return [(by_id[a.item_id], a) for a in answers if a.attachment_name.lower().endswith(".pdf")]


def send_by_fax(request_id, answer_id, actor: User, fax_service, attachments_root: Path,
                clock: Optional[Clock] = None):
    """Fax a knowledge answer's PDF to the number the caller gave; the request is done once the job is
    queued (the fax log follows the job). Returns the FaxJob."""
    _need(actor)
    clock = clock or Clock()
    row = _load(request_id)
    if row.channel != "fax":
        raise TicketInputError("该请求不是传真方式 / this request is not for a fax")
    if row.status != "pending":
        raise TicketInputError("该资料索取已处理 / this request was already handled")
    number = faxout.clean_fax_number(row.address or row.caller)
    try:
        answer = KnowledgeAnswer.get_or_none(KnowledgeAnswer.id == int(answer_id))
    except (TypeError, ValueError):
        answer = None
    if answer is None or not answer.attachment_path or answer.deleted_at is not None:
        raise TicketInputError("请选择带PDF附件的知识答案 / choose a knowledge answer with a PDF attachment")
    try:
        path = attachments.resolve(attachments_root, Attachment(path=answer.attachment_path))
    except attachments.AttachmentError:
        raise TicketInputError("附件文件不存在 / the attachment file is missing") from None
    if not answer.attachment_name.lower().endswith(".pdf") or not faxout.is_pdf_file(path):
        raise TicketInputError(f"只能传真PDF文件：{answer.attachment_name} / only PDF documents can be faxed")
    try:
        job = fax_service.send(number, path, actor=actor, purpose="material_fax")
    except faxout.FaxError as error:
        raise TicketInputError(f"传真未能发送 / the fax was not queued: {error}") from error
    mark_done(row.id, actor, clock)
    log.info("material request %s: answer %s faxed to %s as job %s", row.id, answer.id, number, job.id)
    return job

