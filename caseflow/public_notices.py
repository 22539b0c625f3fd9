"""Notices the hotline centre publishes on the public website (政府公告, P2 §2.8): written as a draft, sent
for review, published by a centre leader (or sent back), withdrawn when they no longer hold. One table of
moves; every move is the caller's to audit."""
from __future__ import annotations

from typing import Optional

from caseflow.models import PublicNotice, User
from core.clock import Clock

MAX_TITLE = 200
MAX_BODY = 20000
STATUSES = {"draft": ("草稿", "Draft"), "review": ("待审核", "In review"), "published": ("已发布", "Published"),
            "withdrawn": ("已撤回", "Withdrawn")}
# (status, move) -> (target, roles allowed). Centre staff write and send for review; a centre leader
# publishes, sends back or withdraws.
WRITERS = frozenset({"centre", "centre_leader"})
LEADERS = frozenset({"centre_leader"})
MOVES: dict[tuple[str, str], tuple[str, frozenset]] = {
    ("draft", "submit"): ("review", WRITERS),
    ("withdrawn", "submit"): ("review", WRITERS),
    ("review", "publish"): ("published", LEADERS),
    ("review", "send_back"): ("draft", LEADERS),
    ("published", "withdraw"): ("withdrawn", LEADERS),
}
EDITABLE = ("draft", "withdrawn")


class NoticeError(ValueError):
    """A refused change; the message says why (Chinese / English)."""


def _now(clock: Optional[Clock]):
    from caseflow.services import to_db

    return to_db((clock or Clock()).now())


def _may(actor: Optional[User], roles: frozenset) -> None:
    if actor is not None and not (actor.role_set & roles):
        raise NoticeError("您没有这项操作的权限 / you may not do this")


def _text(value, name: str, limit: int) -> str:
    text = str(value or "").replace("\r\n", "\n").strip()
    if not text:
        raise NoticeError(f"请填写{name} / {name} is required")
    if len(text) > limit:
        raise NoticeError(f"{name}最多{limit}字，现有{len(text)}字 / {name}: at most {limit} characters, it has {len(text)}")
    return text


def create(title, body, actor: Optional[User] = None, clock: Optional[Clock] = None) -> PublicNotice:
    """A new draft."""
    _may(actor, WRITERS)
    now = _now(clock)
    return PublicNotice.create(title=_text(title, "标题", MAX_TITLE), body=_text(body, "正文", MAX_BODY),
                               created_by=actor, created_at=now, updated_at=now)


def edit(notice: PublicNotice, title, body, actor: Optional[User] = None, clock: Optional[Clock] = None) -> PublicNotice:
    """Change a draft (or a withdrawn notice, which stays withdrawn until sent for review again)."""
    _may(actor, WRITERS)
    if notice.status not in EDITABLE:
        raise NoticeError("只有草稿或已撤回的公告可以修改 / only a draft or a withdrawn notice can be changed")
    notice.title, notice.body = _text(title, "标题", MAX_TITLE), _text(body, "正文", MAX_BODY)
    notice.updated_at = _now(clock)
    notice.save()
    return notice


def move(notice: PublicNotice, action: str, actor: Optional[User] = None, clock: Optional[Clock] = None) -> PublicNotice:
    """Apply one move of ``MOVES``; NoticeError when it does not apply to the notice's status or the actor."""
    target = MOVES.get((notice.status, action))
    if target is None:
        raise NoticeError(f"公告当前为“{STATUSES[notice.status][0]}”，不能执行该操作 / a {notice.status} notice "
                          f"cannot be {action}")
    status, roles = target
    _may(actor, roles)
    now = _now(clock)
    notice.status, notice.updated_at = status, now
    if action == "publish":
        notice.reviewed_by, notice.published_at, notice.withdrawn_at = actor, now, None
    elif action == "withdraw":
        notice.withdrawn_at = now
    elif action == "send_back":
        notice.reviewed_by = actor
    notice.save()
    return notice


def published(limit: int = 50) -> list[PublicNotice]:
    """Published notices, newest first."""
    return list(PublicNotice.select().where(PublicNotice.status == "published")
                .order_by(PublicNotice.published_at.desc(), PublicNotice.id.desc()).limit(limit))


def published_one(notice_id) -> Optional[PublicNotice]:
    """A published notice, or None (drafts and withdrawn ones look missing)."""
    try:
        notice_id = int(notice_id)
    except (TypeError, ValueError):
        return None
    return PublicNotice.get_or_none((PublicNotice.id == notice_id) & (PublicNotice.status == "published"))
