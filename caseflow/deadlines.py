"""Time limits per ticket type and urgency, and deadline arithmetic on the working-day calendar.

Defaults follow a common local rule (consultation and help 3 working days, complaint 13, call-back the
next working day, emergencies in hours); the TimeLimit table overrides them.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from core.calendar import WorkCalendar

WORKDAYS = "workdays"
HOURS = "hours"


@dataclass(frozen=True)
class Limit:
    amount: int
    unit: str  # WORKDAYS or HOURS


# (type, urgency) -> Limit; "*" matches every type.
DEFAULT_LIMITS: dict[tuple[str, str], Limit] = {
    ("consult", "normal"): Limit(3, WORKDAYS),
    ("help", "normal"): Limit(3, WORKDAYS),
    ("complaint", "normal"): Limit(13, WORKDAYS),
    ("report", "normal"): Limit(13, WORKDAYS),
    ("suggestion", "normal"): Limit(10, WORKDAYS),
    ("praise", "normal"): Limit(5, WORKDAYS),
    ("convenience", "normal"): Limit(3, WORKDAYS),
    ("harassment", "normal"): Limit(1, WORKDAYS),
    ("other", "normal"): Limit(5, WORKDAYS),
    ("*", "normal"): Limit(5, WORKDAYS),
    ("*", "urgent"): Limit(1, WORKDAYS),
    ("*", "emergency"): Limit(2, HOURS),
}
CALLBACK_LIMIT = Limit(1, WORKDAYS)
# Warn the handler this long before the deadline.
WARN_BEFORE = dt.timedelta(hours=24)


class DeadlineError(ValueError):
    """A time limit is malformed."""


def validate_limit(amount, unit: str) -> Limit:
    """A Limit from form input, or DeadlineError."""
    try:
        amount = int(amount)
    except (TypeError, ValueError):
        raise DeadlineError(f"时限须为整数 / the limit must be a whole number, got {amount!r}") from None
    if unit not in (WORKDAYS, HOURS):
        raise DeadlineError(f"单位须为工作日或小时 / unit must be {WORKDAYS} or {HOURS}")
    if not 1 <= amount <= (365 if unit == WORKDAYS else 24 * 30):
        raise DeadlineError("时限超出范围 / limit out of range")
    return Limit(amount, unit)


def pick_limit(table: dict[tuple[str, str], Limit], ticket_type: str, urgency: str) -> Limit:
    """Most specific match: (type, urgency), then (*, urgency), then (type, normal), then (*, normal)."""
    for key in ((ticket_type, urgency), ("*", urgency), (ticket_type, "normal"), ("*", "normal")):
        if key in table:
            return table[key]
    return Limit(5, WORKDAYS)


def compute_deadline(start: dt.datetime, limit: Limit, calendar: WorkCalendar, tz: ZoneInfo) -> dt.datetime:
    """Aware deadline for a limit counted from ``start`` (aware): hours are wall-clock, working days
    end at 23:59:59 local of the N-th working day after the start day."""
    if start.tzinfo is None:
        raise DeadlineError("start must be timezone-aware")
    if limit.unit == HOURS:
        return start + dt.timedelta(hours=limit.amount)
    return calendar.end_of_workdays(start, limit.amount, tz)


def load_limits() -> dict[tuple[str, str], Limit]:
    """Defaults overlaid with the TimeLimit table."""
    from caseflow.models import TimeLimit

    table = dict(DEFAULT_LIMITS)
    for row in TimeLimit.select():
        table[(row.ticket_type, row.urgency)] = Limit(row.amount, row.unit)
    return table


def clear_limit(limit_id: int) -> int:
    """Remove an administrator's time limit (the defaults apply again); returns how many rows went."""
    from caseflow.models import TimeLimit

    return TimeLimit.delete().where(TimeLimit.id == limit_id).execute()


def set_limit(ticket_type: str, urgency: str, amount, unit: str):
    """Store an administrator's time limit (replacing the one for the same type and urgency)."""
    from caseflow.models import TimeLimit
    from caseflow.values import TICKET_TYPES, URGENCIES

    if ticket_type != "*" and ticket_type not in TICKET_TYPES:
        raise DeadlineError(f"未知类型 / unknown ticket type {ticket_type!r}")
    if urgency not in URGENCIES:
        raise DeadlineError(f"未知紧急程度 / unknown urgency {urgency!r}")
    limit = validate_limit(amount, unit)
    row = TimeLimit.get_or_none((TimeLimit.ticket_type == ticket_type) & (TimeLimit.urgency == urgency))
    if row is None:
        row = TimeLimit.create(ticket_type=ticket_type, urgency=urgency, amount=limit.amount, unit=limit.unit)
    else:
        row.amount, row.unit = limit.amount, limit.unit
        row.save()
    return row
