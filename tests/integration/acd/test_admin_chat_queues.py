"""Chat queue administration (/admin/acd/chat-queues) on both databases: who may see and change what
(acd.policy: the administrator everything, a team lead the rule, the offer time and the maximum wait),
checked forms, CSRF, audit, and the demo chat queues that open the website's /chat."""
from __future__ import annotations

import pytest

from acd import chat
from acd.demo import DEMO_AGENTS, DEMO_CHAT_QUEUES, load_acd_demo
from acd.dispatcher import create_agent
from acd.models import AgentSkill, ChatQueue
from caseflow.models import User
from tests.integration.acd.admin_pages import (  # noqa: F401 - people: the fixture
    PASSWORD, assert_only_staff_get_in, audits, people)


def chat_form(**changes) -> dict:
    form = {"name": "web-consult", "display_name": "政策咨询", "skill": "consult", "strategy": "least_talk_time",
            "offer_timeout": "30", "max_wait": "600", "active": "1"}
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_pages_refuse_anonymous_and_other_roles(client, people):
    """Should send anonymous users to the login page and refuse agents and leaders (403), writing nothing."""
    queue = chat.create_queue("web-consult", "consult", display_name="政策咨询")
    pages = ["/admin/acd/chat-queues", "/admin/acd/chat-queues/new", f"/admin/acd/chat-queues/{queue.id}"]
    assert_only_staff_get_in(client, pages, [("/admin/acd/chat-queues/new", chat_form(name="x1")),
                                             (f"/admin/acd/chat-queues/{queue.id}", chat_form(strategy="random"))])
    assert [(q.name, q.strategy) for q in ChatQueue.select()] == [("web-consult", "least_talk_time")]


def test_admin_creates_a_chat_queue_that_becomes_a_topic_of_the_website(client, people):
    """Should create an audited chat queue from the form, list it with the call queues' tabs, offer it as a
    topic on /chat, and take it off /chat when switched off."""
    client.login("0001", PASSWORD)
    assert "交谈队列" in client.get("/admin/acd/").get_data(as_text=True)
    assert "尚无交谈队列" in client.get("/admin/acd/chat-queues").get_data(as_text=True)
    response = client.post_form("/admin/acd/chat-queues/new", chat_form())
    assert response.status_code == 303
    queue = ChatQueue.get(ChatQueue.name == "web-consult")
    assert (queue.skill, queue.offer_timeout, queue.max_wait, queue.active) == ("consult", 30, 600, True)
    (row,) = audits("chat_queue_create")
    assert row.operator_no == "0001" and row.obj_id == "web-consult" and "skill=consult" in row.detail
    listing = client.get("/admin/acd/chat-queues").get_data(as_text=True)
    assert 'data-queue="web-consult"' in listing and "政策咨询" in listing
    assert "政策咨询" in client.get("/chat/").get_data(as_text=True)
    form = chat_form(name=None)
    del form["active"]  # the box unticked
    assert client.post_form(f"/admin/acd/chat-queues/{queue.id}", form).status_code == 303
    assert not ChatQueue.get_by_id(queue.id).active
    assert "在线咨询暂未开放" in client.get("/chat/").get_data(as_text=True)
    (change,) = audits("chat_queue_update")
    assert change.detail == "active=False"


@pytest.mark.parametrize("changes, error", [
    ({"name": "Bad Name"}, "the queue code must start"),
    ({"skill": "x y"}, "the skill must start"),
    ({"display_name": ""}, "topic must be 1-100"),
    ({"display_name": "a\x07b"}, "contains control characters"),
    ({"strategy": "fastest"}, "unknown distribution rule"),
    ({"offer_timeout": "5"}, "offer time must be between 10 and 300"),
    ({"offer_timeout": "thirty"}, "offer time must be a whole number"),
    ({"max_wait": "99999"}, "max wait must be between 0 and 3600"),
    ({"max_wait": "9" * 400}, "max wait must be a whole number"),
])
def test_bad_chat_queue_forms_are_refused_with_the_reason(client, people, changes, error):
    """Should answer a bad form with 400 and the reason in the administrator's language (English here),
    and store nothing."""
    User.update(language="en").where(User.operator_no == "0001").execute()
    client.login("0001", PASSWORD)
    response = client.post_form("/admin/acd/chat-queues/new", chat_form(**changes))
    assert response.status_code == 400 and error in response.get_data(as_text=True)
    assert ChatQueue.select().count() == 0 and audits("chat_queue_create") == []


def test_duplicate_name_and_missing_csrf_token_are_refused(client, people):
    """Should refuse a second chat queue of the same code, and a form without the CSRF token."""
    chat.create_queue("web-consult", "consult", display_name="政策咨询")
    User.update(language="en").where(User.operator_no == "0001").execute()
    client.login("0001", PASSWORD)
    response = client.post_form("/admin/acd/chat-queues/new", chat_form(skill="general"))
    assert response.status_code == 400 and "chat queue web-consult already exists" in response.get_data(as_text=True)
    assert client.post("/admin/acd/chat-queues/new", data=chat_form(name="other")).status_code in (400, 403)
    assert [q.skill for q in ChatQueue.select()] == ["consult"]


def test_team_lead_changes_the_shift_fields_of_a_chat_queue_only(client, people):
    """Should let a team lead read chat queues and change the rule, the offer time and the maximum wait
    (audited), show the other fields read-only, and refuse creating one or changing its topic (403, audited,
    nothing saved)."""
    queue = chat.create_queue("web-consult", "consult", display_name="政策咨询")
    client.login("8001", PASSWORD)
    assert client.get("/admin/acd/chat-queues/new").status_code == 403
    assert client.post_form("/admin/acd/chat-queues/new", chat_form(name="x2")).status_code == 403
    page = client.get(f"/admin/acd/chat-queues/{queue.id}").get_data(as_text=True)
    for field in ("strategy", "offer_timeout", "max_wait"):
        assert f'name="{field}" disabled' not in page, field
    for field in ("display_name", "skill"):
        assert f'name="{field}" disabled' in page, field
    assert 'name="active" value="1" disabled' in page
    sent = {"strategy": "longest_idle", "offer_timeout": "45", "max_wait": "900"}  # what the browser sends
    assert client.post_form(f"/admin/acd/chat-queues/{queue.id}", sent).status_code == 303
    saved = ChatQueue.get_by_id(queue.id)
    assert (saved.strategy, saved.offer_timeout, saved.max_wait, saved.active) == ("longest_idle", 45, 900, True)
    (row,) = audits("chat_queue_update")
    assert row.operator_no == "8001" and "offer_timeout=45" in row.detail
    refused = client.post_form(f"/admin/acd/chat-queues/{queue.id}", dict(sent, display_name="随便聊聊"))
    assert refused.status_code == 403 and ChatQueue.get_by_id(queue.id).display_name == "政策咨询"
    (why,) = audits("chat_queue_update_refused")
    assert "display_name" in why.detail


def test_a_chat_queues_skill_can_be_given_to_agents(client, people):
    """Should offer a skill only a chat queue serves on the agent form, so agents can be made to take it."""
    chat.create_queue("web-only", "webchat", display_name="网上咨询")
    agent = create_agent(people["agent"], {})
    client.login("0001", PASSWORD)
    assert 'name="level_webchat"' in client.get(f"/admin/acd/agents/{agent.id}").get_data(as_text=True)
    response = client.post_form(f"/admin/acd/agents/{agent.id}", {"extension": "1000", "server": "",
                                                                 "position": "0", "level_webchat": "6"})
    assert response.status_code == 303
    assert [(s.skill, s.level) for s in AgentSkill.select().where(AgentSkill.agent == agent.id)] == [("webchat", 6)]


def test_demo_loads_chat_queues_the_demo_agents_serve(client, db):
    """Should load the demo chat queues with the demo data, each served by demo agents, shown on /chat."""
    from caseflow.demo import load_demo

    load_demo()
    made = load_acd_demo()
    assert [line for line in made if line.startswith("chat queue")] == [f"chat queue {n}" for n, *_ in DEMO_CHAT_QUEUES]
    page = client.get("/chat/").get_data(as_text=True)
    for name, topic, skill, _rule in DEMO_CHAT_QUEUES:
        assert ChatQueue.get(ChatQueue.name == name).active and topic in page
        assert any(skill in skills for skills in DEMO_AGENTS.values()), name
        assert AgentSkill.select().where(AgentSkill.skill == skill).exists()
