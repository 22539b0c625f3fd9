"""In a real browser, at a phone's and a desktop's size: a citizen writes in on the public website with a
photo, gets the number and query code, the centre dispatches, a department replies and the centre approves
(through the services), the citizen follows the case and rates it, and the case appears published, masked.
The strict CSP of the public pages must not block anything the pages need."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 900}}


@pytest.mark.parametrize("size", sorted(VIEWPORTS))
def test_write_follow_rate_and_read_published(page, live_server, demo_accounts, monkeypatch, size):
    """Should take a citizen from writing in to a published, masked case at this screen size."""
    import webui.blueprints.portal as portal_bp
    from caseflow import services
    from caseflow.models import Attachment, Category, Department, Ticket, User
    from core.db import database

    monkeypatch.setattr(portal_bp, "CAPTCHA_ALPHABET", "A")  # a picture whose answer the test knows
    page.set_viewport_size(VIEWPORTS[size])
    blocked = []
    page.on("console", lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None)

    page.goto(live_server("/"))
    page.get_by_role("link", name="我要写信").first.click()
    page.get_by_label("投诉").check()
    with database.connection_context():
        noise = Category.get(Category.code == "ZYRM").id
    page.select_option("#category", value=str(noise))
    page.fill("#address", "东湖街道建设路18号")
    page.fill("#content", "我是赵晓红，电话13911112222，建设路18号工地夜间施工噪音扰民。")
    expect(page.locator('[data-counter-for="content"]')).to_contain_text("/ 3000")
    page.set_input_files("#files", files=[{"name": "noise.png", "mimeType": "image/png", "buffer": PNG}])
    page.fill("#name", "赵晓红")
    page.fill("#phone", "13911112222")
    page.check('input[name=consent]')
    expect(page.locator("#captcha-img")).to_have_js_property("complete", True)
    page.fill("#captcha", "AAAAA")
    with page.expect_navigation():
        page.get_by_role("button", name="提交").click()
    number = page.get_by_test_id("number").inner_text()
    code = page.get_by_test_id("code").inner_text()
    assert len(number) == 8 and len(code) == 10

    # The centre dispatches, the department accepts and replies, the centre approves.
    with database.connection_context():
        ticket = Ticket.get(Ticket.number == number)
        assert ticket.channel == "web" and Attachment.select().where(Attachment.ticket == ticket).count() == 1
        centre = User.get(User.operator_no == demo_accounts["centre"][0])
        handler = User.get(User.operator_no == "7001")
        ticket = services.dispatch(ticket, centre, Department.get_by_id(handler.department_id))
        ticket = services.transition(ticket, "accept", handler)
        ticket = services.transition(ticket, "reply", handler,
                                     reply="已联系赵晓红（13911112222），工地22时后停工。")
        services.transition(ticket, "approve", centre)

    # The citizen follows the case and rates it.
    page.get_by_role("link", name="办理查询").first.click()
    page.fill("#number", number)
    page.fill("#code", code.lower())
    with page.expect_navigation():
        page.get_by_role("button", name="查询").click()
    expect(page.get_by_test_id("status")).to_have_text("已答复")
    expect(page.get_by_test_id("reply")).to_contain_text("22时后停工")
    page.get_by_label("满意", exact=True).check()
    page.fill("#comment", "处理及时")
    with page.expect_navigation():
        page.locator("form.rate button[type=submit]").click()
    expect(page.get_by_test_id("message")).to_contain_text("感谢您的评价")
    expect(page.get_by_test_id("status")).to_have_text("已办结")

    # The centre closes and publishes it; the public sees it masked.
    with database.connection_context():
        ticket = services.transition(Ticket.get(Ticket.number == number), "close", centre)
        services.transition(ticket, "disclose", centre, public=True)
    page.goto(live_server("/cases"))
    with page.expect_navigation():
        page.locator(f'a[href="/cases/{number}"]').click()
    published = page.get_by_test_id("published")
    expect(published.get_by_test_id("request")).to_contain_text("赵**")
    expect(published.get_by_test_id("reply")).to_contain_text("139****2222")
    text = published.inner_text()
    for secret in ("赵晓红", "13911112222", "建设路18号", "noise.png"):
        assert secret not in text
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[size]["width"] + 1
    assert blocked == []
