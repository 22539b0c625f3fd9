"""The assessment's formula language and scoring, and the agent/speed computations (pure)."""
from __future__ import annotations

import datetime as dt

import pytest

from stats.assessment import COUNT, KNOWN, LOW, RATE, IndicatorSpec, check_indicator, score_sheet
from stats.breakdowns import answered_in_target, speed_row, state_seconds, tree_rows
from stats.formula import FormulaError, NoData, parse_formula, rename, unlabel


def test_formula_reads_names_and_numbers():
    """Should evaluate + - * / over named counts and constants."""
    formula = parse_formula("(satisfied + 0.8 * basic) / rated", KNOWN)
    assert formula.names == {"satisfied", "basic", "rated"}
    assert formula.evaluate({"satisfied": 3, "basic": 5, "rated": 10}) == pytest.approx(0.7)


@pytest.mark.parametrize("text", ["__import__('os')", "due ** 2", "due.real", "due[0]", "due if due else 1",
                                  "unknown / due", "", "due / ", "'x'", "True + due", "due // 2", "-due < 1"])
def test_formula_refuses_anything_else(text):
    """Should refuse calls, attributes, other operators, unknown names, strings and bad syntax."""
    with pytest.raises(FormulaError):
        parse_formula(text, KNOWN)


def test_formula_shown_and_typed_in_words():
    """Should show a formula with the counts' labels and read one typed with labels (the longest label
    first, count names typed as such kept) back to the same formula."""
    labels = {"satisfied": "满意数", "basic": "基本满意数", "rated": "回访数", "unsatisfied": "不满意数"}
    shown = rename("(satisfied + 0.8 * basic) / rated", labels)
    assert shown == "(满意数 + 0.8 * 基本满意数) / 回访数"
    assert unlabel(shown, labels) == "(satisfied + 0.8 * basic) / rated"
    assert unlabel("不满意数 / rated", labels) == "unsatisfied / rated"
    english = {"basic": "Basically satisfied", "satisfied": "Satisfied", "rated": "Rated"}
    assert unlabel("(Satisfied + Basically satisfied) / Rated", english) == "(satisfied + basic) / rated"
    with pytest.raises(FormulaError):
        parse_formula(unlabel("满意数 / 投诉数", labels), KNOWN)


def test_division_by_zero_is_no_data_not_a_crash():
    """Should raise NoData for a zero divisor and show the indicator without points."""
    with pytest.raises(NoData):
        parse_formula("on_time / due", KNOWN).evaluate({"on_time": 0, "due": 0})
    sheet = score_sheet([IndicatorSpec("on_time", "按时办结率", "on_time / due", 50)], {}, [7])
    assert sheet[0].cells[0].value is None and sheet[0].total is None and sheet[0].rank == 0


@pytest.mark.parametrize("text", ["on_time / 0", "due / (2 - 2)", "rated / (1 / 0)", "(on_time + 1) / -0.0",
                                  "on_time / due / 0"])
def test_a_divisor_that_is_always_zero_is_refused(text):
    """Should refuse a formula whose divisor is a zero made of numbers alone, saying so, and keep one whose
    divisor holds a count (zero for some units only: no data there)."""
    with pytest.raises(FormulaError) as refused:
        parse_formula(text, KNOWN)
    assert refused.value.message == "The formula %(text)s divides by zero."
    assert parse_formula("on_time / (due - 0)", KNOWN).evaluate({"on_time": 1, "due": 2}) == 0.5
    assert parse_formula("on_time / 0.5", KNOWN).evaluate({"on_time": 1}) == 2


def test_weights_direction_deductions_and_rescaling():
    """Should score rates by weight, lower-is-better as 1 - value, deduct counts, rescale missing data."""
    specs = [IndicatorSpec("a", "a", "on_time / due", 60), IndicatorSpec("r", "r", "returned / dispatched", 40, RATE, LOW),
             IndicatorSpec("s", "s", "supervised", 2, COUNT, LOW)]
    evidence = {1: {"on_time": {1, 2, 3}, "due": {1, 2, 3, 4}, "returned": {5}, "dispatched": {5, 6},
                    "supervised": {1}},
                2: {"on_time": {9}, "due": {9}}}
    sheet = score_sheet(specs, evidence, [1, 2])
    by_unit = {s.unit: s for s in sheet}
    assert by_unit[1].total == pytest.approx(60 * 0.75 + 40 * 0.5 - 2)  # 63
    assert by_unit[2].total == pytest.approx(60 * 100 / 60)  # only "a" has data: scaled to 100
    assert [s.unit for s in sheet] == [2, 1] and by_unit[2].rank == 1
    # an accepted appeal leaves ticket 4 out of "a" for unit 1 only
    sheet = score_sheet(specs, evidence, [1, 2], {(1, "a"): {4}})
    assert {s.unit: s for s in sheet}[1].cells_by_code["a"].value == 1.0


def test_check_indicator_refuses_bad_weights_and_codes():
    """Should refuse a weight that is no number or out of range and a malformed code."""
    with pytest.raises(FormulaError):
        check_indicator("x", "x", "due", "heavy", "rate", "high")
    with pytest.raises(FormulaError):
        check_indicator("x", "x", "due", "-1", "rate", "high")
    with pytest.raises(FormulaError):
        check_indicator("a b", "x", "due", "1", "rate", "high")
    assert check_indicator("x_1", "名", "due", "5", "count", "low").weight == 5


def test_answer_share_counts_from_the_first_queue_entry():
    """Should count an overflowed call's wait from its first queue, not the queue that answered it."""
    t0 = dt.datetime(2026, 3, 2, 1, 0)
    entries = [("c1", t0, None, None, "overflowed"), ("c1", t0 + dt.timedelta(seconds=20), t0 + dt.timedelta(seconds=25), 7, "bridged"),
               ("c2", t0, t0 + dt.timedelta(seconds=15), 7, "bridged")]
    assert answered_in_target(entries) == {7: (2, 1)}


def test_state_time_from_the_log_clipped_to_the_period():
    """Should sum time per state between log rows, from the state open at the start to the end."""
    start, end = dt.datetime(2026, 3, 2, 0, 0), dt.datetime(2026, 3, 2, 2, 0)
    log = [(1, start - dt.timedelta(hours=1), "available", "idle"),
           (1, start + dt.timedelta(minutes=30), "available", "wrap_up"),
           (1, start + dt.timedelta(minutes=40), "on_break", "idle"),
           (1, start + dt.timedelta(minutes=100), "logged_out", "idle")]
    assert state_seconds(log, start, end) == {1: {"available": 1800.0, "after_call_work": 600.0, "on_break": 3600.0}}


def test_tree_rows_sum_streets_into_districts_and_speed_buckets():
    """Should sum street counts into their district, and make a speed row's bands from cumulative counts."""
    rows = tree_rows({11: 2, 12: 1, 1: 1, None: 3}, {1: None, 11: 1, 12: 1, 2: None}, {1: "东区", 11: "甲街", 12: "乙街"}, "无")
    assert [(r["name"], r["value"], r["level"]) for r in rows] == [("东区", 4, 0), ("甲街", 2, 1), ("乙街", 1, 1), ("无", 3, 0)]
    row = speed_row({"reply": (6, 2.0, [2, 3, 3, 4, 4])})  # 0.5, 1, 2, 30, 500 and one more over 168 h
    assert [row[f"reply_{label}"] for label in ("0-1h", "1-4h", "4-24h", "24-72h", "72-168h", ">168h")] == [2, 1, 0, 1, 0, 2]
    assert row["reply_median"] == 2.0 and row["accept_count"] == 0 and row["close_median"] is None
