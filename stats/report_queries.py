"""Thin queries behind the report pages (stats.breakdowns computes): the filters as conditions, the rows
each report groups, within the viewer's scope (``stats.queries.scope_for``; a department subtree through
caseflow's one rule, ``in_department_subtree``). Timestamps come back as stored and are grouped in the
configured zone by ``stats.breakdowns`` (half-hour zones included, both databases alike).
"""
from __future__ import annotations

import bisect
import datetime as dt
from typing import Iterable

from peewee import JOIN, Case, fn

from acd.models import Agent, AgentStateLog, QueueEntry
from caseflow import daycounts, durations, workflow as wf
from caseflow.models import Category, Department, Region, Ticket, TicketDuration, TicketHistory, User
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

    def recorded(first: dt.datetime, last: dt.datetime) -> dict:
        return dict(Ticket.select(Ticket.created_by, fn.COUNT(Ticket.id))
                    .where(_between(Ticket.created_at, first, last) & Ticket.created_by.is_null(False))
                    .group_by(Ticket.created_by).tuples())

    # the whole UTC days from caseflow.daycounts (a year's tickets took a second on SQLite), the rest counted
    for user_id, count in _by_days(daycounts.CREATOR, lambda v: None if v == "" else int(v), start, end,
                                   recorded).items():
        if user_id is not None and count:
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


def tickets_by(dimension: str, scope: Scope, filters: Filters, start: dt.datetime, end: dt.datetime, *,
               direct: bool = False) -> dict:
    """Tickets created in [start, end) per value of ``dimension`` (region, category, status now, urgency).
    The city's unfiltered view reads caseflow.daycounts (``_by_days``): a year's 900,000 tickets grouped three
    times a page took seconds on SQLite. A filter or a department's scope counts the tickets: the kept counts
    are per value of one dimension, not of their combinations. ``direct=True`` always counts the tickets (the
    kept counts' tests compare the two)."""
    column = DIMENSIONS[dimension]

    def counted(first: dt.datetime, last: dt.datetime) -> dict:
        return _tickets_by(column, scope, filters, first, last)

    if direct or not scope.city or filters != Filters():
        return counted(start, end)
    key = (lambda v: None if v == "" else int(v)) if dimension in ("region", "category") else (lambda v: v)
    return _by_days(dimension, key, start, end, counted)


def _by_days(dimension: str, key, start: dt.datetime, end: dt.datetime, counted, kept_until=None) -> dict:
    """Counts per key of [start, end): the whole UTC days inside it (before ``kept_until`` when given) from
    caseflow.daycounts' ``dimension`` (its values turned into keys by ``key``), the rest (the partial days at
    the ends of a period of local days, in a zone off UTC) by ``counted(first, last)`` from the tickets."""
    whole_first = dt.datetime.combine((start - dt.timedelta(microseconds=1)).date() + dt.timedelta(days=1),
                                      dt.time())
    whole_end = dt.datetime.combine(min(end, kept_until or end).date(), dt.time())
    if whole_first >= whole_end:
        return counted(start, end)
    out: dict = {}
    for value, count in daycounts.counts(dimension, whole_first.date(), whole_end.date()).items():
        out[key(value)] = out.get(key(value), 0) + count
    for edge_start, edge_end in ((start, whole_first), (whole_end, end)):
        if edge_start < edge_end:
            for found, count in counted(edge_start, edge_end).items():
                out[found] = out.get(found, 0) + count
    return out


def _tickets_by(column, scope: Scope, filters: Filters, start: dt.datetime, end: dt.datetime) -> dict:
    return {key: int(count) for key, count in
            Ticket.select(column, fn.COUNT(Ticket.id))
            .where(_between(Ticket.created_at, start, end), *ticket_conditions(scope, filters))
            .group_by(column).tuples()}


def tree(model) -> tuple[dict[int, int | None], dict[int, str]]:
    rows = list(model.select(model.id, model.parent, model.name).tuples())
    return {i: p for i, p, _ in rows}, {i: n for i, _, n in rows}


def speed_table(scope: Scope, filters: Filters, start: dt.datetime, end: dt.datetime, depth: int, *,
                direct: bool = False) -> dict[int, dict]:
    """Per unit at ``depth`` (stats.breakdowns.speed_row's columns) for tickets created in [start, end): hours
    from the dispatch to the first acceptance after it (accept), dispatch to reply (reply), creation to 办结
    (close): how many, the median, how many in each SPEED_BUCKETS band. Counted by the database, medians by
    its window functions, from the durations caseflow.durations keeps per ticket (a year's durations derived
    from the tickets and their history took 9 s on PostgreSQL, a minute on SQLite). Every filter and the scope
    are conditions on the ticket's current columns, which the kept rows join (the unfiltered city view reads
    the kept rows alone): no filter falls back. ``direct=True`` derives the durations from the tickets
    instead (the kept figures' tests compare the two)."""
    paths = dict(Department.select(Department.id, Department.path).tuples())
    units = {department: unit_of(department, paths, depth) for department in paths}
    conditions = ticket_conditions(scope, filters)
    if direct:
        created = [_between(Ticket.created_at, start, end)]
        parts = []
        for stage, query in durations.stage_queries(created + conditions, [TicketHistory.at >= start]).items():
            sql, params = durations.stage_rows(query)  # an acceptance follows the creation: (action, at) index
            parts.append((f"SELECT '{stage}' AS s, r.d AS d, r.h AS h FROM ({sql}) AS r", params))
        sql, params = " UNION ALL ".join(p for p, _ in parts), [v for _, ps in parts for v in ps]
    elif not conditions:
        return _speed_rows(_kept_durations(start, end, units))
    else:
        sql, params = (_kept_rows(_between(TicketDuration.created_at, start, end))
                       .join(Ticket, on=(TicketDuration.ticket == Ticket.id)).where(*conditions).sql())
    return _speed_rows(_durations(sql, params, units))


def _speed_rows(figures: list[tuple]) -> dict[int, dict]:
    found: dict[int, dict[str, tuple]] = {}
    for stage, unit, count, median, *bands in figures:
        found.setdefault(int(unit), {})[stage] = (int(count), None if median is None else float(median),
                                                 [int(b or 0) for b in bands])
    return {unit: speed_row(stages_found) for unit, stages_found in found.items()}


IN_ORDER = "ticket_duration_stage_department_id_hours_created_at"  # caseflow.models.TicketDuration's index
SHORT_PERIOD = dt.timedelta(days=92)  # up to a quarter: the period's durations sorted at once


def _kept_rows(period):
    """The kept durations in ``period`` as ``_durations`` reads rows (s: stage, d: department, h: hours)."""
    return (TicketDuration.select(TicketDuration.stage.alias("s"), TicketDuration.department.alias("d"),
                                  TicketDuration.hours.alias("h")).where(period))


def _kept_durations(start: dt.datetime, end: dt.datetime, units: dict[int, int]) -> list[tuple]:
    """``_durations``' figures of every kept duration of tickets created in [start, end). A long period's
    are not sorted all at once: counts and bands per stage and department by one pass over an index, then
    each unit's median read as the middle one or two of its durations in order (LIMIT/OFFSET over the (stage,
    department, hours) index); a year's 2 million durations sorted by window functions took 30 s on SQLite,
    10 s on PostgreSQL. A short period's are read and sorted here (a month: 0.2 s on SQLite, 0.4-0.6 s on
    PostgreSQL, whose window functions took 0.8-1.5 s). The same numbers every way (a median of two is their
    sum halved, as AVG makes it)."""
    from core.db import database, is_postgres

    period = _between(TicketDuration.created_at, start, end)
    if end - start <= SHORT_PERIOD:
        return _few_durations(period, units)
    bands = [fn.SUM(Case(None, [(TicketDuration.hours <= float(bound), 1)], 0)) for bound in SPEED_BUCKETS]
    query = (TicketDuration.select(TicketDuration.stage, TicketDuration.department, fn.COUNT(TicketDuration.id),
                                   *bands).where(period).group_by(TicketDuration.stage, TicketDuration.department))

    def run(query, ordered: bool):
        sql, params = query.sql()
        if ordered and not is_postgres():
            # SQLite otherwise reads the created_at index's range and sorts it for the grouping and again for
            # each unit's median: a year's 2 million rows
            sql = sql.replace(f'FROM "{TicketDuration._meta.table_name}" AS "t1"',
                              f'FROM "{TicketDuration._meta.table_name}" AS "t1" INDEXED BY "{IN_ORDER}"', 1)
        return database.execute_sql(sql, params)

    totals: dict[tuple[str, int], list] = {}
    for stage, department, count, *cumulative in run(query, True):
        unit = units.get(department)
        if unit is None:
            continue
        entry = totals.setdefault((stage, unit), [0, [0] * len(SPEED_BUCKETS), []])
        entry[0] += int(count)
        entry[1] = [a + int(b or 0) for a, b in zip(entry[1], cumulative)]
        entry[2].append(department)
    out = []
    for (stage, unit), (count, cumulative, departments) in totals.items():
        first, last = (count - 1) // 2, count // 2  # 0-based ranks of the middle one or two
        middle = [h for (h,) in run(TicketDuration.select(TicketDuration.hours)
                                    .where(period & (TicketDuration.stage == stage)
                                           & TicketDuration.department.in_(departments))
                                    .order_by(TicketDuration.hours).limit(last - first + 1).offset(first), True)]
        out.append((stage, unit, count, sum(middle) / len(middle), *cumulative))
    return out


def _few_durations(period, units: dict[int, int]) -> list[tuple]:
    """``_kept_durations`` for a short period: its rows (a month's 175,000 at the benchmark's size) read in
    created_at order and sorted per unit here, faster than an ordered walk per unit over every period's."""
    from core.db import database

    values: dict[tuple[str, int], list[float]] = {}
    sql, params = _kept_rows(period).sql()
    for stage, department, hours in database.execute_sql(sql, params):  # the cursor's rows: a third of the time
        unit = units.get(department)
        if unit is not None:
            values.setdefault((stage, unit), []).append(hours)
    out = []
    for (stage, unit), hours in values.items():
        hours.sort()
        count = len(hours)
        middle = hours[(count - 1) // 2: count // 2 + 1]
        out.append((stage, unit, count, sum(middle) / len(middle),
                    *(bisect.bisect_right(hours, float(bound)) for bound in SPEED_BUCKETS)))
    return out


def _durations(sql: str, params: list, units: dict[int, int]) -> list[tuple]:
    """(stage, unit, count, median hours, cumulative count at each SPEED_BUCKETS bound) of ``sql``'s rows (s:
    the stage, d: a department, h: hours)."""
    from core.db import database

    if not units:
        return []
    unit = "CASE x.d " + " ".join(f"WHEN {int(d)} THEN {int(u)}" for d, u in units.items()) + " END"
    bands = ", ".join(f"SUM(CASE WHEN h <= {float(bound)} THEN 1 ELSE 0 END)" for bound in SPEED_BUCKETS)
    return list(database.execute_sql(
        f"SELECT s, unit, MAX(n), AVG(CASE WHEN rn IN ((n + 1) / 2, (n + 2) / 2) THEN h END), {bands} "
        f"FROM (SELECT s, unit, h, ROW_NUMBER() OVER w AS rn, "
        f"COUNT(*) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS n "  # one sort for both
        f"FROM (SELECT x.s AS s, {unit} AS unit, x.h AS h FROM ({sql}) AS x) AS y "
        f"WHERE unit IS NOT NULL WINDOW w AS (PARTITION BY s, unit ORDER BY h)) AS z GROUP BY s, unit", params))


def units_at(depth: int, within: Department | None) -> list[int]:
    """Departments at ``depth`` (the assessed units), within a subtree when given, by id."""
    query = Department.select(Department.id, Department.path)
    if within is not None:
        query = query.where(Department.path.startswith(within.path))
    return sorted(i for i, path in query.tuples() if len(path_ids(path)) == depth)


def department_counts(scope: Scope, filters: Filters, start: dt.datetime, end: dt.datetime, now: dt.datetime,
                      paths: dict[int, str], depth: int, *, direct: bool = False) -> dict[str, dict[int, int]]:
    """Per unit at ``depth``: volume, closed, on time, overdue, returned, ratings and satisfied. The city's
    unfiltered view reads volume, closed, on time and overdue of the whole UTC days in the period from
    caseflow.daycounts (``_by_days``; the deadlines' days only once they have passed, when every unreplied
    ticket of theirs is overdue), the rest from the tickets; a filter or a department's scope counts the
    tickets (``direct=True`` always: the kept counts' tests compare the two)."""
    conditions = ticket_conditions(scope, filters)
    out: dict[str, dict[int, int]] = {k: {} for k in ("volume", "closed", "on_time", "overdue", "rated",
                                                       "satisfied", "returned")}

    def add(name: str, department, count=1) -> None:
        if department is None or not count:
            return
        unit = unit_of(department, paths, depth)
        out[name][unit] = out[name].get(unit, 0) + int(count)

    def per_department(moment, *more):
        return lambda first, last: dict(Ticket.select(Ticket.department, fn.COUNT(Ticket.id))
                                        .where(_between(moment, first, last), *more, *conditions)
                                        .group_by(Ticket.department).tuples())

    # Counted per department by the database (a year's tickets read one by one took seconds): replied by the
    # deadline is on time; replied after it, or not replied and the deadline passed, is overdue.
    state = Case(None, [(Ticket.replied_at.is_null(), "open"), (Ticket.replied_at <= Ticket.deadline, "on_time")],
                 "late")

    def by_deadline(first: dt.datetime, last: dt.datetime) -> dict:
        found_counts: dict = {}
        for department, found, count in (Ticket.select(Ticket.department, state, fn.COUNT(Ticket.id))
                                         .where(_between(Ticket.deadline, first, last) & (Ticket.status != wf.MERGED)
                                                & ((state != "open") | (Ticket.deadline < now)), *conditions)
                                         .group_by(Ticket.department, state).tuples()):
            found_counts[(department, found)] = int(count)
        return found_counts

    volume = per_department(Ticket.created_at)
    closed = per_department(Ticket.closed_at, Ticket.status.in_(CLOSED_STATUSES))
    if scope.city and filters == Filters() and not direct:
        department = lambda v: None if v == "" else int(v)  # noqa: E731
        volume = _by_days(daycounts.DEPARTMENT, department, start, end, volume)
        closed = _by_days(daycounts.CLOSED, department, start, end, closed)
        deadlines = _by_days(daycounts.DEADLINE, lambda v: (department(v.split(":")[0]), v.split(":")[1]),
                             start, end, by_deadline, kept_until=now)
    else:
        volume, closed, deadlines = volume(start, end), closed(start, end), by_deadline(start, end)
    for department, count in volume.items():
        add("volume", department, count)
    for department, count in closed.items():
        add("closed", department, count)
    for (department, found), count in deadlines.items():
        add("on_time" if found == "on_time" else "overdue", department, count)
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
