"""Day/night and holiday service (日服/夜服): is a person available at a moment? Pure; the calendar is passed in."""
from __future__ import annotations

import datetime as dt


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def time_state(calendar, now: dt.datetime, open_from: str = "08:00", open_until: str = "20:00",
               weekends_open: bool = False) -> str:
    """"holiday" on a declared holiday, "closed" outside working hours or on days off, else "open".

    ``calendar`` is a core.calendar.WorkCalendar; ``now`` is local time in the hotline's zone.
    """
    day = now.date()
    if day in calendar.holidays:
        return "holiday"
    if not calendar.is_workday(day) and not weekends_open:
        return "closed"
    minute = now.hour * 60 + now.minute
    return "open" if _minutes(open_from) <= minute < _minutes(open_until) else "closed"
