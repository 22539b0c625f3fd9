"""Administration of the ACD (话务分配): queues (skill, distribution rule, timings, overflow, hold music),
agents (a user with an operator number, a SIP extension from the FreeSWITCH directory, a server, skills
with levels) and guest agents for a day (领导上线接听).

Who may do what: administrators change everything; team leads see every page, set agents' skill levels,
put leaders on the phones for a day (acd.supervisor lets them do that) and change a queue's shift settings
(acd.policy decides which fields, for this page and the team-lead console alike); creating queues and
extensions are an administrator's. acd.admin writes every change and audits it; it reaches the running ACD through
``Acd.load()`` (``services.acd``); without a running ACD the rows are written and loaded at start.

The form checks (``check_queue_form``, ``check_agent_form``, ``check_guest_form``) return the cleaned
values and a list of errors, Chinese first and English second; nothing is written when there is one.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for

from acd import admin
from acd.models import OVERFLOW_KINDS, Agent, AgentSkill, ChatQueue, Queue
from acd.policy import (CHAT_QUEUE_FIELDS, CHAT_QUEUE_NUMBERS, QUEUE_FIELDS, QUEUE_NUMBERS, QueueChangeRefused,
                        chat_queue_fields_for, may_assign_extensions, may_create_or_delete_queues, queue_fields_for,
                        queue_number_error)
from acd.strategies import STRATEGIES, STRATEGY_LABELS
from caseflow.models import User
from core.config import PROJECT_ROOT
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

# Seconds an administrator may set: (low, high); announce_interval is 0 (off) or at least 10.
CODE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}\Z")
PHONE_RE = re.compile(r"^\+?[0-9]{3,20}\Z")
EXTENSION_RE = re.compile(r"^[0-9]{2,10}\Z")
# Hold music is sent to FreeSWITCH as a playback argument: only these shapes, no spaces or quotes.
MOH_RE = re.compile(r"^(local_stream://[A-Za-z0-9_-]{1,64}|silence_stream://-?[0-9]{1,7}"
                    r"|tone_stream://[A-Za-z0-9%(),;=.-]{1,200}|(/[A-Za-z0-9_.-]+)+\.(wav|mp3|ogg)"
                    r"|[A-Za-z0-9_-][A-Za-z0-9_./-]*\.(wav|mp3|ogg))\Z")
CALLBACK_KEYS = tuple("0123456789*#")
MAX_GUEST_DAYS_AHEAD = 31
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


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


def _text(form: Mapping, name: str, high: int, zh: str, en: str, errors: list[str], low: int = 1) -> str:
    value = str(form.get(name, "") or "").strip()
    if CONTROL_RE.search(value):
        errors.append(f"{zh}含有不允许的控制字符 / {en} contains control characters")
    elif not low <= len(value) <= high:
        errors.append(f"{zh}须为{low}-{high}个字符 / {en} must be {low}-{high} characters")
    return value


def _whole(form: Mapping, name: str, low: int, high: int, zh: str, en: str, errors: list[str],
           default: int | None = None) -> int | None:
    raw = str(form.get(name, "") or "").strip()
    if raw == "" and default is not None:
        return default
    if not re.fullmatch(r"-?[0-9]{1,9}", raw):
        errors.append(f"{zh}须为整数 / {en} must be a whole number (got {raw[:20]!r})")
        return None
    value = int(raw)
    if not low <= value <= high:
        errors.append(f"{zh}须在{low}到{high}之间 / {en} must be between {low} and {high} (got {value})")
        return None
    return value


def _checked(form: Mapping, name: str) -> bool:
    return str(form.get(name, "")).lower() in ("1", "on", "true", "yes")


# -------------------------------------------------------------------------------------- directory
def directory_extensions(config) -> frozenset[str]:
    """The SIP extensions FreeSWITCH knows: ``HOTLINE_AGENT_EXTENSIONS`` ("1000-1019,2001") when set,
    else the user ids of the shipped directory (freeswitch-conf/directory/*.xml), else 1000-1019."""
    spec = str((config.extra or {}).get("HOTLINE_AGENT_EXTENSIONS", "") or "").strip()
    if spec:
        return parse_extension_ranges(spec)
    found: set[str] = set()
    directory = Path((config.extra or {}).get("HOTLINE_FS_CONF_DIR") or PROJECT_ROOT / "freeswitch-conf") / "directory"
    for path in sorted(directory.glob("*.xml")):
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError) as exc:
            log.warning("cannot read the FreeSWITCH directory file %s: %s", path, exc)
            continue
        found |= {u.get("id", "") for u in root.iter("user") if EXTENSION_RE.match(u.get("id", ""))}
    return frozenset(found) or frozenset(str(n) for n in range(1000, 1020))


def parse_extension_ranges(spec: str) -> frozenset[str]:
    """"1000-1019,2001" -> the extensions named; raises ValueError on anything else."""
    result: set[str] = set()
    for part in spec.split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        if not EXTENSION_RE.match(low) or (dash and not EXTENSION_RE.match(high)):
            raise ValueError(f"HOTLINE_AGENT_EXTENSIONS: {part!r} is not an extension or a range like 1000-1019")
        if not dash:
            result.add(low)
            continue
        if int(high) < int(low) or int(high) - int(low) > 10000 or len(low) != len(high):
            raise ValueError(f"HOTLINE_AGENT_EXTENSIONS: bad range {part!r}")
        result |= {str(n) for n in range(int(low), int(high) + 1)}
    return frozenset(result)


def _directory() -> frozenset[str]:
    try:
        return directory_extensions(current_app.extensions["hotline"].config)
    except ValueError as exc:
        log.error("%s", exc)
        return frozenset()


def _servers() -> list[str]:
    return [endpoint.name for endpoint in current_app.extensions["hotline"].config.esl]


def check_extension(extension: str, directory: frozenset[str], user: User | None, agent_id: int | None,
                    errors: list[str]) -> str:
    """A SIP extension that FreeSWITCH knows and no other agent or user holds."""
    extension = (extension or "").strip()
    if not EXTENSION_RE.match(extension):
        errors.append(f"分机号须为2-10位数字 / the extension must be 2-10 digits (got {extension[:20]!r})")
        return extension
    if extension not in directory:
        shown = _ranges(directory)
        errors.append(f"分机号 {extension} 不在交换机用户目录中（{shown}） / extension {extension} is not in the "
                      f"FreeSWITCH directory ({shown})")
        return extension
    other = Agent.get_or_none((Agent.extension == extension) & (Agent.id != (agent_id or 0)))
    if other is not None:
        errors.append(f"分机号 {extension} 已由话务员 {other.user.operator_no} 使用 / extension {extension} "
                      f"is already agent {other.user.operator_no}'s")
        return extension
    holder = User.get_or_none((User.extension == extension) & (User.id != (user.id if user else 0)))
    if holder is not None:
        errors.append(f"分机号 {extension} 已分配给用户 {holder.operator_no} / extension {extension} belongs to "
                      f"user {holder.operator_no}")
    return extension


def _ranges(extensions: frozenset[str]) -> str:
    """1000-1019 style summary of a set of extensions (for error messages)."""
    numbers = sorted(int(e) for e in extensions)
    if not numbers:
        return "-"
    parts, start, prev = [], numbers[0], numbers[0]
    for n in numbers[1:] + [None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ",".join(parts[:6]) + ("…" if len(parts) > 6 else "")


@bp.context_processor
def _page_context():
    return {"acd_running": _acd() is not None}


# ------------------------------------------------------------------------------------------ queues
def _new_queue_code(form: Mapping, others: list, taken: str, errors: list[str]) -> str:
    """A new queue's code: a lower-case code none of ``others`` has (``taken``, with {name}, says it is)."""
    name = str(form.get("name", "") or "").strip()
    if not CODE_RE.match(name):
        errors.append("队列编码须以小写字母开头，仅含小写字母、数字、_ 和 -，最长32位 / the queue code must start "
                      "with a lower-case letter and hold only a-z, 0-9, _ and - (at most 32)")
    elif any(q.name == name for q in others):
        errors.append(taken.format(name=name))
    return name


def _skill_code(form: Mapping, errors: list[str]) -> str:
    skill = str(form.get("skill", "") or "").strip()
    if not CODE_RE.match(skill):
        errors.append("技能编码须以小写字母开头，仅含小写字母、数字、_ 和 -，最长32位 / the skill must start with a "
                      "lower-case letter and hold only a-z, 0-9, _ and - (at most 32)")
    return skill


def _strategy(form: Mapping, errors: list[str]) -> str:
    strategy = str(form.get("strategy", "") or "")
    if strategy not in STRATEGIES:
        errors.append(f"未知的分配策略 {strategy[:32]!r} / unknown distribution rule; known: "
                      f"{', '.join(STRATEGIES)}")
    return strategy


def check_queue_form(form: Mapping, queue: Queue | None, queues: list[Queue]) -> tuple[dict, list[str]]:
    """Clean a queue form (``queue`` None = a new one) against the other ``queues``; returns (values, errors)."""
    errors: list[str] = []
    values: dict[str, object] = {}
    others = [q for q in queues if queue is None or q.id != queue.id]
    if queue is None:
        values["name"] = _new_queue_code(form, others, "队列编码 {name} 已存在 / queue {name} already exists", errors)
    name = values.get("name") if queue is None else queue.name
    values["display_name"] = _text(form, "display_name", 100, "队列名称", "queue name", errors)
    values["skill"] = skill = _skill_code(form, errors)
    active = True if queue is None else _checked(form, "active")
    values["active"] = active
    if active and CODE_RE.match(skill):
        clash = next((q for q in others if q.active and q.skill == skill), None)
        if clash is not None:
            errors.append(f"技能 {skill} 已由队列 {clash.name} 服务 / skill {skill} is already served by queue "
                          f"{clash.name}")
    values["strategy"] = _strategy(form, errors)
    for field_name, (low, high, zh, en) in QUEUE_NUMBERS.items():
        values[field_name] = _whole(form, field_name, low, high, zh, en, errors)
    if values["announce_interval"] is not None:
        error = queue_number_error("announce_interval", values["announce_interval"])
        if error:
            errors.append(error)
    kind = str(form.get("overflow_kind", "") or "")
    target = str(form.get("overflow_target", "") or "").strip()
    if kind not in OVERFLOW_KINDS:
        errors.append(f"未知的溢出方式 {kind[:16]!r} / unknown overflow kind; known: {', '.join(OVERFLOW_KINDS)}")
    elif kind == "queue":
        by_name = {q.name: q for q in others}
        if target == name:
            errors.append("队列不能溢出到自身 / a queue cannot overflow into itself")
        elif target not in by_name or not by_name[target].active:
            errors.append(f"溢出目标队列 {target[:64]!r} 不存在或未启用 / overflow queue {target[:64]!r} does not "
                          f"exist or is not active")
        elif _overflow_loops(name, target, by_name):
            errors.append(f"溢出到 {target} 会形成循环 / overflowing into {target} would loop back to {name}")
    elif kind == "number":
        if not PHONE_RE.match(target):
            errors.append(f"溢出号码须为3-20位数字 / the overflow number must be 3-20 digits (got {target[:24]!r})")
    elif kind == "voicemail":
        if target and not CODE_RE.match(target):
            errors.append("留言信箱编码格式不正确 / the mailbox must be a code like general")
    else:
        target = ""  # none / callback: nothing to aim at
    values["overflow_kind"], values["overflow_target"] = kind, target
    moh = str(form.get("moh", "") or "").strip()
    if not MOH_RE.match(moh) or ".." in moh:
        errors.append("等待音乐须为 local_stream://名称、silence_stream://毫秒、tone_stream:// 或 .wav/.mp3 文件 / "
                      "music on hold must be local_stream://name, silence_stream://ms, tone_stream:// or a "
                      ".wav/.mp3 file")
    values["moh"] = moh
    key = str(form.get("callback_key", "") or "").strip()
    if key and key not in CALLBACK_KEYS:
        errors.append("留言回拨按键须为0-9、* 或 #，或留空 / the call-back key must be 0-9, * or #, or empty")
    values["callback_key"] = key
    values["no_answer_break"] = _checked(form, "no_answer_break")
    if queue is not None and queue.active and not active:
        feeding = [q.name for q in others if q.active and q.overflow_kind == "queue" and q.overflow_target == queue.name]
        if feeding:
            errors.append(f"队列 {', '.join(feeding)} 溢出到本队列，不能停用 / queues {', '.join(feeding)} overflow "
                          f"into this one: it cannot be switched off")
    return values, errors


def _overflow_loops(name: str, target: str, by_name: Mapping[str, Queue]) -> bool:
    """True if following overflow-to-queue links from ``target`` comes back to ``name``."""
    seen: set[str] = set()
    current = target
    while current in by_name and current not in seen:
        seen.add(current)
        queue = by_name[current]
        if queue.overflow_kind != "queue" or queue.max_wait == 0 or not queue.active:
            return False
        current = queue.overflow_target
        if current == name:
            return True
    return False


def _queue_form_defaults() -> dict:
    return {"strategy": "least_talk_time", "ring_timeout": 20, "max_wait": 300, "wrap_up_seconds": 15,
            "announce_interval": 30, "answer_target_seconds": 15, "overflow_kind": "callback",
            "moh": "local_stream://moh", "callback_key": "1", "no_answer_break": "1", "active": "1"}


def _queue_as_form(queue: Queue) -> dict:
    form = {name: getattr(queue, name) for name in (
        "name", "display_name", "skill", "strategy", "ring_timeout", "max_wait", "wrap_up_seconds",
        "announce_interval", "answer_target_seconds", "overflow_kind", "overflow_target", "moh", "callback_key")}
    form["no_answer_break"] = "1" if queue.no_answer_break else ""
    form["active"] = "1" if queue.active else ""
    return form


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
    return _queue_new(VOICE_QUEUES, _queue_form_defaults)


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
def check_chat_queue_form(form: Mapping, queue: ChatQueue | None, queues: list[ChatQueue]
                          ) -> tuple[dict, list[str]]:
    """Clean a chat queue form (``queue`` None = a new one) against the other chat ``queues``."""
    errors: list[str] = []
    values: dict[str, object] = {}
    if queue is None:
        values["name"] = _new_queue_code(form, queues, "交谈队列编码 {name} 已存在 / chat queue {name} already exists",
                                         errors)
    values["display_name"] = _text(form, "display_name", 100, "咨询主题", "topic", errors)
    values["skill"] = _skill_code(form, errors)
    values["strategy"] = _strategy(form, errors)
    for field_name, (low, high, zh, en) in CHAT_QUEUE_NUMBERS.items():
        values[field_name] = _whole(form, field_name, low, high, zh, en, errors)
    values["active"] = True if queue is None else _checked(form, "active")
    return values, errors


def _chat_queue_as_form(queue: ChatQueue) -> dict:
    form = {name: getattr(queue, name) for name in ("name", "display_name", "skill", "strategy", "offer_timeout",
                                                     "max_wait")}
    form["active"] = "1" if queue.active else ""
    return form


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
    form = _submitted_form(request.form, kind.as_form(queue), kind.fields, editable)
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


def _submitted_form(submitted: Mapping, current: dict, fields: frozenset[str], editable: frozenset[str]) -> dict:
    """The queue form as submitted, with the fields the person cannot change (the page sends them disabled,
    so the browser leaves them out) taken from the queue (``current``); a field they cannot change but sent
    anyway is kept, so the policy refuses it if it differs."""
    form = dict(current)
    for name in fields - {"name"}:
        if name in editable:
            form[name] = submitted.get(name, "")  # an unticked box is absent: off
        elif name in submitted:
            form[name] = submitted[name]
    return form


VOICE_QUEUES = QueueKind(Queue, QUEUE_FIELDS, queue_fields_for, _queue_as_form, check_queue_form, _render_queue,
                         admin.add_queue, admin.change_queue, "admin_acd.queue_edit", reload=True,
                         refuse=_callers_waiting)
CHAT_QUEUES = QueueKind(ChatQueue, CHAT_QUEUE_FIELDS, chat_queue_fields_for, _chat_queue_as_form,
                        check_chat_queue_form, _render_chat_queue, admin.add_chat_queue, admin.change_chat_queue,
                        "admin_acd.chat_queue_edit", reload=False)


# ------------------------------------------------------------------------------------------ agents
def known_skills(agent: Agent | None = None) -> list[str]:
    """Skills an agent may hold: those of the queues, plus any the agent already has."""
    skills = {q.skill for q in Queue.select(Queue.skill)} | {q.skill for q in ChatQueue.select(ChatQueue.skill)}
    if agent is not None:
        skills |= {s.skill for s in agent.skills}
    return sorted(skills)


def check_skills(form: Mapping, allowed: list[str], errors: list[str]) -> dict[str, tuple[int, int]]:
    """{skill: (level, tier)} from ``level_<skill>`` / ``tier_<skill>`` fields; empty or 0 = not held."""
    result: dict[str, tuple[int, int]] = {}
    for key in form:
        if not key.startswith("level_"):
            continue
        skill = key[len("level_"):]
        if skill not in allowed:
            errors.append(f"未知技能 {skill[:32]!r}（须先有服务该技能的队列） / unknown skill {skill[:32]!r} (no queue "
                          f"serves it)")
            continue
        raw = str(form.get(key, "") or "").strip()
        if raw in ("", "0"):
            continue
        level = _whole(form, key, 1, 10, f"技能 {skill} 的级别", f"the level of {skill}", errors)
        tier = _whole(form, f"tier_{skill}", 0, 99, f"技能 {skill} 的梯队", f"the tier of {skill}", errors,
                      default=0)
        if level is not None and tier is not None:
            result[skill] = (level, tier)
    return result


def check_agent_form(form: Mapping, agent: Agent | None, directory: frozenset[str], servers: list[str],
                     allowed_skills: list[str], full: bool = True) -> tuple[dict, dict, list[str]]:
    """Clean an agent form; ``full`` False checks the skills only (a team lead's edit).

    Returns (values for the agent row incl. "user", skills, errors).
    """
    errors: list[str] = []
    values: dict[str, object] = {}
    user = agent.user if agent is not None else None
    if full:
        if agent is None:
            raw = str(form.get("user", "") or "").strip()
            user = User.get_or_none(User.id == int(raw)) if raw.isdigit() and len(raw) < 10 else None
            if user is None or not user.active:
                errors.append("请选择一个启用的用户 / choose an active user")
                user = None
            elif Agent.get_or_none(Agent.user == user) is not None:
                errors.append(f"用户 {user.operator_no} 已是话务员 / user {user.operator_no} is already an agent")
        values["user"] = user
        values["extension"] = check_extension(str(form.get("extension", "") or ""), directory, user,
                                              agent.id if agent else None, errors)
        server = str(form.get("server", "") or "").strip()
        if server and server not in servers:
            errors.append(f"未知的交换机 {server[:64]!r} / unknown FreeSWITCH server; known: {', '.join(servers)}")
        values["server"] = server
        values["position"] = _whole(form, "position", 0, 9999, "座席编号", "seat number", errors, default=0)
    skills = check_skills(form, allowed_skills, errors)
    return values, skills, errors


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
                           servers=_servers(), skills=known_skills(agent), directory=_ranges(_directory()),
                           queues_by_skill=_queues_by_skill(), can_edit=_is_admin(),
                           live=_agent_live(agent) if agent else None,
                           status_label=lambda c: _pair(STATUS_LABELS, c),
                           state_label=lambda c: _pair(STATE_LABELS, c)), status


def _queues_by_skill() -> dict[str, str]:
    return {q.skill: (q.display_name or q.name) for q in Queue.select().order_by(Queue.active)}


def _agent_as_form(agent: Agent) -> dict:
    form = {"extension": agent.extension, "server": agent.server, "position": agent.position}
    for row in agent.skills:
        form[f"level_{row.skill}"] = row.level
        form[f"tier_{row.skill}"] = row.position
    return form


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
        return _render_agent(agent, _agent_as_form(agent), [])
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
def check_guest_form(form: Mapping, today: dt.date, directory: frozenset[str], allowed_skills: list[str],
                     may_assign: bool = True
                     ) -> tuple[User | None, str, dt.date | None, dict[str, tuple[int, int]], list[str]]:
    """(user, extension, day, skills, errors) for putting a leader on the phones for a day; ``may_assign``
    False (a team lead) means the form has no extension field and a user without one needs an administrator."""
    errors: list[str] = []
    raw = str(form.get("user", "") or "").strip()
    user = User.get_or_none(User.id == int(raw)) if raw.isdigit() and len(raw) < 10 else None
    extension = ""
    if user is None or not user.active:
        errors.append("请选择一个启用的用户 / choose an active user")
        user = None
    else:
        existing = Agent.get_or_none(Agent.user == user)
        if existing is not None and existing.guest_until is None:
            errors.append(f"用户 {user.operator_no} 已是正式话务员，请在话务员页面调整技能 / user {user.operator_no} "
                          f"is a regular agent already: change their skills on the agents page")
        extension = user.extension or str(form.get("extension", "") or "").strip()
        if not extension and not may_assign:
            errors.append(f"用户 {user.operator_no} 没有分机，请管理员先为其分配分机 / user {user.operator_no} has no "
                          f"extension: an administrator must assign one first")
        elif not extension:
            errors.append(f"用户 {user.operator_no} 没有分机，请填写分机号 / user {user.operator_no} has no extension: "
                          f"give one")
        else:
            check_extension(extension, directory, user, existing.id if existing else None, errors)
    day = None
    day_raw = str(form.get("day", "") or "").strip()
    try:
        day = dt.date.fromisoformat(day_raw) if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", day_raw) else None
    except ValueError:
        day = None
    if day is None:
        errors.append(f"日期格式须为 YYYY-MM-DD / the day must be YYYY-MM-DD (got {day_raw[:20]!r})")
    elif not today <= day <= today + dt.timedelta(days=MAX_GUEST_DAYS_AHEAD):
        errors.append(f"日期须在今天到{MAX_GUEST_DAYS_AHEAD}天后之间 / the day must be between today and "
                      f"{MAX_GUEST_DAYS_AHEAD} days ahead")
    skills = check_skills(form, allowed_skills, errors)
    if not skills and not any(e.startswith("技能") or e.startswith("未知技能") for e in errors):
        errors.append("请至少选择一项技能 / give at least one skill")
    return user, extension, day, skills, errors


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
