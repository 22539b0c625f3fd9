"""One report (the page and the Excel file show the same): a period's figures with 环比 and 同比, channel and
type breakdowns, the daily series and the department rankings, assembled from three spans' aggregates.
Pure: ``stats.queries.load_report`` fetches the spans and calls ``build_report``.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo

from stats.figures import (CallCounts, Row, TicketCounts, UnitRank, breakdown_rows, calls_per_day,
                           counts_per_day, daily_series, figure_rows, figure_values, rank_units)
from stats.periods import Period


@dataclass
class Span:
    """The aggregates of one period: calls per UTC hour (None when the scope shows no calls), tickets
    created per UTC hour and channel, and the ticket figures."""

    period: Period
    call_hours: list[tuple[dt.datetime, CallCounts]] | None
    ticket_hours: list[tuple[dt.datetime, str, int]]
    tickets: TicketCounts

    def call_totals(self) -> CallCounts | None:
        if self.call_hours is None:
            return None
        return sum((counts for _, counts in self.call_hours), CallCounts())


@dataclass
class Report:
    """What the statistics page shows for one period and scope."""

    period: Period
    previous: Period
    year_ago: Period
    scope_name: str  # "" for the whole city, else the department's name
    calls_shown: bool
    figures: list[Row]
    channels: list[Row]
    types: list[Row]
    daily: list[tuple[dt.date, int | None, int]]  # (day, calls offered or None, tickets created)
    top_volume: list[tuple[str, UnitRank]]
    top_overdue: list[tuple[str, UnitRank]]


def build_report(current: Span, previous: Span, year_ago: Span, *, tz: ZoneInfo, paths: Mapping[int, str],
                 names: Mapping[int, str], depth: int, scope_name: str = "", channel_order: Iterable[str] = (),
                 type_order: Iterable[str] = ()) -> Report:
    """Assemble the report from the current span and the two it is compared with."""
    values = [figure_values(s.call_totals(), s.tickets) for s in (current, previous, year_ago)]
    calls_by_day = None if current.call_hours is None else calls_per_day(current.call_hours, tz)
    tickets_by_day = counts_per_day(((hour, count) for hour, _channel, count in current.ticket_hours), tz)
    by_volume, by_overdue = rank_units(current.tickets, paths, depth)

    def named(ranks: list[UnitRank]) -> list[tuple[str, UnitRank]]:
        return [(names.get(r.unit, str(r.unit)), r) for r in ranks]

    channel_order, type_order = list(channel_order), list(type_order)
    return Report(
        period=current.period, previous=previous.period, year_ago=year_ago.period, scope_name=scope_name,
        calls_shown=current.call_hours is not None, figures=figure_rows(*values),
        channels=breakdown_rows(current.tickets.by_channel, previous.tickets.by_channel,
                                year_ago.tickets.by_channel, channel_order),
        types=breakdown_rows(current.tickets.by_type, previous.tickets.by_type, year_ago.tickets.by_type,
                             type_order),
        daily=daily_series(current.period.day_list(), calls_by_day, tickets_by_day),
        top_volume=named(by_volume), top_overdue=named(by_overdue))
