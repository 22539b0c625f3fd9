"""The audit log page: who logged in, read or changed what, from where (system log browsing)."""
from __future__ import annotations

import datetime as dt
import math

from flask import Blueprint, current_app, render_template, request
from peewee import JOIN

from caseflow.models import User
from webui.app import NavItem, bad_request
from webui.blueprints.agent_tickets import parse_page
from webui.models import AuditLog
from webui.security import require_roles

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")

AUDIT_ROLES = ("admin", "centre_leader")
NAV = [NavItem("Audit log", "audit.index", frozenset(AUDIT_ROLES), order=90)]
PAGE_SIZE = 50

MESSAGES = {"zh": {
    "Audit log": "审计日志",
    "Time": "时间",
    "User": "用户",
    "Action": "操作",
    "Object": "对象",
    "Detail": "详情",
    "Address": "来源地址",
    "From date": "起始日期",
    "To date": "截止日期",
    "No entries match.": "没有符合条件的记录。",
    "Page %(page)s of %(pages)s, %(total)s entries": "第 %(page)s / %(pages)s 页，共 %(total)s 条",
    "Dates must look like 2026-03-01.": "日期格式应为 2026-03-01。",
    "Address or object": "地址或对象",
    "Refusals only": "仅失败与拒绝",
    "audit:login": "登录",
    "audit:logout": "退出",
    "audit:login_failed": "登录失败",
    "audit:login_throttled": "登录被限制",
    "audit:password_changed": "修改密码",
    "audit:password_change_failed": "修改密码失败",
    "audit:view_contact": "查看联系方式",
}}


def parse_day(raw: str | None) -> dt.date | None:
    """A YYYY-MM-DD filter date; absent is None, anything else malformed is a 400."""
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw.strip()[:10])
    except ValueError:
        bad_request("Dates must look like 2026-03-01.")


def parse_moment(raw: str | None) -> tuple[dt.date, dt.time | None] | None:
    """A filter date with an optional local time (``2026-03-01``, ``2026-03-01T08:30``, ``2026-03-01 08:30``)."""
    day = parse_day(raw)
    if day is None:
        return None
    rest = raw.strip()[10:].lstrip("T ")
    if not rest:
        return day, None
    try:
        return day, dt.time.fromisoformat(rest[:8])
    except ValueError:
        bad_request("Dates must look like 2026-03-01.")


# Actions that record a refusal or a failure (the audit log's "level" filter).
REFUSAL_WORDS = ("failed", "denied", "refused", "throttled", "locked", "rejected")


def utc_bounds(day: dt.date, tz, at: dt.time | None = None) -> dt.datetime:
    """Local midnight (or ``at``) of ``day`` as naive UTC (how AuditLog.at is stored)."""
    local = dt.datetime.combine(day, at or dt.time(0, 0), tzinfo=tz)
    return local.astimezone(dt.timezone.utc).replace(tzinfo=None)


@bp.route("")
@require_roles(*AUDIT_ROLES)
def index():
    """Newest first; filter by operator number, action and local date range."""
    operator_no = request.args.get("operator_no", "").strip()[:32]
    action = request.args.get("action", "").strip()[:48]
    since, until = parse_moment(request.args.get("from")), parse_moment(request.args.get("to"))
    where = request.args.get("where", "").strip()[:64]
    refusals = request.args.get("refusals") == "1"
    page = parse_page(request.args.get("page"))
    tz = current_app.extensions["hotline"].services.clock.tz

    rows = AuditLog.select(AuditLog, User).join(User, JOIN.LEFT_OUTER, on=(AuditLog.user == User.id))
    if operator_no:
        rows = rows.where(AuditLog.operator_no == operator_no)
    if action:
        rows = rows.where(AuditLog.action == action)
    if since:
        rows = rows.where(AuditLog.at >= utc_bounds(since[0], tz, since[1]))
    if until:  # a date alone includes that whole day; a time is the end itself
        rows = rows.where(AuditLog.at < (utc_bounds(until[0], tz, until[1]) if until[1] is not None
                                         else utc_bounds(until[0] + dt.timedelta(days=1), tz)))
    if where:
        rows = rows.where((AuditLog.ip == where) | (AuditLog.obj_id == where) | (AuditLog.obj_type == where))
    if refusals:
        condition = None
        for word in REFUSAL_WORDS:
            term = AuditLog.action.contains(word)
            condition = term if condition is None else condition | term
        rows = rows.where(condition)
    total = rows.count()
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(page, pages)
    entries = list(rows.order_by(AuditLog.at.desc(), AuditLog.id.desc()).paginate(page, PAGE_SIZE))
    actions = [r.action for r in AuditLog.select(AuditLog.action).distinct().order_by(AuditLog.action)]
    filters = {"operator_no": operator_no or None, "action": action or None,
               "from": request.args.get("from", "").strip()[:19] or None,
               "to": request.args.get("to", "").strip()[:19] or None,
               "where": where or None, "refusals": "1" if refusals else None}
    return render_template("audit/index.html", entries=entries, total=total, page=page, pages=pages,
                           actions=actions, filters=filters)
