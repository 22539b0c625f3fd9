"""Call records (with their tamper check), the missed-call list with its call-back action, and the fax log."""
from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for

from core.clock import parse_day
from recorder import access
from recorder.fax import STATE_LABELS
from recorder.integrity import mac_matches, record_fields, record_key
from recorder.missed import (CALLBACK_OUTCOMES, OUTCOME_LABELS, REASON_LABELS, MissedCallError, attempts_of,
                             claimed_by_other, list_missed, record_attempt, start_call_back)
from recorder.models import DISPOSITIONS, CallRecord, FaxJob, MissedCall, Recording
from webui.app import NavItem, bad_request
from webui.security import require_roles
from webui.views import get_or_404

log = logging.getLogger(__name__)

bp = Blueprint("calls", __name__, url_prefix="/calls")
NAV = [NavItem("Call records", "calls.index", access.CALL_RECORD_ROLES, order=55),
       NavItem("Missed calls", "calls.missed", access.MISSED_ROLES, order=56)]
PAGE = 25
FAX_ROLES = ("team_lead", "centre", "centre_leader", "entry")

MESSAGES = {"zh": {
    "Call records": "通话记录",
    "Missed calls": "未接来电",
    "Fax log": "传真记录",
    "Caller": "来电号码",
    "Called": "被叫号码",
    "Started": "开始时间",
    "Queue": "队列",
    "Agent": "坐席",
    "Wait": "等待",
    "Talk": "通话",
    "Hold": "保持",
    "Disposition": "结果",
    "Hang-up": "挂机",
    "Integrity": "防篡改校验",
    "intact": "完整",
    "ALTERED": "已被改动",
    "open": "未完成",
    "From": "开始日期",
    "To": "结束日期",
    "All": "全部",
    "Search": "查询",
    "Next": "下一页",
    "Previous": "上一页",
    "No calls match.": "没有符合条件的通话。",
    "No missed calls.": "没有未接来电。",
    "Reason": "原因",
    "Time": "时间",
    "Calls from this number": "该号码来电次数",
    "Being called back by %(name)s": "%(name)s 正在回拨",
    "Attempts": "回拨次数",
    "Call back": "回拨",
    "Outcome": "回拨结果",
    "Note": "备注",
    "Save": "保存",
    "Ticket": "工单",
    "IVR path": "语音导航路径",
    "Agents offered": "分配过的坐席",
    "Recordings": "通话录音",
    "Linked tickets": "关联工单",
    "Direction": "方向",
    "Server": "服务器",
    "Cause": "挂机原因",
    "Hung up by": "挂机方",
    "Done": "已处理",
    "Open": "待回拨",
    "State": "状态",
    "Number": "号码",
    "Pages": "页数",
    "Result": "结果",
    "Log": "过程",
    "Calling %(number)s …": "正在呼叫 %(number)s …",
    "No dialler is connected; please dial the number from your phone.": "未连接外呼服务，请用话机拨打该号码。",
    "The call could not be placed: %(reason)s": "无法外呼：%(reason)s",
    "disposition:self_service": "自助服务", "disposition:answered": "人工接听", "disposition:abandoned": "放弃",
    "disposition:overflowed": "溢出", "disposition:voicemail": "留言", "disposition:blacklisted": "黑名单",
    "disposition:fax": "传真", "disposition:no_answer": "未接通",
    "disposition:cut_off": "通话中断",
    "side:caller": "来电方", "side:agent": "坐席", "side:system": "系统",
    **{f"missed:{code}": zh for code, (zh, _en) in REASON_LABELS.items()},
    **{f"outcome:{code}": zh for code, (zh, _en) in OUTCOME_LABELS.items()},
    "fax:in": "接收", "fax:out": "发送",
    "Dates are written YYYY-MM-DD.": "日期格式为 YYYY-MM-DD。",
    "Unknown disposition.": "未知的通话结果。",
    "Unknown status.": "未知的状态。",
    "Choose the outcome of the call-back.": "请选择回拨结果。",
    **{f"faxstate:{code}": zh for code, (zh, _en) in STATE_LABELS.items()},
}}
MESSAGES["en"] = {
    "disposition:self_service": "Self-service", "disposition:answered": "Answered",
    "disposition:abandoned": "Abandoned", "disposition:overflowed": "Overflowed", "disposition:voicemail": "Voicemail",
    "disposition:blacklisted": "Blacklisted", "disposition:fax": "Fax", "disposition:no_answer": "Not answered",
    "disposition:cut_off": "Cut off",
    "side:caller": "Caller", "side:agent": "Agent", "side:system": "System", "fax:in": "In", "fax:out": "Out",
    **{f"missed:{code}": en for code, (_zh, en) in REASON_LABELS.items()},
    **{f"outcome:{code}": en for code, (_zh, en) in OUTCOME_LABELS.items()},
    **{f"faxstate:{code}": en for code, (_zh, en) in STATE_LABELS.items()},
}


def _hotline():
    return current_app.extensions["hotline"]


def _day_bounds(day: dt.date) -> dt.datetime:
    """Naive UTC start of a local day (records are stored in UTC, days are the configured zone's)."""
    local = dt.datetime.combine(day, dt.time(), ZoneInfo(_hotline().config.tz))
    return local.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _parse_day(name: str) -> dt.date | None:
    try:
        return parse_day(request.args.get(name, ""))
    except ValueError:
        bad_request("Dates are written YYYY-MM-DD.")


def _page() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100000 else 1


@bp.route("/")
@require_roles(*access.CALL_RECORD_ROLES)
def index():
    """Call records newest first; filters: day range, caller, agent, disposition."""
    query = access.visible_call_records(g.user)
    day_from, day_to = _parse_day("from"), _parse_day("to")
    if day_from:
        query = query.where(CallRecord.started_at >= _day_bounds(day_from))
    if day_to:
        query = query.where(CallRecord.started_at < _day_bounds(day_to + dt.timedelta(days=1)))
    caller = request.args.get("caller", "").strip()[:32]
    if caller:
        query = query.where(CallRecord.caller == caller)
    agent = request.args.get("agent", "").strip()[:16]
    if agent:
        query = query.where(CallRecord.agent_no == agent)
    disposition = request.args.get("disposition", "")
    if disposition:
        if disposition not in DISPOSITIONS:
            bad_request("Unknown disposition.")
        query = query.where(CallRecord.disposition == disposition)
    page = _page()
    rows = list(query.order_by(CallRecord.started_at.desc(), CallRecord.id.desc()).limit(PAGE + 1)
                .offset((page - 1) * PAGE))
    more, rows = len(rows) > PAGE, rows[:PAGE]
    config = _hotline().config
    key = record_key(config.secret_key, config.extra)
    intact = {r.id: (mac_matches(key, record_fields(r), r.mac) if r.finalised else None) for r in rows}
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template("calls/index.html", rows=rows, more=more, page=page, args=args, intact=intact,
                           dispositions=DISPOSITIONS)


@bp.route("/<int:call_id>")
@require_roles(*access.CALL_RECORD_ROLES)
def detail(call_id: int):
    """One call: path through the IVR, offers, times, tickets and recordings."""
    from caseflow.models import Ticket, TicketCall
    from caseflow.visibility import visible_tickets

    record = get_or_404(access.visible_call_records(g.user), CallRecord.id == call_id)
    config = _hotline().config
    intact = mac_matches(record_key(config.secret_key, config.extra), record_fields(record), record.mac) \
        if record.finalised else None
    # A call record is not a ticket pass: only the call's tickets the viewer may see (caseflow's rule).
    tickets = list(visible_tickets(g.user).join(TicketCall, on=(TicketCall.ticket == Ticket.id))
                   .where(TicketCall.call_uuid == record.call_uuid))
    recordings = [r for r in Recording.select().where(Recording.call_uuid == record.call_uuid)
                  if access.may_listen(g.user, r)]
    return render_template("calls/detail.html", record=record, intact=intact, tickets=tickets,
                           recordings=recordings)


@bp.route("/missed")
@require_roles(*access.MISSED_ROLES)
def missed():
    """Missed calls to call back, newest first, with each number's open count and the attempts so far."""
    status = request.args.get("status", "open")
    if status not in ("open", "done", "all"):
        bad_request("Unknown status.")
    page = _page()
    entries = list_missed(status, caller=request.args.get("caller", ""), limit=PAGE + 1, offset=(page - 1) * PAGE)
    more, entries = len(entries) > PAGE, entries[:PAGE]
    attempts = {e.missed.id: attempts_of(e.missed.id) for e in entries}
    can_dial = _dialler() is not None
    busy = {e.missed.id for e in entries if claimed_by_other(e.missed, g.user)}
    return render_template("calls/missed.html", entries=entries, attempts=attempts, status=status, page=page,
                           more=more, outcomes=CALLBACK_OUTCOMES, can_dial=can_dial, busy=busy,
                           message=request.args.get("message", ""))


@bp.route("/missed/<int:missed_id>/attempt", methods=["POST"])
@require_roles(*access.MISSED_ROLES)
def attempt(missed_id: int):
    """Keep the outcome of a call-back attempt."""
    outcome = request.form.get("outcome", "")
    try:
        record_attempt(missed_id, outcome, agent=g.user, call_uuid=request.form.get("call_uuid", "")[:64],
                       note=request.form.get("note", "")[:2000])
    except MissedCallError as exc:
        if "no missed call" in str(exc):
            abort(404)
        if "回拨权限" in str(exc):
            abort(403)
        if outcome in CALLBACK_OUTCOMES:  # another agent holds the entry: say who
            return redirect(url_for("calls.missed", message="refused", reason=str(exc)[:200]))
        bad_request("Choose the outcome of the call-back.")
    return redirect(url_for("calls.missed", status=request.args.get("status", "open")))


@bp.route("/missed/<int:missed_id>/dial", methods=["POST"])
@require_roles(*access.MISSED_ROLES)
def dial(missed_id: int):
    """Claim the entry and ring the agent's phone, then the citizen (the ACD's outbound call, or the one
    lent through Services); an entry another agent is calling back is refused."""
    get_or_404(MissedCall, MissedCall.id == missed_id)
    originate = _dialler()
    if originate is None:
        return redirect(url_for("calls.missed", message="nodialler"))
    try:
        entry, call_uuid = start_call_back(missed_id, g.user, lambda number: originate(g.user, number))
    except ValueError as exc:  # claimed by another, or the ACD refused (not an agent, phone unregistered ...)
        return redirect(url_for("calls.missed", message="refused", reason=str(exc)[:200]))
    return redirect(url_for("calls.missed", message="calling", number=entry.caller, missed=entry.id,
                            call_uuid=call_uuid))


def _dialler():
    """originate(user, number) -> call uuid: Services.originate_callback when lent, else the ACD's outbound call
    (the agent's phone rings first, then the citizen)."""
    services = _hotline().services
    if callable(services.originate_callback):
        return services.originate_callback
    acd = services.acd
    if acd is None:
        return None

    def through_acd(user, number):
        from acd.agent_controls import AgentControls

        agent = acd.agent_for_user(user.id)
        return AgentControls(acd).dial(agent.id, number, label="call_back")

    return through_acd


@bp.route("/fax")
@require_roles(*FAX_ROLES)
def fax():
    """The fax log: every job with its steps."""
    from recorder.models import FaxEvent

    jobs = list(FaxJob.select().order_by(FaxJob.created_at.desc(), FaxJob.id.desc()).limit(100))
    events = {}
    for event in FaxEvent.select().where(FaxEvent.job.in_([j.id for j in jobs])).order_by(FaxEvent.id):
        events.setdefault(event.job_id, []).append(event)
    return render_template("calls/fax.html", jobs=jobs, events=events)
