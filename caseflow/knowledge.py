"""Knowledge base (P5 §3.7.2): items with several answers, review, view counts and last-viewed times,
answers edited, deleted (softly) and given a file, each change kept in ``KnowledgeHistory``, and ranked
Chinese search."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from caseflow import attachments, search
from caseflow.models import Attachment, Category, KnowledgeAnswer, KnowledgeHistory, KnowledgeItem, User
from caseflow.roles import can
from caseflow.workflow import PermissionDenied
from core.clock import Clock

log = logging.getLogger(__name__)

REVIEW_STATES = {"pending": ("待审核", "Pending"), "approved": ("已审核", "Approved"),
                 "rejected": ("未通过", "Rejected")}
MAX_TITLE = 200
MAX_CONTENT = 50000


class KnowledgeError(ValueError):
    """Bad knowledge-base input."""


def _to_db(clock: Clock):
    from caseflow.services import to_db

    return to_db(clock.now())


def _text(value, name: str, limit: int, required: bool = True) -> str:
    from caseflow.values import empty_error, length_error

    text = (value or "").strip()
    if required and not text:
        raise KnowledgeError(empty_error(name))
    if len(text) > limit:
        raise KnowledgeError(length_error(name, limit, len(text)))
    return text


def _need(actor: Optional[User], permission: str) -> None:
    if actor is not None and not can(actor, permission):
        raise PermissionDenied("您没有维护知识库的权限 / you may not change the knowledge base")


def create_item(title: str, content: str, category: Optional[Category] = None, publisher: Optional[User] = None,
                remarks: str = "", review_state: str = "pending", clock: Optional[Clock] = None) -> KnowledgeItem:
    """Add an item (pending review unless stated); it is searchable at once."""
    _need(publisher, "kb.edit")
    clock = clock or Clock()
    title = _text(title, "标题 title", MAX_TITLE)
    content = _text(content, "内容 content", MAX_CONTENT, required=False)
    if review_state not in REVIEW_STATES:
        raise KnowledgeError(f"unknown review state {review_state!r}")
    text = search.index_text(title, title, content)  # title counted twice: a title hit ranks higher
    with KnowledgeItem._meta.database.atomic():
        item = KnowledgeItem.create(title=title, content=content, category=category, publisher=publisher,
                                    remarks=_text(remarks, "备注 remarks", 2000, required=False),
                                    review_state=review_state,
                                    published_at=_to_db(clock), search_text=text)
        search.reindex("knowledge_item", item.id, None, text)
    return item


def update_item(item: KnowledgeItem, actor: Optional[User] = None, **fields) -> KnowledgeItem:
    """Change title/content/category/remarks; the index follows, and the item goes back to review."""
    _need(actor, "kb.edit")
    old = item.search_text
    if "title" in fields:
        item.title = _text(fields["title"], "标题 title", MAX_TITLE)
    if "content" in fields:
        item.content = _text(fields["content"], "内容 content", MAX_CONTENT, required=False)
    if "category" in fields:
        item.category = fields["category"]
    if "remarks" in fields:
        item.remarks = _text(fields["remarks"], "备注 remarks", 2000, required=False)
    if {"title", "content"} & set(fields):
        item.review_state = "pending"
    item.search_text = search.index_text(item.title, item.title, item.content)
    with KnowledgeItem._meta.database.atomic():
        item.save()
        if item.search_text != old:
            search.reindex("knowledge_item", item.id, old, item.search_text)
    return item


def delete_item(item: KnowledgeItem, actor: Optional[User] = None) -> None:
    """Remove an item and its answers."""
    _need(actor, "kb.edit")
    with KnowledgeItem._meta.database.atomic():
        search.unindex("knowledge_item", item.id, item.search_text)
        item.delete_instance(recursive=True)


def add_answer(item: KnowledgeItem, content: str, actor: Optional[User] = None, remarks: str = "",
               attachment: Optional[dict] = None, clock: Optional[Clock] = None,
               file: Optional[tuple] = None) -> KnowledgeAnswer:
    """Add one more answer to an item; ``attachment`` is a dict from store_answer_file, or ``file`` a
    (root, data, filename) stored and checked here first, so a refused file adds no answer."""
    _need(actor, "kb.edit")
    clock = clock or Clock()
    content = _text(content, "答案 answer", MAX_CONTENT)
    remarks = _text(remarks, "备注 remarks", 2000, False)
    if file is not None:
        attachment = store_answer_file(*file, clock=clock)
    attachment = attachment or {}
    return KnowledgeAnswer.create(
        item=item, content=content, remarks=remarks,
        attachment_name=attachment.get("filename", ""), attachment_path=attachment.get("path", ""),
        attachment_size=attachment.get("size", 0), attachment_sha256=attachment.get("sha256", ""),
        attachment_type=attachment.get("content_type", ""), created_at=_to_db(clock))


def review(obj, state: str, actor: Optional[User] = None, remarks: str | None = None):
    """Set the review state of an item or an answer."""
    if actor is not None and not can(actor, "kb.review"):
        raise PermissionDenied("您没有审核知识的权限 / you may not review knowledge")
    if state not in REVIEW_STATES:
        raise KnowledgeError(f"unknown review state {state!r}")
    if isinstance(obj, KnowledgeAnswer) and obj.deleted_at is not None:
        raise KnowledgeError("该答案已删除 / the answer was deleted")
    before = obj.review_state
    obj.review_state = state
    if remarks is not None:
        obj.remarks = _text(remarks, "备注 remarks", 2000, False)
    with KnowledgeItem._meta.database.atomic():
        obj.save()
        if isinstance(obj, KnowledgeAnswer):
            _log(obj, actor, "review", before, state, Clock())
    return obj


def record_view(item: KnowledgeItem, clock: Optional[Clock] = None, answer: Optional[KnowledgeAnswer] = None,
                answers: tuple = ()) -> None:
    """Count a view of the item and of the answers shown with it (atomic increments, so concurrent readers
    are not lost); each gets the time as its last-viewed time."""
    clock = clock or Clock()
    now = _to_db(clock)
    KnowledgeItem.update(views=KnowledgeItem.views + 1, last_viewed_at=now).where(
        KnowledgeItem.id == item.id).execute()
    ids = [a.id for a in ((answer,) if answer is not None else ()) + tuple(answers)]
    if ids:
        KnowledgeAnswer.update(views=KnowledgeAnswer.views + 1, last_viewed_at=now).where(
            KnowledgeAnswer.id.in_(ids)).execute()


# ---- answers: what readers see, and their upkeep --------------------------------------------------
# Files an answer may carry: extension -> (kind read from the content, type stored and served).
ANSWER_FILE_TYPES = {
    ".pdf": ("application/pdf", "application/pdf"), ".png": ("image/png", "image/png"),
    ".jpg": ("image/jpeg", "image/jpeg"), ".jpeg": ("image/jpeg", "image/jpeg"), ".gif": ("image/gif", "image/gif"),
    ".txt": ("text/plain", "text/plain; charset=utf-8"),
    ".doc": ("application/x-ole-storage", "application/msword"),
    ".xls": ("application/x-ole-storage", "application/vnd.ms-excel"),
    ".docx": ("application/zip", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ".xlsx": ("application/zip", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}
MAX_ANSWER_FILE = 20 * 1024 * 1024


def may_see_unreviewed(actor: Optional[User]) -> bool:
    """Editors and reviewers see answers waiting for review; everyone else (agents) only reviewed ones."""
    return actor is not None and (can(actor, "kb.edit") or can(actor, "kb.review"))


def answers_for(item: KnowledgeItem, actor: Optional[User], approved_only: bool = False) -> list[KnowledgeAnswer]:
    """The item's answers ``actor`` may read, oldest first: never deleted ones; only reviewed ones for
    readers who are not editors or reviewers, or when ``approved_only``."""
    query = KnowledgeAnswer.select().where((KnowledgeAnswer.item == item) & KnowledgeAnswer.deleted_at.is_null())
    if approved_only or not may_see_unreviewed(actor):
        query = query.where(KnowledgeAnswer.review_state == "approved")
    return list(query.order_by(KnowledgeAnswer.id))


def answer_for(item: KnowledgeItem, answer_id, actor: Optional[User]) -> KnowledgeAnswer:
    """One answer of ``item`` that ``actor`` may read; KnowledgeError("no such answer") otherwise."""
    try:
        answer_id = int(answer_id)
    except (TypeError, ValueError):
        answer_id = -1
    for answer in answers_for(item, actor):
        if answer.id == answer_id:
            return answer
    raise KnowledgeError("没有找到该答案 / no such answer")


def _log(answer: KnowledgeAnswer, actor, action: str, before: str, note: str, clock: Clock) -> None:
    KnowledgeHistory.create(item=answer.item_id, answer=answer, actor=actor, action=action, before=before,
                            note=note[:2000], at=_to_db(clock))


def _fresh(answer: KnowledgeAnswer) -> KnowledgeAnswer:
    row = KnowledgeAnswer.get_or_none(KnowledgeAnswer.id == answer.id)
    if row is None or row.deleted_at is not None:
        raise KnowledgeError("该答案已删除 / the answer was deleted")
    return row


def edit_answer(answer: KnowledgeAnswer, actor: Optional[User], content: Optional[str] = None,
                remarks: Optional[str] = None, clock: Optional[Clock] = None) -> KnowledgeAnswer:
    """Change an answer's text or remarks. A changed text goes back to review (agents stop seeing it until
    it is reviewed again); the history keeps the text as it was."""
    _need(actor, "kb.edit")
    clock = clock or Clock()
    with KnowledgeAnswer._meta.database.atomic():
        row = _fresh(answer)
        before = row.content
        changed = []
        if content is not None:
            content = _text(content, "答案 answer", MAX_CONTENT)
            if content != row.content:
                row.content, row.review_state = content, "pending"
                changed.append("content")
        if remarks is not None:
            remarks = _text(remarks, "备注 remarks", 2000, False)
            if remarks != row.remarks:
                row.remarks = remarks
                changed.append("remarks")
        if not changed:
            return row
        row.updated_at, row.updated_by = _to_db(clock), actor
        row.save()
        _log(row, actor, "edit", before, "修改 / changed: " + ", ".join(changed), clock)
    log.info("knowledge answer %s edited (%s)", row.id, ", ".join(changed))
    return row


def delete_answer(answer: KnowledgeAnswer, actor: Optional[User], reason: str = "",
                  clock: Optional[Clock] = None) -> KnowledgeAnswer:
    """Delete an answer softly: hidden from every list, search and download, its text and file kept (it may
    have been read or faxed to citizens); the history says who and why."""
    _need(actor, "kb.edit")
    clock = clock or Clock()
    reason = _text(reason, "理由 reason", 2000, required=False)
    with KnowledgeAnswer._meta.database.atomic():
        row = _fresh(answer)
        row.deleted_at, row.deleted_by = _to_db(clock), actor
        row.save()
        _log(row, actor, "delete", row.content, reason, clock)
    log.info("knowledge answer %s deleted", row.id)
    return row


def store_answer_file(root: Path, data, filename: str, clock: Optional[Clock] = None) -> dict:
    """Store an answer's file like a ticket attachment (size, sha256) and check its type by content:
    store_file's dict with ``content_type`` the checked type; a refused file leaves nothing behind."""
    info = attachments.store_file(root, data, filename, clock, max_size=MAX_ANSWER_FILE)
    stored = Path(root) / info["path"]
    try:
        info["content_type"] = attachments.checked_type(stored, info["filename"], ANSWER_FILE_TYPES)
    except BaseException:
        stored.unlink(missing_ok=True)
        raise
    return info


def attach_file(answer: KnowledgeAnswer, actor: Optional[User], root: Path, data, filename: str,
                clock: Optional[Clock] = None) -> KnowledgeAnswer:
    """Give an answer a file (replacing its previous one, which stays on disk and in the history), stored
    like ticket attachments with size and sha256; its type is read from the content and must agree with
    its name. The answer goes back to review."""
    _need(actor, "kb.edit")
    clock = clock or Clock()
    _fresh(answer)
    info = store_answer_file(root, data, filename, clock)
    kind, stored = info["content_type"], Path(root) / info["path"]
    try:
        with KnowledgeAnswer._meta.database.atomic():
            row = _fresh(answer)
            before = f"{row.attachment_name} {row.attachment_path} {row.attachment_sha256}".strip()
            row.attachment_name, row.attachment_path = info["filename"], info["path"]
            row.attachment_size, row.attachment_sha256, row.attachment_type = info["size"], info["sha256"], kind
            row.review_state, row.updated_at, row.updated_by = "pending", _to_db(clock), actor
            row.save()
            _log(row, actor, "attach", before, f"{info['filename']} ({info['size']} B, {kind})", clock)
    except BaseException:
        stored.unlink(missing_ok=True)  # a refused file leaves nothing behind
        raise
    return row


def answer_file(answer: KnowledgeAnswer, root: Path, clock: Optional[Clock] = None) -> tuple[Path, str]:
    """(path, content type) of a readable answer's file; counts a view of the answer. KnowledgeError when
    it has none or the file is missing."""
    if not answer.attachment_path:
        raise KnowledgeError("该答案没有附件 / the answer has no file")
    try:
        path = attachments.resolve(root, Attachment(path=answer.attachment_path))
    except attachments.AttachmentError:
        raise KnowledgeError("附件文件不存在 / the file is missing") from None
    if not path.is_file():
        raise KnowledgeError("附件文件不存在 / the file is missing")
    KnowledgeAnswer.update(views=KnowledgeAnswer.views + 1, last_viewed_at=_to_db(clock or Clock())).where(
        KnowledgeAnswer.id == answer.id).execute()
    return path, answer.attachment_type or "application/octet-stream"


def history(item: KnowledgeItem) -> list[KnowledgeHistory]:
    """Changes to the item's answers, oldest first."""
    return list(KnowledgeHistory.select().where(KnowledgeHistory.item == item).order_by(KnowledgeHistory.id))


def search_items(query: str, limit: int = 20, approved_only: bool = False,
                 category: Optional[Category] = None, public_only: bool = False) -> list[tuple[KnowledgeItem, float]]:
    """Ranked (item, score) pairs for a Chinese or mixed query: 噪声 扰民 finds 噪音扰民."""
    query = (query or "").strip()[:200]
    # Newest first among candidates: the engines need not rank every match; score() orders the page.
    ids, grams = search.find_ids("knowledge_item", query, order="recent")
    if not ids:
        return []
    q = (KnowledgeItem.select(KnowledgeItem.id, KnowledgeItem.title, KnowledgeItem.content, KnowledgeItem.views)
         .where(KnowledgeItem.id.in_(ids)))
    if approved_only:
        q = q.where(KnowledgeItem.review_state == "approved")
    if category is not None:
        q = q.where(KnowledgeItem.category == category)
    if public_only:
        q = q.where(KnowledgeItem.public & (KnowledgeItem.review_state == "approved"))
    rank = search.text_scorer(query, grams)
    # Score plain tuples from their text (the index's tokens, title twice, hold nothing more), then load full
    # rows for the page only.
    scored = [(rank(title, content), views, item_id) for item_id, title, content, views in q.tuples()]
    best = sorted((row for row in scored if row[0] > 0), key=lambda row: (-row[0], -row[1], row[2]))[:limit]
    if not best:
        return []
    fields = [f for f in KnowledgeItem._meta.sorted_fields if f.name != "search_text"]
    items = {i.id: i for i in KnowledgeItem.select(*fields).where(KnowledgeItem.id.in_([r[2] for r in best]))}
    return [(items[item_id], value) for value, _views, item_id in best if item_id in items]


# ------------------------------------------------------------------------------- the public website
def set_public(item: KnowledgeItem, public: bool, actor: Optional[User] = None) -> KnowledgeItem:
    """Mark an item for the public website (办事指南, 法律法规 ...) or take it off; it shows there only while
    it is reviewed as well."""
    _need(actor, "kb.edit")
    KnowledgeItem.update(public=bool(public)).where(KnowledgeItem.id == item.id).execute()
    item.public = bool(public)
    return item


def public_items(query: str = "", category: Optional[Category] = None, limit: int = 50) -> list[KnowledgeItem]:
    """Public, reviewed items: ranked by the same Chinese search as the desk's when there is a query, else
    newest first."""
    if (query or "").strip():
        return [item for item, _score in search_items(query, limit=limit, category=category, public_only=True)]
    fields = [f for f in KnowledgeItem._meta.sorted_fields if f.name != "search_text"]
    q = KnowledgeItem.select(*fields).where(KnowledgeItem.public & (KnowledgeItem.review_state == "approved"))
    if category is not None:
        q = q.where(KnowledgeItem.category == category)
    return list(q.order_by(KnowledgeItem.published_at.desc(), KnowledgeItem.id.desc()).limit(limit))


def public_item(item_id) -> Optional[KnowledgeItem]:
    """A public, reviewed item, or None (an internal item looks like a missing one)."""
    try:
        item_id = int(item_id)
    except (TypeError, ValueError):
        return None
    return KnowledgeItem.get_or_none((KnowledgeItem.id == item_id) & KnowledgeItem.public
                                     & (KnowledgeItem.review_state == "approved"))
