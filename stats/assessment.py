"""Department assessment (统一考核), pure: the named counts an indicator formula may read, the shipped
indicators, and a month's score sheet from the evidence (the ticket ids behind every count) less the tickets
whose appeal the centre accepted. ``stats.assessing`` fetches the evidence and keeps indicators, appeals and
frozen months in the database.

Scoring: a rate indicator (higher better) earns weight x value, a rate where lower is better (退单率)
weight x (1 - value), both with the value clipped to 0..1; a count indicator (督办件数) deducts weight per
counted ticket. An indicator whose formula divides by zero has no data: it is shown as such and the rate
weights that have data are scaled up to the full rate weight, so a department is not marked down for cases
it never had. Ranking: the higher total first, then the unit id.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from stats.formula import Formula, FormulaError, NoData, parse_formula

# Hours after its dispatch within which an acceptance (签收) counts as timely.
ACCEPT_TARGET_HOURS = 24

# Count name -> English description (message id). Each is a set of tickets per department and month.
COUNT_NAMES: dict[str, str] = {
    "dispatched": "Tickets dispatched to the department (dispatch or reopen) in the month",
    "accepted": "Acceptances in the month",
    "accepted_in_time": "Acceptances within 24 hours of the dispatch",
    "due": "Tickets whose deadline falls in the month",
    "on_time": "Of those, replied by the deadline",
    "returned": "Tickets returned to the centre in the month",
    "extended": "Extensions granted in the month",
    "reopened": "Tickets reopened in the month",
    "supervised": "Supervision orders in the month",
    "rated": "Call-back ratings in the month",
    "satisfied": "Rated satisfied",
    "basic": "Rated basically satisfied",
    "unsatisfied": "Rated unsatisfied",
}
KNOWN = frozenset(COUNT_NAMES)

RATE, COUNT = "rate", "count"
HIGH, LOW = "high", "low"


@dataclass(frozen=True)
class IndicatorSpec:
    """An indicator as configured: code, name, formula, weight, kind (rate/count) and which way is better."""

    code: str
    name: str
    formula: str
    weight: float
    kind: str = RATE
    better: str = HIGH

    def parsed(self) -> Formula:
        return parse_formula(self.formula, KNOWN)


DEFAULT_INDICATORS: tuple[IndicatorSpec, ...] = (
    IndicatorSpec("accept_in_time", "签收及时率", "accepted_in_time / accepted", 15),
    IndicatorSpec("on_time", "按时办结率", "on_time / due", 25),
    IndicatorSpec("satisfaction", "满意率", "(satisfied + basic) / rated", 20),
    IndicatorSpec("return_rate", "退单率", "returned / dispatched", 10, RATE, LOW),
    IndicatorSpec("extension_rate", "延期率", "extended / dispatched", 10, RATE, LOW),
    IndicatorSpec("reopen_rate", "重办率", "reopened / dispatched", 10, RATE, LOW),
    IndicatorSpec("supervised", "督办件数", "supervised", 1, COUNT, LOW),
    IndicatorSpec("callback_score", "回访满意度", "(satisfied + 0.8 * basic) / rated", 10),
)


def check_indicator(code: str, name: str, formula: str, weight: str | float, kind: str, better: str
                    ) -> IndicatorSpec:
    """A configured indicator checked; FormulaError names the first problem."""
    code, name = (code or "").strip(), (name or "").strip()
    if not code or len(code) > 32 or not code.replace("_", "").isalnum() or not code.isascii():
        raise FormulaError("The code needs 1 to 32 letters, digits or underscores.")
    if not name or len(name) > 64:
        raise FormulaError("The name needs 1 to 64 characters.")
    try:
        weight = float(weight)
    except (TypeError, ValueError):
        raise FormulaError("The weight must be a number.") from None
    if not 0 <= weight <= 1000:
        raise FormulaError("The weight must lie between 0 and 1000.")
    if kind not in (RATE, COUNT) or better not in (HIGH, LOW):
        raise FormulaError("Unknown indicator kind.")
    spec = IndicatorSpec(code, name, formula.strip(), weight, kind, better)
    spec.parsed()
    return spec


# Evidence: unit id -> count name -> ticket ids.
Evidence = Mapping[int, Mapping[str, Iterable[int]]]


@dataclass(frozen=True)
class Cell:
    """One indicator of one department: value (None = no data), points, the counts the formula read."""

    code: str
    value: float | None
    points: float | None
    counts: dict[str, int]


@dataclass
class UnitScore:
    unit: int
    cells: list[Cell]
    total: float | None
    rank: int = 0
    cells_by_code: dict[str, Cell] = field(default_factory=dict)


def evidence_for(evidence: Evidence, unit: int, spec: IndicatorSpec,
                 excluded: Mapping[tuple[int, str], set[int]]) -> dict[str, set[int]]:
    """The ticket ids behind each count ``spec`` reads for ``unit``, less the accepted appeals."""
    left_out = excluded.get((unit, spec.code), set())
    names = evidence.get(unit, {})
    return {name: set(names.get(name, ())) - left_out for name in sorted(spec.parsed().names)}


def score_cell(spec: IndicatorSpec, counts: Mapping[str, int]) -> Cell:
    """Value and points of one indicator for the given counts."""
    try:
        value = spec.parsed().evaluate(counts)
    except NoData:
        return Cell(spec.code, None, None, dict(counts))
    if spec.kind == COUNT:
        return Cell(spec.code, value, -spec.weight * value, dict(counts))
    clipped = min(1.0, max(0.0, value))
    points = spec.weight * (clipped if spec.better == HIGH else 1 - clipped)
    return Cell(spec.code, value, points, dict(counts))


def score_sheet(indicators: Iterable[IndicatorSpec], evidence: Evidence, units: Iterable[int],
                excluded: Mapping[tuple[int, str], set[int]] | None = None) -> list[UnitScore]:
    """Every unit's cells and total, ranked (no data at all: no total, last)."""
    indicators, excluded = list(indicators), excluded or {}
    full_rate_weight = sum(s.weight for s in indicators if s.kind == RATE)
    sheet = []
    for unit in units:
        cells = [score_cell(s, {n: len(ids) for n, ids in evidence_for(evidence, unit, s, excluded).items()})
                 for s in indicators]
        rated = [(s, c) for s, c in zip(indicators, cells) if s.kind == RATE and c.points is not None]
        weight_with_data = sum(s.weight for s, _ in rated)
        deduction = sum(c.points for s, c in zip(indicators, cells) if s.kind == COUNT and c.points)
        if weight_with_data:
            total = sum(c.points for _, c in rated) * full_rate_weight / weight_with_data + deduction
        else:
            total = None if not deduction else deduction
        score = UnitScore(unit, cells, None if total is None else round(total, 2))
        score.cells_by_code = {c.code: c for c in cells}
        sheet.append(score)
    sheet.sort(key=lambda s: (s.total is None, -(s.total or 0), s.unit))
    for place, score in enumerate(sheet, 1):
        score.rank = place if score.total is not None else 0
    return sheet


def month_of(text: str) -> dt.date:
    """'2026-03' -> 1 March 2026; FormulaError for anything else."""
    try:
        year, month = (int(part) for part in (text or "").strip().split("-"))
        return dt.date(year, month, 1)
    except (TypeError, ValueError):
        raise FormulaError("A month must look like 2026-03.") from None


def month_last_day(first: dt.date) -> dt.date:
    nxt = dt.date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)
