"""Department assessment (统一考核) with the database: the evidence of a month (which tickets each count of
each unit holds), the configured indicators, appeals (a unit contests one ticket in one indicator; the
centre accepts or rejects) and closing a month, which freezes its sheet in ScoreSnapshot. The scoring
itself is pure (stats.assessment). Units are the departments one level below the root (streets count for
their district)."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from peewee import JOIN

from caseflow.models import Department, Ticket, TicketHistory, User
from core.db import database
from stats.assessment import (ACCEPT_TARGET_HOURS, DEFAULT_INDICATORS, IndicatorSpec, UnitScore,
                              month_last_day, score_sheet)
from stats.figures import SATISFIED_RATINGS, unit_of
from stats.formula import FormulaError
from stats.models import Appeal, ClosedMonth, Indicator, ScoreSnapshot
from stats.periods import Period
from stats.queries import RATING_EVENTS, department_directory
from caseflow import workflow as wf

UNIT_DEPTH = 2
PENDING, ACCEPTED, REJECTED = "pending", "accepted", "rejected"


class AssessmentError(FormulaError):
    """A refused assessment action (message id + values, translated by the web UI)."""


def indicators() -> list[IndicatorSpec]:
    """The active indicators; the shipped set is stored the first time it is asked for."""
    with database.atomic():
        if not Indicator.select().exists():
            for sort, spec in enumerate(DEFAULT_INDICATORS):
                Indicator.create(code=spec.code, name=spec.name, formula=spec.formula, weight=spec.weight,
                                 kind=spec.kind, better=spec.better, sort=sort)
    return [IndicatorSpec(i.code, i.name, i.formula, i.weight, i.kind, i.better)
            for i in Indicator.select().where(Indicator.active).order_by(Indicator.sort, Indicator.id)]


def save_indicator(spec: IndicatorSpec) -> Indicator:
    """Create or update an indicator by code (already checked by stats.assessment.check_indicator)."""
    indicators()
    row = Indicator.get_or_none(Indicator.code == spec.code)
    if row is None:
        last = Indicator.select().count()
        return Indicator.create(code=spec.code, name=spec.name, formula=spec.formula, weight=spec.weight,
                                kind=spec.kind, better=spec.better, sort=last)
    row.name, row.formula, row.weight, row.kind, row.better, row.active = (
        spec.name, spec.formula, spec.weight, spec.kind, spec.better, True)
    row.save()
    return row


def retire_indicator(code: str) -> None:
    Indicator.update(active=False).where(Indicator.code == code).execute()


def month_key(first: dt.date) -> str:
    return f"{first:%Y-%m}"


def month_bounds(first: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    return Period("custom", first, month_last_day(first)).bounds(tz)


def evidence(first: dt.date, tz: ZoneInfo, now: dt.datetime) -> dict[int, dict[str, set[int]]]:
    """unit -> count name -> ticket ids for the month starting ``first`` (see stats.assessment.COUNT_NAMES)."""
    start, end = month_bounds(first, tz)
    paths, _names = department_directory()
    out: dict[int, dict[str, set[int]]] = {}

    def add(name: str, department: int | None, ticket: int) -> None:
        if department is None or department not in paths:
            return
        out.setdefault(unit_of(department, paths, UNIT_DEPTH), {}).setdefault(name, set()).add(ticket)

    in_month = (TicketHistory.at >= start) & (TicketHistory.at < end)
    events = list(TicketHistory.select(TicketHistory.ticket, TicketHistory.action, TicketHistory.at,
                                       TicketHistory.department, User.department)
                  .join(User, on=(TicketHistory.actor == User.id), join_type=JOIN.LEFT_OUTER)
                  .where(in_month & TicketHistory.action.in_(
                      ("dispatch", "reopen", "accept", "return", "approve_extension", "supervise", *RATING_EVENTS)))
                  .tuples())
    accepted = {t for t, action, *_ in events if action == "accept"}
    dispatches: dict[int, list[dt.datetime]] = {}
    for ticket, at in (TicketHistory.select(TicketHistory.ticket, TicketHistory.at)
                       .where(TicketHistory.ticket.in_(list(accepted) or [0])
                              & TicketHistory.action.in_(("dispatch", "reopen", "sub_dispatch"))).tuples()):
        dispatches.setdefault(ticket, []).append(at)
    ratings = dict(Ticket.select(Ticket.id, Ticket.satisfaction).where(
        Ticket.id.in_([t for t, action, *_ in events if action in RATING_EVENTS] or [0])).tuples())
    names = {"dispatch": "dispatched", "reopen": "dispatched", "approve_extension": "extended",
             "supervise": "supervised"}
    for ticket, action, at, department, actor_department in events:
        if action in names:
            add(names[action], department, ticket)
        elif action == "return":  # the return cleared the ticket's department: the returning user's
            add("returned", actor_department, ticket)
        elif action == "accept":
            add("accepted", department, ticket)
            before = [d for d in dispatches.get(ticket, []) if d <= at]
            if before and (at - max(before)).total_seconds() <= ACCEPT_TARGET_HOURS * 3600:
                add("accepted_in_time", department, ticket)
        else:
            rating = ratings.get(ticket, "")
            if rating:
                add("rated", department, ticket)
                if rating in ("satisfied", "basic", "unsatisfied"):
                    add(rating, department, ticket)
    for ticket, department, replied, deadline in (
            Ticket.select(Ticket.id, Ticket.department, Ticket.replied_at, Ticket.deadline)
            .where((Ticket.deadline >= start) & (Ticket.deadline < end) & (Ticket.status != wf.MERGED)).tuples()):
        if replied is not None or deadline < now:
            add("due", department, ticket)
        if replied is not None and replied <= deadline:
            add("on_time", department, ticket)
    return out


def units() -> list[int]:
    paths, _ = department_directory()
    from stats.figures import path_ids

    return sorted(i for i, path in paths.items() if len(path_ids(path)) == UNIT_DEPTH)


def excluded(month: str) -> dict[tuple[int, str], set[int]]:
    """Accepted appeals of the month: (unit, indicator) -> ticket ids left out."""
    out: dict[tuple[int, str], set[int]] = {}
    for unit, indicator, ticket in (Appeal.select(Appeal.department, Appeal.indicator, Appeal.ticket)
                                    .where((Appeal.month == month) & (Appeal.state == ACCEPTED)).tuples()):
        out.setdefault((unit, indicator), set()).add(ticket)
    return out


@dataclass
class Sheet:
    """A month's sheet: indicators, ranked unit scores, the evidence, whether it is frozen."""

    month: str
    indicators: list[IndicatorSpec]
    scores: list[UnitScore]
    evidence: dict[int, dict[str, set[int]]]
    excluded: dict[tuple[int, str], set[int]]
    closed: ClosedMonth | None


def load_sheet(first: dt.date, tz: ZoneInfo, now: dt.datetime) -> Sheet:
    """The live sheet of an open month, or the frozen one of a closed month."""
    month = month_key(first)
    closed = ClosedMonth.get_or_none(ClosedMonth.month == month)
    if closed is not None:
        return _frozen(month, closed)
    specs, proof, left_out = indicators(), evidence(first, tz, now), excluded(month)
    return Sheet(month, specs, score_sheet(specs, proof, units(), left_out), proof, left_out, None)


def _frozen(month: str, closed: ClosedMonth) -> Sheet:
    from stats.assessment import Cell

    rows = list(ScoreSnapshot.select().where(ScoreSnapshot.month == month).order_by(ScoreSnapshot.id))
    specs, seen = [], set()
    for r in rows:
        if r.indicator and r.indicator not in seen:
            seen.add(r.indicator)
            specs.append(IndicatorSpec(r.indicator, r.name, json.loads(r.counts).get("__formula__", ""), r.weight,
                                       json.loads(r.counts).get("__kind__", "rate"),
                                       json.loads(r.counts).get("__better__", "high")))
    scores: dict[int, UnitScore] = {}
    proof: dict[int, dict[str, set[int]]] = {}
    for r in rows:
        unit = r.department_id
        score = scores.setdefault(unit, UnitScore(unit, [], None))
        if not r.indicator:
            score.total, score.rank = r.points, r.rank
            continue
        counts = {k: v for k, v in json.loads(r.counts).items() if not k.startswith("__")}
        cell = Cell(r.indicator, r.value, r.points, counts)
        score.cells.append(cell)
        score.cells_by_code[r.indicator] = cell
        for name, ids in json.loads(r.evidence).items():
            proof.setdefault(unit, {}).setdefault(name, set()).update(ids)
    ordered = sorted(scores.values(), key=lambda s: (s.rank == 0, s.rank, s.unit))
    return Sheet(month, specs, ordered, proof, {}, closed)


def close_month(first: dt.date, tz: ZoneInfo, now: dt.datetime, user: User) -> ClosedMonth:
    """Freeze the month's sheet; refused for a month not yet over, one already closed, or pending appeals."""
    month = month_key(first)
    if ClosedMonth.select().where(ClosedMonth.month == month).exists():
        raise AssessmentError("The month %(month)s is already closed.", month=month)
    if month_bounds(first, tz)[1] > now:
        raise AssessmentError("The month %(month)s is not over yet.", month=month)
    if Appeal.select().where((Appeal.month == month) & (Appeal.state == PENDING)).exists():
        raise AssessmentError("Decide the pending appeals of %(month)s first.", month=month)
    sheet = load_sheet(first, tz, now)
    with database.atomic():
        for score in sheet.scores:
            for spec in sheet.indicators:
                cell = score.cells_by_code[spec.code]
                counts = dict(cell.counts, __formula__=spec.formula, __kind__=spec.kind, __better__=spec.better)
                proof = {name: sorted(ids) for name, ids in
                         _cell_evidence(sheet, score.unit, spec).items()}
                ScoreSnapshot.create(month=month, department=score.unit, indicator=spec.code, name=spec.name,
                                     weight=spec.weight, value=cell.value, points=cell.points,
                                     counts=json.dumps(counts), evidence=json.dumps(proof))
            ScoreSnapshot.create(month=month, department=score.unit, indicator="", points=score.total,
                                 rank=score.rank)
        return ClosedMonth.create(month=month, closed_by=user)


def _cell_evidence(sheet: Sheet, unit: int, spec: IndicatorSpec) -> dict[str, set[int]]:
    from stats.assessment import evidence_for

    return evidence_for(sheet.evidence, unit, spec, sheet.excluded)


def cell_tickets(sheet: Sheet, unit: int, code: str, name: str) -> list[int]:
    """The ticket ids behind one count of one indicator of one unit (appeals already left out)."""
    spec = next((s for s in sheet.indicators if s.code == code), None)
    if spec is None:
        return []
    if sheet.closed is not None:
        return sorted(frozen_cell_tickets(sheet.month, unit, code, name))
    return sorted(_cell_evidence(sheet, unit, spec).get(name, set()))


def frozen_cell_tickets(month: str, unit: int, code: str, name: str) -> list[int]:
    row = ScoreSnapshot.get_or_none((ScoreSnapshot.month == month) & (ScoreSnapshot.department == unit)
                                    & (ScoreSnapshot.indicator == code))
    return [] if row is None else list(json.loads(row.evidence).get(name, []))


def raise_appeal(user: User, first: dt.date, tz: ZoneInfo, now: dt.datetime, ticket_id: int, indicator: str,
                 reason: str) -> Appeal:
    """A department contests one ticket's counting in one indicator of an open month, with a reason; only a
    ticket its own unit's evidence holds for that indicator (another department's ticket is refused)."""
    from stats.assessment import evidence_for

    month = month_key(first)
    reason = (reason or "").strip()
    if not reason or len(reason) > 1000:
        raise AssessmentError("An appeal needs a reason of at most 1000 characters.")
    if ClosedMonth.select().where(ClosedMonth.month == month).exists():
        raise AssessmentError("The month %(month)s is closed: its scores are final.", month=month)
    paths, _ = department_directory()
    if user.department_id is None or user.department_id not in paths:
        raise AssessmentError("Only a department may appeal.")
    unit = unit_of(user.department_id, paths, UNIT_DEPTH)
    spec = next((s for s in indicators() if s.code == indicator), None)
    if spec is None:
        raise AssessmentError("Unknown indicator.")
    counted = set().union(*evidence_for(evidence(first, tz, now), unit, spec, {}).values())
    if ticket_id not in counted:
        raise AssessmentError("Ticket %(ticket)s is not counted for your department in this indicator.",
                              ticket=ticket_id)
    if Appeal.select().where((Appeal.month == month) & (Appeal.department == unit) & (Appeal.ticket == ticket_id)
                             & (Appeal.indicator == indicator)).exists():
        raise AssessmentError("This ticket has already been appealed in this indicator.")
    return Appeal.create(month=month, department=unit, ticket=ticket_id, indicator=indicator, reason=reason,
                         raised_by=user)


def decide_appeal(appeal_id: int, accept: bool, note: str, user: User, now: dt.datetime) -> Appeal:
    """The centre accepts (the ticket leaves that indicator) or rejects a pending appeal of an open month."""
    appeal = Appeal.get_or_none(Appeal.id == appeal_id)
    if appeal is None:
        raise AssessmentError("No such appeal.")
    if appeal.state != PENDING:
        raise AssessmentError("This appeal has already been decided.")
    if ClosedMonth.select().where(ClosedMonth.month == appeal.month).exists():
        raise AssessmentError("The month %(month)s is closed: its scores are final.", month=appeal.month)
    appeal.state = ACCEPTED if accept else REJECTED
    appeal.decided_by, appeal.decided_at, appeal.decision_note = user, now, (note or "").strip()[:1000]
    appeal.save()
    return appeal
