"""Attended transfer (咨询转) end to end over the wire: the fake FreeSWITCH runs att_xfer on the agent's leg as
mod_dptools does, the ACD follows the consultation leg, the agent completes or cancels from the controls."""
from __future__ import annotations

import pytest

from acd.agent_controls import AgentControls, ControlRefused
from acd.dispatcher import create_queue
from acd.models import SupervisorAction
from tests.integration.acd.conftest import wait_for
from tests.integration.acd.test_fakeswitch import agents_for, fs, line  # noqa: F401 - fixtures


@pytest.fixture
def consulting(db, fs, line):  # noqa: F811 - fixtures imported above
    """Agent 8001 (phone 1001) in a call with a caller; agent 8002 (phone 1002, logged out) is the target.

    Returns a function starting the attended transfer to 1002; it gives a namespace with the app, the
    controls, the call, the agents, the agent's leg, the consultation leg and the consult notices seen.
    """
    create_queue("consult", "consult", wrap_up_seconds=60, announce_interval=0)
    agents = agents_for(fs, 2, answer_delay=0.5, talk_seconds=None)
    app = line()
    notices = []
    app.acd.subscribe(lambda n: notices.append(n) if n["type"] == "consult" else None)
    controls = AgentControls(app.acd)
    controls.ready(agents[0].id)

    def start(**target_phone):
        for name, value in target_phone.items():
            setattr(fs.agents["1002"], name, value)
        call = app.call()
        agent = wait_for(lambda: app.acd.agents[agents[0].id].state == "in_call" and app.acd.agents[agents[0].id],
                         what="in call")
        leg = agent.leg_uuid
        controls.attended_transfer(agent.id, call.uuid, "agent", "1002")
        consult = app.acd.consultations.for_agent(agent.id)
        return Case(app, controls, call, agents, agent.id, leg, consult.leg, notices)

    return start


class Case:
    def __init__(self, app, controls, call, agents, agent_id, leg, consult_leg, notices):
        self.app, self.controls, self.call, self.agents = app, controls, call, agents
        self.agent_id, self.leg, self.consult_leg, self.notices = agent_id, leg, consult_leg, notices

    @property
    def agent(self):
        return self.app.acd.agents[self.agent_id]

    def states(self) -> list[str]:
        return [n["state"] if n["state"] != "ended" else f"ended:{n['outcome']}" for n in self.notices]

    def wait_answered(self):
        wait_for(lambda: "answered" in self.states(), what="the target to answer")

    def wait_ended(self):
        return wait_for(lambda: next((s for s in self.states() if s.startswith("ended")), None),
                        what="the consultation to end")


def _partner(fs, uuid):
    ch = fs.channels.get(uuid)
    return ch.other.uuid if ch is not None and ch.other is not None else None


def test_complete_after_the_target_answered(fs, consulting):  # noqa: F811
    """Should originate the target with our leg uuid and the hotline's caller id, refuse to complete before
    it answers, then complete: the agent's leg hangs up, the caller is bridged to the target, the agent is
    in wrap-up; meanwhile the agent was never offered another caller; everything recorded."""
    case = consulting(answer_delay=50)  # the target rings for a while (half a second of wall clock)
    command = next(c for c in fs.api_log if c.startswith("uuid_broadcast"))
    assert command == (f"uuid_broadcast {case.leg} att_xfer::{{origination_uuid={case.consult_leg},"
                       f"origination_caller_id_number=12345}}user/1002 aleg")
    target = fs.wait_for(lambda: fs.channels.get(case.consult_leg), 5, "the target's leg")
    assert target.caller_number == "12345" and target.agent is fs.agents["1002"]
    with pytest.raises(ControlRefused, match="has not answered yet"):
        case.controls.complete_transfer(case.agent_id, case.call.uuid)
    with pytest.raises(ControlRefused, match="already in progress"):
        case.controls.attended_transfer(case.agent_id, case.call.uuid, "number", "13900001111")
    with pytest.raises(ControlRefused, match="complete or cancel it first"):
        case.controls.hold(case.agent_id, case.call.uuid)
    with pytest.raises(ControlRefused, match="another agent"):
        case.controls.complete_transfer(case.agents[1].id, case.call.uuid)
    waiting = case.app.call(caller="13700000000")  # a second caller while the agent consults
    case.wait_answered()
    assert _partner(fs, case.leg) == case.consult_leg and _partner(fs, case.call.uuid) == case.leg
    case.controls.complete_transfer(case.agent_id, case.call.uuid)
    fs.wait_for(lambda: _partner(fs, case.call.uuid) == case.consult_leg, 5, "the caller bridged to the target")
    fs.wait_for(lambda: case.leg in fs.gone, 5, "the agent's leg gone")
    assert case.call.hangup_cause is None
    wait_for(lambda: case.agent.state == "wrap_up", what="the agent in wrap-up")
    with pytest.raises(ControlRefused, match="not in a call"):
        case.controls.complete_transfer(case.agent_id, case.call.uuid)
    assert case.states() == ["ringing", "answered", "ended:completed"]
    assert fs.agents["1001"].offered == 1 and waiting.hangup_cause is None
    case.call.hangup()
    wait_for(lambda: case.call.uuid in case.app.outcomes, what="the caller's outcome")
    assert case.app.outcomes[case.call.uuid].outcome == "transferred"
    fs.wait_for(lambda: case.consult_leg in fs.gone, 5, "the target hung up after the caller")
    actions = [(a.action, a.detail) for a in SupervisorAction.select().order_by(SupervisorAction.id)]
    assert actions == [("ready", ""), ("attended_transfer", "agent:1002"), ("complete_transfer", "agent:1002")]
    waiting.hangup()


def _operator_prompts(case) -> list[str]:
    return [arg for app, arg in case.call.executed if app == "playback" and "/operator_" in arg]


def test_cancel_goes_back_to_the_caller(fs, consulting):  # noqa: F811
    """Should hang up the consultation leg on cancel and bridge the agent back to the caller, with every
    control available again (hold, resume, hang up), and refuse a second cancel; the caller heard the
    agent's operator number once, when first bridged, not again when FreeSWITCH bridges them back."""
    case = consulting()
    case.wait_answered()
    assert [p.rpartition("/")[2] for p in _operator_prompts(case)] == ["operator_8001.wav"]
    case.controls.cancel_transfer(case.agent_id, case.call.uuid)
    fs.wait_for(lambda: _partner(fs, case.call.uuid) == case.leg and _partner(fs, case.leg) == case.call.uuid,
                5, "the agent bridged back to the caller")
    fs.wait_for(lambda: not fs.channels[case.call.uuid].runner.queue and
                fs.channels[case.call.uuid].runner.current is None, 5, "the caller's leg idle in its bridge")
    assert len(_operator_prompts(case)) == 1
    assert case.consult_leg in fs.gone and fs.gone[case.consult_leg].hangup_cause == "NORMAL_CLEARING"
    assert case.wait_ended() == "ended:cancelled"
    with pytest.raises(ControlRefused, match="no attended transfer in progress"):
        case.controls.cancel_transfer(case.agent_id, case.call.uuid)
    with pytest.raises(ControlRefused, match="no attended transfer in progress"):
        case.controls.complete_transfer(case.agent_id, case.call.uuid)
    assert case.agent.state == "in_call"
    case.controls.hold(case.agent_id, case.call.uuid)
    case.controls.resume(case.agent_id, case.call.uuid)
    case.controls.hangup(case.agent_id, case.call.uuid)
    case.call.wait_ended(timeout=10)
    wait_for(lambda: case.agent.state == "wrap_up", what="wrap-up after the call")
    actions = [a.action for a in SupervisorAction.select().order_by(SupervisorAction.id)]
    assert actions == ["ready", "attended_transfer", "cancel_transfer", "hold", "resume", "hangup"]


def test_target_hangs_up_by_itself(fs, consulting):  # noqa: F811
    """Should bring the agent back to the caller when the target hangs up, and end the consultation."""
    case = consulting()
    case.wait_answered()
    fs.agents["1002"].hangup()
    fs.wait_for(lambda: _partner(fs, case.call.uuid) == case.leg, 5, "the agent bridged back to the caller")
    assert case.wait_ended() == "ended:target_hung_up"
    assert case.agent.state == "in_call" and case.app.acd.consultations.for_agent(case.agent_id) is None
    case.controls.to_ivr(case.agent_id, case.call.uuid, "satisfaction")  # every control is back
    assert f"uuid_setvar {case.call.uuid} hotline_ivr_node satisfaction" in fs.api_log


def test_target_does_not_answer(fs, consulting):  # noqa: F811
    """Should leave the agent talking to the caller when the target never answers; the call then ends as
    any answered call does (the caller hung up by the app, the agent in wrap-up)."""
    case = consulting(answer="timeout")
    with pytest.raises(ControlRefused, match="has not answered yet"):
        case.controls.complete_transfer(case.agent_id, case.call.uuid)
    assert case.wait_ended() == "ended:no_answer"
    assert _partner(fs, case.call.uuid) == case.leg and case.agent.state == "in_call"
    case.controls.hangup(case.agent_id, case.call.uuid)
    case.call.wait_ended(timeout=10)
    wait_for(lambda: case.call.uuid in case.app.outcomes, what="the caller's outcome")
    assert case.app.outcomes[case.call.uuid].outcome == "answered"
    wait_for(lambda: case.agent.state == "wrap_up", what="wrap-up")


def test_keys_on_the_agents_phone(fs, consulting):  # noqa: F811
    """Should follow the switch-side keys: # on the agent's phone cancels (back to the caller), and after a
    second consultation * hangs the agent up, which completes the transfer."""
    case = consulting()
    case.wait_answered()
    fs.agents["1001"].press("#")
    assert case.wait_ended() == "ended:target_hung_up"
    fs.wait_for(lambda: _partner(fs, case.call.uuid) == case.leg, 5, "the agent back with the caller")
    case.notices.clear()
    case.controls.attended_transfer(case.agent_id, case.call.uuid, "agent", "1002")
    second = case.app.acd.consultations.for_agent(case.agent_id).leg
    case.wait_answered()
    fs.agents["1001"].press("*")
    assert case.wait_ended() == "ended:completed"
    fs.wait_for(lambda: _partner(fs, case.call.uuid) == second, 5, "the caller bridged to the target")
    wait_for(lambda: case.agent.state == "wrap_up", what="wrap-up")


def test_phone_sending_no_media_never_starts_the_consultation(fs, consulting):  # noqa: F811
    """Should leave the call as it was when the agent's phone sends no RTP (FreeSWITCH accepts att_xfer for
    the bridged leg but runs it only once that leg has read media): no consultation leg ever rings, the
    periodic reconciliation drops the consultation as lost, and the agent's controls work again."""
    fs.agents["1001"].sends_media = False
    case = consulting()
    assert ("att_xfer", f"{{origination_uuid={case.consult_leg},origination_caller_id_number=12345}}user/1002") in \
        fs.channels[case.leg].unread_broadcasts
    assert case.states() == ["ringing"] and case.consult_leg not in fs.channels
    consult = case.app.acd.consultations.for_agent(case.agent_id)
    consult.started -= 60  # as if the periodic reconciliation came a minute later
    case.app.acd.reconcile(case.app.pool.all()[0].name)
    assert case.wait_ended() == "ended:lost"
    assert _partner(fs, case.call.uuid) == case.leg and case.agent.state == "in_call"
    case.controls.hold(case.agent_id, case.call.uuid)
    case.controls.resume(case.agent_id, case.call.uuid)
    assert fs.agents["1002"].offered == 0
