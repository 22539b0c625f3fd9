"""Finding tickets: the combined search of the ticket list (number, phone, text, dates, status, type,
department, category) within what the actor may see."""
from __future__ import annotations

import datetime as dt
import logging

import peewee

from caseflow import search, workflow as wf
from caseflow.models import Category, Department, Ticket, User
from caseflow.org import category_subtree_ids
from caseflow.values import _choice, _clean, _resolve, clean_phone, parse_number, TICKET_TYPES, TicketInputError, to_db
from caseflow.visibility import _visibility_scope, _visibility_sql, _with_department, LIST_FIELDS, visible_tickets
from core.db import database

log = logging.getLogger(__name__)


# ---- search --------------------------------------------------------------------------------------
SEARCH_FILTERS = ("number", "phone", "text", "date_from", "date_to", "status", "type", "department", "category")


def search_tickets(actor: User, *, number: str = "", phone: str = "", text: str = "", date_from=None,
                   date_to=None, status: str = "", department=None, type: str = "", category=None,
                   limit: int = 100) -> list[Ticket]:
    """Tickets the actor may see matching every given criterion (the keys of SEARCH_FILTERS); text is
    ranked full-text search; a category includes the categories below it (P2 §3.2.7 按投诉类别)."""
    query = visible_tickets(actor)
    if category not in (None, ""):
        query = query.where(Ticket.category.in_(category_subtree_ids(_resolve(Category, category, "category"))))
    if number:
        query = query.where(Ticket.number == parse_number(number))
    if phone:
        query = query.where(Ticket.citizen_phone == clean_phone(phone))
    if status:
        query = query.where(Ticket.status == _choice(status, wf.STATUS_LABELS, "status"))
    if type:
        query = query.where(Ticket.type == _choice(type, TICKET_TYPES, "type"))
    if department not in (None, ""):
        dept = _resolve(Department, department, "department")
        sub = Department.select(Department.id).where(Department.path.startswith(dept.path))
        query = query.where(Ticket.department.in_(sub))
    if date_from:
        query = query.where(Ticket.created_at >= _as_day_start(date_from))
    if date_to:
        query = query.where(Ticket.created_at < _as_day_start(date_to) + dt.timedelta(days=1))
    text = _clean(text, "检索词 query", 200)
    if text:
        restrict, params = _visibility_sql(actor)
        ids, grams = search.find_ids("ticket", text, order="recent", restrict_sql=restrict,
                                     restrict_params=params, scope=_visibility_scope(actor))
        if not ids:
            return []
        # Score on plain tuples (cheap), then build full rows only for the page returned. The ids are the
        # database's own integers, written into the statement.
        # Read through the driver's cursor: the four columns are text and integers as stored, and peewee's
        # conversion of each value cost more than the statement (300 rows a search).
        sql, params = query.select(Ticket.id, Ticket.title, Ticket.content, Ticket.citizen_address).where(
            Ticket.id.in_(_id_list(ids))).sql()
        rows = database.execute_sql(sql, params).fetchall()
        rank = search.text_scorer(text, grams)
        scored = [(rank(title, content, address), tid) for tid, title, content, address in rows]
        best = sorted((pair for pair in scored if pair[0] > 0), key=lambda pair: (-pair[0], -pair[1]))[:limit]
        if not best:
            return []
        by_id = {t.id: t for t in _with_department(Ticket.select(*LIST_FIELDS))
                 .where(Ticket.id.in_(_id_list(tid for _s, tid in best)))}
        return [by_id[tid] for _s, tid in best if tid in by_id]
    return list(query.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit))


def _id_list(ids):
    """``(1,2,3)`` as SQL for ``IN``: integers only (peewee's parameter per value cost more than the query)."""
    return peewee.SQL("(" + ",".join(str(int(i)) for i in ids) + ")")


def _as_day_start(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return to_db(value)
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise TicketInputError(f"日期格式应为YYYY-MM-DD / dates are YYYY-MM-DD, got {value[:20]!r}") from None
    return dt.datetime.combine(value, dt.time())
