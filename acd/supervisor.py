"""Team-lead actions (班长): monitor, whisper, barge, intercept, force release, call an agent, answer a help
request, set an agent on break or log them out, and guest agents for a day (领导上线接听).

Each action checks the actor is a team lead (or administrator) and that the agent is in the lead's scope (the
groups they lead, caseflow.org.lead_scope: the administrator has every agent), is carried out over ESL on the
agent's FreeSWITCH, and is recorded in SupervisorAction with who did it — refused attempts too (ok=False).
The team lead's own phone rings first for the listening actions (the lead's agent extension, else the
extension on their user record).
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid as uuidlib
from typing import Callable

import gevent

from acd.agent_controls import AgentControls, ControlRefused, _refuse
from acd.dispatcher import Acd, AcdError
from acd.models import Agent, AgentSkill, SupervisorAction
from caseflow import org
from caseflow.models import User
from switch import commands
from switch.commands import CommandError
from switch.errors import SwitchError
from switch.inbound import Channel

log = logging.getLogger(__name__)

LEAD_ROLES = ("team_lead", "admin")

# eavesdrop variants: what the team lead's leg may do (FreeSWITCH eavesdrop channel variables).
LISTEN_MODES = {
    "monitor": {},
    "whisper": {"eavesdrop_whisper_aleg": "true"},
    "barge": {"eavesdrop_bridge_aleg": "true", "eavesdrop_bridge_bleg": "true"},
}


class NotTeamLead(ControlRefused):
    """The actor may not perform team-lead actions."""


class OutOfScope(ControlRefused):
    """The agent is not in a group the team lead leads."""


class Supervisor:
    """Team-lead console actions over one Acd."""

    def __init__(self, acd: Acd, controls: AgentControls | None = None):
        self.acd = acd
        self.controls = controls or AgentControls(acd)

    # ------------------------------------------------------------------ helpers
    def _record(self, actor: User, action: str, agent: Agent | None, call_uuid: str = "", detail: str = "",
                ok: bool = True) -> None:
        SupervisorAction.create(actor=actor.id, actor_label=actor.operator_no, action=action,
                                target_agent=agent.id if agent else None, call_uuid=call_uuid,
                                detail=detail[:255], ok=ok)

    def _check(self, actor: User, action: str, agent_id: int | None = None) -> Agent | None:
        agent = self.acd.agents.get(agent_id) if agent_id is not None else None
        if not actor.has_role(*LEAD_ROLES) or not actor.active:
            self._record(actor, action, agent, detail="refused: not a team lead", ok=False)
            raise NotTeamLead(f"只有班长可以执行该操作 / only a team lead may {action}")
        if agent_id is not None and agent is None:
            raise AcdError(f"unknown agent {agent_id}")
        if agent is not None:
            scope = self.visible_agents(actor)
            if scope is not None and agent.id not in scope:
                self._record(actor, action, agent, detail="refused: not in a group the lead leads", ok=False)
                raise OutOfScope(f"该话务员不在您带领的班组 / agent {agent.extension} is not in a group you lead")
        return agent

    def visible_agents(self, actor: User) -> frozenset[int] | None:
        """The ids of the agents ``actor`` sees and acts on (the members of the groups they lead); None: all."""
        users = org.lead_scope(actor)
        if users is None:
            return None
        return frozenset(agent.id for agent in self.acd.agents.values() if agent.user_id in users)

    def _in_call(self, agent: Agent) -> Agent:
        if agent.state != "in_call" or not agent.leg_uuid:
            raise _refuse("该话务员当前没有通话", "that agent is not in a call")
        return agent

    def lead_extension(self, actor: User) -> tuple[str, str]:
        """(extension, server) of the team lead's phone."""
        for agent in self.acd.agents.values():
            if agent.user_id == actor.id:
                if not agent.registered:
                    raise _refuse("您的话机未注册", "your phone is not registered")
                return agent.extension, agent.server
        if actor.extension:
            return actor.extension, ""
        raise _refuse("您没有分机", "you have no extension")

    def _originate(self, actor: User, agent: Agent, app: str, argument: Callable[[], str],
                   variables: dict | None = None) -> str:
        """Ring the lead's phone; once answered it runs ``&app(argument())``. Returns the lead's leg uuid;
        a bad extension or uuid is refused (ControlRefused) before anything is sent."""
        extension, server = self.lead_extension(actor)
        leg = str(uuidlib.uuid4())
        try:
            command = commands.originate(
                commands.user(extension), commands.app(app, argument()),
                {"origination_uuid": leg, "origination_caller_id_number": commands.scrub(actor.operator_no),
                 "originate_timeout": 30, **(variables or {})})
        except CommandError as exc:
            raise _refuse("无法呼叫您的话机", f"cannot call your phone: {exc}") from exc
        conn = self.acd.conn_for(agent.call_server or agent.server or server)
        gevent.spawn(self._background, conn, command)
        return leg

    @staticmethod
    def _background(conn, command: str) -> None:
        try:
            result = conn.bgapi(command, timeout=60.0)
            if not getattr(result, "ok", True):
                log.info("team-lead originate failed: %s", getattr(result, "body", ""))
        except SwitchError as exc:
            log.warning("team-lead originate failed: %s", exc)

    def _kill(self, agent: Agent, uuid: str) -> str:
        """Hang up ``uuid`` on the agent's switch; a failure or -ERR becomes a clear ControlRefused."""
        return self.controls.channel_command(agent, uuid, Channel.kill)

    # ------------------------------------------------------------------ listening
    def listen(self, actor: User, agent_id: int, mode: str = "monitor") -> str:
        """监听 / 密语 / 强插: the lead's phone rings, then eavesdrops on the agent's leg in ``mode``."""
        if mode not in LISTEN_MODES:
            raise AcdError(f"unknown listening mode {mode!r}; known: {', '.join(LISTEN_MODES)}")
        agent = self._in_call(self._check(actor, mode, agent_id))
        leg = self._originate(actor, agent, "eavesdrop", lambda: commands.uuid(agent.leg_uuid), LISTEN_MODES[mode])
        self._record(actor, mode, agent, agent.call_uuid, f"lead leg {leg}")
        return leg

    def monitor(self, actor: User, agent_id: int) -> str:
        return self.listen(actor, agent_id, "monitor")

    def whisper(self, actor: User, agent_id: int) -> str:
        return self.listen(actor, agent_id, "whisper")

    def barge(self, actor: User, agent_id: int) -> str:
        return self.listen(actor, agent_id, "barge")

    def intercept(self, actor: User, agent_id: int) -> str:
        """拦截 / take the caller over: the lead's phone is connected to the caller, the agent is released."""
        agent = self._in_call(self._check(actor, "intercept", agent_id))
        caller = agent.call_uuid if agent.call_direction == "inbound" else agent.leg_uuid
        self.acd.handed_off.add(agent.call_uuid)
        leg = self._originate(actor, agent, "intercept", lambda: commands.uuid(caller))
        self._record(actor, "intercept", agent, agent.call_uuid, f"lead leg {leg}")
        return leg

    def force_release(self, actor: User, agent_id: int) -> None:
        """强拆 / end the agent's call now."""
        agent = self._in_call(self._check(actor, "force_release", agent_id))
        # Read before the kill: the hang-up clears agent.call_uuid, and the action log must name the call.
        call_uuid = agent.call_uuid
        target = agent.call_uuid if agent.call_direction == "inbound" else agent.leg_uuid
        self._kill(agent, target)
        if target != agent.leg_uuid:
            try:
                self._kill(agent, agent.leg_uuid)
            except ControlRefused:
                pass  # the agent leg already went with the caller's
        self._record(actor, "force_release", agent, call_uuid)

    # ------------------------------------------------------------------ calls between lead and agent
    def call_agent(self, actor: User, agent_id: int) -> str:
        """呼叫话务员 / ring the agent from the lead's phone."""
        agent = self._check(actor, "call_agent", agent_id)
        if not agent.registered:
            raise _refuse("该话务员话机未注册", "that agent's phone is not registered")
        leg = self._originate(actor, agent, "bridge", lambda: commands.user(agent.extension))
        self._record(actor, "call_agent", agent, detail=f"lead leg {leg}")
        return leg

    def answer_help(self, actor: User, agent_id: int) -> str:
        """应答求助 / answer an agent's help request: barge into their call, or ring them if free."""
        agent = self._check(actor, "answer_help", agent_id)
        if agent.help_requested_at is None:
            raise _refuse("该话务员没有求助", "that agent has not asked for help")
        if agent.state == "in_call":
            leg = self._originate(actor, agent, "eavesdrop", lambda: commands.uuid(agent.leg_uuid), LISTEN_MODES["barge"])
        else:
            leg = self._originate(actor, agent, "bridge", lambda: commands.user(agent.extension))
        agent.help_requested_at = None
        agent.save(only=[Agent.help_requested_at])
        self._record(actor, "answer_help", agent, agent.call_uuid, f"lead leg {leg}")
        self.acd.notify("help_answered", agent_id=agent.id, by=actor.operator_no)
        return leg

    # ------------------------------------------------------------------ status
    def set_break(self, actor: User, agent_id: int, reason: str = "班长置忙 / set by team lead") -> Agent:
        """置忙 / put the agent on break (after the current call if in one)."""
        agent = self._check(actor, "set_break", agent_id)
        agent = self.acd.transition(agent.id, "not_ready", reason=reason)
        self._record(actor, "set_break", agent, detail=reason)
        return agent

    def force_logout(self, actor: User, agent_id: int) -> Agent:
        """强制签出 / log the agent out (after the current call if in one)."""
        agent = self._check(actor, "force_logout", agent_id)
        if agent.status == "logged_out":
            raise _refuse("该话务员已签出", "that agent is already logged out")
        agent = self.acd.transition(agent.id, "logout", reason=f"by {actor.operator_no}")
        self._record(actor, "force_logout", agent)
        return agent

    def add_guest_agent(self, actor: User, user: User, skills: dict[str, int], day: dt.date | None = None) -> Agent:
        """领导上线接听: make a leader an agent for one day with the given skills."""
        self._check(actor, "add_guest_agent")
        if not user.extension:
            raise _refuse("该用户没有分机", "that user has no extension")
        day = day or self.acd.clock.today()
        agent = Agent.get_or_none(Agent.user == user)
        if agent is None:
            agent = Agent.create(user=user, extension=user.extension, guest_until=day)
        else:
            agent.guest_until = day
            agent.save(only=[Agent.guest_until])
        for skill, level in skills.items():
            _upsert_skill(agent, skill, int(level))
        self._record(actor, "add_guest_agent", agent, detail=f"{user.operator_no} until {day}")
        self.acd.load()
        return agent

    def expire_guests(self) -> int:
        """Log out and remove the skills of guest agents whose day is over; returns how many."""
        today = self.acd.clock.today()
        expired = 0
        for agent in list(self.acd.agents.values()):
            if agent.guest_until is not None and agent.guest_until < today and agent.state == "idle":
                if agent.status != "logged_out":
                    self.acd.transition(agent.id, "logout", reason="guest day over")
                AgentSkill.delete().where(AgentSkill.agent == agent.id).execute()
                expired += 1
        if expired:
            self.acd.load()
        return expired

    def actions(self, limit: int = 50, viewer: User | None = None) -> list[SupervisorAction]:
        """The latest recorded actions (console log); for a ``viewer`` with a scope, those on the agents in it
        and their own."""
        query = SupervisorAction.select()
        scope = self.visible_agents(viewer) if viewer is not None else None
        if scope is not None:
            query = query.where(SupervisorAction.target_agent.in_(list(scope))
                                | (SupervisorAction.actor == viewer.id))
        return list(query.order_by(SupervisorAction.id.desc()).limit(limit))


def _upsert_skill(agent: Agent, skill: str, level: int) -> None:
    if not 0 < level <= 10:
        raise AcdError(f"skill level must be 1-10, got {level!r}")
    row = AgentSkill.get_or_none((AgentSkill.agent == agent) & (AgentSkill.skill == skill))
    if row is None:
        AgentSkill.create(agent=agent, skill=skill, level=level)
    else:
        row.level = level
        row.save(only=[AgentSkill.level])
