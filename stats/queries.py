"""What a user may see (``scope_for``) and the aggregates behind the figures, fetched with GROUP BY so a
year of a busy hotline is summed by the database, not in Python. Grouping by UTC hour keeps the SQL the
same on SQLite and PostgreSQL; ``stats.figures`` turns hours into local days.

Department users see only tickets held in their department's subtree, and no call figures (calls are not
a department's): the scope is applied here, in every query, not by the page.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable
from zoneinfo import ZoneInfo

from peewee import SQL, Case, fn

from acd.models import QueueEntry
from caseflow import workflow as wf
from caseflow.models import Department, Ticket, TicketHistory
from caseflow.roles import DEPARTMENT_ROLES, can
from caseflow.services import in_department_subtree
from core.db import database
from stats.figures import ANSWER_TARGET_SECONDS, CallCounts, TicketCounts
from stats.periods import Period, previous_period, year_earlier
from stats.report import Report, Span, build_report

# Roles that see the whole city: the leaders, the hotline centre, its team leads and administrators.
CITY_ROLES = frozenset({"leader", "centre", "centre_leader", "team_lead", "admin"})
STATS_ROLES = CITY_ROLES | DEPARTMENT_ROLES
STATS_PERMISSION = "stats.view"
# Statuses a ticket counts as 办结 in.
CLOSED_STATUSES = (wf.CLOSED, wf.ARCHIVED)
RATING_EVENTS = ("call_back", "call_back_unsatisfied")


@dataclass(frozen=True)
class Scope:
    """Whose figures: the whole city (``department`` None) or one department's subtree."""

    department: Department | None = None

    @property
    def city(self) -> bool:
        return self.department is None

    @property
    def ranking_depth(self) -> int:
        """Rankings list the units one level below the scope's root (districts and city departments for
        the city, streets for a district)."""
        return 2 if self.department is None else len(self.department.path.strip("/").split("/")) + 1


def scope_for(user) -> Scope | None:
    """The scope ``user`` may see, or None (refused): city roles see the city, department users their
    department's subtree; everyone needs the ``stats.view`` permission (caseflow.roles, editable)."""
    if user is None or not can(user, STATS_PERMISSION):
        return None
    if user.role_set & CITY_ROLES:
        return Scope()
    if user.role_set & DEPARTMENT_ROLES and user.department_id:
        return Scope(user.department)
    return None


# ----------------------------------------------------------------------------------------- helpers
def _hour(column):
    return database.truncate_date("hour", column)


def _as_datetime(value) -> dt.datetime:
    """SQLite's date_trunc gives text, PostgreSQL a timestamp: both as a naive datetime."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return dt.datetime.fromisoformat(str(value))


def _count_if(condition):
    return fn.SUM(Case(None, [(condition, 1)], 0))


def _ticket_scope(scope: Scope) -> list:
    """Conditions limiting Ticket rows to the scope (none for the city)."""
    if scope.city:
        return []
    return [in_department_subtree(scope.department)]  # the department users' own rule (caseflow.services)


def _between(column, start: dt.datetime, end: dt.datetime):
    return (column >= start) & (column < end)


# ------------------------------------------------------------------------------------------- calls
def call_hours(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, CallCounts]]:
    """Queue calls that entered a queue in [start, end) per UTC hour.

    A call that overflowed into another queue has one entry per queue: only its last one counts as the
    call, and it is answered within the target only on its first visit (its wait began in the first queue).
    """
    later = QueueEntry.alias("later_visit")
    earlier = QueueEntry.alias("earlier_visit")
    moved_on = (QueueEntry.state == "overflowed") & fn.EXISTS(
        later.select(SQL("1")).where((later.call_uuid == QueueEntry.call_uuid) & (later.id > QueueEntry.id)))
    first_visit = ~fn.EXISTS(
        earlier.select(SQL("1")).where((earlier.call_uuid == QueueEntry.call_uuid) & (earlier.id < QueueEntry.id)))
    bridged = QueueEntry.state == "bridged"
    hour = _hour(QueueEntry.entered_at)
    rows = (QueueEntry
            .select(hour.alias("hour"), fn.COUNT(QueueEntry.id), _count_if(bridged),
                    _count_if(QueueEntry.state == "abandoned"),
                    _count_if(bridged & (QueueEntry.wait_seconds <= ANSWER_TARGET_SECONDS) & first_visit),
                    fn.SUM(Case(None, [(bridged, fn.COALESCE(QueueEntry.wait_seconds, 0))], 0)),
                    fn.SUM(fn.COALESCE(QueueEntry.talk_seconds, 0)), fn.COUNT(QueueEntry.talk_seconds))
            .where(_between(QueueEntry.entered_at, start, end) & ~moved_on)
            .group_by(hour).order_by(hour).tuples())
    return [(_as_datetime(h), CallCounts(int(o), int(a or 0), int(ab or 0), int(t or 0), float(w or 0),
                                         float(talk or 0), int(n or 0)))
            for h, o, a, ab, t, w, talk, n in rows]


# ----------------------------------------------------------------------------------------- tickets
def ticket_hours(scope: Scope, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, str, int]]:
    """[(UTC hour, channel, tickets created)] in [start, end)."""
    hour = _hour(Ticket.created_at)
    rows = (Ticket.select(hour.alias("hour"), Ticket.channel, fn.COUNT(Ticket.id))
            .where(_between(Ticket.created_at, start, end), *_ticket_scope(scope))
            .group_by(hour, Ticket.channel).order_by(hour).tuples())
    return [(_as_datetime(h), channel, int(count)) for h, channel, count in rows]


def ticket_counts(scope: Scope, start: dt.datetime, end: dt.datetime, now: dt.datetime,
                  channel_hours: Iterable[tuple[dt.datetime, str, int]] | None = None) -> TicketCounts:
    """Every ticket figure of [start, end) except the per-day series (``ticket_hours``).

    Lateness is judged by deadline: tickets due in the span are on time when the department replied by the
    deadline, overdue when it replied later or the deadline passed (``now``) without a reply.
    """
    scoped = _ticket_scope(scope)
    created = _between(Ticket.created_at, start, end)
    counts = TicketCounts()
    for _hour_start, channel, count in (channel_hours if channel_hours is not None
                                         else ticket_hours(scope, start, end)):
        counts.by_channel[channel] = counts.by_channel.get(channel, 0) + count
    counts.by_type = dict(Ticket.select(Ticket.type, fn.COUNT(Ticket.id)).where(created, *scoped)
                          .group_by(Ticket.type).tuples())
    counts.volume_by_department = dict(
        Ticket.select(Ticket.department, fn.COUNT(Ticket.id))
        .where(created & Ticket.department.is_null(False), *scoped).group_by(Ticket.department).tuples())
    counts.closed = (Ticket.select().where(_between(Ticket.closed_at, start, end)
                                           & Ticket.status.in_(CLOSED_STATUSES), *scoped).count())

    replied = Ticket.replied_at.is_null(False)
    on_time = replied & (Ticket.replied_at <= Ticket.deadline)
    late = (replied & (Ticket.replied_at > Ticket.deadline)) | (~replied & (Ticket.deadline < now))
    due = (Ticket.select(Ticket.department, _count_if(on_time), _count_if(late), fn.COUNT(Ticket.id))
           .where(_between(Ticket.deadline, start, end) & (Ticket.status != wf.MERGED), *scoped)
           .group_by(Ticket.department).tuples())
    for department_id, in_time, overdue, total in due:
        in_time, overdue = int(in_time or 0), int(overdue or 0)
        counts.on_time += in_time
        counts.overdue += overdue
        counts.due_open += int(total) - in_time - overdue
        if department_id is not None:
            counts.overdue_by_department[department_id] = overdue
            counts.due_by_department[department_id] = in_time + overdue

    # A rating belongs to the span its call-back (回访) happened in; the ticket's latest rating counts.
    counts.ratings = dict(
        Ticket.select(Ticket.satisfaction, fn.COUNT(fn.DISTINCT(Ticket.id)))
        .join(TicketHistory, on=(TicketHistory.ticket == Ticket.id))
        .where(TicketHistory.action.in_(RATING_EVENTS) & _between(TicketHistory.at, start, end)
               & (Ticket.satisfaction != ""), *scoped)
        .group_by(Ticket.satisfaction).tuples())
    return counts


def department_directory() -> tuple[dict[int, str], dict[int, str]]:
    """({id: materialised path}, {id: name}) of every department (a small table)."""
    rows = list(Department.select(Department.id, Department.path, Department.name).tuples())
    return {i: path for i, path, _ in rows}, {i: name for i, _, name in rows}


# ---------------------------------------------------------------------------------------- one span
def load_span(scope: Scope, period: Period, tz: ZoneInfo, now: dt.datetime) -> Span:
    """Fetch one period's aggregates for ``scope`` (``now`` as naive UTC decides what is overdue)."""
    start, end = period.bounds(tz)
    hours = ticket_hours(scope, start, end)
    calls = call_hours(start, end) if scope.city else None
    return Span(period, calls, hours, ticket_counts(scope, start, end, now, channel_hours=hours))


def load_report(scope: Scope, period: Period, tz: ZoneInfo, now: dt.datetime, channel_order: Iterable[str] = (),
                type_order: Iterable[str] = ()) -> Report:
    """The report of ``period`` for ``scope``, compared with the previous period and a year earlier."""
    spans = [load_span(scope, p, tz, now) for p in (period, previous_period(period), year_earlier(period))]
    paths, names = department_directory()
    return build_report(*spans, tz=tz, paths=paths, names=names, depth=scope.ranking_depth,
                        scope_name="" if scope.city else scope.department.name,
                        channel_order=channel_order, type_order=type_order)
