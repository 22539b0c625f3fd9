"""Who may change what of a queue: the one policy both the queue administration and the team-lead console ask.

Administrators create and delete queues and change every field. Team leads change only what a shift needs
to steer the calls it has (the distribution rule and the timings); what a queue *is* (its code, name,
skill, overflow, music, call-back key, answer target, whether it is on) stays an administrator's. Anyone
else changes nothing. Chat queues (acd.models.ChatQueue) follow the same split: a team lead changes the rule,
the maximum wait and the offer time (a chat's ring time). Pure: roles in, fields out.
"""
from __future__ import annotations

from typing import Iterable

# Every field of acd.models.Queue a person may set (the name only when the queue is created).
QUEUE_FIELDS = frozenset({
    "name", "display_name", "skill", "strategy", "ring_timeout", "max_wait", "overflow_kind", "overflow_target",
    "wrap_up_seconds", "announce_interval", "moh", "no_answer_break", "callback_key", "answer_target_seconds",
    "active"})
# The run-time settings a team lead adjusts during a shift.
SHIFT_QUEUE_FIELDS = frozenset({
    "strategy", "ring_timeout", "announce_interval", "wrap_up_seconds", "no_answer_break", "max_wait"})


# A queue's numbers in seconds: the one set of limits both the queue page and the console check.
QUEUE_NUMBERS = {
    "ring_timeout": (5, 120, "振铃超时", "ring timeout"),
    "max_wait": (0, 3600, "最长等待", "max wait"),
    "wrap_up_seconds": (0, 600, "话后整理", "wrap-up"),
    "announce_interval": (0, 600, "报位间隔", "announce interval"),
    "answer_target_seconds": (5, 120, "接通目标", "answer target"),
}
MIN_ANNOUNCE_INTERVAL = 10  # position announcements closer together would leave callers no music at all


def queue_number_error(field: str, value: int) -> str | None:
    """Why ``value`` cannot be ``field`` of a queue (zh-CN / English), or None when it can."""
    low, high, zh, en = QUEUE_NUMBERS[field]
    if not low <= value <= high:
        return f"{zh}须在{low}到{high}之间 / the {en} must be between {low} and {high}"
    if field == "announce_interval" and 0 < value < MIN_ANNOUNCE_INTERVAL:
        return (f"报位间隔须为0（不播报）或至少{MIN_ANNOUNCE_INTERVAL}秒 / the announce interval must be 0 (off) "
                f"or at least {MIN_ANNOUNCE_INTERVAL} s")
    return None


class QueueChangeRefused(Exception):
    """A queue change the person's role does not allow (a web page answers 403)."""


def _roles(user) -> frozenset[str]:
    return frozenset(getattr(user, "role_set", ()) or ()) if user is not None else frozenset()


def may_create_or_delete_queues(user) -> bool:
    """Only administrators add or remove queues."""
    return "admin" in _roles(user)


def may_assign_extensions(user) -> bool:
    """Only administrators give a user a SIP extension: an extension is an identity on the switch (calls to
    it ring that phone, a lead's listening actions follow it), not a shift setting."""
    return "admin" in _roles(user)


def queue_fields_for(user) -> frozenset[str]:
    """The queue fields ``user`` may change: all for an administrator, the shift settings for a team lead,
    none for anyone else."""
    roles = _roles(user)
    if "admin" in roles:
        return QUEUE_FIELDS
    if "team_lead" in roles:
        return SHIFT_QUEUE_FIELDS
    return frozenset()


# Each queue field as a person calls it (a refusal names the fields, never their keys).
QUEUE_FIELD_LABELS = {
    "name": ("编号", "name"), "display_name": ("名称", "display name"), "skill": ("技能", "skill"),
    "strategy": ("分配策略", "strategy"), "ring_timeout": ("振铃超时", "ring timeout"),
    "max_wait": ("最长等待", "max wait"), "overflow_kind": ("溢出方式", "overflow"),
    "overflow_target": ("溢出目标", "overflow target"), "wrap_up_seconds": ("话后整理", "wrap-up"),
    "announce_interval": ("报位间隔", "announce interval"), "moh": ("等待音乐", "music on hold"),
    "no_answer_break": ("未接后小休", "break after no answer"), "callback_key": ("回拨按键", "call-back key"),
    "answer_target_seconds": ("接通目标", "answer target"), "active": ("启用", "active"),
    "offer_timeout": ("接入时限", "offer time"),
}


def _field_names(fields: Iterable[str]) -> tuple[str, str]:
    labels = [QUEUE_FIELD_LABELS.get(field, (field, field)) for field in sorted(fields)]
    return "、".join(zh for zh, _ in labels), ", ".join(en for _, en in labels)


def check_queue_change(user, fields: Iterable[str]) -> None:
    """Raise QueueChangeRefused unless ``user`` may change every one of ``fields`` (the ones that change)."""
    refused = sorted(set(fields) - queue_fields_for(user))
    if refused:
        zh, en = _field_names(refused)
        raise QueueChangeRefused(f"您无权修改队列的{zh} / you may not change the queue's {en}")


# ------------------------------------------------------------------------------------------ chat queues
# Every field of acd.models.ChatQueue a person may set (the name only when the queue is created).
CHAT_QUEUE_FIELDS = frozenset({"name", "display_name", "skill", "strategy", "offer_timeout", "max_wait", "active"})
# What a team lead changes: the call queues' shift settings a chat queue has, and its offer time, which is
# what the ring time is for a call.
CHAT_SHIFT_FIELDS = (SHIFT_QUEUE_FIELDS & CHAT_QUEUE_FIELDS) | {"offer_timeout"}
CHAT_QUEUE_NUMBERS = {
    "offer_timeout": (10, 300, "接入时限", "offer time"),
    "max_wait": (0, 3600, "最长等待", "max wait"),
}


def chat_queue_fields_for(user) -> frozenset[str]:
    """The chat queue fields ``user`` may change: all for an administrator, the shift ones for a team lead."""
    roles = _roles(user)
    if "admin" in roles:
        return CHAT_QUEUE_FIELDS
    if "team_lead" in roles:
        return CHAT_SHIFT_FIELDS
    return frozenset()


def check_chat_queue_change(user, fields: Iterable[str]) -> None:
    """Raise QueueChangeRefused unless ``user`` may change every one of ``fields`` of a chat queue."""
    refused = sorted(set(fields) - chat_queue_fields_for(user))
    if refused:
        zh, en = _field_names(refused)
        raise QueueChangeRefused(f"您无权修改交谈队列的{zh} / you may not change the chat queue's {en}")
