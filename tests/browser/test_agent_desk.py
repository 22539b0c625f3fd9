"""In Chromium: an agent logs in, goes ready, a call arrives through the fake FreeSWITCH, the screen pop
shows the caller's earlier ticket, a ticket is saved, and wrap-up ends.

The web server, the ACD and the fake FreeSWITCH share one gevent hub in a background thread (as in
production, where run.py runs them in one process); the test thread drives Chromium and hands work to that
hub through ``Telephony.run_in_hub`` (tests/browser/telephony.py).
"""
from __future__ import annotations

import threading
import time

import pytest
from playwright.sync_api import expect

from acd.dispatcher import create_agent, create_queue
from caseflow import services as case_services
from caseflow.accounts import create_user
from caseflow.models import Ticket
from core import db as core_db
from tests.browser.conftest import login
from tests.browser.telephony import fresh_database, running

PASSWORD = "desk-pass-1234"


@pytest.fixture
def telephony(tmp_path):
    database, config = fresh_database(tmp_path, "desk.sqlite3", "desk-test-secret-" + "q" * 32)
    with database.connection_context():
        create_queue("consult", "consult", wrap_up_seconds=600, announce_interval=0)
        user = create_user("8001", "王芳", PASSWORD, roles="agent", extension="1001")
        create_agent(user, {"consult": 5})
        create_agent(create_user("8002", "赵敏", PASSWORD, roles="agent", extension="1002"), {"consult": 5})
        earlier = case_services.create_ticket("小区路灯不亮已经一周", citizen_phone="13912345678",
                                              citizen_name="李四", title="路灯不亮")
    with running(config, tmp_path) as thread:
        thread.earlier = earlier
        yield thread
    database.close()


def test_agent_takes_call_with_screen_pop_and_saves_ticket(page, telephony):
    """Should pop the caller's earlier ticket on answer, save the new ticket, and end the wrap-up."""
    login(page, telephony.url, "8001", PASSWORD)
    page.goto(telephony.url + "/desk/")
    expect(page.get_by_test_id("agent-status")).to_have_text("已签出")
    page.click("button[data-act=ready]")
    expect(page.get_by_test_id("agent-status")).to_have_text("就绪")

    call = telephony.run_in_hub(lambda: telephony.fs.place_call(telephony.outbound.address,
                                                                caller="13912345678", destination="12345"))
    expect(page.get_by_test_id("pop-number")).to_have_text("13912345678")
    expect(page.get_by_test_id("pop-citizen")).to_have_text("李四")
    expect(page.get_by_test_id("pop-tickets")).to_contain_text(telephony.earlier.number)
    expect(page.locator("#tf-phone")).to_have_value("13912345678")
    expect(page.get_by_test_id("agent-state")).to_have_text("通话中")

    telephony.run_in_hub(call.hangup)
    expect(page.get_by_test_id("agent-state")).to_have_text("话后处理")
    page.fill("#tf-content", "路灯仍然不亮，请尽快维修")
    with page.expect_navigation():
        page.click("#ticket-form button[type=submit]")
    expect(page.get_by_test_id("ticket-saved")).to_be_visible()
    expect(page.get_by_test_id("agent-state")).to_have_text("空闲")
    expect(page.get_by_test_id("agent-status")).to_have_text("就绪")
    with core_db.database.connection_context():
        saved = Ticket.select().where(Ticket.citizen_phone == "13912345678").order_by(Ticket.id.desc()).get()
    assert saved.id != telephony.earlier.id and saved.content == "路灯仍然不亮，请尽快维修"
    assert saved.created_by.operator_no == "8001"


def _wait_until(condition, what: str, timeout: float = 10.0) -> None:
    """Poll ``condition`` from the test thread until it holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        pause.wait(0.05)


def test_agent_holds_resumes_and_transfers_from_the_panel(page, telephony):
    """Should show the calls waiting in the agent's queues, hold and resume the call from the toggle, show a
    bad typed number's error, and blind-transfer the caller to another agent chosen from the list."""
    login(page, telephony.url, "8001", PASSWORD)
    listeners = len(telephony.acd.listeners)
    page.goto(telephony.url + "/desk/")
    toggle = page.get_by_test_id("hold-toggle")
    expect(toggle).to_be_disabled()  # no call yet
    expect(page.locator("button[data-act=transfer]")).to_be_disabled()
    page.click("button[data-act=ready]")
    expect(page.get_by_test_id("agent-status")).to_have_text("就绪")
    # The call-waiting indicator follows the queue counts the server streams (once the page listens).
    _wait_until(lambda: len(telephony.acd.listeners) > listeners, "the desk's event stream")
    telephony.run_in_hub(lambda: telephony.acd._notify("queue", queue="consult", waiting=2))
    expect(page.get_by_test_id("waiting")).to_have_text("consult 2")
    expect(page.get_by_test_id("call-waiting")).to_have_class("notice")
    telephony.run_in_hub(lambda: telephony.acd._notify("queue", queue="consult", waiting=0))
    expect(page.get_by_test_id("call-waiting")).not_to_have_class("notice")

    call = telephony.run_in_hub(lambda: telephony.fs.place_call(telephony.outbound.address,
                                                                caller="13912345679", destination="12345"))
    expect(page.get_by_test_id("agent-state")).to_have_text("通话中")
    expect(toggle).to_be_enabled()
    toggle.click()
    expect(toggle).to_contain_text("恢复")
    assert any(line.startswith("uuid_hold ") and "off" not in line for line in telephony.fs.api_log)
    toggle.click()
    expect(toggle).to_contain_text("保持")
    assert any(line.startswith("uuid_hold off ") for line in telephony.fs.api_log)

    page.select_option('[data-testid="transfer-kind"]', "number")
    page.fill('[data-testid="target-number"]', "1380abc")
    page.click("button[data-act=transfer]")
    expect(page.locator("#desk-error")).to_contain_text("号码只能是")
    page.select_option('[data-testid="transfer-kind"]', "agent")
    expect(page.get_by_test_id("target-agent")).to_be_visible()
    page.select_option('[data-testid="target-agent"]', "1002")
    page.click("button[data-act=transfer]")
    expect(page.locator("#desk-error")).to_have_text("")
    expect(page.get_by_test_id("agent-state")).not_to_have_text("通话中")
    assert any(line.startswith("uuid_transfer ") and " 1002 XML default" in line for line in telephony.fs.api_log)
    expect(toggle).to_be_disabled()
    telephony.run_in_hub(call.hangup)


def test_agent_consults_then_completes_the_transfer(page, telephony):
    """Should show 完成转接 / 取消转接 only while a consultation runs: cancel at once, complete once the target
    answered (the other call controls wait meanwhile); completing hands the caller over and starts wrap-up."""
    login(page, telephony.url, "8001", PASSWORD)
    listeners = len(telephony.acd.listeners)
    page.goto(telephony.url + "/desk/")
    consult = page.get_by_test_id("consult")
    expect(consult).to_be_hidden()
    page.click("button[data-act=ready]")
    expect(page.get_by_test_id("agent-status")).to_have_text("就绪")
    _wait_until(lambda: len(telephony.acd.listeners) > listeners, "the desk's event stream")
    telephony.fs.agents["1002"].answer_delay = 55  # the target rings for about half a second
    call = telephony.run_in_hub(lambda: telephony.fs.place_call(telephony.outbound.address,
                                                                caller="13912345670", destination="12345"))
    expect(page.get_by_test_id("agent-state")).to_have_text("通话中")
    page.select_option('[data-testid="target-agent"]', "1002")
    page.click("button[data-act=attended_transfer]")
    expect(consult).to_be_visible()
    expect(page.get_by_test_id("consult-target")).to_have_text("agent:1002")
    expect(page.locator("button[data-act=complete_transfer]")).to_be_disabled()
    expect(page.locator("button[data-act=cancel_transfer]")).to_be_enabled()
    expect(page.get_by_test_id("hold-toggle")).to_be_disabled()
    expect(page.locator("button[data-act=hangup]")).to_be_enabled()
    expect(page.get_by_test_id("consult-state")).to_have_text("已接通", timeout=10000)
    expect(page.locator("button[data-act=complete_transfer]")).to_be_enabled()
    page.click("button[data-act=complete_transfer]")
    expect(page.locator("#desk-error")).to_have_text("")
    expect(page.get_by_test_id("agent-state")).to_have_text("话后处理")
    expect(consult).to_be_hidden()
    leg = telephony.fs.agents["1002"].current
    assert leg is not None and leg.other is not None and leg.other.uuid == call.uuid
    telephony.run_in_hub(call.hangup)


def test_agent_who_misses_a_ring_is_told_and_goes_ready_in_one_click(page, telephony):
    """Should say plainly on the desk that a ring not answered put the agent on break (the ACD's
    no_answer_break event from a ring timeout on the fake switch), with 示闲 in that message, and go ready with
    one click on it."""
    login(page, telephony.url, "8001", PASSWORD)
    listeners = len(telephony.acd.listeners)
    page.goto(telephony.url + "/desk/")
    notice = page.get_by_test_id("no-answer-break")
    expect(notice).to_be_hidden()
    page.click("button[data-act=ready]")
    expect(page.get_by_test_id("agent-status")).to_have_text("就绪")
    _wait_until(lambda: len(telephony.acd.listeners) > listeners, "the desk's event stream")

    def ring_out():
        telephony.fs.agents["1001"].answer = "timeout"      # the phone rings until the queue's ring time ends
        return telephony.fs.place_call(telephony.outbound.address, caller="13912340099", destination="12345")
    call = telephony.run_in_hub(ring_out)
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("您未接听来电，已置为小休。点击“示闲”继续接听")
    expect(page.get_by_test_id("agent-status")).to_have_text("示忙")
    telephony.run_in_hub(call.hangup)                      # or the caller would be offered again at once
    page.get_by_test_id("no-answer-ready").click()
    expect(page.get_by_test_id("agent-status")).to_have_text("就绪")
    expect(notice).to_be_hidden()


def test_desk_is_one_screen_at_1366x768_while_taking_a_call(browser, telephony):
    """Should fit the desk in a 1366x768 window during a call with no page scroll: the bar with the state, a
    running call timer, the caller's number and only valid controls on top; the caller, the ticket form
    (category, region, urgency, address, reply) and the knowledge panel side by side below; Alt+E hangs up."""
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai",
                                  viewport={"width": 1366, "height": 768})
    try:
        page = context.new_page()
        login(page, telephony.url, "8001", PASSWORD)
        listeners = len(telephony.acd.listeners)
        page.goto(telephony.url + "/desk/")
        expect(page.locator("button[data-act=not_ready]")).to_be_disabled()  # logged out: only 示闲
        expect(page.locator("button[data-act=ready]").first).to_have_attribute("title", "示闲 (Alt+R)")
        page.keyboard.press("Alt+r")
        expect(page.get_by_test_id("agent-status")).to_have_text("就绪")
        expect(page.locator("button[data-act=ready]").first).to_be_disabled()  # a second 示闲 cannot be sent
        _wait_until(lambda: len(telephony.acd.listeners) > listeners, "the desk's event stream")
        call = telephony.run_in_hub(lambda: telephony.fs.place_call(telephony.outbound.address,
                                                                    caller="13912345678", destination="12345"))
        expect(page.get_by_test_id("agent-state")).to_have_text("通话中")
        expect(page.get_by_test_id("pop-open")).to_contain_text(telephony.earlier.number)
        expect(page.get_by_test_id("call-timer")).not_to_have_text("00:00", timeout=5000)
        assert page.evaluate("document.documentElement.scrollHeight") <= 768
        boxes = {name: page.locator(selector).bounding_box() for name, selector in
                 (("caller", "#pop"), ("form", "#ticket-form"), ("kb", "#kb-panel"), ("bar", "#controls"))}
        assert boxes["caller"]["x"] < boxes["form"]["x"] < boxes["kb"]["x"]            # side by side
        assert boxes["bar"]["y"] + boxes["bar"]["height"] <= boxes["form"]["y"]
        for name, box in boxes.items():
            assert box["x"] + box["width"] <= 1366 and box["y"] < 768, name
        for field in ("#tf-category", "#tf-region", "#tf-urgency", "#tf-address", "#tf-content", "#tf-reply"):
            expect(page.locator(field)).to_be_visible()
        expect(page.locator("button[data-act=end_wrap_up]")).to_be_disabled()
        page.keyboard.press("Alt+e")
        expect(page.get_by_test_id("agent-state")).to_have_text("话后处理")
        expect(page.locator("button[data-act=hangup]")).to_be_disabled()
        expect(page.locator("button[data-act=end_wrap_up]")).to_be_enabled()
        telephony.run_in_hub(lambda: None if call.channel.hung_up else call.hangup())
    finally:
        context.close()


def test_two_desks_for_one_agent_the_other_window_says_so(browser, telephony):
    """Should let the desk opened last win: the first window says it was opened elsewhere and its controls
    are disabled; the second takes actions."""
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        first = context.new_page()
        login(first, telephony.url, "8001", PASSWORD)
        first.goto(telephony.url + "/desk/")
        expect(first.locator("button[data-act=ready]").first).to_be_enabled()
        second = context.new_page()
        second.goto(telephony.url + "/desk/")
        expect(first.locator("#desk-error")).to_contain_text("本工作台已在另一个窗口打开")
        expect(first.locator("button[data-act=ready]").first).to_be_disabled()
        second.click("button[data-act=ready]")
        expect(second.get_by_test_id("agent-status")).to_have_text("就绪")
        expect(second.locator("#desk-error")).to_have_text("")
    finally:
        context.close()
