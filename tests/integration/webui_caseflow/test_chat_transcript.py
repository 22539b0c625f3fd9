"""A chat's transcript on its ticket's page (acd.chat.shown_chats through desk_chat's ticket_chats), on both
databases: in full for those caseflow.privacy lets see the citizen's contact, masked like the rest of the
page for the others, and linked from the centre's and the department's ticket lists."""
from __future__ import annotations

import html

import pytest

from acd import chat
from acd.dispatcher import create_agent
from acd.models import ChatSession
from caseflow import services

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def chatted(world, clock):
    """A chat answered by agent 1001 and left by the citizen: its ticket (channel chat) holds the transcript."""
    queue = chat.create_queue("web-consult", "consult", display_name="政策咨询")
    agent = create_agent(world.agent, {"consult": 5}, extension="1000")
    session, _token = chat.start(queue.id, name="王小明", phone="13700001111", clock=clock)
    ChatSession.update(state="offered", agent=agent).where(ChatSession.id == session.id).execute()
    chat.answer(session, agent, clock)
    chat.post(session, "citizen", f"我叫王小明，另一个电话 13999998888，邮箱 wxm@example.cn {SCRIPT}", clock=clock)
    chat.post(session, "agent", "好的，我们登记一下。", agent=agent, clock=clock)
    ended = chat.close(session, "citizen", clock)
    return ended.ticket


def test_centre_and_handling_department_read_the_transcript_in_full(world, login, chatted, clock):
    """Should show the centre and the handling department the chat's topic, the citizen's name and phone,
    the agent and every line as written (as text: a script stays text), with the end and the number."""
    services.dispatch(chatted, world.centre_user, world.east, clock=clock)
    for user in (world.centre_user, world.east_user):
        page = login(user).get(f"/tickets/{chatted.number}").get_data(as_text=True)
        assert 'id="chat-transcript"' in page and "在线交谈记录" in page, user.operator_no
        assert "政策咨询" in page and "王小明 13700001111" in page and "接待话务员" in page
        assert "13999998888" in page and "wxm@example.cn" in page
        assert SCRIPT not in page and html.escape(SCRIPT, quote=False) in page
        assert "好的，我们登记一下。" in page and "您结束了交谈" in page
        assert f"受理号 {chatted.number}" in page


def test_roles_without_full_contact_see_the_transcript_masked(world, login, chatted):
    """Should mask the citizen's name and phone and any phone number or e-mail address typed in the chat for
    an agent (no citizen.full_contact), as the rest of the ticket page, keeping the acceptance number."""
    page = login(world.agent).get(f"/tickets/{chatted.number}").get_data(as_text=True)
    transcript = page[page.index('id="chat-transcript"'):page.index("</section>", page.index('id="chat-transcript"'))]
    assert 'data-testid="chat-transcript"' in transcript
    for secret in ("13700001111", "13999998888", "wxm@example.cn", "王小明"):
        assert secret not in transcript, secret
    assert "13700001111" not in page  # the citizen's own number nowhere (the content holds what they typed)
    assert "已脱敏" in transcript and "王**" in transcript
    assert f"受理号 {chatted.number}" in transcript and "好的，我们登记一下。" in transcript


def test_ticket_lists_link_to_the_transcript(world, login, chatted, clock):
    """Should link a chat ticket's transcript from the centre's list and, once dispatched, from the
    department's list; other tickets get no such link."""
    centre = login(world.centre_user).get("/centre/?q=to_dispatch").get_data(as_text=True)
    link = f'href="/tickets/{chatted.number}#chat-transcript" data-testid="chat-link"'
    assert link in centre
    services.dispatch(chatted, world.centre_user, world.east, clock=clock)
    dept = login(world.east_user).get("/dept/").get_data(as_text=True)
    assert link in dept and dept.count('data-testid="chat-link"') == 1
    assert f"/tickets/{world.east_ticket.number}#chat-transcript" not in dept


def test_a_ticket_without_a_chat_shows_no_transcript(world, login):
    """Should leave the chat section out of a ticket no chat is stored with."""
    page = login(world.centre_user).get(f"/tickets/{world.east_ticket.number}").get_data(as_text=True)
    assert 'id="chat-transcript"' not in page


def _content(page: str) -> str:
    start = page.index('data-testid="content"')
    return page[start:page.index("</div>", start)]


def test_roles_without_full_contact_see_a_chat_tickets_content_masked(world, login, chatted, clock):
    """Should mask the chat ticket's content (its transcript) for an agent as the transcript section is: the
    citizen's name and phone and any phone or e-mail they typed, the lines kept; the centre reads it as
    written."""
    content = _content(login(world.agent).get(f"/tickets/{chatted.number}").get_data(as_text=True))
    for secret in ("13999998888", "wxm@example.cn", "王小明"):
        assert secret not in content, secret
    assert "139****8888" in content and "王**" in content and "好的，我们登记一下。" in content
    full = _content(login(world.centre_user).get(f"/tickets/{chatted.number}").get_data(as_text=True))
    assert "13999998888" in full and "wxm@example.cn" in full and "王小明" in full


def test_a_phone_tickets_content_is_shown_as_written(world, login):
    """Should leave the content of a ticket from another channel as the agent wrote it (not a transcript)."""
    ticket = services.create_ticket("来电反映：回电 13999998888", channel="phone", citizen_phone="13700002222")
    content = _content(login(world.agent).get(f"/tickets/{ticket.number}").get_data(as_text=True))
    assert "13999998888" in content
