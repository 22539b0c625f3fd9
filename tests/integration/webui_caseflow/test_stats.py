"""The statistics page (/stats): who sees which scope, figures from real rows on SQLite and PostgreSQL
(time-zone day boundaries, 15-second answers, overflowed calls counted once, overdue by deadline,
satisfaction), bad periods, the audit trail and the Excel export read back with openpyxl."""
from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from openpyxl import load_workbook

from acd.models import Queue, QueueEntry
from caseflow import services
from caseflow.accounts import hash_password
from caseflow.models import Ticket, TicketHistory, User
from core.clock import FixedClock
from webui.models import AuditLog

from .conftest import PASSWORD, TZ


def local(*args) -> dt.datetime:
    """A Shanghai wall-clock time as stored (naive UTC)."""
    return dt.datetime(*args, tzinfo=TZ).astimezone(dt.timezone.utc).replace(tzinfo=None)


@pytest.fixture
def people(world):
    """Beside the world's users: a leader, a team lead, and the east district's leader."""
    hashed = hash_password(PASSWORD)
    world.city_leader = User.create(operator_no="5001", name="吴市长", password_hash=hashed, roles="leader",
                                    department=world.centre)
    world.team_lead = User.create(operator_no="8001", name="赵班长", password_hash=hashed, roles="team_lead,agent",
                                  department=world.centre)
    world.east_leader = User.create(operator_no="7002", name="郑区长", password_hash=hashed,
                                    roles="dept_leader,dept", department=world.east)
    return world


@pytest.fixture
def history(people, clock):
    """Calls and tickets around the month of 2026-03-04 (the fixed clock): this month, last month, a year ago."""
    w = people

    def ticket(at, channel="phone", type="consult", department=None):
        t = services.create_ticket("历史工单内容", type=type, channel=channel, citizen_phone="13700000000",
                                   created_by=w.agent, clock=FixedClock(at.replace(tzinfo=dt.timezone.utc)))
        if department is not None:
            t = services.dispatch(t, w.centre_user, department, clock=FixedClock(at.replace(tzinfo=dt.timezone.utc)))
        return t

    # Local midnight: 00:30 on 1 March belongs to March, 23:30 on 28 February to February.
    w.march_first = ticket(local(2026, 3, 1, 0, 30), channel="web")
    ticket(local(2026, 2, 28, 23, 30), channel="sms")
    ticket(local(2026, 2, 2, 9, 0), channel="phone")  # last month's same days (环比)
    ticket(local(2025, 3, 2, 9, 0), channel="phone")  # a year earlier (同比)
    ticket(local(2025, 3, 3, 9, 0), channel="email")
    # Deadlines in March: east replied in time, the street replied late, west has not replied and is past due.
    on_time = ticket(local(2026, 3, 1, 9, 0), type="complaint", department=w.east)
    late = ticket(local(2026, 3, 1, 9, 0), type="complaint", department=w.street)
    w.overdue = ticket(local(2026, 3, 1, 9, 0), type="complaint", department=w.west)
    Ticket.update(deadline=local(2026, 3, 3, 17, 0), replied_at=local(2026, 3, 3, 9, 0)).where(
        Ticket.id == on_time.id).execute()
    Ticket.update(deadline=local(2026, 3, 2, 17, 0), replied_at=local(2026, 3, 3, 9, 0)).where(
        Ticket.id == late.id).execute()
    Ticket.update(deadline=local(2026, 3, 3, 17, 0)).where(Ticket.id == w.overdue.id).execute()
    # Not yet due (the clock says 4 March 10:00): neither on time nor overdue.
    Ticket.update(deadline=local(2026, 3, 4, 17, 0)).where(Ticket.id == w.east_ticket.id).execute()
    for t, rating in ((on_time, "satisfied"), (late, "basic"), (w.overdue, "unsatisfied")):
        Ticket.update(satisfaction=rating).where(Ticket.id == t.id).execute()
        TicketHistory.create(ticket=t, action="call_back", at=local(2026, 3, 3, 12, 0))

    queue = Queue.create(name="general", skill="general")
    other = Queue.create(name="complaint", skill="complaint")

    def entry(uuid, at, state, wait=None, talk=None, in_queue=queue):
        return QueueEntry.create(call_uuid=uuid, queue=in_queue, entered_at=at, state=state, wait_seconds=wait,
                                 talk_seconds=talk, answered_at=at if state == "bridged" else None)

    entry("c1", local(2026, 3, 1, 0, 10), "bridged", 10, 100)  # in target, on 1 March local time
    entry("c2", local(2026, 3, 2, 9, 0), "bridged", 20, 200)  # answered, but after 15 s
    entry("c3", local(2026, 3, 2, 9, 5), "abandoned", 30)
    # Overflowed from one queue into another, answered 5 s into the second: one call, not in target.
    entry("c4", local(2026, 3, 3, 9, 0), "overflowed", 180, in_queue=other)
    entry("c4", local(2026, 3, 3, 9, 3), "bridged", 5, 60)
    entry("c0", local(2026, 2, 28, 23, 59), "bridged", 3, 50)  # February, local time
    entry("p1", local(2026, 2, 2, 9, 0), "bridged", 3, 50)  # last month's same days (环比)
    entry("y1", local(2025, 3, 2, 9, 0), "bridged", 3, 50)
    entry("y2", local(2025, 3, 2, 9, 1), "bridged", 4, 50)
    return w


def figures(html: str) -> dict[str, str]:
    """{figure key: shown value} from the overview table."""
    return dict(re.findall(r'data-testid="value-([a-z_0-9]+)">([^<]*)<', html))


def changes(html: str, prefix: str) -> dict[str, str]:
    return dict(re.findall(rf'data-testid="{prefix}-([a-z_0-9]+)">([^<]*)<', html))


def test_leader_sees_the_whole_city(history, login):
    """Should show the city's calls and tickets of this month with 环比 and 同比 to the leader."""
    response = login(history.city_leader).get("/stats/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    shown = figures(html)
    assert shown["calls_offered"] == "4" and shown["calls_answered"] == "3" and shown["calls_abandoned"] == "1"
    assert shown["answer_in_target_rate"] == "33.3%"  # c1 only; c4's 5 s were its second queue
    assert shown["average_wait"] == "11.7" and shown["average_talk"] == "120.0"
    # 2 world tickets, 1 March 00:30, three dispatched on 1 March: 6 (the 23:30 one is February's).
    assert shown["tickets_created"] == "6"
    assert shown["tickets_on_time"] == "1" and shown["tickets_overdue"] == "2"
    assert shown["on_time_rate"] == "33.3%" and shown["overdue_rate"] == "66.7%"
    assert shown["ratings"] == "3" and shown["satisfaction_rate"] == "66.7%"
    mom, yoy = changes(html, "mom"), changes(html, "yoy")
    assert mom["calls_offered"] == "+300.0%" and yoy["calls_offered"] == "+100.0%"
    assert mom["tickets_created"] == "+500.0%" and yoy["tickets_created"] == "+200.0%"
    assert mom["tickets_overdue"] == "—"  # nothing was due last month: no base
    assert 'data-testid="daily-chart"' in html and "<title id=\"daily-title\">" in html
    assert 'data-testid="channel-chart"' in html and "全市" in html
    assert "西区" in html and "东区" in html  # rankings name the districts (the street counts for east)


def test_day_boundaries_follow_the_configured_zone(history, login):
    """Should count a ticket of 00:30 local time on 1 March on that day, not on 28 February (UTC)."""
    client = login(history.city_leader)
    html = client.get("/stats/?period=custom&from=2026-03-01&to=2026-03-01").get_data(as_text=True)
    shown = figures(html)
    assert shown["calls_offered"] == "1" and shown["tickets_created"] == "4"
    html = client.get("/stats/?period=custom&from=2026-02-28&to=2026-02-28").get_data(as_text=True)
    shown = figures(html)
    assert shown["calls_offered"] == "1" and shown["tickets_created"] == "1"


@pytest.mark.parametrize("who", ["centre_user", "leader", "admin", "team_lead"])
def test_centre_roles_and_admin_see_the_city(history, login, who):
    """Should show the hotline centre, its leader, its team lead and the administrator the city's figures."""
    html = login(getattr(history, who)).get("/stats/").get_data(as_text=True)
    assert figures(html)["calls_offered"] == "4" and figures(html)["tickets_created"] == "6"


def test_department_leader_sees_only_the_own_subtree(history, login):
    """Should show the east district only its own tickets (and its street's), no call figures at all."""
    response = login(history.east_leader).get("/stats/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    shown = figures(html)
    assert "calls_offered" not in shown and "calls_answered" not in shown
    # East: the world's east ticket, the on-time one and the street's late one; not west's.
    assert shown["tickets_created"] == "3"
    assert shown["tickets_on_time"] == "1" and shown["tickets_overdue"] == "1"
    assert "西区" not in html and "东区" in html
    export = login(history.east_leader).get("/stats/export.xlsx")
    book = load_workbook(io.BytesIO(export.data))
    labels = [row[0] for row in book["概况"].iter_rows(values_only=True)]
    assert "人工呼入量" not in labels and "工单受理量" in labels


@pytest.mark.parametrize("who", ["agent", "entry", "east_user"])
def test_others_are_refused(history, login, who):
    """Should refuse agents, data entry and department handlers without the statistics permission."""
    client = login(getattr(history, who))
    assert client.get("/stats/").status_code == 403
    assert client.get("/stats/export.xlsx").status_code == 403


def test_anonymous_is_sent_to_login(app, history):
    """Should send a visitor who is not logged in to the login page."""
    response = app.test_client().get("/stats/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("query, message", [
    ("period=custom&from=2026-02-30&to=2026-03-01", "开始日期格式应为 2026-03-01 这样的日期。"),
    ("period=custom&from=2026-03-05&to=2026-03-01", "结束日期早于开始日期。"),
    ("period=custom&from=2024-01-01&to=2026-03-01", "统计周期最长 366 天。"),
    ("period=custom&from=2026-03-01", "自定义周期须同时填写开始日期和结束日期。"),
    ("period=decade", "未知的统计周期：decade。"),
])
def test_bad_periods_get_a_clear_error(history, login, query, message):
    """Should answer a malformed period with 400 and a Chinese message saying what is wrong."""
    client = login(history.city_leader)
    response = client.get(f"/stats/?{query}")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert client.get(f"/stats/export.xlsx?{query}").status_code == 400


def test_bad_period_in_english(history, login):
    """Should say what is wrong in English to a user who chose English."""
    User.update(language="en").where(User.id == history.city_leader.id).execute()
    response = login(history.city_leader).get("/stats/?period=custom&from=2026-03-05&to=2026-03-01")
    assert response.status_code == 400
    assert "The end date lies before the start date." in response.get_data(as_text=True)


def test_views_and_exports_are_audited(history, login):
    """Should log who looked at or exported which scope and period."""
    client = login(history.east_leader)
    client.get("/stats/?period=week")
    client.get("/stats/export.xlsx?period=today")
    rows = [(a.action, a.operator_no, a.obj_id, a.detail) for a in
            AuditLog.select().where(AuditLog.action.startswith("stats")).order_by(AuditLog.id)]
    assert rows == [("stats_view", "7002", str(history.east.id), "2026-03-02..2026-03-04"),
                    ("stats_export", "7002", str(history.east.id), "2026-03-04..2026-03-04")]


def test_excel_export_has_the_page_figures(history, login):
    """Should download an .xlsx whose sheets carry Chinese headers and the same figures as the page."""
    response = login(history.city_leader).get("/stats/export.xlsx?period=month")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "attachment" in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["概况", "各渠道受理量", "各类型受理量", "每日话务量与工单量", "单位排名"]
    overview = list(book["概况"].iter_rows(values_only=True))
    assert overview[0][:2] == ("统计分析", "全市")
    header = overview.index(("指标", "本期", "上期", "环比", "去年同期", "同比"))
    rows = {row[0]: row[1:] for row in overview[header + 1:]}
    assert rows["人工呼入量"] == (4, 1, "+300.0%", 2, "+100.0%")
    assert rows["15秒接通率"][0] == pytest.approx(1 / 3)
    assert rows["工单受理量"][:3] == (6, 1, "+500.0%")
    channels = {row[0]: row[1] for row in book["各渠道受理量"].iter_rows(min_row=2, values_only=True)}
    assert channels["电话"] == 5 and channels["网站"] == 1 and channels["电子邮件"] == 0
    daily = list(book["每日话务量与工单量"].iter_rows(values_only=True))
    assert daily[0] == ("日期", "人工呼入量", "工单受理量") and daily[1] == ("2026-03-01", 1, 4)
    assert len(daily) == 1 + 4


def test_leader_lands_on_statistics(history, login):
    """Should send the leader from the staff landing page to the statistics page (the desk link works now)."""
    response = login(history.city_leader).get("/staff")
    assert response.status_code == 302 and response.headers["Location"].endswith("/stats")


def test_demo_history_fills_the_figures(db, clock):
    """Should give `make run`'s demo non-empty figures for the recent days and a year earlier, once."""
    from acd.demo import load_acd_demo
    from caseflow.demo import load_demo
    from stats.demo import DEMO_CALL_PREFIX, load_demo_history
    from stats.periods import Period
    from stats.queries import Scope, load_report

    load_demo(clock)
    load_acd_demo()
    made = load_demo_history(clock, days=8)
    assert made["tickets"] > 0 and made["calls"] > 0
    assert load_demo_history(clock, days=8) == {"tickets": 0, "calls": 0}
    assert not QueueEntry.select().where(QueueEntry.entered_at >= local(2026, 3, 4)).exists()
    assert QueueEntry.select().where(~QueueEntry.call_uuid.startswith(DEMO_CALL_PREFIX)).count() == 0
    period = Period("custom", dt.date(2026, 2, 24), dt.date(2026, 3, 3))
    report = load_report(Scope(), period, TZ, local(2026, 3, 4, 10, 0))
    values = {row.key: row for row in report.figures}
    assert values["calls_offered"].value > 0 and values["calls_offered"].year_ago > 0
    assert values["answer_in_target_rate"].value is not None
    assert values["tickets_created"].value > 0 and values["ratings"].value > 0
    assert any(calls for _day, calls, _tickets in report.daily)
