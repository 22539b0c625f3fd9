"""Administration of the ACD (话务分配): queues (skill, distribution rule, timings, overflow, hold music),
agents (a user with an operator number, a SIP extension from the FreeSWITCH directory, a server, skills
with levels) and guest agents for a day (领导上线接听).

Who may do what: administrators change everything; team leads see every page, set agents' skill levels,
put leaders on the phones for a day (acd.supervisor lets them do that) and change a queue's shift settings
(acd.policy decides which fields, for this page and the team-lead console alike); creating queues and
extensions are an administrator's. acd.admin writes every change and audits it; it reaches the running ACD through
``Acd.load()`` (``services.acd``); without a running ACD the rows are written and loaded at start.

The form checks (``check_queue_form``, ``check_agent_form``, ``check_guest_form``) return the cleaned
values and a list of errors, Chinese first and English second; nothing is written when there is one. They
and the forms' starting values are in webui/acd_forms.py (imported here, where they were before).
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Callable, Mapping

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for

from acd import admin
from acd.models import OVERFLOW_KINDS, Agent, AgentSkill, ChatQueue, Queue
from acd.policy import (CHAT_QUEUE_FIELDS, QUEUE_FIELDS, QueueChangeRefused, chat_queue_fields_for,
                        may_assign_extensions, may_create_or_delete_queues, queue_fields_for)
from acd.strategies import STRATEGIES, STRATEGY_LABELS
from caseflow.models import User
from webui.acd_forms import (  # noqa: F401 EXTENSION_RE, parse_extension_ranges: their former home
    EXTENSION_RE, agent_as_form, chat_queue_as_form, check_agent_form, check_chat_queue_form, check_guest_form,
    check_queue_form, directory_extensions, parse_extension_ranges, queue_as_form, queue_form_defaults, ranges_text,
    submitted_form)
from webui.app import NavItem
from webui.blueprints.tickets import own_messages
from webui.i18n import error_text
from webui.security import audit, require_roles
from webui.views import get_or_404

log = logging.getLogger(__name__)

bp = Blueprint("admin_acd", __name__, url_prefix="/admin/acd")

VIEW_ROLES = ("admin", "team_lead")
NAV = [NavItem("Queues and agents", "admin_acd.queues", frozenset(VIEW_ROLES), order=61)]
MESSAGES = own_messages({"zh": {
    "Queues and agents": "队列与话务员", "Queues": "队列", "Agents": "话务员", "Guest agents": "领导上线接听",
    "New queue": "新建队列", "Edit queue %(name)s": "编辑队列 %(name)s", "New agent": "新建话务员",
    "Edit agent %(no)s": "编辑话务员 %(no)s", "Queue code": "队列编码", "Queue name": "队列名称",
    "Skill": "技能", "Distribution rule": "分配策略", "Ring timeout (s)": "振铃超时（秒）",
    "Max wait (s, 0 = no limit)": "最长等待（秒，0为不限）", "Overflow": "溢出方式", "Overflow target": "溢出目标",
    "Wrap-up (s)": "话后整理（秒）", "Announce every (s, 0 = off)": "报位间隔（秒，0为不报）",
    "Music on hold": "等待音乐", "Put an agent who does not answer on break": "未接听的话务员自动置忙",
    "Call-back key (empty = off)": "留言回拨按键（空为关闭）", "Answer target (s)": "接通目标（秒）",
    "Active": "启用", "Save": "保存", "Create": "新建", "Delete": "删除", "Agents with this skill":
    "具备该技能的话务员", "Extension": "分机号", "Server": "交换机", "Any (learned from registration)":
    "自动（按注册情况）", "Seat number (0 = operator number)": "座席编号（0为按工号）", "Skills": "技能",
    "Level (1-10, empty = none)": "级别（1-10，空为无）", "Tier": "梯队", "Registered": "已注册",
    "Status": "状态", "User": "用户", "Guest until": "上线日期至", "Day": "日期",
    "Put a leader on the phones": "安排领导上线接听", "End now": "立即结束",
    "Extension (if the user has none)": "分机号（用户无分机时填写）", "ended": "已结束", "on duty": "值班中",
    "Team leads change the rule and timings of a queue; everything else about it is for administrators.":
        "班长可调整队列的分配策略和各项时长；队列的其他设置由管理员修改。",
    "Only administrators change extensions and servers.": "仅管理员可修改分机与交换机。",
    "The leader takes calls on their own extension; only administrators assign extensions.":
        "领导使用本人的分机接听；分机仅由管理员分配。",
    "The ACD is not running: changes apply when it starts.": "话务分配服务未运行：修改将在启动后生效。",
    "No queues yet.": "尚无队列。", "No agents yet.": "尚无话务员。", "No guest agents.": "尚无领导上线记录。",
    "Please correct the following:": "请更正以下问题：", "Saved.": "已保存。", "Cancel": "取消",
    "No skill": "无", "Operator number": "工号", "Name": "姓名", "Rule": "策略",
    "Chat queues": "交谈队列", "New chat queue": "新建交谈队列", "Edit chat queue %(name)s": "编辑交谈队列 %(name)s",
    "Topic shown to citizens": "市民看到的咨询主题", "Offer time (s)": "接入时限（秒）",
    "Max wait (s, 0 = no limit; then a ticket)": "最长等待（秒，0为不限；超时转为工单）",
    "No chat queues yet: online chat on the website is closed.": "尚无交谈队列：网站在线咨询处于关闭状态。",
    "Team leads change the rule, the offer time and the maximum wait of a chat queue; everything else is for administrators.":
        "班长可调整交谈队列的分配策略、接入时限和最长等待；其他设置由管理员修改。",
    "Waiting": "等待", "In chat": "交谈中",
    "Online chat on the website (/chat): each active chat queue is a topic; agents holding its skill take its chats.":
        "网站在线咨询（/chat）：每个启用的交谈队列是一个咨询主题，具备其技能的话务员接待。",
}})

# Overflow kinds (acd.models.OVERFLOW_KINDS) as an administrator reads them.
OVERFLOW_LABELS = {
    "none": ("不溢出（转留言）", "none (voicemail prompt)"),
    "voicemail": ("转留言信箱", "voicemail"),
    "callback": ("登记回拨", "call-back request"),
    "queue": ("转其他队列", "another queue"),
    "number": ("转外部号码", "a phone number"),
}
STATUS_LABELS = {"logged_out": ("已签出", "logged out"), "available": ("就绪", "available"),
                 "on_break": ("示忙", "on break"), "after_call_work": ("话后处理", "after-call work")}
STATE_LABELS = {"idle": ("空闲", "idle"), "reserved": ("预占", "reserved"), "ringing": ("振铃", "ringing"),
                "in_call": ("通话中", "in call"), "wrap_up": ("整理", "wrap-up")}


# ----------------------------------------------------------------------------------------- helpers
def _acd():
    """The running ACD, or None when the telephony is not wired (tests, web-only deployments)."""
    return current_app.extensions["hotline"].services.acd


def _reload() -> None:
    """Let the running ACD pick up queue, agent and skill changes now (no restart)."""
    acd = _acd()
    if acd is not None:
        acd.load()


def _today() -> dt.date:
    return current_app.extensions["hotline"].services.clock.today()


def _is_admin() -> bool:
    return g.user.has_role("admin")


def _saved() -> None:
    from webui.i18n import gettext

    flash(gettext("Saved."), "info")


def _pair(labels: Mapping[str, tuple[str, str]], code: str) -> str:
    zh, en = labels.get(code, (code, code))
    return zh if (g.get("lang") or "zh") == "zh" else en


def strategy_choices(lang: str) -> list[tuple[str, str]]:
    """All distribution rules as (code, label) in the UI language, in acd.strategies order."""
    result = []
    for code in STRATEGIES:
        zh, _, en = STRATEGY_LABELS.get(code, code).partition(" / ")
        result.append((code, zh if lang == "zh" or not en else en))
    return result


# -------------------------------------------------------------------------------------- directory


def _directory() -> frozenset[str]:
    try:
        return directory_extensions(current_app.extensions["hotline"].config)
    except ValueError as exc:
        log.error("%s", exc)
        return frozenset()


def _servers() -> list[str]:
    return [endpoint.name for endpoint in current_app.extensions["hotline"].config.esl]


@bp.context_processor
def _page_context():
    return {"acd_running": _acd() is not None}


# ------------------------------------------------------------------------------------------ queues


def _render_queue(queue: Queue | None, form: Mapping, errors: list[str], status: int = 200):
    queues = list(Queue.select().order_by(Queue.name))
    return render_template("admin_acd/queue_form.html", queue=queue, form=form, errors=errors,
                           strategies=strategy_choices(g.get("lang") or "zh"),
                           overflow_kinds=[(k, _pair(OVERFLOW_LABELS, k)) for k in OVERFLOW_KINDS],
                           other_queues=[q for q in queues if queue is None or q.id != queue.id],
                           editable=queue_fields_for(g.user), can_edit=bool(queue_fields_for(g.user)),
                           agents=_agents_with_skill(queue.skill) if queue else []), status


def _agents_with_skill(skill: str) -> list[tuple[Agent, int]]:
    rows = (AgentSkill.select(AgentSkill, Agent, User).join(Agent).join(User)
            .where(AgentSkill.skill == skill).order_by(User.operator_no))
    return [(row.agent, row.level) for row in rows]


@bp.route("/")
@require_roles(*VIEW_ROLES)
def queues():
    """Every queue with its skill, rule, timings and overflow."""
    rows = list(Queue.select().order_by(Queue.active.desc(), Queue.name))
    counts: dict[str, int] = {}
    for row in AgentSkill.select(AgentSkill.skill):
        counts[row.skill] = counts.get(row.skill, 0) + 1
    rules = dict(strategy_choices(g.get("lang") or "zh"))
    return render_template("admin_acd/queues.html", queues=rows, counts=counts, rules=rules,
                           overflow=lambda k: _pair(OVERFLOW_LABELS, k),
                           can_create=may_create_or_delete_queues(g.user))


@bp.route("/queues/new", methods=["GET", "POST"])
@require_roles(*VIEW_ROLES)
def queue_new():
    """Create a queue."""
    return _queue_new(VOICE_QUEUES, queue_form_defaults)


@bp.route("/queues/<int:queue_id>", methods=["GET", "POST"])
@require_roles(*VIEW_ROLES)
def queue_edit(queue_id):
    """A queue's settings: each person changes the fields acd.policy gives them and reads the others."""
    return _queue_edit(VOICE_QUEUES, queue_id)


def _callers_waiting(queue: Queue, values: Mapping) -> list[str]:
    """A queue switched off while callers wait in it: they would no longer be offered to anyone."""
    acd = _acd()
    waiting = len(acd.queue_waiters.get(queue.name, {})) if acd is not None else 0
    if queue.active and not values["active"] and waiting:
        return [f"队列中还有 {waiting} 位来电者在等待，暂不能停用 / {waiting} callers are waiting in this "
                f"queue: it cannot be switched off now"]
    return []


# ------------------------------------------------------------------------------------- chat queues


def _render_chat_queue(queue: ChatQueue | None, form: Mapping, errors: list[str], status: int = 200):
    editable = chat_queue_fields_for(g.user)
    return render_template("admin_acd/chat_queue_form.html", queue=queue, form=form, errors=errors,
                           strategies=strategy_choices(g.get("lang") or "zh"), editable=editable,
                           can_edit=bool(editable) and (queue is not None or may_create_or_delete_queues(g.user)),
                           agents=_agents_with_skill(queue.skill) if queue else []), status


@bp.route("/chat-queues")
@require_roles(*VIEW_ROLES)
def chat_queues():
    """Every chat queue (a topic of the website's online chat) with its skill, rule, times and load now."""
    from acd import chat

    counts: dict[str, int] = {}
    for row in AgentSkill.select(AgentSkill.skill):
        counts[row.skill] = counts.get(row.skill, 0) + 1
    load = {row["queue"]: row for row in chat.queue_stats(current_app.extensions["hotline"].services.clock)}
    return render_template("admin_acd/chat_queues.html",
                           queues=list(ChatQueue.select().order_by(ChatQueue.active.desc(), ChatQueue.name)),
                           counts=counts, load=load, rules=dict(strategy_choices(g.get("lang") or "zh")),
                           can_create=may_create_or_delete_queues(g.user))


@bp.route("/chat-queues/new", methods=["GET", "POST"])
@require_roles(*VIEW_ROLES)
def chat_queue_new():
    """Create a chat queue (administrators)."""
    return _queue_new(CHAT_QUEUES, lambda: {"strategy": "least_talk_time", "offer_timeout": 30, "max_wait": 600,
                                            "active": "1"})


@bp.route("/chat-queues/<int:queue_id>", methods=["GET", "POST"])
@require_roles(*VIEW_ROLES)
def chat_queue_edit(queue_id):
    """A chat queue's settings: each person changes the fields acd.policy gives them and reads the others."""
    return _queue_edit(CHAT_QUEUES, queue_id)


# ------------------------------------------------------------------ the new and edit pages of both kinds
@dataclass(frozen=True)
class QueueKind:
    """What differs between the pages of call queues and of chat queues; their new and edit views are one."""

    model: type
    fields: frozenset[str]  # the form's fields (acd.policy)
    fields_for: Callable[[User], frozenset[str]]  # those a person may change (acd.policy)
    as_form: Callable
    check: Callable  # (form, queue or None, every queue of the kind) -> (values, errors)
    render: Callable  # (queue or None, form, errors, status)
    add: Callable  # acd.admin: (actor, values, audit) -> the queue
    change: Callable  # acd.admin: (actor, queue, values, audit) -> the fields changed
    edit_endpoint: str
    reload: bool  # the running ACD reloads its call queues after a change
    refuse: Callable[[object, Mapping], list[str]] = lambda queue, values: []  # errors beyond the form's


def _queue_new(kind: QueueKind, defaults: Callable[[], dict]):
    if not may_create_or_delete_queues(g.user):
        abort(403)
    if request.method == "GET":
        return kind.render(None, defaults(), [])
    values, errors = kind.check(request.form, None, list(kind.model.select()))
    if errors:
        return kind.render(None, request.form, errors, 400)
    queue = kind.add(g.user, values, audit)
    if kind.reload:
        _reload()
    _saved()
    return redirect(url_for(kind.edit_endpoint, queue_id=queue.id), code=303)


def _queue_edit(kind: QueueKind, queue_id: int):
    queue = get_or_404(kind.model, kind.model.id == queue_id)
    if request.method == "GET":
        return kind.render(queue, kind.as_form(queue), [])
    editable = kind.fields_for(g.user)
    if not editable:
        abort(403)
    form = submitted_form(request.form, kind.as_form(queue), kind.fields, editable)
    values, errors = kind.check(form, queue, list(kind.model.select()))
    errors += kind.refuse(queue, values)
    if errors:
        return kind.render(queue, {**form, "name": queue.name}, errors, 400)
    try:
        changed = kind.change(g.user, queue, values, audit)
    except QueueChangeRefused:
        abort(403)
    if changed and kind.reload:
        _reload()
    _saved()
    return redirect(url_for(kind.edit_endpoint, queue_id=queue.id), code=303)


VOICE_QUEUES = QueueKind(Queue, QUEUE_FIELDS, queue_fields_for, queue_as_form, check_queue_form, _render_queue,
                         admin.add_queue, admin.change_queue, "admin_acd.queue_edit", reload=True,
                         refuse=_callers_waiting)
CHAT_QUEUES = QueueKind(ChatQueue, CHAT_QUEUE_FIELDS, chat_queue_fields_for, chat_queue_as_form,
                        check_chat_queue_form, _render_chat_queue, admin.add_chat_queue, admin.change_chat_queue,
                        "admin_acd.chat_queue_edit", reload=False)


# ------------------------------------------------------------------------------------------ agents
def known_skills(agent: Agent | None = None) -> list[str]:
    """Skills an agent may hold: those of the queues, plus any the agent already has."""
    skills = {q.skill for q in Queue.select(Queue.skill)} | {q.skill for q in ChatQueue.select(ChatQueue.skill)}
    if agent is not None:
        skills |= {s.skill for s in agent.skills}
    return sorted(skills)


def _agent_or_404(agent_id: int) -> Agent:
    return get_or_404(Agent.select(Agent, User).join(User), Agent.id == agent_id)


def _agent_live(agent: Agent) -> Agent:
    """The ACD's in-memory copy when it runs (status and state are current there)."""
    acd = _acd()
    return acd.agents.get(agent.id, agent) if acd is not None else agent


def _render_agent(agent: Agent | None, form: Mapping, errors: list[str], status: int = 200):
    users = []
    if agent is None:
        taken = {a.user_id for a in Agent.select(Agent.user)}
        users = [u for u in User.select().where(User.active == True).order_by(User.operator_no)  # noqa: E712
                 if u.id not in taken]
    return render_template("admin_acd/agent_form.html", agent=agent, form=form, errors=errors, users=users,
                           servers=_servers(), skills=known_skills(agent), directory=ranges_text(_directory()),
                           queues_by_skill=_queues_by_skill(), can_edit=_is_admin(),
                           live=_agent_live(agent) if agent else None,
                           status_label=lambda c: _pair(STATUS_LABELS, c),
                           state_label=lambda c: _pair(STATE_LABELS, c)), status


def _queues_by_skill() -> dict[str, str]:
    return {q.skill: (q.display_name or q.name) for q in Queue.select().order_by(Queue.active)}


@bp.route("/agents")
@require_roles(*VIEW_ROLES)
def agents():
    """Every agent with extension, server, registration, status and skills."""
    rows = list(Agent.select(Agent, User).join(User).order_by(User.operator_no))
    skills: dict[int, list[AgentSkill]] = {}
    for row in AgentSkill.select().order_by(AgentSkill.skill):
        skills.setdefault(row.agent_id, []).append(row)
    return render_template("admin_acd/agents.html", agents=[_agent_live(a) for a in rows], skills=skills,
                           status_label=lambda c: _pair(STATUS_LABELS, c),
                           state_label=lambda c: _pair(STATE_LABELS, c),
                           can_edit=_is_admin(), today=_today())


@bp.route("/agents/new", methods=["GET", "POST"])
@require_roles("admin")
def agent_new():
    """Make a user an agent: extension, server, seat number and skills."""
    if request.method == "GET":
        return _render_agent(None, {"user": request.args.get("user", "")}, [])
    values, skills, errors = check_agent_form(request.form, None, _directory(), _servers(), known_skills())
    if errors:
        return _render_agent(None, request.form, errors, 400)
    user = values.pop("user")
    agent = admin.add_agent(user, values, skills, audit)
    _reload()
    _saved()
    return redirect(url_for("admin_acd.agent_edit", agent_id=agent.id), code=303)


@bp.route("/agents/<int:agent_id>", methods=["GET", "POST"])
@require_roles(*VIEW_ROLES)
def agent_edit(agent_id):
    """An agent's extension, server and seat (administrators) and skills (administrators, team leads)."""
    agent = _agent_or_404(agent_id)
    if request.method == "GET":
        return _render_agent(agent, agent_as_form(agent), [])
    full = _is_admin()
    values, skills, errors = check_agent_form(request.form, agent, _directory(), _servers(), known_skills(agent),
                                              full=full)
    live = _agent_live(agent)
    moved = full and (values["extension"] != agent.extension or values["server"] != agent.server)
    if moved and not errors and (live.status != "logged_out" or live.state != "idle"):
        errors.append("话务员签出后才能修改分机或交换机 / log the agent out before changing the extension or server")
    if errors:
        return _render_agent(agent, request.form, errors, 400)
    admin.change_agent(agent, values if full else None, skills, audit)
    _reload()
    _saved()
    return redirect(url_for("admin_acd.agent_edit", agent_id=agent.id), code=303)


@bp.route("/agents/<int:agent_id>/delete", methods=["POST"])
@require_roles("admin")
def agent_delete(agent_id):
    """Stop a user being an agent (only when logged out and idle); their history stays."""
    agent = _agent_or_404(agent_id)
    live = _agent_live(agent)
    if live.status != "logged_out" or live.state != "idle":
        flash(error_text("话务员签出后才能删除 / log the agent out before removing them"), "error")
        return redirect(url_for("admin_acd.agent_edit", agent_id=agent.id), code=303)
    admin.remove_agent(agent, audit)
    _reload()
    _saved()
    return redirect(url_for("admin_acd.agents"), code=303)


# ------------------------------------------------------------------------------------------ guests


def _render_guests(form: Mapping, errors: list[str], status: int = 200):
    rows = list(Agent.select(Agent, User).join(User).where(Agent.guest_until.is_null(False))
                .order_by(Agent.guest_until.desc(), User.operator_no))
    regular = {a.user_id for a in Agent.select(Agent.user).where(Agent.guest_until.is_null(True))}
    users = [u for u in User.select().where(User.active == True).order_by(User.operator_no)  # noqa: E712
             if u.id not in regular]
    skills: dict[int, list[AgentSkill]] = {}
    for row in AgentSkill.select().where(AgentSkill.agent.in_([a.id for a in rows] or [0])):
        skills.setdefault(row.agent_id, []).append(row)
    return render_template("admin_acd/guests.html", guests=[_agent_live(a) for a in rows], skills=skills,
                           users=users, form=form, errors=errors, known=known_skills(),
                           queues_by_skill=_queues_by_skill(), today=_today(),
                           may_assign_extension=may_assign_extensions(g.user),
                           status_label=lambda c: _pair(STATUS_LABELS, c)), status


@bp.route("/guests", methods=["GET", "POST"])
@require_roles(*VIEW_ROLES)
def guests():
    """Leaders taking calls for a day (领导上线接听): who, which day, which skills."""
    if request.method == "GET":
        return _render_guests({"day": _today().isoformat()}, [])
    acd = _acd()
    user, extension, day, skills, errors = check_guest_form(request.form, _today(), _directory(), known_skills(),
                                                            may_assign_extensions(g.user))
    if acd is None and not errors:
        errors.append("话务分配服务未运行，无法安排领导上线 / the ACD is not running: guest agents need it")
    if errors:
        return _render_guests(request.form, errors, 400)
    from acd.dispatcher import AcdError

    try:
        admin.add_guest(acd, g.user, user, extension, day, skills, audit)
    except AcdError as exc:
        _reload()
        return _render_guests(request.form, [str(exc)], 400)
    _reload()
    _saved()
    return redirect(url_for("admin_acd.guests"), code=303)


@bp.route("/guests/<int:agent_id>/end", methods=["POST"])
@require_roles(*VIEW_ROLES)
def guest_end(agent_id):
    """End a guest's day now: logged out and their skills removed (after the call they are in, if any)."""
    agent = _agent_or_404(agent_id)
    if agent.guest_until is None:
        abort(404)
    admin.end_guest(_acd(), agent, _today(), audit)
    _saved()
    return redirect(url_for("admin_acd.guests"), code=303)
