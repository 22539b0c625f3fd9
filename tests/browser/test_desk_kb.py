"""In Chromium: the agent desk's knowledge panel searches beside the ticket form, shows an answer inline and
puts it into the reply field, without leaving the desk (the telephony fixture of test_agent_desk)."""
from __future__ import annotations

from playwright.sync_api import expect

from caseflow import knowledge
from core import db as core_db
from tests.browser.conftest import login
from tests.browser.test_agent_desk import PASSWORD, telephony  # noqa: F401 - the fixture

CONTENT = "无证夜间施工造成噪音扰民的，可拨打12345反映，由属地生态环境部门查处。"
ANSWER = "请告知具体施工地点和时间，我们将转属地执法部门核查处理。"


def test_agent_finds_an_answer_inline_and_uses_it_in_the_reply(page, telephony):  # noqa: F811
    """Should list reviewed results inline with the query's words marked, show markup in a title as text,
    open the item in the panel, and insert the chosen answer into the reply field, all on the desk."""
    with core_db.database.connection_context():
        item = knowledge.create_item("夜间施工噪音扰民如何处理", CONTENT, review_state="approved")
        knowledge.review(knowledge.add_answer(item, ANSWER), "approved")
        knowledge.create_item("<img src=x onerror=window.__kbxss=1>扰民须知", "公告", review_state="approved")
        knowledge.create_item("未审核的扰民条目", "草稿")
    login(page, telephony.url, "8001", PASSWORD)
    page.goto(telephony.url + "/desk/")
    desk_url = page.url

    page.get_by_test_id("kb-query").fill("噪声 扰民")
    page.get_by_test_id("kb-query").press("Enter")
    results = page.get_by_test_id("kb-result")
    expect(results.first).to_contain_text("夜间施工噪音扰民如何处理")
    expect(page.get_by_test_id("kb-results")).not_to_contain_text("未审核")
    expect(page.locator("#kb-results mark").first).to_have_text("扰民")
    expect(page.get_by_test_id("kb-results")).to_contain_text("<img src=x onerror=window.__kbxss=1>扰民须知")
    assert page.evaluate("window.__kbxss") is None

    results.filter(has_text="夜间施工").click()
    expect(page.get_by_test_id("kb-item")).to_contain_text(CONTENT)
    expect(page.get_by_test_id("kb-item")).to_contain_text(ANSWER)
    page.get_by_test_id("kb-item").get_by_test_id("kb-use").last.click()
    expect(page.get_by_test_id("ticket-reply")).to_have_value(ANSWER)
    assert page.url == desk_url and len(page.context.pages) == 1  # no new tab, no navigation
