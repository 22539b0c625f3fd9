"""Hotspots and early warning (热点预警) and the dispatch suggestions' record (智能派单) under /stats:
open warnings (the centre marks them handled), rising topics of the period, a word cloud, drill-down to the
tickets behind a topic or a warning; the suggestion model's training runs and how often dispatchers took
its suggestion. Figures come from stats.hotspots and stats.suggestions; scope and the stats.view right
from stats.queries.scope_for as on /stats, every view audited and a refusal audited before its 403.
"""
from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for

from caseflow.models import Category, Region
from stats import hotspots, suggestions
from stats.periods import PeriodError, parse_period
from stats.queries import Scope, scope_for
from webui.app import NavItem
from webui.security import audit, login_required, now_utc

log = logging.getLogger(__name__)

bp = Blueprint("stats_hotspots", __name__, url_prefix="/stats")

CENTRE_ROLES = frozenset({"centre", "centre_leader", "admin"})
NAV = [NavItem("Hotspot warnings", "stats_hotspots.hotspots", frozenset({"leader", "centre", "centre_leader", "admin"}),
               order=81)]
ACCEPTANCE_DAYS = 30
PERIODS = ("week", "today", "month", "custom")

MESSAGES = {"zh": {
    "Hotspot warnings": "热点预警",
    "alarm:hotspot": "热点预警",  # the alarm banner and list name the hotspot alarm (ops.alarms kind)
    "Hotspots": "热点分析",
    "Open warnings": "待处理预警",
    "Recently handled": "近期已处理",
    "No open warnings.": "暂无待处理预警。",
    "Hot word": "热词",
    "Warning place": "地点",
    "Tickets in the window": "窗口内件数",
    "Baseline per window": "基线（每窗口）",
    "Time window": "时间窗口",
    "Raised": "预警时间",
    "Handled at": "处理时间",
    "Handled by": "处理人",
    "Mark handled": "标记已处理",
    "Warning marked handled.": "预警已标记为已处理。",
    "No such warning.": "没有这条预警。",
    "A note may have at most 255 characters.": "备注最多 255 个字符。",
    "Rising topics": "上升热词",
    "Tickets this period": "本期件数",
    "Tickets the period before": "上期件数",
    "Change in tickets": "增减",
    "Word cloud": "词云",
    "No topics in this period.": "本期没有热词。",
    "Tickets about %(topic)s": "“%(topic)s”相关工单",
    "level:street": "街道", "level:district": "区县",
    "A topic is needed.": "请指定热词。",
    "Topics are the telling words of the title and content of each ticket; a warning is raised when a topic reaches %(min)s tickets in one street or district within %(hours)s hours and at least %(factor)s times its usual rate there (the mean of the %(windows)s windows before).":
        "热词取自每件工单标题和内容中的关键词；某热词在同一街道或区县 %(hours)s 小时内达到 %(min)s 件，且不低于该地平时水平（此前 %(windows)s 个窗口的平均值）的 %(factor)s 倍时，发出预警。",
    # Dispatch suggestions
    "Dispatch suggestions": "智能派单",
    "Suggested from past dispatches": "历史派单智能建议",
    "Suggestions only: the dispatcher decides.": "仅供参考，由派单员决定。",
    "Similar open tickets": "相似的在办工单",
    "No suggestion yet: %(reason)s": "暂无建议：%(reason)s",
    "the model has not been trained yet.": "模型尚未训练。",
    "the suggestion service is not answering.": "智能派单服务暂无响应。",
    "Training runs": "训练记录",
    "Trained at": "训练时间",
    "Training result": "结果",
    "Tickets learned from": "学习工单数",
    "Departments learned": "单位数",
    "Top-1 accuracy": "首选准确率",
    "Top-3 accuracy": "前三准确率",
    "Training seconds": "耗时（秒）",
    "run:trained": "已训练", "run:cold": "冷启动", "run:failed": "失败",
    "Acceptance in the last %(days)s days": "近 %(days)s 天采纳情况",
    "Suggestions shown": "展示建议数",
    "Dispatched after": "随后派单数",
    "First suggestion taken": "采纳首选",
    "One of the three taken": "采纳前三之一",
    "Accuracy is measured on a fifth of the history held out before the final training; the model is retrained every night from the closed tickets.":
        "准确率在最终训练前留出的五分之一历史上测得；模型每晚根据已办结工单重新训练。",
    "No training has run yet.": "尚未进行训练。",
}, "en": {
    "alarm:hotspot": "Hotspot warning",
    "level:street": "street", "level:district": "district",
    "run:trained": "trained", "run:cold": "cold start", "run:failed": "failed",
}}


def _(message: str, **values) -> str:
    return current_app.extensions["hotline"].gettext(message, **values)


def _clock():
    return current_app.extensions["hotline"].services.clock


def _settings() -> hotspots.HotspotSettings:
    try:
        return hotspots.HotspotSettings.from_extra(current_app.extensions["hotline"].config.extra)
    except hotspots.HotspotError:
        return hotspots.HotspotSettings()  # the product refuses to start with a bad one; the page shows defaults


def _scope(city_only: bool = False) -> Scope:
    """The viewer's scope; refused (audited, 403) without the stats.view right, or below the city when the
    page is the city's."""
    scope = scope_for(g.user)
    if scope is None or (city_only and not scope.city):
        audit("stats_denied", "stats", request.path, request.query_string.decode("utf-8", "replace")[:200])
        abort(403)
    return scope


def _int_arg(name: str) -> int | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 12:
        from webui.app import bad_request

        bad_request(_("%(field)s must be chosen from the list.", field=_(name.capitalize())))
    return int(raw)


def _period():
    clock = _clock()
    kind = request.args.get("period") or ("custom" if request.args.get("from") or request.args.get("to") else "week")
    try:
        period = parse_period(kind, request.args.get("from"), request.args.get("to"), clock.today())
    except PeriodError as exc:
        from webui.app import bad_request

        values = {k: _(v) if isinstance(v, str) else v for k, v in exc.values.items()}
        bad_request(_(exc.message, **values))
    return period


def _filters():
    region, category = _int_arg("region"), _int_arg("category")
    if region is not None and Region.get_or_none(Region.id == region) is None:
        from webui.app import bad_request

        bad_request(_("%(field)s must be chosen from the list.", field=_("Region")))
    if category is not None and Category.get_or_none(Category.id == category) is None:
        from webui.app import bad_request

        bad_request(_("%(field)s must be chosen from the list.", field=_("Category")))
    return region, category


def _span(period) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the period as stored, ending at the current hour's end when the period runs on."""
    start, end = period.bounds(_clock().tz)
    now_end = hotspots.hour_of(now_utc()) + dt.timedelta(hours=1)
    return start, min(end, now_end) if now_end > start else end


def _choices() -> dict:
    return {"categories": list(Category.select(Category.id, Category.name).order_by(Category.sort, Category.id).tuples()),
            "regions": list(Region.select(Region.id, Region.name, Region.level).order_by(Region.level, Region.id).tuples())}


@bp.route("/hotspots", endpoint="hotspots")
@login_required
def hotspots_page():
    """Open and recently handled warnings, rising topics of the period, the word cloud (filters: period,
    region, category)."""
    scope = _scope()
    period = _period()
    region, category = _filters()
    start, end = _span(period)
    department = scope.department
    counts = hotspots.topic_counts(start, end, department=department, region=region, category=category)
    rising = hotspots.rising_topics(start, end, department=department, region=region, category=category)
    warnings = hotspots.open_warnings(department=department)
    handled = [w for w in hotspots.recent_warnings(now_utc() - dt.timedelta(days=7), department=department)
               if w.handled_at is not None]
    args = {k: v for k, v in request.args.items() if k in ("period", "from", "to", "region", "category") and v}
    audit("stats_view", "hotspots", "city" if scope.city else str(scope.department.id),
          f"{period.first}..{period.last} {urlencode(args)}"[:250])
    settings = _settings()
    return render_template("stats/hotspots.html", warnings=warnings, handled=handled, rising=rising,
                           cloud=hotspots.cloud(counts), period=period, args=args, choices=_choices(),
                           may_handle=bool(g.user.role_set & CENTRE_ROLES), settings=settings,
                           places=hotspots.place_names([w.region_id for w in warnings + handled]))


@bp.route("/hotspots/tickets")
@login_required
def hotspot_tickets():
    """The tickets behind a topic in the period (with the page's filters), or behind a warning."""
    scope = _scope()
    department = scope.department
    warning_id = _int_arg("warning")
    if warning_id is not None:
        warning = hotspots.HotspotWarning.get_or_none(hotspots.HotspotWarning.id == warning_id)
        if warning is None:
            abort(404)
        tickets = hotspots.warning_tickets(warning, department=department)
        if department is not None and not tickets:
            audit("stats_denied", "hotspot", warning_id, "a warning outside the department's tickets")
            abort(403)
        topic = warning.topic
    else:
        topic = (request.args.get("topic") or "").strip()[:32]
        if not topic:
            from webui.app import bad_request

            bad_request(_("A topic is needed."))
        period = _period()
        region, category = _filters()
        start, end = _span(period)
        tickets = hotspots.tickets_for(topic, start, end, department=department, region=region, category=category)
    audit("stats_view", "hotspot_tickets", "city" if scope.city else str(scope.department.id),
          f"{topic} {request.query_string.decode('utf-8', 'replace')}"[:250])
    return render_template("stats/hotspot_tickets.html", topic=topic, tickets=tickets)


@bp.route("/hotspots/warnings/<int:warning_id>/handle", methods=["POST"])
@login_required
def handle_warning(warning_id: int):
    """The centre marks a warning handled; its alarm is cleared from the consoles (audited)."""
    _scope(city_only=True)
    if not g.user.role_set & CENTRE_ROLES:
        audit("stats_denied", "hotspot", warning_id, "handle")
        abort(403)
    try:
        warning = hotspots.mark_handled(warning_id, g.user, request.form.get("note", ""), now_utc())
    except hotspots.HotspotError as exc:
        if str(exc) == "No such warning.":
            abort(404)
        from webui.app import bad_request

        bad_request(_(str(exc)))
    from ops.alarms import AlarmService

    AlarmService(notify=None).clear("hotspot", hotspots.alarm_subject(warning))
    audit("hotspot_handled", "hotspot", warning.id, f"{warning.topic} {warning.place_name}: {warning.handled_note}"[:250])
    flash(_("Warning marked handled."), "success")
    return redirect(url_for("stats_hotspots.hotspots"), code=303)


@bp.route("/suggestions")
@login_required
def suggestion_runs():
    """The dispatch suggestion model: its training runs and how often dispatchers took its suggestion."""
    _scope(city_only=True)
    runs = list(suggestions.SuggestionRun.select().order_by(suggestions.SuggestionRun.id.desc()).limit(20))
    taken = suggestions.acceptance(now_utc() - dt.timedelta(days=ACCEPTANCE_DAYS))
    audit("stats_view", "suggestions", "city", "")
    return render_template("stats/suggestions.html", runs=runs, taken=taken, days=ACCEPTANCE_DAYS)


# ----------------------------------------------------------------------- the ticket's dispatch form
def analysis_client():
    """The analysis process that holds the model (stats.analysis_process): the product's, else one for the
    configured socket (a web worker, tests)."""
    extensions = current_app.extensions
    client = extensions["hotline"].services.analysis
    if client is None:
        if "stats.analysis" not in extensions:
            from stats.analysis import AnalysisClient, socket_path

            extensions["stats.analysis"] = AnalysisClient(socket_path(extensions["hotline"].config))
        client = extensions["stats.analysis"]
    return client


def learned_suggestion(ticket) -> dict:
    """What the dispatch form shows: the model's three departments with confidence, or why there are none
    (no model yet, a cold start, or the analysis process not answering within its short timeout: the page
    never waits longer). The suggestion shown is kept to measure acceptance; nothing is selected for the
    dispatcher."""
    from stats.analysis import AnalysisUnavailable

    try:
        ranked, run_id = analysis_client().suggest(ticket)
    except AnalysisUnavailable as exc:
        log.warning("dispatch suggestion for ticket %s: %s", ticket.id, exc)
        return {"choices": (), "reason": _("the suggestion service is not answering.")}
    if ranked:
        made = suggestions.choose(ranked, run_id)
        if made.ready:
            suggestions.record_shown(ticket, made, now_utc())
            return {"choices": made.choices, "reason": ""}
    latest = suggestions.latest_run()
    if latest is not None and latest.state == "cold":
        reason = latest.message.split(" / ")[0] if (g.get("lang") or "zh") == "zh" else latest.message.split(" / ")[-1]
    else:
        reason = _("the model has not been trained yet.")
    return {"choices": (), "reason": reason}


def similar_tickets(ticket) -> list:
    """Open tickets on the same matter nearby, the user may see, with their similarity (merge candidates)."""
    from caseflow import services

    try:
        found = hotspots.similar_open_tickets(ticket)
    except Exception:  # noqa: BLE001 - a suggestion must not break the ticket page
        log.exception("similar tickets of %s failed", ticket.id)
        return []
    visible = []
    for other, score in found:
        try:
            services.get_ticket_for(g.user, other.id)
        except services.NotFound:
            continue
        visible.append((other, score))
    return visible
