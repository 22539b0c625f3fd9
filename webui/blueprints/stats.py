"""The leaders' statistics page (统计分析): calls and tickets of a period with 环比 and 同比, daily volume and
channel mix drawn as inline SVG, department rankings, and the same figures as an Excel file.

Figures come from ``stats`` (pure computations, thin queries); who sees which scope is decided there
(``stats.queries.scope_for``): city roles the whole city, department users their own subtree, others 403.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, current_app, g, render_template, request

from caseflow.roles import DEFAULT_PERMISSIONS
from caseflow.services import CHANNELS, TICKET_TYPES
from stats.charts import bar_chart, line_chart
from stats.figures import format_change, format_value
from stats.periods import KINDS, MAX_DAYS, Period, PeriodError, parse_period
from stats.queries import STATS_PERMISSION, STATS_ROLES, Scope, load_report, scope_for
from webui.app import NavItem, code_label
from webui.security import audit, now_utc, require_roles

log = logging.getLogger(__name__)

bp = Blueprint("stats", __name__, url_prefix="/stats")
# In the menu for roles that hold the permission by default (an administrator may grant it to others).
NAV = [NavItem("Statistics", "stats.index",
               frozenset(r for r in STATS_ROLES if STATS_PERMISSION in DEFAULT_PERMISSIONS.get(r, ())), order=70)]

MESSAGES = {"zh": {
    "Statistics": "统计分析",
    "Whole city": "全市",
    "Period": "统计周期",
    "Today": "今日",
    "This week": "本周",
    "This month": "本月",
    "Custom range": "自定义",
    "From": "开始日期",
    "To": "结束日期",
    "Show figures": "查询",
    "Export to Excel": "导出 Excel",
    "Print": "打印",
    "Previous period": "上期",
    "Same period last year": "去年同期",
    "Change vs previous period": "环比",
    "Change vs last year": "同比",
    "Figure": "指标",
    "This period": "本期",
    "pp": "个百分点",
    "Overview": "概况",
    "Tickets": "工单",
    "Calls offered to agents": "人工呼入量",
    "Calls answered": "接通量",
    "Calls abandoned": "放弃量",
    "Answer rate": "接通率",
    "15-second answer rate": "15秒接通率",
    "Average wait (s)": "平均等待时长（秒）",
    "Average talk time (s)": "平均通话时长（秒）",
    "Tickets created": "工单受理量",
    "Tickets closed": "办结量",
    "Handled on time": "按时办理量",
    "Overdue tickets": "超期量",
    "On-time rate": "按时办结率",
    "Overdue rate": "超期率",
    "Satisfaction ratings": "回访评价数",
    "Satisfaction rate": "满意率",
    "Tickets by channel": "各渠道受理量",
    "Tickets by type": "各类型受理量",
    "Channel": "渠道",
    "Type": "类型",
    "Channel mix": "渠道构成",
    "Daily volume": "每日话务量与工单量",
    "Date": "日期",
    "Department ranking": "单位排名",
    "Top departments by volume": "受理量排名",
    "Top departments by overdue tickets": "超期量排名",
    "Handling unit": "单位",
    "No overdue tickets in this period.": "本期没有超期工单。",
    "No tickets in this period.": "本期没有工单。",
    "Showing %(scope)s, %(first)s to %(last)s (%(days)s days).": "统计范围：%(scope)s，%(first)s 至 %(last)s（共 %(days)s 天）。",
    "Compared with %(prev_first)s to %(prev_last)s (previous period) and %(year_first)s to %(year_last)s (a year earlier).":
        "环比对照 %(prev_first)s 至 %(prev_last)s，同比对照 %(year_first)s 至 %(year_last)s。",
    "Call figures cover the whole hotline and are shown to the hotline centre and leaders only.":
        "话务数据属全市热线，仅对热线办和领导显示。",
    "Calls are counted when they reach an agent queue; the 15-second answer rate is the share of answered calls answered within 15 seconds of entering the queue.":
        "话务按进入人工队列计；15秒接通率为接通电话中自进入队列起15秒内接通的比例。",
    "On time and overdue count tickets whose deadline falls in the period: on time when the department replied by the deadline. Satisfaction rate = (satisfied + basically satisfied) / ratings.":
        "按时与超期按办理期限落在本期的工单统计：承办单位在期限内答复为按时。满意率 =（满意 + 基本满意）/ 回访评价数。",
    "Daily calls offered and tickets created, %(first)s to %(last)s.": "%(first)s 至 %(last)s 每日人工呼入量与工单受理量。",
    "Daily tickets created, %(first)s to %(last)s.": "%(first)s 至 %(last)s 每日工单受理量。",
    "Calls: %(calls)s in total. Tickets: %(tickets)s in total.": "话务合计 %(calls)s，工单合计 %(tickets)s。",
    "Tickets: %(tickets)s in total.": "工单合计 %(tickets)s。",
    "Tickets created per channel in this period.": "本期各渠道工单受理量。",
    "Data table": "数据表",
    # Period errors (stats.periods)
    "start date": "开始日期",
    "end date": "结束日期",
    "%(field)s must be a date like 2026-03-01.": "%(field)s格式应为 2026-03-01 这样的日期。",
    "%(field)s must lie between %(first)s and %(last)s.": "%(field)s须在 %(first)s 年至 %(last)s 年之间。",
    "Unknown period %(kind)s.": "未知的统计周期：%(kind)s。",
    "A custom period needs both a start and an end date.": "自定义周期须同时填写开始日期和结束日期。",
    "The end date lies before the start date.": "结束日期早于开始日期。",
    "A period may span at most %(days)s days.": "统计周期最长 %(days)s 天。",
}}


def _translate(message: str, **values) -> str:
    return current_app.extensions["hotline"].gettext(message, **values)


def _label(code: str, kind: str) -> str:
    return code_label(code, kind, g.get("lang") or "zh", _translate)


def _scope_or_403() -> Scope:
    scope = scope_for(g.user)
    if scope is None:
        abort(403)
    return scope


def _period_from_request() -> tuple[Period | None, str]:
    """The requested period, or (None, translated error)."""
    clock = current_app.extensions["hotline"].services.clock
    try:
        return parse_period(request.args.get("period"), request.args.get("from"), request.args.get("to"),
                            clock.today()), ""
    except PeriodError as error:
        values = {k: _translate(v) if isinstance(v, str) else v for k, v in error.values.items()}
        return None, _translate(error.message, **values)


def _report(scope: Scope, period: Period):
    clock = current_app.extensions["hotline"].services.clock
    return load_report(scope, period, clock.tz, now_utc(), channel_order=CHANNELS, type_order=TICKET_TYPES)


def _audit_detail(scope: Scope, period: Period) -> tuple[str, str]:
    return ("city" if scope.city else str(scope.department.id)), f"{period.first}..{period.last}"


@bp.route("/")
@require_roles(*STATS_ROLES)
def index():
    """The figures of the requested period (this month by default) for the user's scope."""
    scope = _scope_or_403()
    period, error = _period_from_request()
    args = {k: request.args.get(k, "") for k in ("period", "from", "to") if request.args.get(k)}
    if period is None:
        return render_template("stats/index.html", error=error, report=None, args=args, kinds=KINDS,
                               max_days=MAX_DAYS), 400
    report = _report(scope, period)
    audit("stats_view", "stats", *_audit_detail(scope, period))
    days = [day for day, _calls, _tickets in report.daily]
    series = ([("calls", _translate("Calls offered to agents"), [c for _d, c, _t in report.daily])]
              if report.calls_shown else [])
    series.append(("tickets", _translate("Tickets created"), [t for _d, _c, t in report.daily]))
    channel_rows = [(_label(row.key, "channel"), int(row.value or 0)) for row in report.channels]
    return render_template(
        "stats/index.html", error="", report=report, args=args, kinds=KINDS, max_days=MAX_DAYS,
        daily_chart=line_chart(days, series), channel_chart=bar_chart(channel_rows),
        value=format_value, change=lambda v, kind: format_change(v, kind, _translate("pp")))


@bp.route("/export.xlsx")
@require_roles(*STATS_ROLES)
def export():
    """The same figures as an Excel workbook."""
    from stats.export import XLSX_MIME, report_xlsx

    scope = _scope_or_403()
    period, error = _period_from_request()
    if period is None:
        from webui.app import bad_request

        bad_request(error)
    report = _report(scope, period)
    audit("stats_export", "stats", *_audit_detail(scope, period))
    body = report_xlsx(report, _translate, _label)
    name = f"12345-stats-{period.first:%Y%m%d}-{period.last:%Y%m%d}.xlsx"
    return Response(body, mimetype=XLSX_MIME, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                       "Cache-Control": "no-store"})
