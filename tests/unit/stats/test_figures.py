"""Figures: rates without division by zero, 环比/同比 changes, per-day sums, department roll-ups, charts."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from stats.charts import bar_chart, line_chart, tick_step
from stats.figures import (COUNT, RATE, SECONDS, CallCounts, TicketCounts, breakdown_rows, calls_per_day,
                           change, daily_series, figure_rows, figure_values, format_change, format_value,
                           rank_units, rate, roll_up)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_rate_and_change_never_divide_by_zero():
    """Should give None (shown as —) for a zero or missing base."""
    assert rate(3, 0) is None and rate(None, 4) is None and rate(3, 4) == 0.75
    assert change(5, 0) is None and change(None, 3) is None and change(3, None) is None
    assert change(0, 0) is None
    assert format_change(None, COUNT) == "—" and format_value(None, RATE) == "—"


def test_change_is_relative_for_counts_and_points_for_rates():
    """Should give +50% for 3 vs 2, -25% for 3 vs 4, and +10 percentage points for 0.9 vs 0.8."""
    assert change(3, 2) == 50.0 and change(3, 4) == -25.0
    assert round(change(0.9, 0.8, RATE), 6) == 10.0
    assert change(0.0, 0.0, RATE) == 0.0  # a rate of 0 is a value, not a missing base
    assert format_change(50.0, COUNT) == "+50.0%" and format_change(-25.0, COUNT) == "-25.0%"
    assert format_change(10.0, RATE, "个百分点") == "+10.0个百分点" and format_change(0.0, COUNT) == "0.0%"


def test_format_value_per_kind():
    """Should show counts whole, rates in per cent, seconds with a decimal."""
    assert format_value(12, COUNT) == "12" and format_value(0.8533, RATE) == "85.3%"
    assert format_value(13.76, SECONDS) == "13.8"


def test_call_figures():
    """Should compute answer rate over offered, 15-second rate over answered, averages over their base."""
    calls = CallCounts(offered=10, answered=8, abandoned=2, answered_in_target=6, wait_seconds=80.0,
                       talk_seconds=600.0, talked=6)
    values = figure_values(calls, TicketCounts())
    assert values["answer_rate"] == 0.8 and values["answer_in_target_rate"] == 0.75
    assert values["average_wait"] == 10.0 and values["average_talk"] == 100.0


def test_no_calls_no_call_figures_and_empty_spans_give_dashes():
    """Should leave call figures out for department scopes, and give None rates for an empty span."""
    values = figure_values(None, TicketCounts())
    assert "calls_offered" not in values
    assert values["on_time_rate"] is None and values["satisfaction_rate"] is None
    empty = figure_values(CallCounts(), TicketCounts())
    assert empty["answer_rate"] is None and empty["calls_offered"] == 0


def test_ticket_figures():
    """Should count on time and overdue over decided tickets and satisfied + basic over all ratings."""
    tickets = TicketCounts(by_channel={"phone": 3, "web": 1}, closed=2, on_time=3, overdue=1, due_open=5,
                           ratings={"satisfied": 2, "basic": 1, "unsatisfied": 1})
    values = figure_values(None, tickets)
    assert values["tickets_created"] == 4 and values["on_time_rate"] == 0.75 and values["overdue_rate"] == 0.25
    assert values["ratings"] == 4 and values["satisfaction_rate"] == 0.75


def test_figure_rows_compare_with_both_periods():
    """Should pair each figure with the previous and year-ago values and their changes."""
    rows = {r.key: r for r in figure_rows(figure_values(None, TicketCounts(by_channel={"phone": 6})),
                                          figure_values(None, TicketCounts(by_channel={"phone": 4})),
                                          figure_values(None, TicketCounts()))}
    created = rows["tickets_created"]
    assert (created.value, created.previous, created.year_ago) == (6, 4, 0)
    assert created.vs_previous == 50.0 and created.vs_year_ago is None


def test_breakdown_rows_keep_the_known_order_and_drop_empty_codes():
    """Should list known codes in order, then unknown ones, leaving out codes empty in all three spans."""
    rows = breakdown_rows({"web": 2, "pager": 1}, {"phone": 3}, {}, order=["phone", "web", "sms"])
    assert [r.key for r in rows] == ["phone", "web", "pager"]
    assert rows[0].value == 0 and rows[0].vs_previous == -100.0


def test_hours_sum_into_local_days_across_midnight():
    """Should put 15:00 UTC on the same Shanghai day and 16:00 UTC on the next."""
    rows = [(dt.datetime(2026, 3, 1, 15), CallCounts(offered=2)), (dt.datetime(2026, 3, 1, 16), CallCounts(offered=5)),
            (dt.datetime(2026, 3, 2, 1), CallCounts(offered=1))]
    days = calls_per_day(rows, SHANGHAI)
    assert days[dt.date(2026, 3, 1)].offered == 2 and days[dt.date(2026, 3, 2)].offered == 6
    series = daily_series([dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)], days, {})
    assert series == [(dt.date(2026, 3, 1), 2, 0), (dt.date(2026, 3, 2), 6, 0), (dt.date(2026, 3, 3), 0, 0)]
    assert daily_series([dt.date(2026, 3, 1)], None, {dt.date(2026, 3, 1): 4}) == [(dt.date(2026, 3, 1), None, 4)]


def test_departments_roll_up_to_the_ranking_level():
    """Should count a street for its district and rank by volume and by overdue tickets."""
    paths = {1: "/1/", 2: "/1/2/", 3: "/1/2/3/", 4: "/1/4/"}
    assert roll_up({3: 2, 2: 1, 4: 5, 1: 1}, paths, 2) == {2: 3, 4: 5, 1: 1}
    tickets = TicketCounts(volume_by_department={3: 2, 2: 1, 4: 5}, overdue_by_department={3: 2, 4: 2},
                           due_by_department={3: 2, 2: 2, 4: 8})
    by_volume, by_overdue = rank_units(tickets, paths, 2)
    assert [(r.unit, r.volume) for r in by_volume] == [(4, 5), (2, 3)]
    # Equal overdue counts: the higher overdue rate first (district 2: 2 of 4, department 4: 2 of 8).
    assert [(r.unit, r.overdue, r.overdue_rate) for r in by_overdue] == [(2, 2, 0.5), (4, 2, 0.25)]
    # A district's own ranking lists its streets.
    assert roll_up({3: 2, 2: 1}, paths, 3) == {3: 2, 2: 1}


def test_line_chart_geometry():
    """Should scale to a round ceiling, label at most ten days and put one dot per day."""
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(31)]
    chart = line_chart(days, [("calls", "Calls", list(range(31))), ("tickets", "Tickets", [1] * 31)])
    assert [text for _, text in chart["y_ticks"]] == ["0", "10", "20", "30"]
    assert len(chart["x_labels"]) <= 10 and len(chart["series"][0]["dots"]) == 31
    top_dot = chart["series"][0]["dots"][-1]
    assert chart["top"] <= top_dot[1] < chart["bottom"] and chart["series"][0]["total"] == 465
    single = line_chart([dt.date(2026, 1, 1)], [("tickets", "Tickets", [0])])
    assert single["series"][0]["dots"][0][1] == single["bottom"]


def test_tick_step_and_bars():
    """Should choose 1/2/5 steps and scale bars to the largest value."""
    assert [tick_step(v) for v in (0, 3, 9, 40, 130, 1999)] == [1, 1, 5, 10, 50, 500]
    bars = bar_chart([("电话", 10), ("网站", 5), ("传真", 0)])["bars"]
    assert bars[0]["width"] == 2 * bars[1]["width"] and bars[2]["width"] == 0
