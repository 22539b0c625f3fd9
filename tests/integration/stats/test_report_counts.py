"""The departments and handling-speed reports' figures on a small history computed by hand, on SQLite and
PostgreSQL: what the database counts and the medians it finds equal what the tickets say, units summing their
streets, the period and filters applied."""
from __future__ import annotations

import datetime as dt

import pytest

from caseflow import daycounts, durations, org
from caseflow.models import Ticket, TicketHistory
from stats import report_queries as rq
from stats.breakdowns import Filters
from stats.queries import Scope, department_directory

START, END = dt.datetime(2026, 3, 1), dt.datetime(2026, 4, 1)
NOW = dt.datetime(2026, 3, 20, 12, 0)
H = dt.timedelta(hours=1)


@pytest.fixture
def units(db):
    centre = org.create_department("C", "热线中心", None, "centre")
    east = org.create_department("E", "东区", centre, "district")
    street = org.create_department("E1", "东区街道", east, "street")
    west = org.create_department("W", "西区", centre, "district")
    return centre, east, street, west


def ticket(n, department, created, *, dispatched=None, deadline=None, replied=None, closed=None, status="dispatched",
           satisfaction="", channel="phone"):
    return Ticket.create(number=f"{80000000 + n:08d}", department=department, created_at=created, updated_at=created,
                         dispatched_at=dispatched, deadline=deadline, replied_at=replied, closed_at=closed,
                         status=status, satisfaction=satisfaction, channel=channel)


def history(t, action, at, department):
    TicketHistory.create(ticket=t, action=action, at=at, department=department)


def counts(filters=Filters(None, "", "", None, None, "")):
    daycounts.rebuild()  # written around the workflow, as an import: the kept counts caught up
    paths, _names = department_directory()
    kept = rq.department_counts(Scope(), filters, START, END, NOW, paths, 2)
    assert kept == rq.department_counts(Scope(), filters, START, END, NOW, paths, 2, direct=True)
    return kept


def test_departments_on_time_overdue_and_ratings(units):
    """Should count replied by the deadline as on time; replied after it, or unreplied past it, as overdue;
    unreplied before it as neither; a deadline outside the period not at all; ratings in the period per
    department, 满意 and 基本满意 as satisfied; a street's tickets for its district."""
    _c, east, street, west = units
    day = dt.datetime(2026, 3, 5)
    ticket(1, east, day, deadline=day + 48 * H, replied=day + 47 * H)  # on time
    ticket(2, street, day, deadline=day + 48 * H, replied=day + 48 * H)  # on time, at the deadline itself
    ticket(3, east, day, deadline=day + 48 * H, replied=day + 49 * H)  # overdue: late reply
    ticket(4, west, day, deadline=dt.datetime(2026, 3, 19))  # overdue: no reply, deadline passed
    ticket(5, west, day, deadline=dt.datetime(2026, 3, 25))  # neither: not due yet
    ticket(6, west, day, deadline=dt.datetime(2026, 4, 2), replied=day + H)  # deadline outside the period
    rated = {"satisfied": east, "basic": street, "unsatisfied": east}
    for n, (rating, unit) in enumerate(rated.items()):
        t = ticket(10 + n, unit, day, status="closed", satisfaction=rating)
        history(t, "call_back" if n != 2 else "call_back_unsatisfied", day + 5 * H, unit)
    history(ticket(20, west, day, status="closed", satisfaction="satisfied"), "call_back",
            dt.datetime(2026, 2, 27), west)  # rated before the period
    found = counts()
    assert found["on_time"] == {east.id: 2} and found["overdue"] == {east.id: 1, west.id: 1}
    assert found["rated"] == {east.id: 3} and found["satisfied"] == {east.id: 2}
    assert found["volume"] == {east.id: 6, west.id: 4}
    assert counts(Filters(None, "web", "", None, None, ""))["on_time"] == {}


def test_speed_counts_medians_and_buckets(units):
    """Should give per unit and stage the count, the median (the mean of the middle two for an even
    count) and the buckets (a bound belongs to the lower bucket), from the first acceptance after the
    dispatch, dispatch to reply and creation to 办结, for tickets created in the period."""
    _c, east, street, west = units
    day = dt.datetime(2026, 3, 3)
    reply_hours = {east: [1, 4, 30, 200], street: [24], west: [2.5, 0.5, 72]}
    n = 0
    for unit, hours in reply_hours.items():
        for h in hours:
            n += 1
            t = ticket(n, unit, day, dispatched=day + H, replied=day + H + h * H, closed=day + H + h * H + 2 * H,
                       status="closed" if n % 2 else "replied")
            history(t, "accept", day + H + n * dt.timedelta(minutes=30), unit)
            history(t, "accept", day + 50 * H, unit)  # a later acceptance: the first counts
    ticket(50, west, dt.datetime(2026, 2, 20), dispatched=dt.datetime(2026, 2, 20), replied=day)  # created before
    ticket(51, west, day, dispatched=day + H, replied=day)  # a reply before the dispatch: no duration
    durations.rebuild()  # written around the workflow, as an import: the kept durations caught up
    speed = rq.speed_table(Scope(), Filters(None, "", "", None, None, ""), START, END, depth=2)
    assert speed == rq.speed_table(Scope(), Filters(None, "", "", None, None, ""), START, END, depth=2, direct=True)
    e, w = speed[east.id], speed[west.id]
    assert e["reply_count"] == 5 and e["reply_median"] == pytest.approx(24)  # 1 4 24 30 200
    assert [e[f"reply_{label}"] for label in ("0-1h", "1-4h", "4-24h", "24-72h", "72-168h", ">168h")] == [1, 1, 1, 1, 0, 1]
    assert w["reply_count"] == 3 and w["reply_median"] == pytest.approx(2.5)
    assert [w[f"reply_{label}"] for label in ("0-1h", "1-4h", "4-24h", "24-72h", "72-168h", ">168h")] == [1, 1, 0, 1, 0, 0]
    # accept: ticket n accepted n half-hours after the dispatch (east 1, 2, 3, 4, street 5; west 6, 7, 8)
    assert e["accept_count"] == 5 and e["accept_median"] == pytest.approx(1.5)
    assert w["accept_count"] == 3 and w["accept_median"] == pytest.approx(3.5)
    # close (creation to 办结, closed ones only: odd n): east n=1, 3, 5 (street) -> 4, 33, 27 hours
    assert e["close_count"] == 3 and e["close_median"] == pytest.approx(27)
    assert w["close_count"] == 1 and w["close_median"] == pytest.approx(1 + 0.5 + 2)
    assert rq.speed_table(Scope(), Filters(None, "web", "", None, None, ""), START, END, depth=2) == {}
