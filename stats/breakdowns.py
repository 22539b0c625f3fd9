"""The plan's report list as pure computations (P5 §3.8.1-3.8.3): report filters, calls by local day, hour
and weekday x hour, per-agent figures and time in state, tickets by a tree (region: district then street;
category tree), handling speed (medians and distribution buckets), and one table model the page, the chart
and the Excel export all read. ``stats.report_queries`` fetches rows; nothing here touches the database.

Times arrive as stored (naive UTC) and are grouped in the configured zone here, in Python, so half-hour
zones (Asia/Kolkata) group correctly on both databases.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from stats.figures import ANSWER_TARGET_SECONDS, COUNT, RATE, SECONDS, change, rate

TEXT, HOURS = "text", "hours"
URGENCIES = ("normal", "urgent", "emergency")
# Handling-speed buckets, upper bounds in hours (the last bucket is "longer").
SPEED_BUCKETS = (1, 4, 24, 72, 168)


class FilterError(ValueError):
    """A filter value that is not one of the known codes or ids (message id + values)."""

    def __init__(self, message: str, **values):
        super().__init__(message % values if values else message)
        self.message = message
        self.values = values


@dataclass(frozen=True)
class Filters:
    """What a report is narrowed to beside the period: a department subtree, channel, ticket type, category
    subtree, region subtree, urgency (None / "" = all)."""

    department: int | None = None
    channel: str = ""
    type: str = ""
    category: int | None = None
    region: int | None = None
    urgency: str = ""

    def as_args(self) -> dict[str, str]:
        return {k: str(v) for k, v in (("department", self.department), ("channel", self.channel),
                                       ("type", self.type), ("category", self.category),
                                       ("region", self.region), ("urgency", self.urgency)) if v}


def parse_filters(args: Mapping[str, str], channels: Iterable[str], types: Iterable[str]) -> Filters:
    """Filters from request arguments; FilterError for an unknown code or a malformed id."""

    def ident(name: str) -> int | None:
        text = (args.get(name) or "").strip()
        if not text:
            return None
        if not text.isdigit() or len(text) > 12:
            raise FilterError("%(field)s must be chosen from the list.", field=name)
        return int(text)

    def code(name: str, known: Iterable[str]) -> str:
        text = (args.get(name) or "").strip()
        if text and text not in set(known):
            raise FilterError("%(field)s must be chosen from the list.", field=name)
        return text

    return Filters(ident("department"), code("channel", channels), code("type", types), ident("category"),
                   ident("region"), code("urgency", URGENCIES))


# ------------------------------------------------------------------------------------------ tables
@dataclass(frozen=True)
class Column:
    key: str
    label: str  # English message id
    kind: str = COUNT


@dataclass
class Table:
    """Rows of values keyed by column; what the page shows and the workbook holds."""

    title: str
    columns: list[Column]
    rows: list[dict]
    key: str = "table"


def sort_rows(rows: list[dict], column: str, descending: bool) -> list[dict]:
    """Rows by one column; rows without a value for it last whichever the direction."""
    present = [r for r in rows if r.get(column) is not None]
    missing = [r for r in rows if r.get(column) is None]
    return sorted(present, key=lambda r: r[column], reverse=descending) + missing


def compare_rows(labels: Sequence[tuple[str, str]], current: Mapping[str, float], previous: Mapping[str, float],
                 year_ago: Mapping[str, float], kind: str = COUNT) -> list[dict]:
    """[(key, label)] with this period, 环比 and 同比 (signed per cent or points, None without a base)."""
    return [{"key": key, "name": label, "value": current.get(key, 0), "previous": previous.get(key, 0),
             "vs_previous": change(current.get(key, 0), previous.get(key, 0), kind),
             "year_ago": year_ago.get(key, 0), "vs_year_ago": change(current.get(key, 0), year_ago.get(key, 0), kind)}
            for key, label in labels]


# ------------------------------------------------------------------------------------------- calls
def to_local(stored: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    return stored.replace(tzinfo=dt.timezone.utc).astimezone(tz)


@dataclass
class CallTraffic:
    """Calls in and out per local day and hour of day, and inbound calls per weekday (0 = Monday) x hour."""

    by_day: dict[dt.date, dict[str, int]] = field(default_factory=dict)
    by_hour: list[dict[str, int]] = field(default_factory=lambda: [{"inbound": 0, "outbound": 0} for _ in range(24)])
    heat: list[list[int]] = field(default_factory=lambda: [[0] * 24 for _ in range(7)])

    def total(self, direction: str) -> int:
        return sum(day.get(direction, 0) for day in self.by_day.values())


def call_traffic(rows: Iterable[tuple], tz: ZoneInfo) -> CallTraffic:
    """Group (started at as naive UTC, direction[, calls]) in local time: one call each, or ``calls`` calls
    started within the quarter-hour beginning then (recorder.aggregates' counts; a local hour and day begin on
    a UTC quarter-hour in every zone, so the whole quarter falls in one)."""
    traffic = CallTraffic()
    for started, direction, *count in rows:
        calls = count[0] if count else 1
        direction = "outbound" if direction == "outbound" else "inbound"
        local = to_local(started, tz)
        day = traffic.by_day.setdefault(local.date(), {"inbound": 0, "outbound": 0})
        day[direction] += calls
        traffic.by_hour[local.hour][direction] += calls
        if direction == "inbound":
            traffic.heat[local.weekday()][local.hour] += calls
    return traffic


def heat_cells(heat: Sequence[Sequence[int]], cell: int = 24, left: int = 40, top: int = 20) -> dict:
    """Geometry of the weekday x hour heat map (SVG rectangles with a shade 0..1 and a title)."""
    largest = max((v for row in heat for v in row), default=0) or 1
    cells = [{"x": left + hour * cell, "y": top + day * cell, "value": value, "day": day, "hour": hour,
              "shade": round(0.08 + 0.92 * value / largest, 3) if value else 0}
             for day, row in enumerate(heat) for hour, value in enumerate(row)]
    return {"width": left + 24 * cell + 8, "height": top + 7 * cell + 8, "cell": cell, "cells": cells,
            "hours": [(left + h * cell + cell / 2, h) for h in range(0, 24, 3)],
            "days": [(top + d * cell + cell / 2 + 4, d) for d in range(7)], "left": left}


# ------------------------------------------------------------------------------------------ agents
@dataclass
class AgentFigures:
    calls: int = 0
    talk_seconds: float = 0.0
    hold_seconds: float = 0.0
    answered: int = 0
    answered_in_target: int = 0
    tickets: int = 0
    rated: int = 0
    satisfied: int = 0
    state_seconds: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict:
        return {"calls": self.calls, "talk": self.talk_seconds, "hold": self.hold_seconds,
                "after_call_work": self.state_seconds.get("after_call_work", 0.0),
                "available": self.state_seconds.get("available", 0.0),
                "on_break": self.state_seconds.get("on_break", 0.0),
                "tickets": self.tickets, "satisfaction_rate": rate(self.satisfied, self.rated),
                "answer_in_target_rate": rate(self.answered_in_target, self.answered)}


def answered_in_target(entries: Iterable[tuple[str, dt.datetime, dt.datetime | None, int | None, str]]
                       ) -> dict[int, tuple[int, int]]:
    """Per agent id (answered, answered within 15 s of the call's FIRST queue entry) from queue entries
    (call uuid, entered at, answered at, agent id, state): an overflowed call's wait began in its first queue."""
    entries = sorted(entries, key=lambda e: e[1])
    first_entry: dict[str, dt.datetime] = {}
    out: dict[int, list[int]] = {}
    for uuid, entered, answered, agent, state in entries:
        first_entry.setdefault(uuid, entered)
        if state != "bridged" or agent is None or answered is None:
            continue
        pair = out.setdefault(agent, [0, 0])
        pair[0] += 1
        if (answered - first_entry[uuid]).total_seconds() <= ANSWER_TARGET_SECONDS:
            pair[1] += 1
    return {agent: (a, t) for agent, (a, t) in out.items()}


def state_seconds(log: Iterable[tuple[int, dt.datetime, str, str]], start: dt.datetime, end: dt.datetime
                  ) -> dict[int, dict[str, float]]:
    """Seconds per agent in available / on_break / after_call_work within [start, end) from the state log
    (agent id, at, to_status, to_state), ordered by time; a row before ``start`` gives the opening state.
    After-call work is the after_call_work status or the wrap_up state; logged out is not counted."""
    out: dict[int, dict[str, float]] = {}
    current: dict[int, tuple[dt.datetime, str]] = {}

    def close(agent: int, until: dt.datetime) -> None:
        if agent not in current:
            return
        since, kind = current[agent]
        since, until = max(since, start), min(until, end)
        if kind and until > since:
            bucket = out.setdefault(agent, {})
            bucket[kind] = bucket.get(kind, 0.0) + (until - since).total_seconds()

    for agent, at, status, state in sorted(log, key=lambda r: (r[1], r[0])):
        close(agent, at)
        kind = ("after_call_work" if status == "after_call_work" or state == "wrap_up"
                else status if status in ("available", "on_break") else "")
        current[agent] = (at, kind)
    for agent in list(current):
        close(agent, end)
    return out


# --------------------------------------------------------------------------------------- tree rolls
def tree_rows(counts: Mapping[int | None, int], parents: Mapping[int, int | None], names: Mapping[int, str],
              unknown: str) -> list[dict]:
    """Counts per leaf summed up a tree (region: district then street; categories), as rows in tree order
    with their level: each top node, then its children by count. ``None`` (no region) is one row at the end."""
    totals: dict[int, int] = {}
    for node, count in counts.items():
        seen = set()
        while node is not None and node not in seen:
            seen.add(node)
            totals[node] = totals.get(node, 0) + count
            node = parents.get(node)
    children: dict[int | None, list[int]] = {}
    for node in totals:
        parent = parents.get(node)
        children.setdefault(parent if parent in totals else None, []).append(node)
    rows: list[dict] = []

    def walk(parent: int | None, level: int) -> None:
        for node in sorted(children.get(parent, []), key=lambda n: (-totals[n], n)):
            rows.append({"key": str(node), "id": node, "name": names.get(node, str(node)), "level": level,
                         "value": totals[node], "own": counts.get(node, 0)})
            walk(node, level + 1)

    walk(None, 0)
    if counts.get(None):
        rows.append({"key": "none", "id": None, "name": unknown, "level": 0, "value": counts[None],
                     "own": counts[None]})
    return rows


# ------------------------------------------------------------------------------------------- speed
def bucket_labels(bounds: Sequence[float] = SPEED_BUCKETS) -> list[str]:
    labels, low = [], 0
    for bound in bounds:
        labels.append(f"{low}-{bound}h")
        low = bound
    return labels + [f">{bounds[-1]}h"]


def speed_row(stages: Mapping[str, tuple[int, float | None, Sequence[int]]]) -> dict:
    """A unit's row of the handling-speed table from (count, median hours, cumulative count at each
    SPEED_BUCKETS bound) per stage (accept, reply, close; a stage missing counts nothing)."""
    row: dict = {}
    for stage in ("accept", "reply", "close"):
        count, middle, cumulative = stages.get(stage, (0, None, [0] * len(SPEED_BUCKETS)))
        row[f"{stage}_count"] = count
        row[f"{stage}_median"] = middle
        within = list(cumulative) + [count]
        for index, label in enumerate(bucket_labels()):
            row[f"{stage}_{label}"] = within[index] - (within[index - 1] if index else 0)
    return row


# ------------------------------------------------------------------------------------- departments
def department_rows(units: Iterable[int], names: Mapping[int, str], volume: Mapping[int, int],
                    closed: Mapping[int, int], on_time: Mapping[int, int], overdue: Mapping[int, int],
                    rated: Mapping[int, int], satisfied: Mapping[int, int], returned: Mapping[int, int]) -> list[dict]:
    """Every department (unit) in one table, zero rows included."""
    return [{"key": str(u), "id": u, "name": names.get(u, str(u)), "volume": volume.get(u, 0),
             "closed": closed.get(u, 0), "on_time": on_time.get(u, 0), "overdue": overdue.get(u, 0),
             "on_time_rate": rate(on_time.get(u, 0), on_time.get(u, 0) + overdue.get(u, 0)),
             "returned": returned.get(u, 0),
             "satisfaction_rate": rate(satisfied.get(u, 0), rated.get(u, 0))} for u in units]


