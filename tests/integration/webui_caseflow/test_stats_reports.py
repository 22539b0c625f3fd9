"""The report pages (/stats/r/...) and the department assessment on a small fixed history, on SQLite and
PostgreSQL: figures computed by hand, the heat map in a half-hour zone, filters, saved queries, bad input
(10-year period, another department's ticket, a role without the right -> 403 audited), appeals and the
month freeze."""
from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from openpyxl import load_workbook

from caseflow import services
from caseflow.models import Ticket, TicketHistory
from core.clock import FixedClock
from recorder.models import CallRecord
from stats.models import Appeal, ScoreSnapshot
from webui.models import AuditLog

from .conftest import TZ


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TZ).astimezone(dt.timezone.utc).replace(tzinfo=None)


def cells(html: str, prefix: str) -> dict[str, str]:
    return {k: v.strip() for k, v in re.findall(rf'data-testid="{prefix}-([a-z_0-9-]+)">([^<]*)<', html)}


@pytest.fixture
def east_leader(world):
    """The east district's leader (department users need stats.view, which dept_leader holds)."""
    from caseflow.accounts import hash_password
    from caseflow.models import User

    from .conftest import PASSWORD

    return User.create(operator_no="7002", name="郑区长", password_hash=hash_password(PASSWORD),
                       roles="dept_leader,dept", department=world.east)


@pytest.fixture
def calls(world):
    """Three inbound calls (two on Monday 2 March 09:xx local, one on Tuesday 3 March 00:10) and one outbound."""
    for uuid, at, direction in (("a", local(2026, 3, 2, 9, 0), "inbound"), ("b", local(2026, 3, 2, 9, 40), "inbound"),
                                ("c", local(2026, 3, 3, 0, 10), "inbound"), ("d", local(2026, 3, 3, 15, 0), "outbound"),
                                ("p", local(2026, 2, 2, 9, 0), "inbound")):
        CallRecord.create(call_uuid=uuid, started_at=at, direction=direction)
    return world


def test_calls_report_counts_by_local_day_hour_and_weekday(calls, login):
    """Should count calls per local day and hour, fill the heat map and compare with last month."""
    html = login(calls.leader).get("/stats/r/calls?period=month").get_data(as_text=True)
    shown = cells(html, "by_day")
    assert shown["2026-03-02-inbound"] == "2" and shown["2026-03-03-inbound"] == "1"
    assert shown["2026-03-03-outbound"] == "1"
    hours = cells(html, "by_hour")
    assert hours["9-inbound"] == "2" and hours["0-inbound"] == "1" and hours["15-outbound"] == "1"
    heat = cells(html, "heat")
    assert heat["0-9"] == "2" and heat["1-0"] == "1"  # Monday 09:00, Tuesday 00:00
    compare = cells(html, "compare")
    assert compare["inbound-value"] == "3" and compare["inbound-previous"] == "1"
    assert compare["inbound-vs_previous"] == "+200.0%"
    assert 'data-testid="heat-map"' in html


def test_heat_map_groups_in_a_half_hour_zone():
    """Should put 03:40 UTC in the 09:00 hour in Asia/Kolkata (UTC+5:30), not 08:00 or 03:00."""
    from zoneinfo import ZoneInfo

    from stats.breakdowns import call_traffic

    traffic = call_traffic([(dt.datetime(2026, 3, 2, 3, 40), "inbound"), (dt.datetime(2026, 3, 2, 18, 29), "inbound")],
                           ZoneInfo("Asia/Kolkata"))
    assert traffic.by_hour[9]["inbound"] == 1 and traffic.heat[0][9] == 1
    assert traffic.by_hour[23]["inbound"] == 1  # 18:29 UTC = 23:59 local, still Monday
    assert list(traffic.by_day) == [dt.date(2026, 3, 2)]


def test_ten_year_period_is_refused(calls, login):
    """Should refuse a 10-year period with a clear message (400)."""
    response = login(calls.leader).get("/stats/r/region?period=custom&from=2016-01-01&to=2025-12-31")
    assert response.status_code == 400
    assert "统计周期最长 366 天" in response.get_data(as_text=True)


def test_role_without_the_right_is_refused_and_audited(calls, login):
    """Should answer 403 to an agent and write the refusal in the audit log."""
    response = login(calls.agent).get("/stats/r/departments")
    assert response.status_code == 403
    assert AuditLog.select().where(AuditLog.action == "stats_denied").count() == 1


def test_department_user_gets_no_call_report(calls, login, east_leader):
    """Should refuse call figures to a department leader (they are the city's), audited."""
    assert login(east_leader).get("/stats/r/calls").status_code == 403
    assert AuditLog.select().where(AuditLog.action == "stats_denied").count() == 1


def test_status_urgency_and_department_reports(calls, login):
    """Should count the month's tickets by status now, urgency, and per district with rates."""
    w = calls
    Ticket.update(urgency="urgent").where(Ticket.id == w.east_ticket.id).execute()
    client = login(w.leader)
    status = cells(client.get("/stats/r/status").get_data(as_text=True), "main")
    assert status["dispatched-value"] == "2"
    urgency = cells(client.get("/stats/r/urgency").get_data(as_text=True), "compare")
    assert urgency["urgent-value"] == "1" and urgency["normal-value"] == "1"
    html = client.get("/stats/r/departments?sort=volume").get_data(as_text=True)
    depts = cells(html, "departments")
    assert depts[f"{w.east.id}-volume"] == "1" and depts[f"{w.west.id}-volume"] == "1"
    # the east filter (subtree) leaves west out
    html = client.get(f"/stats/r/urgency?department={w.east.id}").get_data(as_text=True)
    assert cells(html, "compare") == {k: v for k, v in cells(html, "compare").items()} and "urgent-value" in cells(html, "compare")
    assert "normal-value" not in cells(html, "compare")
    book = load_workbook(io.BytesIO(client.get("/stats/r/departments?format=xlsx").data))
    assert book.worksheets[1].max_row == 3  # header + east + west


def test_department_filter_outside_the_own_subtree_is_refused(calls, login, east_leader):
    """Should refuse a department user's filter naming another department."""
    response = login(east_leader).get(f"/stats/r/region?department={calls.west.id}")
    assert response.status_code == 400


def test_saved_queries_are_the_owners_only(calls, login):
    """Should save, list, run and delete a query; another user can neither run nor delete it."""
    client = login(calls.leader)
    client.post_form("/stats/saved", data={"report": "urgency", "name": "东区紧急", "query": "period=month&urgency=urgent"})
    html = client.get("/stats/r/urgency").get_data(as_text=True)
    assert "东区紧急" in html
    saved_id = int(re.search(r"/stats/saved/(\d+)", html).group(1))
    assert "urgency=urgent" in client.get(f"/stats/saved/{saved_id}").headers["Location"]
    other = login(calls.centre_user)
    assert other.get(f"/stats/saved/{saved_id}").status_code == 404
    assert other.post_form(f"/stats/saved/{saved_id}/delete").status_code == 404
    client.post_form(f"/stats/saved/{saved_id}/delete")
    assert "东区紧急" not in client.get("/stats/r/urgency").get_data(as_text=True)


@pytest.fixture
def month(world, clock):
    """February 2026: east got two dispatches (one accepted in time, one returned), a satisfied and an
    unsatisfied rating, one due on time; west one ticket due and overdue."""
    w = world

    def at(*args):
        return FixedClock(dt.datetime(*args, tzinfo=TZ))

    def ticket(text):
        return services.create_ticket(text, type="complaint", citizen_phone="13700000000", created_by=w.agent,
                                      clock=at(2026, 2, 2, 9, 0))

    a = services.dispatch(ticket("甲"), w.centre_user, w.east, clock=at(2026, 2, 2, 9, 0))
    services.transition(a, "accept", w.east_user, clock=at(2026, 2, 2, 10, 0))
    b = services.dispatch(ticket("乙"), w.centre_user, w.east, clock=at(2026, 2, 3, 9, 0))
    services.transition(b, "return", w.east_user, reason="不属本单位", clock=at(2026, 2, 3, 11, 0))
    c = services.dispatch(ticket("丙"), w.centre_user, w.west, clock=at(2026, 2, 4, 9, 0))
    Ticket.update(deadline=local(2026, 2, 10, 17, 0), replied_at=local(2026, 2, 9, 9, 0)).where(Ticket.id == a.id).execute()
    Ticket.update(deadline=local(2026, 2, 10, 17, 0)).where(Ticket.id == c.id).execute()
    for t, rating in ((a, "satisfied"), (c, "unsatisfied")):
        Ticket.update(satisfaction=rating).where(Ticket.id == t.id).execute()
        TicketHistory.create(ticket=t, action="call_back", at=local(2026, 2, 20, 10, 0), department=t.department_id)
    w.a, w.b, w.c = a, b, c
    return w


def test_score_sheet_by_hand(month, login):
    """Should score east and west from the month's evidence as computed by hand and rank them."""
    w = month
    html = login(w.leader).get("/stats/assessment?month=2026-02").get_data(as_text=True)
    shown = cells(html, "cell")
    e, wst = w.east.id, w.west.id
    assert shown[f"{e}-accept_in_time"].startswith("100.0%")
    assert shown[f"{e}-return_rate"].startswith("50.0%")  # 1 of 2 dispatched
    assert shown[f"{e}-on_time"].startswith("100.0%") and shown[f"{wst}-on_time"].startswith("0.0%")
    assert shown[f"{wst}-accept_in_time"].startswith("无数据")
    # east: 15 + 25 + 20 + 10*(1-.5) + 10 + 10 + 10 = 95 over all 100 rate weight
    totals = cells(html, "total")
    assert totals[str(e)] == "95.00"
    # west: no acceptance -> 85 weight with data: 0 + 0 + 10 + 10 + 10 + 0 = 30, scaled 30 * 100/85
    assert totals[str(wst)] == f"{30 * 100 / 85:.2f}"
    assert cells(html, "rank")[str(e)] == "1"


def test_indicators_in_words_and_typed_in_words(month, login):
    """Should show the indicators and their formulas in the user's words (no count or indicator codes),
    and save a formula an administrator typed with the counts' names."""
    from caseflow.accounts import hash_password
    from caseflow.models import User
    from stats.models import Indicator

    from .conftest import PASSWORD

    admin = login(User.create(operator_no="7009", name="管理员", password_hash=hash_password(PASSWORD),
                              roles="admin"))
    html = admin.get("/stats/assessment/indicators").get_data(as_text=True)
    assert "及时签收数 / 签收数" in html and "签收及时率" in html and "越低越好" in html
    assert "accepted_in_time /" not in html and ">rate<" not in html
    edit = admin.get("/stats/assessment/indicators?edit=callback_score").get_data(as_text=True)
    assert 'value="(满意数 + 0.8 * 基本满意数) / 回访数"' in edit
    saved = admin.post_form("/stats/assessment/indicators", data={
        "code": "callback_score", "name": "回访满意度", "formula": "(满意数 + 0.5 * 基本满意数) / 回访数",
        "weight": "10", "kind": "rate", "better": "high"})
    assert saved.status_code == 302
    assert Indicator.get(Indicator.code == "callback_score").formula == "(satisfied + 0.5 * basic) / rated"
    refused = admin.post_form("/stats/assessment/indicators", data={
        "code": "x1", "name": "x", "formula": "满意数 / 投诉数", "weight": "1", "kind": "rate", "better": "high"})
    assert refused.status_code == 400 and "未知的计数项" in refused.get_data(as_text=True)
    refused = admin.post_form("/stats/assessment/indicators", data={
        "code": "x2", "name": "x", "formula": "满意数 / 0", "weight": "1", "kind": "rate", "better": "high"})
    assert refused.status_code == 400 and "公式 satisfied / 0 的除数为零。" in refused.get_data(as_text=True)
    assert not Indicator.select().where(Indicator.code == "x2").exists()


def test_appeal_accepted_leaves_the_ticket_out_and_month_freezes(month, login, east_leader):
    """Should refuse an appeal on another department's ticket, take the own one, leave it out when the
    centre accepts, and freeze the sheet when the month is closed."""
    w = month
    east = login(east_leader)
    refused = east.post_form("/stats/assessment/appeal", data={"month": "2026-02", "ticket": w.c.id,
                                                           "indicator": "on_time", "reason": "不是我们的"})
    assert refused.status_code == 400 and "不计入本单位" in refused.get_data(as_text=True)
    assert AuditLog.select().where(AuditLog.action == "assessment_appeal_refused").count() == 1
    assert east.post_form("/stats/assessment/appeal", data={"month": "2026-02", "ticket": w.b.id,
                                                        "indicator": "return_rate", "reason": "职责外"}).status_code == 302
    appeal = Appeal.get()
    centre = login(w.leader)
    assert east.post_form(f"/stats/assessment/appeals/{appeal.id}", data={"decision": "accept"}).status_code == 403
    centre.post_form(f"/stats/assessment/appeals/{appeal.id}", data={"decision": "accept", "note": "同意"})
    html = centre.get("/stats/assessment?month=2026-02").get_data(as_text=True)
    assert cells(html, "cell")[f"{w.east.id}-return_rate"].startswith("0.0%")  # b left out: 0 of 1
    assert cells(html, "total")[str(w.east.id)] == "100.00"
    evidence = centre.get(f"/stats/assessment/evidence?month=2026-02&unit={w.east.id}&code=return_rate&name=dispatched")
    assert w.a.number in evidence.get_data(as_text=True) and w.b.number not in evidence.get_data(as_text=True)
    assert centre.post_form("/stats/assessment/close", data={"month": "2026-02"}).status_code == 302
    assert ScoreSnapshot.select().where(ScoreSnapshot.month == "2026-02").count() > 0
    # After the freeze a later change to the tickets does not move the score.
    Ticket.update(satisfaction="unsatisfied").where(Ticket.id == w.a.id).execute()
    html = centre.get("/stats/assessment?month=2026-02").get_data(as_text=True)
    assert cells(html, "total")[str(w.east.id)] == "100.00" and 'data-testid="month-closed"' in html
    late = east.post_form("/stats/assessment/appeal", data={"month": "2026-02", "ticket": w.a.id,
                                                        "indicator": "on_time", "reason": "x"})
    assert late.status_code == 400
    book = load_workbook(io.BytesIO(centre.get("/stats/assessment?month=2026-02&format=xlsx").data))
    assert book.worksheets[1].max_row == 3


def test_agent_region_category_and_speed_pages(calls, login):
    """Should count the agent's recorded tickets and the category tree, and show handling speed per district."""
    w = calls
    CallRecord.update(agent=w.agent, talk_seconds=60, hold_seconds=5).where(CallRecord.call_uuid == "a").execute()
    client = login(w.leader)
    agents = cells(client.get("/stats/r/agents").get_data(as_text=True), "agents")
    assert agents[f"{w.agent.id}-calls"] == "1" and agents[f"{w.agent.id}-talk"] == "60.0"
    assert agents[f"{w.agent.id}-tickets"] == "2"
    category = cells(client.get("/stats/r/category").get_data(as_text=True), "compare")
    assert category[f"{w.noise.id}-value"] == "1" and category["none-value"] == "1"
    region = cells(client.get("/stats/r/region").get_data(as_text=True), "compare")
    assert region["none-value"] == "2"
    speed = client.get("/stats/r/speed")
    assert speed.status_code == 200 and 'data-testid="table-speed"' in speed.get_data(as_text=True)
    assert client.get("/stats/r/nonsense").status_code == 404
