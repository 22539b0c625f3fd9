"""Who sees and who writes which ticket: the department subtree rule, the entry desk's own tickets, the
SQL form of the same rule for lists and full-text search, and the role check of each workflow event."""
from __future__ import annotations

import logging
from typing import Optional

import peewee

from caseflow import workflow as wf
from caseflow.models import Department, Ticket, User
from caseflow.roles import can
from caseflow.search import mark, Scope
from caseflow.values import NotFound, parse_number
from caseflow.workflow import PermissionDenied

log = logging.getLogger(__name__)


# ---- visibility and scope -------------------------------------------------------------------------
def _in_subtree(dept: Optional[Department], root: Optional[Department]) -> bool:
    return dept is not None and root is not None and dept.path.startswith(root.path)


def may_view(actor: Optional[User], ticket: Ticket) -> bool:
    """True if ``actor`` may see ``ticket``: everything with ticket.view_all, else what they recorded, the
    entry desk's queue (entry.desk: machine-made tickets still recorded) and their department's subtree.

    The one check for every page that loads a ticket (get_ticket_for); lists use visible_tickets, the
    full-text search _visibility_sql: the same rule."""
    if actor is None or not actor.active:
        return False
    if can(actor, "ticket.view_all") or ticket.created_by_id == actor.id:
        return True  # the person who recorded a ticket can always find it again
    if _in_entry_queue(actor, ticket):
        return True
    root = _scope_root(actor)
    if root is None:
        return False
    for held in (ticket.department if ticket.department_id else None,
                 ticket.upper_department if ticket.upper_department_id else None):
        if _in_subtree(held, root):
            return True
    return False


WRITE_REFUSED = ("您只能查看该工单，不能补充备注或附件（仅承办单位、热线中心和登记人可以）/ "
                 "you may view this ticket but not add notes or files to it (only the handling department, "
                 "the centre and whoever recorded it may)")


def _scope_root(actor: User) -> Optional[Department]:
    """The department whose subtree's tickets ``actor`` sees: only for those who work tickets in departments
    (ticket.handle). The centre is every department's root: a clerk or agent of the centre must not see
    every ticket through it (their roles' ticket.view_all decides that)."""
    if not actor.department_id or not can(actor, "ticket.handle"):
        return None
    return actor.department


def _in_entry_queue(actor: User, ticket: Ticket) -> bool:
    """The data-entry desk completes machine-made tickets (IVR, fax, e-mail: no recording user) before
    dispatch; once dispatched they leave the desk."""
    return ticket.created_by_id is None and ticket.status == wf.RECORDED and can(actor, "entry.desk")


def may_write(actor: Optional[User], ticket: Ticket) -> bool:
    """True if ``actor`` may add notes, files and faxes to ``ticket`` (viewing alone is not enough).

    Allowed: roles holding ticket.annotate (the centre by default; the roles table decides for the others,
    e.g. team leads), whoever recorded the ticket (the entry desk, the agent who took the call), and the
    handling department's users (and the unit that sub-dispatched it). Leaders and other agents only look.
    """
    if actor is None or not actor.active:
        return False
    if can(actor, "ticket.annotate"):
        return True
    if ticket.created_by_id is not None and ticket.created_by_id == actor.id and can(actor, "ticket.create"):
        return True
    if not (can(actor, "ticket.handle") or can(actor, "ticket.reply")):
        return False
    root = actor.department if actor.department_id else None
    return any(_in_subtree(held, root) for held in (
        ticket.department if ticket.department_id else None,
        ticket.upper_department if ticket.upper_department_id else None))


def require_write(actor: Optional[User], ticket: Ticket) -> None:
    """Raise NotFound when ``actor`` may not even see ``ticket``, PermissionDenied when they may only look."""
    if not may_view(actor, ticket):
        raise NotFound("没有找到该工单 / no such ticket")
    if not may_write(actor, ticket):
        raise PermissionDenied(WRITE_REFUSED)


# Columns for lists and searches: everything but the bulky index text.
LIST_FIELDS = [f for f in Ticket._meta.sorted_fields if f.name != "search_text"]


def _with_department(query):
    """Join the holding department so lists show its name without a query per row."""
    return query.select_extend(Department).join(
        Department, peewee.JOIN.LEFT_OUTER, on=(Ticket.department == Department.id), attr="department")


def _visibility_sql(actor: Optional[User]) -> tuple[str, tuple]:
    """The visibility rule as SQL on the ticket table aliased ``t`` (for the full-text candidates)."""
    if actor is not None and actor.active and can(actor, "ticket.view_all"):
        return "", ()
    if actor is None or not actor.active:
        return "1 = 0", ()
    own, params = "t.created_by_id = %s", (actor.id,)
    if can(actor, "entry.desk"):
        own, params = (f"({own} OR (t.created_by_id IS NULL AND t.status = %s))", params + (wf.RECORDED,))
    root = _scope_root(actor)
    if root is None:
        return own, params
    sub = "SELECT d.id FROM department d WHERE d.path LIKE %s"
    prefix = root.path + "%"  # paths are digits and slashes only: nothing to escape
    return (f"(t.department_id IN ({sub}) OR t.upper_department_id IN ({sub}) OR {own})",
            (prefix, prefix) + params)


def _visibility_scope(actor: Optional[User]) -> Scope | str:
    """The visibility rule over the full-text index's marker lexemes (caseflow.search.document, Scope): the same
    terms as _visibility_sql, for PostgreSQL's GIN to apply itself. "" means everything."""
    if actor is not None and actor.active and can(actor, "ticket.view_all"):
        return ""
    if actor is None or not actor.active:
        return Scope(mark("c", -1))  # nobody records as -1: nothing matches
    terms = [mark("c", actor.id)]
    if can(actor, "entry.desk"):
        terms.append(f"({mark('c', 0)} & {mark('s', wf.RECORDED)})")
    root = _scope_root(actor)
    return Scope(" | ".join(terms), tuple(subtree_department_ids(root)) if root is not None else ())


def visible_tickets(actor: Optional[User]):
    """A query of the tickets ``actor`` may see (subtree for department users)."""
    if actor is None or not actor.active:
        return Ticket.select(*LIST_FIELDS).where(Ticket.id < 0)
    if can(actor, "ticket.view_all"):
        return Ticket.select(*LIST_FIELDS)
    own = Ticket.created_by == actor
    if can(actor, "entry.desk"):
        own = own | (Ticket.created_by.is_null() & (Ticket.status == wf.RECORDED))
    root = _scope_root(actor)
    if root is None:
        return Ticket.select(*LIST_FIELDS).where(own)
    return Ticket.select(*LIST_FIELDS).where(in_department_subtree(root) | own)


def subtree_department_ids(department: Department) -> list[int]:
    """Ids of ``department`` and every department below it (its materialised path's prefix), ascending."""
    # paths are digits and slashes only: nothing in the prefix for LIKE to read as a wildcard
    return [i for (i,) in Department.select(Department.id).where(Department.path.startswith(department.path))
            .order_by(Department.id).tuples()]


# The department workbench's order: overdue first, then by deadline (none last), then by id; written so that
# both databases read it from the ``ticket_workbench_held`` index as it stands (an index cannot say NULLS LAST on
# SQLite).
WORKBENCH_ORDER = (Ticket.overdue.desc(), Ticket.deadline.is_null(), Ticket.deadline, Ticket.id)


def in_department_subtree(department: Department):
    """The condition: a ticket handled by ``department`` or a department below it, or handed down by one."""
    sub = Department.select(Department.id).where(Department.path.startswith(department.path))
    return Ticket.department.in_(sub) | Ticket.upper_department.in_(sub)


def get_ticket_for(actor: Optional[User], ref) -> Ticket:
    """Load a ticket by id or 8-digit number for ``actor``; NotFound if missing or not theirs."""
    ticket = None
    if isinstance(ref, Ticket):
        ticket = Ticket.get_or_none(Ticket.id == ref.id)
    elif isinstance(ref, int):
        ticket = Ticket.get_or_none(Ticket.id == ref)
    else:
        ticket = Ticket.get_or_none(Ticket.number == parse_number(ref))
    if ticket is None or not may_view(actor, ticket):
        raise NotFound("没有找到该工单 / no such ticket")
    return ticket


def _authorise(actor: Optional[User], ticket: Ticket, rule: wf.Rule, event: str) -> None:
    if actor is None or not actor.active:
        raise PermissionDenied("请先登录 / not signed in")
    if not can(actor, rule.permission):
        raise PermissionDenied(f"您没有“{wf.label(wf.EVENT_LABELS, event)}”的权限 / "
                               f"your roles do not allow {event}")
    if rule.dept_scope or not can(actor, "ticket.view_all"):
        root = actor.department if actor.department_id else None
        held = ticket.department if ticket.department_id else None
        if not _in_subtree(held, root):
            # The upper unit that sub-dispatched may still act for a ticket its sub-unit holds.
            upper = ticket.upper_department if ticket.upper_department_id else None
            if not (_in_subtree(upper, root) and not rule.dept_scope):
                raise PermissionDenied("该工单不在本单位办理范围内 / the ticket is not within your department")


def available_events(actor: Optional[User], ticket: Ticket) -> list[str]:
    """Events this actor may attempt on this ticket now (table, permission and scope; guards not run)."""
    result = []
    for event in wf.allowed_events(ticket.status):
        rule = wf.TRANSITIONS[(ticket.status, event)]
        try:
            _authorise(actor, ticket, rule, event)
        except PermissionDenied:
            continue
        result.append(event)
    return result
