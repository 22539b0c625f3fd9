"""Operations pages: the alarm banner of the team-lead console and the centre desk (a small poll), the alarm
list with acknowledge, and the administrator's view of the process log."""
from __future__ import annotations

import datetime as dt
import math

from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, url_for

from core.clock import Clock
from core.logsetup import log_file
from ops import alarms as ops_alarms
from ops import logview
from webui.app import NavItem, bad_request, localtime
from webui.blueprints.agent_tickets import parse_page
from webui.security import audit, require_roles

bp = Blueprint("ops", __name__)

ALARM_ROLES = ("team_lead", "centre", "centre_leader", "admin")
LOG_ROLES = ("admin",)
LOG_PAGE_SIZE = 100
NAV = [NavItem("Alarms", "ops.alarm_list", frozenset(ALARM_ROLES), order=88),
       NavItem("Process log", "ops.process_log", frozenset(LOG_ROLES), order=91)]

MESSAGES = {"zh": {
    "Process log": "运行日志",
    "Level": "级别",
    "Source": "模块",
    "Message": "内容",
    "From": "起始",
    "To": "截止",
    "Text or operator number": "文字或工号",
    "The log file is empty or not written yet.": "日志文件为空或尚未写入。",
    "Times must look like 2026-03-01 08:30.": "时间格式应为 2026-03-01 08:30。",
    "Unknown level.": "未知级别。",
    "Page %(page)s of %(pages)s, %(total)s entries": "第 %(page)s / %(pages)s 页，共 %(total)s 条",
    "Detail": "详情",
    "level:DEBUG": "调试", "level:INFO": "信息", "level:WARNING": "警告", "level:ERROR": "错误", "level:CRITICAL": "严重",
    # Alarms raised by the floors below ops through core.alarms (ops.rules.EVENT_KINDS).
    "alarm:recording_storage": "录音存储告警", "alarm:recording_start": "录音启动失败",
    "alarm:recording_archive": "录音归档失败", "alarm:recording_cut_off": "通话中断录音无内容",
    "alarm:fax_failed": "传真失败", "alarm:fax_timeout": "传真超时", "alarm:storage_full": "存储空间已满",
    "alarm:sms_gave_up": "短信发送失败", "alarm:overload": "呼入过载", "alarm:calls_cut_off": "挂机事件丢失，通话按中断关闭",
    "alarm:receipt_failed": "受理回执未发出", "alarm:ivr_failed": "语音导航故障，来电待回拨",
    "alarm:seal_turn_stuck": "通话记录写入停滞", "alarm:fts_merging": "全文索引合并故障",
}, "en": {
    "level:DEBUG": "Debug", "level:INFO": "Info", "level:WARNING": "Warning", "level:ERROR": "Error",
    "level:CRITICAL": "Critical",
    # English names of the alarm kinds (the ids are codes): the banner and the list render in this scope.
    "alarm:switch_down": "FreeSWITCH disconnected", "alarm:switch_silent": "FreeSWITCH silent",
    "alarm:agent_stuck": "Agent stuck", "alarm:queue_waiting": "Queue waiting", "alarm:answer_rate":
    "15-second answer rate low", "alarm:disk_low": "Disk low", "alarm:backup_failed": "Backup failed",
    "alarm:chain_broken": "Call-record chain broken", "severity:critical": "critical", "severity:warning": "warning",
    "alarm:recording_storage": "Recording storage", "alarm:recording_start": "Recording not started",
    "alarm:recording_archive": "Recording archive", "alarm:recording_cut_off": "Recording cut off empty",
    "alarm:fax_failed": "Fax failed", "alarm:fax_timeout": "Fax timed out", "alarm:storage_full": "Storage full",
    "alarm:sms_gave_up": "SMS given up", "alarm:overload": "Calls refused: overload",
    "alarm:calls_cut_off": "Lost hang-ups: calls closed as cut off",
    "alarm:receipt_failed": "Receipt not queued", "alarm:ivr_failed": "IVR failed on a call: call-back listed",
    "alarm:seal_turn_stuck": "Call records stalled (seal turn)", "alarm:fts_merging": "Full-text index merging",
}}


def _label(row) -> str:
    return current_app.extensions["hotline"].gettext("alarm:" + row.kind)


def _as_json(row) -> dict:
    hotline = current_app.extensions["hotline"]
    return {"id": row.id, "kind": row.kind, "label": _label(row), "subject": row.subject, "severity": row.severity,
            "text": row.text, "count": row.count, "cleared": row.cleared_at is not None,
            "first_seen": localtime(hotline.services.clock or Clock(), row.first_seen, "%m-%d %H:%M:%S"),
            "last_seen": localtime(hotline.services.clock or Clock(), row.last_seen, "%m-%d %H:%M:%S"),
            "ack_url": url_for("ops.acknowledge", alarm_id=row.id)}


@bp.route("/alarms/shown")
@require_roles(*ALARM_ROLES)
def shown():
    """The banner's poll: alarms nobody acknowledged yet."""
    return jsonify({"alarms": [_as_json(row) for row in ops_alarms.shown()]})


@bp.route("/alarms")
@require_roles(*ALARM_ROLES)
def alarm_list():
    return render_template("ops/alarms.html", alarms=ops_alarms.recent())


@bp.route("/alarms/<int:alarm_id>/ack", methods=["POST"])
@require_roles(*ALARM_ROLES)
def acknowledge(alarm_id: int):
    """Acknowledge an alarm (audited); JSON for the banner, a redirect for the list's form."""
    try:
        row = ops_alarms.AlarmService(notify=None).acknowledge(alarm_id, g.user)
    except ops_alarms.AlarmError:
        return jsonify({"ok": False, "error": f"no alarm {alarm_id}"}), 404
    audit("alarm_ack", "alarm", row.id, detail=f"{row.kind} {row.subject}: {row.text}"[:255])
    if request.accept_mimetypes.best == "application/json" or request.is_json:
        return jsonify({"ok": True, "id": row.id})
    return redirect(url_for("ops.alarm_list"))


def parse_moment(raw: str | None) -> dt.datetime | None:
    """A filter time: ``2026-03-01``, ``2026-03-01 08:30`` or ``2026-03-01T08:30``; malformed is a 400."""
    if not raw or not raw.strip():
        return None
    text = raw.strip()[:19].replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    bad_request("Times must look like 2026-03-01 08:30.")


@bp.route("/admin/log")
@require_roles(*LOG_ROLES)
def process_log():
    """The product's own log, newest first, filtered by time, level and text (an operator number); the
    file is the configured one, never one the request names. Every view is audited."""
    since, until = parse_moment(request.args.get("from")), parse_moment(request.args.get("to"))
    level = request.args.get("level", "").strip().upper()[:8]
    if level and level not in logview.LEVELS:
        bad_request("Unknown level.")
    text = request.args.get("q", "").strip()[:64]
    page = parse_page(request.args.get("page"))
    path = log_file(current_app.extensions["hotline"].config)
    entries, total = logview.search(path, since=since, until=until, level=level, text=text, page=page,
                                    per_page=LOG_PAGE_SIZE)
    pages = max(1, math.ceil(total / LOG_PAGE_SIZE))
    filters = {"from": request.args.get("from", "").strip()[:19] or None,
               "to": request.args.get("to", "").strip()[:19] or None, "level": level or None, "q": text or None}
    audit("log_view", "log", "", detail=" ".join(f"{k}={v}" for k, v in filters.items() if v)[:255])
    return render_template("ops/log.html", entries=entries, total=total, page=min(page, pages), pages=pages,
                           levels=logview.LEVELS, filters=filters)
