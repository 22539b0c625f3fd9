"""In a real browser: a complaint goes round the closed loop through the case-engine pages:
centre dispatches (department suggested) -> department accepts and replies -> centre approves ->
call-back with satisfaction -> closed, with every step on the ticket's timeline."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import login


def _logout(page):
    with page.expect_navigation():
        page.get_by_test_id("logout").click()


def test_dispatch_accept_reply_review_callback_close(page, live_server, demo_accounts):
    """Should take a new complaint from the centre desk to closed with the demo users."""
    from caseflow import services
    from caseflow.models import Category, Region, Ticket, User
    from core.db import database

    with database.connection_context():
        ticket = services.create_ticket(
            "东湖街道建设路夜间施工噪音扰民，请尽快处理。", type="complaint",
            category=Category.get(Category.code == "ZYRM"), region=Region.get(Region.code == "R-DH-DHJD"),
            citizen_phone="13800001111", citizen_name="测试市民", created_by=User.get(User.operator_no == "1001"))
    number = ticket.number
    centre_no, password = demo_accounts["centre"]

    # Centre: dispatch from the desk; the suggested department is preselected.
    login(page, live_server, centre_no, password)
    page.goto(live_server("/centre/?q=to_dispatch"))
    row = page.locator(f'tr[data-number="{number}"]')
    expect(row.locator("select[name=department] option:checked")).to_contain_text("东湖区")
    with page.expect_navigation():
        row.get_by_role("button", name="派单").click()
    expect(page.locator(".flash.info")).to_contain_text("派单")
    expect(page.locator(f'tr[data-number="{number}"]')).to_have_count(0)
    _logout(page)

    # Department: accept on the workbench, reply on the ticket page (full contact visible).
    login(page, live_server, "7001", password)
    page.goto(live_server("/dept/"))
    with page.expect_navigation():
        page.get_by_test_id(f"accept-{number}").get_by_role("button").click()
    page.goto(live_server(f"/tickets/{number}"))
    expect(page.get_by_test_id("status")).to_have_text("开始处理")
    expect(page.get_by_test_id("citizen-phone")).to_have_text("13800001111")
    page.locator("form.action-reply textarea[name=reply]").fill("已责令施工单位夜间停工，并安排巡查。")
    with page.expect_navigation():
        page.get_by_test_id("do-reply").click()
    expect(page.get_by_test_id("status")).to_contain_text("待审核")
    _logout(page)

    # Centre: approve the reply, record the call-back, close.
    login(page, live_server, centre_no, password)
    page.goto(live_server("/centre/?q=to_review"))
    with page.expect_navigation():
        page.locator(f'tr[data-number="{number}"]').get_by_role("button", name="审核通过").click()
    page.goto(live_server("/centre/?q=callback"))
    callback = page.get_by_test_id(f"callback-{number}")
    callback.locator("select[name=satisfaction]").select_option("satisfied")
    with page.expect_navigation():
        callback.get_by_role("button").click()
    page.goto(live_server(f"/tickets/{number}"))
    with page.expect_navigation():
        page.get_by_test_id("do-close").click()
    expect(page.get_by_test_id("status")).to_have_text(re.compile("办结"))
    timeline = page.get_by_test_id("timeline")
    for step in ("登记", "派单", "签收", "答复", "审核通过", "回访", "办结"):
        expect(timeline).to_contain_text(step)
    with database.connection_context():
        stored = Ticket.get(Ticket.number == number)
        assert (stored.status, stored.satisfaction) == ("closed", "satisfied")


def test_play_call_recording_from_the_ticket_page(page, live_server):
    """Should play a ticket's call recording on the ticket page through /recordings/<id>/audio (Chromium
    fetches with Range requests), link the call record, and log the listen under the user."""
    from core.db import database
    from recorder.models import RecordingAccess

    from .test_recording_playback import PASSWORD, _recorded_ticket

    number, rec_id = _recorded_ticket(live_server.config)
    login(page, live_server, "3001", PASSWORD)
    page.goto(live_server(f"/tickets/{number}"))
    player = page.get_by_test_id(f"recording-{rec_id}")
    expect(player).to_have_attribute("src", f"/recordings/{rec_id}/audio")
    expect(page.get_by_test_id("call-record")).to_be_visible()
    player.evaluate("audio => audio.play()")
    page.wait_for_function(
        f"() => {{ const a = document.querySelector('[data-testid=recording-{rec_id}]');"
        " return a && !a.error && a.currentTime > 0.3; }")
    with database.connection_context():
        listens = list(RecordingAccess.select().where(RecordingAccess.recording == rec_id))
    assert listens and listens[0].action == "listen" and listens[0].user_label.startswith("3001")
