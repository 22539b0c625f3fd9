"""In a real browser: the demo leader opens the command screen (指挥大屏) on a wall-sized window, sees every
ECharts chart drawn on its canvas (today's tickets by district on the map of the demo's generated district
shapes), and sees the figures move by themselves (the live stream) when a caller enters a queue and when a
ticket is made in a district."""
from __future__ import annotations

import datetime as dt
import re

from playwright.sync_api import expect

from .conftest import login

CHARTS = ("chart-service", "chart-agents", "chart-hours", "chart-channels", "chart-districts")
# True when the chart's canvas has at least one painted pixel.
PAINTED = """node => {
  const canvas = node.querySelector("canvas");
  if (!canvas || !canvas.width || !canvas.height) { return false; }
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) { return true; } }
  return false;
}"""
# The districts chart as a map of the demo's two shapes: ECharts draws a map series on the registered GeoJSON,
# the canvas is painted inside each district and left empty far outside them. Returns {name: value} then.
MAP_DRAWN = """node => {
  const chart = window.echarts && window.echarts.getInstanceByDom(node);
  if (!chart) { return null; }
  const series = chart.getOption().series || [];
  if (!series.length || series[0].type !== "map") { return null; }
  const map = window.echarts.getMap(series[0].map);
  if (!map || !map.geoJSON || map.geoJSON.features.length !== 2) { return null; }
  const canvas = node.querySelector("canvas");
  const context = canvas.getContext("2d");
  const ratio = canvas.width / node.clientWidth;
  const alpha = (x, y) => context.getImageData(Math.round(x * ratio), Math.round(y * ratio), 1, 1).data[3];
  // Points inside 东湖区 (east of the demo's centre) and 西山区 (west of it), and one outside both.
  for (const point of [[120.24, 30.22], [120.04, 30.22]]) {
    const [x, y] = chart.convertToPixel({seriesIndex: 0}, point);
    if (!(x > 0 && y > 0) || alpha(x, y) === 0) { return null; }
  }
  if (alpha(node.clientWidth - 3, 3) !== 0) { return null; }
  const values = {};
  series[0].data.forEach(item => { values[item.name] = item.value; });
  return values;
}"""


def west_is(count: int) -> str:
    """A page function: true once the map is drawn and shows ``count`` tickets for 西山区."""
    return f"node => {{ const v = ({MAP_DRAWN})(node); return v && v['西山区'] === {count}; }}"


def test_leader_watches_the_command_screen(page, live_server, demo_accounts, tmp_path):
    """Should draw the charts with ECharts from npm, and show a waiting caller and a new ticket without
    reloading."""
    from acd.demo import load_acd_demo
    from acd.models import Queue, QueueEntry
    from caseflow import services
    from caseflow.models import Region, User
    from caseflow.values import to_db
    from core.clock import FixedClock
    from core.db import database
    from stats.models import HotspotWarning

    live_server.app.config.update(HOTLINE_SCREEN_REFRESH_SECONDS=1, HOTLINE_SCREEN_CACHE_SECONDS=0)
    # "Today" read once: the screen's clock stands still, and what the test adds is dated by it, so a local
    # midnight (Asia/Shanghai) passing during the test does not start a new day between two reads of the figures.
    lent = live_server.app.extensions["hotline"].services
    clock = lent.clock = FixedClock(lent.clock.now())
    with database.connection_context():
        load_acd_demo()
    problems = []
    page.on("pageerror", lambda error: problems.append(f"{error}\n{error.stack}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)

    page.set_viewport_size({"width": 1920, "height": 1080})
    operator_no, password = demo_accounts["leader"]
    login(page, live_server, operator_no, password)
    page.goto(live_server("/stats/"))
    with page.expect_navigation():
        page.get_by_role("link", name="指挥大屏").first.click()
    expect(page).to_have_url(re.compile(r"/stats/screen/$"))
    expect(page.locator("h1")).to_have_text("12345 热线指挥大屏")
    expect(page.get_by_test_id("screen-status")).to_contain_text("更新于")
    for chart in CHARTS:
        locator = page.get_by_test_id(chart)
        expect(locator.locator("canvas")).to_be_attached()
        page.wait_for_function(PAINTED, arg=locator.element_handle())
    expect(page.get_by_test_id("hotspots-none")).to_be_visible()
    districts = page.get_by_test_id("chart-districts").element_handle()
    drawn = page.wait_for_function(MAP_DRAWN, arg=districts).json_value()
    assert set(drawn) == {"东湖区", "西山区"}
    west_before = drawn["西山区"]

    waiting = page.get_by_test_id("figure-waiting")
    expect(waiting).to_have_text("0")
    with database.connection_context():
        QueueEntry.create(call_uuid="screen-test-call", queue=Queue.select().first(), caller_number="13800000002",
                          entered_at=to_db(clock.now()))
    expect(waiting).to_have_text("1")
    expect(page.get_by_test_id("figure-offered")).to_have_text("1")

    shown = page.get_by_test_id("figure-tickets-today")
    before = int(shown.inner_text())
    with database.connection_context():
        agent = User.get(User.operator_no == demo_accounts["agent"][0])
        services.create_ticket("西山街道某路段路灯不亮", citizen_phone="13800000001", created_by=agent,
                               region=Region.get(Region.code == "R-XS-XSJD"),
                               clock=clock)
    expect(shown).to_have_text(str(before + 1))
    # The street's ticket counts for its district on the map.
    page.wait_for_function(west_is(west_before + 1), arg=districts)

    # The wall screen's window squeezed to nothing (minimised; a full-page capture does it for a moment) while
    # figures arrive, then given its size back: no error (ECharts' map throws laid out in no width), and the
    # map drawn again with the figures that came meanwhile.
    page.evaluate("() => { window.sizesSeen = []; addEventListener('resize', () => sizesSeen.push(innerWidth)); }")
    page.set_viewport_size({"width": 1, "height": 1})
    page.wait_for_function("() => sizesSeen.includes(1)")
    with database.connection_context():
        services.create_ticket("西山街道某小区停水", citizen_phone="13800000001", created_by=agent,
                               region=Region.get(Region.code == "R-XS-XSJD"),
                               clock=clock)
    expect(shown).to_have_text(str(before + 2))
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.wait_for_function(west_is(west_before + 2), arg=districts)

    # A hotspot warning raised meanwhile shows up too, linking to its tickets.
    with database.connection_context():
        HotspotWarning.create(topic="停水", place_name="东湖街道", level="street", count=5, baseline=0.2,
                              window_start=dt.datetime.utcnow() - dt.timedelta(hours=1),
                              window_end=dt.datetime.utcnow())
    warning = page.get_by_test_id("hotspot-list").locator("a")
    expect(warning).to_contain_text("东湖街道：“停水”")
    expect(page.get_by_test_id("hotspots-none")).to_be_hidden()
    page.screenshot(path=str(tmp_path / "command-screen.png"), full_page=True)
    assert (tmp_path / "command-screen.png").stat().st_size > 10_000
    assert problems == []
