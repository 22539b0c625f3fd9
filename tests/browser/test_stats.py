"""In a real browser: the leader opens the statistics page from the home page and sees the charts."""
from __future__ import annotations

import datetime as dt
import re

from playwright.sync_api import expect

from .conftest import login


def test_leader_opens_statistics_from_home(page, live_server, demo_accounts):
    """Should take the demo leader from the home page to 统计分析 with the daily chart drawn."""
    from acd.demo import load_acd_demo
    from core.db import database
    from stats.demo import load_demo_history

    with database.connection_context():
        load_acd_demo()
        load_demo_history(live_server.app.extensions["hotline"].services.clock, days=10)
    operator_no, password = demo_accounts["leader"]
    login(page, live_server, operator_no, password)
    page.goto(live_server("/home"))
    with page.expect_navigation():
        page.get_by_role("link", name="统计分析").first.click()
    expect(page).to_have_url(re.compile(r"/stats/?$"))
    expect(page.locator("h1")).to_have_text("统计分析")
    chart = page.get_by_test_id("daily-chart")
    expect(chart).to_be_visible()
    expect(chart.locator("title").first).to_have_text("每日话务量与工单量")
    expect(chart.locator("g[data-series=calls] circle").first).to_be_attached()
    expect(page.get_by_test_id("channel-chart")).to_be_visible()
    # The demo history ends yesterday: a chosen range over it has calls whatever day of the month it is.
    today = live_server.app.extensions["hotline"].services.clock.today()
    page.check("input[name=period][value=custom]")
    page.fill("input[name=from]", (today - dt.timedelta(days=10)).isoformat())
    page.fill("input[name=to]", (today - dt.timedelta(days=1)).isoformat())
    with page.expect_navigation():
        page.get_by_role("button", name="查询").click()
    expect(page.get_by_test_id("stats-scope")).to_contain_text("共 10 天")
    expect(page.get_by_test_id("value-calls_offered")).not_to_have_text("0")
    expect(page.get_by_test_id("stats-export")).to_be_visible()
