"""The command screen (指挥大屏) at /stats/screen: a full-screen page for the duty leader and the centre's wall
with today's calls (waiting now, answered, abandoned), the 15-second answer rate against its target, agents
by state, today's tickets by channel, hour and district, overdue tickets and the open hotspot warnings
(stats.hotspots), drawn with
ECharts (npm, served by webui.blueprints.vendor) and kept live by a server-sent event stream. Tickets by district
are drawn on a map of the districts when an administrator stored their boundaries (stats.boundaries,
/admin/org/regions/), as a bar chart otherwise.

Who sees what is /stats's rule (stats.queries.scope_for): city roles the whole hotline, department users
their subtree's tickets and no call or agent figures; a user without the stats.view right gets a 403, audited
as on the report pages. Opening the screen is audited (stats_view); its stream and its JSON figures (for a
wall browser that cannot keep a stream open: polled with an ETag) are not, each refresh would be a row.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time

import gevent
from flask import (Blueprint, Response, abort, current_app, g, render_template, request, stream_with_context,
                   url_for)

from caseflow.roles import DEFAULT_PERMISSIONS
from ops.rules import Thresholds
from stats import boundaries
from stats import hotspots as spots
from stats import screen as figures
from stats.queries import STATS_PERMISSION, STATS_ROLES, Scope, scope_for
from webui import chat_pump, console
from webui.app import NavItem, code_label
from webui.blueprints.vendor import version_of
from webui.security import audit, login_required

log = logging.getLogger(__name__)

bp = Blueprint("stats_screen", __name__, url_prefix="/stats/screen")
NAV = [NavItem("Command screen", "stats_screen.index",
               frozenset(r for r in STATS_ROLES if STATS_PERMISSION in DEFAULT_PERMISSIONS.get(r, ())), order=71)]

REFRESH_SECONDS = 3.0   # how often a stream looks at the figures (HOTLINE_SCREEN_REFRESH_SECONDS)
SHOWN_WARNINGS = 8      # open hotspot warnings listed, newest first
CACHE_SECONDS = 2.0     # screens of one scope and language share a computation this long (..._CACHE_SECONDS)

MESSAGES = {"zh": {
    "Command screen": "指挥大屏",
    "Hotline 12345 command screen": "12345 热线指挥大屏",
    "Whole city": "全市",
    "Full screen": "全屏",
    "Exit": "退出",
    "Live": "实时",
    "Reconnecting…": "正在重新连接…",
    "Updated %(time)s": "更新于 %(time)s",
    "Callers waiting": "排队等待",
    "Longest wait": "最长等待",
    "Calls offered today": "今日人工呼入",
    "Answered today": "今日接通",
    "Abandoned today": "今日放弃",
    "15-second answer rate": "15秒接通率",
    "Service level today (target %(target)s)": "今日服务水平（目标 %(target)s）",
    "Agents on duty": "在岗话务员",
    "Agents by state": "话务员状态",
    "Tickets today": "今日受理工单",
    "Closed today": "今日办结",
    "Overdue now": "当前超期",
    "Tickets today by channel": "今日各渠道受理量",
    "Calls and tickets per hour today": "今日各时段话务量与工单量",
    "Tickets per hour today": "今日各时段工单量",
    "Tickets today by district": "今日各区域受理量",
    "Calls offered": "人工呼入量",
    "Tickets created": "工单受理量",
    "No region": "未填区域",
    "Not on the map: %(list)s": "未在地图上：%(list)s",
    "Hotspot warnings": "热点预警",
    "No hotspot warnings now.": "当前没有热点预警。",
    "%(place)s: %(topic)s, %(count)s tickets since %(time)s": "%(place)s：“%(topic)s”，%(time)s 起 %(count)s 件",
    "No tickets yet today.": "今日尚无工单。",
    "Call and agent figures cover the whole hotline and are shown to the hotline centre and leaders only.":
        "话务与话务员数据属全市热线，仅对热线办和领导显示。",
    "The charts cannot be drawn: the chart library is not installed on the server (the setup step installs it).":
        "图表无法显示：服务器未安装图表组件（由安装步骤安装）。",
    # Agent states (webui.console.STATE_LABELS)
    "Logged out": "已签出", "On a call": "通话中", "Caller on hold": "通话保持", "Ringing": "振铃中",
    "After-call work": "话后处理", "On break": "示忙", "Idle": "空闲",
}}


def _(message: str, **values) -> str:
    return current_app.extensions["hotline"].gettext(message, **values)


def _scope() -> Scope:
    """The viewer's scope; one without the stats.view right is audited and refused, as on /stats/r/."""
    scope = scope_for(g.user)
    if scope is None:
        audit("stats_denied", "stats", request.path, request.query_string.decode("utf-8", "replace")[:200])
        abort(403)
    return scope


def _scope_key(scope: Scope) -> str:
    return "city" if scope.city else str(scope.department.id)


def _target() -> float:
    """The 15-second answer rate's target in per cent (the alarm threshold, HOTLINE_ALARM_ANSWER_RATE)."""
    return Thresholds.from_extra(current_app.extensions["hotline"].config.extra).answer_rate


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def figures_of(scope: Scope) -> dict:
    """The screen's figures for ``scope`` in the viewer's language, as the page's script draws them."""
    state = current_app.extensions["hotline"]
    lang = g.get("lang") or "zh"
    seen = figures.load_screen(scope, state.services.clock.now(), _("No region"), console.agent_state,
                               acd=state.services.acd)
    hours = [f"{h:02d}" for h in seen.hours]
    out = {
        "city": scope.city,
        "tickets": {"today": seen.tickets_today, "closed": seen.tickets_closed_today, "overdue": seen.overdue_now},
        "channels": [{"name": code_label(code, "channel", lang, _), "value": count}
                     for code, count in sorted(seen.tickets_by_channel.items(), key=lambda kv: (-kv[1], kv[0]))],
        "districts": [{"name": name, "value": count} for name, count in seen.tickets_by_district],
        "hours": hours,
        "series": [{"key": "tickets", "name": _("Tickets created"), "values": seen.tickets_per_hour}],
        "hotspots": hotspots(scope),
        "map": district_map(),
    }
    if seen.calls is not None:
        rate = seen.answer_in_target_rate
        out["calls"] = {"waiting": seen.waiting.callers,
                        "longest_wait": console.duration(seen.waiting.longest_seconds, lang)
                        if seen.waiting.callers else "—",
                        "offered": seen.calls.offered, "answered": seen.calls.answered,
                        "abandoned": seen.calls.abandoned, "rate": _percent(rate),
                        "rate_value": None if rate is None else round(rate * 100, 1), "target": _target()}
        out["agents"] = [{"state": code, "name": _(console.STATE_LABELS[code]), "value": count}
                         for code, count in seen.agents.items()]
        out["on_duty"] = seen.agents_on_duty
        out["series"] = [{"key": "calls", "name": _("Calls offered"), "values": seen.calls_per_hour},
                         *out["series"]]
    return out


def district_map() -> dict | None:
    """The district map drawn now: its version, where its GeoJSON is, the districts' names on it; None
    without stored boundaries (the page draws its bar chart)."""
    row = boundaries.current()
    if row is None:
        return None
    names = boundaries.district_names(row.codes.split(","))
    if not names:
        return None
    return {"version": row.version, "url": url_for("stats_screen.map_json", v=row.version),
            "names": sorted(names.values())}


def hotspots(scope: Scope) -> dict:
    """The open hotspot warnings (stats.hotspots, newest first, a department's those with a ticket in its
    subtree), each as one line in the viewer's language with a link to its tickets."""
    clock = current_app.extensions["hotline"].services.clock
    warnings = spots.open_warnings(department=scope.department, limit=SHOWN_WARNINGS)
    places = spots.place_names([w.region_id for w in warnings])
    return {"items": [{
        "text": _("%(place)s: %(topic)s, %(count)s tickets since %(time)s",
                  place=places.get(w.region_id, w.place_name) or _("No region"), topic=w.topic, count=w.count,
                  time=clock.local(w.window_start).strftime("%H:%M")),
        "url": url_for("stats_hotspots.hotspot_tickets", warning=w.id)} for w in warnings]}


def cached_figures(scope: Scope) -> tuple[dict, str]:
    """(figures, their ETag), computed at most once per CACHE_SECONDS for a scope and language."""
    cache = current_app.extensions.setdefault("hotline_screen", {})
    key = (_scope_key(scope), g.get("lang") or "zh")
    now = time.monotonic()
    hit = cache.get(key)
    if hit is not None and now - hit[0] < float(current_app.config.get("HOTLINE_SCREEN_CACHE_SECONDS", CACHE_SECONDS)):
        return hit[1], hit[2]
    data = figures_of(scope)
    etag = hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:32]
    cache[key] = (now, data, etag)
    return data, etag


def _refresh() -> float:
    """Seconds between two looks of a stream: HOTLINE_SCREEN_REFRESH_SECONDS (app.config, else the environment
    or instance file), at least 0.5; the default when unset or not a number (logged)."""
    name = "HOTLINE_SCREEN_REFRESH_SECONDS"
    raw = current_app.config.get(name, current_app.extensions["hotline"].config.extra.get(name))
    if raw is None:
        return REFRESH_SECONDS
    try:
        return max(0.5, float(raw))
    except (TypeError, ValueError):
        log.warning("%s=%r is not a number of seconds: using %s", name, raw, REFRESH_SECONDS)
        return REFRESH_SECONDS


@bp.route("/")
@login_required
def index():
    """The full-screen page; its script draws the figures and keeps them live."""
    scope = _scope()
    data, _etag = cached_figures(scope)
    audit("stats_view", "stats", _scope_key(scope), "command screen")
    return render_template("stats/screen.html", scope=scope, data=data, refresh=_refresh(),
                           target=console.percent(_target()), echarts_version=version_of("echarts.min.js"))


@bp.route("/figures.json")
@login_required
def figures_json():
    """The figures as JSON; ``If-None-Match`` with the last ETag answers 304 while nothing changed."""
    scope = _scope()
    data, etag = cached_figures(scope)
    response = current_app.response_class(json.dumps(data, ensure_ascii=False), mimetype="application/json")
    response.set_etag(etag)
    response.headers["Cache-Control"] = "private, no-cache"
    return response.make_conditional(request)


@bp.route("/map.json")
@login_required
def map_json():
    """The current district boundaries as ECharts registers them (``name``: the district's name now); 404
    without any. Not audited, as the figures."""
    _scope()
    row = boundaries.current()
    if row is None:
        abort(404)
    data = {"version": row.version, "geojson": boundaries.drawn(boundaries.stored(row.version))}
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    response = current_app.response_class(body, mimetype="application/json")
    response.set_etag(hashlib.sha256(body.encode("utf-8")).hexdigest()[:32])
    response.headers["Cache-Control"] = "private, no-cache"
    return response.make_conditional(request)


@bp.route("/stream")
@login_required
def stream():
    """Server-sent events: ``figures`` with the whole figures whenever they change (at once on connecting),
    a comment every 15 s of silence; the stream ends after ``max_seconds`` (at most 300) and the browser's
    EventSource reconnects by itself."""
    scope = _scope()
    limit = chat_pump.stream_limit(request.args.get("max_seconds"))
    every = _refresh()

    def events():
        yield f"retry: {int(every * 1000)}\n\n"
        sent, quiet = None, 0.0
        # A deadline, not gevent.Timeout: a timeout raised inside a query would break the connection.
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            data, etag = cached_figures(scope)
            if etag != sent:
                sent, quiet = etag, 0.0
                yield chat_pump.event("figures", data, event_id=None)
            else:
                quiet += every
                if quiet >= chat_pump.KEEPALIVE:
                    quiet = 0.0
                    yield ": keepalive\n\n"
            gevent.sleep(min(every, max(0.0, deadline - time.monotonic())))

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
