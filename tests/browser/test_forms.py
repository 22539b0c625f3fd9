"""In Chromium, the forms of issue 13 item 6: a character counter beside text with a limit (nothing cut, red
once over, the server's clear refusal), the phone number required by a reply by phone, long ticket text folded
behind "show all", and the organisation table's columns aligned at every depth."""
from __future__ import annotations

from playwright.sync_api import expect

from .conftest import login


def test_counter_never_cuts_and_the_server_refuses_clearly(page, live_server, demo_accounts):
    """Should count the entry form's content up to the model's 20,000 characters, keep 20,001 pasted characters
    (red counter, no maxlength) and answer the submission with the limit and the length, storing nothing."""
    from caseflow.models import Ticket
    from caseflow.values import MAX_CONTENT
    from core.db import database

    login(page, live_server, *demo_accounts["entry"])
    page.goto(live_server("/entry/"))
    content = page.locator("#content")
    assert content.get_attribute("maxlength") is None and content.get_attribute("data-limit") == str(MAX_CONTENT)
    counter = page.locator("#content-counter")
    expect(counter).to_have_text(f"0 / {MAX_CONTENT}")
    content.fill("路灯不亮")
    expect(counter).to_have_text(f"4 / {MAX_CONTENT}")
    expect(counter).not_to_have_class("counter over")
    content.fill("长" * (MAX_CONTENT + 1))
    assert page.evaluate("() => document.getElementById('content').value.length") == MAX_CONTENT + 1  # not cut
    expect(counter).to_have_text(f"{MAX_CONTENT + 1} / {MAX_CONTENT}")
    expect(counter).to_have_class("counter over")
    assert content.get_attribute("aria-invalid") == "true"
    with database.connection_context():
        before = Ticket.select().count()
    page.select_option("#reply_by", "none")
    with page.expect_navigation():
        page.click("[data-testid=entry-form] button[type=submit]")
    expect(page.locator(".flash.error")).to_contain_text(f"内容超过{MAX_CONTENT}字（现为{MAX_CONTENT + 1}字）")
    with database.connection_context():
        assert Ticket.select().count() == before


def test_a_reply_by_phone_needs_the_number(page, live_server, demo_accounts):
    """Should make the phone number required while the reply goes by phone or SMS (the e-mail address for a reply
    by e-mail), and refuse the form without it, in Chinese."""
    login(page, live_server, *demo_accounts["entry"])
    page.goto(live_server("/entry/"))
    phone, email = page.locator("#citizen_phone"), page.locator("#citizen_email")
    page.select_option("#reply_by", "phone")
    assert phone.evaluate("el => el.required") and not email.evaluate("el => el.required")
    page.select_option("#reply_by", "email")
    assert email.evaluate("el => el.required") and not phone.evaluate("el => el.required")
    page.select_option("#reply_by", "none")
    assert not phone.evaluate("el => el.required") and not email.evaluate("el => el.required")
    # The browser's own check aside, the server refuses it too (a request that skips the page).
    page.select_option("#reply_by", "phone")
    page.fill("#content", "小区路灯不亮")
    page.evaluate("() => document.getElementById('citizen_phone').required = false")
    with page.expect_navigation():
        page.click("[data-testid=entry-form] button[type=submit]")
    expect(page.locator(".flash.error")).to_have_text("选择电话答复时须填写联系电话")


def test_long_ticket_text_folds_behind_show_all(page, live_server, demo_accounts):
    """Should show a long ticket's first lines with 展开全部, all of it on a click (then 收起), and a short one
    whole without a button."""
    from caseflow import services
    from core.db import database

    with database.connection_context():
        long = services.create_ticket("\n".join(f"第{i}行：小区夜间施工噪音扰民，影响休息。" for i in range(60)),
                                      citizen_phone="13800002222")
        short = services.create_ticket("路灯不亮", citizen_phone="13800003333")
    login(page, live_server, *demo_accounts["centre"])
    page.goto(live_server(f"/tickets/{long.number}"), timeout=60_000)  # the first view loads the topic words
    content = page.get_by_test_id("content")
    expect(content).to_have_class("text folded")
    folded = content.bounding_box()["height"]
    toggle = page.locator('[data-testid="content"] + [data-testid="fold-toggle"]')
    expect(toggle).to_have_text("展开全部")
    toggle.click()
    expect(toggle).to_have_text("收起")
    assert content.bounding_box()["height"] > folded * 3
    toggle.click()
    expect(content).to_have_class("text folded")
    page.goto(live_server(f"/tickets/{short.number}"))
    expect(page.get_by_test_id("content")).to_have_class("text")
    expect(page.locator('[data-testid="content"] + [data-testid="fold-toggle"]')).to_have_count(0)


def test_organisation_table_columns_line_up_at_every_depth(page, live_server, demo_accounts):
    """Should put each field of a unit in its own column, so the kind, phone, active and save controls start at
    the same x on every row whatever the unit's depth, with the name indented by depth."""
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, live_server, *demo_accounts["admin"])
    page.goto(live_server("/admin/org/"))
    rows = page.locator('[data-testid="departments"] tbody tr')
    depths = rows.evaluate_all("rows => rows.map(r => +r.dataset.depth)")
    assert {1, 2, 3} <= set(depths), depths
    for selector in ('select[name="kind"]', 'input[name="contact_phone"]', 'input[name="active"]', "button"):
        xs = rows.locator(selector).evaluate_all("els => els.map(e => Math.round(e.getBoundingClientRect().left))")
        assert len(xs) == len(depths) and len(set(xs)) == 1, (selector, xs)
    names = rows.locator('input[name="name"]').evaluate_all(
        "els => els.map(e => Math.round(e.getBoundingClientRect().left))")
    by_depth = {d: {x for x, depth in zip(names, depths) if depth == d} for d in set(depths)}
    assert all(len(xs) == 1 for xs in by_depth.values()), by_depth
    assert min(by_depth[1]) < min(by_depth[2]) < min(by_depth[3])
