"""Agent desk and team-lead console over HTTP (Flask test client), with the ACD on the in-process doubles."""
from __future__ import annotations

import gevent
import pytest

from acd.dispatcher import Acd, AcdSettings, create_agent, create_queue
from acd.models import SupervisorAction
from caseflow import services as case_services
from caseflow.accounts import create_user
from caseflow.models import Ticket
from tests.integration.acd.conftest import wait_for
from tests.integration.acd.doubles import Conn, Pool, Session, World

PASSWORD = "agent-pass-123"


@pytest.fixture
def desk(app, client, prompts):
    world = World()
    create_queue("consult", "consult", wrap_up_seconds=30, announce_interval=0)
    agent_user = create_user("8001", "张三", PASSWORD, roles="agent", extension="1001")
    lead_user = create_user("9001", "班长", PASSWORD, roles="team_lead", extension="1900")
    agent = create_agent(agent_user, {"consult": 5})
    world.add_phone("1001", talk=30)
    acd = Acd(Pool(Conn(world)), settings=AcdSettings(reconcile_interval=3600), prompts=prompts)
    acd.start()
    app.extensions["hotline"].services.extra["acd"] = acd
    yield acd, world, agent, agent_user, lead_user
    acd.stop()


def test_agent_goes_ready_and_bad_controls_are_refused(desk, client):
    """Should put the agent ready from the desk, and refuse holding a call they do not hold."""
    acd, world, agent, *_ = desk
    client.login("8001", PASSWORD)
    page = client.get("/desk/")
    assert page.status_code == 200 and "话务员工作台" in page.get_data(as_text=True)
    reply = client.post_form("/desk/action", {"action": "ready"})
    assert reply.get_json() == {"ok": True, "status": "available", "state": "idle", "on_hold": False,
                                 "call_uuid": ""}
    reply = client.post_form("/desk/action", {"action": "hold", "call_uuid": "not-mine"})
    assert reply.status_code == 409 and "not in a call" in reply.get_json()["error"]
    reply = client.post_form("/desk/action", {"action": "ready"})
    assert reply.status_code == 409 and "already ready" in reply.get_json()["error"]
    assert client.post_form("/desk/action", {"action": "explode"}).status_code == 400


def test_screen_pop_and_ticket_save_end_wrap_up(desk, client):
    """Should pop the caller's earlier ticket, save a new ticket for the call and end the wrap-up."""
    acd, world, agent, agent_user, _ = desk
    earlier = case_services.create_ticket("路灯坏了", citizen_phone="13912345678", citizen_name="李四")
    client.login("8001", PASSWORD)
    client.post_form("/desk/action", {"action": "ready"})
    session = Session(world, caller="13912345678")
    job = gevent.spawn(acd.enter_queue, session, "consult")
    wait_for(lambda: acd.agents[agent.id].state == "in_call", what="in call")
    pop = client.get("/desk/pop").get_json()
    assert pop["number"] == "13912345678" and pop["citizen"]["name"] == "李四"
    assert [t["number"] for t in pop["tickets"]] == [earlier.number]
    html = client.get("/desk/").get_data(as_text=True)
    assert earlier.number in html and 'value="13912345678"' in html
    session.hangup_now()
    job.get(timeout=5)
    wait_for(lambda: acd.agents[agent.id].state == "wrap_up", what="wrap-up")
    reply = client.post_form("/desk/ticket", {"content": "路灯又坏了", "citizen_phone": "13912345678",
                                              "citizen_name": "李四", "type": "complaint",
                                              "call_uuid": session.uuid})
    assert reply.status_code == 303
    saved = Ticket.select().where(Ticket.citizen_phone == "13912345678").order_by(Ticket.id.desc()).get()
    assert saved.content == "路灯又坏了" and saved.created_by_id == agent_user.id
    assert acd.agents[agent.id].state == "idle" and acd.agents[agent.id].status == "available"
    assert acd.agents[agent.id].desk_activity == f"ticket {saved.number}"


def test_ticket_form_bad_input_keeps_nothing(desk, client):
    """Should refuse an empty ticket with a clear error and store nothing."""
    client.login("8001", PASSWORD)
    before = Ticket.select().count()
    reply = client.post_form("/desk/ticket", {"content": "", "citizen_phone": "1391"})
    assert reply.status_code == 400 and Ticket.select().count() == before


def test_server_sent_events_carry_the_screen_pop(desk, client):
    """Should stream the answered notice with the caller's earlier tickets to the agent's browser."""
    acd, world, agent, *_ = desk
    earlier = case_services.create_ticket("噪音扰民", citizen_phone="13700001111")
    client.login("8001", PASSWORD)
    gevent.spawn_later(0.3, acd._notify, "answered", agent_id=agent.id, number="13700001111", call_uuid="c1")
    gevent.spawn_later(0.3, acd._notify, "answered", agent_id=agent.id + 99, number="13800000000")
    body = client.get("/desk/events?max_seconds=1").get_data(as_text=True)
    assert "event: answered" in body and earlier.number in body
    assert "13800000000" not in body  # another agent's notice
    assert client.get("/desk/events?max_seconds=abc").status_code == 200


def test_console_actions_are_for_team_leads_only(desk, client):
    """Should refuse the console to an agent and let a team lead set an agent on break, recorded."""
    acd, world, agent, *_ = desk
    client.login("8001", PASSWORD)
    assert client.get("/supervisor/").status_code == 403
    assert client.post_form("/supervisor/action", {"action": "set_break", "agent_id": agent.id}).status_code == 403
    client.logout()
    client.login("9001", PASSWORD)
    html = client.get("/supervisor/").get_data(as_text=True)
    assert "排队数" in html and "8001" in html
    acd.transition(agent.id, "login")
    acd.transition(agent.id, "ready")
    reply = client.post_form("/supervisor/action", {"action": "set_break", "agent_id": agent.id, "reason": "培训"})
    assert reply.get_json() == {"ok": True}
    assert acd.agents[agent.id].status == "on_break" and acd.agents[agent.id].break_reason == "培训"
    row = SupervisorAction.select().order_by(SupervisorAction.id.desc()).get()
    assert (row.action, row.actor_label, row.target_agent_id) == ("set_break", "9001", agent.id)
    reply = client.post_form("/supervisor/action", {"action": "monitor", "agent_id": agent.id})
    assert reply.status_code == 409 and "not in a call" in reply.get_json()["error"]
    assert client.post_form("/supervisor/action", {"action": "monitor", "agent_id": "x"}).status_code == 400
    assert client.post_form("/supervisor/action", {"action": "nuke", "agent_id": agent.id}).status_code == 400
    stats = client.get("/supervisor/stats").get_json()
    assert stats["queues"][0]["queue"] == "consult" and stats["agents"][0]["operator_no"] == "8001"


def test_team_lead_changes_queue_rule_with_checks(desk, client):
    """Should change a queue's rule and timings, refusing bad values without saving anything."""
    acd, *_ = desk
    client.login("9001", PASSWORD)
    assert "队列设置" in client.get("/supervisor/").get_data(as_text=True)
    reply = client.post_form("/supervisor/queue/consult", {"strategy": "fewest_calls", "ring_timeout": "15",
                                                           "max_wait": "120", "overflow_kind": "voicemail"})
    assert reply.get_json()["strategy"] == "fewest_calls" and acd.queues["consult"].ring_timeout == 15
    for bad in ({"strategy": "fastest"}, {"ring_timeout": "1"}, {"max_wait": "abc"},
                {"overflow_kind": "queue", "overflow_target": "nowhere"},
                {"overflow_kind": "number", "overflow_target": "12;34"}, {"overflow_kind": "pigeon"}):
        reply = client.post_form("/supervisor/queue/consult", {**bad, "ring_timeout": bad.get("ring_timeout", "30")})
        assert reply.status_code == 400, bad
    queue = acd.queues["consult"]
    assert (queue.strategy, queue.ring_timeout, queue.overflow_kind) == ("fewest_calls", 15, "voicemail")
    assert client.post_form("/supervisor/queue/nosuch", {"ring_timeout": "20"}).status_code == 400
    client.logout()
    client.login("8001", PASSWORD)
    assert client.post_form("/supervisor/queue/consult", {"ring_timeout": "20"}).status_code == 403


def test_call_back_from_the_desk(desk, client, world):
    """Should list the missed-call list's open entries, claim one and call it back (agent's phone first),
    keep each attempt's outcome, and close the entry once the citizen is reached."""
    from recorder.missed import add_missed
    from recorder.models import CallbackAttempt, MissedCall

    acd, world, agent, agent_user, _ = desk
    item = add_missed("13655556666", "abandoned", queue="consult", wait_seconds=75)
    client.login("8001", PASSWORD)
    page = client.get("/desk/").get_data(as_text=True)
    assert "13655556666" in page and "排队放弃" in page and "等待 75 秒" in page
    reply = client.post_form(f"/desk/callback/{item.id}")
    assert reply.status_code == 409 and "cannot call out" in reply.get_json()["error"]  # logged out
    assert MissedCall.get_by_id(item.id).claimed_by_id is None  # a refused call gives the claim back
    client.post_form("/desk/action", {"action": "ready"})
    assert client.post_form("/desk/action", {"action": "not_ready", "reason": "回拨"}).get_json()["ok"]
    reply = client.post_form(f"/desk/callback/{item.id}")
    assert reply.get_json()["ok"] is True
    leg = reply.get_json()["call_uuid"]
    wait_for(lambda: any(leg in c and "13655556666" in c for c in world.commands), what="originate")
    claimed = MissedCall.get_by_id(item.id)
    assert claimed.status == "open" and claimed.claimed_by_id == agent_user.id
    outcome_url = f"/desk/callback/{item.id}/outcome"
    assert outcome_url in client.get("/desk/").get_data(as_text=True)
    assert client.post_form(outcome_url, {"outcome": "no_answer", "call_uuid": leg}).status_code == 303
    attempt = CallbackAttempt.get()
    assert (attempt.outcome, attempt.agent_id, attempt.call_uuid) == ("no_answer", agent_user.id, leg)
    assert MissedCall.get_by_id(item.id).claimed_by_id is None and MissedCall.get_by_id(item.id).status == "open"
    assert client.post_form(outcome_url, {"outcome": "maybe"}).status_code == 409
    assert client.post_form(outcome_url, {"outcome": "reached"}).status_code == 303
    assert MissedCall.get_by_id(item.id).status == "done"
    assert "13655556666" not in client.get("/desk/").get_data(as_text=True)
    assert client.post_form(f"/desk/callback/{item.id}").status_code == 409
    assert client.post_form("/desk/callback/99999").status_code == 409


def test_console_shows_the_call_backs_waiting(desk, client):
    """Should show the team lead the missed-call list's open entries, who is calling one back, and the
    counts in the live statistics."""
    from recorder.missed import add_missed, claim

    acd, world, agent, agent_user, lead_user = desk
    first = add_missed("13655550001", "abandoned", queue="consult", wait_seconds=40)
    add_missed("13655550001", "callback_request", queue="consult")
    add_missed("13655550002", "out_of_hours")
    claim(first.id, agent_user)
    client.login("9001", PASSWORD)
    page = client.get("/supervisor/").get_data(as_text=True)
    assert "待回拨" in page and f'data-missed="{first.id}"' in page and "张三" in page
    assert page.count("13655550001") == 1  # one row per number
    stats = client.get("/supervisor/stats").get_json()["callbacks"]
    assert (stats["open"], stats["claimed"], stats["by_queue"]) == (2, 1, {"": 1, "consult": 1})
