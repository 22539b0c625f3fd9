"""The agent desk's controls: which are enabled in the agent's status and state now, what the desk offers
(transfer targets, hand-back nodes of the IVR) and the checks of each control's fields (a not-ready
reason, a transfer target, a number, a node), never trusting the browser. The views in
webui/blueprints/agent_desk.py call them, then acd.agent_controls carries the control out.
"""
from __future__ import annotations

import logging
import re

from flask import current_app

from acd import state as agent_state
from caseflow.models import Department
from webui.i18n import gettext

log = logging.getLogger(__name__)

NOT_READY_REASONS = ("小休", "就餐", "培训", "会议", "回拨", "其他")  # 其他 needs a typed reason
TRANSFER_KINDS = ("agent", "queue", "department", "number")
DIGITS_RE = re.compile(r"^[0-9]{3,20}\Z")


class ControlInputError(ValueError):
    """A desk control request whose fields are wrong (checked here, never trusting the browser)."""


def input_error(zh: str, en: str) -> ControlInputError:
    return ControlInputError(f"{zh} / {en}")


def _trees():
    """The running product's IVR tree store, or one over the stored / shipped trees (tests, tools)."""
    from ivr.store import TreeStore

    services = current_app.extensions["hotline"].services
    return services.trees or TreeStore()


def enabled_controls(acd, agent, handback: bool | None = None) -> list[str]:
    """The desk controls valid in the agent's status and state now (the others are disabled on the page,
    and the ACD refuses them anyway): one place, sent with the page, each action's answer and each state
    change streamed to the desk."""
    status, state = agent.status, agent.state
    consult = consultation_view(acd, agent)
    on = set()
    if status != "available" and (agent_state.allowed(status, state, "ready")
                                  or (status == "logged_out" and state == "idle")):
        on.add("ready")
    if not (status == "on_break" and state == "idle") and agent_state.allowed(status, state, "not_ready"):
        on.add("not_ready")
    if status != "logged_out" and agent_state.allowed(status, state, "logout"):
        on.add("logout")
    if state == "wrap_up":
        on.add("end_wrap_up")
    if state == "in_call":
        on.add("hangup")
        if consult is None:
            on |= {"resume"} if agent.on_hold else {"hold"}
            on |= {"transfer", "attended_transfer", "three_way"}
            if handback if handback is not None else handback_choices():
                on.add("to_ivr")
        else:
            on.add("cancel_transfer")
            if consult["state"] == "answered":
                on.add("complete_transfer")
    if agent_state.allowed(status, state, "dial"):
        on |= {"dial", "call_team_lead"}
    if status != "logged_out" and agent.help_requested_at is None:
        on.add("help")
    return sorted(on)


def consultation_view(acd, agent) -> dict | None:
    """The agent's attended transfer in progress (state ringing / answered, target), or None."""
    consult = acd.consultations.for_agent(agent.id)
    return consult.notice() if consult is not None and consult.call_uuid == agent.call_uuid else None


def handback_options() -> list[dict]:
    """The hand-back nodes as (id, label): the node's title, else its kind named in the user's language."""
    from ivr.tree import TreeError

    try:
        _version, tree = _trees().active_tree()
    except (TreeError, OSError):
        return []
    return [{"id": nid, "label": tree.nodes[nid].get("title") or gettext(f"ivr_kind:{tree.nodes[nid].kind}")}
            for nid in handback_choices()]


def handback_choices() -> list[str]:
    """Node ids of the active IVR tree an agent may hand a caller to (人工转自动), satisfaction first."""
    from ivr.tree import TreeError, handback_nodes

    try:
        _version, tree = _trees().active_tree()
    except (TreeError, OSError):  # a broken tree must not take the desk down: no hand-back is offered
        log.exception("cannot load the active IVR tree for the desk")
        return []
    nodes = [nid for nid, _kind in handback_nodes(tree)]
    return sorted(nodes, key=lambda nid: nid != "satisfaction")


def transfer_choices(acd, agent) -> dict:
    """What the desk offers as transfer targets: other agents, queues, departments with a phone."""
    agents = [{"id": a.extension, "label": f"{acd.operator_no.get(a.id, '')} {a.user.name} ({a.extension})"}
              for a in acd.agents.values() if a.id != agent.id]
    departments = [{"id": str(d.id), "label": f"{d.name} {d.contact_phone}"}
                   for d in Department.select().where(Department.active & (Department.contact_phone != ""))
                   .order_by(Department.path, Department.id)]
    return {"agent": agents, "queue": [{"id": name, "label": name} for name in sorted(acd.queues)],
            "department": departments}


def check_reason(form) -> str:
    """The not-ready reason: one of the list, or 其他 with a typed text (kept as 其他:text)."""
    reason = (form.get("reason") or "").strip()
    if reason not in NOT_READY_REASONS:
        raise input_error("请从列表中选择示忙原因", f"choose a not-ready reason from the list, not {reason!r}")
    if reason == "其他":
        other = (form.get("reason_text") or "").strip()
        if not other:
            raise input_error("选择“其他”时请填写原因", "type the reason when choosing 其他 (other)")
        if len(other) > 40:
            raise input_error("原因不能超过 40 个字", "the reason must be at most 40 characters")
        reason = f"其他:{other}"
    return reason


def check_target(acd, agent, form) -> tuple[str, str]:
    """(kind, target) of a transfer / three-way, refusing an unknown kind or a target that does not exist."""
    kind = (form.get("kind") or "").strip()
    target = (form.get("target") or "").strip()
    if kind not in TRANSFER_KINDS:
        raise input_error("未知的转接类型", f"unknown transfer kind {kind!r}")
    if not target:
        raise input_error("请选择或填写转接目标", "a transfer target is required")
    if kind == "agent":
        agent_id = acd.by_extension.get(target)
        if agent_id is None:
            agent_id = next((a for a, no in acd.operator_no.items() if no == target), None)
        if agent_id is None:
            raise input_error(f"没有话务员 {target}", f"no agent {target!r}")
        if agent_id == agent.id:
            raise input_error("不能转接给自己", "you cannot transfer to yourself")
    elif kind == "queue":
        if target not in acd.queues:
            raise input_error(f"没有队列 {target}", f"no queue {target!r}")
    elif kind == "department":
        # Department ids only: at most 9 digits, so a long number never overflows the database's integer.
        department = (Department.get_or_none(Department.id == int(target))
                      if target.isdigit() and len(target) <= 9 else None)
        if department is None or not department.active:
            raise input_error(f"没有部门 {target}", f"no department {target!r}")
        if not (department.contact_phone or "").strip():
            raise input_error("该部门没有联系电话", "that department has no contact phone")
    elif not DIGITS_RE.match(target):
        raise input_error("号码只能是 3 到 20 位数字", f"a number must be 3-20 digits: {target!r}")
    return kind, target


def check_number(form) -> str:
    """An outbound number: digits only (an extension of 3+ digits or a phone number)."""
    number = (form.get("number") or "").strip()
    if not DIGITS_RE.match(number):
        raise input_error("号码只能是 3 到 20 位数字", f"a number must be 3-20 digits: {number!r}")
    return number


def check_node(form) -> str:
    """An IVR node of the active tree that agents may hand callers to."""
    node = (form.get("node") or "").strip()
    choices = handback_choices()
    if node not in choices:
        raise input_error(f"IVR 中没有可转入的节点 {node}",
                       f"{node!r} is not an IVR node agents may hand to (choose from {', '.join(choices)})")
    return node
