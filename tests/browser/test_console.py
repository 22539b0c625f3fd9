"""In Chromium: the team-lead console as a wallboard, kept live by its event stream while an agent takes a call
through the fake FreeSWITCH (polling only while the stream is down): states in Chinese, only the actions that
apply, a confirmation before force release."""
from __future__ import annotations

from playwright.sync_api import expect

from caseflow.accounts import create_user
from core import db as core_db
from tests.browser.conftest import login
from tests.browser.test_agent_desk import PASSWORD, telephony  # noqa: F401 - the fixture

ON_CALL_BUTTONS = ["监听", "密语", "强插", "拦截", "强拆"]


def _buttons(row) -> list[str]:
    return [text.strip() for text in row.locator("td.actions button").all_inner_texts()]


def test_console_shows_chinese_states_and_only_applicable_actions(browser, telephony):  # noqa: F811
    """Should show each agent's state in Chinese with its time in units, on-call actions only on a call,
    none for a logged-out agent, and end the call on force release only once the lead confirms."""
    with core_db.database.connection_context():
        create_user("9001", "陈班长", PASSWORD, roles="team_lead")
    acd = telephony.acd
    first = next(a for a in acd.agents.values() if a.extension == "1001")
    second = next(a for a in acd.agents.values() if a.extension == "1002")
    telephony.run_in_hub(lambda: (acd.transition(first.id, "login"), acd.transition(first.id, "ready")))
    context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 768})
    page = context.new_page()
    polled, errors = [], []
    page.on("request", lambda request: polled.append(request.url) if "/supervisor/stats" in request.url else None)
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    login(page, telephony.url, "9001", PASSWORD)
    with page.expect_response(lambda response: "/supervisor/stream" in response.url):
        page.goto(telephony.url + "/supervisor/")
    row1 = page.locator(f'tr[data-agent="{first.id}"]')
    row2 = page.locator(f'tr[data-agent="{second.id}"]')
    expect(row1.get_by_test_id("agent-state")).to_have_text("空闲")
    expect(row2.get_by_test_id("agent-state")).to_have_text("已签出")
    assert _buttons(row2) == []
    assert not set(ON_CALL_BUTTONS) & set(_buttons(row1)) and "强制签出" in _buttons(row1)
    expect(page.locator('[data-total="idle"]')).to_have_text("1")
    expect(page.locator('[data-total="logged_out"]')).to_have_text("1")
    headings = page.get_by_test_id("agent-stats").locator("thead th").all_inner_texts()
    assert len(headings) == len(set(headings)), headings  # one column per meaning

    call = telephony.run_in_hub(lambda: telephony.fs.place_call(telephony.outbound.address,
                                                                caller="13912345678", destination="12345"))
    expect(row1.get_by_test_id("agent-state")).to_have_text("通话中")  # pushed by the stream, no reload
    expect(page.locator('[data-total="on_call"]')).to_have_text("1")
    assert polled == []  # the stream was up: no polling
    assert errors == []  # no script refused by the Content-Security-Policy, no broken event
    expect(row1.locator("td.num").first).to_contain_text("秒")
    buttons = _buttons(row1)
    assert buttons[:5] == ON_CALL_BUTTONS and "应答求助" not in buttons, buttons

    page.once("dialog", lambda dialog: dialog.dismiss())
    row1.locator("button", has_text="强拆").click()
    expect(row1.locator("button", has_text="强拆")).to_be_enabled()
    assert acd.agents[first.id].state == "in_call"  # dismissed: nothing sent
    messages = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
    row1.locator("button", has_text="强拆").click()
    expect(page.locator("#console-message")).to_have_text("已执行。")
    assert messages == ["确定强拆该话务员的通话吗？"]
    expect(row1.get_by_test_id("agent-state")).not_to_have_text("通话中")
    page.screenshot(path=str(telephony.folder / "console.png"))
    telephony.run_in_hub(call.hangup)
    context.close()


def test_console_polls_while_its_stream_is_down(browser, telephony):  # noqa: F811
    """Should still show an agent's new state without a reload when the event stream cannot be opened,
    by polling the console's figures until the stream is back."""
    with core_db.database.connection_context():
        create_user("9001", "陈班长", PASSWORD, roles="team_lead")
    acd = telephony.acd
    first = next(a for a in acd.agents.values() if a.extension == "1001")
    context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 768})
    page = context.new_page()
    context.route("**/supervisor/stream*", lambda route: route.fulfill(status=503, body="down"))
    login(page, telephony.url, "9001", PASSWORD)
    with page.expect_request(lambda request: "/supervisor/stats" in request.url):
        page.goto(telephony.url + "/supervisor/")
    row1 = page.locator(f'tr[data-agent="{first.id}"]')
    expect(row1.get_by_test_id("agent-state")).to_have_text("已签出")
    telephony.run_in_hub(lambda: (acd.transition(first.id, "login"), acd.transition(first.id, "ready")))
    expect(row1.get_by_test_id("agent-state")).to_have_text("空闲")  # polled, no reload
    context.close()


def test_scoped_lead_sees_only_the_agents_of_the_groups_led(browser, telephony):  # noqa: F811
    """Should show a team lead who leads one group only that group's agents, live, with the totals counted
    over them (the other group's agent changing state never appears)."""
    from caseflow import org
    from caseflow.models import User

    acd = telephony.acd
    first = next(a for a in acd.agents.values() if a.extension == "1001")
    second = next(a for a in acd.agents.values() if a.extension == "1002")
    with core_db.database.connection_context():
        lead = create_user("9001", "陈班长", PASSWORD, roles="team_lead")
        team_a, team_b = org.create_group("A", "早班一组"), org.create_group("B", "早班二组")
        org.set_groups(User.get_by_id(first.user_id), [team_a])
        org.set_groups(User.get_by_id(second.user_id), [team_b])
        org.set_groups(lead, [], leads=[team_a])
    context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 768})
    page = context.new_page()
    login(page, telephony.url, "9001", PASSWORD)
    with page.expect_response(lambda response: "/supervisor/stream" in response.url):
        page.goto(telephony.url + "/supervisor/")
    row1 = page.locator(f'tr[data-agent="{first.id}"]')
    expect(row1.get_by_test_id("agent-state")).to_have_text("已签出")
    telephony.run_in_hub(lambda: (acd.transition(second.id, "login"), acd.transition(second.id, "ready"),
                                  acd.transition(first.id, "login"), acd.transition(first.id, "ready")))
    expect(row1.get_by_test_id("agent-state")).to_have_text("空闲")  # pushed by the stream
    expect(page.locator('[data-total="idle"]')).to_have_text("1")
    expect(page.locator(f'tr[data-agent="{second.id}"]')).to_have_count(0)
    assert page.locator("tr[data-agent]").count() == 1
    page.screenshot(path=str(telephony.folder / "console-scoped.png"))
    context.close()
