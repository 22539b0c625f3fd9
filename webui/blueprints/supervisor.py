"""Team-lead console (班长席): live queue and agent statistics, and the team-lead actions over the ACD.

Every action goes through acd.supervisor.Supervisor, which checks the role and the lead's scope again and
records who did it. A team lead sees (the page, /stats, the stream) and acts on the agents of the groups they
lead (caseflow.org.lead_scope); an action on another agent is refused 403 and recorded; the administrator
sees all. Queue figures stay whole: callers wait for a queue, not for a group.
"""
from __future__ import annotations

import collections
import contextlib
import time

import gevent
from flask import Blueprint, Response, current_app, g, jsonify, render_template, request, stream_with_context

from acd import chat
from acd.dispatcher import AcdError, update_queue
from acd.policy import SHIFT_QUEUE_FIELDS, QueueChangeRefused, queue_fields_for
from acd.strategies import STRATEGY_LABELS
from acd.state import TransitionRefused
from acd.supervisor import NotTeamLead, OutOfScope, Supervisor
from core.db import database
from recorder import missed as missed_calls
from webui.app import NavItem
from webui import chat_pump, console
from webui.chat_pump import clock
from webui.i18n import error_text, gettext
from webui.security import require_roles

bp = Blueprint("supervisor", __name__, url_prefix="/supervisor")
ROLES = ("team_lead", "admin")
NAV = [NavItem("Supervisor console", "supervisor.index", frozenset(ROLES), order=6)]
MESSAGES = {"zh": { "Queues": "队列", "Agents": "话务员", "Waiting": "排队数",
    "Longest wait": "最长等待", "Answered today": "今日接通", "Abandoned today": "今日放弃",
    "15-second answer rate": "15秒接通率", "Average wait": "平均等待", "Average talk": "平均通话",
    "Time in state": "状态时长", "Monitor": "监听", "Whisper": "密语", "Barge": "强插", "Intercept": "拦截",
    "Force release": "强拆", "Call agent": "呼叫话务员", "Answer help": "应答求助", "Set break": "置忙",
    "Force logout": "强制签出", "Queue settings": "队列设置", "Rule": "分配策略", "Ring time": "振铃时长",
    "Max wait": "最长等待", "Overflow": "溢出", "Announce every": "报位间隔", "No-answer break": "未接置忙",
    "Save": "保存", "Telephony is not connected.": "话务系统未连接。", "Help": "求助", "Desk": "桌面", "Recent actions": "最近操作",
    "Call-backs waiting": "待回拨", "Open": "待回拨数", "Being called back": "回拨中", "Oldest": "最早",
    "Caller": "来电号码", "Reason": "原因", "Calls": "来电次数", "Wait": "等待", "Attempts": "回拨次数",
    "Called back by": "回拨人", "Yes": "是", "No": "否", "Skill": "技能",
    "Logged out": "已签出", "On a call": "通话中", "Caller on hold": "通话保持", "Ringing": "振铃中",
    "After-call work": "话后处理", "On break": "示忙", "Idle": "空闲", "On duty": "在岗", "On calls": "通话中",
    "Waiting callers": "排队来电", "Answered within 15 s today": "今日15秒接通率", "Target": "目标",
    "Abandoned": "放弃", "Registered": "已注册", "Not registered": "未注册", "Asking for help": "求助中",
    "Phone": "话机", "Agent state": "座席状态", "Actions": "操作", "Calls today": "今日通话",
    "Talk time today": "今日通话时长", "Caller number": "来电号码", "Caller on the line": "通话号码",
    "End this agent's call now?": "确定强拆该话务员的通话吗？", "Log this agent out?": "确定将该话务员强制签出吗？",
    "No queues configured.": "尚未配置队列。", "No agents configured.": "尚未配置话务员。",
    "No chat queues.": "没有在线咨询队列。", "No agents in chat.": "没有话务员在线咨询。",
    "No call-backs waiting.": "没有待回拨来电。", "No actions yet.": "暂无操作记录。",
    "Done.": "已执行。", "The request failed; please try again.": "请求失败，请重试。", "Leader on the line": "领导上线", "Leader off the line": "领导下线", "Live": "实时", "Updated": "更新于",
    "Team leads change the rule and timings of a queue; everything else about it is for administrators.":
        "班长可调整队列的分配策略和各项时长；队列的其他设置由管理员修改。",
}}
# The console's event stream (/supervisor/stream): how often it looks for ACD notices, how often it sends the
# whole board, and how often at most it reads the queue figures again (database reads) after a notice.
LOOK_EVERY = 0.1
FULL_EVERY = 5.0
QUEUES_EVERY = 0.5
ACTIONS = ("monitor", "whisper", "barge", "intercept", "force_release", "call_agent", "answer_help",
           "set_break", "force_logout")


def _acd():
    return current_app.extensions["hotline"].services.acd


def _board(queues: list[dict], agents: list[dict]) -> dict:
    """The wallboard's totals, queue rows and agent rows in the viewer's language (webui.console)."""
    from ops.rules import Thresholds

    lang = g.get("lang") or "zh"
    target = Thresholds.from_extra(current_app.extensions["hotline"].config.extra).answer_rate
    return {"totals": console.totals(agents, queues, target, lang), "queue_rows": console.queue_rows(queues, lang),
            "agent_rows": console.agent_rows(agents, lang, gettext)}


def _scope(acd) -> frozenset[int] | None:
    """The ids of the agents the viewer sees (acd.supervisor.Supervisor.visible_agents); None: all."""
    return Supervisor(acd).visible_agents(g.user) if acd is not None else None


def _within(rows: list[dict], scope: frozenset[int] | None) -> list[dict]:
    """The rows (each with an ``agent_id``) of the agents in ``scope``."""
    return rows if scope is None else [row for row in rows if row["agent_id"] in scope]


@bp.route("/")
@require_roles(*ROLES)
def index():
    acd = _acd()
    scope = _scope(acd)
    queues = acd.queue_stats() if acd is not None else []
    agents = _within(acd.agent_stats(), scope) if acd is not None else []
    actions = Supervisor(acd).actions(20, viewer=g.user) if acd is not None else []
    return render_template("supervisor/index.html", acd=acd, queues=queues, agents=agents, actions=actions,
                           board=_board(queues, agents),
                           callbacks=missed_calls.open_summary(),
                           callback_rows=[e.missed for e in missed_calls.list_missed("open", limit=20,
                                                                                     oldest_first=True)],
                           reasons=missed_calls.REASON_LABELS,
                           action_labels=console.RECORDED_LABELS,
                           duration=lambda seconds: console.duration(seconds, g.get("lang") or "zh"), settings=list(acd.queues.values()) if acd is not None else [],
                           strategies=STRATEGY_LABELS,
                           editable=queue_fields_for(g.user) & SHIFT_QUEUE_FIELDS,
                           chat_queues=chat.queue_stats(clock()), chat_agents=_within(chat.agent_stats(), scope))


@bp.route("/queue/<name>", methods=["POST"])
@require_roles(*ROLES)
def queue_settings(name):
    """Change a queue's shift settings, as acd.policy allows the user (recorded with who did it)."""
    acd = _acd()
    if acd is None:
        return jsonify({"ok": False, "error": "telephony is not connected"}), 503
    form = {k: v for k, v in request.form.items() if k != "csrf_token"}
    try:
        queue = update_queue(acd, name, form, g.user)
    except QueueChangeRefused as exc:
        Supervisor(acd)._record(g.user, "queue_settings", None, detail=f"{name}: {form}"[:255], ok=False)
        return jsonify({"ok": False, "error": error_text(exc)}), 403
    except AcdError as exc:
        return jsonify({"ok": False, "error": error_text(exc)}), 400
    Supervisor(acd)._record(g.user, "queue_settings", None, detail=f"{name}: {form}"[:255])
    return jsonify({"ok": True, "queue": queue.name, "strategy": queue.strategy, "ring_timeout": queue.ring_timeout,
                    "max_wait": queue.max_wait, "wrap_up_seconds": queue.wrap_up_seconds,
                    "announce_interval": queue.announce_interval, "no_answer_break": queue.no_answer_break})


@bp.route("/stats")
@require_roles(*ROLES)
def stats():
    """The whole console as JSON (the page polls it only while its event stream is down)."""
    acd = _acd()
    return jsonify(_snapshot(acd, _scope(acd)))


def _snapshot(acd, scope: frozenset[int] | None) -> dict:
    """Everything the console shows of the agents in ``scope``: the ACD's figures, the wallboard built from
    them, call-backs, chats."""
    summary = missed_calls.open_summary()
    callbacks = {"open": summary["open"], "claimed": summary["claimed"], "oldest_seconds": summary["oldest_seconds"],
                 "by_queue": summary["by_queue"]}
    queues = acd.queue_stats() if acd is not None else []
    agents = _within(acd.agent_stats(), scope) if acd is not None else []
    return {"queues": queues, "agents": agents, "callbacks": callbacks, "board": _board(queues, agents),
            **_chats(scope)}


@bp.route("/stream")
@require_roles(*ROLES)
def stream():
    """Server-sent events of the console, for the same viewers as /stats: ``board`` (what /stats answers) at
    once and every FULL_EVERY seconds (times in state move on, chats and call-backs come from the database);
    ``changes`` within LOOK_EVERY of an ACD notice: the agent rows that changed, the totals, and the queue
    rows when callers came or went (read at most every QUEUES_EVERY). Only the agents in the viewer's scope,
    read again with each whole board (a lead given or taken a group sees it within FULL_EVERY). Ends after ``max_seconds`` (at most
    300); the browser's EventSource reconnects and the page polls /stats while it cannot. On a web worker
    this blueprint is forwarded to the call process (webui.forward), which streams it through."""
    acd = _acd()
    limit = chat_pump.stream_limit(request.args.get("max_seconds"))
    # Notice types only, in a plain deque drained by polling: the ACD may run in another thread's hub, and a
    # slow browser must never hold it up (the oldest are dropped; any one left says "look again").
    inbox: collections.deque = collections.deque(maxlen=1000)

    def listener(notice):
        inbox.append(notice.get("type", ""))

    def events():
        if acd is not None:
            acd.subscribe(listener)  # here, not in the view: the finally below is sure to run only once begun
        try:
            yield "retry: 2000\n\n"
            _release_request_connection()
            shown: dict = {}
            queues: list = []
            scope = None
            queues_at, queues_stale, next_full = float("-inf"), False, 0.0
            # A deadline, not gevent.Timeout: a timeout raised inside a query would break the connection.
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline:
                kinds = [inbox.popleft() for _ in range(len(inbox))]
                queues_stale = queues_stale or console.touches_queues(kinds)
                now = time.monotonic()
                queues_due = queues_stale and now - queues_at >= QUEUES_EVERY
                if now >= next_full or ((kinds or queues_due) and acd is not None):
                    with _connection():
                        if now >= next_full:
                            scope = _scope(acd)
                            whole = _snapshot(acd, scope)
                        else:
                            if queues_due:
                                queues = acd.queue_stats()
                            board = _board(queues, _within(acd.agent_stats(), scope))
                            changed = console.changed_rows(shown, board["agent_rows"])
                            whole = _snapshot(acd, scope) if changed is None else None
                    if whole is not None:  # at once, every FULL_EVERY, and when agents came or went
                        queues, queues_at, queues_stale = whole["queues"], now, False
                        shown, next_full = console.shown_rows(whole["board"]["agent_rows"]), now + FULL_EVERY
                        # The ACD's raw figures stay out: the page shows the board built from them.
                        yield chat_pump.event("board", {key: value for key, value in whole.items()
                                                        if key not in ("agents", "queues")})
                    elif changed or queues_due:  # the totals follow the rows and the queues
                        shown = console.shown_rows(board["agent_rows"])
                        change = {"totals": board["totals"], "agent_rows": changed}
                        if queues_due:
                            queues_at, queues_stale = now, False
                            change["queue_rows"] = board["queue_rows"]
                        yield chat_pump.event("changes", change)
                gevent.sleep(min(LOOK_EVERY, max(0.0, deadline - time.monotonic())))
        finally:
            if acd is not None and listener in acd.listeners:
                acd.listeners.remove(listener)

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _release_request_connection() -> None:
    """Give back the connection this request opened (webui.app): a console stays open for minutes and the
    database's connections are few, so each look of the stream takes one for its reads only."""
    if g.pop("db_opened", False) and not database.is_closed():
        database.close()


@contextlib.contextmanager
def _connection():
    """A database connection for one look of the stream: the one already open in this greenlet (a test's,
    a job's), else one opened for the look and closed after it."""
    if not database.is_closed():
        yield
        return
    with database.connection_context():
        yield


def _chats(scope: frozenset[int] | None) -> dict:
    """Chat queues (waiting, longest wait, in chat) and active chats per agent in ``scope``, for the console."""
    lang = g.get("lang") or "zh"
    queues = [{**q, "longest_wait_label": console.duration(q["longest_wait"], lang)} for q in chat.queue_stats(clock())]
    return {"chat_queues": queues, "chat_agents": _within(chat.agent_stats(), scope)}


@bp.route("/action", methods=["POST"])
@require_roles(*ROLES)
def action():
    acd = _acd()
    if acd is None:
        return jsonify({"ok": False, "error": "telephony is not connected"}), 503
    name = request.form.get("action", "")
    if name not in ACTIONS:
        return jsonify({"ok": False, "error": f"unknown action {name!r}"}), 400
    try:
        agent_id = int(request.form.get("agent_id", ""))
    except ValueError:
        return jsonify({"ok": False, "error": "agent_id must be a number"}), 400
    supervisor = Supervisor(acd)
    try:
        if name == "set_break":
            supervisor.set_break(g.user, agent_id, request.form.get("reason") or "班长置忙 / set by team lead")
        else:
            getattr(supervisor, name)(g.user, agent_id)
    except (NotTeamLead, OutOfScope) as exc:  # recorded (ok=False) by the Supervisor
        return jsonify({"ok": False, "error": console.one_language(str(exc), g.get("lang") or "zh")}), 403
    except (AcdError, TransitionRefused) as exc:
        return jsonify({"ok": False, "error": console.one_language(str(exc), g.get("lang") or "zh")}), 409
    return jsonify({"ok": True, "message": gettext("Done.")})
