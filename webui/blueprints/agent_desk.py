"""Agent desk (话务员工作台): status buttons, softphone controls over the ACD, live screen pop by server-sent events.

Views call acd.agent_controls (which sends ESL); none speaks ESL or writes SQL itself. The Acd comes from
``Services.acd``; without it the desk says the telephony is not connected. Which controls are enabled and
the checks of their fields are in webui/desk_controls.py, the screen pop in webui/screen_pop.py (both
imported here, where they were before).
"""
from __future__ import annotations

import collections
import json
import logging
import secrets

import gevent
from flask import Blueprint, Response, current_app, g, jsonify, redirect, render_template, request, url_for

from acd import chat
from acd.agent_controls import AgentControls
from acd.dispatcher import AcdError
from acd import state as agent_state
from acd.state import TransitionRefused
from caseflow import org
from caseflow import services as case_services
from caseflow.services import TicketInputError
from caseflow.workflow import WorkflowError
from recorder import missed as missed_calls
from recorder.models import utcnow
from stats.agent_day import agent_day
from webui.app import NavItem, bad_request
from webui.desk_controls import (  # noqa: F401 DIGITS_RE: its former home
    DIGITS_RE, NOT_READY_REASONS, ControlInputError, check_node, check_number, check_reason, check_target,
    consultation_view, enabled_controls, handback_choices, handback_options, input_error, transfer_choices)
from webui.i18n import gettext, one_language
from webui.screen_pop import (  # noqa: F401 caller_of_own_call: desk_feed imports it from here
    caller_of_own_call, labelled, pop_for, screen_pop, ticket_status_names)
from webui.security import audit, require_roles

log = logging.getLogger(__name__)

bp = Blueprint("agent_desk", __name__, url_prefix="/desk")
ROLES = ("agent", "team_lead")
NAV = [NavItem("Agent desk", "agent_desk.index", frozenset(ROLES), order=5)]
MESSAGES = {"zh": {
    "Agent desk": "话务员工作台", "Ready": "示闲", "Not ready": "示忙", "Hold": "保持",
    "Resume": "恢复", "Hang up": "挂断", "Transfer": "转接", "Back to IVR": "转自动", "Ask for help": "求助",
    "Status": "状态", "Caller": "来电号码", "Recent tickets": "近期工单", "Open tickets": "未办结工单",
    "New ticket": "新建工单", "Reason": "原因", "Telephony is not connected.": "话务系统未连接。",
    "You are not set up as an agent.": "您尚未配置为话务员。", "Waiting in your queues": "您的队列中等待",
    "Call out": "外呼", "Number": "号码", "Target": "目标", "Wrap-up": "话后处理", "End wrap-up": "结束话后处理",
    "Save ticket": "保存工单", "Content": "诉求内容", "Name": "姓名", "Type": "类型",
    "Knowledge base": "知识库", "Call-back requests": "待回拨", "Call back": "回拨", "Ticket %(number)s saved.": "工单 %(number)s 已保存。",
    "%(count)s calls": "来电 %(count)s 次", "waited %(seconds)s s": "等待 %(seconds)s 秒", "Calling back: %(name)s": "%(name)s 正在回拨",
    "Outcome": "回拨结果", "Call team lead": "呼叫班长", "Blind transfer": "盲转", "Consult transfer": "咨询转",
    "Three-way": "三方通话", "A reply answers the ticket at once (direct answer).": "填写答复内容后保存，即直接答复该工单。",
    "Consult transfer: talk to the target first, hang up to complete.": "咨询转：先与目标通话，挂机即完成转接。",
    "Complete transfer": "完成转接", "Cancel transfer": "取消转接", "Consulting": "咨询中",
    "ringing": "振铃中", "answered": "已接通", "Save": "保存", "Give back": "放弃回拨", "All missed calls": "全部未接来电",
    "You did not answer a call and have been put on break. Click “Ready” to take calls again.": "您未接听来电，已置为小休。点击“示闲”继续接听。",
    "Sign out": "签出", "Other reason": "其他原因", "What you need help with": "求助说明", "Transfer to": "转接到",
    "transfer_kind:agent": "话务员", "transfer_kind:queue": "队列", "transfer_kind:department": "部门电话",
    "transfer_kind:number": "号码", "Time in this call": "本次通话时长", "Address": "地址", "Blacklisted": "黑名单",
    "Yes": "是", "No": "否", "No call-backs waiting.": "没有待回拨的来电。",
    "Put this number into the call-out field": "填入外呼号码", "Urgency": "紧急程度", "Category": "诉求分类",
    "Region": "所属区域", "Reply by": "答复方式", "(not chosen)": "（未选择）", "Reply": "答复内容",
    "Online chats": "在线交谈", "My day": "今日工作", "Calls answered today": "今日接听",
    "Talk time today": "今日通话时长", "Tickets recorded today": "今日登记工单", "Work history": "座席工作情况",
    "Change": "变化", "Lasted": "持续", "Time": "时间", "Nothing yet today.": "今天还没有记录。",
    "agent_status:logged_out": "已签出", "agent_status:available": "就绪", "agent_status:on_break": "示忙",
    "agent_status:after_call_work": "话后处理",
    "agent_state:idle": "空闲", "agent_state:reserved": "预占", "agent_state:ringing": "振铃",
    "agent_state:in_call": "通话中", "agent_state:wrap_up": "话后处理",
    "agent_event:login": "签入", "agent_event:ready": "示闲", "agent_event:not_ready": "示忙",
    "agent_event:logout": "签出", "agent_event:reserve": "分配来电", "agent_event:ring": "振铃",
    "agent_event:answer": "接听", "agent_event:offer_failed": "未接通", "agent_event:call_end": "通话结束",
    "agent_event:wrap_up_done": "话后处理结束", "agent_event:dial": "外呼",
    "ivr_kind:satisfaction": "满意度评价", "ivr_kind:status_query": "工单查询", "ivr_kind:fax": "传真受理",
    "This desk was opened in another window; this one no longer takes actions. Reload to take it back.":
        "本工作台已在另一个窗口打开，此窗口不再执行操作。刷新页面可收回。",
    "The request failed (%(status)s).": "请求失败（%(status)s）。", "Network error: the server did not answer.": "网络错误：服务器没有响应。",
    "Still waiting for the previous action.": "上一个操作尚未完成，请稍候。", "A number must be 3 to 20 digits.": "号码只能是 3 到 20 位数字。",
    "Unknown action.": "未知的操作。", "Caller profile": "来电人信息", "Not possible now (%(status)s, %(state)s): %(event)s.": "当前（%(status)s，%(state)s）不能%(event)s。",
}}
AGENT_STATUSES = ("logged_out", "available", "on_break", "after_call_work")
AGENT_STATES = ("idle", "reserved", "ringing", "in_call", "wrap_up")


def _said(error) -> str:
    """An error's message in the user's language (domain errors carry "中文 / English")."""
    return one_language(str(error), g.get("lang") or "zh")


def _acd():
    return current_app.extensions["hotline"].services.acd


def _agent(acd):
    try:
        return acd.agent_for_user(g.user.id)
    except AcdError:
        return None


@bp.route("/")
@require_roles(*ROLES)
def index():
    """The desk: status, controls, the screen pop of the call held, and a ticket form filled in from it."""
    acd = _acd()
    agent = _agent(acd) if acd is not None else None
    pop = pop_for(agent) if agent is not None and agent.call_number else None
    waiting = {}
    if agent is not None:
        skills = acd.skills.get(agent.id, {})
        waiting = {q.name: len(acd.queue_waiters.get(q.name, {})) for q in acd.queues.values() if q.skill in skills}
    return _desk_page(acd, agent, pop=pop, waiting=waiting, saved=request.args.get("saved", ""))


def _desk_page(acd, agent, *, pop=None, waiting=None, saved: str = "", error: str = "", entered=None):
    """The desk page, with the call-back list (longest waiting first) beside the ticket form; ``entered``:
    the ticket form as submitted, shown again after a refused save. Rendering it claims the agent's desk
    (the newest window wins; see DeskClaims)."""
    token = claims().take(agent.id) if agent is not None else ""
    status_labels, state_labels = agent_labels()
    clock = current_app.extensions["hotline"].services.clock
    day = agent_day(agent.id, agent.user_id, clock.now(), clock.tz) if agent is not None else None
    # The call-waiting line names queues as the administrator named them, never by their code.
    queue_labels = {q.name: q.display_name or q.name for q in acd.queues.values()} if acd is not None else {}
    return render_template("agent_desk/index.html", acd=acd, agent=agent, pop=labelled(pop), waiting=waiting or {},
                           queue_labels=queue_labels,
                           entered=entered, desk_token=token, day=day,
                           labels_json=json.dumps({**status_labels, **state_labels,
                                                   "resume": gettext("Resume"), "hold": gettext("Hold"),
                                                   "consult:ringing": gettext("ringing"),
                                                   "consult:answered": gettext("answered")}, ensure_ascii=False),
                           status_labels=status_labels, state_labels=state_labels, saved=saved,
                           enabled=enabled_controls(acd, agent) if agent else [],
                           call_since=_call_since(agent),
                           types=case_services.TICKET_TYPES, urgencies=case_services.URGENCIES,
                           reply_by=case_services.REPLY_BY, categories=org.active_categories(),
                           regions=org.active_regions(), category_path=org.category_path,
                           error=error, callbacks=_open_callbacks(),
                           outcomes=missed_calls.OUTCOME_LABELS, reasons=missed_calls.REASON_LABELS,
                           break_reasons=NOT_READY_REASONS, handback=handback_options() if agent else [],
                           targets=transfer_choices(acd, agent) if agent else {},
                           consult=consultation_view(acd, agent) if agent else None,
                           missed_ring=missed_ring(acd, agent),
                           skills=sorted(q.name for q in acd.queues.values()
                                         if q.skill in acd.skills.get(agent.id, {})) if agent else [])


def agent_labels() -> tuple[dict, dict]:
    """The agent statuses and call states in the user's language, from the catalogue."""
    return ({code: gettext(f"agent_status:{code}") for code in AGENT_STATUSES},
            {code: gettext(f"agent_state:{code}") for code in AGENT_STATES})


def _call_since(agent) -> str:
    """When the agent's current call began (ISO, UTC) for the call timer; '' without a call."""
    if agent is None or agent.state != "in_call" or agent.since is None:
        return ""
    return agent.since.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


class DeskClaims:
    """Which window holds each agent's desk: a page load takes it (the newest window wins); the window
    that lost it is told on its event stream and its actions are refused. One per app; with a pub/sub bus
    (Services.bus) a claim taken in one process is heard by every other (a stream may run on any worker).
    A process that never heard of an agent's claim lets every window act (as after a restart)."""

    def __init__(self, bus=None):
        from webui import desk_feed

        self.holders: dict[int, str] = {}
        self.bus = bus
        if bus is not None:
            self._subscription = bus.subscribe(desk_feed.TOPIC, self._heard)

    def _heard(self, message: dict) -> None:
        from webui import desk_feed

        if message.get("type") == desk_feed.CLAIM and isinstance(message.get("agent_id"), int):
            self.holders[message["agent_id"]] = str(message.get("token", ""))[:40]

    def take(self, agent_id: int) -> str:
        from webui import desk_feed

        token = secrets.token_urlsafe(12)
        self.holders[agent_id] = token
        if self.bus is not None:
            try:
                self.bus.publish(desk_feed.TOPIC, {"type": desk_feed.CLAIM, "agent_id": agent_id, "token": token})
            except Exception:  # noqa: BLE001 - the other processes keep the older claim; this one knows
                log.exception("desk claim of agent %s not published", agent_id)
        return token

    def holds(self, agent_id: int, token: str) -> bool:
        """True unless another window took the desk since ``token`` was given ('' asks nothing: API use)."""
        return not token or self.holders.get(agent_id, token) == token


def claims() -> DeskClaims:
    extensions = current_app.extensions
    if "agent_desk_claims" not in extensions:
        extensions["agent_desk_claims"] = DeskClaims(extensions["hotline"].services.bus)
    return extensions["agent_desk_claims"]


def missed_ring(acd, agent) -> bool:
    """The agent is on the break the ACD imposed for a ring not answered (the desk says so, with 示闲)."""
    return agent is not None and agent.status == "on_break" and agent.break_reason == acd.settings.no_answer_reason


def _open_callbacks(limit: int = 20) -> list[dict]:
    """Callers waiting for a call-back (the one missed-call list), longest waiting first, each with who
    is calling it back now: "mine", "other" (no button: two agents must not call one citizen) or ""."""
    now = utcnow()
    rows = []
    for entry in missed_calls.list_missed("open", limit=limit, oldest_first=True):
        missed = entry.missed
        claim = ("other" if missed_calls.claimed_by_other(missed, g.user, now) else
                 "mine" if missed.claimed_by_id == g.user.id else "")
        rows.append({"missed": missed, "claim": claim, "holder": missed.claimed_by.name if claim == "other" else ""})
    return rows


@bp.route("/callback/<int:missed_id>", methods=["POST"])
@require_roles(*ROLES)
def call_back(missed_id):
    """Claim a missed call and call it back: the agent's phone rings first. Another agent's entry is refused."""
    acd = _acd()
    agent = _agent(acd) if acd is not None else None
    if agent is None:
        return bad_request("You are not set up as an agent.")
    try:
        _entry, leg = AgentControls(acd).call_back(g.user, missed_id)
    except (AcdError, TransitionRefused, missed_calls.MissedCallError) as exc:
        return jsonify({"ok": False, "error": _said(exc)}), 409
    return jsonify({"ok": True, "call_uuid": leg})


@bp.route("/callback/<int:missed_id>/outcome", methods=["POST"])
@require_roles(*ROLES)
def call_back_outcome(missed_id):
    """Keep the outcome of this agent's call-back (reached closes the entry), or give the entry back."""
    outcome = request.form.get("outcome", "")
    try:
        if outcome == "release":
            missed_calls.release(missed_id, g.user)
        else:
            missed_calls.record_attempt(missed_id, outcome, agent=g.user,
                                        call_uuid=request.form.get("call_uuid", "")[:64],
                                        note=request.form.get("note", "")[:2000])
    except missed_calls.MissedCallError as exc:
        return jsonify({"ok": False, "error": _said(exc)}), 409
    return redirect(url_for("agent_desk.index"), code=303)


@bp.route("/ticket", methods=["POST"])
@require_roles(*ROLES)
def save_ticket():
    """Save the ticket of the call (the caseflow service records it, and answers it when a reply is given);
    ends the agent's wrap-up."""
    acd = _acd()
    agent = _agent(acd) if acd is not None else None
    form = request.form
    call_uuid = form.get("call_uuid", "")[:64] or None
    reply = form.get("reply", "").strip()
    clock = current_app.extensions["hotline"].services.clock
    held_chat = None
    if form.get("chat_id"):
        # The ticket of an online chat the agent holds: channel chat, the transcript stored with it.
        try:
            held_chat = chat.held_by(form.get("chat_id"), agent) if agent is not None else None
        except chat.ChatError as error:
            return _desk_page(acd, agent, error=_said(error), entered=request.form), 400
    try:
        ticket = case_services.create_ticket(
            form.get("content", ""), type=form.get("type", "consult"), channel="chat" if held_chat else "phone",
            citizen_phone=form.get("citizen_phone", ""), citizen_name=form.get("citizen_name", ""),
            title=form.get("title", ""), created_by=g.user, call_uuid=call_uuid, clock=clock, reply=reply,
            category=form.get("category") or None, region=form.get("region") or None,
            urgency=form.get("urgency") or "normal", citizen_address=form.get("citizen_address", ""),
            reply_by=form.get("reply_by") or None)  # unset: caseflow picks from the contacts given
    except (TicketInputError, WorkflowError) as error:
        return _desk_page(acd, agent, error=_said(error), entered=request.form), 400
    if held_chat is not None:
        chat.link_ticket(held_chat, ticket)
        audit("chat_ticket", "chat", held_chat.id, ticket.number)
    if agent is not None:
        controls = AgentControls(acd)
        controls.set_desk_activity(agent.id, f"ticket {ticket.number}")
        if acd.agents[agent.id].state == "wrap_up":
            controls.end_wrap_up(agent.id)
    return redirect(url_for("agent_desk.index", saved=ticket.number), code=303)


@bp.route("/pop")
@require_roles(*ROLES)
def pop():
    acd = _acd()
    agent = _agent(acd) if acd is not None else None
    if agent is None:
        return jsonify({"error": "not an agent"}), 404
    return jsonify({"status": agent.status, "state": agent.state, "call_uuid": agent.call_uuid,
                    "consult": consultation_view(acd, agent), "enabled": enabled_controls(acd, agent),
                    **labelled(pop_for(agent))})


@bp.route("/events")
@require_roles(*ROLES)
def events():
    """Server-sent events: this agent's ACD notices (answered -> screen pop data included) and the waiting
    counts of the queues of their skills (the call-waiting indicator).

    The notices come from the pub/sub bus (webui.desk_feed), so this stream may run on any web worker: the
    agent and their skills are read from the database when this process holds no ACD."""
    from acd.models import Agent, AgentSkill
    from webui import desk_feed

    services = current_app.extensions["hotline"].services
    acd, bus = services.acd, services.bus
    if acd is not None:
        agent = _agent(acd)
        skills = set(acd.skills.get(agent.id, {})) if agent is not None else set()
    else:
        agent = Agent.get_or_none(Agent.user == g.user.id)
        skills = {row.skill for row in AgentSkill.select().where(AgentSkill.agent == agent)} if agent else set()
    if agent is None or (acd is None and bus is None):
        return jsonify({"error": "not an agent"}), 404
    agent_id = agent.id
    token = request.args.get("desk", "")[:40]
    desks = claims()
    names = ticket_status_names()  # the stream runs outside the request
    # A plain deque, drained by polling: the ACD may run in another thread's hub than this request.
    inbox: collections.deque = collections.deque(maxlen=200)

    def listener(message):
        if message.get("type") == "queue" and message.get("skill") not in skills:
            return  # call waiting: only the queues this agent serves, with their waiting counts
        if message.get("agent_id") in (agent_id, None):
            inbox.append(message)  # a slow browser loses the oldest notices, never blocks the ACD

    if bus is not None:
        subscription = bus.subscribe(desk_feed.TOPIC, listener)
        unsubscribe = subscription.close
    else:  # no bus lent (tests on an ACD of their own): the notices completed in this process
        handback = bool(handback_choices())

        def local(notice):
            listener(desk_feed.enrich(acd, notice, lambda: handback))

        acd.subscribe(local)

        def unsubscribe():
            if local in acd.listeners:
                acd.listeners.remove(local)
    try:
        limit = max(1.0, min(float(request.args.get("max_seconds", 3600)), 3600.0))
    except ValueError:
        limit = 3600.0

    def stream():
        try:
            yield "retry: 2000\n\n"
            with gevent.Timeout(limit, False):
                idle = 0.0
                while True:
                    if not desks.holds(agent_id, token):
                        # Another window took this agent's desk: say so once and end (the page stops listening).
                        yield "event: superseded\ndata: {}\n\n"
                        return
                    if not inbox:
                        gevent.sleep(0.2)
                        idle += 0.2
                        if idle >= 15:
                            idle = 0.0
                            yield ": keepalive\n\n"
                        continue
                    notice = inbox.popleft()
                    if notice.get("type") == desk_feed.CLAIM:
                        continue  # handled by DeskClaims (checked above)
                    notice.pop("skill", None)
                    desk = notice.pop("desk", None)
                    if notice.get("type") == "answered":
                        # The notice names the call; the pop is of what the ACD held for the agent then.
                        own = bool(desk and desk["own_call"] and desk["call_uuid"] == notice.get("call_uuid")
                                   and desk["call_number"] == notice.get("number"))
                        notice = {**notice, **labelled(screen_pop(notice.get("number", ""), full=own), names)}
                    if desk is not None:
                        notice = {**notice, "enabled": desk["enabled"], "since": desk["since"]}
                    yield f"event: {notice['type']}\ndata: {json.dumps(notice, ensure_ascii=False)}\n\n"
        finally:
            unsubscribe()

    return Response(stream(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})


@bp.route("/action", methods=["POST"])
@require_roles(*ROLES)
def action():
    """One control: ready, not_ready, logout, end_wrap_up, hold, resume, hangup, transfer, attended_transfer,
    complete_transfer, cancel_transfer, three_way, to_ivr, dial, help, call_team_lead. Every field is checked here (400), then the ACD may still
    refuse for the call's state (409)."""
    acd = _acd()
    agent = _agent(acd) if acd is not None else None
    if agent is None:
        return bad_request("You are not set up as an agent.")
    controls = AgentControls(acd)
    form = request.form
    name = form.get("action", "")
    if not claims().holds(agent.id, form.get("desk", "")):
        return jsonify({"ok": False, "superseded": True, "error": gettext(
            "This desk was opened in another window; this one no longer takes actions. Reload to take it back.")}), 409
    call = form.get("call_uuid", "")[:64]
    try:
        if name == "ready":
            controls.ready(agent.id)
        elif name == "not_ready":
            controls.not_ready(agent.id, check_reason(form))
        elif name == "logout":
            controls.logout(agent.id)
        elif name == "end_wrap_up":
            controls.end_wrap_up(agent.id)
        elif name == "hold":
            controls.hold(agent.id, call)
        elif name == "resume":
            controls.resume(agent.id, call)
        elif name == "hangup":
            controls.hangup(agent.id, call)
        elif name == "transfer":
            controls.blind_transfer(agent.id, call, *check_target(acd, agent, form))
        elif name == "attended_transfer":
            kind, target = check_target(acd, agent, form)
            if kind == "queue":
                raise input_error("队列不能咨询转接，请用盲转", "use a blind transfer for a queue")
            controls.attended_transfer(agent.id, call, kind, target)
        elif name == "complete_transfer":
            controls.complete_transfer(agent.id, call)
        elif name == "cancel_transfer":
            controls.cancel_transfer(agent.id, call)
        elif name == "three_way":
            controls.three_way(agent.id, call, *check_target(acd, agent, form))
        elif name == "to_ivr":
            controls.to_ivr(agent.id, call, check_node(form))
        elif name == "dial":
            controls.dial(agent.id, check_number(form))
        elif name == "help":
            controls.request_help(agent.id, (form.get("note") or "")[:120])
        elif name == "call_team_lead":
            controls.call_team_lead(agent.id)
        else:
            return jsonify({"ok": False, "error": gettext("Unknown action.")}), 400
    except ControlInputError as exc:
        return jsonify({"ok": False, "error": _said(exc)}), 400
    except TransitionRefused as exc:
        status_labels, state_labels = agent_labels()
        return jsonify({"ok": False, "error": gettext(
            "Not possible now (%(status)s, %(state)s): %(event)s.", status=status_labels.get(exc.status, ""),
            state=state_labels.get(exc.state, ""), event=gettext(f"agent_event:{exc.event}"))}), 409
    except AcdError as exc:
        return jsonify({"ok": False, "error": _said(exc)}), 409
    agent = acd.agents[agent.id]
    return jsonify({"ok": True, "status": agent.status, "state": agent.state, "on_hold": agent.on_hold,
                    "call_uuid": agent.call_uuid or "", "consult": consultation_view(acd, agent),
                    "enabled": enabled_controls(acd, agent), "since": _call_since(agent)})
