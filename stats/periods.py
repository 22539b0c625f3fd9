"""Reporting periods in the configured zone: today, this week, this month or a chosen date range, the
period they are compared with (环比 previous, 同比 a year earlier) and their bounds as stored (naive UTC).

Pure: no database, no clock (callers pass ``today`` and the zone).
"""
from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

KINDS = ("today", "week", "month", "custom")
MAX_DAYS = 366
# Dates outside these years are typing mistakes, not reports anyone wants.
FIRST_YEAR, LAST_YEAR = 2000, 2100


class PeriodError(ValueError):
    """A period the user asked for is malformed. ``message`` is an English message id (translated by the
    web UI) with ``%(name)s`` placeholders filled from ``values``."""

    def __init__(self, message: str, **values):
        super().__init__(message % values if values else message)
        self.message = message
        self.values = values


@dataclass(frozen=True)
class Period:
    """Local calendar days ``first`` .. ``last`` (both included)."""

    kind: str
    first: dt.date
    last: dt.date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def day_list(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=n) for n in range(self.days)]

    def bounds(self, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) as naive UTC, the form the tables store: local midnight of ``first`` to local
        midnight after ``last``."""
        return local_midnight_utc(self.first, tz), local_midnight_utc(self.last + dt.timedelta(days=1), tz)


def local_midnight_utc(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """Naive UTC of the local midnight starting ``day``."""
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    return start.astimezone(dt.timezone.utc).replace(tzinfo=None)


def local_day(stored: dt.datetime, tz: ZoneInfo) -> dt.date:
    """The local calendar day of a stored (naive UTC) moment."""
    return stored.replace(tzinfo=dt.timezone.utc).astimezone(tz).date()


def parse_date(text: str, field: str) -> dt.date:
    """A YYYY-MM-DD date, or PeriodError naming the field."""
    text = (text or "").strip()
    try:
        if len(text) != 10:
            raise ValueError(text)
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise PeriodError("%(field)s must be a date like 2026-03-01.", field=field) from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise PeriodError("%(field)s must lie between %(first)s and %(last)s.", field=field,
                          first=FIRST_YEAR, last=LAST_YEAR)
    return day


def parse_period(kind: str | None, date_from: str | None, date_to: str | None, today: dt.date) -> Period:
    """The period a request asks for (default: this month); PeriodError when it is malformed."""
    kind = (kind or "").strip() or ("custom" if (date_from or date_to) else "month")
    if kind == "today":
        return Period("today", today, today)
    if kind == "week":
        return Period("week", today - dt.timedelta(days=today.weekday()), today)
    if kind == "month":
        return Period("month", today.replace(day=1), today)
    if kind != "custom":
        raise PeriodError("Unknown period %(kind)s.", kind=kind[:20])
    if not date_from or not date_to:
        raise PeriodError("A custom period needs both a start and an end date.")
    first, last = parse_date(date_from, "start date"), parse_date(date_to, "end date")
    if last < first:
        raise PeriodError("The end date lies before the start date.")
    if (last - first).days + 1 > MAX_DAYS:
        raise PeriodError("A period may span at most %(days)s days.", days=MAX_DAYS)
    return Period("custom", first, last)


def shift_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later (earlier when negative), clipped to the month's end (31 -> 28/29/30)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def previous_period(period: Period) -> Period:
    """What 环比 compares with: yesterday; the same weekdays of last week; the same days of last month
    (clipped to its end); for a chosen range, the equally long range just before it."""
    if period.kind == "today":
        step = dt.timedelta(days=1)
        return replace(period, first=period.first - step, last=period.last - step)
    if period.kind == "week":
        step = dt.timedelta(days=7)
        return replace(period, first=period.first - step, last=period.last - step)
    if period.kind == "month":
        return replace(period, first=shift_months(period.first, -1), last=shift_months(period.last, -1))
    length = dt.timedelta(days=period.days)
    return replace(period, first=period.first - length, last=period.last - length)


def year_earlier(period: Period) -> Period:
    """What 同比 compares with: the same dates one year earlier (29 February becomes the 28th)."""
    return replace(period, first=shift_months(period.first, -12), last=shift_months(period.last, -12))
