"""The leaders' figures as pure functions over aggregates: rates, averages, 环比/同比 changes, per-day
series, department roll-ups and rankings. ``stats.queries`` fetches the aggregates; the web page and the
Excel export both show what ``figure_rows`` and ``breakdown_rows`` return, so they always agree.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from typing import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from stats.periods import local_day

# GB/T 33358-2016: a call should be answered within 15 seconds of reaching the queue.
ANSWER_TARGET_SECONDS = 15

COUNT, RATE, SECONDS = "count", "rate", "seconds"
NO_VALUE = "—"


@dataclass
class CallCounts:
    """Queue calls of some span: offered to agents, answered (bridged), abandoned, answered within the
    target, and the sums behind the averages (wait over answered calls, talk over calls with a talk time)."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_in_target: int = 0
    wait_seconds: float = 0.0
    talk_seconds: float = 0.0
    talked: int = 0

    def __add__(self, other: "CallCounts") -> "CallCounts":
        return CallCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass
class TicketCounts:
    """Tickets of some span: created per channel and type, closed (办结), due by deadline (on time, late,
    still open), satisfaction ratings, and per-department volume and lateness (department id -> count)."""

    by_channel: dict[str, int] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)
    closed: int = 0
    on_time: int = 0
    overdue: int = 0
    due_open: int = 0  # deadline in the span, not yet due or answered: counted neither way
    ratings: dict[str, int] = field(default_factory=dict)  # satisfied / basic / unsatisfied -> count
    volume_by_department: dict[int, int] = field(default_factory=dict)
    overdue_by_department: dict[int, int] = field(default_factory=dict)
    due_by_department: dict[int, int] = field(default_factory=dict)  # decided (on time + overdue)

    @property
    def created(self) -> int:
        return sum(self.by_channel.values())


# ------------------------------------------------------------------------------------------- rates
def rate(part: float | None, whole: float | None) -> float | None:
    """part / whole, or None when there is nothing to divide by."""
    if part is None or not whole:
        return None
    return part / whole


def change(current: float | None, base: float | None, kind: str = COUNT) -> float | None:
    """环比/同比: for counts and averages the signed relative change in per cent; for rates the
    difference in percentage points. None when either side is missing or a relative base is zero."""
    if current is None or base is None:
        return None
    if kind == RATE:
        return (current - base) * 100
    if base == 0:
        return None
    return (current - base) / base * 100


def format_value(value: float | None, kind: str) -> str:
    """A figure as shown: counts whole, rates as per cent with one decimal, seconds with one decimal."""
    if value is None:
        return NO_VALUE
    if kind == RATE:
        return f"{value * 100:.1f}%"
    if kind == SECONDS:
        return f"{value:.1f}"
    return str(int(value))


def format_change(value: float | None, kind: str, points: str = "pp") -> str:
    """+12.5% / -3.0% for relative changes, +2.3pp for rates (``points`` is the translated unit), — without
    a base."""
    if value is None:
        return NO_VALUE
    sign = "+" if value > 0 else ("-" if value < 0 else "")
    return f"{sign}{abs(value):.1f}{points if kind == RATE else '%'}"


# --------------------------------------------------------------------------------- figures table
@dataclass(frozen=True)
class Figure:
    """One headline figure: ``key``, English label (message id), kind, and whether it is a call figure
    (only shown to whole-city viewers)."""

    key: str
    label: str
    kind: str
    calls: bool = False


FIGURES: tuple[Figure, ...] = (
    Figure("calls_offered", "Calls offered to agents", COUNT, True),
    Figure("calls_answered", "Calls answered", COUNT, True),
    Figure("calls_abandoned", "Calls abandoned", COUNT, True),
    Figure("answer_rate", "Answer rate", RATE, True),
    Figure("answer_in_target_rate", "15-second answer rate", RATE, True),
    Figure("average_wait", "Average wait (s)", SECONDS, True),
    Figure("average_talk", "Average talk time (s)", SECONDS, True),
    Figure("tickets_created", "Tickets created", COUNT),
    Figure("tickets_closed", "Tickets closed", COUNT),
    Figure("tickets_on_time", "Handled on time", COUNT),
    Figure("tickets_overdue", "Overdue tickets", COUNT),
    Figure("on_time_rate", "On-time rate", RATE),
    Figure("overdue_rate", "Overdue rate", RATE),
    Figure("ratings", "Satisfaction ratings", COUNT),
    Figure("satisfaction_rate", "Satisfaction rate", RATE),
)

SATISFIED_RATINGS = ("satisfied", "basic")  # 满意 + 基本满意 count as satisfied


def figure_values(calls: CallCounts | None, tickets: TicketCounts) -> dict[str, float | None]:
    """Every figure's value for one span (call figures None when calls are not shown)."""
    values: dict[str, float | None] = {}
    if calls is not None:
        values.update(
            calls_offered=calls.offered, calls_answered=calls.answered, calls_abandoned=calls.abandoned,
            answer_rate=rate(calls.answered, calls.offered),
            answer_in_target_rate=rate(calls.answered_in_target, calls.answered),
            average_wait=rate(calls.wait_seconds, calls.answered),
            average_talk=rate(calls.talk_seconds, calls.talked))
    decided = tickets.on_time + tickets.overdue
    rated = sum(tickets.ratings.values())
    values.update(
        tickets_created=tickets.created, tickets_closed=tickets.closed, tickets_on_time=tickets.on_time,
        tickets_overdue=tickets.overdue, on_time_rate=rate(tickets.on_time, decided),
        overdue_rate=rate(tickets.overdue, decided), ratings=rated,
        satisfaction_rate=rate(sum(tickets.ratings.get(r, 0) for r in SATISFIED_RATINGS), rated))
    return values


@dataclass(frozen=True)
class Row:
    """A value with what it is compared with: previous period (环比) and a year earlier (同比)."""

    key: str
    label: str
    kind: str
    value: float | None
    previous: float | None
    year_ago: float | None

    @property
    def vs_previous(self) -> float | None:
        return change(self.value, self.previous, self.kind)

    @property
    def vs_year_ago(self) -> float | None:
        return change(self.value, self.year_ago, self.kind)


def figure_rows(current: Mapping[str, float | None], previous: Mapping[str, float | None],
                year_ago: Mapping[str, float | None]) -> list[Row]:
    """The headline table: one Row per figure present in ``current``, in FIGURES order."""
    return [Row(f.key, f.label, f.kind, current[f.key], previous.get(f.key), year_ago.get(f.key))
            for f in FIGURES if f.key in current]


def breakdown_rows(current: Mapping[str, int], previous: Mapping[str, int], year_ago: Mapping[str, int],
                   order: Iterable[str] = ()) -> list[Row]:
    """Counts per code (channel, type): known codes in ``order`` first, then any other code seen, each with
    its comparisons; codes with no count in any of the three spans are left out."""
    codes = list(dict.fromkeys([*order, *sorted(set(current) | set(previous) | set(year_ago))]))
    return [Row(code, code, COUNT, current.get(code, 0), previous.get(code, 0), year_ago.get(code, 0))
            for code in codes if current.get(code) or previous.get(code) or year_ago.get(code)]


# ------------------------------------------------------------------------------------- per day
def calls_per_day(hour_rows: Iterable[tuple[dt.datetime, CallCounts]], tz: ZoneInfo) -> dict[dt.date, CallCounts]:
    """Hourly call aggregates (hour start as naive UTC) summed per local day."""
    days: dict[dt.date, CallCounts] = {}
    for hour, counts in hour_rows:
        day = local_day(hour, tz)
        days[day] = days.get(day, CallCounts()) + counts
    return days


def counts_per_day(hour_rows: Iterable[tuple[dt.datetime, int]], tz: ZoneInfo) -> dict[dt.date, int]:
    """Hourly counts (hour start as naive UTC) summed per local day."""
    days: dict[dt.date, int] = {}
    for hour, count in hour_rows:
        day = local_day(hour, tz)
        days[day] = days.get(day, 0) + count
    return days


def daily_series(days: Sequence[dt.date], calls: Mapping[dt.date, CallCounts] | None,
                 tickets: Mapping[dt.date, int]) -> list[tuple[dt.date, int | None, int]]:
    """[(day, calls offered or None, tickets created)] for every day of the period, zero-filled."""
    return [(day, None if calls is None else calls.get(day, CallCounts()).offered, tickets.get(day, 0))
            for day in days]


# -------------------------------------------------------------------------------- departments
def path_ids(path: str) -> list[int]:
    """'/1/4/9/' -> [1, 4, 9]."""
    return [int(part) for part in path.strip("/").split("/") if part.isdigit()]


def unit_of(department_id: int, paths: Mapping[int, str], depth: int) -> int:
    """The unit a department's figures count for: its ancestor at ``depth`` (1 = the root), or itself when
    it lies higher up."""
    ids = path_ids(paths.get(department_id, "")) or [department_id]
    return ids[depth - 1] if len(ids) >= depth else ids[-1]


def roll_up(counts: Mapping[int, int], paths: Mapping[int, str], depth: int) -> dict[int, int]:
    """Counts per department summed per unit at ``depth`` (streets count for their district)."""
    units: dict[int, int] = {}
    for department_id, count in counts.items():
        unit = unit_of(department_id, paths, depth)
        units[unit] = units.get(unit, 0) + count
    return units


@dataclass(frozen=True)
class UnitRank:
    """A department's place in a ranking."""

    unit: int
    volume: int
    overdue: int
    decided: int

    @property
    def overdue_rate(self) -> float | None:
        return rate(self.overdue, self.decided)


def rank_units(tickets: TicketCounts, paths: Mapping[int, str], depth: int, limit: int = 10
               ) -> tuple[list[UnitRank], list[UnitRank]]:
    """(top by volume, top by overdue): units at ``depth``, the busiest first; the most overdue tickets
    first (then the higher overdue rate); units without any overdue ticket are not in the second list."""
    volume = roll_up(tickets.volume_by_department, paths, depth)
    overdue = roll_up(tickets.overdue_by_department, paths, depth)
    decided = roll_up(tickets.due_by_department, paths, depth)
    ranks = [UnitRank(u, volume.get(u, 0), overdue.get(u, 0), decided.get(u, 0))
             for u in set(volume) | set(overdue) | set(decided)]
    by_volume = sorted((r for r in ranks if r.volume), key=lambda r: (-r.volume, r.unit))[:limit]
    by_overdue = sorted((r for r in ranks if r.overdue),
                        key=lambda r: (-r.overdue, -(r.overdue_rate or 0), r.unit))[:limit]
    return by_volume, by_overdue
