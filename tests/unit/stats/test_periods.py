"""Reporting periods: kinds, validation, comparison periods across month and year ends, local day bounds."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from stats.periods import (MAX_DAYS, Period, PeriodError, local_day, parse_period, previous_period,
                           shift_months, year_earlier)

SHANGHAI = ZoneInfo("Asia/Shanghai")
D = dt.date


def test_today_week_and_month_run_up_to_today():
    """Should give today, Monday to today, and the 1st to today."""
    wednesday = D(2026, 3, 4)
    assert parse_period("today", None, None, wednesday) == Period("today", wednesday, wednesday)
    assert parse_period("week", None, None, wednesday) == Period("week", D(2026, 3, 2), wednesday)
    assert parse_period("month", None, None, wednesday) == Period("month", D(2026, 3, 1), wednesday)


def test_default_is_this_month_and_dates_alone_mean_custom():
    """Should default to this month, and treat a bare date range as a custom period."""
    assert parse_period(None, None, None, D(2026, 3, 4)).kind == "month"
    assert parse_period("", "2026-01-01", "2026-01-31", D(2026, 3, 4)) == Period("custom", D(2026, 1, 1),
                                                                                D(2026, 1, 31))


@pytest.mark.parametrize("kind, first, last, message", [
    ("custom", "2026-02-30", "2026-03-01", "%(field)s must be a date like 2026-03-01."),
    ("custom", "01/03/2026", "2026-03-01", "%(field)s must be a date like 2026-03-01."),
    ("custom", "2026-03-01", "", "A custom period needs both a start and an end date."),
    ("custom", "2026-03-05", "2026-03-01", "The end date lies before the start date."),
    ("custom", "2025-01-01", "2026-03-01", "A period may span at most %(days)s days."),
    ("custom", "1900-01-01", "1900-01-02", "%(field)s must lie between %(first)s and %(last)s."),
    ("yearly", "", "", "Unknown period %(kind)s."),
    ("custom", "2026-03-01" + "x" * 5000, "2026-03-02", "%(field)s must be a date like 2026-03-01."),
])
def test_bad_periods_are_refused_with_a_reason(kind, first, last, message):
    """Should refuse malformed dates, reversed and over-long ranges and unknown kinds, saying which."""
    with pytest.raises(PeriodError) as caught:
        parse_period(kind, first, last, D(2026, 3, 4))
    assert caught.value.message == message


def test_the_longest_range_is_accepted():
    """Should accept a range of exactly MAX_DAYS days (a leap year)."""
    period = parse_period("custom", "2024-01-01", "2024-12-31", D(2026, 3, 4))
    assert period.days == MAX_DAYS


def test_shift_months_clips_to_the_months_end():
    """Should keep the day where it exists and clip 31 to the end of a shorter month, across years."""
    assert shift_months(D(2026, 3, 31), -1) == D(2026, 2, 28)
    assert shift_months(D(2024, 3, 31), -1) == D(2024, 2, 29)
    assert shift_months(D(2026, 1, 15), -1) == D(2025, 12, 15)
    assert shift_months(D(2024, 2, 29), -12) == D(2023, 2, 28)


def test_previous_period_per_kind():
    """Should compare today with yesterday, a week with last week, a month with last month's same days,
    and a custom range with the equally long range just before it."""
    assert previous_period(Period("today", D(2026, 1, 1), D(2026, 1, 1))) == Period("today", D(2025, 12, 31),
                                                                                    D(2025, 12, 31))
    assert previous_period(Period("week", D(2026, 3, 2), D(2026, 3, 4))) == Period("week", D(2026, 2, 23),
                                                                                   D(2026, 2, 25))
    assert previous_period(Period("month", D(2026, 3, 1), D(2026, 3, 31))) == Period("month", D(2026, 2, 1),
                                                                                     D(2026, 2, 28))
    assert previous_period(Period("month", D(2026, 1, 1), D(2026, 1, 10))) == Period("month", D(2025, 12, 1),
                                                                                     D(2025, 12, 10))
    custom = previous_period(Period("custom", D(2026, 1, 1), D(2026, 1, 10)))
    assert custom == Period("custom", D(2025, 12, 22), D(2025, 12, 31)) and custom.days == 10


def test_year_earlier_moves_leap_day():
    """Should compare with the same dates a year before; 29 February becomes the 28th."""
    assert year_earlier(Period("custom", D(2024, 2, 1), D(2024, 2, 29))) == Period("custom", D(2023, 2, 1),
                                                                                   D(2023, 2, 28))


def test_bounds_are_local_midnights_in_utc():
    """Should start at local midnight (16:00 UTC the day before in Shanghai) and end after the last day."""
    start, end = Period("month", D(2026, 3, 1), D(2026, 3, 4)).bounds(SHANGHAI)
    assert start == dt.datetime(2026, 2, 28, 16, 0) and end == dt.datetime(2026, 3, 4, 16, 0)
    assert start.tzinfo is None


def test_bounds_follow_daylight_saving_elsewhere():
    """Should give a 23-hour day on a spring-forward date in a zone with summer time."""
    start, end = Period("today", D(2026, 3, 29), D(2026, 3, 29)).bounds(ZoneInfo("Europe/Berlin"))
    assert end - start == dt.timedelta(hours=23)


def test_local_day_of_a_stored_moment():
    """Should put 16:30 UTC into the next local day in Shanghai, and 15:59 into the same day."""
    assert local_day(dt.datetime(2025, 12, 31, 16, 30), SHANGHAI) == D(2026, 1, 1)
    assert local_day(dt.datetime(2025, 12, 31, 15, 59), SHANGHAI) == D(2025, 12, 31)
