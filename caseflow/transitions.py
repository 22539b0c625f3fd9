"""The one writer of ticket status: ``transition`` checks the event against caseflow.workflow's table and
the actor's rights, applies the event's effect on the ticket's fields (EFFECTS) and its notices (AFTER) in one
``db.atomic()`` with a history row, and refuses a stale version."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Optional

from caseflow import daycounts, deadlines as dl, durations, workflow as wf
from caseflow.models import Department, Ticket, TicketHistory, User
from caseflow.notifications import _holder_notice, centre_department, notify, users_with_role
from caseflow.values import _clean, _db, field_words, MAX_CONTENT, NotFound, parse_number, SYSTEM, to_db
from caseflow.visibility import _authorise, may_view
from caseflow.workflow import ConcurrentChange, PermissionDenied, WorkflowError
from core.calendar import load_calendar
from core.clock import Clock
from core.statements import insert_returning_id

log = logging.getLogger(__name__)


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
        counted = daycounts.entries(fresh)
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
        # the reports' kept figures move with the ticket, last (PostgreSQL: the day's shared count rows stay
        # locked until commit)
        durations.keep([fresh.id])
        daycounts.changed(fresh, counted)
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
        zh, en = field_words(name)
        raise WorkflowError(f"{zh}不存在 / {en} {ref!r} not found") from None


def _history(ticket, actor, action, from_status, to_status, note, at, label: str = "") -> TicketHistory:
    row = history_row(ticket, actor, action, from_status, to_status, note, at, label)
    insert_returning_id(row)  # the statement's text built once (core.statements), not per row
    return row


def history_row(ticket, actor, action, from_status, to_status, note, at, label: str = "") -> TicketHistory:
    """The unsaved history row ``_history`` writes (a new ticket's also goes into its statement on PostgreSQL:
    caseflow.new_ticket)."""
    return TicketHistory(ticket=ticket, actor=actor, actor_label=label, action=action, from_status=from_status,
                         to_status=to_status, note=note, at=at, department=ticket.department_id)


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
