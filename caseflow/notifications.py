"""Notices on people's and departments' desks: writing one, the recipients (a role, the centre, a ticket's
holder), and reading and marking them."""
from __future__ import annotations

import logging
from typing import Optional

from caseflow import workflow as wf
from caseflow.models import Department, Notification, Ticket, User
from caseflow.values import to_db
from core.clock import Clock

log = logging.getLogger(__name__)


# ---- notifications after an event ------------------------------------------------------------------
def notify(text: str, *, user: Optional[User] = None, department: Optional[Department] = None,
           ticket: Optional[Ticket] = None, kind: str = "info", clock: Optional[Clock] = None) -> Notification:
    """Leave a message on a person's or a department's desk."""
    if user is None and department is None:
        raise ValueError("a notification needs a user or a department")
    at = to_db((clock or Clock()).now())
    return Notification.create(user=user, department=department, ticket=ticket, kind=kind, text=text[:500],
                               created_at=at)


def centre_department() -> Optional[Department]:
    """The level-1 department (the hotline centre)."""
    return Department.select().where(Department.level == 1).order_by(Department.id).first()


def users_with_role(role: str) -> list[User]:
    """Active users holding ``role``."""
    return [u for u in User.select().where(User.active & User.roles.contains(role)) if role in u.role_set]


def _holder_notice(t: Ticket, text: str, kind: str, clock: Clock) -> None:
    if t.handler_id:
        notify(text, user=t.handler, ticket=t, kind=kind, clock=clock)
    if t.department_id:
        notify(text, department=t.department, ticket=t, kind=kind, clock=clock)
    elif t.status in (wf.RECORDED, wf.DEFERRED, wf.RETURNED, wf.ANSWERED, wf.APPROVED, wf.REPLIED):
        centre = centre_department()
        if centre is not None:
            notify(text, department=centre, ticket=t, kind=kind, clock=clock)


# ---- notifications on desks ------------------------------------------------------------------------
def notifications_for(user: User, unread_only: bool = True, limit: int = 50) -> list[Notification]:
    """Messages to the user or to their department (not to units below it)."""
    cond = Notification.user == user
    if user.department_id:
        cond = cond | (Notification.department == user.department_id)
    q = Notification.select().where(cond)
    if unread_only:
        q = q.where(~Notification.read)
    return list(q.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit))


def mark_read(user: User, notification_id: int) -> bool:
    """Mark one of the user's notifications read; False if it is not theirs."""
    cond = Notification.user == user
    if user.department_id:
        cond = cond | (Notification.department == user.department_id)
    return Notification.update(read=True).where((Notification.id == notification_id) & cond).execute() == 1
