"""Agent controls and team-lead actions over the in-process doubles: the commands sent, refusals, guests."""
from __future__ import annotations

import datetime as dt

import gevent
import pytest

from acd.agent_controls import AgentControls, ControlRefused
from acd.models import Agent, AgentSkill, SupervisorAction
from acd.supervisor import NotTeamLead, Supervisor
from caseflow.models import Department
from core.clock import FixedClock
from tests.integration.acd.conftest import make_user, wait_for
from tests.integration.acd.doubles import Session


@pytest.fixture
def in_call(make_acd, setup_agents, queue, world):
    """Agent 1 in a call with a caller (the phone talks for a long time)."""
    agents = setup_agents(2, talk=30)
    acd = make_acd()
    controls = AgentControls(acd)
    controls.ready(agents[0].id)
    session = Session(world, caller="13900000000")
    job = gevent.spawn(acd.enter_queue, session, "consult")
    wait_for(lambda: acd.agents[agents[0].id].state == "in_call", what="in call")
    yield acd, controls, agents, session
    session.hangup_now()
    job.join(timeout=5)


def test_attended_transfer_and_department_transfer_commands(in_call, world, db):
    """Should consult-transfer with att_xfer on the agent's leg, and blind-transfer to a department's phone."""
    acd, controls, agents, session = in_call
    agent = acd.agents[agents[0].id]
    leg = agent.leg_uuid
    controls.attended_transfer(agent.id, session.uuid, "agent", "1002")
    consult = acd.consultations.for_agent(agent.id)
    assert (f"uuid_broadcast {leg} att_xfer::{{origination_uuid={consult.leg},origination_caller_id_number=12345}}"
            f"user/1002 aleg") in world.commands
    controls.cancel_transfer(agent.id, session.uuid)  # the consultation leg never rang: nothing left to cancel
    assert acd.consultations.for_agent(agent.id) is None
    Department.create(code="water", name="自来水公司", level=2, contact_phone="87654321")
    Department.create(code="nophone", name="无电话部门", level=2)
    with pytest.raises(ControlRefused, match="no phone number"):
        controls.blind_transfer(agent.id, session.uuid, "department", "nophone")
    with pytest.raises(ControlRefused, match="use a blind transfer"):
        controls.attended_transfer(agent.id, session.uuid, "queue", "consult")
    controls.blind_transfer(agent.id, session.uuid, "department", "water")
    assert f"uuid_transfer {session.uuid} bridge:sofia/gateway/carrier/87654321 inline" in world.commands
    assert f"uuid_kill {leg} NORMAL_CLEARING" in world.commands
    wait_for(lambda: agent.state == "idle", what="agent released after the transfer")


def test_blind_transfer_into_queue_marks_channel(in_call, world):
    """Should mark the caller with the queue and send it back through the hotline number."""
    acd, controls, agents, session = in_call
    controls.blind_transfer(agents[0].id, session.uuid, "queue", "consult")
    assert f"uuid_setvar {session.uuid} hotline_queue consult" in world.commands
    assert f"uuid_transfer {session.uuid} 12345 XML default" in world.commands


def test_controls_refused_for_calls_not_held(in_call):
    """Should refuse another agent's call, a made-up call, an empty call id and a bad IVR node."""
    acd, controls, agents, session = in_call
    with pytest.raises(ControlRefused, match="another agent"):
        controls.hangup(agents[1].id, session.uuid)
    with pytest.raises(ControlRefused, match="do not hold"):
        controls.hold(agents[0].id, "00000000-0000-0000-0000-000000000000")
    with pytest.raises(ControlRefused, match="no call given"):
        controls.hold(agents[0].id, "")
    with pytest.raises(ControlRefused, match="bad IVR node"):
        controls.to_ivr(agents[0].id, session.uuid, "x; uuid_kill all")
    with pytest.raises(ControlRefused, match="a reason is required"):
        controls.not_ready(agents[0].id, "  ")


def test_not_ready_during_call_applies_after(in_call, world):
    """Should keep the agent busy in the call and put them on break when it ends (no wrap-up)."""
    acd, controls, agents, session = in_call
    controls.not_ready(agents[0].id, "午餐")
    assert (acd.agents[agents[0].id].status, acd.agents[agents[0].id].state) == ("on_break", "in_call")
    session.hangup_now()
    wait_for(lambda: acd.agents[agents[0].id].state == "idle", what="call over")
    assert acd.agents[agents[0].id].status == "on_break" and acd.agents[agents[0].id].break_reason == "午餐"


def test_guest_agent_for_a_day(make_acd, setup_agents, queue, db):
    """Should let a team lead add a leader as agent for today, and retire the guest the day after."""
    setup_agents(1)
    acd = make_acd()
    lead = make_user("9001", "1900", roles="team_lead")
    leader = make_user("7001", "1700", roles="leader", name="市长")
    supervisor = Supervisor(acd)
    with pytest.raises(NotTeamLead):
        supervisor.add_guest_agent(leader, leader, {"consult": 3})
    guest = supervisor.add_guest_agent(lead, leader, {"consult": 3})
    assert guest.guest_until == acd.clock.today() and guest.id in acd.agents
    assert acd.skills[guest.id] == {"consult": (3, 0)}
    acd.transition(guest.id, "login")
    acd.clock = FixedClock(acd.clock.now() + dt.timedelta(days=1))  # the day after
    assert supervisor.expire_guests() == 1
    assert acd.agents[guest.id].status == "logged_out"
    assert not AgentSkill.select().where(AgentSkill.agent == guest.id).exists()
    rows = [(r.action, r.ok) for r in SupervisorAction.select().order_by(SupervisorAction.id)]
    assert rows == [("add_guest_agent", False), ("add_guest_agent", True)]
    assert Agent.get_by_id(guest.id).user_id == leader.id


def test_transfer_to_an_agent_on_another_switch_is_refused_clearly(in_call, world, db, monkeypatch):
    """Should refuse a blind, attended or three-way transfer to an agent whose phone is registered on another
    FreeSWITCH (the caller's switch would ring nobody), and send nothing to the switch."""
    acd, controls, agents, session = in_call
    agent = acd.agents[agents[0].id]
    acd.agents[agents[1].id].server = "10.0.0.2:8021"
    monkeypatch.setattr(acd, "connections", lambda: [object(), object()])  # two servers in the pool
    sent = len(world.commands)
    for action in (controls.blind_transfer, controls.attended_transfer, controls.three_way):
        with pytest.raises(ControlRefused, match="on another switch"):
            action(agent.id, session.uuid, "agent", "1002")
    assert len(world.commands) == sent and acd.consultations.for_agent(agent.id) is None
