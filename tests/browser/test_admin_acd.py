"""In a real browser: the administrator finds the ACD pages in the navigation, creates a queue with a
distribution rule, is told clearly when an agent's extension is not in the directory, then makes the
demo agent an agent."""
from __future__ import annotations

from playwright.sync_api import expect

from .conftest import login


def test_admin_creates_queue_and_agent(page, live_server, demo_accounts):
    """Should create a queue and an agent through the forms, with a Chinese error for a bad extension."""
    from acd.models import Agent, Queue
    from core.db import database

    operator_no, password = demo_accounts["admin"]
    login(page, live_server, operator_no, password)
    with page.expect_navigation():
        page.get_by_role("link", name="队列与话务员").click()
    expect(page.locator("h1")).to_have_text("队列与话务员")
    with page.expect_navigation():
        page.get_by_role("link", name="新建队列").click()
    page.fill("#name", "consult")
    page.fill("#display_name", "政策咨询")
    page.fill("#skill", "consult")
    page.select_option("#strategy", label="最长空闲优先")
    page.fill("#max_wait", "180")
    with page.expect_navigation():
        page.get_by_role("button", name="新建").click()
    expect(page.locator(".flash.info")).to_have_text("已保存。")
    with page.expect_navigation():
        page.get_by_role("link", name="队列", exact=True).click()
    expect(page.locator("tr[data-queue=consult]")).to_contain_text("最长空闲优先")

    with page.expect_navigation():
        page.get_by_role("link", name="话务员", exact=True).click()
    with page.expect_navigation():
        page.get_by_role("link", name="新建话务员").click()
    page.select_option("#user", label="1001 王晓燕 (1000)")
    page.fill("#extension", "2999")
    page.fill("input[name=level_consult]", "7")
    with page.expect_navigation():
        page.get_by_role("button", name="新建").click()
    expect(page.get_by_test_id("errors")).to_contain_text("分机号 2999 不在交换机用户目录中")
    expect(page.locator("input[name=level_consult]")).to_have_value("7")  # what was typed is kept
    page.fill("#extension", "1000")
    with page.expect_navigation():
        page.get_by_role("button", name="新建").click()
    expect(page.locator(".flash.info")).to_have_text("已保存。")
    with database.connection_context():
        assert Queue.get(Queue.name == "consult").strategy == "longest_idle"
        agent = Agent.select().join_from(Agent, Agent.user.rel_model).where(Agent.extension == "1000").get()
        assert agent.user.operator_no == "1001" and [(s.skill, s.level) for s in agent.skills] == [("consult", 7)]
