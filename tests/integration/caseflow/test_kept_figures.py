"""The reports' kept figures on SQLite and PostgreSQL: the handling durations per ticket (caseflow.durations)
and the tickets per day and value (caseflow.daycounts). A fixed small history walked through the workflow (a
ticket returned and sent elsewhere, one reopened after an unsatisfied rating, one passed down to a street, one
办结 and archived, one edited) keeps exactly what the tickets and their history give, and the reports read
from them equal the ones counted from the tickets, for periods on local days in Asia/Shanghai and in a
half-hour zone (tickets a second either side of local midnight), with every filter and a department's scope;
tickets written around the workflow are caught up by ``rebuild``."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from peewee import fn

from caseflow import daycounts, durations, services
from caseflow.models import Ticket, TicketDuration, TicketHistory
from core.clock import FixedClock
from stats import report_queries as rq
from stats.breakdowns import Filters
from stats.periods import Period
from stats.queries import Scope, department_directory

SHANGHAI, KOLKATA = ZoneInfo("Asia/Shanghai"), ZoneInfo("Asia/Kolkata")  # +08:00, +05:30
NONE = Filters(None, "", "", None, None, "")


def walk(o, start: dt.datetime, zone: ZoneInfo = SHANGHAI):
    """Tickets created at ``start`` (aware) moved through the workflow, a clock advanced between steps."""
    clock = FixedClock(start, tz=str(zone))
    made = {}

    def new(name, **kw):
        made[name] = services.create_ticket(f"{name}：小区夜间施工噪音扰民，请处理。", type="complaint",
                                            citizen_phone="13800000001", category=o.noise, region=o.r_east1,
                                            created_by=o.agent, clock=clock, **kw)
        return made[name]

    def step(ticket, event, actor, minutes, **kw):
        clock.advance(minutes=minutes)
        return services.transition(ticket, event, actor, clock=clock, **kw)

    t = new("closed", channel="web")  # accepted, replied, rated, 办结, archived
    t = step(t, "dispatch", o.centre_user, 10, department=o.east)
    t = step(t, "accept", o.east_user, 45)
    t = step(t, "reply", o.east_user, 60 * 30, reply="已处理")
    t = step(t, "approve", o.centre_user, 5)
    t = step(t, "call_back", o.centre_user, 5, satisfaction="satisfied")
    t = step(t, "close", o.leader, 5)
    step(t, "archive", o.leader, 5)
    t = new("returned", urgency="urgent")  # west accepts, returns it; east gets it later: west's acceptance drops
    t = step(t, "dispatch", o.centre_user, 3, department=o.west)
    t = step(t, "accept", o.west_user, 20)
    t = step(t, "return", o.west_user, 30, reason="不属本区")
    t = step(t, "dispatch", o.centre_user, 60, department=o.east)
    t = step(t, "accept", o.east_user, 90)
    step(t, "reply", o.east_user, 60 * 4, reply="已处理")
    t = new("reopened")  # unsatisfied, reopened: the second dispatch and reply count, the first acceptance drops
    t = step(t, "dispatch", o.centre_user, 1, department=o.east)
    t = step(t, "accept", o.east_user, 60)
    t = step(t, "reply", o.east_user, 60 * 24, reply="已处理")
    t = step(t, "approve", o.centre_user, 1)
    t = step(t, "call_back_unsatisfied", o.centre_user, 1, satisfaction="unsatisfied")
    t = step(t, "reopen", o.leader, 60, reason="未解决")
    t = step(t, "accept", o.east_user, 60 * 2)
    step(t, "reply", o.east_user, 60 * 72, reply="已再次处理")
    t = new("passed down", channel="sms")  # east accepts, passes it to its street, which accepts
    t = step(t, "dispatch", o.centre_user, 2, department=o.east)
    t = step(t, "accept", o.east_user, 30)
    t = step(t, "sub_dispatch", o.east_user, 30, department=o.east_street)
    step(t, "accept", o.east_street_user, 60 * 7)
    t = new("bureau")  # dispatched, never accepted: no row; edited: counted under its new values
    t = step(t, "dispatch", o.centre_user, 1, department=o.bureau)
    services.edit_ticket(t, o.centre_user, clock=clock, category=o.food, region=o.r_west, urgency="emergency")
    return made


def kept_rows():
    return sorted(TicketDuration.select(TicketDuration.ticket, TicketDuration.stage, TicketDuration.department,
                                        TicketDuration.hours).tuples())


def counted_both_ways(start, end, filters=NONE):
    for dimension in daycounts.DIMENSIONS:
        kept = rq.tickets_by(dimension, Scope(), filters, start, end)
        assert kept == rq.tickets_by(dimension, Scope(), filters, start, end, direct=True), dimension
    return {d: rq.tickets_by(d, Scope(), filters, start, end) for d in daycounts.DIMENSIONS}


def recorded_both_ways(start, end):
    """The agents report's tickets recorded per user against the tickets' own count."""
    figures, _names = rq.agent_figures(start, end)
    kept = {user: f.tickets for user, f in figures.items() if f.tickets}
    assert kept == dict(Ticket.select(Ticket.created_by, fn.COUNT(Ticket.id))
                        .where((Ticket.created_at >= start) & (Ticket.created_at < end),
                               Ticket.created_by.is_null(False)).group_by(Ticket.created_by).tuples())
    return kept


def departments_both_ways(start, end, now, filters=NONE):
    paths, _names = department_directory()
    kept = rq.department_counts(Scope(), filters, start, end, now, paths, 2)
    assert kept == rq.department_counts(Scope(), filters, start, end, now, paths, 2, direct=True)
    return kept


def same_both_ways(scope, filters, start, end, depth=2):
    kept = rq.speed_table(scope, filters, start, end, depth)
    assert kept == rq.speed_table(scope, filters, start, end, depth, direct=True)
    return kept


def test_kept_as_the_workflow_moves(org_setup):
    """Should keep, after every step, the rows the tickets and history give: a returned ticket's acceptance
    by the department that returned it left out, a reopened ticket counted from its new dispatch, both
    departments' acceptances of a ticket passed down, nothing for a ticket not accepted."""
    o = org_setup
    made = walk(o, dt.datetime(2026, 3, 4, 10, 0, tzinfo=SHANGHAI))
    assert durations.differences() == [] and daycounts.differences() == []
    rows = {(t, s, d): h for t, s, d, h in kept_rows()}
    ids = {name: t.id for name, t in made.items()}
    assert rows[(ids["closed"], "accept", o.east.id)] == pytest.approx(0.75)
    assert rows[(ids["closed"], "reply", o.east.id)] == pytest.approx(30.75)
    assert rows[(ids["closed"], "close", o.east.id)] == pytest.approx((1855 + 15) / 60)  # to 办结
    assert (ids["returned"], "accept", o.west.id) not in rows  # accepted before the dispatch that counts
    assert rows[(ids["returned"], "accept", o.east.id)] == pytest.approx(1.5)
    assert rows[(ids["reopened"], "accept", o.east.id)] == pytest.approx(2)  # after the reopening's dispatch
    assert rows[(ids["reopened"], "reply", o.east.id)] == pytest.approx(74)
    assert rows[(ids["passed down"], "accept", o.east.id)] == pytest.approx(0.5)
    assert rows[(ids["passed down"], "accept", o.east_street.id)] == pytest.approx(8)
    assert not [r for r in rows if r[0] == ids["bureau"]]
    start, end = dt.datetime(2026, 3, 1), dt.datetime(2026, 4, 1)
    speed = same_both_ways(Scope(), NONE, start, end)
    assert speed[o.east.id]["accept_count"] == 5 and speed[o.east.id]["reply_count"] == 3
    counted = counted_both_ways(start, end)
    for now in (dt.datetime(2026, 3, 5, 3, 0), dt.datetime(2026, 3, 9, 16, 0), dt.datetime(2026, 5, 1)):
        departments_both_ways(start, end, now)  # deadlines before, around and after the moment
    assert departments_both_ways(start, end, end)["closed"] == {o.east.id: 1}
    assert counted["status"] == {"archived": 1, "replied": 2, "in_progress": 1, "dispatched": 1}
    assert counted["urgency"] == {"normal": 3, "urgent": 1, "emergency": 1}
    assert counted["category"] == {o.noise.id: 4, o.food.id: 1}
    assert counted["region"] == {o.r_east1.id: 4, o.r_west.id: 1}


@pytest.mark.parametrize("zone", [SHANGHAI, KOLKATA], ids=["Asia/Shanghai", "Asia/Kolkata"])
def test_local_day_boundaries_and_filters(org_setup, zone):
    """Should give the same report from the kept rows as from the tickets for a local day whose tickets were
    created a second before and at local midnight (a whole and a half-hour zone), for the scope of a
    district and for each filter."""
    o = org_setup
    day = dt.date(2026, 3, 10)
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    walk(o, midnight - dt.timedelta(seconds=1), zone)  # the day before, locally
    walk(o, midnight, zone)
    walk(o, midnight + dt.timedelta(hours=23, minutes=59, seconds=59), zone)  # the last second of the day
    assert durations.differences() == [] and daycounts.differences() == []
    one_day = Period("custom", day, day).bounds(zone)
    two_days = Period("custom", day - dt.timedelta(days=1), day).bounds(zone)
    first = same_both_ways(Scope(), NONE, *one_day)
    both = same_both_ways(Scope(), NONE, *two_days)
    assert first[o.east.id]["accept_count"] * 3 == both[o.east.id]["accept_count"] * 2
    month = Period("custom", day, day + dt.timedelta(days=30)).bounds(zone)
    for bounds in (one_day, two_days, month):
        created = Ticket.select().where((Ticket.created_at >= bounds[0]) & (Ticket.created_at < bounds[1])).count()
        assert created and all(sum(c.values()) == created for c in counted_both_ways(*bounds).values())
        assert recorded_both_ways(*bounds) == {o.agent.id: created}
    assert Ticket.select().where(Ticket.created_at == one_day[0]).count() == 1  # the first at local midnight
    for filters in (Filters(o.east.id, "", "", None, None, ""), Filters(None, "web", "", None, None, ""),
                    Filters(None, "", "complaint", None, None, ""), Filters(None, "", "", o.noise.id, None, ""),
                    Filters(None, "", "", None, o.r_east.id, ""), Filters(None, "", "", None, None, "urgent"),
                    Filters(None, "", "", None, o.r_west.id, "")):
        same_both_ways(Scope(), filters, *two_days)
        counted_both_ways(*two_days, filters)
    for now in (midnight + dt.timedelta(days=2, hours=3), midnight + dt.timedelta(days=40)):
        for bounds in (one_day, two_days, month):
            departments_both_ways(*bounds, now.astimezone(dt.timezone.utc).replace(tzinfo=None))
    assert same_both_ways(Scope(department=o.east), NONE, *two_days, depth=3)


def test_rebuild_catches_up_tickets_written_around_the_workflow(org_setup):
    """Should derive the rows of tickets and history written directly (an import) when rebuilt, remove rows
    of tickets no longer there, change nothing when run again, and keep one ticket's rows on demand."""
    o = org_setup
    made = walk(o, dt.datetime(2026, 3, 4, 10, 0, tzinfo=SHANGHAI))
    day = dt.datetime(2026, 3, 5, 16, 0)
    direct = Ticket.create(number="90000001", department=o.west, created_at=day, updated_at=day,
                           dispatched_at=day + dt.timedelta(hours=1), replied_at=day + dt.timedelta(hours=3),
                           closed_at=day + dt.timedelta(hours=4), status="closed")
    TicketHistory.create(ticket=direct, action="accept", at=day + dt.timedelta(hours=2), department=o.west)
    Ticket.create(number="90000002", department=o.west, created_at=day, updated_at=day,
                  dispatched_at=day + dt.timedelta(hours=2), replied_at=day + dt.timedelta(hours=1))  # reply first
    assert durations.differences() != [] and daycounts.differences() != []
    TicketDuration.create(ticket=made["bureau"], stage="reply", department=o.bureau, created_at=day, hours=1)
    assert durations.rebuild(step=2) == len(kept_rows())
    daycounts.rebuild()
    assert durations.differences() == [] and daycounts.differences() == []
    before = kept_rows()
    durations.rebuild()
    assert kept_rows() == before
    same_both_ways(Scope(), NONE, dt.datetime(2026, 3, 1), dt.datetime(2026, 4, 1))
    same_both_ways(Scope(), NONE, dt.datetime(2026, 1, 1), dt.datetime(2027, 1, 1))  # SQLite: the other index
    assert counted_both_ways(dt.datetime(2026, 3, 1), dt.datetime(2026, 4, 1))["status"]["closed"] == 1
    departments_both_ways(dt.datetime(2026, 3, 1), dt.datetime(2026, 4, 1), dt.datetime(2026, 3, 20))
    Ticket.update(replied_at=day + dt.timedelta(hours=5)).where(Ticket.id == direct.id).execute()
    durations.keep([direct.id])
    assert durations.differences() == []
