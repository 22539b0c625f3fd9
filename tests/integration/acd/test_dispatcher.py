"""The dispatcher over the in-process doubles: offers, rotation, unregistered phones, hang-ups, overflow,
call-back, restart reconciliation, events out of order, and many callers leaving no agent stuck."""
from __future__ import annotations

import datetime as dt

import gevent
import pytest

from acd.dispatcher import create_queue
from acd.legs import AgentCall
from acd.models import Agent, AgentStateLog, Queue, QueueEntry, utcnow
from switch import events as sw
from tests.integration.acd.conftest import wait_for
from tests.integration.acd.doubles import Session, missed_of


def ready_all(acd, agents):
    for agent in agents:
        acd.transition(agent.id, "login")
        acd.transition(agent.id, "ready")


def serve(acd, session, skill="consult"):
    return gevent.spawn(acd.enter_queue, session, skill)


def test_caller_is_bridged_to_agent_with_operator_number(make_acd, setup_agents, queue, world):
    """Should ring the agent with the caller's number, announce the operator number, bridge, then wrap up."""
    agents = setup_agents(1)
    acd = make_acd()
    ready_all(acd, agents)
    session = Session(world, caller="13900001111")
    outcome = serve(acd, session).get(timeout=5)
    assert outcome.outcome == "answered" and outcome.agent_id == agents[0].id
    bridge = [arg for app, arg in session.executed if app == "bridge"][0]
    assert "origination_caller_id_number=13900001111" in bridge
    assert "leg_timeout=20" in bridge and "user/1001" in bridge
    # 自动报工号: the agent's leg names its prompt on the caller when it answers; the caller plays it.
    leg = QueueEntry.get(QueueEntry.call_uuid == session.uuid).agent_leg_uuid
    assert f"api_on_answer=uuid_setvar {session.uuid} acd_operator_prompt_{leg} " in bridge
    assert "operator_8001.wav" in bridge
    sets = dict(arg.split("=", 1) for app, arg in session.executed if app == "set")
    assert sets["bridge_pre_execute_app"] == "playback"
    # stored literally (uuid_setvar: `set` would expand it to nothing, and the bridge refuses to copy an
    # _aleg_ variant holding ${...}), expanded when the bridge runs it
    assert f"uuid_setvar {session.uuid} bridge_pre_execute_data ${{acd_operator_prompt_${{bridge_uuid}}}}" \
        in world.commands
    agent = Agent.get_by_id(agents[0].id)
    assert (agent.status, agent.state) == ("available", "idle")  # wrap-up of 0 s
    assert agent.calls_today == 1
    entry = QueueEntry.get(QueueEntry.call_uuid == session.uuid)
    assert entry.state == "bridged" and entry.answered_at is not None and entry.talk_seconds is not None
    events = [row.event for row in AgentStateLog.select().where(AgentStateLog.agent == agent.id)
              .order_by(AgentStateLog.id)]
    assert events == ["login", "ready", "reserve", "ring", "answer", "call_end", "wrap_up_done"]


def test_wrap_up_time_follows_call(make_acd, setup_agents, db, world):
    """Should keep the agent in after-call work for the queue's wrap-up time, then make them available."""
    create_queue("consult", "consult", wrap_up_seconds=1, announce_interval=0)
    agents = setup_agents(1)
    acd = make_acd()
    ready_all(acd, agents)
    serve(acd, Session(world)).get(timeout=5)
    agent = acd.agents[agents[0].id]
    assert (agent.status, agent.state) == ("after_call_work", "wrap_up")
    wait_for(lambda: agent.state == "idle", what="wrap-up end")
    assert agent.status == "available"


def test_ring_timeout_rotates_and_sets_break(make_acd, setup_agents, queue, world):
    """Should move on to the next agent after the ring time and put the unanswering agent on break."""
    agents = setup_agents(2)
    world.phones["1001"].answer_delay = None  # never answers
    # Agent 1 is chosen first (least talk time, idle longer).
    acd = make_acd()
    ready_all(acd, agents)
    outcome = serve(acd, Session(world)).get(timeout=5)
    assert outcome.agent_id == agents[1].id
    first = acd.agents[agents[0].id]
    assert (first.status, first.state) == ("on_break", "idle")
    assert "no answer" in first.break_reason and first.missed_today == 1


def test_no_answer_break_can_be_switched_off(make_acd, setup_agents, db, world):
    """Should leave an unanswering agent available when the queue's no-answer break is off."""
    create_queue("consult", "consult", no_answer_break=False, wrap_up_seconds=0, announce_interval=0)
    agents = setup_agents(2)
    world.phones["1001"].answer_delay = None
    acd = make_acd()
    ready_all(acd, agents)
    serve(acd, Session(world)).get(timeout=5)
    assert acd.agents[agents[0].id].status == "available"


def test_unregistered_phone_is_never_offered(make_acd, setup_agents, queue, world):
    """Should not offer a call to an agent whose phone is not registered (seen at reconciliation)."""
    agents = setup_agents(2)
    world.phones["1001"].registered = False
    acd = make_acd()
    ready_all(acd, agents)
    assert not acd.agents[agents[0].id].registered
    for _ in range(3):
        outcome = serve(acd, Session(world)).get(timeout=5)
        assert outcome.agent_id == agents[1].id
    assert world.phones["1001"].offers == 0


def test_agent_unregisters_while_caller_waits(make_acd, setup_agents, queue, world):
    """Should hold the caller while the only agent is unregistered, and offer once it registers again."""
    agents = setup_agents(1)
    acd = make_acd()
    acd.transition(agents[0].id, "login")
    world.emit(sw.Unregistered(server=world.server, user="1001", domain="127.0.0.1"))
    world.phones["1001"].registered = False
    acd.transition(agents[0].id, "ready")
    session = Session(world)
    job = serve(acd, session)
    wait_for(lambda: QueueEntry.select().where(QueueEntry.call_uuid == session.uuid).exists(), what="entry")
    gevent.sleep(0.05)
    assert acd.agents[agents[0].id].state == "idle" and world.phones["1001"].offers == 0
    world.phones["1001"].registered = True
    world.emit(sw.Registered(server=world.server, user="1001", domain="127.0.0.1", contact="sip:1001@x"))
    assert job.get(timeout=5).outcome == "answered"


def test_caller_hangs_up_while_agent_rings(make_acd, setup_agents, queue, world):
    """Should release the ringing agent (not stuck) and keep the abandoned caller for call-back."""
    agents = setup_agents(1)
    world.phones["1001"].answer_delay = None
    acd = make_acd()
    ready_all(acd, agents)
    session = Session(world, caller="13700000000")
    job = serve(acd, session)
    wait_for(lambda: acd.agents[agents[0].id].state == "ringing", what="ringing")
    session.hangup_now()
    assert job.get(timeout=5).outcome == "abandoned"
    agent = acd.agents[agents[0].id]
    assert (agent.status, agent.state) == ("available", "idle")
    assert QueueEntry.get(QueueEntry.call_uuid == session.uuid).state == "abandoned"
    listed = missed_of(session.uuid)
    assert (listed.reason, listed.source, listed.queue, listed.missed.caller) == ("abandoned", "acd", "consult",
                                                                                   "13700000000")
    assert acd.stuck_agents() == []


def test_callback_key_leaves_request(make_acd, setup_agents, queue, world):
    """Should take the call-back key while waiting, save a request and end the wait."""
    setup_agents(1)
    acd = make_acd()  # nobody ready: the caller waits
    session = Session(world, caller="13600000000")
    job = serve(acd, session)
    wait_for(lambda: any(app == "playback" and arg.startswith("local_stream") for app, arg in session.executed),
             what="music on hold")
    session.press("1")
    assert job.get(timeout=5).outcome == "callback"
    listed = missed_of(session.uuid)
    assert (listed.reason, listed.missed.caller, listed.missed.status) == ("callback_request", "13600000000", "open")
    assert QueueEntry.get(QueueEntry.call_uuid == session.uuid).state == "callback_requested"


@pytest.mark.parametrize("kind,expected", [("callback", "callback"), ("voicemail", "busy"),
                                           ("number", "transferred")])
def test_max_wait_overflows(make_acd, db, world, kind, expected):
    """Should overflow after the maximum wait to the queue's target kind."""
    create_queue("consult", "consult", max_wait=1, overflow_kind=kind, overflow_target="62340000",
                 announce_interval=0)
    acd = make_acd()
    session = Session(world)
    job = serve(acd, session)
    if kind == "number":
        # Through the dial-out policy to the carrier: the default context would hang the caller up.
        wait_for(lambda: ("transfer", "bridge:sofia/gateway/carrier/62340000 inline") in session.executed,
                 what="transfer")
        assert not job.ready()  # the socket stays until the transferred caller hangs up
        world.kill(session.uuid)
    outcome = job.get(timeout=5)
    assert outcome.outcome == expected
    assert QueueEntry.get(QueueEntry.call_uuid == session.uuid).state == "overflowed"


def test_overflow_to_an_international_number_is_refused(make_acd, db, world):
    """Should not send an overflowing caller to an international number (shipped dial-out policy): the
    caller leaves busy (voicemail), nothing is transferred, the refusal is logged (issue 16 item 6)."""
    from recorder.models import DialOutLog

    create_queue("consult", "consult", max_wait=1, overflow_kind="number", overflow_target="+12025550100",
                 announce_interval=0)
    session = Session(world)
    assert serve(make_acd(), session).get(timeout=5).outcome == "busy"
    assert not any(name == "transfer" for name, _ in session.executed)
    row = DialOutLog.get()
    assert (row.purpose, row.number, row.number_class, row.allowed, row.actor) == (
        "overflow", "0012025550100", "international", False, "system")


def test_overflow_into_another_queue(make_acd, setup_agents, db, world):
    """Should move the caller into the overflow queue, where an agent with that skill answers."""
    create_queue("consult", "consult", max_wait=1, overflow_kind="queue", overflow_target="general",
                 announce_interval=0)
    create_queue("general", "general", wrap_up_seconds=0, announce_interval=0)
    agents = setup_agents(1, skill="general")
    acd = make_acd()
    ready_all(acd, agents)
    outcome = serve(acd, Session(world)).get(timeout=5)
    assert (outcome.outcome, outcome.queue) == ("answered", "general")


def test_position_is_announced(make_acd, db, world, prompts):
    """Should announce the caller's position at the queue's interval."""
    create_queue("consult", "consult", max_wait=3, announce_interval=1, overflow_kind="voicemail")
    acd = make_acd()
    first, second = Session(world), Session(world)
    jobs = [serve(acd, first), serve(acd, second)]
    gevent.joinall(jobs, timeout=5)
    played = [arg for app, arg in second.executed if app == "playback" and not arg.startswith("local_stream")]
    assert any("position_1_" in p for p in played), played
    assert any("position_first" in p for p in [a for app, a in first.executed])


def test_fifty_callers_ten_agents_no_agent_stuck(make_acd, setup_agents, db, world):
    """Should serve, overflow or list as abandoned every one of 50 callers, with no agent left stuck."""
    create_queue("consult", "consult", ring_timeout=5, max_wait=60, overflow_kind="callback", wrap_up_seconds=0,
                 announce_interval=0, no_answer_break=False)
    agents = setup_agents(10, talk=0.02)
    world.phones["1003"].answer_delay = None
    world.phones["1007"].reject = True
    acd = make_acd()
    ready_all(acd, agents)
    sessions = [Session(world, caller=f"1390000{i:04d}") for i in range(50)]
    jobs = [serve(acd, s) for s in sessions]
    gevent.spawn_later(0.05, sessions[5].hangup_now)
    gevent.spawn_later(0.05, sessions[40].hangup_now)
    gevent.joinall(jobs, timeout=30)
    outcomes = [j.value.outcome for j in jobs]
    assert all(j.ready() for j in jobs)
    assert set(outcomes) <= {"answered", "abandoned"}
    assert outcomes.count("answered") >= 48 and outcomes.count("abandoned") <= 2
    states = {e.state for e in QueueEntry.select()}
    assert states <= {"bridged", "overflowed", "abandoned", "callback_requested"}
    wait_for(lambda: all(a.state == "idle" for a in acd.agents.values()), what="all agents idle")
    assert acd.stuck_agents() == []
    assert acd.agents[agents[2].id].calls_today == 0  # the phone that never answers


def test_restart_recognises_bridged_call_and_releases_stale_reservation(make_acd, setup_agents, queue, world):
    """Should keep an agent whose call is still up after a restart, and free one reserved for a gone call."""
    agents = setup_agents(3)
    for agent, state in zip(agents, ("in_call", "reserved", "ringing")):
        Agent.update(status="available", state=state, leg_uuid=f"leg-{agent.id}", call_uuid=f"call-{agent.id}",
                     call_server=world.server, call_queue="consult", registered=True).where(Agent.id == agent.id).execute()
    world.channels.update({f"leg-{agents[0].id}", f"leg-{agents[2].id}"})
    QueueEntry.create(call_uuid="gone-caller", server=world.server, queue=queue, caller_number="13500000000")
    acd = make_acd()  # start() loads the DB and reconciles
    assert acd.agents[agents[0].id].state == "in_call"
    assert acd.agents[agents[1].id].state == "idle"
    assert acd.agents[agents[2].id].state == "ringing"  # its leg still exists
    assert QueueEntry.get(QueueEntry.call_uuid == "gone-caller").state == "abandoned"
    # The recognised call ends later: the agent goes through call end as usual.
    world.kill(f"leg-{agents[0].id}")
    assert acd.agents[agents[0].id].state == "idle" and acd.agents[agents[0].id].calls_today == 1
    world.kill(f"leg-{agents[2].id}")
    assert acd.agents[agents[2].id].state == "idle"


def test_reconcile_after_reconnect_frees_agents_whose_channel_vanished(make_acd, setup_agents, queue, world):
    """Should free an in-call agent at reconnect when FreeSWITCH no longer has the channel (events lost), but
    leave a call answered a moment ago alone: a new leg shows in `show channels` only a little later."""
    agents = setup_agents(2)
    acd = make_acd()
    ready_all(acd, agents)
    for agent, leg in zip(agents, ("lost-leg", "new-leg")):
        acd.transition(agent.id, "reserve", leg_uuid=leg, call_uuid=f"call-{leg}", call_server=world.server,
                       call_queue="consult")
        acd.legs.claim(leg, AgentCall(agent.id))
        acd.transition(agent.id, "answer")
    acd.agents[agents[0].id].since = utcnow() - dt.timedelta(minutes=1)  # answered a minute ago
    report = acd.reconcile(world.server)
    assert (report["ended"], report["too_new"]) == (1, 1)
    assert acd.agents[agents[0].id].state != "in_call" and acd.agents[agents[1].id].state == "in_call"
    acd.agents[agents[1].id].since = utcnow() - dt.timedelta(minutes=1)
    for callback in acd.pool.all()[0].reconnect_callbacks:
        callback()
    wait_for(lambda: all(acd.agents[a.id].state == "idle" for a in agents), what="both agents freed")


def test_events_out_of_order_change_nothing(make_acd, setup_agents, queue, world):
    """Should ignore an answer after the hang-up, duplicate hang-ups and events for unknown channels."""
    agents = setup_agents(1)
    acd = make_acd()
    ready_all(acd, agents)
    aid = agents[0].id
    acd.transition(aid, "reserve", leg_uuid="leg-x", call_uuid="call-x", call_server=world.server,
                   call_queue="consult")
    acd.legs.claim("leg-x", AgentCall(aid))
    acd.on_event(sw.ChannelHangup(server=world.server, uuid="leg-x", cause="NO_ANSWER"))
    acd.on_event(sw.ChannelAnswered(server=world.server, uuid="leg-x"))
    acd.on_event(sw.ChannelHangup(server=world.server, uuid="leg-x", cause="NO_ANSWER", complete=True))
    acd.on_event(sw.ChannelAnswered(server=world.server, uuid="nobody"))
    acd.on_event(sw.ChannelCreated(server=world.server, uuid="leg-x"))
    agent = acd.agents[aid]
    assert agent.state == "idle" and agent.status == "on_break"  # the no-answer break, once
    assert AgentStateLog.select().where((AgentStateLog.agent == aid) & (AgentStateLog.event == "not_ready")).count() == 1


def test_unknown_queue_is_refused(make_acd, queue, world):
    """Should refuse a caller for a skill no queue serves with a clear error."""
    from acd.dispatcher import AcdError

    acd = make_acd()
    with pytest.raises(AcdError, match="no active queue serves skill 'nonsense'"):
        acd.enter_queue(Session(world), "nonsense")


def test_live_stats(make_acd, setup_agents, queue, world):
    """Should report answered and abandoned counts, the 15-second answer rate and per-agent state."""
    agents = setup_agents(1)
    acd = make_acd()
    ready_all(acd, agents)
    serve(acd, Session(world)).get(timeout=5)
    stats = {s["queue"]: s for s in acd.queue_stats()}["consult"]
    assert stats["answered_today"] == 1 and stats["abandoned_today"] == 0
    assert stats["answer_rate_15s"] == 100.0 and stats["average_talk"] is not None
    rows = acd.agent_stats()
    assert rows[0]["operator_no"] == "8001" and rows[0]["calls_today"] == 1


def test_caller_hangup_event_frees_agent_even_if_caller_greenlet_is_blocked(make_acd, setup_agents, queue, world):
    """Should free the agent offered to a caller as soon as the caller's hang-up event arrives."""
    agents = setup_agents(1)
    world.phones["1001"].answer_delay = None
    acd = make_acd()
    ready_all(acd, agents)
    session = Session(world)
    job = serve(acd, session)
    wait_for(lambda: acd.agents[agents[0].id].state == "ringing", what="ringing")
    # The hang-up reaches the inbound connection; the caller's own socket has not noticed yet.
    world.emit(sw.ChannelHangup(server=world.server, uuid=session.uuid, cause="NORMAL_CLEARING"))
    agent = acd.agents[agents[0].id]
    assert (agent.status, agent.state) == ("available", "idle")
    assert QueueEntry.get(QueueEntry.call_uuid == session.uuid).state == "abandoned"
    assert session.uuid not in acd.waiters
    session.hangup_now()
    assert job.get(timeout=5).outcome == "abandoned"
    assert missed_of(session.uuid).missed.calls == 1  # abandoned once, not once per hang-up report


def test_caller_handed_back_into_a_queue_is_taken_over_by_its_new_waiter(make_acd, setup_agents, queue, world):
    """Should let a caller its agent transferred into a queue enter it again while the greenlet that bridged
    it still waits for the channel's end: the new waiter owns the caller's channel, the caller's hang-up
    ends the second agent's call, and both greenlets end with nothing left behind."""
    agents = setup_agents(2, talk=30.0)
    world.phones["1001"].talk = 0.2
    acd = make_acd()
    ready_all(acd, agents[:1])
    first = Session(world)
    first_job = serve(acd, first)
    wait_for(lambda: acd.agents[agents[0].id].state == "in_call", what="the first agent's call")
    acd.handed_off.add(first.uuid)  # what a blind transfer into a queue does (acd.agent_controls)
    first_waiter = acd.waiters[first.uuid]
    wait_for(lambda: first_waiter.step == "after bridge", what="the first bridge over")
    assert acd.legs.owner_of(first.uuid) is first_waiter  # served, waiting for the channel's end
    world.phones["1001"].talk = 30.0
    # The same channel comes back through the socket: a new session, the same uuid.
    again = Session(world, caller=first.caller)
    del world.sessions[again.uuid]
    world.channels.discard(again.uuid)
    again.uuid = first.uuid
    world.sessions[first.uuid] = again
    ready_all(acd, agents[1:])
    second_job = serve(acd, again)
    wait_for(lambda: any(a.state == "in_call" for a in acd.agents.values()), what="an agent's call of the caller come back")
    assert acd.legs.owner_of(first.uuid) is not first_waiter and acd.waiters[first.uuid].session is again
    again.hangup_now()
    assert (first_job.get(timeout=5).outcome, second_job.get(timeout=5).outcome) == ("transferred", "answered")
    assert dict(acd.waiters) == {} and len(acd.legs) == 0
    assert [acd.agents[a.id].state for a in agents] == ["idle", "idle"]
    assert missed_of(first.uuid) is None


@pytest.mark.parametrize("strategy,expected", [
    ("fewest_calls", [1, 2, 3, 1, 2, 3]),
    ("fixed_order", [1, 1, 1, 1, 1, 1]),
    ("round_robin", [1, 2, 3, 1, 2, 3]),
    ("highest_skill", [3, 3, 3, 3, 3, 3]),
])
def test_rules_through_the_dispatcher(make_acd, db, world, strategy, expected):
    """Should apply the queue's rule with live counters over a sequence of calls (no stale snapshots)."""
    from acd.dispatcher import create_agent
    from acd.models import AgentSkill
    from tests.integration.acd.conftest import make_user

    create_queue("consult", "consult", strategy=strategy, wrap_up_seconds=0, announce_interval=0)
    agents = []
    for i in range(1, 4):
        agents.append(create_agent(make_user(f"800{i}", f"100{i}"), {"consult": i * 3}))
        world.add_phone(f"100{i}", talk=0.01)
    acd = make_acd()
    ready_all(acd, agents)
    taken = []
    for _ in range(6):
        outcome = serve(acd, Session(world)).get(timeout=5)
        taken.append([a.id for a in agents].index(outcome.agent_id) + 1)
        wait_for(lambda: all(a.state == "idle" for a in acd.agents.values()), what="idle")
    assert taken == expected
    assert AgentSkill.select().count() == 3


def test_waiting_count_drops_when_an_agent_answers_not_when_the_call_ends(make_acd, setup_agents, queue, world):
    """Should tell the desks and the console (a "queue" notice) that the caller no longer waits as soon as the
    agent answers, while the call goes on; a caller who hangs up while waiting is counted out too."""
    agents = setup_agents(1)
    acd = make_acd()
    notices = []
    acd.listeners.append(lambda notice: notices.append(notice) if notice["type"] in ("queue", "answered") else None)
    ready_all(acd, agents)
    world.phones["1001"].talk = 30  # the call goes on until the test ends it
    session = Session(world, caller="13900002222")
    job = serve(acd, session)
    wait_for(lambda: any(n["type"] == "answered" for n in notices), what="the answer")
    answered = next(i for i, n in enumerate(notices) if n["type"] == "answered")
    assert [n["waiting"] for n in notices[:answered] if n["type"] == "queue"][-1] == 0, notices
    assert not job.ready()  # still talking
    session.hangup_now()
    job.get(timeout=5)
