"""The command screen's figures (指挥大屏): today's calls and tickets, callers waiting and agents by state now,
overdue tickets, tickets per district, for one viewer's scope.

Queries are thin and read only today's rows (grouped in Python in the configured zone, so a half-hour zone
splits its hours right on both databases); ``build_screen`` turns them into the plain figures the page and
its live stream show. Call and agent figures are the whole hotline's: a department scope gets none (as on
/stats). When the ACD runs in this process its live view (``acd.queue_stats`` / ``acd.agent_stats``) gives
the callers waiting and the agents' states; otherwise they are read from its tables.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from peewee import fn

from acd.models import Agent, QueueEntry
from caseflow.models import Region, Ticket, User, overdue_at
from caseflow.visibility import subtree_department_ids
from stats.figures import CallCounts
from stats.queries import CLOSED_STATUSES, Scope, _ticket_scope, call_hours

# Agent states the screen counts, in the order the chart shows them (the team-lead console's states).
AGENT_STATES = ("idle", "in_call", "on_hold", "ringing", "wrap_up", "on_break", "logged_out")
Classify = Callable[[Mapping], str]


@dataclass
class Waiting:
    """Callers in a queue now and how long the longest of them has waited (seconds)."""

    callers: int = 0
    longest_seconds: float = 0.0


@dataclass
class Screen:
    """What the command screen shows for one scope at one moment."""

    hours: list[int]                                   # local hours of today so far (0 .. now)
    tickets_per_hour: list[int]
    tickets_today: int
    tickets_by_channel: dict[str, int]
    tickets_closed_today: int
    overdue_now: int
    tickets_by_district: list[tuple[str, int]]         # (district name, tickets today), most first
    calls: CallCounts | None = None                    # None for a department scope
    calls_per_hour: list[int] = field(default_factory=list)
    waiting: Waiting | None = None
    agents: dict[str, int] | None = None              # AGENT_STATES -> agents in that state

    @property
    def answer_in_target_rate(self) -> float | None:
        """Share of today's answered calls answered within 15 s of entering the queue (service level)."""
        if self.calls is None or not self.calls.answered:
            return None
        return self.calls.answered_in_target / self.calls.answered

    @property
    def agents_on_duty(self) -> int:
        return sum(n for state, n in (self.agents or {}).items() if state != "logged_out")


# ------------------------------------------------------------------------------------------ agents
def agents_by_state(agents: Iterable[Mapping], classify: Classify) -> dict[str, int]:
    """Agents per state, ``classify`` naming the state of one ACD agent row (the team-lead console's
    ``webui.console.agent_state``, so both screens count an agent alike); every state of AGENT_STATES is
    present."""
    counts = dict.fromkeys(AGENT_STATES, 0)
    for agent in agents:
        state = classify(agent)
        counts[state] = counts.get(state, 0) + 1
    return counts


def stored_agents() -> list[dict]:
    """Agent rows as the ACD stores them (status, state, hold) for a process without a live ACD; agents of
    disabled users are left out."""
    rows = (Agent.select(Agent.status, Agent.state, Agent.on_hold).join(User)
            .where(User.active == True).dicts())  # noqa: E712 - peewee needs ==
    return list(rows)


# ------------------------------------------------------------------------------------------- calls
def stored_waiting(since: dt.datetime, now: dt.datetime) -> Waiting:
    """Callers waiting in a queue now, from today's queue entries (``since``: today's start, naive UTC)."""
    count, oldest = (QueueEntry.select(fn.COUNT(QueueEntry.id), fn.MIN(QueueEntry.entered_at))
                     .where((QueueEntry.state == "waiting") & (QueueEntry.entered_at >= since)).tuples().get())
    if not count:
        return Waiting()
    oldest = oldest if isinstance(oldest, dt.datetime) else dt.datetime.fromisoformat(str(oldest))
    return Waiting(int(count), max(0.0, (now - oldest.replace(tzinfo=None)).total_seconds()))


def live_waiting(queues: Iterable[Mapping]) -> Waiting:
    """Callers waiting from the ACD's live queue rows (acd.live.LiveMixin.queue_stats)."""
    queues = list(queues)
    return Waiting(sum(q.get("waiting") or 0 for q in queues),
                   max((q.get("longest_wait") or 0.0 for q in queues if q.get("waiting")), default=0.0))


def call_starts(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """When each queue call of [start, end) first entered a queue (a call that overflowed counted once)."""
    rows = (QueueEntry.select(fn.MIN(QueueEntry.entered_at))
            .where((QueueEntry.entered_at >= start) & (QueueEntry.entered_at < end))
            .group_by(QueueEntry.call_uuid).tuples())
    return [_stored(at) for (at,) in rows]


# ----------------------------------------------------------------------------------------- tickets
def ticket_rows(scope: Scope, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, str, int | None]]:
    """(created at, channel, region id) of the scope's tickets created in [start, end)."""
    rows = (Ticket.select(Ticket.created_at, Ticket.channel, Ticket.region)
            .where((Ticket.created_at >= start) & (Ticket.created_at < end), *_ticket_scope(scope)).tuples())
    return [(_stored(at), channel, region) for at, channel, region in rows]


def closed_count(scope: Scope, start: dt.datetime, end: dt.datetime) -> int:
    return (Ticket.select().where((Ticket.closed_at >= start) & (Ticket.closed_at < end)
                                  & Ticket.status.in_(CLOSED_STATUSES), *_ticket_scope(scope)).count())


def overdue_count(scope: Scope, now: dt.datetime) -> int:
    """Tickets a department holds past their deadline now (the deadline runs while it handles them), overdue as
    the centre's desk counts them (caseflow.models.overdue_at).

    A department's: those its subtree holds, counted from ticket_held_status_deadline's entries alone, plus
    those it handed down to a department outside it (the visibility rule's other half), two counts: the rule's
    OR across the two columns, each against a subquery, read every ticket (1.2 s at 1,000,000)."""
    due = overdue_at(now)
    if scope.city:
        return Ticket.select().where(due).count()
    ids = subtree_department_ids(scope.department)
    held = Ticket.select().where(due & Ticket.department.in_(ids)).count()
    elsewhere = Ticket.department.is_null() | Ticket.department.not_in(ids)
    return held + Ticket.select().where(due & Ticket.upper_department.in_(ids) & elsewhere).count()


def districts() -> tuple[dict[int, int], dict[int, str]]:
    """({region id: its district's id}, {district id: name}): a street counts for the district above it."""
    rows = list(Region.select(Region.id, Region.parent, Region.name).tuples())
    parents = {i: p for i, p, _n in rows}
    names = {i: n for i, _p, n in rows}
    top = {}
    for region in parents:
        node, seen = region, set()
        while parents.get(node) is not None and node not in seen:
            seen.add(node)
            node = parents[node]
        top[region] = node
    return top, {i: names[i] for i in set(top.values())}


# ------------------------------------------------------------------------------------------ pure part
def _stored(value) -> dt.datetime:
    """SQLite may hand a timestamp back as text: a naive UTC datetime either way."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=None)


def local_hour(stored: dt.datetime, tz: ZoneInfo) -> int:
    return stored.replace(tzinfo=dt.timezone.utc).astimezone(tz).hour


def per_hour(moments: Iterable[dt.datetime], tz: ZoneInfo, hours: int) -> list[int]:
    """How many of ``moments`` (naive UTC) fall in each local hour 0 .. hours-1 of today."""
    counts = [0] * hours
    for moment in moments:
        hour = local_hour(moment, tz)
        if hour < hours:
            counts[hour] += 1
    return counts


def by_district(region_ids: Iterable[int | None], top: Mapping[int, int], names: Mapping[int, str],
                unknown: str) -> list[tuple[str, int]]:
    """Tickets per district, most first (then by name); tickets without a known region last, as ``unknown``."""
    counts: dict[str, int] = {}
    missing = 0
    for region in region_ids:
        district = top.get(region) if region is not None else None
        if district is None or district not in names:
            missing += 1
        else:
            counts[names[district]] = counts.get(names[district], 0) + 1
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return rows + [(unknown, missing)] if missing else rows


def build_screen(scope: Scope, tz: ZoneInfo, now_local: dt.datetime, *, tickets: Sequence, closed: int,
                 overdue: int, top: Mapping[int, int], district_names: Mapping[int, str], no_region: str,
                 calls: CallCounts | None = None, call_moments: Iterable[dt.datetime] = (),
                 waiting: Waiting | None = None, agents: Iterable[Mapping] | None = None,
                 classify: Classify | None = None) -> Screen:
    """The screen from today's rows: ``tickets`` as (created at, channel, region id); call figures only
    for the city."""
    hours = now_local.hour + 1
    by_channel: dict[str, int] = {}
    for _at, channel, _region in tickets:
        by_channel[channel] = by_channel.get(channel, 0) + 1
    screen = Screen(hours=list(range(hours)), tickets_per_hour=per_hour((t[0] for t in tickets), tz, hours),
                    tickets_today=len(tickets), tickets_by_channel=by_channel, tickets_closed_today=closed,
                    overdue_now=overdue,
                    tickets_by_district=by_district((t[2] for t in tickets), top, district_names, no_region))
    if scope.city:
        screen.calls = calls or CallCounts()
        screen.calls_per_hour = per_hour(call_moments, tz, hours)
        screen.waiting = waiting or Waiting()
        screen.agents = agents_by_state(agents or (), classify or (lambda agent: "idle"))
    return screen


def today_bounds(now_local: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """[local midnight, now] as naive UTC."""
    start = now_local.replace(hour=0, minute=0, second=0, microsecond=0)
    to_utc = lambda moment: moment.astimezone(dt.timezone.utc).replace(tzinfo=None)  # noqa: E731
    return to_utc(start), to_utc(now_local)


def load_screen(scope: Scope, now_local: dt.datetime, no_region: str, classify: Classify, acd=None) -> Screen:
    """Today's screen for ``scope`` at ``now_local`` (an aware local time: the clock's ``now()``); ``acd`` is
    the live ACD of this process, if any; ``classify`` names an agent row's state (see agents_by_state)."""
    tz = now_local.tzinfo
    start, now = today_bounds(now_local)
    end = now + dt.timedelta(seconds=1)
    top, names = districts()
    values = dict(tickets=ticket_rows(scope, start, end), closed=closed_count(scope, start, end),
                  overdue=overdue_count(scope, now), top=top, district_names=names, no_region=no_region)
    if scope.city:
        calls = CallCounts()
        for _hour, counts in call_hours(start, end):
            calls = calls + counts
        if acd is not None:
            waiting, agents = live_waiting(acd.queue_stats()), acd.agent_stats()
        else:
            waiting, agents = stored_waiting(start, now), stored_agents()
        values.update(calls=calls, call_moments=call_starts(start, end), waiting=waiting, agents=agents,
                      classify=classify)
    return build_screen(scope, tz, now_local, **values)
