"""The plan's reports under /stats/r/<report> (calls in and out with a weekday x hour heat map, per agent,
tickets by region, category, status now and urgency, handling speed, every department), saved report
queries per user, and the department assessment (统一考核: score sheet, evidence, appeals, month close,
indicators). Figures come from stats (pure computations, thin queries); scope and the stats.view right from
stats.queries.scope_for; a refused request is audited before its 403.

Long because: its catalogue (``MESSAGES``, every report's and the assessment's texts in Chinese) is 170
lines; the rest, imports and views, about 470.
"""
from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode

from flask import (Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request,
                   url_for)

from caseflow.models import Category, Department, Region, Ticket
from caseflow.services import CHANNELS, TICKET_TYPES
from caseflow import workflow as wf
from stats import assessing, saved_reports
from stats import report_queries as rq
from stats.assessment import COUNT_NAMES, DEFAULT_INDICATORS, check_indicator, month_of
from stats.breakdowns import (URGENCIES, Column, FilterError, Table, bucket_labels, call_traffic, compare_rows,
                              department_rows, heat_cells, parse_filters, sort_rows, tree_rows)
from stats.charts import bar_chart, line_chart
from stats.figures import COUNT, RATE, SECONDS, format_change, format_value, unit_of
from stats.formula import FormulaError, rename, unlabel
from stats.models import Appeal, SavedReport
from stats.periods import KINDS, PeriodError, parse_period, previous_period, year_earlier
from stats.queries import Scope, department_directory, scope_for
from webui.security import audit, login_required, now_utc

log = logging.getLogger(__name__)

bp = Blueprint("stats_reports", __name__, url_prefix="/stats")

REPORTS = ("calls", "agents", "region", "category", "status", "urgency", "speed", "departments")
CALL_REPORTS = frozenset({"calls", "agents"})  # call figures are the city's, not a department's
ADMIN_ROLES = frozenset({"admin"})
CENTRE_ROLES = frozenset({"centre", "centre_leader", "admin"})
HOURS = "hours"

MESSAGES = {"zh": {
    "Reports": "统计报表",
    "Calls in and out": "呼入呼出话务量",
    "Per agent": "话务员工作量",
    "Tickets by region": "区域分布",
    "Tickets by category": "诉求类别",
    "Tickets by status now": "办理状态",
    "Tickets by urgency": "紧急程度",
    "Handling speed": "办理时效",
    "Every department": "各单位情况",
    "Inbound calls": "呼入量",
    "Outbound calls": "呼出量",
    "Hour of day": "时段",
    "Calls per weekday and hour": "来电时段分布（星期 × 小时）",
    "Calls per day": "每日话务量",
    "Calls per hour of day": "各时段话务量",
    "Agent": "话务员",
    "Calls": "通话量",
    "Talk time (s)": "通话时长（秒）",
    "Hold time (s)": "保持时长（秒）",
    "After-call work (s)": "话后处理时长（秒）",
    "Ready time (s)": "就绪时长（秒）",
    "Break time (s)": "小休时长（秒）",
    "Tickets recorded": "受理工单数",
    "Region": "区域",
    "Category": "类别",
    "Status": "状态",
    "Urgency": "紧急程度",
    "Department": "单位",
    "No region": "未填区域",
    "No category": "未分类",
    "Tickets": "工单",
    "Median hours to accept": "签收用时中位数（小时）",
    "Median hours to reply": "答复用时中位数（小时）",
    "Median hours to close": "办结用时中位数（小时）",
    "Accepted": "签收数",
    "Replied": "答复数",
    "Closed": "办结数",
    "Returned": "退单数",
    "Handled on time": "按时办理量",
    "Overdue tickets": "超期量",
    "On-time rate": "按时办结率",
    "Satisfaction rate": "满意率",
    "15-second answer rate": "15秒接通率",
    "Date": "日期",
    "Figure": "指标",
    "This period": "本期",
    "Previous period": "上期",
    "Change vs previous period": "环比",
    "Same period last year": "去年同期",
    "Change vs last year": "同比",
    "Period": "统计周期",
    "Filters": "筛选条件",
    "All": "全部",
    "Show figures": "查询",
    "Export to Excel": "导出 Excel",
    "Print": "打印",
    "Save this query": "保存查询",
    "Name": "名称",
    "Saved queries": "我的查询",
    "Run": "查询",
    "Delete": "删除",
    "Saved.": "已保存。",
    "Deleted.": "已删除。",
    "The name needs 1 to 64 characters.": "名称须为 1 至 64 个字符。",
    "You already have a query of that name.": "已有同名查询。",
    "No such report.": "没有这个报表。",
    "%(field)s must be chosen from the list.": "%(field)s须从列表中选择。",
    "department": "单位", "channel": "渠道", "type": "类型", "category": "类别", "region": "区域",
    "urgency": "紧急程度",
    "urgency:normal": "一般", "urgency:urgent": "紧急", "urgency:emergency": "特急",
    "weekday:0": "周一", "weekday:1": "周二", "weekday:2": "周三", "weekday:3": "周四", "weekday:4": "周五",
    "weekday:5": "周六", "weekday:6": "周日",
    "Call figures cover the whole hotline and are shown to the hotline centre and leaders only.":
        "话务数据属全市热线，仅对热线办和领导显示。",
    "Durations run from the dispatch to the first acceptance and to the reply, and from recording to closing; buckets in hours.":
        "时长：自派单至首次签收、至答复，自登记至办结；分段以小时计。",
    **{label: label[:-1] + "小时" for label in bucket_labels()},  # handling-speed buckets: 0-4h -> 0-4小时
    # Assessment
    "Assessment": "统一考核",
    "Month": "月份",
    "Score": "得分",
    "Rank": "排名",
    "Weight": "权重",
    "Formula": "公式",
    "Kind": "类型",
    "Better": "方向",
    "no data": "无数据",
    "Evidence": "依据",
    "Appeals": "申诉",
    "Appeal": "申诉",
    "Reason": "理由",
    "Accept": "采纳",
    "Reject": "驳回",
    "Close the month": "月度结账",
    "Indicators": "考核指标",
    "Ticket": "工单",
    "Indicator": "指标",
    "State": "状态",
    "appeal:pending": "待处理", "appeal:accepted": "已采纳", "appeal:rejected": "已驳回",
    "Closed on %(at)s: these scores are final.": "已于 %(at)s 结账，分数已冻结。",
    "Appeal raised.": "申诉已提交。",
    "Appeal decided.": "申诉已处理。",
    "Month closed.": "已结账。",
    "Indicator saved.": "指标已保存。",
    "A formula is required.": "请填写公式。",
    "A formula may have at most %(max)s characters.": "公式最多 %(max)s 个字符。",
    "The formula %(text)s is not a valid expression.": "公式 %(text)s 不是合法的表达式。",
    "The formula %(text)s divides by zero.": "公式 %(text)s 的除数为零。",
    "Unknown count %(name)s in the formula.": "公式中有未知的计数项 %(name)s。",
    "Only numbers, count names, + - * / and parentheses are allowed.": "只允许数字、计数项、+ - * / 和括号。",
    "The code needs 1 to 32 letters, digits or underscores.": "代码须为 1 至 32 个字母、数字或下划线。",
    "The weight must be a number.": "权重须为数字。",
    "The weight must lie between 0 and 1000.": "权重须在 0 至 1000 之间。",
    "Unknown indicator kind.": "未知的指标类型。",
    "A month must look like 2026-03.": "月份格式应为 2026-03。",
    "The month %(month)s is already closed.": "%(month)s 已结账。",
    "The month %(month)s is not over yet.": "%(month)s 尚未结束。",
    "Decide the pending appeals of %(month)s first.": "请先处理 %(month)s 的待处理申诉。",
    "The month %(month)s is closed: its scores are final.": "%(month)s 已结账，分数不再变动。",
    "An appeal needs a reason of at most 1000 characters.": "申诉须填写理由（最多 1000 字）。",
    "Only a department may appeal.": "只有成员单位可以申诉。",
    "Unknown indicator.": "未知的指标。",
    "Ticket %(ticket)s is not counted for your department in this indicator.": "工单 %(ticket)s 不计入本单位此项指标。",
    "This ticket has already been appealed in this indicator.": "该工单在此指标上已申诉过。",
    "No such appeal.": "没有这条申诉。",
    "This appeal has already been decided.": "该申诉已处理。",
    "Scores: rates earn weight × value (lower-is-better rates weight × (1 − value)); counts deduct weight each; indicators without data are left out and the other rate weights scaled up.":
        "计分：比率类得 权重 × 值（越低越好的比率得 权重 × (1 − 值)）；计数类每件扣 权重 分；无数据的指标不计，其余比率权重按比例放大。",
    "Code": "代码", "Edit": "编辑", "New indicator": "新增指标",
    "kind:rate": "比率", "kind:count": "计数", "better:high": "越高越好", "better:low": "越低越好",
    "Formulas use the counts below, by name, with numbers, + - * / and parentheses.":
        "公式由下列计数项（按名称）、数字、+ - * / 和括号组成。",
    **{f"indicator:{code}": zh for code, zh in {
        "accept_in_time": "签收及时率", "on_time": "按时办结率", "satisfaction": "满意率", "return_rate": "退单率",
        "extension_rate": "延期率", "reopen_rate": "重办率", "supervised": "督办件数",
        "callback_score": "回访满意度"}.items()},
    # stats.assessment.COUNT_NAMES
    "Tickets dispatched to the department (dispatch or reopen) in the month": "本月派至本单位的工单（派单或重办）",
    "Acceptances in the month": "本月签收的工单",
    "Acceptances within 24 hours of the dispatch": "派单后 24 小时内签收的工单",
    "Tickets whose deadline falls in the month": "办理期限落在本月的工单",
    "Of those, replied by the deadline": "其中在期限内答复的工单",
    "Tickets returned to the centre in the month": "本月退回热线办的工单",
    "Extensions granted in the month": "本月获准延期的工单",
    "Tickets reopened in the month": "本月重办的工单",
    "Supervision orders in the month": "本月督办的工单",
    "Call-back ratings in the month": "本月回访评价的工单",
    "Rated satisfied": "评价为满意",
    "Rated basically satisfied": "评价为基本满意",
    "Rated unsatisfied": "评价为不满意",
    **{f"count:{name}": zh for name, zh in {
        "dispatched": "派单数", "accepted": "签收数", "accepted_in_time": "及时签收数", "due": "到期数",
        "on_time": "按时办结数", "returned": "退单数", "extended": "延期数", "reopened": "重办数",
        "supervised": "督办数", "rated": "回访数", "satisfied": "满意数", "basic": "基本满意数",
        "unsatisfied": "不满意数"}.items()},
}, "en": {
    # Codes shown by name (an untranslated "kind:code" id would show the code itself).
    "kind:rate": "Rate", "kind:count": "Count", "better:high": "Higher is better", "better:low": "Lower is better",
    "urgency:normal": "Normal", "urgency:urgent": "Urgent", "urgency:emergency": "Emergency",
    "weekday:0": "Mon", "weekday:1": "Tue", "weekday:2": "Wed", "weekday:3": "Thu", "weekday:4": "Fri",
    "weekday:5": "Sat", "weekday:6": "Sun",
    "appeal:pending": "Pending", "appeal:accepted": "Accepted", "appeal:rejected": "Rejected",
    **{f"indicator:{code}": en for code, en in {
        "accept_in_time": "Timely acceptance rate", "on_time": "On-time rate", "satisfaction": "Satisfaction rate",
        "return_rate": "Return rate", "extension_rate": "Extension rate", "reopen_rate": "Reopen rate",
        "supervised": "Supervision orders", "callback_score": "Call-back satisfaction"}.items()},
    **{f"count:{name}": en for name, en in {
        "dispatched": "Dispatched", "accepted": "Accepted", "accepted_in_time": "Accepted in time", "due": "Due",
        "on_time": "Replied on time", "returned": "Returned", "extended": "Extended", "reopened": "Reopened",
        "supervised": "Supervised", "rated": "Rated", "satisfied": "Satisfied", "basic": "Basically satisfied",
        "unsatisfied": "Unsatisfied"}.items()},
}}

_DEFAULT_NAMES = {spec.code: spec.name for spec in DEFAULT_INDICATORS}


def count_labels() -> dict[str, str]:
    """Count name -> its label in the user's language (formulas are shown, and may be typed, with these)."""
    return {name: _(f"count:{name}") for name in COUNT_NAMES}


def indicator_name(code: str, name: str) -> str:
    """A shipped indicator under its shipped name in the user's language; one an administrator named, as named."""
    return _(f"indicator:{code}") if _DEFAULT_NAMES.get(code) == name else name


def _assessment_words() -> dict:
    """What the assessment templates need to show indicators, formulas and counts in words."""
    return {"indicator_name": indicator_name, "shown_formula": lambda text: rename(text, count_labels()),
            "count_names": COUNT_NAMES}

TITLES = {"calls": "Calls in and out", "agents": "Per agent", "region": "Tickets by region",
          "category": "Tickets by category", "status": "Tickets by status now", "urgency": "Tickets by urgency",
          "speed": "Handling speed", "departments": "Every department"}


def _(message: str, **values) -> str:
    return current_app.extensions["hotline"].gettext(message, **values)


def _clock():
    return current_app.extensions["hotline"].services.clock


def _scope(call_figures: bool = False) -> Scope:
    """The viewer's scope; a viewer without the stats.view right (or a department user asking for call
    figures) is audited and refused."""
    scope = scope_for(g.user)
    if scope is None or (call_figures and not scope.city):
        audit("stats_denied", "stats", request.path, request.query_string.decode("utf-8", "replace")[:200])
        abort(403)
    return scope


def _error(exc) -> str:
    values = {k: _(v) if isinstance(v, str) else v for k, v in exc.values.items()}
    return _(exc.message, **values)


def _choices(scope: Scope) -> dict:
    departments = Department.select().order_by(Department.path)
    if not scope.city:
        departments = departments.where(Department.path.startswith(scope.department.path))
    return {"departments": [(d.id, "　" * (d.path.count("/") - 2) + d.name) for d in departments],
            "channels": CHANNELS, "types": TICKET_TYPES, "urgencies": URGENCIES,
            "categories": list(Category.select(Category.id, Category.name).order_by(Category.sort, Category.id).tuples()),
            "regions": list(Region.select(Region.id, Region.name).order_by(Region.level, Region.id).tuples())}


def _label(code, kind):
    from webui.app import code_label

    return code_label(code, kind, g.get("lang") or "zh", _)


# --------------------------------------------------------------------------------------- reports
def _build(report: str, scope: Scope, period, filters, tz, now) -> tuple[list[Table], dict]:
    """The tables and the chart of one report."""
    start, end = period.bounds(tz)
    chart: dict = {}
    if report == "calls":
        traffic = call_traffic(rq.call_rows(start, end), tz)
        totals = {"inbound": traffic.total("inbound"), "outbound": traffic.total("outbound")}
        prev = rq.call_totals(*previous_period(period).bounds(tz))
        year = rq.call_totals(*year_earlier(period).bounds(tz))
        compare = compare_rows([("inbound", _("Inbound calls")), ("outbound", _("Outbound calls"))],
                               totals, prev, year)
        days = period.day_list()
        by_day = [{"key": d.isoformat(), "name": d.isoformat(), **traffic.by_day.get(d, {"inbound": 0, "outbound": 0})}
                  for d in days]
        by_hour = [{"key": str(h), "name": f"{h:02d}:00", **traffic.by_hour[h]} for h in range(24)]
        io_cols = [Column("name", "Date", "text"), Column("inbound", "Inbound calls"), Column("outbound", "Outbound calls")]
        chart = {"line": line_chart(days, [("calls", _("Inbound calls"), [r["inbound"] for r in by_day]),
                                           ("tickets", _("Outbound calls"), [r["outbound"] for r in by_day])]),
                 "heat": heat_cells(traffic.heat)}
        return [_compare_table(compare), Table("Calls per day", io_cols, by_day, "by_day"),
                Table("Calls per hour of day", [Column("name", "Hour of day", "text")] + io_cols[1:], by_hour, "by_hour"),
                Table("Calls per weekday and hour", [Column("name", "Date", "text")]
                      + [Column(str(h), f"{h:02d}") for h in range(24)],
                      [{"key": str(d), "name": _(f"weekday:{d}"), **{str(h): traffic.heat[d][h] for h in range(24)}}
                       for d in range(7)], "heat")], chart
    if report == "agents":
        figures, names = rq.agent_figures(start, end)
        rows = [{"key": str(u), "name": names.get(u, str(u)), **f.row()} for u, f in figures.items()]
        rows = sort_rows(rows, "name", False)
        cols = [Column("name", "Agent", "text"), Column("calls", "Calls"), Column("talk", "Talk time (s)", SECONDS),
                Column("hold", "Hold time (s)", SECONDS), Column("after_call_work", "After-call work (s)", SECONDS),
                Column("available", "Ready time (s)", SECONDS), Column("on_break", "Break time (s)", SECONDS),
                Column("tickets", "Tickets recorded"), Column("answer_in_target_rate", "15-second answer rate", RATE),
                Column("satisfaction_rate", "Satisfaction rate", RATE)]
        chart = {"bars": bar_chart([(r["name"], r["calls"]) for r in rows[:20]])}
        return [Table("Per agent", cols, rows, "agents")], chart
    if report in ("region", "category", "status", "urgency"):
        spans = [rq.tickets_by(report, scope, filters, *p.bounds(tz))
                 for p in (period, previous_period(period), year_earlier(period))]
        if report in ("region", "category"):
            parents, names = rq.tree(Region if report == "region" else Category)
            unknown = _("No region") if report == "region" else _("No category")
            rows = tree_rows(spans[0], parents, names, unknown)
            prev = {r["key"]: r["value"] for r in tree_rows(spans[1], parents, names, unknown)}
            year = {r["key"]: r["value"] for r in tree_rows(spans[2], parents, names, unknown)}
            for row in rows:
                row["name"] = "　" * row["level"] + row["name"]
            compare = compare_rows([(r["key"], r["name"]) for r in rows], {r["key"]: r["value"] for r in rows},
                                   prev, year)
        else:
            order = wf.STATUSES if report == "status" else URGENCIES
            kind = "status" if report == "status" else "urgency"
            keys = [k for k in order if k in spans[0] or k in spans[1] or k in spans[2]]
            compare = compare_rows([(k, _label(k, kind)) for k in keys], *spans)
        if report == "status":  # status now: a comparison with earlier periods' status today means little
            table = Table(TITLES[report], [Column("name", "Status", "text"), Column("value", "Tickets")], compare,
                          "main")
        else:
            table = _compare_table(compare, TITLES[report], report.capitalize())
        chart = {"bars": bar_chart([(r["name"].strip("　"), r["value"]) for r in compare[:20]])}
        return [table], chart
    paths, names = department_directory()
    depth = scope.ranking_depth
    units = rq.units_at(depth, None if scope.city else scope.department)
    if report == "speed":
        speeds = rq.speed_table(scope, filters, start, end, depth)
        labels = bucket_labels()
        rows = [{"key": str(u), "name": names.get(u, str(u)), **speeds[u]} for u in units if u in speeds]
        cols = [Column("name", "Department", "text")]
        for stage, title in (("accept", "Accepted"), ("reply", "Replied"), ("close", "Closed")):
            cols += [Column(f"{stage}_count", title), Column(f"{stage}_median", f"Median hours to {stage}", HOURS)]
            cols += [Column(f"{stage}_{label}", label) for label in labels]
        chart = {"bars": bar_chart([(r["name"], round(r["reply_median"] or 0)) for r in rows])}
        return [Table("Handling speed", cols, rows, "speed")], chart
    counts = rq.department_counts(scope, filters, start, end, now, paths, depth)
    rows = department_rows(units, names, *(counts[k] for k in ("volume", "closed", "on_time", "overdue", "rated",
                                                                "satisfied", "returned")))
    column = request.args.get("sort", "volume")
    if rows and column not in rows[0]:
        column = "volume"
    rows = sort_rows(rows, column, request.args.get("dir", "desc") != "asc")
    cols = [Column("name", "Department", "text"), Column("volume", "Tickets"), Column("closed", "Closed"),
            Column("on_time", "Handled on time"), Column("overdue", "Overdue tickets"),
            Column("on_time_rate", "On-time rate", RATE), Column("returned", "Returned"),
            Column("satisfaction_rate", "Satisfaction rate", RATE)]
    chart = {"bars": bar_chart([(r["name"], r["volume"]) for r in rows[:20]])}
    return [Table("Every department", cols, rows, "departments")], chart


def _compare_table(rows, title="Calls in and out", first="Figure") -> Table:
    return Table(title, [Column("name", first, "text"), Column("value", "This period"),
                         Column("previous", "Previous period"), Column("vs_previous", "Change vs previous period", "change"),
                         Column("year_ago", "Same period last year"),
                         Column("vs_year_ago", "Change vs last year", "change")], rows, "compare")


def _show(value, kind):
    if kind == "text":
        return "" if value is None else value
    if kind == "change":
        return format_change(value, COUNT)
    if kind == HOURS:
        return "—" if value is None else f"{value:.1f}"
    return format_value(value, kind)


@bp.route("/r/<report>")
@login_required
def report_page(report: str):
    """One report: filters, table(s), chart, 环比/同比, Excel (format=xlsx), print layout."""
    if report not in REPORTS:
        abort(404)
    scope = _scope(call_figures=report in CALL_REPORTS)
    clock = _clock()
    args = {k: v for k, v in request.args.items() if k not in ("format",) and v}
    try:
        period = parse_period(request.args.get("period"), request.args.get("from"), request.args.get("to"),
                              clock.today())
        filters = parse_filters(request.args, CHANNELS, TICKET_TYPES)
        rq.filter_department(scope, filters)
    except (PeriodError, FilterError) as exc:
        return render_template("stats/report.html", report=report, title=TITLES[report], error=_error(exc),
                               tables=[], chart={}, args=args, kinds=KINDS, choices=_choices(scope),
                               saved=_saved(), show=_show, period=None, reports=REPORTS, titles=TITLES), 400
    tables, chart = _build(report, scope, period, filters, clock.tz, now_utc())
    detail = f"{report} {period.first}..{period.last} {urlencode(filters.as_args())}"[:250]
    scope_id = "city" if scope.city else str(scope.department.id)
    if request.args.get("format") == "xlsx":
        from stats.export import XLSX_MIME, tables_xlsx

        audit("stats_export", "stats", scope_id, detail)
        body = tables_xlsx(TITLES[report], [("Period", f"{period.first} ~ {period.last}"),
                                            ("Filters", urlencode(filters.as_args()))], tables, _)
        name = f"12345-{report}-{period.first:%Y%m%d}-{period.last:%Y%m%d}.xlsx"
        return Response(body, mimetype=XLSX_MIME, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                           "Cache-Control": "no-store"})
    audit("stats_view", "stats", scope_id, detail)
    return render_template("stats/report.html", report=report, title=TITLES[report], error="", tables=tables,
                           chart=chart, args=args, kinds=KINDS, choices=_choices(scope), saved=_saved(),
                           show=_show, period=period, reports=REPORTS, titles=TITLES)


# ------------------------------------------------------------------------------------- saved queries
def _saved() -> list[SavedReport]:
    return saved_reports.own(g.user.id)


@bp.route("/saved", methods=["POST"])
@login_required
def save_query():
    """Save the current report's filters under a name (the user's own list)."""
    _scope()
    report, name = request.form.get("report", ""), (request.form.get("name") or "").strip()
    if report not in REPORTS:
        abort(404)
    query = urlencode([(k, v) for k, v in parse_qsl(request.form.get("query", ""))
                       if k in ("period", "from", "to", "department", "channel", "type", "category", "region",
                                "urgency", "sort", "dir")])[:500]
    try:
        saved = saved_reports.save(g.user.id, name, report, query)
    except saved_reports.SavedReportError as exc:
        flash(_(str(exc)), "error")
    else:
        audit("stats_query_save", "saved_report", saved.id, f"{report} {query}"[:250])
        flash(_("Saved."), "success")
    return redirect(url_for("stats_reports.report_page", report=report) + ("?" + query if query else ""))


def _own_saved(saved_id: int) -> SavedReport:
    saved = saved_reports.get_own(g.user.id, saved_id)
    if saved is None:  # another user's query is not there for you
        abort(404)
    return saved


@bp.route("/saved/<int:saved_id>")
@login_required
def run_query(saved_id: int):
    _scope()
    saved = _own_saved(saved_id)
    return redirect(url_for("stats_reports.report_page", report=saved.report) + ("?" + saved.query if saved.query else ""))


@bp.route("/saved/<int:saved_id>/delete", methods=["POST"])
@login_required
def delete_query(saved_id: int):
    _scope()
    saved = _own_saved(saved_id)
    saved_reports.delete(saved)
    audit("stats_query_delete", "saved_report", saved_id, saved.name)
    flash(_("Deleted."), "success")
    return redirect(url_for("stats_reports.report_page", report=saved.report))


# ---------------------------------------------------------------------------------------- assessment
def _month():
    clock = _clock()
    text = request.values.get("month") or f"{clock.today():%Y-%m}"
    try:
        return month_of(text)
    except FormulaError as exc:
        from webui.app import bad_request

        bad_request(_error(exc))


def _unit_of_user(scope: Scope) -> int | None:
    if scope.city:
        return None
    paths, _names = department_directory()
    return unit_of(scope.department.id, paths, assessing.UNIT_DEPTH)


@bp.route("/assessment")
@login_required
def assessment():
    """The month's score sheet with ranking, evidence links and appeals (a unit sees its own row)."""
    scope = _scope()
    first = _month()
    clock = _clock()
    sheet = assessing.load_sheet(first, clock.tz, now_utc())
    own = _unit_of_user(scope)
    scores = sheet.scores if own is None else [s for s in sheet.scores if s.unit == own]
    appeals = Appeal.select().where(Appeal.month == sheet.month).order_by(Appeal.id)
    if own is not None:
        appeals = appeals.where(Appeal.department == own)
    _paths, names = department_directory()
    audit("assessment_view", "assessment", sheet.month, "city" if own is None else str(own))
    if request.args.get("format") == "xlsx":
        return _assessment_xlsx(sheet, scores, names)
    return render_template("stats/assessment.html", sheet=sheet, scores=scores, names=names, appeals=list(appeals),
                           spec_names={s.code: indicator_name(s.code, s.name) for s in sheet.indicators},
                           own=own, **_assessment_words(), centre=bool(g.user.role_set & CENTRE_ROLES),
                           admin=bool(g.user.role_set & ADMIN_ROLES), reports=REPORTS, titles=TITLES)


def _assessment_xlsx(sheet, scores, names):
    from stats.export import XLSX_MIME, tables_xlsx

    cols = [Column("rank", "Rank"), Column("name", "Department", "text")]
    cols += [Column(s.code, indicator_name(s.code, s.name), SECONDS) for s in sheet.indicators] + [Column("total", "Score", SECONDS)]
    rows = [{"rank": s.rank, "name": names.get(s.unit, str(s.unit)), "total": s.total,
             **{c.code: c.value for c in s.cells}} for s in scores]
    audit("assessment_export", "assessment", sheet.month, "")
    body = tables_xlsx("Assessment", [("Month", sheet.month)], [Table("Assessment", cols, rows)], _)
    return Response(body, mimetype=XLSX_MIME, headers={
        "Content-Disposition": f'attachment; filename="12345-assessment-{sheet.month}.xlsx"',
        "Cache-Control": "no-store"})


@bp.route("/assessment/evidence")
@login_required
def evidence():
    """The tickets behind one count of one indicator of one unit: exactly those, appeals left out."""
    scope = _scope()
    first = _month()
    try:
        unit = int(request.args.get("unit", ""))
    except ValueError:
        abort(404)
    own = _unit_of_user(scope)
    if own is not None and unit != own:
        audit("stats_denied", "assessment", unit, "evidence of another department")
        abort(403)
    code, name = request.args.get("code", ""), request.args.get("name", "")
    sheet = assessing.load_sheet(first, _clock().tz, now_utc())
    ids = assessing.cell_tickets(sheet, unit, code, name)
    tickets = list(Ticket.select().where(Ticket.id.in_(ids or [0])).order_by(Ticket.id))
    audit("assessment_evidence", "assessment", sheet.month, f"{unit} {code} {name}"[:250])
    _paths, names = department_directory()
    spec_name = next((indicator_name(s.code, s.name) for s in sheet.indicators if s.code == code), code)
    return render_template("stats/evidence.html", sheet=sheet, unit=unit, unit_name=names.get(unit, ""), code=code,
                           spec_name=spec_name, name=name, tickets=tickets, own=own, reports=REPORTS, titles=TITLES)


@bp.route("/assessment/appeal", methods=["POST"])
@login_required
def appeal():
    """A department contests a ticket's counting in one indicator."""
    _scope()
    first = _month()
    try:
        ticket_id = int(request.form.get("ticket", ""))
    except ValueError:
        ticket_id = 0
    indicator = request.form.get("indicator", "")
    try:
        made = assessing.raise_appeal(g.user, first, _clock().tz, now_utc(), ticket_id, indicator,
                                      request.form.get("reason", ""))
    except FormulaError as exc:
        audit("assessment_appeal_refused", "ticket", ticket_id, f"{indicator}: {exc}"[:250])
        return render_template("error.html", code=400, title=_("Appeal"), message=_error(exc)), 400
    audit("assessment_appeal", "ticket", ticket_id, f"{made.month} {indicator}")
    flash(_("Appeal raised."), "success")
    return redirect(url_for("stats_reports.assessment", month=made.month))


@bp.route("/assessment/appeals/<int:appeal_id>", methods=["POST"])
@login_required
def decide(appeal_id: int):
    """The centre accepts or rejects an appeal."""
    _scope()
    if not g.user.role_set & CENTRE_ROLES:
        audit("stats_denied", "appeal", appeal_id, "decide")
        abort(403)
    accept = request.form.get("decision") == "accept"
    try:
        made = assessing.decide_appeal(appeal_id, accept, request.form.get("note", ""), g.user, now_utc())
    except FormulaError as exc:
        return render_template("error.html", code=400, title=_("Appeal"), message=_error(exc)), 400
    audit("assessment_appeal_" + made.state, "ticket", made.ticket_id, f"{made.month} {made.indicator}")
    flash(_("Appeal decided."), "success")
    return redirect(url_for("stats_reports.assessment", month=made.month))


@bp.route("/assessment/close", methods=["POST"])
@login_required
def close_month():
    """Freeze a month's scores (the centre)."""
    _scope()
    if not g.user.role_set & CENTRE_ROLES:
        audit("stats_denied", "assessment", request.form.get("month", ""), "close")
        abort(403)
    first = _month()
    try:
        closed = assessing.close_month(first, _clock().tz, now_utc(), g.user)
    except FormulaError as exc:
        return render_template("error.html", code=400, title=_("Close the month"), message=_error(exc)), 400
    audit("assessment_close", "assessment", closed.month, "")
    flash(_("Month closed."), "success")
    return redirect(url_for("stats_reports.assessment", month=closed.month))


@bp.route("/assessment/indicators", methods=["GET", "POST"])
@login_required
def indicators():
    """Administrators configure the indicators (formula, weight, kind, direction)."""
    _scope()
    if not g.user.role_set & ADMIN_ROLES:
        audit("stats_denied", "assessment", "indicators", request.method)
        abort(403)
    error = ""
    if request.method == "POST":
        try:
            spec = check_indicator(request.form.get("code", ""), request.form.get("name", ""),
                                   unlabel(request.form.get("formula", ""), count_labels()), request.form.get("weight", ""),
                                   request.form.get("kind", "rate"), request.form.get("better", "high"))
        except FormulaError as exc:
            error = _error(exc)
        else:
            assessing.save_indicator(spec)
            audit("assessment_indicator", "indicator", spec.code, f"{spec.formula} x{spec.weight}"[:250])
            flash(_("Indicator saved."), "success")
            return redirect(url_for("stats_reports.indicators"))
    specs = assessing.indicators()
    form = request.form
    editing = next((s for s in specs if s.code == request.args.get("edit")), None)
    if editing is not None and request.method == "GET":  # the form filled with the indicator to change
        form = {"code": editing.code, "name": editing.name, "formula": rename(editing.formula, count_labels()),
                "weight": f"{editing.weight:g}", "kind": editing.kind, "better": editing.better}
    return render_template("stats/indicators.html", specs=specs, **_assessment_words(), editing=editing,
                           error=error, form=form, reports=REPORTS, titles=TITLES), (400 if error else 200)
