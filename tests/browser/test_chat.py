"""In Chromium: a citizen on a phone-sized page (390x844) opens the website's online chat, an agent (who set
how many chats they take on the desk) answers on the desk, a message goes each way, the agent sends a
knowledge-base answer into the chat, the team lead sees the chat queue on the console, the agent ends the chat,
the citizen sees the acceptance number of the ticket holding the transcript, and the ticket page shows that
transcript. No page may log a console error or a Content-Security-Policy violation. With the SMS channel on, a
citizen confirms the phone by the SMS code (read from the outbox, where the SMS gateway takes it) and the desk
shows that citizen's earlier cases.

The app, the ACD and the fake FreeSWITCH run in one background hub as in test_agent_desk (tests/browser/telephony.py).
"""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from acd import chat
from acd.dispatcher import create_agent, create_queue
from acd.models import ChatSession
from caseflow import knowledge
from caseflow.accounts import create_user
from core import db as core_db
from tests.browser.conftest import login
from tests.browser.telephony import fresh_database, running

PASSWORD = "chat-pass-1234"
KB_ANSWER = "请提供施工地点和时间，我们转城管执法部门夜间核查。"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True,
         "has_touch": True}


def chat_world(tmp_path, monkeypatch, **settings):
    """The telephony hub serving the chat world (queues, two agents, a team lead, a knowledge answer), with
    ``settings`` (HOTLINE_* names) added to the configuration; yields the running thread."""
    import webui.blueprints.portal as portal_bp

    monkeypatch.setattr(portal_bp, "CAPTCHA_ALPHABET", "A")  # a picture whose answer the test knows
    database, config = fresh_database(tmp_path, "chat.sqlite3", "chat-test-secret-" + "k" * 32, **settings)
    with database.connection_context():
        create_queue("consult", "consult", announce_interval=0)
        chat.create_queue("web-consult", "consult", display_name="政策咨询")
        create_agent(create_user("8001", "王芳", PASSWORD, roles="agent", extension="1001"), {"consult": 5})
        create_agent(create_user("8002", "赵敏", PASSWORD, roles="agent", extension="1002"), {"general": 5})
        create_user("9001", "陈班长", PASSWORD, roles="team_lead")
        item = knowledge.create_item("夜间施工噪音投诉办法", "夜间施工噪音可拨打12345或在网站写信反映。",
                                     review_state="approved")
        knowledge.review(knowledge.add_answer(item, KB_ANSWER), "approved")
    with running(config, tmp_path) as thread:
        yield thread
    database.close()


@pytest.fixture
def telephony(tmp_path, monkeypatch):
    yield from chat_world(tmp_path, monkeypatch)


@pytest.fixture
def telephony_sms(tmp_path, monkeypatch):
    """The same with the SMS channel on (a gateway configured): the chat form offers an SMS code."""
    yield from chat_world(tmp_path, monkeypatch, HOTLINE_SMS_SECRET="s" * 20,
                          HOTLINE_SMS_GATEWAY="http://127.0.0.1:9/cgi-bin/sendsms",
                          HOTLINE_SMS_QUIET_HOURS="00:00-23:59")


def watch(page) -> list[str]:
    """Console errors, CSP violations, uncaught exceptions and failed requests of ``page``, as they happen."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" or "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda error: problems.append(f"exception: {error}"))
    page.on("response", lambda response: problems.append(f"HTTP {response.status} {response.url}")
            if response.status >= 400 else None)
    page.add_init_script("document.addEventListener('securitypolicyviolation', function (e) {"
                         " console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI); });")
    return problems


def test_citizen_chats_with_an_agent_and_gets_the_acceptance_number(browser, telephony):
    """Should carry a citizen's chat from /chat on a phone to the desk and back: the agent's chat capacity set
    on the desk, waiting, answered, one message each way and a knowledge answer sent into the chat, the chat
    queue and the agent's chats on the team lead's console, ended by the agent with the ticket's acceptance
    number shown and the transcript on the ticket page; no console error or CSP violation on any page, and the
    phone page never scrolls sideways."""
    desk_context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    phone_context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **PHONE)
    lead_context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        desk, phone, lead = desk_context.new_page(), phone_context.new_page(), lead_context.new_page()
        desk_problems, phone_problems, lead_problems = watch(desk), watch(phone), watch(lead)

        login(desk, telephony.url, "8001", PASSWORD)
        desk.goto(telephony.url + "/desk/")
        desk.click("button[data-act=ready]")
        expect(desk.get_by_test_id("agent-status")).to_have_text("就绪")
        desk.get_by_test_id("tab-chat").click()  # the chats share a tab with the knowledge base
        expect(desk.get_by_test_id("chat-none")).to_be_visible()
        # How many chats the agent takes beside calls, set on the desk.
        expect(desk.get_by_test_id("chat-capacity")).to_have_value("2")
        desk.get_by_test_id("chat-capacity").fill("1")
        with desk.expect_response(lambda r: r.url.endswith("/desk/chat/capacity")) as saved:
            desk.get_by_test_id("chat-capacity-save").click()
        assert saved.value.json() == {"ok": True, "capacity": 1}
        with core_db.database.connection_context():
            agent_id = next(a.id for a in telephony.acd.agents.values() if a.extension == "1001")
            assert chat.capacity(agent_id) == 1

        phone.goto(telephony.url + "/chat/")
        expect(phone.locator("#captcha-img")).to_have_js_property("complete", True)
        phone.select_option("#queue", label="政策咨询")
        phone.fill("#name", "王小明")
        phone.fill("#phone", "13700001111")
        phone.fill("#captcha", "AAAAA")
        with phone.expect_navigation():
            phone.get_by_role("button", name="开始交谈").click()
        expect(phone.get_by_test_id("chat-room")).to_be_visible()
        expect(phone.get_by_test_id("chat-status")).to_contain_text("排队位置")

        card = desk.get_by_test_id("desk-chat")
        expect(card).to_contain_text("政策咨询")
        expect(card).to_contain_text("13700001111")
        card.get_by_test_id("desk-chat-answer").click()
        expect(card.get_by_test_id("desk-chat-answer")).to_be_hidden()
        expect(desk.locator("#tf-phone")).to_have_value("13700001111")
        expect(phone.get_by_test_id("chat-status")).to_have_text("话务员 8001 正在为您服务")

        phone.get_by_test_id("chat-text").fill("请问夜间施工噪音怎么投诉？")
        phone.get_by_test_id("chat-send").click()
        expect(phone.get_by_test_id("chat-text")).to_have_value("")
        expect(card.get_by_test_id("desk-chat-log").locator("li[data-sender=citizen]")).to_contain_text(
            "请问夜间施工噪音怎么投诉？")

        card.get_by_test_id("desk-chat-text").fill("可以登记，我们转交城管。")
        card.get_by_test_id("desk-chat-send").click()
        expect(phone.get_by_test_id("chat-log").locator("li[data-sender=agent]")).to_contain_text(
            "可以登记，我们转交城管。")
        expect(phone.get_by_test_id("chat-log").locator("li[data-sender=citizen]")).to_have_count(1)

        # A knowledge answer into the chat, from the knowledge tab beside the ticket form.
        desk.get_by_test_id("tab-kb").click()
        desk.get_by_test_id("kb-query").fill("施工噪音")
        desk.get_by_test_id("kb-query").press("Enter")
        desk.get_by_test_id("kb-result").first.click()
        desk.get_by_test_id("kb-item").get_by_test_id("kb-chat").last.click()
        expect(phone.get_by_test_id("chat-log").locator("li[data-sender=agent]")).to_have_count(2)
        expect(phone.get_by_test_id("chat-log").locator("li[data-sender=agent]").last).to_contain_text(KB_ANSWER)
        desk.get_by_test_id("tab-chat").click()

        # The team lead's console: the chat queue and the agent's chats against the capacity they set.
        login(lead, telephony.url, "9001", PASSWORD)
        lead.goto(telephony.url + "/supervisor/")
        queue_row = lead.get_by_test_id("chat-queue-stats").locator("tbody tr", has_text="政策咨询")
        expect(queue_row.locator("td").nth(3)).to_have_text("1")
        agent_row = lead.get_by_test_id("chat-agent-stats").locator("tbody tr", has_text="8001")
        expect(agent_row.locator("td")).to_have_text(["8001 王芳", "1", "0", "1"])

        card.get_by_test_id("desk-chat-close").click()
        expect(card.get_by_test_id("desk-chat-status")).to_contain_text("已结束")
        expect(phone.get_by_test_id("chat-ended")).to_be_visible()
        with core_db.database.connection_context():
            session = ChatSession.get(ChatSession.citizen_phone == "13700001111")
            number = session.ticket.number
        assert session.state == "closed" and session.end_reason == "agent"
        expect(phone.get_by_test_id("chat-number")).to_have_text(number)
        expect(phone.locator("#chat-form")).to_be_hidden()
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390

        # The transcript is stored with the ticket: its page shows every line, the knowledge answer included.
        desk.goto(f"{telephony.url}/tickets/{number}")
        lines = desk.get_by_test_id("chat-transcript-lines")
        expect(lines.locator("li[data-sender=citizen]")).to_contain_text(["请问夜间施工噪音怎么投诉？"])
        expect(lines.locator("li[data-sender=agent]")).to_contain_text(["可以登记，我们转交城管。", KB_ANSWER])

        assert phone_problems == [] and desk_problems == [] and lead_problems == [], (
            phone_problems, desk_problems, lead_problems)
    finally:
        desk_context.close()
        phone_context.close()
        lead_context.close()


def test_citizen_confirms_the_phone_by_sms_code_and_the_desk_shows_the_history(browser, telephony_sms):
    """Should offer the SMS code on /chat while the SMS channel is on: the citizen types the phone, asks for a
    code (queued as an urgent SMS to that number, masked on the page), types the code from the SMS instead of
    the picture and starts the chat; the agent's chat card then shows the citizen's earlier case (number, title)
    with the name, as only a confirmed number allows; no console error or CSP violation on either page."""
    from caseflow import services as case_services
    from tests.integration.webui_caseflow.test_portal_sms_codes import last_code

    with core_db.database.connection_context():
        earlier = case_services.create_ticket("路灯坏了", title="路灯坏了", citizen_phone="13700002222",
                                               citizen_name="王小明")
    desk_context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    phone_context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **PHONE)
    try:
        desk, phone = desk_context.new_page(), phone_context.new_page()
        desk_problems, phone_problems = watch(desk), watch(phone)
        login(desk, telephony_sms.url, "8001", PASSWORD)
        desk.goto(telephony_sms.url + "/desk/")
        desk.click("button[data-act=ready]")
        expect(desk.get_by_test_id("agent-status")).to_have_text("就绪")
        desk.get_by_test_id("tab-chat").click()

        phone.goto(telephony_sms.url + "/chat/")
        phone.select_option("#queue", label="政策咨询")
        phone.fill("#name", "王小明")
        phone.fill("#phone", "13700002222")
        with phone.expect_navigation():
            phone.get_by_test_id("send-code").click()
        expect(phone.get_by_test_id("notice")).to_contain_text("137****2222")
        with core_db.database.connection_context():
            code = last_code("13700002222")  # the SMS the gateway is handed (channels.outbox)
        expect(phone.locator("#phone")).to_have_value("13700002222")  # the form kept what was typed
        phone.fill("#sms_code", code)
        with phone.expect_navigation():
            phone.get_by_role("button", name="开始交谈").click()
        expect(phone.get_by_test_id("chat-room")).to_be_visible()

        card = desk.get_by_test_id("desk-chat")
        expect(card).to_contain_text("13700002222")
        history = card.get_by_test_id("desk-chat-history")
        expect(history).to_contain_text("王小明")
        expect(history).to_contain_text(f"{earlier.number} 路灯坏了")
        with core_db.database.connection_context():
            assert ChatSession.get(ChatSession.citizen_phone == "13700002222").phone_verified
        assert phone_problems == [] and desk_problems == [], (phone_problems, desk_problems)
    finally:
        desk_context.close()
        phone_context.close()
