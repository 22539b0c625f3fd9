"""The statistics pages with data in them, in one language at a time (issue 13 item 1 for issue 14's pages):
every report, the overview, the assessment with its evidence and indicators and the command screen, opened by
the leader (and the administrator for the indicators) in zh-CN and in English, show no text of the other
language and no internal code, whatever the rows hold (channels, types, statuses, urgencies, buckets,
weekdays). test_one_language.py walks the same pages on an empty database, where most of this never shows."""
from __future__ import annotations

import datetime as dt

import pytest

from caseflow import org, services
from caseflow.models import Category, Department, Region, Ticket, TicketHistory, User
from core.clock import FixedClock
from recorder.models import CallRecord
from stats.models import Appeal
from tests.integration.webui.test_one_language import findings
from webui.blueprints.stats_reports import REPORTS

from .conftest import TZ


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TZ).astimezone(dt.timezone.utc).replace(tzinfo=None)


@pytest.fixture
def rows(world):
    """Tickets of every channel, type and urgency this month, some dispatched, accepted, replied and rated,
    in a region and a category; calls in and out; a rating."""
    w = world
    district = org.create_region("D", "东城区")
    street = org.create_region("D1", "东城街道", district)
    for n, (channel, kind, urgency) in enumerate((("web", "complaint", "urgent"), ("sms", "help", "emergency"),
                                                  ("email", "suggestion", "normal"), ("chat", "report", "normal"),
                                                  ("mailbox", "praise", "urgent"))):
        at = FixedClock(dt.datetime(2026, 3, 2, 9, n, tzinfo=TZ))
        t = services.create_ticket(f"本月工单{n}", type=kind, channel=channel, citizen_phone="13700000000",
                                   created_by=w.agent, clock=at, category=w.noise)
        Ticket.update(region=street if n % 2 else district, urgency=urgency).where(Ticket.id == t.id).execute()
        if n < 3:
            t = services.dispatch(t, w.centre_user, w.east, clock=at)
            services.transition(t, "accept", w.east_user, clock=FixedClock(dt.datetime(2026, 3, 2, 12, n, tzinfo=TZ)))
    Ticket.update(satisfaction="satisfied").where(Ticket.id == w.east_ticket.id).execute()
    TicketHistory.create(ticket=w.east_ticket, action="call_back", at=local(2026, 3, 3, 10, 0),
                         department=w.east.id)
    for uuid, at, direction in (("a", local(2026, 3, 2, 9, 0), "inbound"), ("b", local(2026, 3, 3, 15, 0), "outbound")):
        CallRecord.create(call_uuid=uuid, started_at=at, direction=direction, agent=w.agent, talk_seconds=60)
    for state, ticket in (("pending", w.east_ticket), ("rejected", w.west_ticket)):
        Appeal.create(month="2026-03", department=w.east, ticket=ticket, indicator="satisfaction", reason="不属本单位",
                      state=state, raised_by=w.east_user)
    return w


def _masked(html: str) -> str:
    """The page with the organisation's and the citizens' own text (names of units, places, categories,
    users, ticket titles, appeal reasons: Chinese on an English page too) replaced by a neutral word."""
    names = [name for model, field in ((Department, Department.name), (Region, Region.name),
                                       (Category, Category.name), (User, User.name), (Ticket, Ticket.title),
                                       (Appeal, Appeal.reason))
             for (name,) in model.select(field).tuples() if name]
    for name in sorted(set(names), key=len, reverse=True):
        html = html.replace(name, "Name")
    return html


def _pages(w) -> list[str]:
    pages = ["/stats/", "/stats/screen/", "/stats/assessment", "/stats/assessment?month=2026-03",
             f"/stats/assessment/evidence?month=2026-03&unit={w.east.id}&code=accept_in_time&name=accepted"]
    for report in REPORTS:
        pages += [f"/stats/r/{report}", f"/stats/r/{report}?period=custom&from=2026-03-01&to=2026-03-04"]
    return pages


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_statistics_pages_with_data_are_in_one_language(rows, login, lang):
    """Should show each statistics page, full of this month's rows, in ``lang`` only."""
    found = {}
    for user, pages in ((rows.leader, _pages(rows)), (rows.admin, ["/stats/assessment/indicators"])):
        client = login(user)
        client.post_form("/language", {"lang": lang})
        client.get("/stats/")  # shows (and so clears) the login's welcome, said in the language of the login
        for path in pages:
            response = client.get(path)
            assert response.status_code == 200, path
            html = response.get_data(as_text=True)
            problems = findings(_masked(html) if lang == "en" else html, lang)
            if problems:
                found[path] = problems[:12]
    assert found == {}, "\n".join(f"{path}: {problems}" for path, problems in found.items())
    # Codes shown by name in English too, not as the code or its number.
    client = login(rows.leader)
    client.post_form("/language", {"lang": lang})
    heat = client.get("/stats/r/calls").get_data(as_text=True)
    urgency = client.get("/stats/r/urgency").get_data(as_text=True)
    appeals = client.get("/stats/assessment?month=2026-03").get_data(as_text=True)
    if lang == "en":
        assert ">Mon<" in heat and ">Sun<" in heat and ">Urgent<" in urgency and ">Emergency<" in urgency
        assert "Pending" in appeals and "Rejected" in appeals
        assert ">Web</option>" in urgency and ">Request for help</option>" in urgency
    else:
        assert ">周一<" in heat and ">紧急<" in urgency and "待处理" in appeals and "已驳回" in appeals
        assert ">网站</option>" in urgency and ">求助</option>" in urgency
