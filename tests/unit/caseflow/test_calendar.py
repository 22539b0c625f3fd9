"""Working-day arithmetic across weekends, holidays and make-up working days (调休)."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from caseflow import deadlines as dl
from core.calendar import CalendarError, WorkCalendar

TZ = ZoneInfo("Asia/Shanghai")
D = dt.date
# National Day 2026: Oct 1-7 off, Sunday Sep 20 and Saturday Oct 10 worked.
NATIONAL = WorkCalendar(holidays=frozenset(D(2026, 10, d) for d in range(1, 8)),
                        workdays=frozenset({D(2026, 9, 20), D(2026, 10, 10)}))


def test_weekend_is_off_weekday_is_on():
    """Should treat Saturday and Sunday as days off and Monday-Friday as working days by default."""
    cal = WorkCalendar()
    assert cal.is_workday(D(2026, 3, 6))  # Friday
    assert not cal.is_workday(D(2026, 3, 7))
    assert not cal.is_workday(D(2026, 3, 8))
    assert cal.next_workday(D(2026, 3, 6)) == D(2026, 3, 9)


def test_holiday_and_makeup_day():
    """Should skip a weekday holiday and count a weekend make-up working day."""
    assert not NATIONAL.is_workday(D(2026, 10, 5))
    assert NATIONAL.is_workday(D(2026, 10, 10))  # Saturday, worked
    assert NATIONAL.is_workday(D(2026, 9, 20))  # Sunday, worked


@pytest.mark.parametrize("start,count,expected", [
    (D(2026, 9, 30), 1, D(2026, 10, 8)),    # Wed before the holiday -> first day back
    (D(2026, 9, 30), 2, D(2026, 10, 9)),
    (D(2026, 9, 30), 3, D(2026, 10, 10)),   # the make-up Saturday counts
    (D(2026, 9, 30), 4, D(2026, 10, 12)),   # Sunday 11th is off again
    (D(2026, 9, 18), 1, D(2026, 9, 20)),    # Friday -> make-up Sunday
    (D(2026, 9, 18), 13, D(2026, 10, 12)),  # complaint limit across the whole holiday
    (D(2026, 3, 6), 3, D(2026, 3, 11)),     # Friday + 3 -> Wednesday
    (D(2026, 3, 7), 1, D(2026, 3, 9)),      # accepted on Saturday
    (D(2026, 3, 6), 0, D(2026, 3, 6)),
])
def test_add_workdays(start, count, expected):
    """Should land on the expected working day."""
    assert NATIONAL.add_workdays(start, count) == expected


def test_workdays_between():
    """Should count working days elapsed, holidays excluded, make-up days included."""
    assert NATIONAL.workdays_between(D(2026, 9, 30), D(2026, 10, 12)) == 4
    assert NATIONAL.workdays_between(D(2026, 10, 12), D(2026, 10, 1)) == 0


def test_negative_and_endless_calendar_refused():
    """Should refuse a negative count and stop (with an error) on a calendar with no working day."""
    with pytest.raises(CalendarError):
        WorkCalendar().add_workdays(D(2026, 1, 1), -1)
    all_off = WorkCalendar(holidays=frozenset(D(2026, 1, 1) + dt.timedelta(days=i) for i in range(5000)))
    with pytest.raises(CalendarError):
        all_off.add_workdays(D(2026, 1, 1), 1)


def test_deadline_in_working_days_ends_at_end_of_day():
    """Should put a 3-working-day consultation accepted on Friday at Wednesday 23:59:59 local."""
    start = dt.datetime(2026, 3, 6, 16, 30, tzinfo=TZ)
    limit = dl.pick_limit(dl.DEFAULT_LIMITS, "consult", "normal")
    assert dl.compute_deadline(start, limit, WorkCalendar(), TZ) == dt.datetime(2026, 3, 11, 23, 59, 59, tzinfo=TZ)


def test_complaint_across_national_day():
    """Should give a complaint accepted on 30 September 13 working days ending on 23 October."""
    start = dt.datetime(2026, 9, 30, 9, 0, tzinfo=TZ)
    limit = dl.pick_limit(dl.DEFAULT_LIMITS, "complaint", "normal")
    assert limit == dl.Limit(13, dl.WORKDAYS)
    assert dl.compute_deadline(start, limit, NATIONAL, TZ).date() == D(2026, 10, 23)


def test_emergency_counts_wall_clock_hours():
    """Should count an emergency in hours, holidays included."""
    start = dt.datetime(2026, 10, 3, 23, 0, tzinfo=TZ)
    limit = dl.pick_limit(dl.DEFAULT_LIMITS, "help", "emergency")
    assert limit.unit == dl.HOURS
    assert dl.compute_deadline(start, limit, NATIONAL, TZ) == start + dt.timedelta(hours=limit.amount)


def test_limit_lookup_prefers_specific():
    """Should prefer (type, urgency) over (*, urgency) over (type, normal)."""
    table = dict(dl.DEFAULT_LIMITS)
    table[("complaint", "urgent")] = dl.Limit(2, dl.WORKDAYS)
    assert dl.pick_limit(table, "complaint", "urgent") == dl.Limit(2, dl.WORKDAYS)
    assert dl.pick_limit(table, "consult", "urgent") == table[("*", "urgent")]
    assert dl.pick_limit(table, "nonexistent", "normal") == table[("*", "normal")]


@pytest.mark.parametrize("amount,unit", [("x", "workdays"), (0, "workdays"), (5, "weeks"), (400, "workdays")])
def test_bad_limits_refused(amount, unit):
    """Should refuse malformed time limits."""
    with pytest.raises(dl.DeadlineError):
        dl.validate_limit(amount, unit)


def test_naive_start_refused():
    """Should refuse a naive start time rather than guess its zone."""
    with pytest.raises(dl.DeadlineError):
        dl.compute_deadline(dt.datetime(2026, 3, 6), dl.Limit(1, dl.WORKDAYS), WorkCalendar(), TZ)
