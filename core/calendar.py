"""Working-day calendar: weekends, public holidays and make-up working days (调休), stored and editable.

``WorkCalendar`` is pure (sets of dates, no database); ``load_calendar`` builds one from the
``CalendarDay`` table an administrator edits through ``set_day`` / ``clear_day``.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import peewee

from core.db import BaseModel

log = logging.getLogger(__name__)

HOLIDAY = "holiday"  # a weekday off (法定节假日)
WORKDAY = "workday"  # a weekend day worked to make up (调休上班)
DAY_KINDS = (HOLIDAY, WORKDAY)


class CalendarError(ValueError):
    """A calendar entry or a calendar computation was given bad input."""


class CalendarDay(BaseModel):
    """An exception to the Monday-Friday rule: a holiday on a weekday or a make-up working weekend day."""

    day = peewee.DateField(unique=True)
    kind = peewee.CharField(max_length=16)  # HOLIDAY or WORKDAY
    name = peewee.CharField(max_length=64, default="")  # 春节, 国庆节调休 ...


@dataclass(frozen=True)
class WorkCalendar:
    """Decides which dates are working days; weekends are off unless listed as make-up workdays."""

    holidays: frozenset[dt.date] = field(default_factory=frozenset)
    workdays: frozenset[dt.date] = field(default_factory=frozenset)

    def is_workday(self, day: dt.date) -> bool:
        """True if people work on ``day``."""
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def next_workday(self, day: dt.date) -> dt.date:
        """The first working day strictly after ``day``."""
        return self.add_workdays(day, 1)

    def add_workdays(self, day: dt.date, count: int) -> dt.date:
        """The ``count``-th working day after ``day`` (``day`` itself not counted); count 0 returns ``day``."""
        if count < 0:
            raise CalendarError(f"工作日数不能为负数（{count}） / cannot add a negative number of working days "
                                f"({count})")
        current = day
        remaining = count
        guard = 0
        while remaining:
            current += dt.timedelta(days=1)
            guard += 1
            if guard > 3660 + count * 7:
                # A calendar that declares years of holidays is a data error, not a reason to spin.
                raise CalendarError("十年内没有工作日，请检查节假日表 / no working day found within ten years: check the "
                                    "holiday table")
            if self.is_workday(current):
                remaining -= 1
        return current

    def workdays_between(self, start: dt.date, end: dt.date) -> int:
        """Working days in (start, end]: how many working days have passed since ``start`` by ``end``."""
        if end <= start:
            return 0
        count = 0
        current = start
        while current < end:
            current += dt.timedelta(days=1)
            if self.is_workday(current):
                count += 1
        return count

    def end_of_workdays(self, moment: dt.datetime, count: int, tz: ZoneInfo) -> dt.datetime:
        """End (23:59:59 local) of the ``count``-th working day after ``moment``'s local day.

        The time limit starts on the day after acceptance, the rule most local regulations state
        (受理次日起计算); the result is aware, in ``tz``.
        """
        local = moment.astimezone(tz) if moment.tzinfo else moment.replace(tzinfo=tz)
        day = self.add_workdays(local.date(), count)
        return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=tz)


def load_calendar() -> WorkCalendar:
    """Read the CalendarDay table into a WorkCalendar."""
    holidays, workdays = set(), set()
    for row in CalendarDay.select():
        (holidays if row.kind == HOLIDAY else workdays).add(row.day)
    return WorkCalendar(frozenset(holidays), frozenset(workdays))


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise CalendarError(f"日期格式应为YYYY-MM-DD：{value!r} / not a date (YYYY-MM-DD): {value!r}") from None


def set_day(day, kind: str, name: str = "") -> CalendarDay:
    """Declare ``day`` a holiday or a make-up working day (replacing any earlier entry for it)."""
    day = _as_date(day)
    if kind not in DAY_KINDS:
        raise CalendarError(f"日期类型无效：{kind!r} / kind must be one of {DAY_KINDS}, got {kind!r}")
    name = (name or "").strip()
    if len(name) > 64:
        raise CalendarError("名称超过64字 / name longer than 64 characters")
    with CalendarDay._meta.database.atomic():
        row = CalendarDay.get_or_none(CalendarDay.day == day)
        if row is None:
            row = CalendarDay.create(day=day, kind=kind, name=name)
        else:
            row.kind, row.name = kind, name
            row.save()
    log.debug("calendar: %s is now %s (%s)", day, kind, name)
    return row


def clear_day(day) -> bool:
    """Remove the entry for ``day`` so the weekday rule applies again; True if there was one."""
    return CalendarDay.delete().where(CalendarDay.day == _as_date(day)).execute() > 0


def list_days(year: int | None = None) -> list[CalendarDay]:
    """Entries in date order, optionally for one year."""
    query = CalendarDay.select().order_by(CalendarDay.day)
    if year is not None:
        query = query.where(CalendarDay.day.between(dt.date(year, 1, 1), dt.date(year, 12, 31)))
    return list(query)
