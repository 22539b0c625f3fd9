"""The dial-out policy page (/admin/dialout, administrators, read only): the rules in force (recorder.dialout:
classes allowed per purpose and role, the daily caps, the area code, the carrier's dial template) and the
dial-out log (acd.models.DialOutLog: refusals and counted calls) with filters, 50 rows a page.

Numbers in the log are citizens' as often as not (call-backs, material faxes, a caller's keyed request):
they are masked as caseflow.privacy masks them unless the viewer holds ``citizen.full_contact`` (by default
an administrator does not); the own seats and emergency numbers are never a citizen's and stay readable.
Every view is audited; nothing here writes the policy or the log.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Mapping

from flask import Blueprint, current_app, g, render_template, request
from peewee import JOIN

from recorder.dialout import CLASS_LABELS, CLASSES, PURPOSES, UNCAPPED, DialPolicy
from recorder.models import DialOutLog
from caseflow.models import User
from caseflow.privacy import mask_contacts, mask_phone
from caseflow.roles import ROLES, can, role_label
from webui.app import NavItem, bad_request
from webui.blueprints.agent_tickets import parse_page
from webui.blueprints.audit import parse_day, utc_bounds
from webui.i18n import one_language
from webui.security import audit, require_roles

bp = Blueprint("admin_dialout", __name__, url_prefix="/admin/dialout")

NAV = [NavItem("Dial-out policy", "admin_dialout.index", frozenset({"admin"}), order=67)]
PAGE_SIZE = 50
OUTCOMES = ("allowed", "refused")

# What each dial-out purpose (recorder.dialout.PURPOSES) is called.
PURPOSE_LABELS: dict[str, tuple[str, str]] = {
    "outbound": ("外呼", "Outbound call"), "call_back": ("回拨", "Call-back"),
    "call_team_lead": ("呼叫班长", "Calling the team lead"), "transfer": ("转接", "Transfer"),
    "three_way": ("三方通话", "Three-way call"), "overflow": ("队列溢出转号码", "Queue overflow to a number"),
    "ivr_forward": ("语音导航转值班电话", "IVR forward to a duty phone"), "campaign": ("外呼任务", "Outbound campaign"),
    "fax": ("发送传真", "Fax"), "material_fax": ("传真资料", "Material by fax"),
}
CLASS_EN = {"internal": "Own extension", "emergency": "Emergency", "local": "Local", "mobile": "Mobile",
            "domestic": "Domestic long-distance", "international": "International",
            "premium": "Premium / special service", "unknown": "Unrecognised"}

MESSAGES = {"zh": {
    "Dial-out policy": "外呼策略", "Rules in force": "当前规则", "Dial-out log": "外呼记录",
    "Purpose": "用途", "Role": "角色", "Allowed number classes": "允许拨打的号码类别",
    "Any purpose": "任何用途", "Any role": "任何角色", "The system (no one logged in)": "系统（无人操作）",
    "Daily cap per staff member": "每位工作人员每日外呼上限", "Daily cap of requests per caller": "每位来电人每日请求外呼上限",
    "No cap": "不限", "Own area code": "本地区号", "Not set": "未设置", "Dial template for external numbers":
        "外部号码拨号模板",
    "Own extensions and emergency numbers never count against a cap.": "本机分机和紧急电话不计入上限。",
    "The dial-out settings cannot be read:": "外呼设置无法读取：",
    "Number class": "号码类别", "Outcome": "结果", "outcome:allowed": "已放行", "outcome:refused": "已拒绝",
    "Who": "发起方", "Number": "号码", "Reason": "原因", "Caller %(number)s": "来电人 %(number)s",
    "The system": "系统", "Deleted user": "已删除的用户",
    "Numbers are masked: your roles may not see citizen numbers in full.":
        "号码已脱敏：您的角色无权查看市民完整号码。",
    "No user has this operator number.": "没有该工号的用户。",
    "Unknown dial-out purpose.": "未知的外呼用途。", "Unknown number class.": "未知的号码类别。",
    "The outcome must be allowed or refused.": "结果只能是已放行或已拒绝。",
    "The start date is after the end date.": "起始日期晚于截止日期。",
    "No entries match.": "没有符合条件的记录。",
    "Page %(page)s of %(pages)s, %(total)s entries": "第 %(page)s / %(pages)s 页，共 %(total)s 条",
    **{f"dialpurpose:{code}": zh for code, (zh, _en) in PURPOSE_LABELS.items()},
    **{f"dialclass:{code}": CLASS_LABELS[code] for code in CLASSES},
}, "en": {
    "outcome:allowed": "Allowed", "outcome:refused": "Refused",
    **{f"dialpurpose:{code}": en for code, (_zh, en) in PURPOSE_LABELS.items()},
    **{f"dialclass:{code}": CLASS_EN[code] for code in CLASSES},
}}


@dataclass(frozen=True)
class LogFilters:
    """The log page's filters, checked: the user (by operator number), purpose, class, outcome, local days."""

    operator_no: str = ""
    user_id: int | None = None
    purpose: str = ""
    number_class: str = ""
    outcome: str = ""
    since: dt.date | None = None
    until: dt.date | None = None

    def query_args(self) -> dict:
        """The filters as query-string values for the pager's links (empty ones left out)."""
        values = {"user": self.operator_no, "purpose": self.purpose, "class": self.number_class,
                  "outcome": self.outcome, "from": self.since.isoformat() if self.since else "",
                  "to": self.until.isoformat() if self.until else ""}
        return {key: value for key, value in values.items() if value}


def parse_filters(args: Mapping[str, str]) -> LogFilters:
    """The filters from the query string; a value that is not one of the choices is a 400 saying which."""
    operator_no = (args.get("user") or "").strip()[:32]
    user_id = None
    if operator_no:
        user = User.get_or_none(User.operator_no == operator_no)
        if user is None:
            bad_request("No user has this operator number.")
        user_id = user.id
    purpose, number_class = (args.get("purpose") or "").strip(), (args.get("class") or "").strip()
    outcome = (args.get("outcome") or "").strip()
    if purpose and purpose not in PURPOSES:
        bad_request("Unknown dial-out purpose.")
    if number_class and number_class not in CLASSES:
        bad_request("Unknown number class.")
    if outcome and outcome not in OUTCOMES:
        bad_request("The outcome must be allowed or refused.")
    since, until = parse_day(args.get("from")), parse_day(args.get("to"))
    if since and until and since > until:
        bad_request("The start date is after the end date.")
    return LogFilters(operator_no, user_id, purpose, number_class, outcome, since, until)


def policy_in_force() -> DialPolicy:
    """The running ACD's policy (what every dial-out asks), else the one the settings make."""
    state = current_app.extensions["hotline"]
    acd = state.services.acd
    gate = getattr(acd, "dialout", None) if acd is not None else None
    return gate.policy if gate is not None else DialPolicy.from_config(state.config)


def _rule_rows(policy: DialPolicy) -> list[dict]:
    return [{"purpose": purpose, "role": role, "classes": classes} for purpose, role, classes in policy.describe()]


def _shown_number(number: str, number_class: str, full: bool) -> str:
    """A logged number as this viewer may see it: seats and emergency numbers are nobody's private number."""
    return number if full or number_class in UNCAPPED else mask_phone(number)


def _entry(row: DialOutLog, full: bool, lang: str) -> dict:
    """One log row for the page: who, the number and the reason in the viewer's language, masked if need be."""
    number = _shown_number(row.number, row.number_class, full)
    reason = one_language(row.reason, lang)
    if not full:
        reason = mask_contacts(reason.replace(row.number, number) if row.number else reason)
    kind, _sep, ident = row.actor.partition(":")
    who = {"kind": kind if kind in ("user", "caller") else "system", "user": None, "caller": ""}
    if kind == "user":
        who["user"] = row.user if row.user_id else None
    elif kind == "caller":
        who["caller"] = ident if full else mask_phone(ident)
    return {"at": row.at, "who": who, "purpose": row.purpose, "number": number, "number_class": row.number_class,
            "allowed": row.allowed, "reason": reason}


@bp.route("")
@require_roles("admin")
def index():
    """The policy in force and the log, newest first; filters by user, purpose, class, outcome and dates."""
    filters = parse_filters(request.args)
    page = parse_page(request.args.get("page"))
    lang = g.get("lang", "zh")
    full = can(g.user, "citizen.full_contact")
    policy, policy_error = None, ""
    try:
        policy = policy_in_force()
    except ValueError as error:  # a web-only process with a bad HOTLINE_DIALOUT_*: say so, show the log
        policy_error = one_language(str(error), lang)

    rows = DialOutLog.select(DialOutLog, User).join(User, JOIN.LEFT_OUTER, on=(DialOutLog.user == User.id))
    if filters.user_id is not None:
        rows = rows.where(DialOutLog.user == filters.user_id)
    if filters.purpose:
        rows = rows.where(DialOutLog.purpose == filters.purpose)
    if filters.number_class:
        rows = rows.where(DialOutLog.number_class == filters.number_class)
    if filters.outcome:
        rows = rows.where(DialOutLog.allowed == (filters.outcome == "allowed"))
    tz = current_app.extensions["hotline"].services.clock.tz
    if filters.since:
        rows = rows.where(DialOutLog.at >= utc_bounds(filters.since, tz))
    if filters.until:  # the end day is included whole
        rows = rows.where(DialOutLog.at < utc_bounds(filters.until + dt.timedelta(days=1), tz))
    total = rows.count()
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(page, pages)
    entries = [_entry(row, full, lang)
               for row in rows.order_by(DialOutLog.at.desc(), DialOutLog.id.desc()).paginate(page, PAGE_SIZE)]
    audit("log_view", "log", "dialout",  # the system-log reading action, on this log
          (" ".join(f"{key}={value}" for key, value in filters.query_args().items()) + f" page={page}")[:255])
    return render_template(
        "admin_dialout/index.html", policy=policy, policy_error=policy_error,
        rules=_rule_rows(policy) if policy else [], entries=entries, total=total, page=page, pages=pages,
        filters=filters, args=filters.query_args(), purposes=PURPOSES, classes=CLASSES, outcomes=OUTCOMES,
        roles=ROLES, role_label=role_label, masked=not full)
