"""Agent desk and team-lead console over HTTP (Flask test client), with the ACD on the in-process doubles."""
from __future__ import annotations

import json

import gevent
import pytest

from acd.dispatcher import Acd, AcdSettings, create_agent, create_queue
from acd.models import SupervisorAction
from caseflow import services as case_services
from caseflow.accounts import create_user
from caseflow.models import Ticket
from tests.integration.acd.conftest import wait_for
from tests.integration.acd.doubles import Conn, Pool, Session, World
from tests.waiting import stream_until

PASSWORD = "agent-pass-123"


@pytest.fixture
def desk(app, client, prompts):
    world = World()
    create_queue("consult", "consult", wrap_up_seconds=30, announce_interval=0)
    agent_user = create_user("8001", "张三", PASSWORD, roles="agent", extension="1001")
    lead_user = create_user("9001", "班长", PASSWORD, roles="team_lead", extension="1900")
    agent = create_agent(agent_user, {"consult": 5})
    world.add_phone("1001", talk=30)
    create_queue("suggest", "suggest", wrap_up_seconds=30, announce_interval=0)
    create_agent(create_user("8002", "李四", PASSWORD, roles="agent", extension="1002"), {"suggest": 5})
    world.add_phone("1002", talk=30)
    acd = Acd(Pool(Conn(world)), settings=AcdSettings(reconcile_interval=3600), prompts=prompts)
    acd.start()
    app.extensions["hotline"].services.acd = acd
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
                                 "call_uuid": "", "consult": None, "since": "",
                                 "enabled": ["call_team_lead", "dial", "help", "logout", "not_ready"]}
    # Refusals are said in the user's language only (zh here), never "中文 / English".
    reply = client.post_form("/desk/action", {"action": "hold", "call_uuid": "not-mine"})
    assert reply.status_code == 409 and reply.get_json()["error"] == "您当前没有通话"
    reply = client.post_form("/desk/action", {"action": "ready"})
    assert reply.status_code == 409 and reply.get_json()["error"] == "您已处于就绪状态"
    client.post_form("/language", {"lang": "en"})
    reply = client.post_form("/desk/action", {"action": "ready"})
    assert reply.status_code == 409 and reply.get_json()["error"] == "you are already ready"
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
    assert pop["number"] == "13912345678" and pop["citizen"]["name"] == "李四" and pop["masked"] is False
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


def test_desk_shows_the_knowledge_panel_and_a_reply_answers_the_ticket(desk, client):
    """Should show the knowledge panel beside the ticket form, answer a ticket saved with a reply at once,
    and keep nothing when the reply cannot be recorded with it."""
    client.login("8001", PASSWORD)
    page = client.get("/desk/").get_data(as_text=True)
    assert 'id="kb-panel"' in page and "desk_kb.js" in page and 'id="tf-reply"' in page
    assert 'data-search="/kb/search.json"' in page
    reply = client.post_form("/desk/ticket", {"content": "夜间施工噪音扰民怎么办", "citizen_phone": "13912345678",
                                              "type": "consult", "reply": "请告知具体施工地点和时间。"})
    assert reply.status_code == 303
    saved = Ticket.select().order_by(Ticket.id.desc()).get()
    assert (saved.status, saved.reply) == ("answered", "请告知具体施工地点和时间。")
    before = Ticket.select().count()
    reply = client.post_form("/desk/ticket", {"content": "内容<b>", "citizen_phone": "13912345678",
                                              "type": "complaint", "reply": "答" * 20001})
    assert reply.status_code == 400 and Ticket.select().count() == before
    # The form comes back as typed (escaped), so the agent corrects the reply instead of retyping it all.
    page = reply.get_data(as_text=True)
    assert "内容&lt;b&gt;</textarea>" in page and 'value="13912345678"' in page
    assert '<option value="complaint" selected>' in page and "答" * 100 in page


def test_server_sent_events_carry_the_screen_pop(desk, client):
    """Should stream the answered notice with the caller's earlier tickets to the agent's browser, for the
    caller of the agent's own call only (a notice naming another number pops nothing unmasked)."""
    acd, world, agent, *_ = desk
    earlier = case_services.create_ticket("噪音扰民", citizen_phone="13700001111", citizen_name="王小明")
    client.login("8001", PASSWORD)
    started = []

    def calls():
        acd._notify("answered", agent_id=agent.id + 99, number="13800000000")  # would come first
        started.append(_in_call(acd, world, agent, caller="13700001111"))

    body = stream_until(client, "/desk/events?max_seconds=60", answered, then=calls)
    assert "event: answered" in body and earlier.number in body and "王小明" in body
    assert "13800000000" not in body  # another agent's notice
    _end(*wait_for(lambda: started, what="the call in progress")[0])
    # A notice with a number that is not the caller of the agent's call (no call now): masked, no tickets.
    body = stream_until(client, "/desk/events?max_seconds=60", answered, then=lambda: acd._notify(
        "answered", agent_id=agent.id, number="13700001111", call_uuid="c1"))
    assert "event: answered" in body and earlier.number not in body and "王小明" not in body and "王**" in body
    assert client.get("/desk/events?max_seconds=abc").status_code == 200


def test_screen_pop_masks_a_number_the_agent_dialled(desk, client):
    """Should show a dialled number's citizen masked, with no address and no tickets: only the caller of the
    agent's own offered or answered queue call is shown in full (issue 16 item 5)."""
    from caseflow.models import Citizen

    acd, world, agent, *_ = desk
    Citizen.create(phone="13611112222", name="赵六", address="幸福路 8 号 302")
    earlier = case_services.create_ticket("邻居装修", citizen_phone="13611112222", citizen_name="赵六")
    client.login("8001", PASSWORD)
    _act(client, action="ready")
    _act(client, action="not_ready", reason="回拨")
    assert _act(client, action="dial", number="13611112222").get_json()["ok"] is True
    pop = client.get("/desk/pop").get_json()
    assert pop["number"] == "13611112222" and pop["masked"] is True
    assert pop["citizen"] == {"name": "赵*", "address": "", "blacklisted": False} and pop["tickets"] == []
    page = client.get("/desk/").get_data(as_text=True)
    assert "幸福路" not in page and "赵六" not in page and earlier.number not in page


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
    assert reply.get_json() == {"ok": True, "message": "已执行。"}
    assert acd.agents[agent.id].status == "on_break" and acd.agents[agent.id].break_reason == "培训"
    row = SupervisorAction.select().order_by(SupervisorAction.id.desc()).get()
    assert (row.action, row.actor_label, row.target_agent_id) == ("set_break", "9001", agent.id)
    reply = client.post_form("/supervisor/action", {"action": "monitor", "agent_id": agent.id})
    assert reply.status_code == 409 and reply.get_json()["error"] == "该话务员当前没有通话"
    assert client.post_form("/supervisor/action", {"action": "monitor", "agent_id": "x"}).status_code == 400
    assert client.post_form("/supervisor/action", {"action": "nuke", "agent_id": agent.id}).status_code == 400
    stats = client.get("/supervisor/stats").get_json()
    assert stats["queues"][0]["queue"] == "consult" and stats["agents"][0]["operator_no"] == "8001"


def test_team_lead_changes_queue_rule_with_checks(desk, client):
    """Should let a team lead change a queue's shift settings (recorded), refuse bad values and structural
    fields (403, acd.policy) without saving anything, and refuse agents."""
    acd, *_ = desk
    client.login("9001", PASSWORD)
    page = client.get("/supervisor/").get_data(as_text=True)
    assert "队列设置" in page and 'name="overflow_kind"' not in page and 'name="no_answer_break"' in page
    reply = client.post_form("/supervisor/queue/consult", {"strategy": "fewest_calls", "ring_timeout": "15",
                                                           "max_wait": "120", "wrap_up_seconds": "20",
                                                           "announce_interval": "40", "no_answer_break": "0"})
    assert reply.get_json()["strategy"] == "fewest_calls"
    queue = acd.queues["consult"]
    assert (queue.ring_timeout, queue.max_wait, queue.wrap_up_seconds, queue.announce_interval,
            queue.no_answer_break) == (15, 120, 20, 40, False)
    row = SupervisorAction.select().order_by(SupervisorAction.id.desc()).get()
    assert (row.action, row.actor_label, row.ok) == ("queue_settings", "9001", True) and "fewest_calls" in row.detail
    for bad in ({"strategy": "fastest"}, {"ring_timeout": "1"}, {"max_wait": "abc"}, {"pigeon": "1"},
                {"announce_interval": "3"}):  # the queue page's rule too: 0 or at least 10 s (acd.policy)
        reply = client.post_form("/supervisor/queue/consult", {**bad, "ring_timeout": bad.get("ring_timeout", "30")})
        assert reply.status_code == 400, bad
    for structural in ({"overflow_kind": "voicemail"}, {"skill": "suggest"}, {"name": "x"},
                       {"overflow_target": "suggest", "ring_timeout": "30"}):
        reply = client.post_form("/supervisor/queue/consult", structural)
        error = reply.get_json()["error"]  # in the lead's language, the fields named in words
        assert reply.status_code == 403 and error.startswith("您无权修改队列的"), structural
        assert not any(key in error for key in structural) and "/" not in error, error
    queue = acd.queues["consult"]
    assert (queue.strategy, queue.ring_timeout, queue.overflow_kind, queue.skill) == (
        "fewest_calls", 15, "callback", "consult")
    refused = SupervisorAction.select().order_by(SupervisorAction.id.desc()).get()
    assert (refused.action, refused.ok) == ("queue_settings", False)
    assert client.post_form("/supervisor/queue/nosuch", {"ring_timeout": "20"}).status_code == 400
    client.logout()
    client.login("8001", PASSWORD)
    assert client.post_form("/supervisor/queue/consult", {"ring_timeout": "20"}).status_code == 403
    assert acd.queues["consult"].ring_timeout == 15


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
    assert reply.status_code == 409 and "当前状态不能外呼" in reply.get_json()["error"]  # logged out
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


def test_a_recording_that_filed_no_ticket_is_labelled_on_desk_and_console(desk, client):
    """Should show an entry listed because the caller's IVR recording filed no ticket (no_ticket) on the
    agent's desk and the team lead's console with its label (a reason without one would break both pages)."""
    from recorder.missed import add_missed

    item = add_missed("13655550003", "no_ticket")
    client.login("8001", PASSWORD)
    page = client.get("/desk/").get_data(as_text=True)
    assert f'data-missed="{item.id}"' in page and "录音无法受理" in page
    client.logout()
    client.login("9001", PASSWORD)
    page = client.get("/supervisor/").get_data(as_text=True)
    assert f'data-missed="{item.id}"' in page and "录音无法受理" in page


# ---------------------------------------------------------------- the desk's control panel

def _in_call(acd, world, agent, caller="13912340000"):
    """Put the agent ready and route one caller to them; returns (session, job) once they talk."""
    if acd.agents[agent.id].status == "logged_out":
        acd.transition(agent.id, "login")
    if acd.agents[agent.id].status != "available":
        acd.transition(agent.id, "ready")
    session = Session(world, caller=caller)
    job = gevent.spawn(acd.enter_queue, session, "consult")
    wait_for(lambda: acd.agents[agent.id].state == "in_call", what="in call")
    return session, job


def answered(body: str) -> bool:
    return "event: answered" in body


def _end(session, job):
    if not session.hung_up:
        session.hangup_now()
    job.get(timeout=5)


def _department(phone="88001234", code="water"):
    from caseflow.models import Department

    return Department.create(code=code, name="水务局", level=2, kind="city_dept", contact_phone=phone, path="/")


def _act(client, **fields):
    return client.post_form("/desk/action", fields)


def test_desk_page_offers_the_control_panel(desk, client):
    """Should show reasons, transfer targets (agents, queues, departments with a phone), the IVR
    hand-back nodes (satisfaction first), and call controls disabled while there is no call."""
    _department()
    _department(phone="", code="nophone")
    client.login("8001", PASSWORD)
    html = client.get("/desk/").get_data(as_text=True)
    for text in ("小休", "就餐", "培训", "会议", "其他", "李四 (1002)", "suggest", "水务局 88001234",
                 "盲转", "咨询转", "三方通话", "呼叫班长", "外呼"):
        assert text in html, text
    assert html.count("水务局") == 1  # the department without a phone is not offered
    node_select = html[html.index('data-testid="ivr-node"'):]
    assert node_select.index('value="satisfaction"') < node_select.index("</select>")
    assert node_select.index("<option") == node_select.index('<option value="satisfaction"')
    hold = html[html.index('data-testid="hold-toggle"'):]
    assert hold.index("disabled") < hold.index(">")
    assert 'data-skills="consult"' in html


def test_not_ready_takes_a_reason_from_the_list(desk, client):
    """Should go not ready with a listed reason or 其他 with a typed one, and refuse anything else (400)."""
    acd, world, agent, *_ = desk
    client.login("8001", PASSWORD)
    _act(client, action="ready")
    for bad in ({}, {"reason": "睡觉"}, {"reason": "其他"}, {"reason": "其他", "reason_text": "  "},
                {"reason": "其他", "reason_text": "长" * 41}):
        reply = _act(client, action="not_ready", **bad)
        assert reply.status_code == 400 and reply.get_json()["error"] and " / " not in reply.get_json()["error"], bad
    assert acd.agents[agent.id].status == "available"
    assert _act(client, action="not_ready", reason="就餐").get_json()["status"] == "on_break"
    assert acd.agents[agent.id].break_reason == "就餐"
    _act(client, action="ready")
    assert _act(client, action="not_ready", reason="其他", reason_text="处理投诉").get_json()["ok"]
    assert acd.agents[agent.id].break_reason == "其他:处理投诉"
    assert _act(client, action="logout").get_json()["status"] == "logged_out"
    assert _act(client, action="logout").status_code == 409


def test_hold_resume_and_hang_up_from_the_desk(desk, client):
    """Should hold and resume the call held (uuid_hold on the agent's leg), refuse a second hold, and hang up."""
    acd, world, agent, *_ = desk
    client.login("8001", PASSWORD)
    assert _act(client, action="hold", call_uuid="").status_code == 409  # no call
    session, job = _in_call(acd, world, agent)
    leg = acd.agents[agent.id].leg_uuid
    reply = _act(client, action="hold", call_uuid=session.uuid)
    assert reply.get_json()["on_hold"] is True and f"uuid_hold {leg}" in world.commands
    assert "通话已处于保持状态" in _act(client, action="hold", call_uuid=session.uuid).get_json()["error"]
    assert _act(client, action="resume", call_uuid=session.uuid).get_json()["on_hold"] is False
    assert f"uuid_hold off {leg}" in world.commands
    assert _act(client, action="hold", call_uuid="someone-else").status_code == 409
    assert _act(client, action="hangup", call_uuid=session.uuid).get_json()["ok"]
    assert f"uuid_kill {leg} NORMAL_CLEARING" in world.commands
    _end(session, job)


def test_blind_transfer_checks_kind_and_target(desk, client):
    """Should refuse an unknown kind or a target that does not exist (400, nothing sent to the switch),
    then transfer the caller to another agent's phone."""
    acd, world, agent, *_ = desk
    _department(phone="", code="nophone")
    client.login("8001", PASSWORD)
    session, job = _in_call(acd, world, agent)
    before = len(world.commands)
    for kind, target in (("pigeon", "1002"), ("agent", ""), ("agent", "7777"), ("agent", "1001"),
                         ("queue", "nowhere"), ("department", "99999"), ("department", "nophone"),
                         ("department", "123456789012345678901234"),
                         ("number", "1380000abcd"), ("number", "12"), ("number", "+8613800001111")):
        reply = _act(client, action="transfer", call_uuid=session.uuid, kind=kind, target=target)
        assert reply.status_code == 400 and reply.get_json()["error"] and " / " not in reply.get_json()["error"], (kind, target)
    assert not any(c.startswith(("uuid_transfer", "uuid_setvar")) for c in world.commands[before:])
    reply = _act(client, action="transfer", call_uuid=session.uuid, kind="agent", target="1002")
    assert reply.get_json()["ok"] is True
    assert f"uuid_transfer {session.uuid} 1002 XML default" in world.commands
    _end(session, job)


def test_blind_transfer_to_a_queue_and_a_department_phone(desk, client):
    """Should send the caller back into the app for a queue, and to the department's contact phone."""
    acd, world, agent, *_ = desk
    department = _department()
    client.login("8001", PASSWORD)
    session, job = _in_call(acd, world, agent)
    assert _act(client, action="transfer", call_uuid=session.uuid, kind="queue", target="suggest").get_json()["ok"]
    assert f"uuid_setvar {session.uuid} hotline_queue suggest" in world.commands
    _end(session, job)
    wait_for(lambda: acd.agents[agent.id].state != "in_call", what="call over")
    acd.transition(agent.id, "ready")
    session, job = _in_call(acd, world, agent, caller="13912340001")
    reply = _act(client, action="transfer", call_uuid=session.uuid, kind="department", target=str(department.id))
    assert reply.get_json()["ok"] is True
    # Not into the default context (which hangs up anything but 12345 and a seat): bridged to the carrier.
    assert f"uuid_transfer {session.uuid} bridge:sofia/gateway/carrier/88001234 inline" in world.commands
    _end(session, job)


def test_every_desk_dial_out_refuses_an_international_number(desk, client):
    """Should refuse an international number for an outbound call, a blind and an attended transfer and a
    three-way call (the shipped policy: domestic only), with the reason on the desk, nothing sent to the
    switch, and each refusal logged with who, what and why (issue 16 item 6)."""
    from recorder.models import DialOutLog

    acd, world, agent, agent_user, _ = desk
    client.login("8001", PASSWORD)
    _act(client, action="ready")
    _act(client, action="not_ready", reason="回拨")
    reply = _act(client, action="dial", number="0012025550100")
    assert reply.status_code == 409 and "国际" in reply.get_json()["error"]
    assert acd.agents[agent.id].state == "idle"
    acd.transition(agent.id, "ready")
    session, job = _in_call(acd, world, agent)
    sent = len(world.commands)
    for action in ("transfer", "attended_transfer", "three_way"):
        reply = _act(client, action=action, call_uuid=session.uuid, kind="number", target="0012025550100")
        assert reply.status_code in (400, 409) and "国际" in reply.get_json()["error"], action
    assert not any("0012025550100" in c for c in world.commands[sent:])
    assert acd.agents[agent.id].state == "in_call"
    _end(session, job)
    rows = list(DialOutLog.select().order_by(DialOutLog.id))
    assert [(r.purpose, r.number_class, r.allowed, r.user_id) for r in rows] == [
        ("outbound", "international", False, agent_user.id), ("transfer", "international", False, agent_user.id),
        ("transfer", "international", False, agent_user.id), ("three_way", "international", False, agent_user.id)]
    assert all("international" in r.reason for r in rows)


def test_attended_transfer_and_three_way(desk, client):
    """Should consult an agent before transferring (never a queue), and call a third party into a conference."""
    acd, world, agent, *_ = desk
    client.login("8001", PASSWORD)
    session, job = _in_call(acd, world, agent)
    leg = acd.agents[agent.id].leg_uuid
    reply = _act(client, action="attended_transfer", call_uuid=session.uuid, kind="queue", target="suggest")
    assert reply.status_code == 400 and "请用盲转" in reply.get_json()["error"]
    assert _act(client, action="attended_transfer", call_uuid=session.uuid, kind="agent",
                target="9999").status_code == 400
    reply = _act(client, action="attended_transfer", call_uuid=session.uuid, kind="agent", target="1002")
    consult = reply.get_json()["consult"]
    assert reply.get_json()["ok"] is True and consult["state"] == "ringing" and consult["target"] == "agent:1002"
    assert any(c.startswith(f"uuid_broadcast {leg} att_xfer::{{origination_uuid={consult['leg']},")
               and c.endswith("}user/1002 aleg") for c in world.commands)
    _end(session, job)
    wait_for(lambda: acd.agents[agent.id].state != "in_call", what="call over")
    acd.transition(agent.id, "ready")
    session, job = _in_call(acd, world, agent, caller="13912340002")
    assert _act(client, action="three_way", call_uuid=session.uuid, kind="number",
                target="1390000x").status_code == 400
    assert _act(client, action="three_way", call_uuid=session.uuid, kind="number",
                target="13900001111").get_json()["ok"]
    wait_for(lambda: any("13900001111" in c and "conference" in c for c in world.commands), what="3-way originate")
    _end(session, job)


def test_back_to_ivr_only_to_nodes_of_the_tree(desk, client):
    """Should refuse a node that is not a hand-back node of the active tree, and hand the caller to satisfaction."""
    acd, world, agent, *_ = desk
    client.login("8001", PASSWORD)
    session, job = _in_call(acd, world, agent)
    for node in ("", "nosuch", "start", "satisfaction;hangup"):
        reply = _act(client, action="to_ivr", call_uuid=session.uuid, node=node)
        assert reply.status_code == 400 and "IVR" in reply.get_json()["error"], node
    assert _act(client, action="to_ivr", call_uuid=session.uuid, node="satisfaction").get_json()["ok"]
    assert f"uuid_setvar {session.uuid} hotline_ivr_node satisfaction" in world.commands
    _end(session, job)


def test_outbound_dial_team_lead_and_help(desk, client):
    """Should call a digits-only number out (the agent's phone first), refuse other input, refuse calling a
    team lead when none is free, and raise one help request at a time."""
    acd, world, agent, *_ = desk
    client.login("8001", PASSWORD)
    _act(client, action="ready")
    _act(client, action="not_ready", reason="回拨")
    for bad in ("", "138-0000-1111", "13800001111;hangup", "12"):
        reply = _act(client, action="dial", number=bad)
        assert reply.status_code == 400 and "位数字" in reply.get_json()["error"], bad
    reply = _act(client, action="dial", number="13800001111")
    assert reply.get_json()["ok"] is True and reply.get_json()["call_uuid"]
    wait_for(lambda: any(c.startswith("originate") and "13800001111" in c and "user/1001" in c
                         for c in world.commands), what="originate")
    reply = _act(client, action="call_team_lead")
    assert reply.status_code == 409 and reply.get_json()["error"] == "没有空闲的班长"
    assert _act(client, action="help", note="市民情绪激动").get_json()["ok"]
    assert acd.agents[agent.id].help_requested_at is not None
    assert SupervisorAction.select().where(SupervisorAction.action == "request_help").get().detail == "市民情绪激动"
    assert "求助请求已发出" in _act(client, action="help").get_json()["error"]


def test_call_waiting_counts_stream_for_the_agents_queues_only(desk, client):
    """Should stream the waiting count of a queue the agent serves, not of another skill's queue, and show
    the counts on the page."""
    acd, world, agent, *_ = desk
    client.login("8001", PASSWORD)

    def counts():
        acd._notify("queue", queue="suggest", waiting=7)  # would come first
        acd._notify("queue", queue="consult", waiting=3)

    body = stream_until(client, "/desk/events?max_seconds=60", lambda body: '"queue": "consult"' in body,
                        then=counts)
    assert '"queue": "consult", "waiting": 3' in body and "suggest" not in body
    acd.queue_waiters["consult"]["w1"] = object()
    html = client.get("/desk/").get_data(as_text=True)
    label = acd.queues["consult"].display_name or "consult"
    assert f'data-queue="consult" data-label="{label}">{label} 1<' in html and 'data-queue="suggest"' not in html
    acd.queue_waiters["consult"].pop("w1")


def test_complete_and_cancel_an_attended_transfer_from_the_desk(desk, client):
    """Should show the consultation on the page and over SSE, refuse to complete it before the target
    answers (or without a consultation, or another agent's), complete it once answered (the agent's leg hangs
    up, wrap-up follows), and cancel a second one (the consultation leg is hung up, the call goes on);
    every request needs the CSRF token and the agent role."""
    from switch import events as sw

    acd, world, agent, *_ = desk
    client.login("8001", PASSWORD)
    session, job = _in_call(acd, world, agent)
    leg = acd.agents[agent.id].leg_uuid
    reply = _act(client, action="complete_transfer", call_uuid=session.uuid)
    assert reply.status_code == 409 and "没有正在进行的咨询转接" in reply.get_json()["error"]
    html = client.get("/desk/").get_data(as_text=True)
    assert 'data-testid="consult" data-state="" hidden' in html
    consult = _act(client, action="attended_transfer", call_uuid=session.uuid, kind="agent",
                   target="1002").get_json()["consult"]
    world.channels.add(consult["leg"])
    html = client.get("/desk/").get_data(as_text=True)
    assert 'data-testid="consult" data-state="ringing"' in html and "agent:1002" in html
    complete = html[html.index('data-act="complete_transfer"'):]
    assert complete.index("disabled") < complete.index(">") and "完成转接" in html and "取消转接" in html
    assert client.post("/desk/action", data={"action": "complete_transfer", "call_uuid": session.uuid}
                       ).status_code == 400  # no CSRF token
    reply = _act(client, action="complete_transfer", call_uuid=session.uuid)
    assert reply.status_code == 409 and "咨询对象尚未接听" in reply.get_json()["error"]
    body = stream_until(client, "/desk/events?max_seconds=60", lambda body: '"state": "answered"' in body,
                        then=lambda: world.emit(sw.ChannelAnswered(server=world.server, uuid=consult["leg"])))
    assert "event: consult" in body and '"state": "answered"' in body
    assert 'data-testid="consult" data-state="answered"' in client.get("/desk/").get_data(as_text=True)
    assert client.get("/desk/pop").get_json()["consult"]["state"] == "answered"
    client.logout()
    client.login("9001", PASSWORD)  # a team lead without an agent record
    assert _act(client, action="complete_transfer", call_uuid=session.uuid).status_code == 400
    client.logout()
    client.login("8002", PASSWORD)  # another agent
    reply = _act(client, action="cancel_transfer", call_uuid=session.uuid)
    assert reply.status_code == 409 and "其他话务员" in reply.get_json()["error"]
    client.logout()
    client.login("8001", PASSWORD)
    reply = _act(client, action="complete_transfer", call_uuid=session.uuid)
    assert reply.get_json()["ok"] is True and reply.get_json()["consult"] is None
    assert f"uuid_kill {leg} NORMAL_CLEARING" in world.commands
    wait_for(lambda: acd.agents[agent.id].state == "wrap_up", what="wrap-up after the transfer")
    assert _act(client, action="complete_transfer", call_uuid=session.uuid).status_code == 409
    _end(session, job)
    assert [a.action for a in SupervisorAction.select().where(SupervisorAction.action.endswith("_transfer"))
            .order_by(SupervisorAction.id)] == ["attended_transfer", "complete_transfer"]

    acd.transition(agent.id, "ready")
    session, job = _in_call(acd, world, agent, caller="13912340003")
    consult = _act(client, action="attended_transfer", call_uuid=session.uuid, kind="number",
                   target="13900002222").get_json()["consult"]
    world.channels.add(consult["leg"])
    assert _act(client, action="hold", call_uuid=session.uuid).status_code == 409  # not while consulting
    reply = _act(client, action="cancel_transfer", call_uuid=session.uuid)
    assert reply.get_json()["ok"] is True and reply.get_json()["consult"] is None
    assert f"uuid_kill {consult['leg']} NORMAL_CLEARING" in world.commands
    assert acd.agents[agent.id].state == "in_call"
    assert _act(client, action="cancel_transfer", call_uuid=session.uuid).status_code == 409
    assert _act(client, action="hold", call_uuid=session.uuid).get_json()["on_hold"] is True
    _end(session, job)


def test_a_missed_ring_is_said_on_the_desk_with_ready_at_hand(desk, client):
    """Should stream a no_answer_break event to the agent whose phone rang out (on break now, reason named),
    and show the desk page with that message and its 示闲 button until the agent is ready again."""
    acd, world, agent, *_ = desk
    acd.transition(agent.id, "login")
    acd.transition(agent.id, "ready")
    world.phones["1001"].answer_delay = None                # rings until the ring time is over
    client.login("8001", PASSWORD)
    assert 'data-testid="no-answer-break" hidden' in client.get("/desk/").get_data(as_text=True)
    session = Session(world, caller="13912340077")
    jobs = []
    body = stream_until(client, "/desk/events?max_seconds=60", lambda body: "event: no_answer_break" in body,
                        then=lambda: jobs.append(gevent.spawn(acd.enter_queue, session, "consult")))
    job = jobs[0]
    event = next(chunk for chunk in body.split("\n\n") if chunk.startswith("event: no_answer_break"))
    data = json.loads(event.split("data: ", 1)[1])
    assert data["agent_id"] == agent.id and data["queue"] == "consult" and data["reason"] == acd.settings.no_answer_reason
    assert acd.agents[agent.id].status == "on_break"
    session.hangup_now()
    job.get(timeout=5)
    page = client.get("/desk/").get_data(as_text=True)
    assert "您未接听来电，已置为小休。点击“示闲”继续接听。" in page
    assert 'data-testid="no-answer-break" hidden' not in page and 'data-testid="no-answer-ready">示闲' in page
    assert client.post_form("/desk/action", {"action": "ready"}).get_json()["status"] == "available"
    assert 'data-testid="no-answer-break" hidden' in client.get("/desk/").get_data(as_text=True)


def _enabled(html: str) -> list[str]:
    start = html.index('data-enabled="') + len('data-enabled="')
    return html[start:html.index('"', start)].split(",")


def test_desk_enables_only_the_controls_valid_now(desk, client):
    """Should offer sign-in (示闲) only while logged out, break / sign-out / dial once ready, the call controls
    (and no status change to the same status) in a call, and end wrap-up only in wrap-up; the buttons of the
    rest are disabled in the page."""
    acd, world, agent, *_ = desk
    client.login("8001", PASSWORD)
    html = client.get("/desk/").get_data(as_text=True)
    assert _enabled(html) == ["ready"]
    hangup = html[html.index('data-act="hangup"'):]
    assert hangup.index("disabled") < hangup.index(">")
    assert _act(client, action="ready").get_json()["enabled"] == ["call_team_lead", "dial", "help", "logout", "not_ready"]
    session, job = _in_call(acd, world, agent)
    html = client.get("/desk/").get_data(as_text=True)
    assert set(_enabled(html)) == {"hangup", "hold", "transfer", "attended_transfer", "three_way", "to_ivr",
                                   "not_ready", "logout", "help"}
    assert 'data-since="' in html and 'data-since=""' not in html  # the call timer runs from the answer
    held = _act(client, action="hold", call_uuid=session.uuid).get_json()
    assert "resume" in held["enabled"] and "hold" not in held["enabled"]
    session.hangup_now()
    wait_for(lambda: acd.agents[agent.id].state != "in_call", what="call over")
    html = client.get("/desk/").get_data(as_text=True)
    assert "end_wrap_up" in _enabled(html) and "hangup" not in _enabled(html)


def test_two_desks_for_one_agent_the_newest_wins(desk, client):
    """Should let the desk opened last take actions: the earlier window's actions are refused with a plain
    message and its event stream says it was superseded."""
    acd, world, agent, *_ = desk
    client.login("8001", PASSWORD)

    def token(html):
        start = html.index('data-token="') + len('data-token="')
        return html[start:html.index('"', start)]

    first = token(client.get("/desk/").get_data(as_text=True))
    second = token(client.get("/desk/").get_data(as_text=True))
    assert first and second and first != second
    reply = _act(client, action="ready", desk=first)
    assert reply.status_code == 409 and reply.get_json()["superseded"] is True
    assert reply.get_json()["error"].startswith("本工作台已在另一个窗口打开")
    assert acd.agents[agent.id].status == "logged_out"
    body = client.get(f"/desk/events?max_seconds=2&desk={first}").get_data(as_text=True)
    assert "event: superseded" in body
    assert _act(client, action="ready", desk=second).get_json()["ok"]
    body = client.get(f"/desk/events?max_seconds=1&desk={second}").get_data(as_text=True)
    assert "superseded" not in body


def test_desk_shows_the_agents_day_and_work_history(desk, client):
    """Should show today's answered calls, talk time with units and tickets recorded by this agent, and the
    state log as a work history in Chinese (no status codes)."""
    acd, world, agent, agent_user, _ = desk
    client.login("8001", PASSWORD)
    _act(client, action="ready")
    _act(client, action="not_ready", reason="就餐")
    case_services.create_ticket("噪音扰民", citizen_phone="13912345678", created_by=agent_user)
    html = client.get("/desk/").get_data(as_text=True)
    history = html[html.index('data-testid="work-history"'):]
    history = history[:history.index("</table>")]
    assert "签入" in history and "示闲" in history and "示忙" in history and "就餐" in history
    assert "on_break" not in history and "available" not in history
    tickets = html[html.index('data-testid="day-tickets"'):]
    assert tickets[tickets.index(">") + 1:tickets.index("<")] == "1"
    talk = html[html.index('data-testid="day-talk"'):]
    assert talk[talk.index(">") + 1:talk.index("<")] == "0秒"
