"""The ticket workflow: status names and ONE declared transition table ``(state, event) -> Rule``.

Pure: no database here. ``check(state, event, ctx)`` returns the target status or raises
``WorkflowError`` saying why not; ``caseflow.services.transition`` does the writing (``apply`` below is
the contract's entry point and delegates to it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

# ---- statuses -------------------------------------------------------------------------------------
RECORDED = "recorded"          # 记录待分配
ANSWERED = "answered"          # 当场答复
DEFERRED = "deferred"          # 暂不能答复 (centre answers later)
NOT_ACCEPTED = "not_accepted"  # 不予受理
DISPATCHED = "dispatched"      # 分配待处理
IN_PROGRESS = "in_progress"    # 开始处理
RETURNED = "returned"          # 退回中心 (逆向分流)
REPLIED = "replied"            # 处理完毕待审核
APPROVED = "approved"          # 审核完毕 (待回访)
CALLED_BACK = "called_back"    # 已回访
UNSATISFIED = "unsatisfied"    # 回访不满意, 待研判是否重办
CLOSED = "closed"              # 已办结
ARCHIVED = "archived"          # 已归档
MERGED = "merged"              # 已并入主工单

STATUS_LABELS: dict[str, tuple[str, str]] = {
    RECORDED: ("记录待分配", "Recorded"),
    ANSWERED: ("已当场答复", "Answered on the spot"),
    DEFERRED: ("暂不能答复", "Answer later"),
    NOT_ACCEPTED: ("不予受理", "Not accepted"),
    DISPATCHED: ("分配待处理", "Dispatched"),
    IN_PROGRESS: ("开始处理", "In progress"),
    RETURNED: ("退回中心", "Returned to centre"),
    REPLIED: ("处理完毕待审核", "Replied, awaiting review"),
    APPROVED: ("审核完毕", "Approved"),
    CALLED_BACK: ("已回访", "Called back"),
    UNSATISFIED: ("回访不满意", "Unsatisfied"),
    CLOSED: ("已办结", "Closed"),
    ARCHIVED: ("已归档", "Archived"),
    MERGED: ("已合并", "Merged"),
}
STATUSES = tuple(STATUS_LABELS)
OPEN_STATUSES = frozenset({RECORDED, DEFERRED, DISPATCHED, IN_PROGRESS, RETURNED, REPLIED, APPROVED,
                           ANSWERED, CALLED_BACK, UNSATISFIED})
# Where the deadline clock runs against a department.
HANDLING_STATUSES = frozenset({DISPATCHED, IN_PROGRESS})
FINAL_STATUSES = frozenset({CLOSED, ARCHIVED, MERGED, NOT_ACCEPTED})

# What a citizen is told about a ticket, the ONE table for every channel: the status query by phone
# (prompts status_<key>, see ivr.prompts), the web, SMS and e-mail (``citizen_words``). P2 §3.1.3 names
# 已受理 / 正在受理 / 不受理 / 已办结; an approved ticket not yet called back may still be reopened, so it
# is 已答复 (answered), not 已办结 (closed), until the call-back or the closing.
CITIZEN_WORDS: dict[str, tuple[str, str]] = {
    "accepted": ("已受理", "accepted"),
    "in_progress": ("正在办理", "being handled"),
    "answered": ("已答复", "answered"),
    "closed": ("已办结", "completed"),
    "rejected": ("不予受理", "not accepted"),
}
CITIZEN_STATUS: dict[str, str] = {
    RECORDED: "accepted", DEFERRED: "accepted",
    DISPATCHED: "in_progress", IN_PROGRESS: "in_progress", RETURNED: "in_progress", REPLIED: "in_progress",
    UNSATISFIED: "in_progress", MERGED: "in_progress",   # a merged duplicate reports its master when it can
    APPROVED: "answered", ANSWERED: "answered",
    CALLED_BACK: "closed", CLOSED: "closed", ARCHIVED: "closed",
    NOT_ACCEPTED: "rejected",
}


def citizen_status(status: str) -> str:
    """The citizen word key (a key of CITIZEN_WORDS) of a workflow status; ValueError for an unknown one."""
    try:
        return CITIZEN_STATUS[status]
    except KeyError:
        raise ValueError(f"unknown ticket status {status!r}") from None


def citizen_words(status: str, lang: str = "zh") -> str:
    """What a citizen reads for a workflow status (web, SMS, e-mail): 已受理, 已答复 ... or the English."""
    zh, en = CITIZEN_WORDS[citizen_status(status)]
    return zh if lang == "zh" else en


SATISFACTION = {"satisfied": ("满意", "Satisfied"), "basic": ("基本满意", "Basically satisfied"),
                "unsatisfied": ("不满意", "Unsatisfied")}


class WorkflowError(Exception):
    """A transition was refused; ``str(error)`` says why (Chinese first, then English)."""

    def __init__(self, message: str, code: str = "refused"):
        super().__init__(message)
        self.code = code


class PermissionDenied(WorkflowError):
    """The actor may not do this to this ticket (role or department subtree)."""

    def __init__(self, message: str):
        super().__init__(message, "forbidden")


class ConcurrentChange(WorkflowError):
    """Someone else changed the ticket first; reload and try again."""

    def __init__(self, message: str = "工单已被他人修改，请刷新后重试 / the ticket was changed by someone else: "
                                      "reload it and try again"):
        super().__init__(message, "conflict")


@dataclass
class Context:
    """What a guard looks at: the ticket (any object with the Ticket attributes), actor and parameters."""

    ticket: Any
    actor: Any = None
    params: dict = field(default_factory=dict)

    def param(self, name: str, default=None):
        return self.params.get(name, default)


Guard = Callable[[Context], Optional[str]]

SAME = None  # target meaning "status unchanged": a recorded action such as 催办


@dataclass(frozen=True)
class Rule:
    """Target status, the permission the actor needs, whether it is a department (subtree) action,
    the guard that may still refuse, and whether it is a passive action (催办/督办) that does not
    count as a change to the handler's copy (no version bump)."""

    target: Optional[str]
    permission: str
    guard: Optional[Guard] = None
    dept_scope: bool = False
    passive: bool = False


# ---- guards (return a reason to refuse, or None) --------------------------------------------------
def _text(name: str, zh: str, en: str, limit: int = 20000) -> Guard:
    def guard(ctx: Context) -> Optional[str]:
        value = (ctx.param(name) or "").strip()
        if not value:
            return f"{zh}不能为空 / {en} is required"
        if len(value) > limit:
            return f"{zh}超过{limit}字 / {en} longer than {limit} characters"
        return None
    return guard


def _all(*guards: Guard) -> Guard:
    def guard(ctx: Context) -> Optional[str]:
        for g in guards:
            reason = g(ctx)
            if reason:
                return reason
        return None
    return guard


def _target_department(ctx: Context) -> Optional[str]:
    dept = ctx.param("department")
    if dept is None:
        return "请选择承办单位 / choose a department to dispatch to"
    if not getattr(dept, "active", True):
        return f"单位“{dept.name}”已停用 / department {dept.name} is inactive"
    if dept.level < 2:
        return "不能派给热线中心本身 / cannot dispatch to the centre itself"
    return None


def _sub_target(ctx: Context) -> Optional[str]:
    dept = ctx.param("department")
    current = ctx.ticket.department
    if dept is None:
        return "请选择下级单位 / choose a sub-unit"
    if current is None or dept.id == current.id or not dept.path.startswith(current.path):
        return "只能下派给本单位的下级单位 / can only sub-dispatch to a unit below this one"
    if not getattr(dept, "active", True):
        return f"单位“{dept.name}”已停用 / department {dept.name} is inactive"
    if ctx.ticket.upper_department_id is not None:
        return "工单已下派过一次，不能再下派 / already sub-dispatched once: only one level down is allowed"
    return None


def _unassigned_here(ctx: Context) -> Optional[str]:
    # A ticket passed down arrives in progress with nobody on it: a person of the holding unit takes it.
    if ctx.ticket.handler_id is not None:
        return "工单已有承办人，请改用“指定承办人” / the ticket already has a handler: use assign instead"
    dept, actor = ctx.ticket.department, ctx.actor
    if actor is not None and (actor.department_id is None or dept is None
                              or not actor.department.path.startswith(dept.path)):
        return (f"只有承办单位“{dept.name if dept else ''}”的人员可以签收 / "
                "only staff of the holding unit may accept it")
    return None


def _has_upper(ctx: Context) -> Optional[str]:
    if ctx.ticket.upper_department_id is None:
        return "工单不是由上级单位下派的 / the ticket was not sub-dispatched from an upper unit"
    return None


def _no_upper(ctx: Context) -> Optional[str]:
    if ctx.ticket.upper_department_id is not None:
        return "下派的工单请先答复或退回上级单位 / a sub-dispatched ticket goes back to the upper unit first"
    return None


def _handler(ctx: Context) -> Optional[str]:
    user = ctx.param("handler")
    if user is None:
        return "请选择承办人 / choose a handler"
    dept = ctx.ticket.department
    if user.department_id is None or dept is None or not user.department.path.startswith(dept.path):
        return "承办人必须属于承办单位 / the handler must belong to the handling department"
    if not user.active:
        return "该用户已停用 / that user is inactive"
    return None


def _master(ctx: Context) -> Optional[str]:
    master = ctx.param("master")
    if master is None:
        return "请指定主工单 / choose the master ticket"
    if master.id == ctx.ticket.id:
        return "不能并入自身 / a ticket cannot be merged into itself"
    if master.status in (MERGED, ARCHIVED, NOT_ACCEPTED):
        return f"主工单状态为“{STATUS_LABELS[master.status][0]}”，不能作为主工单 / master is {master.status}"
    return None


def _extension_request(ctx: Context) -> Optional[str]:
    until = ctx.param("until")
    if ctx.ticket.extension_until is not None:
        return "已有待审批的延期申请 / an extension request is already pending"
    if until is None:
        return "请填写延期至的日期 / give the new deadline"
    if ctx.ticket.deadline is not None and until <= ctx.ticket.deadline:
        return "延期日期必须晚于现有期限 / the new deadline must be later than the current one"
    return _text("reason", "延期理由", "reason")(ctx)


def _pending_extension(ctx: Context) -> Optional[str]:
    if ctx.ticket.extension_until is None:
        return "没有待审批的延期申请 / there is no pending extension request"
    return None


def _satisfied(ctx: Context) -> Optional[str]:
    if ctx.param("satisfaction") not in ("satisfied", "basic"):
        return "满意度须为满意或基本满意 / satisfaction must be satisfied or basic"
    return None


def _unsatisfied(ctx: Context) -> Optional[str]:
    if ctx.param("satisfaction") != "unsatisfied":
        return "满意度须为不满意 / satisfaction must be unsatisfied"
    return None


def _reopen(ctx: Context) -> Optional[str]:
    if ctx.ticket.department_id is None and ctx.param("department") is None:
        return "该工单没有承办单位，请指定 / no department: choose one to handle it again"
    return _text("reason", "重办理由", "reason")(ctx)


def _close_after_answer(ctx: Context) -> Optional[str]:
    # Closing without a call-back needs a stated reason unless the citizen asked for none.
    t = ctx.ticket
    if t.anonymous or t.reply_by == "none" or not t.citizen_phone:
        return None
    return _text("reason", "未回访原因", "reason for closing without a call-back")(ctx)


_reason = _text("reason", "理由", "reason")
_reply = _text("reply", "答复内容", "reply")


# ---- the table ------------------------------------------------------------------------------------
def _rules() -> dict[tuple[str, str], Rule]:
    t: dict[tuple[str, str], Rule] = {}

    def add(states, event, target, permission, guard=None, dept=False, passive=False):
        for state in (states if isinstance(states, (tuple, list, set, frozenset)) else (states,)):
            t[(state, event)] = Rule(target, permission, guard, dept, passive)

    # intake at the centre
    add((RECORDED, DEFERRED, RETURNED), "dispatch", DISPATCHED, "ticket.dispatch", _target_department)
    add(RECORDED, "answer", ANSWERED, "ticket.answer", _reply)
    add(RECORDED, "defer", DEFERRED, "ticket.answer")
    add(DEFERRED, "answer_later", ANSWERED, "ticket.answer", _reply)
    add((RECORDED, DEFERRED, RETURNED), "not_accept", NOT_ACCEPTED, "ticket.not_accept", _reason)
    add((RECORDED, DEFERRED, DISPATCHED, RETURNED), "merge", MERGED, "ticket.merge", _master)
    # departments (P5 §3.2: arranging a handler or passing the case down to a sub-unit is 开始处理)
    add(DISPATCHED, "accept", IN_PROGRESS, "ticket.handle", dept=True)
    add(IN_PROGRESS, "accept", IN_PROGRESS, "ticket.handle", _unassigned_here, dept=True)
    add((DISPATCHED, IN_PROGRESS), "return", RETURNED, "ticket.return", _all(_no_upper, _reason), dept=True)
    add((DISPATCHED, IN_PROGRESS), "sub_dispatch", IN_PROGRESS, "ticket.sub_dispatch", _sub_target, dept=True)
    add((DISPATCHED, IN_PROGRESS), "return_up", DISPATCHED, "ticket.return", _all(_has_upper, _reason),
        dept=True)
    add(IN_PROGRESS, "reply_up", IN_PROGRESS, "ticket.reply", _all(_has_upper, _reply), dept=True)
    add((DISPATCHED, IN_PROGRESS), "assign", IN_PROGRESS, "ticket.assign", _handler, dept=True)
    add(IN_PROGRESS, "reply", REPLIED, "ticket.reply", _all(_no_upper, _reply), dept=True)
    add((DISPATCHED, IN_PROGRESS), "request_extension", SAME, "ticket.extension_request",
        _extension_request, dept=True)
    # review and extensions at the centre
    add(REPLIED, "approve", APPROVED, "ticket.review")
    add(REPLIED, "reject", DISPATCHED, "ticket.review", _reason)
    add((DISPATCHED, IN_PROGRESS), "approve_extension", SAME, "ticket.extension_decide", _pending_extension)
    add((DISPATCHED, IN_PROGRESS), "refuse_extension", SAME, "ticket.extension_decide",
        _all(_pending_extension, _reason))
    # chasing: recorded actions
    add((RECORDED, DEFERRED, DISPATCHED, IN_PROGRESS, RETURNED, REPLIED, APPROVED, ANSWERED, UNSATISFIED),
        "remind", SAME, "ticket.remind", passive=True)
    add((RECORDED, DEFERRED, DISPATCHED, IN_PROGRESS, RETURNED, REPLIED, APPROVED, ANSWERED, UNSATISFIED),
        "set_reminder", SAME, "ticket.create", passive=True)
    add((DISPATCHED, IN_PROGRESS, RETURNED, REPLIED, UNSATISFIED), "supervise", SAME, "ticket.supervise",
        passive=True)
    # call-back and the end of the loop
    add((APPROVED, ANSWERED), "call_back", CALLED_BACK, "ticket.callback", _satisfied)
    add((APPROVED, ANSWERED), "call_back_unsatisfied", UNSATISFIED, "ticket.callback", _unsatisfied)
    add(UNSATISFIED, "reopen", DISPATCHED, "ticket.reopen", _reopen)
    add(UNSATISFIED, "keep_closed", CLOSED, "ticket.reopen", _reason)
    add(CALLED_BACK, "close", CLOSED, "ticket.close")
    add((APPROVED, ANSWERED), "close", CLOSED, "ticket.close", _close_after_answer)
    add((CLOSED, NOT_ACCEPTED, MERGED), "archive", ARCHIVED, "ticket.close")
    add((CLOSED, ARCHIVED), "disclose", SAME, "ticket.disclose", passive=True)
    return t


TRANSITIONS: dict[tuple[str, str], Rule] = _rules()
EVENTS = tuple(sorted({event for _, event in TRANSITIONS}))

EVENT_LABELS: dict[str, tuple[str, str]] = {
    "create": ("登记", "Recorded"), "dispatch": ("派单", "Dispatch"), "answer": ("当场答复", "Answer"),
    "defer": ("暂不能答复", "Answer later"), "answer_later": ("补充答复", "Answer later"),
    "not_accept": ("不予受理", "Not accept"), "merge": ("合并", "Merge"), "accept": ("签收", "Accept"),
    "return": ("退回中心", "Return to centre"), "sub_dispatch": ("下派", "Sub-dispatch"),
    "return_up": ("退回上级", "Return upwards"), "reply_up": ("答复上级", "Reply upwards"),
    "assign": ("指定承办人", "Assign"), "reply": ("答复", "Reply"), "approve": ("审核通过", "Approve"),
    "reject": ("审核退回", "Reject"), "request_extension": ("申请延期", "Request extension"),
    "approve_extension": ("批准延期", "Approve extension"), "refuse_extension": ("驳回延期", "Refuse extension"),
    "remind": ("催办", "Remind"), "set_reminder": ("设置提醒", "Set reminder"), "supervise": ("督办", "Supervise"),
    "call_back": ("回访", "Call back"), "call_back_unsatisfied": ("回访(不满意)", "Call back (unsatisfied)"),
    "reopen": ("重办", "Reopen"), "keep_closed": ("不予重办", "Keep closed"), "close": ("办结", "Close"),
    "archive": ("归档", "Archive"), "disclose": ("公开设置", "Disclosure"), "warn": ("临期提醒", "Due soon"),
    "overdue": ("超期", "Overdue"), "attach": ("上传附件", "Attachment"), "edit": ("修改", "Edit"),
    "link_call": ("关联通话", "Linked call"), "note": ("备注", "Note"), "duplicate_added": ("并入重复件", "Duplicate merged in"),
    "fax": ("发送传真", "Fax sent"), "blacklist": ("加入黑名单", "Blacklisted"),
    "supplement": ("补充材料", "Citizen added information"),
}


def label(mapping: dict, code: str, lang: str = "zh") -> str:
    """zh or en label from a (zh, en) mapping, falling back to the code."""
    pair = mapping.get(code)
    return code if pair is None else (pair[0] if lang == "zh" else pair[1])


def allowed_events(state: str) -> list[str]:
    """Events the table allows from ``state`` (before permission and guard checks)."""
    return sorted(event for (s, event) in TRANSITIONS if s == state)


def rule_for(state: str, event: str) -> Rule:
    """The rule for (state, event), or WorkflowError if the table has none."""
    rule = TRANSITIONS.get((state, event))
    if rule is None:
        if event not in EVENTS:
            raise WorkflowError(f"未知操作 / unknown action {event!r}", "unknown_event")
        raise WorkflowError(
            f"工单状态为“{label(STATUS_LABELS, state)}”，不能执行“{label(EVENT_LABELS, event)}” / "
            f"cannot {event} a ticket that is {state}", "bad_state")
    return rule


def check(state: str, event: str, ctx: Context) -> Optional[str]:
    """Run the table and guard for (state, event); return the target status (None: unchanged) or raise."""
    rule = rule_for(state, event)
    if rule.guard is not None:
        reason = rule.guard(ctx)
        if reason:
            raise WorkflowError(reason, "guard")
    return rule.target


def apply(ticket, event: str, actor, note: str = "", **params):
    """Contract entry point: perform ``event`` on ``ticket`` as ``actor`` (see caseflow.services.transition)."""
    from caseflow import services

    return services.transition(ticket, event, actor, note=note, **params)
