"""In a real browser: log in as the demo agent, see the ticket list, switch language, log out."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import login


def test_demo_agent_sees_ticket_list(page, live_server, demo_accounts):
    """Should log the demo agent in and show the ticket list with masked phone numbers."""
    from caseflow.models import Ticket
    from core.db import database

    with database.connection_context():
        newest = Ticket.select().order_by(Ticket.created_at.desc(), Ticket.id.desc()).first()
    operator_no, password = demo_accounts["agent"]
    login(page, live_server, operator_no, password)
    expect(page).to_have_url(re.compile(r"/agent/tickets$"))
    expect(page.locator("h1")).to_have_text("工单列表")
    table = page.get_by_test_id("ticket-list")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr").first.locator("td.number")).to_have_text(newest.number)
    if newest.citizen_phone:
        expect(table).not_to_contain_text(newest.citizen_phone)
    expect(page.get_by_test_id("current-user")).to_contain_text(operator_no)


def test_wrong_password_then_language_switch_and_logout(page, live_server, demo_accounts):
    """Should show the error in Chinese, switch to English, and log out back to the login page."""
    operator_no, password = demo_accounts["agent"]
    login(page, live_server, operator_no, "wrong-password")
    expect(page.locator(".flash.error")).to_have_text("工号或密码错误。")
    login(page, live_server, operator_no, password)
    with page.expect_navigation():
        page.get_by_role("button", name="English").click()
    expect(page.locator("h1")).to_have_text("Ticket list")
    with page.expect_navigation():
        page.get_by_test_id("logout").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator(".flash.info")).to_have_text("You have been logged out.")
