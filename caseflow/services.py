"""Case-engine services: the only writers of ticket status (each change in ``db.atomic()`` with its
history row), ticket creation, queues, search, citizen profiles, notifications and status queries.

Every public function that acts for a person takes ``actor`` (a User) and enforces the role
permissions and the department subtree itself, so a view cannot forget to.
"""
from __future__ import annotations

import datetime as dt
import hmac
import logging
import re
import secrets
from typing import Iterable, Optional

import peewee

from caseflow import deadlines as dl
from caseflow import search
from caseflow import workflow as wf
from caseflow.models import (Category, Citizen, Department, Notification, Region, Responsibility, Ticket,
                             TicketCall, TicketHistory, User)
from caseflow.org import category_subtree_ids
from caseflow.roles import can
from caseflow.workflow import ConcurrentChange, PermissionDenied, WorkflowError
from core.calendar import load_calendar
from core.clock import Clock

from caseflow.values import (CHANNELS, MAX_CONTENT, MAX_TITLE, NUMBER_RE, NotFound, PHONE_RE, SYSTEM,
                             TICKET_TYPES, TicketInputError, URGENCIES, _choice, _clean, _db, _resolve,
                             clean_phone, from_db, generate_number, generate_pin, parse_number, to_db)  # noqa: F401

from caseflow.visibility import (LIST_FIELDS, WRITE_REFUSED, _authorise, _in_entry_queue, _in_subtree,
                                 _scope_root, _visibility_sql, _with_department, available_events,
                                 get_ticket_for, in_department_subtree, may_view, may_write, require_write,
                                 visible_tickets)  # noqa: F401

log = logging.getLogger(__name__)

REPLY_BY: dict[str, tuple[str, str]] = {
    "phone": ("电话", "Phone"), "sms": ("短信", "SMS"), "email": ("电子邮件", "E-mail"),
    "letter": ("书面", "Letter"), "web": ("网站查询", "On the website"), "none": ("无需答复", "No reply"),
}


# ---- citizens -------------------------------------------------------------------------------------
def citizen_profile(phone: str, name: str = "", address: str = "", email: str = "") -> Optional[Citizen]:
    """The citizen keyed by ``phone``, created on first contact; fills empty name/address from new data."""
    phone = clean_phone(phone)
    if not phone:
        return None
    citizen = Citizen.get_or_none(Citizen.phone == phone)
    if citizen is None:
        try:
            with _db().atomic():
                return Citizen.create(phone=phone, name=name or "", address=address or "", email=email or "")
        except peewee.IntegrityError:
            citizen = Citizen.get(Citizen.phone == phone)
    changed = False
    for field, value in (("name", name), ("address", address), ("email", email)):
        if value and not getattr(citizen, field):
            setattr(citizen, field, value)
            changed = True
    if changed:
        citizen.save()
    return citizen


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


# ---- creation -------------------------------------------------------------------------------------
def create_ticket(content: str, *, type: str = "consult", channel: str = "phone", citizen_phone: str = "",
                  citizen_name: str = "", anonymous: bool = False, citizen_address: str = "",
                  citizen_email: str = "", reply_by: str = "phone", title: str = "", category=None,
                  region=None, urgency: str = "normal", created_by: Optional[User] = None,
                  actor_label: str = "", call_uuid: Optional[str] = None, clock: Optional[Clock] = None,
                  note: str = "", reply: str = "") -> Ticket:
    """Record a new ticket in status ``recorded`` with a fresh acceptance number and query PIN.

    ``reply``: answered on the call (直接答复): the ticket is also answered by ``created_by``, in the same
    transaction (both are kept, or neither). HTML or script in any field is stored verbatim (templates
    escape on output).
    """
    clock = clock or Clock()
    if created_by is not None and not can(created_by, "ticket.create"):
        raise PermissionDenied("您没有登记工单的权限 / you may not record tickets")
    content = _clean(content, "内容 content", MAX_CONTENT, required=True)
    title = _clean(title, "标题 title", MAX_TITLE) or content.splitlines()[0][:40]
    type = _choice(type, TICKET_TYPES, "type")
    channel = _choice(channel, CHANNELS, "channel")
    urgency = _choice(urgency, URGENCIES, "urgency")
    reply_by = _choice(reply_by, REPLY_BY, "reply_by")
    phone = clean_phone(citizen_phone)
    name = _clean(citizen_name, "姓名 name", 64)
    address = _clean(citizen_address, "地址 address", 255)
    email = _clean(citizen_email, "邮箱 email", 255)
    category = _resolve(Category, category, "category")
    region = _resolve(Region, region, "region")
    now = to_db(clock.now())
    text = search.index_text(title, content, address)
    with _db().atomic():
        citizen = citizen_profile(phone, "" if anonymous else name, address, email) if phone else None
        ticket = None
        for _attempt in range(30):
            try:
                with _db().atomic():
                    ticket = Ticket.create(
                        number=generate_number(), type=type, channel=channel, urgency=urgency, title=title,
                        content=content, category=category, region=region, citizen=citizen,
                        citizen_name=name, citizen_phone=phone, citizen_address=address, citizen_email=email,
                        anonymous=bool(anonymous), reply_by=reply_by, query_pin=generate_pin(),
                        created_by=created_by, created_at=now, updated_at=now, search_text=text)
                break
            except peewee.IntegrityError:
                continue  # number collision: draw again
        if ticket is None:
            raise WorkflowError("无法分配受理号 / could not allocate an acceptance number", "number_space")
        search.reindex("ticket", ticket.id, None, text)
        _history(ticket, created_by, "create", "", wf.RECORDED, note or CHANNELS[channel][0], now,
                 label=actor_label or ("" if created_by else SYSTEM))
        if call_uuid:
            TicketCall.create(ticket=ticket, call_uuid=_clean(call_uuid, "call uuid", 64), at=now)
        if channel == "mailbox":
            # 市长信箱 (IVR message or website): the centre leaders' list, beside the centre's own queue.
            for leader in users_with_role("centre_leader"):
                notify(f"市长信箱 {ticket.number}：{ticket.title}", user=leader, ticket=ticket, kind="mailbox",
                       clock=clock)
        if reply.strip():
            ticket = transition(ticket, "answer", created_by, reply=reply.strip(), clock=clock)
    log.info("ticket %s created (%s/%s)", ticket.number, type, channel)
    return ticket


def edit_ticket(ticket: Ticket, actor: User, clock: Optional[Clock] = None, **fields) -> Ticket:
    """Correct a ticket's recorded data (centre, before it is closed); a history row lists what changed."""
    clock = clock or Clock()
    if not (can(actor, "ticket.dispatch") or (can(actor, "entry.desk") and ticket.status == wf.RECORDED)):
        raise PermissionDenied("您没有修改工单的权限 / you may not edit tickets")
    allowed = {"title", "content", "type", "urgency", "category", "region", "citizen_name", "citizen_address",
               "reply_by", "remind_at"}
    unknown = set(fields) - allowed
    if unknown:
        raise TicketInputError(f"不能修改字段 / cannot edit {', '.join(sorted(unknown))}")
    with _db().atomic():
        fresh = Ticket.get_by_id(ticket.id)
        if fresh.status in wf.FINAL_STATUSES:
            raise WorkflowError("已结束的工单不能修改 / a finished ticket cannot be edited")
        if fresh.version != ticket.version:
            raise ConcurrentChange()
        old_text = fresh.search_text
        changed = []
        for name, value in fields.items():
            if name == "content":
                value = _clean(value, "内容 content", MAX_CONTENT, required=True)
            elif name == "title":
                value = _clean(value, "标题 title", MAX_TITLE, required=True)
            elif name == "type":
                value = _choice(value, TICKET_TYPES, "type")
            elif name == "urgency":
                value = _choice(value, URGENCIES, "urgency")
            elif name == "reply_by":
                value = _choice(value, REPLY_BY, "reply_by")
            elif name in ("category", "region"):
                value = _resolve(Category if name == "category" else Region, value, name)
            elif name in ("citizen_name", "citizen_address"):
                value = _clean(value, name, 64 if name == "citizen_name" else 255)
            if getattr(fresh, name) != value:
                setattr(fresh, name, value)
                changed.append(name)
        if not changed:
            return fresh
        now = to_db(clock.now())
        fresh.search_text = search.index_text(fresh.title, fresh.content, fresh.citizen_address)
        fresh.updated_at = now
        rows = (Ticket.update({f: getattr(fresh, f.name) for f in fresh.dirty_fields} | {Ticket.version: fresh.version + 1})
                .where((Ticket.id == fresh.id) & (Ticket.version == fresh.version)).execute())
        if rows != 1:
            raise ConcurrentChange()
        fresh.version += 1
        if fresh.search_text != old_text:
            search.reindex("ticket", fresh.id, old_text, fresh.search_text)
        _history(fresh, actor, "edit", fresh.status, fresh.status, "修改 / changed: " + ", ".join(changed), now)
    return fresh


def add_note(ticket: Ticket, text: str, actor: Optional[User] = None, actor_label: str = "",
             clock: Optional[Clock] = None) -> TicketHistory:
    """Append a note to the ticket's timeline (no status change); only those who may write to it (may_write)."""
    clock = clock or Clock()
    text = _clean(text, "备注 note", 4000, required=True)
    if actor is not None:
        require_write(actor, ticket)
    return _history(ticket, actor, "note", ticket.status, ticket.status, text, to_db(clock.now()),
                    label=actor_label or ("" if actor else SYSTEM))


def link_call(ticket: Ticket, call_uuid: str, purpose: str = "intake", clock: Optional[Clock] = None) -> TicketCall:
    """Link a call (its FreeSWITCH uuid) to a ticket: the intake call, a call-back, a follow-up."""
    clock = clock or Clock()
    call_uuid = _clean(call_uuid, "call uuid", 64, required=True)
    now = to_db(clock.now())
    with _db().atomic():
        row = TicketCall.create(ticket=ticket, call_uuid=call_uuid, purpose=purpose[:16], at=now)
        _history(ticket, None, "link_call", ticket.status, ticket.status, f"{purpose}: {call_uuid}", now,
                 label=SYSTEM)
    return row


# ---- the one writer of status ---------------------------------------------------------------------
def transition(ticket, event: str, actor: Optional[User], note: str = "", *, expected_version: Optional[int] = None,
               clock: Optional[Clock] = None, system: bool = False, **params) -> Ticket:
    """Perform workflow ``event`` on ``ticket`` as ``actor``; returns the updated ticket.

    ``expected_version`` is the version the person saw (a form's hidden field); without it the passed
    ticket's own version is used. A stale version raises ConcurrentChange, a refused transition
    WorkflowError, a missing right PermissionDenied. ``system=True`` (jobs) acts without an actor.
    """
    clock = clock or Clock()
    if actor is None and not system:
        raise PermissionDenied("请先登录 / not signed in")
    note = _clean(note, "备注 note", 4000)
    ticket_id = ticket.id if isinstance(ticket, Ticket) else int(ticket)
    seen_version = expected_version if expected_version is not None else (
        ticket.version if isinstance(ticket, Ticket) else None)
    with _db().atomic():
        fresh = Ticket.get_or_none(Ticket.id == ticket_id)
        if fresh is None:
            raise NotFound("没有找到该工单 / no such ticket")
        rule = wf.TRANSITIONS.get((fresh.status, event))
        if not system:
            if rule is None and not may_view(actor, fresh):
                raise NotFound("没有找到该工单 / no such ticket")
            if rule is not None:
                _authorise(actor, fresh, rule, event)
        if seen_version is not None and seen_version != fresh.version and not (rule and rule.passive):
            raise _stale(fresh, event, actor)
        if rule is None:
            wf.rule_for(fresh.status, event)  # raises the explanatory WorkflowError
        params = _resolve_params(event, params)
        target = wf.check(fresh.status, event, wf.Context(fresh, actor, params))
        before = fresh.status
        now_aware = clock.now()
        now = to_db(now_aware)
        extra_note = EFFECTS.get(event, _no_effect)(fresh, actor, params, now_aware, clock) or ""
        if target is not None:
            fresh.status = target
        fresh.updated_at = now
        changes = {f: getattr(fresh, f.name) for f in fresh.dirty_fields}
        if rule.passive:
            Ticket.update(changes).where(Ticket.id == fresh.id).execute()
        else:
            changes[Ticket.version] = fresh.version + 1
            rows = Ticket.update(changes).where((Ticket.id == fresh.id) & (Ticket.version == fresh.version)).execute()
            if rows != 1:
                raise ConcurrentChange()
            fresh.version += 1
        reason = params.get("reason") or ""
        text = "；".join(p for p in (reason, note, extra_note) if p)
        _history(fresh, actor, event, before, fresh.status, text, now, label="" if actor else SYSTEM)
        AFTER.get(event, _no_effect)(fresh, actor, params, now_aware, clock)
    log.info("ticket %s: %s %s -> %s by %s", fresh.number, event, before, fresh.status,
             actor.operator_no if actor else SYSTEM)
    return fresh


def _stale(fresh: Ticket, event: str, actor) -> ConcurrentChange:
    last = (TicketHistory.select().where(TicketHistory.ticket == fresh)
            .order_by(TicketHistory.id.desc()).first())
    if last is not None and last.action == event and actor is not None and last.actor_id == actor.id:
        return ConcurrentChange(f"该操作（{wf.label(wf.EVENT_LABELS, event)}）已提交过，请勿重复提交 / "
                                f"this {event} was already submitted")
    return ConcurrentChange(f"工单已被他人修改，当前状态“{wf.label(wf.STATUS_LABELS, fresh.status)}”，"
                            f"请刷新后重试 / the ticket was changed by someone else (now {fresh.status}): "
                            f"reload and try again")


def _resolve_params(event: str, params: dict) -> dict:
    out = dict(params)
    for key in ("department",):
        if key in out and out[key] not in (None, "") and not isinstance(out[key], Department):
            out[key] = _get_or_error(Department, out[key], "单位 department")
        elif key in out and out[key] == "":
            out[key] = None
    if out.get("handler") not in (None, "") and not isinstance(out["handler"], User):
        out["handler"] = _get_or_error(User, out["handler"], "承办人 handler")
    if out.get("master") not in (None, "") and not isinstance(out["master"], Ticket):
        ref = out["master"]
        master = Ticket.get_or_none(Ticket.number == parse_number(ref)) if isinstance(ref, str) else \
            Ticket.get_or_none(Ticket.id == ref)
        if master is None:
            raise WorkflowError("主工单不存在 / master ticket not found")
        out["master"] = master
    for key in ("reason", "reply"):
        if key in out and out[key] is not None:
            out[key] = _clean(out[key], key, MAX_CONTENT)
    if "satisfaction" in out and out["satisfaction"] not in wf.SATISFACTION:
        raise WorkflowError(f"满意度无效 / unknown satisfaction {out['satisfaction']!r}")
    for key in ("until", "deadline", "at"):
        if isinstance(out.get(key), dt.datetime):
            out[key] = to_db(out[key])
    return out


def _get_or_error(model, ref, name):
    try:
        return model.get_by_id(int(ref))
    except (ValueError, TypeError, model.DoesNotExist):
        raise WorkflowError(f"{name}不存在 / {name} {ref!r} not found") from None


def _history(ticket, actor, action, from_status, to_status, note, at, label: str = "") -> TicketHistory:
    return TicketHistory.create(ticket=ticket, actor=actor, actor_label=label, action=action,
                                from_status=from_status, to_status=to_status, note=note, at=at,
                                department=ticket.department_id)


# ---- effects of events (field changes beside the status) ------------------------------------------
def _no_effect(*_args):
    return None


def deadline_for(ticket: Ticket, start: dt.datetime, clock: Clock) -> dt.datetime:
    """Naive-UTC deadline for ``ticket`` counted from aware ``start`` on the stored calendar and limits."""
    limit = dl.pick_limit(dl.load_limits(), ticket.type, ticket.urgency)
    return to_db(dl.compute_deadline(start, limit, load_calendar(), clock.tz))


def callback_deadline_for(start: dt.datetime, clock: Clock) -> dt.datetime:
    """Naive-UTC end of the call-back window (next working day)."""
    return to_db(dl.compute_deadline(start, dl.CALLBACK_LIMIT, load_calendar(), clock.tz))


def _start_handling(t, department, p, now, clock) -> None:
    """A department takes the ticket up afresh (dispatch, reopen): new deadline, no handler, no warnings,
    no extension granted for an earlier round."""
    if department is not None:
        t.department = department
    t.upper_department = None
    t.handler = None
    t.dispatched_at = to_db(now)
    t.deadline = p.get("deadline") or deadline_for(t, now, clock)
    t.overdue = False
    t.warned_at = None
    t.extension_until = None


def _fx_dispatch(t, actor, p, now, clock):
    _start_handling(t, p["department"], p, now, clock)
    return f"派往 / to {t.department.name}"


def _fx_answer(t, actor, p, now, clock):
    t.reply = p["reply"]
    t.replied_at = to_db(now)
    if t.reply_by != "none" and not t.anonymous:
        t.callback_deadline = callback_deadline_for(now, clock)
    return None


def _fx_defer(t, actor, p, now, clock):
    if p.get("at"):
        t.remind_at = p["at"]
    return None


def _fx_final(t, actor, p, now, clock):
    t.closed_at = to_db(now)
    return None


def _fx_merge(t, actor, p, now, clock):
    t.master = p["master"]
    t.closed_at = to_db(now)
    return f"并入 / merged into {p['master'].number}"


def _fx_accept(t, actor, p, now, clock):
    if t.handler_id is None and actor is not None:
        t.handler = actor
        return f"承办人：{actor.name}（{actor.operator_no}）/ handler {actor.name} ({actor.operator_no})"
    return None


def _fx_return(t, actor, p, now, clock):
    name = t.department.name if t.department_id else ""
    t.department = None
    t.upper_department = None
    t.handler = None
    t.extension_until = None
    return f"由 {name} 退回 / returned by {name}"


def _fx_sub_dispatch(t, actor, p, now, clock):
    # The sub-unit takes it over in progress with nobody on it yet; one of its staff accepts or is assigned.
    upper = t.department
    t.upper_department = upper
    t.department = p["department"]
    t.handler = None
    return f"由 {upper.name} 下派至 {p['department'].name} / passed down from {upper.name} to {p['department'].name}"


def _fx_back_up(t, actor, p, now, clock):
    t.department = t.upper_department
    t.upper_department = None
    t.handler = None
    if p.get("reply"):
        t.reply = p["reply"]
        return "下级答复：" + p["reply"][:200]
    return f"退回上级 / back to {t.department.name}"


def _fx_assign(t, actor, p, now, clock):
    handler = p["handler"]
    t.handler = handler
    return f"承办人：{handler.name}（{handler.operator_no}）/ handler {handler.name} ({handler.operator_no})"


def _fx_reply(t, actor, p, now, clock):
    t.reply = p["reply"]
    t.replied_at = to_db(now)
    return None


def _fx_approve(t, actor, p, now, clock):
    if t.reply_by != "none" and not t.anonymous:
        t.callback_deadline = callback_deadline_for(now, clock)
    return None


def _fx_reject(t, actor, p, now, clock):
    t.replied_at = None
    return None


def _fx_request_extension(t, actor, p, now, clock):
    t.extension_until = p["until"]
    t.extension_reason = p.get("reason", "")
    return f"申请延期至 / until {clock.local(p['until']):%Y-%m-%d %H:%M}"


def _fx_approve_extension(t, actor, p, now, clock):
    t.deadline = p.get("until") or t.extension_until
    t.extension_until = None
    t.overdue = False
    t.warned_at = None
    return f"期限延至 / deadline now {clock.local(t.deadline):%Y-%m-%d %H:%M}"


def _fx_refuse_extension(t, actor, p, now, clock):
    t.extension_until = None
    return None


def _fx_remind(t, actor, p, now, clock):
    t.remind_count = (t.remind_count or 0) + 1
    if p.get("scheduled"):
        t.remind_at = None
    return None


def _fx_set_reminder(t, actor, p, now, clock):
    t.remind_at = p.get("at")
    if t.remind_at is None:
        return "取消提醒 / reminder cleared"
    return f"提醒时间 / remind at {clock.local(t.remind_at):%Y-%m-%d %H:%M}"


def _fx_supervise(t, actor, p, now, clock):
    t.supervised = True
    return None


def _fx_call_back(t, actor, p, now, clock):
    t.satisfaction = p["satisfaction"]
    return f"满意度 / satisfaction: {wf.label(wf.SATISFACTION, p['satisfaction'])}"


def _fx_reopen(t, actor, p, now, clock):
    t.reopen_count = (t.reopen_count or 0) + 1
    _start_handling(t, p.get("department"), p, now, clock)
    t.replied_at = None
    return f"第{t.reopen_count}次重办 / reopened ({t.reopen_count})"


def _fx_disclose(t, actor, p, now, clock):
    t.public = bool(p.get("public", True))
    return "公开 / public" if t.public else "不公开 / not public"


EFFECTS = {
    "dispatch": _fx_dispatch, "answer": _fx_answer, "answer_later": _fx_answer, "defer": _fx_defer,
    "not_accept": _fx_final, "merge": _fx_merge, "accept": _fx_accept, "return": _fx_return,
    "sub_dispatch": _fx_sub_dispatch, "return_up": _fx_back_up, "reply_up": _fx_back_up,
    "assign": _fx_assign, "reply": _fx_reply, "approve": _fx_approve, "reject": _fx_reject,
    "request_extension": _fx_request_extension, "approve_extension": _fx_approve_extension,
    "refuse_extension": _fx_refuse_extension, "remind": _fx_remind, "set_reminder": _fx_set_reminder,
    "supervise": _fx_supervise, "call_back": _fx_call_back, "call_back_unsatisfied": _fx_call_back,
    "reopen": _fx_reopen, "keep_closed": _fx_final, "close": _fx_final, "disclose": _fx_disclose,
}


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


def _after_dispatch(t, actor, p, now, clock):
    notify(f"新工单 {t.number}：{t.title}", department=t.department, ticket=t, kind="incoming", clock=clock)


def _after_remind(t, actor, p, now, clock):
    _holder_notice(t, f"催办：工单 {t.number}（{t.title}）请尽快办理", "remind", clock)


def _after_supervise(t, actor, p, now, clock):
    _holder_notice(t, f"督办：工单 {t.number}（{t.title}）已列入督办", "supervise", clock)
    for leader in users_with_role("centre_leader"):
        notify(f"督办工单 {t.number}：{t.title}", user=leader, ticket=t, kind="supervise", clock=clock)


def _after_unsatisfied(t, actor, p, now, clock):
    text = f"回访不满意：工单 {t.number}（{t.title}），请研判是否重办"
    if t.department_id:
        notify(text, department=t.department, ticket=t, kind="unsatisfied", clock=clock)
    for leader in users_with_role("centre_leader"):
        notify(text, user=leader, ticket=t, kind="unsatisfied", clock=clock)


def _after_merge(t, actor, p, now, clock):
    master = p["master"]
    _history(master, actor, "duplicate_added", master.status, master.status, f"并入重复件 / duplicate {t.number}",
             to_db(now), label="" if actor else SYSTEM)


def _after_return(t, actor, p, now, clock):
    centre = centre_department()
    if centre is not None:
        notify(f"工单 {t.number} 被退回中心：{p.get('reason', '')[:100]}", department=centre, ticket=t,
               kind="returned", clock=clock)


def _after_extension(t, actor, p, now, clock):
    centre = centre_department()
    if centre is not None:
        notify(f"工单 {t.number} 申请延期", department=centre, ticket=t, kind="extension", clock=clock)


AFTER = {
    "dispatch": _after_dispatch, "reopen": _after_dispatch, "sub_dispatch": _after_dispatch,
    "reject": _after_dispatch, "remind": _after_remind, "supervise": _after_supervise,
    "call_back_unsatisfied": _after_unsatisfied, "merge": _after_merge, "return": _after_return,
    "request_extension": _after_extension,
}


# ---- convenience wrappers for the common actions ---------------------------------------------------
def dispatch(ticket, actor, department, note: str = "", **kw) -> Ticket:
    """Send a ticket to a member unit (centre)."""
    return transition(ticket, "dispatch", actor, note, department=department, **kw)


def call_back(ticket, actor, satisfaction: str, note: str = "", **kw) -> Ticket:
    """Record the citizen's rating; an unsatisfied one goes to the department and the centre leaders."""
    event = "call_back_unsatisfied" if satisfaction == "unsatisfied" else "call_back"
    return transition(ticket, event, actor, note, satisfaction=satisfaction, **kw)


def suggest_departments(category=None, region=None, limit: int = 5) -> list[Department]:
    """Departments responsible for the category (or a parent category), those for the region first."""
    category = _resolve(Category, category, "category") if category is not None else None
    region = _resolve(Region, region, "region") if region is not None else None
    if category is None:
        return []
    cats, node, guard = [], category, 0
    while node is not None and guard < 10:
        cats.append(node.id)
        node = node.parent if node.parent_id else None
        guard += 1
    regions = []
    node = region
    while node is not None and len(regions) < 5:
        regions.append(node.id)
        node = node.parent if node.parent_id else None
    scored: dict[int, tuple] = {}
    query = (Responsibility.select(Responsibility, Department)
             .join(Department).where(Responsibility.category.in_(cats) & Department.active))
    for resp in query:
        cat_rank = cats.index(resp.category_id)
        if resp.region_id is None:
            reg_rank = len(regions) + 1
        elif resp.region_id in regions:
            reg_rank = regions.index(resp.region_id)
        else:
            continue  # responsible only elsewhere
        key = (reg_rank, cat_rank, -resp.department.level)
        if resp.department_id not in scored or key < scored[resp.department_id][0]:
            scored[resp.department_id] = (key, resp.department)
    return [d for _, d in sorted(scored.values(), key=lambda kv: kv[0])][:limit]


# ---- queues --------------------------------------------------------------------------------------
def department_queue(actor: User, statuses: Iterable[str] = (wf.DISPATCHED, wf.IN_PROGRESS), limit: int = 100,
                     where=None):
    """The department workbench: tickets held in the actor's subtree, overdue first, then by deadline."""
    if not actor.department_id:
        return []
    prefix = actor.department.path
    sub = Department.select(Department.id).where(Department.path.startswith(prefix))
    cond = Ticket.department.in_(sub) & Ticket.status.in_(list(statuses))
    query = (_with_department(Ticket.select(*LIST_FIELDS))
             .where(cond if where is None else cond & where)
             .order_by(Ticket.overdue.desc(), Ticket.deadline.asc(nulls="LAST"), Ticket.id).limit(limit))
    return list(query)


def department_desk(actor: User) -> dict[str, list[Ticket]]:
    """The department desk's lists: ``incoming`` (dispatched, or passed down in progress with nobody on it
    yet: someone must take it), ``working`` (in progress with a handler) and ``unsatisfied``."""
    unassigned = (Ticket.status == wf.DISPATCHED) | Ticket.handler.is_null()
    return {"incoming": department_queue(actor, (wf.DISPATCHED, wf.IN_PROGRESS), where=unassigned),
            "working": department_queue(actor, (wf.IN_PROGRESS,), where=Ticket.handler.is_null(False)),
            "unsatisfied": department_queue(actor, (wf.UNSATISFIED,))}


CENTRE_QUEUES = {
    "to_dispatch": ("待派单", "To dispatch"),
    "deferred": ("暂不能答复", "Answer later"),
    "to_review": ("待审核", "To review"),
    "overdue": ("超期", "Overdue"),
    "supervised": ("督办", "Supervised"),
    "extensions": ("延期申请", "Extension requests"),
    "callback": ("待回访", "To call back"),
    "unsatisfied": ("不满意", "Unsatisfied"),
    "mailbox": ("市长信箱", "Mayor's mailbox"),
}


def centre_queue(actor: User, kind: str, limit: int = 200) -> list[Ticket]:
    """One of the centre desk's lists (see CENTRE_QUEUES)."""
    if not can(actor, "ticket.view_all"):
        raise PermissionDenied("仅限热线中心 / centre only")
    q = _with_department(Ticket.select(*LIST_FIELDS))
    if kind == "to_dispatch":
        q = q.where(Ticket.status.in_([wf.RECORDED, wf.RETURNED])).order_by(Ticket.urgency.desc(), Ticket.id)
    elif kind == "deferred":
        q = q.where(Ticket.status == wf.DEFERRED).order_by(Ticket.remind_at.asc(nulls="LAST"), Ticket.id)
    elif kind == "to_review":
        q = q.where(Ticket.status == wf.REPLIED).order_by(Ticket.replied_at, Ticket.id)
    elif kind == "overdue":
        q = q.where(Ticket.overdue & Ticket.status.in_(list(wf.HANDLING_STATUSES))).order_by(Ticket.deadline)
    elif kind == "supervised":
        q = q.where(Ticket.supervised & Ticket.status.in_(list(wf.OPEN_STATUSES))).order_by(Ticket.deadline)
    elif kind == "extensions":
        q = q.where(Ticket.extension_until.is_null(False)).order_by(Ticket.deadline)
    elif kind == "callback":
        q = q.where(Ticket.status.in_([wf.APPROVED, wf.ANSWERED])).order_by(
            Ticket.callback_deadline.asc(nulls="LAST"), Ticket.id)
    elif kind == "unsatisfied":
        q = q.where(Ticket.status == wf.UNSATISFIED).order_by(Ticket.updated_at)
    elif kind == "mailbox":
        q = q.where((Ticket.channel == "mailbox") & Ticket.status.in_(list(wf.OPEN_STATUSES))).order_by(Ticket.id)
    else:
        raise TicketInputError(f"unknown queue {kind!r}")
    return list(q.limit(limit))


def queue_counts(actor: User) -> dict[str, int]:
    """Sizes of the centre lists (for badges)."""
    return {kind: len(centre_queue(actor, kind, limit=1000)) for kind in CENTRE_QUEUES}


def due_soon_and_overdue(actor: User, clock: Optional[Clock] = None, within: dt.timedelta = dl.WARN_BEFORE):
    """(overdue, due soon) tickets for the actor's desk, shown at once when the desk opens."""
    clock = clock or Clock()
    now = to_db(clock.now())
    base = visible_tickets(actor).where(Ticket.status.in_(list(wf.HANDLING_STATUSES)))
    overdue = list(base.where(Ticket.deadline < now).order_by(Ticket.deadline).limit(100))
    soon = list(base.where((Ticket.deadline >= now) & (Ticket.deadline < now + within))
                .order_by(Ticket.deadline).limit(100))
    return overdue, soon


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
                                     restrict_params=params)
        if not ids:
            return []
        # Score on plain tuples (cheap), then build full rows only for the page returned.
        rows = query.select(Ticket.id, Ticket.title, Ticket.content, Ticket.citizen_address).where(
            Ticket.id.in_(ids)).tuples()
        rank = search.scorer(text, grams)
        scored = [(rank(set(search.index_grams(f"{title} {content} {address}")), title + content), tid)
                  for tid, title, content, address in rows]
        best = sorted((pair for pair in scored if pair[0] > 0), key=lambda pair: (-pair[0], -pair[1]))[:limit]
        if not best:
            return []
        by_id = {t.id: t for t in _with_department(Ticket.select(*LIST_FIELDS))
                 .where(Ticket.id.in_([tid for _s, tid in best]))}
        return [by_id[tid] for _s, tid in best if tid in by_id]
    return list(query.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit))


def _as_day_start(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return to_db(value)
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise TicketInputError(f"日期格式应为YYYY-MM-DD / dates are YYYY-MM-DD, got {value[:20]!r}") from None
    return dt.datetime.combine(value, dt.time())


# ---- the citizen's status query (IVR, portal) ----------------------------------------------------
def status_query(number, secret: str, lang: str = "zh") -> Optional[dict]:
    """Status of a ticket for a citizen who gives its number plus their phone number or the PIN.

    Returns None for a wrong pair exactly as for an unknown number, so guessing numbers reveals nothing
    (callers should also limit attempts). A merged duplicate reports its master's progress.
    """
    try:
        number = parse_number(number)
    except TicketInputError:
        return None
    secret = re.sub(r"\D", "", str(secret or ""))
    ticket = Ticket.get_or_none(Ticket.number == number)
    if ticket is None or not secret:
        return None
    ok = hmac.compare_digest(secret, re.sub(r"\D", "", ticket.query_pin or "")) or (
        bool(ticket.citizen_phone) and hmac.compare_digest(secret, re.sub(r"\D", "", ticket.citizen_phone)))
    if not ok:
        return None
    shown = ticket.master if ticket.status == wf.MERGED and ticket.master_id else ticket
    return {"number": ticket.number, "status": shown.status, "citizen": wf.citizen_status(shown.status),
            "label": wf.citizen_words(shown.status, lang),
            "reply": shown.reply if shown.status in (wf.APPROVED, wf.ANSWERED, wf.CALLED_BACK, wf.CLOSED,
                                                      wf.ARCHIVED) else ""}


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


def timeline(ticket: Ticket) -> list[TicketHistory]:
    """The ticket's history, oldest first."""
    return list(TicketHistory.select().where(TicketHistory.ticket == ticket).order_by(TicketHistory.id))
