"""Citizens keyed by phone number: their profile, blacklist (骚扰 callers) and earlier tickets."""
from __future__ import annotations

import logging
from typing import Optional

import peewee

from caseflow.models import Citizen, Ticket, User
from caseflow.roles import can
from caseflow.transitions import _history
from caseflow.values import _clean, _db, clean_phone, NotFound, TicketInputError, to_db
from caseflow.visibility import may_view
from caseflow.workflow import PermissionDenied
from core.clock import Clock
from core.statements import insert_returning_id, select_first

log = logging.getLogger(__name__)


# ---- citizens -------------------------------------------------------------------------------------
def insert_unless_taken(row: peewee.Model, unique: peewee.Field) -> bool:
    """INSERT ``row`` (an unsaved instance, defaults filled) unless another row holds its value of the
    ``unique`` column (ON CONFLICT DO NOTHING: no savepoint, one statement); True and the id set when it was
    inserted. Any other constraint still raises. The statement's text is built once per shape
    (core.statements)."""
    return insert_returning_id(row, unique)


def citizen_profile(phone: str, name: str = "", address: str = "", email: str = "") -> Optional[Citizen]:
    """The citizen keyed by ``phone``, created on first contact; fills empty name/address from new data."""
    phone = clean_phone(phone)
    if not phone:
        return None
    citizen = known_citizen(phone, name, address, email)
    if citizen is None:
        created = first_contact(phone, name, address, email)
        if insert_unless_taken(created, Citizen.phone):
            return created
        citizen = known_citizen(phone, name, address, email)  # recorded meanwhile by another call
    return citizen


def known_citizen(phone: str, name: str = "", address: str = "", email: str = "") -> Optional[Citizen]:
    """The citizen keyed by the cleaned ``phone`` if there is one (its empty name, address and e-mail filled from
    the new data), else None: nothing inserted."""
    citizen = select_first(Citizen, "by phone", (phone, 1),
                           lambda: Citizen.select().where(Citizen.phone == phone).limit(1))
    if citizen is None:
        return None
    changed = False
    for field, value in (("name", name), ("address", address), ("email", email)):
        if value and not getattr(citizen, field):
            setattr(citizen, field, value)
            changed = True
    if changed:
        citizen.save()
    return citizen


def first_contact(phone: str, name: str = "", address: str = "", email: str = "") -> Citizen:
    """The unsaved profile of a number calling for the first time."""
    return Citizen(phone=phone, name=name or "", address=address or "", email=email or "")


def set_blacklist(phone: str, blacklisted: bool, reason: str = "", actor=None) -> Citizen:
    """Put a number on (or take it off) the blacklist of harassing callers (the IVR refuses blacklisted
    callers through ``is_blacklisted``, which reads the same Citizen flag). Adding needs a reason."""
    if actor is not None and not can(actor, "blacklist.edit"):
        raise PermissionDenied("您没有维护黑名单的权限 / you may not edit the blacklist")
    if blacklisted and not str(reason or "").strip():
        raise TicketInputError("请填写加入黑名单的原因 / give the reason for blacklisting the number")
    citizen = citizen_profile(phone)
    if citizen is None:
        raise TicketInputError("请填写电话号码 / a phone number is required")
    citizen.blacklisted = bool(blacklisted)
    citizen.blacklist_reason = _clean(reason, "原因 reason", 255)
    citizen.save()
    log.info("blacklist %s -> %s", citizen.phone, citizen.blacklisted)
    return citizen


def blacklist_caller(ticket: Ticket, actor: User, reason: str, clock: Optional[Clock] = None) -> Citizen:
    """Blacklist the citizen of a harassment ticket (type 骚扰) from the ticket page; a history row says so."""
    clock = clock or Clock()
    if not may_view(actor, ticket):
        raise NotFound("没有找到该工单 / no such ticket")
    if ticket.type != "harassment":
        raise TicketInputError("只有骚扰类工单可以从工单页加入黑名单 / only a harassment ticket blacklists its caller")
    if not ticket.citizen_phone:
        raise TicketInputError("该工单没有来电号码 / the ticket has no phone number")
    reason = _clean(reason, "原因 reason", 255) or f"骚扰工单 {ticket.number} / harassment ticket {ticket.number}"
    with _db().atomic():
        citizen = set_blacklist(ticket.citizen_phone, True, reason, actor=actor)
        _history(ticket, actor, "blacklist", ticket.status, ticket.status, reason, to_db(clock.now()))
    return citizen


def blacklist(limit: int = 500) -> list[Citizen]:
    """Blacklisted numbers, most recently listed first."""
    return list(Citizen.select().where(Citizen.blacklisted).order_by(Citizen.id.desc()).limit(limit))


def is_blacklisted(phone: str) -> bool:
    """True if the number is on the blacklist (used by the IVR and the agent desk)."""
    try:
        phone = clean_phone(phone)
    except TicketInputError:
        return False
    return Citizen.select().where((Citizen.phone == phone) & Citizen.blacklisted).exists()


def citizen_history(phone: str, limit: int = 20) -> list[Ticket]:
    """The citizen's earlier tickets, newest first (screen pop)."""
    phone = clean_phone(phone)
    if not phone:
        return []
    return list(Ticket.select().where(Ticket.citizen_phone == phone)
                .order_by(Ticket.created_at.desc()).limit(limit))
