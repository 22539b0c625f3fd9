"""Day/night and holiday service (日服/夜服): is a person available at a moment? Pure; the calendar is passed in.

The plan (P1 一.1, P2 §2.2) answers 24 hours a day; P5 §3.4.5 lets the centre forward calls to a duty phone
on "节假日或休息日" — rest days and declared holidays alike. The tree's settings say which:

- ``office_hours`` (default false in the shipped tree): when true, people answer only within
  ``working_hours`` (the night menu outside them); when false, around the clock.
- ``rest_days``: what weekends that are not make-up working days and declared holidays get, both the same:
  ``"staffed"`` (as a working day), ``"forward"`` (the time node's holiday route: the duty phone) or
  ``"closed"`` (the night menu all day).

A tree saved before these settings existed names neither; it keeps the rule it was written for: office
hours, declared holidays forwarded and other days off closed unless ``weekends_open`` (``rest_days = ""``).
"""
from __future__ import annotations

import datetime as dt

REST_DAY_RULES = ("staffed", "forward", "closed")
LEGACY = ""  # a tree without rest_days: holidays forward, weekends follow weekends_open


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def time_state(calendar, now: dt.datetime, open_from: str = "08:00", open_until: str = "20:00",
               weekends_open: bool = False, *, office_hours: bool = True, rest_days: str = LEGACY) -> str:
    """"open" when a person answers, "holiday" for the duty phone, "closed" for the night menu.

    ``calendar`` is a core.calendar.WorkCalendar; ``now`` is local time in the hotline's zone. The keyword
    defaults are the rule of trees that predate ``office_hours`` and ``rest_days``.
    """
    if rest_days not in REST_DAY_RULES + (LEGACY,):
        raise ValueError(f"rest_days must be one of {', '.join(REST_DAY_RULES)}, got {rest_days!r}")
    day = now.date()
    if not calendar.is_workday(day):
        if rest_days == "forward":
            return "holiday"
        if rest_days == "closed":
            return "closed"
        if rest_days == LEGACY:
            if day in calendar.holidays:
                return "holiday"
            if not weekends_open:
                return "closed"
    if not office_hours:
        return "open"
    minute = now.hour * 60 + now.minute
    return "open" if _minutes(open_from) <= minute < _minutes(open_until) else "closed"


def describe(settings) -> dict:
    """How a tree's settings answer calls (the IVR admin page shows it): office_hours, hours ("08:00-20:00"),
    rest_days ("staffed", "forward", "closed" or "" for a tree that predates it) and weekends_open."""
    hours = settings.get("working_hours", ["08:00", "20:00"])
    return {"office_hours": settings.get("office_hours", True) is not False,
            "hours": "-".join(map(str, hours)) if isinstance(hours, (list, tuple)) else str(hours),
            "rest_days": settings.get("rest_days", LEGACY), "weekends_open": settings.get("weekends_open") is True}
