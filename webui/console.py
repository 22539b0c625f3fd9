"""What the team-lead console shows: totals, agent rows (one state, its colour, time in it, the actions that
apply) and queue rows, built from the ACD's figures as plain dicts.

Pure: the page and its live refresh (/supervisor/stats) both render these dicts, so a state reads the
same on first load and after an update. ``gettext(message)`` translates to the viewer's language.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping

from webui.i18n import format_duration, one_language

Translate = Callable[[str], str]

# The one state a team lead reads for an agent, in order of what matters most, and its colour class.
STATE_LABELS = {
    "logged_out": "Logged out", "in_call": "On a call", "on_hold": "Caller on hold", "ringing": "Ringing",
    "wrap_up": "After-call work", "on_break": "On break", "idle": "Idle",
}
# Actions, when each applies, and whether it needs a confirmation (it ends a call or a shift).
ACTION_LABELS = {
    "monitor": "Monitor", "whisper": "Whisper", "barge": "Barge", "intercept": "Intercept",
    "force_release": "Force release", "answer_help": "Answer help", "call_agent": "Call agent",
    "set_break": "Set break", "force_logout": "Force logout",
}
# Names of the recorded actions (SupervisorAction.action) that are not buttons.
RECORDED_LABELS = {**ACTION_LABELS, "queue_settings": "Queue settings", "add_guest_agent": "Leader on the line",
                   "expire_guests": "Leader off the line"}
CONFIRM = {
    "force_release": "End this agent's call now?",
    "force_logout": "Log this agent out?",
}
ON_CALL_ACTIONS = ("monitor", "whisper", "barge", "intercept", "force_release")


def agent_state(agent: Mapping) -> str:
    """The console state of one agent row of acd.dispatcher.agent_stats (a key of STATE_LABELS)."""
    if agent.get("status") == "logged_out" and agent.get("state") == "idle":
        return "logged_out"
    state = agent.get("state")
    if state == "in_call":
        return "on_hold" if agent.get("on_hold") else "in_call"
    if state in ("reserved", "ringing"):
        return "ringing"
    if state == "wrap_up" or agent.get("status") == "after_call_work":
        return "wrap_up"
    if agent.get("status") == "on_break":
        return "on_break"
    return "idle"


def agent_actions(agent: Mapping) -> list[str]:
    """The team-lead actions that apply to this agent now (acd.supervisor refuses the others anyway)."""
    state = agent_state(agent)
    actions: list[str] = []
    if agent.get("help_requested") and state != "logged_out":
        actions.append("answer_help")
    if state in ("in_call", "on_hold"):
        actions.extend(ON_CALL_ACTIONS)
    elif state != "logged_out" and agent.get("registered"):
        actions.append("call_agent")
    if agent.get("status") in ("available", "after_call_work"):
        actions.append("set_break")
    if agent.get("status") != "logged_out":
        actions.append("force_logout")
    return actions


def duration(seconds, lang: str) -> str:
    """Seconds as 1小时2分3秒 / 1 h 2 min 3 s (webui.i18n.format_duration); '-' for none."""
    return "-" if seconds is None else format_duration(seconds, lang)


def percent(value) -> str:
    return "-" if value is None else f"{value:g}%"


def agent_rows(agents: Iterable[Mapping], lang: str, _: Translate) -> list[dict]:
    """Agent rows ready to show: state label and class, time in state, phone, help, labelled actions."""
    rows = []
    for a in agents:
        state = agent_state(a)
        label = _(STATE_LABELS[state])
        if state == "on_break" and a.get("break_reason"):
            label = f"{label}（{one_language(a['break_reason'], lang)}）" if lang == "zh" \
                else f"{label} ({one_language(a['break_reason'], lang)})"
        rows.append({
            "agent_id": a["agent_id"], "who": f"{a.get('operator_no', '')} {a.get('name', '')}".strip(),
            "state": state, "state_label": label, "time": duration(a.get("seconds_in_state"), lang),
            "phone": _("Registered") if a.get("registered") else _("Not registered"),
            "registered": bool(a.get("registered")),
            "help": _("Asking for help") if a.get("help_requested") else "",
            "caller": a.get("call_number") or "", "desk": a.get("desk") or "",
            "calls_today": a.get("calls_today", 0), "talk_today": duration(a.get("talk_seconds_today", 0), lang),
            "actions": [{"action": name, "label": _(ACTION_LABELS[name]),
                         "confirm": _(CONFIRM[name]) if name in CONFIRM else ""} for name in agent_actions(a)],
        })
    return rows


def queue_rows(queues: Iterable[Mapping], lang: str) -> list[dict]:
    """Queue rows with units: waits as durations, rates as per cent."""
    return [{
        "queue": q["queue"], "name": q.get("display_name") or q["queue"], "waiting": q.get("waiting", 0),
        "longest_wait": duration(q.get("longest_wait"), lang) if q.get("waiting") else "-",
        "answered": q.get("answered_today", 0), "abandoned": q.get("abandoned_today", 0),
        "rate": percent(q.get("answer_rate_15s")), "average_wait": duration(q.get("average_wait"), lang),
        "average_talk": duration(q.get("average_talk"), lang),
    } for q in queues]


def totals(agents: Iterable[Mapping], queues: Iterable[Mapping], target_rate: float, lang: str) -> dict:
    """The wallboard's top line: agents per state, callers waiting, longest wait, today's 15-second answer
    rate (weighted by answered calls, against ``target_rate`` per cent) and abandoned calls."""
    states = [agent_state(a) for a in agents]
    queues = list(queues)
    answered = sum(q.get("answered_today") or 0 for q in queues)
    within = sum((q.get("answer_rate_15s") or 0) * (q.get("answered_today") or 0) / 100.0 for q in queues)
    rate = round(100.0 * within / answered, 1) if answered else None
    waiting = sum(q.get("waiting") or 0 for q in queues)
    return {
        "on_duty": sum(1 for s in states if s != "logged_out"),
        "on_call": sum(1 for s in states if s in ("in_call", "on_hold", "ringing")),
        "idle": states.count("idle"), "on_break": states.count("on_break"), "wrap_up": states.count("wrap_up"),
        "logged_out": states.count("logged_out"), "waiting": waiting,
        "longest_wait": duration(max((q.get("longest_wait") or 0 for q in queues), default=0), lang)
        if waiting else "-",
        "rate": percent(rate), "target": percent(target_rate),
        "below_target": rate is not None and rate < target_rate,
        "abandoned": sum(q.get("abandoned_today") or 0 for q in queues),
    }


# ---------------------------------------------------------------------- the live stream (/supervisor/stream)
# ACD notices after which the queue figures are read again: a caller came or went (waiting, longest wait,
# abandoned), a call was answered or ended (answered today, averages), a call-back was asked for.
QUEUE_NOTICES = frozenset({"queue", "answered", "call_ended", "callback", "no_answer_break"})


def touches_queues(kinds: Iterable[str]) -> bool:
    """Whether any of these ACD notice types changes the queue rows or the totals taken from them."""
    return any(kind in QUEUE_NOTICES for kind in kinds)


def _compared(row: Mapping) -> dict:
    # Time in state moves every second: it alone is no change (the whole board, sent every few seconds,
    # refreshes it).
    return {key: value for key, value in row.items() if key != "time"}


def shown_rows(rows: Iterable[Mapping]) -> dict:
    """The agent rows as a console shows them, by agent id, to compare the next rows with."""
    return {row["agent_id"]: _compared(row) for row in rows}


def changed_rows(shown: Mapping, rows: Iterable[Mapping]) -> list[dict] | None:
    """The rows of ``rows`` that differ from ``shown`` (shown_rows of the rows last sent), in their order;
    None when agents came or went, so the console needs the whole board instead."""
    rows = list(rows)
    if {row["agent_id"] for row in rows} != set(shown):
        return None
    return [dict(row) for row in rows if _compared(row) != shown[row["agent_id"]]]
