"""The ACD administration's forms (webui/blueprints/admin_acd.py): what each form starts with, and cleaning
what comes back. Each check (``check_queue_form``, ``check_chat_queue_form``, ``check_agent_form``,
``check_guest_form``) returns the cleaned values and a list of errors, Chinese first and English second;
the views write nothing when there is one (acd.admin writes). The checks read the rows they compare with
(another queue's skill, another agent's extension); nothing here writes, renders or knows the request.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Mapping

from acd.models import OVERFLOW_KINDS, Agent, ChatQueue, Queue
from acd.policy import CHAT_QUEUE_NUMBERS, QUEUE_NUMBERS, queue_number_error
from acd.strategies import STRATEGIES
from caseflow.models import User
from core.config import PROJECT_ROOT

log = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------------------- reading a form
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


# ------------------------------------------------------------------------------------------- extensions
def directory_extensions(config) -> frozenset[str]:
    """The SIP extensions FreeSWITCH knows: ``HOTLINE_AGENT_EXTENSIONS`` ("1000-1019,2001") when set,
    else the user ids of the shipped directory (freeswitch-conf/directory/*.xml and the shipped seat list
    seats/shared.xml; the product writes the per-seat passwords for these, acd.seats), else 1000-1019."""
    spec = str((config.extra or {}).get("HOTLINE_AGENT_EXTENSIONS", "") or "").strip()
    if spec:
        return parse_extension_ranges(spec)
    found: set[str] = set()
    conf_dir = Path((config.extra or {}).get("HOTLINE_FS_CONF_DIR") or PROJECT_ROOT / "freeswitch-conf")
    for path in sorted(conf_dir.glob("directory/*.xml")) + [conf_dir / "seats" / "shared.xml"]:
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


def check_extension(extension: str, directory: frozenset[str], user: User | None, agent_id: int | None,
                    errors: list[str]) -> str:
    """A SIP extension that FreeSWITCH knows and no other agent or user holds."""
    extension = (extension or "").strip()
    if not EXTENSION_RE.match(extension):
        errors.append(f"分机号须为2-10位数字 / the extension must be 2-10 digits (got {extension[:20]!r})")
        return extension
    if extension not in directory:
        shown = ranges_text(directory)
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


def ranges_text(extensions: frozenset[str]) -> str:
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


# ----------------------------------------------------------------------------------------------- queues
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


def queue_form_defaults() -> dict:
    return {"strategy": "least_talk_time", "ring_timeout": 20, "max_wait": 300, "wrap_up_seconds": 15,
            "announce_interval": 30, "answer_target_seconds": 15, "overflow_kind": "callback",
            "moh": "local_stream://moh", "callback_key": "1", "no_answer_break": "1", "active": "1"}


def queue_as_form(queue: Queue) -> dict:
    form = {name: getattr(queue, name) for name in (
        "name", "display_name", "skill", "strategy", "ring_timeout", "max_wait", "wrap_up_seconds",
        "announce_interval", "answer_target_seconds", "overflow_kind", "overflow_target", "moh", "callback_key")}
    form["no_answer_break"] = "1" if queue.no_answer_break else ""
    form["active"] = "1" if queue.active else ""
    return form


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


def chat_queue_as_form(queue: ChatQueue) -> dict:
    form = {name: getattr(queue, name) for name in ("name", "display_name", "skill", "strategy", "offer_timeout",
                                                     "max_wait")}
    form["active"] = "1" if queue.active else ""
    return form


def submitted_form(submitted: Mapping, current: dict, fields: frozenset[str], editable: frozenset[str]) -> dict:
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


# ------------------------------------------------------------------------------------ agents and guests
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


def agent_as_form(agent: Agent) -> dict:
    form = {"extension": agent.extension, "server": agent.server, "position": agent.position}
    for row in agent.skills:
        form[f"level_{row.skill}"] = row.level
        form[f"tier_{row.skill}"] = row.position
    return form


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
