"""Agent controls from the web desk, carried out over ESL: status, hold, transfers, three-way, outbound calls.

Every call control first checks that the agent holds that call (state in call, the call or their own leg
named), so a request for another agent's call, a call already ended, or the same request twice is refused
with a ``ControlRefused`` that says why (zh-CN / English). Each request is logged in SupervisorAction with
the agent as actor.

An attended transfer (咨询转) runs FreeSWITCH's ``att_xfer`` on the agent's leg with a consultation leg uuid we
choose, so the ACD follows that leg's answer and hang-up (acd.consultation). While it lasts the agent may
complete it (their leg hangs up; FreeSWITCH bridges the caller to the target) once the target answered, or
cancel it (the consultation leg is hung up; FreeSWITCH bridges the agent back to the caller); the other
call controls wait until it is over.

Handing a caller back to the application uses the IVR's convention (ivr.handback): mark the caller's
channel — ``hotline_ivr_node=<node>`` for an IVR node such as the satisfaction key-press (人工转自动), or
``hotline_queue=<queue>`` for a transfer into a queue — then ``uuid_transfer`` it to the hotline number,
which the dialplan sends into the app's socket again; the runner starts where the variable says.

Long because: one class, one method per desk control (status, hold, transfers, three-way, hand-back,
dial, help); the call controls share the check that the agent holds the call and every control logs its
SupervisorAction row, so they read best side by side.
"""
from __future__ import annotations

import logging
import re
import uuid as uuidlib
from typing import Callable

import gevent

from acd import state as sm
from acd.consultation import Consultation
from acd.legs import AgentCall
from recorder.dialout import DialOut, DialRefused
from acd.dispatcher import Acd, AcdError
from acd.models import Agent, SupervisorAction, utcnow
from caseflow.models import Department, User
from switch import commands
from switch.commands import CommandError
from switch.errors import SwitchError
from switch.inbound import Channel

log = logging.getLogger(__name__)

DIALPLAN_CONTEXT = "default"
# The conference profile freeswitch-conf/autoload_configs/conference.conf.xml ships (8 kHz, no caller DTMF
# controls, hold music for a member left alone, at most 6 members); "default" is not defined there.
CONFERENCE_PROFILE = "hotline"
# ASCII digits and \Z: \d takes other scripts' digits and $ a trailing newline, which the switch would not
PHONE_RE = re.compile(r"\+?[0-9]{3,20}\Z")
EXTENSION_RE = re.compile(r"[0-9]+\Z")
NODE_RE = re.compile(r"[A-Za-z0-9_]{1,64}\Z")  # as ivr.handback accepts


class ControlRefused(AcdError):
    """A control request that cannot be carried out (not your call, not in a call, unknown target ...)."""


def _refuse(zh: str, en: str) -> ControlRefused:
    return ControlRefused(f"{zh} / {en}")


class AgentControls:
    """The agent's softphone functions; every method takes the agent id the web session belongs to."""

    def __init__(self, acd: Acd, outbound_template: str = "",
                 hotline_number: str = "12345", extension_length: int = 4):
        self.acd = acd
        # Every number dialled goes through the dial-out policy (recorder.dialout); its carrier template
        # unless one is given here.
        self.dialout: DialOut = getattr(acd, "dialout", None) or DialOut()
        self.outbound_template = outbound_template or self.dialout.policy.template
        self.hotline_number = hotline_number
        self.extension_length = extension_length

    # ------------------------------------------------------------------ helpers
    def _record(self, agent: Agent, action: str, call_uuid: str = "", detail: str = "", ok: bool = True) -> None:
        SupervisorAction.create(actor=agent.user_id, actor_label=self.acd.operator_no.get(agent.id, ""),
                                action=action, target_agent=agent.id, call_uuid=call_uuid, detail=detail[:255],
                                ok=ok)

    def held_call(self, agent_id: int, call_uuid: str) -> Agent:
        """The agent, if they hold ``call_uuid`` (the caller's channel or their own leg); else refuse."""
        agent = self.acd.agent(agent_id)
        if not call_uuid:
            raise _refuse("未指定通话", "no call given")
        if call_uuid not in (agent.call_uuid, agent.leg_uuid) or not agent.call_uuid:
            owner = next((a for a in self.acd.agents.values()
                          if a.id != agent_id and call_uuid in (a.call_uuid, a.leg_uuid) and a.call_uuid), None)
            if owner is not None:
                raise _refuse("该通话属于其他话务员", "that call belongs to another agent")
            if agent.state != "in_call":
                raise _refuse("您当前没有通话", "you are not in a call")
            raise _refuse("您没有接听该通话", "you do not hold that call")
        if agent.state != "in_call":
            raise _refuse("您当前没有通话", "you are not in a call")
        return agent

    def _call_in_hand(self, agent_id: int, call_uuid: str) -> Agent:
        """held_call, and no attended transfer in progress (its target is on the agent's line meanwhile)."""
        agent = self.held_call(agent_id, call_uuid)
        if self.acd.consultations.for_agent(agent.id) is not None:
            raise _refuse("咨询转接进行中，请先完成或取消转接",
                          "an attended transfer is in progress: complete or cancel it first")
        return agent

    @staticmethod
    def _closing(consult: Consultation, how: str) -> None:
        """Mark the consultation as being completed or cancelled; a second request meanwhile is refused."""
        if consult.closing == "completing":
            raise _refuse("转接正在完成", "the transfer is already being completed")
        if consult.closing == "cancelling":
            raise _refuse("咨询转接正在取消", "the attended transfer is already being cancelled")
        consult.closing = how

    def _consultation(self, agent: Agent) -> Consultation:
        consult = self.acd.consultations.for_agent(agent.id)
        if consult is None or consult.call_uuid != agent.call_uuid:
            raise _refuse("没有正在进行的咨询转接", "no attended transfer in progress")
        return consult

    def channel_command(self, agent: Agent, uuid: str, verb: Callable[[Channel], str]) -> str:
        """Run ``verb`` (Channel.hold, lambda ch: ch.kill(...) ...) on channel ``uuid`` of the agent's switch;
        a bad argument, a failure or -ERR becomes a clear ControlRefused (caused by the error, if any)."""
        conn = self.acd.conn_for(agent.call_server or agent.server)
        try:
            reply = verb(conn.channel(uuid, timeout=10.0))
        except CommandError as exc:
            raise _refuse("交换机命令无效", f"bad switch command: {exc}") from exc
        except SwitchError as exc:
            raise _refuse("交换机命令失败", f"switch command failed: {exc}") from exc
        if reply.strip().startswith("-ERR"):
            raise _refuse("交换机拒绝了该操作", f"switch refused: {reply.strip()[:120]}")
        return reply

    def _kill(self, agent: Agent, uuid: str) -> str:
        """Hang up ``uuid`` (the agent's or a consultation leg) as a normal clearing."""
        return self.channel_command(agent, uuid, lambda ch: ch.kill("NORMAL_CLEARING"))

    def _other_party(self, agent: Agent) -> str:
        """The channel of the person the agent talks to (the caller for queue calls)."""
        return agent.call_uuid if agent.call_direction == "inbound" else agent.leg_uuid

    # ------------------------------------------------------------------ status
    def ready(self, agent_id: int) -> Agent:
        """示闲 / ready: log in first if needed."""
        agent = self.acd.agent(agent_id)
        if agent.status == "logged_out" and agent.state == "idle":
            self.acd.transition(agent_id, "login")
        if agent.status == "available" and agent.state in ("idle", "reserved", "ringing"):
            raise _refuse("您已处于就绪状态", "you are already ready")
        agent = self.acd.transition(agent_id, "ready")
        self._record(agent, "ready")
        return agent

    def not_ready(self, agent_id: int, reason: str) -> Agent:
        """示忙 / not ready with a reason (临时闭席)."""
        reason = (reason or "").strip()
        if not reason:
            raise _refuse("请选择示忙原因", "a reason is required")
        agent = self.acd.agent(agent_id)
        if agent.status == "on_break" and agent.state == "idle":
            raise _refuse("您已处于示忙状态", "you are already not ready")
        agent = self.acd.transition(agent_id, "not_ready", reason=reason[:64])
        self._record(agent, "not_ready", detail=reason)
        return agent

    def login(self, agent_id: int) -> Agent:
        """签入 / log in (starts not ready)."""
        agent = self.acd.transition(agent_id, "login")
        self._record(agent, "login")
        return agent

    def logout(self, agent_id: int) -> Agent:
        """签出 / log out (after the current call if in one)."""
        agent = self.acd.agent(agent_id)
        if agent.status == "logged_out":
            raise _refuse("您已签出", "you are already logged out")
        agent = self.acd.transition(agent_id, "logout")
        self._record(agent, "logout")
        return agent

    def end_wrap_up(self, agent_id: int) -> Agent:
        """话后处理结束 / end wrap-up now."""
        agent = self.acd.agent(agent_id)
        if agent.state != "wrap_up":
            raise _refuse("当前不在话后处理", "you are not in wrap-up")
        return self.acd.transition(agent_id, "ready")

    # ------------------------------------------------------------------ call controls
    def hold(self, agent_id: int, call_uuid: str) -> Agent:
        """保持 / hold: the caller hears music until resumed."""
        return self._set_hold(agent_id, call_uuid, True)

    def resume(self, agent_id: int, call_uuid: str) -> Agent:
        """恢复 / resume a held call."""
        return self._set_hold(agent_id, call_uuid, False)

    def _set_hold(self, agent_id: int, call_uuid: str, on: bool) -> Agent:
        agent = self._call_in_hand(agent_id, call_uuid)
        if agent.on_hold == on:
            raise (_refuse("通话已处于保持状态", "the call is already on hold") if on
                   else _refuse("通话未处于保持状态", "the call is not on hold"))
        # uuid_hold holds the named leg and plays music to its partner: the agent's leg, so the caller hears it.
        self.channel_command(agent, agent.leg_uuid, Channel.hold if on else Channel.unhold)
        agent.on_hold = on
        agent.save(only=[Agent.on_hold])
        self._record(agent, "hold" if on else "resume", agent.call_uuid)
        self.acd.notify("hold", agent_id=agent_id, on_hold=on)
        return agent

    def hangup(self, agent_id: int, call_uuid: str) -> Agent:
        """挂断 / hang up the agent's side of the call."""
        agent = self.held_call(agent_id, call_uuid)
        self._kill(agent, agent.leg_uuid)
        self._record(agent, "hangup", agent.call_uuid)
        return agent

    def resolve_target(self, kind: str, target: str, from_server: str = "") -> str:
        """Turn a transfer target into a dialplan destination, refusing targets that do not exist or that
        the caller's switch (``from_server``) cannot reach."""
        target = (target or "").strip()
        if kind == "agent":
            agent_id = self.acd.by_extension.get(target)
            if agent_id is None and target.isdigit():
                agent_id = next((a for a, no in self.acd.operator_no.items() if no == target), None)
            if agent_id is None:
                raise _refuse(f"没有话务员 {target}", f"no agent {target!r}")
            other = self.acd.agents[agent_id]
            if not other.registered:
                raise _refuse("对方话机未注册", "that agent's phone is not registered")
            if from_server and other.server and other.server != from_server and len(self.acd.connections()) > 1:
                # Transfers are dialled on the caller's switch as user/<ext>, which only reaches its own
                # phones; queue offers cross servers, a transfer does not (yet): say so instead of ringing
                # nobody.
                raise _refuse("对方话机注册在另一台交换机上，请转到其所在队列",
                              "that agent's phone is on another switch: transfer to their queue instead")
            return other.extension
        if kind == "queue":
            if target not in self.acd.queues:
                raise _refuse(f"没有队列 {target}", f"no queue {target!r}")
            return target
        if kind == "department":
            department = None
            if target.isdigit():
                department = Department.get_or_none(Department.id == int(target))
            department = department or Department.get_or_none(Department.code == target)
            if department is None:
                raise _refuse(f"没有部门 {target}", f"no department {target!r}")
            phone = (department.contact_phone or "").strip()
            if not PHONE_RE.match(phone):
                raise _refuse("该部门没有可拨打的电话", "that department has no phone number")
            return phone
        if kind == "number":
            if not PHONE_RE.match(target):
                raise _refuse("号码格式不正确", f"not a phone number: {target!r}")
            return target
        raise _refuse("未知的转接类型", f"unknown transfer kind {kind!r}")

    def blind_transfer(self, agent_id: int, call_uuid: str, kind: str, target: str) -> Agent:
        """盲转 / blind transfer of the caller to an agent, a queue or a department phone."""
        agent = self._call_in_hand(agent_id, call_uuid)
        destination = self.resolve_target(kind, target, agent.call_server or agent.server)
        caller = self._other_party(agent)
        if kind == "queue":
            self._reenter(agent, caller, "hotline_queue", destination)
        elif kind == "agent":
            self.acd.handed_off.add(agent.call_uuid)
            self.channel_command(agent, caller, lambda ch: ch.transfer(destination, DIALPLAN_CONTEXT))
        else:
            # A number: through the dial-out policy, bridged inline to the carrier (the default context
            # hangs up anything but the hotline and a seat) or to the seat it names.
            dial = self._dial_target(agent, destination, "transfer")
            self.acd.handed_off.add(agent.call_uuid)
            self.channel_command(agent, caller, lambda ch: ch.transfer(commands.inline("bridge", dial),
                                                                       dialplan="inline"))
        self._release_own_leg(agent)
        self._record(agent, "blind_transfer", agent.call_uuid, f"{kind}:{destination}")
        return agent

    def _release_own_leg(self, agent: Agent) -> None:
        """After handing the caller on, the agent's phone hangs up (FreeSWITCH may have done it already)."""
        conn = self.acd.conn_for(agent.call_server or agent.server)
        try:
            conn.channel(agent.leg_uuid, timeout=10.0).kill("NORMAL_CLEARING")
        except (SwitchError, CommandError) as exc:
            log.info("agent leg %s already gone: %s", agent.leg_uuid, exc)

    def _reenter(self, agent: Agent, caller: str, variable: str, value: str) -> None:
        """Mark the caller's channel and send it back into the app through the hotline number."""
        mark = commands.scrub(value)
        if not mark:
            raise _refuse("目标名称无效", f"{variable}: {value!r} has no character the switch may carry")
        self.acd.handed_off.add(agent.call_uuid)
        self.acd.handbacks.expect(caller, variable, mark)
        self.channel_command(agent, caller, lambda ch: ch.setvar(variable, mark))
        self.channel_command(agent, caller, lambda ch: ch.transfer(commands.phone(self.hotline_number),
                                                                   DIALPLAN_CONTEXT))

    def to_ivr(self, agent_id: int, call_uuid: str, node: str) -> Agent:
        """人工转自动 / hand the caller back to an IVR node (e.g. the satisfaction key-press)."""
        agent = self._call_in_hand(agent_id, call_uuid)
        if not NODE_RE.match(node or ""):
            raise _refuse("IVR 节点名称不正确", f"bad IVR node name {node!r}")
        self._reenter(agent, self._other_party(agent), "hotline_ivr_node", node)
        self._release_own_leg(agent)
        self._record(agent, "to_ivr", agent.call_uuid, node)
        return agent

    def attended_transfer(self, agent_id: int, call_uuid: str, kind: str, target: str) -> Agent:
        """咨询转 / attended transfer: the caller waits while the agent talks to the target; then complete or
        cancel (hanging up the agent's phone completes it too, as on the switch)."""
        agent = self.held_call(agent_id, call_uuid)
        if self.acd.consultations.for_agent(agent.id) is not None:
            raise _refuse("已有咨询转接正在进行", "an attended transfer is already in progress")
        if kind == "queue":
            raise _refuse("队列不能咨询转接，请用盲转", "use a blind transfer for a queue")
        destination = self._dial_target(agent, self.resolve_target(kind, target, agent.call_server or agent.server),
                                        "transfer")
        leg = str(uuidlib.uuid4())
        dial = commands.variables({"origination_uuid": leg,
                                   "origination_caller_id_number": commands.phone(self.hotline_number)}) + destination
        # Tracked before the command goes out: the leg's events may arrive before the reply.
        self.acd.start_consultation(agent.id, leg, f"{kind}:{target}")
        self._forget_operator_prompt(agent)
        try:
            self.channel_command(agent, agent.leg_uuid, lambda ch: ch.broadcast("att_xfer", dial))
        except ControlRefused:
            self.acd.end_consultation(leg, "failed")
            raise
        self._record(agent, "attended_transfer", agent.call_uuid, f"{kind}:{target}")
        return agent

    def _forget_operator_prompt(self, agent: Agent) -> None:
        """The caller heard the agent's operator number (自动报工号) when first bridged. att_xfer ends with
        FreeSWITCH bridging the caller again (back to this agent, or on to the target), and every bridge runs
        the caller's bridge_pre_execute_app: unset it, or the caller hears the number again."""
        try:
            self.channel_command(agent, self._other_party(agent), lambda ch: ch.setvar("bridge_pre_execute_app"))
        except ControlRefused as exc:
            log.info("operator prompt of %s not unset: %s", agent.call_uuid, exc)

    def complete_transfer(self, agent_id: int, call_uuid: str) -> Agent:
        """完成转接 / complete the attended transfer once the target answered: the agent's leg hangs up and
        FreeSWITCH bridges the caller to the target; the agent goes to wrap-up as after any call."""
        agent = self.held_call(agent_id, call_uuid)
        consult = self._consultation(agent)
        if not consult.answered:
            raise _refuse("咨询对象尚未接听，不能完成转接", "the transfer target has not answered yet")
        self._closing(consult, "completing")
        try:
            self._kill(agent, agent.leg_uuid)
        except ControlRefused as exc:
            if isinstance(exc.__cause__, SwitchError):
                consult.closing = ""  # the switch never got it: the agent may try again
                raise
            # No such channel: the agent's leg is gone already, which completes the transfer all the same.
            log.info("agent leg %s already gone: %s", agent.leg_uuid, exc)
        # The agent's hang-up event normally ends it first (as "completed"); this covers a lost event.
        self.acd.end_consultation(consult.leg, "completed")
        self._record(agent, "complete_transfer", agent.call_uuid, consult.target)
        return agent

    def cancel_transfer(self, agent_id: int, call_uuid: str) -> Agent:
        """取消转接 / cancel the attended transfer: the consultation leg hangs up and the agent is back with
        the caller, all controls available again."""
        agent = self.held_call(agent_id, call_uuid)
        consult = self._consultation(agent)
        self._closing(consult, "cancelling")
        try:
            self._kill(agent, consult.leg)
        except ControlRefused as exc:
            if isinstance(exc.__cause__, SwitchError):
                consult.closing = ""
                raise
            # No such channel: the leg is gone already (its hang-up event is on its way, or it never rang).
            log.info("consultation leg %s already gone: %s", consult.leg, exc)
            self.acd.end_consultation(consult.leg, "cancelled")
        self._record(agent, "cancel_transfer", agent.call_uuid, consult.target)
        return agent

    def three_way(self, agent_id: int, call_uuid: str, kind: str, target: str) -> Agent:
        """三方通话 / three-way: caller and agent move into a conference, the third party is called in."""
        agent = self._call_in_hand(agent_id, call_uuid)
        destination = self._dial_target(agent, self.resolve_target(kind, target, agent.call_server or agent.server),
                                        "three_way")
        room = commands.conference_room(f"acd3w_{agent.id}_{commands.scrub(agent.call_uuid)[:8]}", CONFERENCE_PROFILE)
        command = commands.originate(destination, commands.app("conference", room),
                                     {"origination_caller_id_number": commands.phone(self.hotline_number)})
        self.acd.handed_off.add(agent.call_uuid)
        self.channel_command(agent, agent.leg_uuid,
                             lambda ch: ch.transfer(commands.inline("conference", room), leg="-both", dialplan="inline"))
        conn = self.acd.conn_for(agent.call_server or agent.server)
        gevent.spawn(self._background, conn, command)
        self._record(agent, "three_way", agent.call_uuid, f"{kind}:{target}")
        return agent

    def _dial_target(self, agent: Agent, destination: str, purpose: str) -> str:
        """user/<extension> for a seat, else the outbound template (a gateway) with the number; every
        number first through the dial-out policy on the agent's behalf (refused: ControlRefused, logged)."""
        if len(destination) <= self.extension_length and EXTENSION_RE.match(destination):
            try:
                return commands.user(destination)
            except CommandError as exc:
                raise _refuse("无法拨打该号码", f"cannot dial: {exc}") from exc
        try:
            decision = self.dialout.authorise(destination, purpose, user=agent.user, detail=agent.call_uuid)
            return commands.from_template(self.outbound_template, number=decision.number)
        except DialRefused as exc:
            self._record(agent, f"{purpose}_refused"[:32], agent.call_uuid, f"{destination}: {exc}", ok=False)
            raise ControlRefused(str(exc)) from exc
        except CommandError as exc:
            raise _refuse("无法拨打该号码", f"cannot dial: {exc}") from exc

    @staticmethod
    def _background(conn, command: str) -> None:
        try:
            result = conn.bgapi(command, timeout=90.0)
            if not getattr(result, "ok", True):
                log.info("background %s failed: %s", command.split(" ", 1)[0], getattr(result, "body", ""))
        except SwitchError as exc:
            log.warning("background command failed: %s", exc)

    def dial(self, agent_id: int, number: str, *, label: str = "outbound") -> str:
        """外呼 / outbound call: the agent's phone rings first, then the number is called. Returns the leg uuid."""
        number = (number or "").strip()
        if not PHONE_RE.match(number) and not (EXTENSION_RE.match(number) and len(number) <= self.extension_length):
            raise _refuse("号码格式不正确", f"not a phone number: {number!r}")
        agent = self.acd.agent(agent_id)
        if not agent.registered:
            raise _refuse("您的话机未注册", "your phone is not registered")
        if not sm.allowed(agent.status, agent.state, "dial"):
            raise _refuse("当前状态不能外呼", f"cannot call out while {agent.status}/{agent.state}")
        leg = str(uuidlib.uuid4())
        conn = self.acd.conn_for(agent.server)
        # Built before the state changes: a bad extension or template is refused with nothing changed.
        try:
            far = commands.variables({"origination_caller_id_number": commands.phone(self.hotline_number)})
            command = commands.originate(
                commands.user(agent.extension), commands.app("bridge", far + self._dial_target(agent, number, label)),
                {"origination_uuid": leg, "origination_caller_id_number": number, "originate_timeout": 30,
                 "acd_agent": agent_id})
        except CommandError as exc:
            raise _refuse("无法拨打该号码", f"cannot dial: {exc}") from exc
        self.acd.transition(agent_id, "dial", call_uuid=leg, leg_uuid=leg, call_server=agent.server,
                            call_number=number, call_queue="", call_direction="outbound")
        self.acd.legs.claim(leg, AgentCall(agent_id))
        gevent.spawn(self._dial_job, conn, command, agent_id, leg)
        self._record(agent, label, leg, number)
        return leg

    def call_back(self, user, missed_id: int) -> tuple[object, str]:
        """回拨 / call back a caller on the missed-call list: the entry is claimed for this agent (nobody
        else calls the same citizen meanwhile), then the agent's phone rings first. Returns (entry, leg uuid);
        a refused call gives the claim back (recorder.missed.MissedCallError, ControlRefused...)."""
        from recorder.missed import start_call_back

        agent = self.acd.agent_for_user(user.id)
        return start_call_back(missed_id, user, lambda number: self.dial(agent.id, number, label="call_back"))

    def _dial_job(self, conn, command: str, agent_id: int, leg: str) -> None:
        ok, body = False, ""
        try:
            result = conn.bgapi(command, timeout=60.0)
            ok, body = bool(getattr(result, "ok", False)), getattr(result, "body", "")
        except SwitchError as exc:
            body = str(exc)
        if not ok:
            cause = body.replace("-ERR", "").strip().split()[0] if body.strip() else "NORMAL_CLEARING"
            self.acd.offer_failed(agent_id, leg, cause)  # a no-op when the leg has moved on meanwhile

    def call_team_lead(self, agent_id: int) -> str:
        """呼叫班长 / call a team lead who is logged in (a registered agent holding the team_lead role)."""
        lead = self._free_team_lead(exclude=agent_id)
        return self.dial(agent_id, lead.extension, label="call_team_lead")

    def _free_team_lead(self, exclude: int) -> Agent:
        for agent in self.acd.agents.values():
            if agent.id != exclude and agent.registered and agent.user.has_role("team_lead") \
                    and agent.state == "idle" and agent.status != "logged_out":
                return agent
        raise _refuse("没有空闲的班长", "no team lead is free")

    def request_help(self, agent_id: int, note: str = "") -> Agent:
        """求助 / ask a team lead for help (shown on the console until answered)."""
        agent = self.acd.agent(agent_id)
        if agent.help_requested_at is not None:
            raise _refuse("求助请求已发出", "a help request is already waiting")
        agent.help_requested_at = utcnow()
        agent.save(only=[Agent.help_requested_at])
        self._record(agent, "request_help", agent.call_uuid, note)
        self.acd.notify("help", agent_id=agent_id, note=note[:120])
        return agent

    def set_desk_activity(self, agent_id: int, text: str) -> None:
        """What the agent's desk shows now (ticket open ...), for the team-lead console."""
        agent = self.acd.agent(agent_id)
        agent.desk_activity = (text or "")[:255]
        agent.save(only=[Agent.desk_activity])
        self.acd.notify("desk", agent_id=agent_id, desk=agent.desk_activity)


def user_agent(acd: Acd, user: User) -> Agent:
    """The agent record of a logged-in user, or a clear error."""
    return acd.agent_for_user(user.id)
