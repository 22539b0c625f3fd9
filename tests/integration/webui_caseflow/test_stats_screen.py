"""The command screen (/stats/screen): today's figures from real rows on SQLite and PostgreSQL (local day
boundaries, calls waiting now, 15-second answers, agents by state, tickets by channel, hour and district,
overdue now), scope by role and department, refusals audited, the JSON's ETag, the event stream, one
language per page, and the npm library route it loads ECharts from."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from acd.models import Agent, Queue, QueueEntry
from caseflow import org, services
from caseflow.accounts import hash_password
from caseflow.models import Ticket, User
from core.clock import FixedClock
from stats import screen as figures
from stats.models import HotspotWarning
from stats.queries import Scope
from tests.integration.webui.test_one_language import findings
from webui.models import AuditLog

from .conftest import PASSWORD, TZ


def local(*args) -> dt.datetime:
    """A Shanghai wall-clock time as stored (naive UTC)."""
    return dt.datetime(*args, tzinfo=TZ).astimezone(dt.timezone.utc).replace(tzinfo=None)


@pytest.fixture
def today(world, app):
    """The world (two tickets created 4 March 10:00, the fixed clock's now) plus today's rows: tickets in
    two districts and at the day's edges, calls answered, abandoned, overflowed and waiting, and agents."""
    w = world
    app.config["HOTLINE_SCREEN_CACHE_SECONDS"] = 0
    hashed = hash_password(PASSWORD)
    w.city_leader = User.create(operator_no="5001", name="吴市长", password_hash=hashed, roles="leader",
                                department=w.centre)
    w.east_leader = User.create(operator_no="7002", name="郑区长", password_hash=hashed,
                                roles="dept_leader,dept", department=w.east)
    north = org.create_region("N", "北城区")
    w.north_street = org.create_region("N1", "北城街道", north)
    south = org.create_region("S", "南城区")

    def ticket(at, channel="phone", region=None, department=None):
        clock = FixedClock(at.replace(tzinfo=dt.timezone.utc))
        t = services.create_ticket("今日工单内容", channel=channel, citizen_phone="13700000000", created_by=w.agent,
                                   clock=clock)
        if region is not None:
            Ticket.update(region=region).where(Ticket.id == t.id).execute()
        if department is not None:
            t = services.dispatch(t, w.centre_user, department, clock=clock)
        return t

    ticket(local(2026, 3, 4, 0, 10), channel="web", region=w.north_street)   # today, 00 h, a street of 北城区
    ticket(local(2026, 3, 4, 8, 30), channel="web", region=north)            # today, 08 h
    ticket(local(2026, 3, 4, 9, 15), channel="sms", region=south, department=w.east)  # today, east's subtree
    ticket(local(2026, 3, 3, 23, 50), channel="web", region=south)           # yesterday (local)
    # Overdue now: the west ticket's deadline has passed (the clock says 10:00); east's is tomorrow.
    Ticket.update(deadline=local(2026, 3, 4, 9, 0)).where(Ticket.id == w.west_ticket.id).execute()
    Ticket.update(deadline=local(2026, 3, 5, 9, 0)).where(Ticket.id == w.east_ticket.id).execute()

    queue, other = Queue.create(name="general", skill="general"), Queue.create(name="complaint", skill="complaint")

    def entry(uuid, at, state, wait=None, in_queue=queue):
        return QueueEntry.create(call_uuid=uuid, queue=in_queue, entered_at=at, state=state, wait_seconds=wait,
                                 talk_seconds=60 if state == "bridged" else None,
                                 answered_at=at if state == "bridged" else None)

    entry("a1", local(2026, 3, 4, 0, 5), "bridged", 10)      # in target
    entry("a2", local(2026, 3, 4, 8, 0), "bridged", 40)      # answered late
    entry("a3", local(2026, 3, 4, 8, 10), "abandoned", 50)
    entry("a4", local(2026, 3, 4, 9, 0), "overflowed", 100, in_queue=other)
    entry("a4", local(2026, 3, 4, 9, 2), "bridged", 3)        # one call; its wait began in the first queue
    entry("w1", local(2026, 3, 4, 9, 58), "waiting")          # waiting 2 minutes now
    entry("w2", local(2026, 3, 4, 9, 59, 30), "waiting")
    entry("old", local(2026, 3, 3, 23, 0), "waiting")         # yesterday's leftover: not waiting today
    entry("y1", local(2026, 3, 3, 23, 59), "bridged", 2)      # yesterday

    def agent(no, status, state, on_hold=False):
        user = User.create(operator_no=no, name=f"话务员{no}", password_hash=hashed, roles="agent",
                           department=w.centre)
        return Agent.create(user=user, extension="8" + no, status=status, state=state, on_hold=on_hold)

    agent("2001", "available", "idle")
    agent("2002", "available", "in_call")
    agent("2003", "available", "in_call", on_hold=True)
    agent("2004", "on_break", "idle")
    agent("2005", "after_call_work", "wrap_up")
    agent("2006", "logged_out", "idle")
    return w


def test_the_figures_of_today(today):
    """Should count today's rows only, in local time, with the overflowed call once and callers waiting now."""
    now = dt.datetime(2026, 3, 4, 10, 0, tzinfo=TZ)
    from webui.console import agent_state

    seen = figures.load_screen(Scope(), now, "未填区域", agent_state)
    assert seen.tickets_today == 5  # 3 today + the world's 2 at 10:00; 23:50 yesterday is not today
    assert seen.tickets_by_channel == {"web": 2, "sms": 1, "phone": 2}
    assert seen.tickets_per_hour == [1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2] and seen.hours == list(range(11))
    assert seen.tickets_by_district == [("北城区", 2), ("南城区", 1), ("未填区域", 2)]
    assert seen.overdue_now == 1
    assert (seen.calls.offered, seen.calls.answered, seen.calls.abandoned) == (6, 3, 1)
    assert seen.calls.answered_in_target == 1 and seen.answer_in_target_rate == pytest.approx(1 / 3)
    assert seen.calls_per_hour[0] == 1 and seen.calls_per_hour[8] == 2 and seen.calls_per_hour[9] == 3
    assert seen.waiting.callers == 2 and seen.waiting.longest_seconds == 120.0
    assert seen.agents == {"idle": 1, "in_call": 1, "on_hold": 1, "ringing": 0, "wrap_up": 1, "on_break": 1,
                           "logged_out": 1}
    assert seen.agents_on_duty == 5


def test_a_department_sees_its_subtree_without_calls(today):
    """Should give a department scope its own tickets and no call or agent figures."""
    from webui.console import agent_state

    seen = figures.load_screen(Scope(today.east), dt.datetime(2026, 3, 4, 10, 0, tzinfo=TZ), "-", agent_state)
    assert seen.tickets_today == 2  # the world's east ticket and the 09:15 one dispatched to east
    assert seen.calls is None and seen.agents is None and seen.waiting is None
    assert seen.overdue_now == 0


def test_the_leader_opens_the_screen(today, login):
    """Should show the city's figures and charts' places to the leader, audited as a stats view."""
    client = login(today.city_leader)
    response = client.get("/stats/screen/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "12345 热线指挥大屏" in html and 'data-testid="figure-waiting">2<' in html
    assert 'data-testid="figure-tickets-today">5<' in html and 'data-testid="figure-overdue">1<' in html
    assert 'data-testid="figure-rate">33.3%<' in html and 'data-testid="chart-agents"' in html
    assert "/vendor/echarts.min.js" in html and "当前没有热点预警。" in html
    row = AuditLog.select().order_by(AuditLog.id.desc()).first()
    assert (row.action, row.obj_type, row.obj_id, row.detail) == ("stats_view", "stats", "city", "command screen")


def test_the_figures_as_json_with_an_etag(today, login):
    """Should answer the figures as JSON in the viewer's language, 304 for the same ETag, and a new ETag once
    a ticket is made."""
    client = login(today.city_leader)
    response = client.get("/stats/screen/figures.json")
    assert response.status_code == 200 and response.headers["ETag"]
    data = response.get_json()
    assert data["calls"]["waiting"] == 2 and data["calls"]["rate"] == "33.3%"
    assert data["channels"] == [{"name": "电话", "value": 2}, {"name": "网站", "value": 2}, {"name": "短信", "value": 1}]
    assert data["districts"][-1] == {"name": "未填区域", "value": 2} and data["hours"][-1] == "10"
    assert {a["state"]: a["value"] for a in data["agents"]}["on_break"] == 1
    assert [a["name"] for a in data["agents"]][0] == "空闲"
    assert [s["key"] for s in data["series"]] == ["calls", "tickets"]
    etag = response.headers["ETag"]
    assert client.get("/stats/screen/figures.json", headers={"If-None-Match": etag}).status_code == 304
    services.create_ticket("又一件", citizen_phone="13700000001", created_by=today.agent,
                           clock=FixedClock(dt.datetime(2026, 3, 4, 9, 59, tzinfo=TZ)))
    again = client.get("/stats/screen/figures.json", headers={"If-None-Match": etag})
    assert again.status_code == 200 and again.get_json()["tickets"]["today"] == 6
    assert again.headers["ETag"] != etag


def test_the_stream_sends_the_figures(today, login):
    """Should open an event stream whose first event carries the figures."""
    client = login(today.city_leader)
    response = client.get("/stats/screen/stream?max_seconds=0.5")
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    body = response.get_data(as_text=True)
    assert body.startswith("retry: ") and "event: figures\n" in body
    data = json.loads(body.split("event: figures\ndata: ", 1)[1].split("\n", 1)[0])
    assert data["tickets"]["today"] == 5 and data["calls"]["offered"] == 6


def test_a_department_leader_sees_no_call_figures(today, login):
    """Should show the east leader east's tickets and no call or agent panel."""
    client = login(today.east_leader)
    html = client.get("/stats/screen/").get_data(as_text=True)
    assert "东区" in html and 'data-testid="figure-tickets-today">2<' in html
    assert "figure-waiting" not in html and "chart-agents" not in html
    data = client.get("/stats/screen/figures.json").get_json()
    assert "calls" not in data and "agents" not in data and data["tickets"]["today"] == 2


@pytest.mark.parametrize("path", ["/stats/screen/", "/stats/screen/figures.json", "/stats/screen/stream"])
def test_a_user_without_the_right_is_refused_and_audited(today, login, path):
    """Should refuse an agent (no stats.view) with a 403 and write the refusal to the audit log."""
    response = login(today.agent).get(path)
    assert response.status_code == 403
    row = AuditLog.select().order_by(AuditLog.id.desc()).first()
    assert (row.action, row.obj_type, row.obj_id) == ("stats_denied", "stats", path)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_screen_is_in_one_language(today, login, lang):
    """Should show the screen, with today's data, all in Chinese or all in English, figures included."""
    client = login(today.city_leader)
    client.post_form("/language", {"lang": lang})
    html = client.get("/stats/screen/").get_data(as_text=True)
    assert findings(html, lang) == []
    data = client.get("/stats/screen/figures.json").get_json()
    names = [c["name"] for c in data["channels"]] + [a["name"] for a in data["agents"]] + \
        [s["name"] for s in data["series"]]
    text = " ".join(names)
    if lang == "en":
        assert {"Web", "SMS", "Phone", "Idle", "On a call", "Calls offered"} <= set(names)
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in text)
    else:
        assert "空闲" in text and not any(ch.isascii() and ch.isalpha() for ch in text)


def test_the_chart_library_comes_from_node_modules(app, db, tmp_path):
    """Should serve the listed npm file as JavaScript with a day's caching, and 404 any other name or a
    missing installation."""
    root = tmp_path / "node_modules"
    (root / "echarts" / "dist").mkdir(parents=True)
    (root / "echarts" / "dist" / "echarts.min.js").write_text("window.echarts = {};", "utf-8")
    (root / "echarts" / "package.json").write_text('{"version": "9.9.9"}', "utf-8")
    extra = app.extensions["hotline"].config.extra
    extra["HOTLINE_NODE_MODULES"] = str(root)
    client = app.test_client()
    response = client.get("/vendor/echarts.min.js?v=9.9.9")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert response.get_data(as_text=True) == "window.echarts = {};"
    assert response.headers["Cache-Control"] == "public, max-age=86400"
    assert client.get("/vendor/package.json").status_code == 404
    assert client.get("/vendor/..%2Fpackage.json").status_code == 404
    extra["HOTLINE_NODE_MODULES"] = str(tmp_path / "nowhere")
    assert client.get("/vendor/echarts.min.js").status_code == 404


def test_the_refresh_comes_from_the_settings(today, login, app):
    """Should look every HOTLINE_SCREEN_REFRESH_SECONDS (the environment's, through the config), told to the
    browser as the stream's retry; a value that is not a number leaves the default."""
    client = login(today.city_leader)
    extra = app.extensions["hotline"].config.extra
    extra["HOTLINE_SCREEN_REFRESH_SECONDS"] = "0.5"
    assert client.get("/stats/screen/stream?max_seconds=0.5").get_data(as_text=True).startswith("retry: 500\n")
    extra["HOTLINE_SCREEN_REFRESH_SECONDS"] = "often"
    assert client.get("/stats/screen/stream?max_seconds=0.5").get_data(as_text=True).startswith("retry: 3000\n")


def test_open_hotspot_warnings_are_on_the_screen(today, login):
    """Should list the open hotspot warnings (not the handled ones) with a link to their tickets, and show a
    department only those with a ticket in its subtree."""
    w = today
    shown = HotspotWarning.create(topic="停水", region=w.north_street, place_name="北城街道", level="street",
                                  window_start=local(2026, 3, 4, 8, 0), window_end=local(2026, 3, 4, 9, 0),
                                  count=5, baseline=0.2, raised_at=local(2026, 3, 4, 9, 5))
    HotspotWarning.create(topic="噪音", place_name="南城区", level="district", window_start=local(2026, 3, 4, 7, 0),
                          window_end=local(2026, 3, 4, 8, 0), count=4, baseline=0.5, handled_at=local(2026, 3, 4, 9, 30))
    data = login(w.city_leader).get("/stats/screen/figures.json").get_json()
    assert data["hotspots"]["items"] == [{"text": "北城街道：“停水”，08:00 起 5 件",
                                          "url": f"/stats/hotspots/tickets?warning={shown.id}"}]
    html = login(w.city_leader).get("/stats/screen/").get_data(as_text=True)
    assert "北城街道：“停水”，08:00 起 5 件" in html and 'id="hotspots-none" data-testid="hotspots-none" hidden' in html
    assert login(w.east_leader).get("/stats/screen/figures.json").get_json()["hotspots"]["items"] == []
