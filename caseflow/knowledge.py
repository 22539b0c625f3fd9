"""Knowledge base (P5 §3.7.2): items with several answers, review, view counts and ranked Chinese search."""
from __future__ import annotations

import logging
from typing import Optional

from caseflow import search
from caseflow.models import Category, KnowledgeAnswer, KnowledgeItem, User
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
    text = (value or "").strip()
    if required and not text:
        raise KnowledgeError(f"{name}不能为空 / {name} must not be empty")
    if len(text) > limit:
        raise KnowledgeError(f"{name}超过{limit}字 / {name} longer than {limit} characters")
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
                                    remarks=_text(remarks, "备注", 2000, required=False), review_state=review_state,
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
        item.remarks = _text(fields["remarks"], "备注", 2000, required=False)
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
               attachment: Optional[dict] = None, clock: Optional[Clock] = None) -> KnowledgeAnswer:
    """Add one more answer to an item; ``attachment`` is a dict from caseflow.attachments.store_file."""
    _need(actor, "kb.edit")
    clock = clock or Clock()
    attachment = attachment or {}
    return KnowledgeAnswer.create(
        item=item, content=_text(content, "答案 answer", MAX_CONTENT), remarks=_text(remarks, "备注", 2000, False),
        attachment_name=attachment.get("filename", ""), attachment_path=attachment.get("path", ""),
        attachment_size=attachment.get("size", 0), attachment_sha256=attachment.get("sha256", ""),
        created_at=_to_db(clock))


def review(obj, state: str, actor: Optional[User] = None, remarks: str | None = None):
    """Set the review state of an item or an answer."""
    if actor is not None and not can(actor, "kb.review"):
        raise PermissionDenied("您没有审核知识的权限 / you may not review knowledge")
    if state not in REVIEW_STATES:
        raise KnowledgeError(f"unknown review state {state!r}")
    obj.review_state = state
    if remarks is not None:
        obj.remarks = _text(remarks, "备注", 2000, False)
    obj.save()
    return obj


def record_view(item: KnowledgeItem, clock: Optional[Clock] = None, answer: Optional[KnowledgeAnswer] = None) -> None:
    """Count a view (atomic increment, so concurrent readers are not lost)."""
    clock = clock or Clock()
    KnowledgeItem.update(views=KnowledgeItem.views + 1, last_viewed_at=_to_db(clock)).where(
        KnowledgeItem.id == item.id).execute()
    if answer is not None:
        KnowledgeAnswer.update(views=KnowledgeAnswer.views + 1).where(KnowledgeAnswer.id == answer.id).execute()


def search_items(query: str, limit: int = 20, approved_only: bool = False,
                 category: Optional[Category] = None) -> list[tuple[KnowledgeItem, float]]:
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
    rank = search.scorer(query, grams)
    # Score plain tuples (title counts twice, as in the index), then load full rows for the page only.
    scored = [(rank(set(search.index_grams(f"{title} {title} {content}")), f"{title} {content}"), views, item_id)
              for item_id, title, content, views in q.tuples()]
    best = sorted((row for row in scored if row[0] > 0), key=lambda row: (-row[0], -row[1], row[2]))[:limit]
    if not best:
        return []
    fields = [f for f in KnowledgeItem._meta.sorted_fields if f.name != "search_text"]
    items = {i.id: i for i in KnowledgeItem.select(*fields).where(KnowledgeItem.id.in_([r[2] for r in best]))}
    return [(items[item_id], value) for value, _views, item_id in best if item_id in items]
