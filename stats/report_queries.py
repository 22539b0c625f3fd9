"""Thin queries behind the report pages (stats.breakdowns computes): the filters as conditions, the rows
each report groups, within the viewer's scope (``stats.queries.scope_for``; a department subtree through
caseflow's one rule, ``in_department_subtree``). Timestamps come back as stored and are grouped in the
configured zone by ``stats.breakdowns`` (half-hour zones included, both databases alike).
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from peewee import JOIN, Case, fn

from acd.models import Agent, AgentStateLog, QueueEntry
from caseflow import workflow as wf
from caseflow.models import Category, Department, Region, Ticket, TicketHistory, User
from caseflow.visibility import in_department_subtree
from recorder import aggregates
from stats.breakdowns import (SPEED_BUCKETS, AgentFigures, FilterError, Filters, answered_in_target, speed_row,
                               state_seconds)
from stats.figures import SATISFIED_RATINGS, path_ids, unit_of
from stats.queries import CLOSED_STATUSES, RATING_EVENTS, Scope, _ticket_scope


def _between(column, start, end):
    return (column >= start) & (column < end)


def subtree_ids(model, root: int) -> set[int]:
    """``root`` and every node below it in a parent-linked tree (categories, regions: small tables)."""
    children: dict[int | None, list[int]] = {}
    for node, parent in model.select(model.id, model.parent).tuples():
        children.setdefault(parent, []).append(node)
    found, todo = set(), [root]
    while todo:
        node = todo.pop()
        if node not in found:
            found.add(node)
            todo.extend(children.get(node, []))
    return found


def filter_department(scope: Scope, filters: Filters) -> Department | None:
    """The department a filter narrows to, checked against the scope: a department user may narrow within
    their own subtree only (FilterError otherwise)."""
    if filters.department is None:
        return None
    department = Department.get_or_none(Department.id == filters.department)
    if department is None or (not scope.city and not department.path.startswith(scope.department.path)):
        raise FilterError("%(field)s must be chosen from the list.", field="department")
    return department


def ticket_conditions(scope: Scope, filters: Filters) -> list:
    """Conditions on Ticket for the scope and every filter."""
    conditions = list(_ticket_scope(scope))
    department = filter_department(scope, filters)
    if department is not None:
        conditions.append(in_department_subtree(department))
    if filters.channel:
        conditions.append(Ticket.channel == filters.channel)
    if filters.type:
        conditions.append(Ticket.type == filters.type)
    if filters.urgency:
        conditions.append(Ticket.urgency == filters.urgency)
    if filters.category is not None:
        conditions.append(Ticket.category.in_(list(subtree_ids(Category, filters.category))))
    if filters.region is not None:
        conditions.append(Ticket.region.in_(list(subtree_ids(Region, filters.region))))
    return conditions


# ------------------------------------------------------------------------------------------- calls
def call_rows(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, str, int]]:
    """(quarter-hour or start time, direction, calls) of the calls that started in [start, end): the counts
    recorder.aggregates keeps as records are finalised, and the records not finalised yet."""
    return aggregates.call_slots(start, end)


def call_totals(start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """{inbound: n, outbound: n} (环比/同比 bases)."""
    out = {"inbound": 0, "outbound": 0}
    for _slot, direction, count in aggregates.call_slots(start, end):
        out[direction] += count
    return out


def agent_figures(start: dt.datetime, end: dt.datetime) -> tuple[dict[int, AgentFigures], dict[int, str]]:
    """Per agent's user id: calls, talk and hold (recorder.aggregates' counts), answers within 15 s of the call's first
    queue entry (queue entries), tickets recorded and their ratings, time in state (the ACD state log)."""
    figures: dict[int, AgentFigures] = {}

    def of(user_id: int) -> AgentFigures:
        return figures.setdefault(user_id, AgentFigures())

    for user_id, (calls, talk, hold) in aggregates.agent_calls(start, end).items():
        f = of(user_id)
        f.calls, f.talk_seconds, f.hold_seconds = calls, talk, hold

    agent_user = dict(Agent.select(Agent.id, Agent.user).tuples())
    # Entries of the calls that entered a queue in the period (all visits, so the first one is known).
    uuids = QueueEntry.select(QueueEntry.call_uuid).where(_between(QueueEntry.entered_at, start, end))
    entries = (QueueEntry.select(QueueEntry.call_uuid, QueueEntry.entered_at, QueueEntry.answered_at,
                                 QueueEntry.agent, QueueEntry.state)
               .where(QueueEntry.call_uuid.in_(uuids)).tuples())
    for agent_id, (answered, in_target) in answered_in_target(entries).items():
        if agent_id in agent_user:
            f = of(agent_user[agent_id])
            f.answered, f.answered_in_target = answered, in_target

    for user_id, count in (Ticket.select(Ticket.created_by, fn.COUNT(Ticket.id))
                           .where(_between(Ticket.created_at, start, end) & Ticket.created_by.is_null(False))
                           .group_by(Ticket.created_by).tuples()):
        of(user_id).tickets = int(count)
    rated = (Ticket.select(Ticket.created_by, Ticket.satisfaction, fn.COUNT(fn.DISTINCT(Ticket.id)))
             .join(TicketHistory, on=(TicketHistory.ticket == Ticket.id))
             .where(TicketHistory.action.in_(RATING_EVENTS) & _between(TicketHistory.at, start, end)
                    & (Ticket.satisfaction != "") & Ticket.created_by.is_null(False))
             .group_by(Ticket.created_by, Ticket.satisfaction).tuples())
    for user_id, rating, count in rated:
        f = of(user_id)
        f.rated += int(count)
        if rating in SATISFIED_RATINGS:
            f.satisfied += int(count)

    # The state log: rows in the period and each agent's last row before it (its opening state).
    opening = (AgentStateLog.select(fn.MAX(AgentStateLog.id)).where(AgentStateLog.at < start)
               .group_by(AgentStateLog.agent))
    log = (AgentStateLog.select(AgentStateLog.agent, AgentStateLog.at, AgentStateLog.to_status,
                                AgentStateLog.to_state)
           .where(_between(AgentStateLog.at, start, end) | AgentStateLog.id.in_(opening)).tuples())
    for agent_id, seconds in state_seconds(log, start, end).items():
        if agent_id in agent_user:
            of(agent_user[agent_id]).state_seconds = seconds

    names = dict(User.select(User.id, User.operator_no.concat(" ").concat(User.name))
                 .where(User.id.in_(list(figures) or [0])).tuples())
    return figures, names


# ----------------------------------------------------------------------------------------- tickets
DIMENSIONS = {"region": Ticket.region, "category": Ticket.category, "status": Ticket.status,
              "urgency": Ticket.urgency}


def tickets_by(dimension: str, scope: Scope, filters: Filters, start: dt.datetime, end: dt.datetime) -> dict:
    """Tickets created in [start, end) per value of ``dimension`` (region, category, status now, urgency)."""
    column = DIMENSIONS[dimension]
    return {key: int(count) for key, count in
            Ticket.select(column, fn.COUNT(Ticket.id))
            .where(_between(Ticket.created_at, start, end), *ticket_conditions(scope, filters))
            .group_by(column).tuples()}


def tree(model) -> tuple[dict[int, int | None], dict[int, str]]:
    rows = list(model.select(model.id, model.parent, model.name).tuples())
    return {i: p for i, p, _ in rows}, {i: n for i, _, n in rows}


def speed_table(scope: Scope, filters: Filters, start: dt.datetime, end: dt.datetime, depth: int) -> dict[int, dict]:
    """Per unit at ``depth`` (stats.breakdowns.speed_row's columns) for tickets created in [start, end): hours
    from the dispatch to the first acceptance after it (accept), dispatch to reply (reply), creation to 办结
    (close): how many, the median, how many in each SPEED_BUCKETS band. Counted by the database, medians by
    its window functions: a year's tickets read one by one took tens of seconds."""
    paths = dict(Department.select(Department.id, Department.path).tuples())
    units = {department: unit_of(department, paths, depth) for department in paths}
    conditions = ticket_conditions(scope, filters)
    created = _between(Ticket.created_at, start, end)
    stages = {
        "accept": (TicketHistory.select(TicketHistory.department.alias("d"), Ticket.dispatched_at.alias("a"),
                                        fn.MIN(TicketHistory.at).alias("b"))
                   .join(Ticket, on=(TicketHistory.ticket == Ticket.id))
                   # an acceptance follows the ticket's creation: the (action, at) index narrows to the period's
                   .where(created & (TicketHistory.action == "accept") & (TicketHistory.at >= start), *conditions)
                   .group_by(TicketHistory.ticket, TicketHistory.department, Ticket.dispatched_at)),
        "reply": Ticket.select(Ticket.department.alias("d"), Ticket.dispatched_at.alias("a"),
                               Ticket.replied_at.alias("b")).where(created, *conditions),
        "close": Ticket.select(Ticket.department.alias("d"), Ticket.created_at.alias("a"),
                               Ticket.closed_at.alias("b")).where(created & Ticket.status.in_(CLOSED_STATUSES),
                                                                  *conditions),
    }
    found: dict[int, dict[str, tuple]] = {}
    for stage, query in stages.items():
        for unit, count, median, *bands in _durations(query, units):
            found.setdefault(int(unit), {})[stage] = (int(count), None if median is None else float(median),
                                                     [int(b or 0) for b in bands])
    return {unit: speed_row(stages_found) for unit, stages_found in found.items()}


def _durations(query, units: dict[int, int]) -> list[tuple]:
    """(unit, count, median hours, cumulative count at each SPEED_BUCKETS bound) of ``query``'s rows (d: a
    department, a: from, b: to; rows without both moments, or ending before they start, left out)."""
    from core.db import database, is_postgres

    if not units:
        return []
    sql, params = query.sql()
    seconds = ("EXTRACT(EPOCH FROM (x.b - x.a))" if is_postgres()
               else "ROUND((julianday(x.b) - julianday(x.a)) * 86400.0, 3)")  # to the millisecond: bands exact
    unit = "CASE x.d " + " ".join(f"WHEN {int(d)} THEN {int(u)}" for d, u in units.items()) + " END"
    bands = ", ".join(f"SUM(CASE WHEN h <= {float(bound)} THEN 1 ELSE 0 END)" for bound in SPEED_BUCKETS)
    return list(database.execute_sql(
        f"SELECT unit, MAX(n), AVG(CASE WHEN rn IN ((n + 1) / 2, (n + 2) / 2) THEN h END), {bands} "
        f"FROM (SELECT unit, h, ROW_NUMBER() OVER w AS rn, "
        f"COUNT(*) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS n "  # one sort for both
        f"FROM (SELECT {unit} AS unit, {seconds} / 3600.0 AS h FROM ({sql}) AS x "
        f"WHERE x.d IS NOT NULL AND x.a IS NOT NULL AND x.b IS NOT NULL AND x.b >= x.a) AS y "
        f"WHERE unit IS NOT NULL WINDOW w AS (PARTITION BY unit ORDER BY h)) AS z GROUP BY unit", params))


def units_at(depth: int, within: Department | None) -> list[int]:
    """Departments at ``depth`` (the assessed units), within a subtree when given, by id."""
    query = Department.select(Department.id, Department.path)
    if within is not None:
        query = query.where(Department.path.startswith(within.path))
    return sorted(i for i, path in query.tuples() if len(path_ids(path)) == depth)


def department_counts(scope: Scope, filters: Filters, start: dt.datetime, end: dt.datetime, now: dt.datetime,
                      paths: dict[int, str], depth: int) -> dict[str, dict[int, int]]:
    """Per unit at ``depth``: volume, closed, on time, overdue, returned, ratings and satisfied."""
    conditions = ticket_conditions(scope, filters)
    out: dict[str, dict[int, int]] = {k: {} for k in ("volume", "closed", "on_time", "overdue", "rated",
                                                       "satisfied", "returned")}

    def add(name: str, department, count=1) -> None:
        if department is None or not count:
            return
        unit = unit_of(department, paths, depth)
        out[name][unit] = out[name].get(unit, 0) + int(count)

    for department, count in (Ticket.select(Ticket.department, fn.COUNT(Ticket.id))
                              .where(_between(Ticket.created_at, start, end), *conditions)
                              .group_by(Ticket.department).tuples()):
        add("volume", department, count)
    for department, count in (Ticket.select(Ticket.department, fn.COUNT(Ticket.id))
                              .where(_between(Ticket.closed_at, start, end) & Ticket.status.in_(CLOSED_STATUSES),
                                     *conditions).group_by(Ticket.department).tuples()):
        add("closed", department, count)
    # Counted per department by the database (a year's tickets read one by one took seconds): replied by the
    # deadline is on time; replied after it, or not replied and the deadline passed, is overdue.
    replied = Ticket.replied_at.is_null(False)
    on_time = fn.SUM(Case(None, [(replied & (Ticket.replied_at <= Ticket.deadline), 1)], 0))
    overdue = fn.SUM(Case(None, [(replied & (Ticket.replied_at > Ticket.deadline), 1),
                                 (Ticket.replied_at.is_null() & (Ticket.deadline < now), 1)], 0))
    for department, in_time, late in (Ticket.select(Ticket.department, on_time, overdue)
                                      .where(_between(Ticket.deadline, start, end) & (Ticket.status != wf.MERGED),
                                             *conditions).group_by(Ticket.department).tuples()):
        add("on_time", department, in_time or 0)
        add("overdue", department, late or 0)
    for department, rating, count in (Ticket.select(TicketHistory.department, Ticket.satisfaction, fn.COUNT(Ticket.id))
                                      .join(TicketHistory, on=(TicketHistory.ticket == Ticket.id))
                                      .where(TicketHistory.action.in_(RATING_EVENTS)
                                             & _between(TicketHistory.at, start, end) & (Ticket.satisfaction != ""),
                                             *conditions).group_by(TicketHistory.department, Ticket.satisfaction)
                                      .tuples()):
        add("rated", department, count)
        if rating in SATISFIED_RATINGS:
            add("satisfied", department, count)
    # A return clears the ticket's department: the returning user's department is the one that returned it.
    for department, in (TicketHistory.select(User.department).join(User, JOIN.INNER, on=(TicketHistory.actor == User.id))
                        .switch(TicketHistory).join(Ticket, on=(TicketHistory.ticket == Ticket.id))
                        .where((TicketHistory.action == "return") & _between(TicketHistory.at, start, end),
                               *_ticket_scope_for_returns(scope, filters)).tuples()):
        add("returned", department)
    return out


def _ticket_scope_for_returns(scope: Scope, filters: Filters) -> list:
    """A returned ticket has no department any more: only the non-department filters apply to it."""
    return ticket_conditions(Scope(), Filters(None, filters.channel, filters.type, filters.category,
                                              filters.region, filters.urgency))
