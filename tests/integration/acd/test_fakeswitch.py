"""The ACD end to end over the wire: the fake FreeSWITCH, the real inbound connection and outbound server,
scripted callers and scripted agent phones."""
from __future__ import annotations

import gevent
import pytest

from acd.agent_controls import AgentControls, ControlRefused
from acd.dispatcher import Acd, AcdSettings, create_agent, create_queue
from acd.models import Agent, QueueEntry, SupervisorAction
from acd.supervisor import NotTeamLead, Supervisor
from core.config import EslEndpoint
from switch.errors import CallHangup
from switch.inbound import SwitchPool
from switch.outbound import OutboundServer
from tests.fakeswitch import FakeSwitch, Hangup, Press, Wait, WaitFor
from tests.integration.acd.conftest import make_user, wait_for
from tests.integration.acd.doubles import missed_of


@pytest.fixture
def fs(tmp_path):
    switch = FakeSwitch(password="ClueCon", record_dir=tmp_path / "fs", time_scale=0.01)
    switch.start()
    yield switch
    switch.stop()


class Line:
    """The app side: pool + Acd + outbound server whose handler puts every call into a queue."""

    def __init__(self, fs, prompts, skill="consult"):
        self.fs = fs
        self.pool = SwitchPool([EslEndpoint("127.0.0.1", fs.esl_port, "ClueCon")])
        self.pool.start()
        assert self.pool.all()[0].wait_connected(5)
        self.acd = Acd(self.pool, settings=AcdSettings(reconcile_interval=3600), prompts=prompts)
        self.acd.start()
        self.outcomes = {}
        self.skill = skill
        self.server = OutboundServer("127.0.0.1", 0, self.handle)
        self.server.start()

    def handle(self, session):
        try:
            session.answer()
        except CallHangup:
            self.outcomes[session.uuid] = None  # gone before reaching the queue
            return
        outcome = self.acd.enter_queue(session, self.skill)
        self.outcomes[session.uuid] = outcome
        if outcome.outcome != "transferred":  # a transferred caller is no longer ours to hang up
            session.hangup()

    def call(self, caller="13800138000", script=None):
        return self.fs.place_call(self.server.address, caller=caller, destination="12345", script=script or [])

    def close(self):
        self.server.stop(drain_timeout=2)
        self.acd.stop()
        self.pool.stop()


@pytest.fixture
def line(db, fs, prompts):
    made = []

    def build(**kw):
        made.append(Line(fs, prompts, **kw))
        return made[-1]

    yield build
    for item in made:
        item.close()


def agents_for(fs, n, skill="consult", **phone):
    made = []
    for i in range(1, n + 1):
        ext = f"{1000 + i}"
        made.append(create_agent(make_user(f"{8000 + i}", ext), {skill: 5}))
        fs.add_agent(ext, **phone)
    return made


def go_ready(acd, agents):
    for agent in agents:
        acd.transition(agent.id, "login")
        acd.transition(agent.id, "ready")


def test_call_is_offered_and_bridged_through_fake_switch(db, fs, line):
    """Should ring the agent's phone with the caller's number, bridge, and end in available/idle."""
    create_queue("consult", "consult", wrap_up_seconds=0, announce_interval=0)
    agents = agents_for(fs, 1, answer_delay=1, talk_seconds=2)
    app = line()
    go_ready(app.acd, agents)
    assert app.acd.agents[agents[0].id].registered  # reconciled from sofia status
    call = app.call(caller="13911112222")
    call.wait_ended(timeout=10)
    outcome = app.outcomes[call.uuid]
    assert outcome.outcome == "answered" and outcome.agent_id == agents[0].id
    assert call.bridged_to and call.bridged_to[0].caller_number == "13911112222"
    wait_for(lambda: app.acd.agents[agents[0].id].state == "idle", what="agent idle")
    agent = Agent.get_by_id(agents[0].id)
    assert (agent.status, agent.calls_today) == ("available", 1)
    assert QueueEntry.get(QueueEntry.call_uuid == call.uuid).state == "bridged"
    # The caller heard the answering agent's operator number before the conversation (自动报工号).
    assert any(app == "playback" and arg.endswith("operator_8001.wav") for app, arg in call.executed)


def test_an_offer_that_fails_at_once_is_not_retried_in_a_tight_loop(db, fs, line):
    """Should back off when every offer fails before a phone could ring (here a phone that answers busy at
    once), keep the caller in the queue, and still overflow the caller at the queue's maximum wait."""
    create_queue("consult", "consult", wrap_up_seconds=0, announce_interval=0, max_wait=4,
                 overflow_kind="callback")
    agents = agents_for(fs, 1, answer="busy", answer_delay=0)
    app = line()
    go_ready(app.acd, agents)
    call = app.call(caller="13733334444")
    wait_for(lambda: call.uuid in app.outcomes, timeout=20, what="the overflow")
    assert app.outcomes[call.uuid].outcome == "callback"
    # Without the back-off the busy phone is offered again every few milliseconds (hundreds of times).
    assert 2 <= fs.agents["1001"].offered <= 5
    assert app.acd.agents[agents[0].id].state == "idle" and app.acd.stuck_agents() == []


def test_maximum_wait_holds_while_offers_keep_ringing_out(db, fs, line):
    """Should overflow the caller at the queue's maximum wait even though a free agent keeps being offered
    and keeps letting the phone ring out (no break after a missed call in this queue)."""
    # Each offer rings 150 simulated seconds, 1.5 s here; the maximum wait is 3 s.
    create_queue("consult", "consult", wrap_up_seconds=0, announce_interval=0, max_wait=3, ring_timeout=150,
                 no_answer_break=False, overflow_kind="callback")
    agents = agents_for(fs, 1, answer="timeout")
    app = line()
    go_ready(app.acd, agents)
    call = app.call(caller="13722225555")
    wait_for(lambda: call.uuid in app.outcomes, timeout=20, what="the overflow")
    assert app.outcomes[call.uuid].outcome == "callback"
    assert fs.agents["1001"].offered <= 3
    wait_for(lambda: app.acd.agents[agents[0].id].state == "idle", what="the agent free")


def test_ring_all_announces_the_answering_agents_operator_number(db, fs, line):
    """Should ring every free agent at once and play the number of the one who answered (自动报工号)."""
    create_queue("consult", "consult", strategy="ring_all", wrap_up_seconds=0, announce_interval=0)
    agents = agents_for(fs, 3, answer_delay=1, talk_seconds=30)
    fs.agents["1001"].answer = "timeout"
    fs.agents["1002"].answer_delay = 3
    app = line()
    go_ready(app.acd, agents)
    call = app.call()
    call.wait_ended(timeout=15)
    assert app.outcomes[call.uuid].agent_id == agents[2].id
    assert {a.number: a.offered for a in fs.agents.values()} == {"1001": 1, "1002": 1, "1003": 1}
    played = [arg for app_name, arg in call.executed if app_name == "playback" and "operator_" in arg]
    assert played == [played[0]] and played[0].endswith("operator_8003.wav")
    wait_for(lambda: not app.acd.stuck_agents() and all(
        app.acd.agents[a.id].state == "idle" for a in agents), what="every agent free")


def test_ring_all_with_two_phones_answering_at_once_credits_only_the_bridged_agent(db, fs, line):
    """Should count the call, the wrap-up and the queue entry for the agent FreeSWITCH bridged, and put the
    other phone that answered too (hung up with LOSE_RACE) straight back to idle with no call counted."""
    create_queue("consult", "consult", strategy="ring_all", wrap_up_seconds=30, announce_interval=0)
    agents = agents_for(fs, 2, answer_delay=1, talk_seconds=None)  # both answer in the same instant
    app = line()
    go_ready(app.acd, agents)
    call = app.call()
    fs.wait_for(lambda: call.bridged_to, 10, "the caller bridged")
    winner_ext = call.bridged_to[0].agent.number
    by_ext = {a.extension: a.id for a in agents}
    winner, loser = by_ext[winner_ext], next(aid for ext, aid in by_ext.items() if ext != winner_ext)
    wait_for(lambda: app.acd.agents[loser].state == "idle", what="the other phone free")
    loser_leg = fs.agents[next(ext for ext in by_ext if ext != winner_ext)].channels[0]
    assert loser_leg.answered_us and loser_leg.hangup_cause == "LOSE_RACE"  # it had answered as well
    assert app.acd.agents[winner].state == "in_call"
    call.hangup()
    wait_for(lambda: app.acd.agents[winner].state == "wrap_up", what="the bridged agent's wrap-up")
    assert (app.acd.agents[winner].calls_today, app.acd.agents[loser].calls_today) == (1, 0)
    assert app.acd.agents[loser].state == "idle" and app.acd.agents[loser].status == "available"
    entry = QueueEntry.get(QueueEntry.call_uuid == call.uuid)
    assert entry.agent_id == winner and entry.agent_leg_uuid == call.bridged_to[0].uuid
    assert app.acd.stuck_agents() == []


def test_ring_progressively_adds_agents_and_each_rings_its_full_time(db, fs, line):
    """Should ring the first agent, add the next after the delay, keep each ringing for the ring timeout,
    and announce the operator number of whoever answers."""
    create_queue("consult", "consult", strategy="ring_progressively", ring_timeout=6, wrap_up_seconds=0,
                 announce_interval=0)
    agents = agents_for(fs, 3, talk_seconds=30)
    fs.agents["1001"].answer = "timeout"
    fs.agents["1002"].answer = "timeout"
    fs.agents["1003"].answer_delay = 5  # added at 2 x 5 s = 10 s, after the first two rang out at 6 and 11 s
    app = line()
    app.acd.settings.progressive_delay = 5
    go_ready(app.acd, agents)
    call = app.call()
    call.wait_ended(timeout=20)
    assert app.outcomes[call.uuid].agent_id == agents[2].id
    bridge = [arg for app_name, arg in call.executed if app_name == "bridge"][0]
    assert "leg_timeout=6," in bridge and "leg_delay_start=5,leg_timeout" not in bridge
    assert "leg_timeout=11" in bridge and "leg_timeout=16" in bridge and "originate_timeout=16" in bridge
    assert any(app_name == "playback" and arg.endswith("operator_8003.wav") for app_name, arg in call.executed)


def test_ring_timeout_moves_to_next_agent_over_the_wire(db, fs, line):
    """Should let the first phone ring out, put that agent on break and bridge the second."""
    create_queue("consult", "consult", ring_timeout=5, wrap_up_seconds=0, announce_interval=0)
    agents = agents_for(fs, 2, answer_delay=1, talk_seconds=1)
    fs.agents["1001"].answer = "timeout"
    app = line()
    go_ready(app.acd, agents)
    call = app.call()
    call.wait_ended(timeout=15)
    assert app.outcomes[call.uuid].agent_id == agents[1].id
    first = app.acd.agents[agents[0].id]
    assert first.status == "on_break" and first.state == "idle"


def test_unregistered_agent_not_offered_over_the_wire(db, fs, line):
    """Should never ring an agent after sofia::unregister, and use them again after sofia::register."""
    create_queue("consult", "consult", wrap_up_seconds=0, announce_interval=0)
    agents = agents_for(fs, 2, answer_delay=0.5, talk_seconds=1)
    app = line()
    go_ready(app.acd, agents)
    fs.set_registered("1001", False)
    wait_for(lambda: not app.acd.agents[agents[0].id].registered, what="unregistered")
    for _ in range(2):
        call = app.call()
        call.wait_ended(timeout=10)
        assert app.outcomes[call.uuid].agent_id == agents[1].id
    assert fs.agents["1001"].offered == 0
    fs.set_registered("1001", True)
    wait_for(lambda: app.acd.agents[agents[0].id].registered, what="registered again")


def test_caller_hangs_up_while_agent_phone_rings_over_the_wire(db, fs, line):
    """Should free the ringing agent when the caller hangs up, and list the caller for call-back."""
    create_queue("consult", "consult", ring_timeout=30, wrap_up_seconds=0, announce_interval=0)
    agents = agents_for(fs, 1)
    fs.agents["1001"].answer = "timeout"
    app = line()
    go_ready(app.acd, agents)
    call = app.call(caller="13722223333", script=[WaitFor("bridge"), Wait(2), Hangup()])
    call.wait_ended(timeout=10)
    wait_for(lambda: call.uuid in app.outcomes, what="outcome")
    assert app.outcomes[call.uuid].outcome == "abandoned"
    wait_for(lambda: app.acd.agents[agents[0].id].state == "idle", what="agent released")
    assert app.acd.agents[agents[0].id].status == "available"
    assert missed_of(call.uuid).reason == "abandoned"
    assert app.acd.stuck_agents() == []


def test_callback_key_over_the_wire(db, fs, line):
    """Should break the music when the caller presses the call-back key and save the request."""
    create_queue("consult", "consult", announce_interval=0)
    app = line()
    call = app.call(caller="13633334444", script=[WaitFor("playback", arg_contains="local_stream"),
                                                   Press("1", wait=False)])
    call.wait_ended(timeout=10)
    assert app.outcomes[call.uuid].outcome == "callback"
    assert missed_of(call.uuid).reason == "callback_request"


def test_fifty_callers_ten_agents_over_the_wire(db, fs, line):
    """Should leave no agent stuck, and every one of 50 callers served, overflowed or abandoned."""
    create_queue("consult", "consult", ring_timeout=10, max_wait=120, overflow_kind="callback",
                 wrap_up_seconds=0, announce_interval=0, no_answer_break=False)
    agents = agents_for(fs, 10, answer_delay=0.5, talk_seconds=30)
    fs.agents["1004"].answer = "timeout"
    fs.agents["1008"].answer = "reject"
    app = line()
    go_ready(app.acd, agents)
    calls = []
    for i in range(50):
        script = [WaitFor("playback", arg_contains="local_stream"), Hangup()] if i in (27, 41) else []
        calls.append(app.call(caller=f"1380000{i:04d}", script=script))
    for call in calls:
        call.wait_ended(timeout=60)
    wait_for(lambda: len(app.outcomes) == 50, timeout=20, what=f"all outcomes ({len(app.outcomes)})")
    outcomes = [o.outcome for o in app.outcomes.values()]
    assert set(outcomes) <= {"answered", "abandoned", "callback"}
    assert outcomes.count("answered") >= 48
    wait_for(lambda: all(a.state == "idle" for a in app.acd.agents.values()), timeout=10, what="agents idle")
    assert app.acd.stuck_agents() == []
    assert {e.state for e in QueueEntry.select()} <= {"bridged", "abandoned", "overflowed", "callback_requested"}
    assert app.acd.agents[agents[3].id].calls_today == 0


def test_agent_controls_over_the_wire(db, fs, line):
    """Should hold/resume and hang up the held call over ESL, refusing another agent's call and repeats."""
    create_queue("consult", "consult", wrap_up_seconds=0, announce_interval=0)
    agents = agents_for(fs, 2, answer_delay=0.5, talk_seconds=None)
    app = line()
    controls = AgentControls(app.acd)
    controls.ready(agents[0].id)
    call = app.call()
    agent = wait_for(lambda: app.acd.agents[agents[0].id].state == "in_call" and app.acd.agents[agents[0].id],
                     what="in call")
    with pytest.raises(ControlRefused, match="another agent"):
        controls.held_call(agents[1].id, agent.call_uuid)
    controls.hold(agents[0].id, call.uuid)
    assert f"uuid_hold {agent.leg_uuid}" in fs.api_log
    with pytest.raises(ControlRefused, match="already on hold"):
        controls.hold(agents[0].id, call.uuid)
    controls.resume(agents[0].id, call.uuid)
    assert f"uuid_hold off {agent.leg_uuid}" in fs.api_log
    controls.hangup(agents[0].id, call.uuid)
    call.wait_ended(timeout=10)
    wait_for(lambda: app.acd.agents[agents[0].id].state == "idle", what="idle after hang-up")
    with pytest.raises(ControlRefused, match="not in a call"):
        controls.hangup(agents[0].id, call.uuid)
    actions = [a.action for a in SupervisorAction.select().order_by(SupervisorAction.id)]
    assert actions == ["ready", "hold", "resume", "hangup"]


def test_blind_transfer_to_unknown_target_is_refused(db, fs, line):
    """Should refuse a transfer to an agent, queue or department that does not exist."""
    create_queue("consult", "consult", wrap_up_seconds=0, announce_interval=0)
    agents = agents_for(fs, 1, answer_delay=0.5, talk_seconds=None)
    app = line()
    controls = AgentControls(app.acd)
    controls.ready(agents[0].id)
    call = app.call()
    wait_for(lambda: app.acd.agents[agents[0].id].state == "in_call", what="in call")
    for kind, target in (("agent", "9999"), ("queue", "nosuch"), ("department", "nosuch"), ("number", "abc"),
                         ("fax", "1")):
        with pytest.raises(ControlRefused):
            controls.blind_transfer(agents[0].id, call.uuid, kind, target)
    controls.to_ivr(agents[0].id, call.uuid, "satisfaction")
    assert f"uuid_setvar {call.uuid} hotline_ivr_node satisfaction" in fs.api_log
    assert f"uuid_transfer {call.uuid} 12345 XML default" in fs.api_log


def test_team_lead_actions_over_the_wire(db, fs, line):
    """Should eavesdrop/whisper/barge from the lead's phone, force-release, and refuse non-leads; all logged."""
    create_queue("consult", "consult", wrap_up_seconds=0, announce_interval=0)
    agents = agents_for(fs, 1, answer_delay=0.5, talk_seconds=None)
    lead_user = make_user("9001", "1900", roles="team_lead", name="班长")
    create_agent(lead_user, {"consult": 1})
    fs.add_agent("1900", answer_delay=0.2)
    app = line()
    app.acd.load()
    app.acd.reconcile(app.pool.all()[0].name)
    supervisor = Supervisor(app.acd)
    with pytest.raises(NotTeamLead):
        supervisor.monitor(agents[0].user, agents[0].id)
    go_ready(app.acd, agents[:1])
    call = app.call()
    wait_for(lambda: app.acd.agents[agents[0].id].state == "in_call", what="in call")
    leg = app.acd.agents[agents[0].id].leg_uuid
    supervisor.monitor(lead_user, agents[0].id)
    fs.wait_for(lambda: fs.eavesdrops and fs.eavesdrops[0].active, 5, "eavesdrop")
    assert fs.eavesdrops[0].target.uuid == leg
    supervisor.whisper(lead_user, agents[0].id)
    supervisor.barge(lead_user, agents[0].id)
    fs.wait_for(lambda: len(fs.eavesdrops) == 3, 5, "three eavesdrops")
    log_lines = [c for c in fs.api_log if "eavesdrop" in c]
    assert any("eavesdrop_whisper_aleg=true" in c for c in log_lines)
    assert any("eavesdrop_bridge_aleg=true" in c for c in log_lines)
    supervisor.force_release(lead_user, agents[0].id)
    call.wait_ended(timeout=10)
    wait_for(lambda: app.acd.agents[agents[0].id].state == "idle", what="released")
    supervisor.set_break(lead_user, agents[0].id, "培训")
    assert app.acd.agents[agents[0].id].status == "on_break"
    supervisor.force_logout(lead_user, agents[0].id)
    assert app.acd.agents[agents[0].id].status == "logged_out"
    rows = [(a.action, a.actor_label, a.ok) for a in SupervisorAction.select().order_by(SupervisorAction.id)]
    assert rows[0] == ("monitor", "8001", False)
    assert [r[0] for r in rows[1:]] == ["monitor", "whisper", "barge", "force_release", "set_break",
                                        "force_logout"]
    assert all(r[1] == "9001" and r[2] for r in rows[1:])


def test_outbound_call_rings_agent_phone_first(db, fs, line):
    """Should ring the agent's own phone first, then the citizen, and track the agent through the call."""
    create_queue("consult", "consult", wrap_up_seconds=0, announce_interval=0)
    agents = agents_for(fs, 1, answer_delay=0.5)
    citizen = fs.add_agent("13800001111", answer_delay=0.5, talk_seconds=None)
    app = line()
    controls = AgentControls(app.acd, outbound_template="sofia/gateway/carrier/{number}")
    controls.login(agents[0].id)
    leg = controls.dial(agents[0].id, "13800001111")
    command = fs.wait_for(lambda: next((c for c in fs.api_log if leg in c), None), 5, "originate")
    assert "}user/1001 &bridge(" in command and command.endswith("sofia/gateway/carrier/13800001111)")
    wait_for(lambda: app.acd.agents[agents[0].id].state == "in_call", what="agent in call")
    fs.wait_for(lambda: citizen.offered == 1, 5, "citizen rung")
    assert app.acd.agents[agents[0].id].call_direction == "outbound"
    controls.hangup(agents[0].id, leg)
    wait_for(lambda: app.acd.agents[agents[0].id].state == "idle", timeout=10, what="idle after outbound call")
    assert app.acd.agents[agents[0].id].status == "on_break"  # dialled while not ready, stays not ready
    with pytest.raises(ControlRefused, match="not a phone number"):
        controls.dial(agents[0].id, "12;rm -rf")


def test_intercept_call_agent_and_help_over_the_wire(db, fs, line):
    """Should let a team lead take a call over, ring an agent, and answer a help request by barging in."""
    create_queue("consult", "consult", wrap_up_seconds=0, announce_interval=0)
    agents = agents_for(fs, 1, answer_delay=0.5, talk_seconds=None)
    lead_user = make_user("9001", "1900", roles="team_lead", name="班长")
    fs.add_agent("1900", answer_delay=0.2, talk_seconds=None)
    app = line()
    supervisor = Supervisor(app.acd)
    controls = AgentControls(app.acd)
    controls.ready(agents[0].id)
    call = app.call()
    wait_for(lambda: app.acd.agents[agents[0].id].state == "in_call", what="in call")
    controls.request_help(agents[0].id, "市民情绪激动")
    with pytest.raises(ControlRefused, match="already waiting"):
        controls.request_help(agents[0].id)
    supervisor.answer_help(lead_user, agents[0].id)
    fs.wait_for(lambda: fs.eavesdrops, 5, "barge for help")
    assert app.acd.agents[agents[0].id].help_requested_at is None
    with pytest.raises(ControlRefused, match="not asked for help"):
        supervisor.answer_help(lead_user, agents[0].id)
    supervisor.intercept(lead_user, agents[0].id)
    fs.wait_for(lambda: any(f"&intercept({call.uuid})" in c for c in fs.api_log), 5, "intercept originate")
    supervisor.force_release(lead_user, agents[0].id)
    wait_for(lambda: app.acd.agents[agents[0].id].state == "idle", timeout=10, what="agent free")
    supervisor.call_agent(lead_user, agents[0].id)
    fs.wait_for(lambda: any("&bridge(user/1001)" in c for c in fs.api_log), 5, "call agent originate")
    actions = [a.action for a in SupervisorAction.select().where(SupervisorAction.actor == lead_user.id)
               .order_by(SupervisorAction.id)]
    assert actions == ["answer_help", "intercept", "force_release", "call_agent"]


def test_two_freeswitch_servers(db, tmp_path, prompts):
    """Should serve callers on two FreeSWITCH servers, offering each only agents reachable from its server."""
    fs_a = FakeSwitch(password="ClueCon", record_dir=tmp_path / "a", time_scale=0.01, hostname="fs-a")
    fs_b = FakeSwitch(password="ClueCon", record_dir=tmp_path / "b", time_scale=0.01, hostname="fs-b")
    fs_a.start()
    fs_b.start()
    pool = SwitchPool([EslEndpoint("127.0.0.1", fs_a.esl_port, "ClueCon"),
                       EslEndpoint("127.0.0.1", fs_b.esl_port, "ClueCon")])
    server = None
    try:
        create_queue("consult", "consult", wrap_up_seconds=0, announce_interval=0, max_wait=3,
                     overflow_kind="voicemail")
        agent_a = create_agent(make_user("8001", "1001"), {"consult": 5})
        agent_b = create_agent(make_user("8002", "1002"), {"consult": 9})
        fs_a.add_agent("1001", answer_delay=0.5, talk_seconds=1)
        fs_b.add_agent("1002", answer_delay=0.5, talk_seconds=1)
        pool.start()
        assert all(c.wait_connected(5) for c in pool.all())
        name_a, name_b = (c.name for c in pool.all())
        # Configured "off": neither server's agents are offered to the other's callers (no learned route).
        acd = Acd(pool, settings=AcdSettings(reconcile_interval=3600,
                                             cross_server_dial={name_a: "off", name_b: "off"}), prompts=prompts)
        acd.start()
        assert (acd.agents[agent_a.id].server, acd.agents[agent_b.id].server) == (name_a, name_b)
        outcomes = {}

        def handle(session):
            outcomes[session.uuid] = acd.enter_queue(session, "consult")

        server = OutboundServer("127.0.0.1", 0, handle)
        server.start()
        for agent in (agent_a, agent_b):
            acd.transition(agent.id, "login")
            acd.transition(agent.id, "ready")
        call_b = fs_b.place_call(server.address, caller="13600000002")
        call_a = fs_a.place_call(server.address, caller="13600000001")
        call_a.wait_ended(timeout=15)
        call_b.wait_ended(timeout=15)
        assert outcomes[call_a.uuid].agent_id == agent_a.id
        assert outcomes[call_b.uuid].agent_id == agent_b.id
        assert fs_a.agents["1001"].offered == 1 and fs_b.agents["1002"].offered == 1
        assert QueueEntry.get(QueueEntry.call_uuid == call_a.uuid).server == name_a
        assert QueueEntry.get(QueueEntry.call_uuid == call_b.uuid).server == name_b
        # Agent A busy elsewhere: a caller on A is not offered agent B (no cross-server route) and overflows.
        acd.transition(agent_a.id, "not_ready", reason="meeting")
        call = fs_a.place_call(server.address, caller="13600000003")
        call.wait_ended(timeout=15)
        assert outcomes[call.uuid].outcome == "busy" and fs_b.agents["1002"].offered == 1
        # With a route between the servers configured (here a gateway), agent B becomes reachable from A.
        acd.settings.cross_server_dial = {name_b: "sofia/gateway/fsb/{extension}"}
        # The gateway's far end as seen from A (not a registration on A).
        fs_a.add_agent("1002", registered=False, answer_delay=0.5, talk_seconds=1)
        call = fs_a.place_call(server.address, caller="13600000004")
        call.wait_ended(timeout=15)
        assert outcomes[call.uuid].agent_id == agent_b.id and acd.agents[agent_b.id].server == name_b
        assert any("sofia/gateway/fsb/1002" in arg for app_name, arg in call.executed if app_name == "bridge")
        acd.stop()
    finally:
        if server is not None:
            server.stop(drain_timeout=2)
        pool.stop()
        fs_a.stop()
        fs_b.stop()


class TwoServers:
    """Two fake FreeSWITCH servers on one network (each reaches the other's internal profile), one app with
    both in its pool; every call on either is put into the queue `consult`."""

    def __init__(self, tmp_path, prompts, **settings):
        self.fs_a = FakeSwitch(password="ClueCon", record_dir=tmp_path / "a", time_scale=0.01, hostname="fs-a")
        self.fs_b = FakeSwitch(password="ClueCon", record_dir=tmp_path / "b", time_scale=0.01, hostname="fs-b")
        for switch in (self.fs_a, self.fs_b):
            switch.start()
        self.fs_a.reach(self.fs_b)
        self.pool = SwitchPool([EslEndpoint("127.0.0.1", self.fs_a.esl_port, "ClueCon"),
                                EslEndpoint("127.0.0.1", self.fs_b.esl_port, "ClueCon")])
        self.pool.start()
        assert all(c.wait_connected(5) for c in self.pool.all())
        self.name_a, self.name_b = (c.name for c in self.pool.all())
        self.acd = Acd(self.pool, settings=AcdSettings(reconcile_interval=3600, **settings), prompts=prompts)
        self.acd.start()
        self.outcomes = {}
        self.server = OutboundServer("127.0.0.1", 0, self.handle)
        self.server.start()

    def handle(self, session):
        self.outcomes[session.uuid] = self.acd.enter_queue(session, "consult")
        session.hangup()

    def close(self):
        self.server.stop(drain_timeout=2)
        self.acd.stop()
        self.pool.stop()
        self.fs_a.stop()
        self.fs_b.stop()


@pytest.fixture
def two_servers(db, tmp_path, prompts):
    made = []

    def build(**settings):
        made.append(TwoServers(tmp_path, prompts, **settings))
        return made[-1]

    yield build
    for item in made:
        item.close()


def _agent_on_b(two, talk_seconds=None, answer=True, answer_delay=0.5):
    """Queue `consult` (callers on A overflow to voicemail after 3 s) and one ready agent whose phone,
    1002, is registered on server B only."""
    create_queue("consult", "consult", wrap_up_seconds=0, announce_interval=0, max_wait=3,
                 ring_timeout=20, overflow_kind="voicemail")
    agent = create_agent(make_user("8002", "1002"), {"consult": 5})
    two.fs_b.add_agent("1002", answer=answer, answer_delay=answer_delay, talk_seconds=talk_seconds)
    two.acd.load()
    two.acd.reconcile(two.name_b)
    assert two.acd.agents[agent.id].server == two.name_b
    two.acd.transition(agent.id, "login")
    two.acd.transition(agent.id, "ready")
    return agent


def test_caller_on_one_server_reaches_an_agent_on_the_other_by_the_learned_route(two_servers):
    """Should offer a caller on server A the agent registered on B with no configuration: the app learns B's
    hotline_peer_uri, A dials it as hotline-peer with its own ${peer_password} (the app never sees it), B
    rings the phone; the agent follows the A-side leg through ringing, in call and back to idle, and a
    reconciliation of either server during the call releases nothing."""
    two = two_servers()
    assert two.acd.peer_routes == {two.name_a: f"sofia/internal/{{extension}}@{two.fs_a.sip_address}",
                                   two.name_b: f"sofia/internal/{{extension}}@{two.fs_b.sip_address}"}
    agent = _agent_on_b(two, answer_delay=1.0)
    phone = two.fs_b.agents["1002"]
    sent, dial_string = [], two.acd.dial_string
    two.acd.dial_string = lambda waiter, offer: sent.append(dial_string(waiter, offer)) or sent[-1]
    call = two.fs_a.place_call(two.server.address, caller="13600000011")
    wait_for(lambda: two.acd.agents[agent.id].state == "ringing", what="agent ringing")
    leg = two.acd.agents[agent.id].leg_uuid
    assert two.acd.agents[agent.id].call_server == two.name_a
    (dial,) = sent
    assert dial.endswith(f"sofia/internal/1002@{two.fs_b.sip_address}")
    assert "sip_auth_username=hotline-peer" in dial and "sip_auth_password=${peer_password}" in dial
    # Server A fills the password in from its own global when the bridge runs.
    (executed,) = [arg for app_name, arg in call.executed if app_name == "bridge"]
    assert "sip_auth_password=change-this-peer-password" in executed
    wait_for(lambda: two.acd.agents[agent.id].state == "in_call", what="agent in call")
    assert two.fs_a.find_channel(leg).get_var("sip_auth_password") == "change-this-peer-password"
    assert phone.answered_calls and phone.current.caller_number == "13600000011"
    for server in (two.name_a, two.name_b):
        two.acd.reconcile(server)
    assert two.acd.agents[agent.id].state == "in_call" and two.acd.agents[agent.id].leg_uuid == leg
    phone.hangup()  # the agent hangs up on B: B's half ends, then A's leg, then the caller's bridge
    wait_for(lambda: two.acd.agents[agent.id].state == "idle", timeout=10, what="agent idle again")
    call.wait_ended(timeout=10)
    assert two.outcomes[call.uuid].outcome == "answered" and two.outcomes[call.uuid].agent_id == agent.id
    entry = QueueEntry.get(QueueEntry.call_uuid == call.uuid)
    assert entry.server == two.name_a and entry.agent_leg_uuid == leg and entry.talk_seconds is not None
    assert two.acd.stuck_agents() == [] and not two.fs_b.channels and not two.fs_a.channels


def test_caller_hanging_up_while_the_far_phone_rings_frees_the_agent(two_servers):
    """Should cancel the far server's half when the caller on A hangs up during the ring, and free the agent."""
    two = two_servers()
    agent = _agent_on_b(two, answer=None)  # the phone rings until cancelled
    call = two.fs_a.place_call(two.server.address, caller="13600000012")
    wait_for(lambda: two.acd.agents[agent.id].state == "ringing", what="agent ringing")
    two.fs_b.agents["1002"].wait_ringing()
    call.hangup()
    call.wait_ended(timeout=10)
    wait_for(lambda: two.acd.agents[agent.id].state == "idle", timeout=10, what="agent free")
    two.fs_b.wait_for(lambda: not two.fs_b.channels, 5, "B's legs gone")
    assert two.fs_b.agents["1002"].channels[0].hangup_cause == "ORIGINATOR_CANCEL"
    wait_for(lambda: call.uuid in two.outcomes, timeout=10, what="outcome")
    assert two.outcomes[call.uuid].outcome == "abandoned" and two.acd.stuck_agents() == []


def test_a_wrong_peer_password_is_refused_and_the_agent_freed(two_servers):
    """Should not ring the phone when the far server refuses the calling server's peer password (servers
    configured with different ones): the offer fails, the agent is free, the caller is served otherwise."""
    two = two_servers()
    two.fs_b.global_vars["peer_password"] = "another-password"
    agent = _agent_on_b(two)
    call = two.fs_a.place_call(two.server.address, caller="13600000013", script=[Wait(200), Hangup()])
    call.wait_ended(timeout=15)
    wait_for(lambda: call.uuid in two.outcomes, timeout=10, what="outcome")
    assert two.fs_b.agents["1002"].offered == 0 and not two.fs_b.channels
    assert any(ch.hangup_cause == "CALL_REJECTED" for ch in two.fs_a.gone.values() if ch.name.startswith("sofia/"))
    assert two.acd.agents[agent.id].state == "idle" and two.acd.stuck_agents() == []


def test_configured_route_wins_and_production_refuses_the_placeholder_peer_password(two_servers):
    """Should use HOTLINE_CROSS_SERVER_DIAL's template for a server instead of the learned one; in production,
    learn no route from a server whose peer_password is still the shipped placeholder."""
    two = two_servers(refuse_placeholder_peer=True)
    assert two.acd.peer_routes == {}
    assert two.acd.cross_server_route(two.name_b) is None
    two.fs_b.global_vars["peer_password"] = two.fs_a.global_vars["peer_password"] = "site-secret-1"
    two.acd.reconcile(two.name_b)
    assert two.acd.cross_server_route(two.name_b) == f"sofia/internal/{{extension}}@{two.fs_b.sip_address}"
    two.acd.settings.cross_server_dial = {two.name_b: "sofia/gateway/fsb/{extension}"}
    assert two.acd.cross_server_route(two.name_b) == "sofia/gateway/fsb/{extension}"
    two.fs_b.global_vars["hotline_peer_uri"] = ""  # a server that does not tell (older configuration)
    two.acd.settings.cross_server_dial = {}
    two.acd.reconcile(two.name_b)
    assert two.acd.cross_server_route(two.name_b) is None


def test_blind_transfer_to_agent_and_three_way_over_the_wire(db, fs, line):
    """Should hand the caller to another agent's phone (releasing the first agent), and keep an agent in a
    three-way conference busy until their own leg hangs up."""
    create_queue("consult", "consult", wrap_up_seconds=0, announce_interval=0)
    agents = agents_for(fs, 2, answer_delay=0.5, talk_seconds=None)
    fs.add_agent("13500000000", answer_delay=0.5, talk_seconds=None)
    app = line()
    controls = AgentControls(app.acd, outbound_template="sofia/gateway/carrier/{number}")
    controls.ready(agents[0].id)
    call = app.call()
    wait_for(lambda: app.acd.agents[agents[0].id].state == "in_call", what="in call")
    controls.blind_transfer(agents[0].id, call.uuid, "agent", "1002")
    assert any(c.startswith(f"uuid_transfer {call.uuid} 1002 XML default") for c in fs.api_log)
    wait_for(lambda: app.acd.agents[agents[0].id].state == "idle", timeout=10, what="first agent released")
    fs.wait_for(lambda: fs.agents["1002"].offered == 1, 5, "second agent rung")
    gevent.sleep(0.1)
    assert call.hangup_cause is None  # the transferred caller is still on the line
    call.hangup()
    wait_for(lambda: call.uuid in app.outcomes, timeout=10, what="outcome")
    assert app.outcomes[call.uuid].outcome == "transferred"

    call2 = app.call(caller="13400000000")
    wait_for(lambda: app.acd.agents[agents[0].id].state == "in_call", what="second call")
    leg = app.acd.agents[agents[0].id].leg_uuid
    controls.three_way(agents[0].id, call2.uuid, "number", "13500000000")
    room = fs.wait_for(lambda: next((n for n, c in fs.conferences.items() if len(c.members) == 3), None), 10,
                       "three members")
    assert room.startswith(f"acd3w_{agents[0].id}_")
    # The profile freeswitch-conf ships (conference.conf.xml), not FreeSWITCH's undefined "default".
    assert fs.conferences[room].profile == "hotline"
    assert all(c.endswith("@hotline)") for c in fs.api_log if "&conference(" in c)
    # The caller's own bridge has ended (they are in the conference); the agent must still count as busy.
    wait_for(lambda: app.acd.waiters[call2.uuid].step == "after bridge", what="caller's bridge over")
    assert app.acd.agents[agents[0].id].state == "in_call"
    assert app.acd.stuck_agents() == []
    fs.hangup(fs.channels[leg], "NORMAL_CLEARING", by="agent")
    wait_for(lambda: app.acd.agents[agents[0].id].state == "idle", timeout=10, what="agent free after 3-way")
