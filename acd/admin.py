"""Queue and agent administration: the writes behind the ACD administration pages (webui admin_acd).

Each function checks what acd.policy says about the person, writes inside one ``db.atomic()`` and records
the change through the ``audit`` callable the caller passes (the web layer's audit log, which knows the
request); it does not reload the running ACD (the caller does, after the commit). Forms are cleaned by the
caller before: the values here are already checked. Below them, the set-up of queues and agents (demo data,
tests, the team lead's shift settings: update_queue checks its form itself and reloads the ACD).
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Callable, Iterable, Mapping

from acd.errors import AcdError
from acd.models import OVERFLOW_KINDS, Agent, AgentSkill, ChatQueue, Queue
from acd.policy import (QUEUE_FIELDS, QUEUE_NUMBERS, SHIFT_QUEUE_FIELDS, QueueChangeRefused,
                        check_chat_queue_change, check_queue_change, queue_number_error,
                        may_assign_extensions, may_create_or_delete_queues)
from acd.strategies import check_strategy
from caseflow.models import User
from core.db import database

log = logging.getLogger(__name__)

# (action, obj_type, obj_id, detail) -> None: webui.security.audit's positional signature.
Audit = Callable[[str, str, object, str], None]
Skills = Mapping[str, tuple[int, int]]  # {skill: (level, tier)}


def describe(values: Mapping) -> str:
    """``k=v; k=v`` for the audit log (at most 1,000 characters)."""
    return "; ".join(f"{k}={v}" for k, v in values.items())[:1000]


def skill_text(skills: Skills) -> str:
    """``skill:level/tier,...`` for the audit log."""
    return ",".join(f"{s}:{lv}" + (f"/{t}" if t else "") for s, (lv, t) in sorted(skills.items()))


# ------------------------------------------------------------------------------- queues and chat queues
def add_queue(actor, values: Mapping, audit: Audit) -> Queue:
    """Create a queue from checked ``values``; only administrators (QueueChangeRefused otherwise)."""
    return _add(Queue, actor, values, audit, "acd_queue_create", "queue",
                "只有管理员可以新建队列 / only administrators create queues")


def change_queue(actor, queue: Queue, values: Mapping, audit: Audit) -> dict:
    """Write the fields of checked ``values`` that differ from ``queue``; returns them (empty: no change).

    acd.policy decides: a field ``actor`` may not change raises QueueChangeRefused, audited, nothing written.
    """
    return _change(queue, actor, values, audit, check_queue_change, "acd_queue_update", "queue")


def add_chat_queue(actor, values: Mapping, audit: Audit) -> ChatQueue:
    """Create a chat queue (a topic of /chat) from checked ``values``; only administrators."""
    return _add(ChatQueue, actor, values, audit, "chat_queue_create", "chat_queue",
                "只有管理员可以新建交谈队列 / only administrators create chat queues")


def change_chat_queue(actor, queue: ChatQueue, values: Mapping, audit: Audit) -> dict:
    """Write the fields of checked ``values`` that differ from ``queue``; returns them (empty: no change).
    A field ``actor`` may not change (acd.policy) raises QueueChangeRefused, audited, nothing written."""
    return _change(queue, actor, values, audit, check_chat_queue_change, "chat_queue_update", "chat_queue")


def _add(model, actor, values: Mapping, audit: Audit, action: str, kind: str, refusal: str):
    """A queue or chat queue created and audited as ``action``, by an administrator only."""
    if not may_create_or_delete_queues(actor):
        raise QueueChangeRefused(refusal)
    with database.atomic():
        queue = model.create(**values)
        audit(action, kind, queue.name, describe(values))
    return queue


def _change(queue, actor, values: Mapping, audit: Audit, check: Callable[[object, dict], None], action: str,
            kind: str) -> dict:
    """The fields of ``values`` that differ from ``queue`` (a queue or chat queue), written when ``check``
    (acd.policy) lets ``actor`` change them and audited as ``action``; a refusal as ``action``_refused."""
    changed = {k: v for k, v in values.items() if getattr(queue, k) != v}
    try:
        check(actor, changed)
    except QueueChangeRefused as exc:
        audit(f"{action}_refused", kind, queue.name, f"{exc}: {describe(changed)}"[:1000])
        raise
    if changed:
        model = type(queue)
        with database.atomic():
            model.update(**changed).where(model.id == queue.id).execute()
            audit(action, kind, queue.name, describe(changed))
    return changed


# ------------------------------------------------------------------------------------------ agents
def save_skills(agent: Agent, skills: Skills) -> None:
    """Replace the agent's skills with ``skills`` ({skill: (level, tier)}); call inside a transaction."""
    AgentSkill.delete().where((AgentSkill.agent == agent.id)
                              & AgentSkill.skill.not_in(list(skills) or [""])).execute()
    for skill, (level, tier) in skills.items():
        updated = (AgentSkill.update(level=level, position=tier)
                   .where((AgentSkill.agent == agent.id) & (AgentSkill.skill == skill)).execute())
        if not updated:
            AgentSkill.create(agent=agent.id, skill=skill, level=level, position=tier)


def _sync_user_extension(user: User, extension: str) -> None:
    # The user's own extension is what "call the team lead" and the lead's listening actions ring.
    if user.extension != extension:
        User.update(extension=extension).where(User.id == user.id).execute()


def add_agent(user: User, values: Mapping, skills: Skills, audit: Audit) -> Agent:
    """Make ``user`` an agent with checked ``values`` (extension, server, position) and ``skills``."""
    with database.atomic():
        _sync_user_extension(user, values["extension"])
        agent = Agent.create(user=user, **values)
        save_skills(agent, skills)
    audit("acd_agent_create", "agent", user.operator_no,
          f"extension={values['extension']} server={values['server'] or '-'} skills={skill_text(skills)}")
    return agent


def change_agent(agent: Agent, values: Mapping | None, skills: Skills, audit: Audit) -> None:
    """Write an agent's checked row ``values`` (None: a team lead's edit, skills only) and ``skills``."""
    before = {s.skill: (s.level, s.position) for s in agent.skills}
    with database.atomic():
        if values is not None:
            row_changes = {k: v for k, v in values.items() if k != "user" and getattr(agent, k) != v}
            if "extension" in row_changes:
                # The registration seen belonged to the old extension; reconciliation finds the new one.
                row_changes |= {"registered": False, "contact": ""}
                _sync_user_extension(agent.user, values["extension"])
            if row_changes:
                Agent.update(**row_changes).where(Agent.id == agent.id).execute()
                audit("acd_agent_update", "agent", agent.user.operator_no, describe(row_changes))
        if skills != before:
            save_skills(agent, skills)
            audit("acd_agent_skills", "agent", agent.user.operator_no,
                  f"{skill_text(before) or '-'} -> {skill_text(skills) or '-'}")


def remove_agent(agent: Agent, audit: Audit) -> None:
    """Stop a user being an agent (the caller checked they are logged out and idle); history stays."""
    operator_no = agent.user.operator_no
    with database.atomic():
        agent.delete_instance(recursive=True)
    audit("acd_agent_delete", "agent", operator_no, f"extension={agent.extension}")


# ------------------------------------------------------------------------------------------ guests
def add_guest(acd, actor: User, user: User, extension: str, day: dt.date, skills: Skills, audit: Audit) -> Agent:
    """领导上线接听: ``user`` takes calls on ``day`` at ``extension`` with ``skills`` (a running ACD needed).

    Raises acd.dispatcher.AcdError (nothing written) when the supervisor refuses.
    """
    from acd.supervisor import Supervisor

    if extension != (user.extension or "") and not may_assign_extensions(actor):
        # A team lead puts a leader on the phones at the leader's own extension; giving one is an admin's.
        raise AcdError(f"只有管理员可以为用户 {user.operator_no} 分配分机 / only an administrator may give user "
                       f"{user.operator_no} an extension")
    with database.atomic():
        _sync_user_extension(user, extension)
        user = User.get_by_id(user.id)
        existing = Agent.get_or_none(Agent.user == user)
        if existing is not None:
            # A guest coming back: this day's extension and skills replace the last ones.
            if existing.extension != extension:
                Agent.update(extension=extension, registered=False, contact="").where(
                    Agent.id == existing.id).execute()
            save_skills(existing, skills)
        agent = Supervisor(acd).add_guest_agent(actor, user, {s: lv for s, (lv, _t) in skills.items()}, day)
        save_skills(agent, skills)  # the tiers too
    audit("acd_guest_add", "agent", user.operator_no, f"day={day} extension={extension} skills={skill_text(skills)}")
    return agent


def end_guest(acd, agent: Agent, today: dt.date, audit: Audit) -> None:
    """End a guest's day now: logged out and skills removed (by the running ACD after their call, if any)."""
    with database.atomic():
        Agent.update(guest_until=today - dt.timedelta(days=1)).where(Agent.id == agent.id).execute()
        if acd is None:
            AgentSkill.delete().where(AgentSkill.agent == agent.id).execute()
    if acd is not None:
        from acd.supervisor import Supervisor

        acd.load()
        Supervisor(acd).expire_guests()
    audit("acd_guest_end", "agent", agent.user.operator_no, f"was until {agent.guest_until}")


# ------------------------------------------------------------------------------------------ ACD set-up
def create_queue(name: str, skill: str, strategy: str = "least_talk_time", **fields) -> Queue:
    """Create a queue after checking its strategy and overflow (administration, demo data, tests)."""
    check_strategy(strategy)
    kind = fields.get("overflow_kind", "callback")
    if kind not in OVERFLOW_KINDS:
        raise AcdError(f"unknown overflow kind {kind!r}; known: {', '.join(OVERFLOW_KINDS)}")
    return Queue.create(name=name, skill=skill, strategy=strategy, **fields)


def create_agent(user: User, skills: Iterable[tuple[str, int]] | dict[str, int] = (), extension: str | None = None,
                 position: int = 0) -> Agent:
    """Make a user an agent with skills {skill: level}; the extension defaults to the user's."""
    extension = extension or user.extension
    if not extension:
        raise AcdError(f"user {user.operator_no} has no SIP extension")
    agent = Agent.create(user=user, extension=extension, position=position)
    items = skills.items() if isinstance(skills, dict) else skills
    for skill, level in items:
        if not 0 < int(level) <= 10:
            raise AcdError(f"skill level must be 1-10, got {level!r}")
        AgentSkill.create(agent=agent, skill=skill, level=int(level))
    return agent


def update_queue(acd, name: str, form: dict, actor) -> Queue:
    """Change a queue's shift settings (acd.policy.SHIFT_QUEUE_FIELDS) from a form, as ``actor``, and reload
    the running ``acd`` (acd.dispatcher.Acd).

    acd.policy decides who may change which field (QueueChangeRefused); the other fields of a queue are
    changed on the queue administration page. Every value is checked; nothing is saved on error.
    """
    queue = Queue.get_or_none(Queue.name == name)
    if queue is None:
        raise AcdError(f"没有队列 / no queue {name!r}")
    check_queue_change(actor, set(form) & QUEUE_FIELDS)
    other = sorted(set(form) - SHIFT_QUEUE_FIELDS)
    if other:
        raise AcdError(f"{', '.join(other)[:200]}：请在队列管理页修改 / change these on the queue page")
    changes: dict[str, object] = {}
    if "strategy" in form:
        try:
            changes["strategy"] = check_strategy(str(form["strategy"]))
        except ValueError as exc:
            raise AcdError(str(exc)) from None
    for field_name in QUEUE_NUMBERS:
        if field_name in form:
            try:
                value = int(str(form[field_name]).strip())
            except ValueError:
                raise AcdError(f"{field_name} must be a whole number of seconds") from None
            error = queue_number_error(field_name, value)
            if error:
                raise AcdError(error)
            changes[field_name] = value
    if "no_answer_break" in form:
        changes["no_answer_break"] = str(form["no_answer_break"]).lower() in ("1", "true", "on", "yes")
    if changes:
        Queue.update(**changes).where(Queue.id == queue.id).execute()
    acd.load()
    return acd.queues.get(name, queue)
