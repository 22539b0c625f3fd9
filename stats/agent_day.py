"""An agent's own day (座席工作情况, P5 §3.7.7): today's calls, talk time and tickets, and the state log as a
work history, read for the agent desk."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from peewee import fn

from acd.models import AgentStateLog
from caseflow.models import Ticket
from recorder.models import CallRecord
from stats.breakdowns import state_seconds


@dataclass
class AgentDay:
    """Figures of one local day so far: calls answered, talk seconds, tickets recorded, seconds per state
    (available / on_break / after_call_work) and the history rows, newest first."""

    calls: int = 0
    talk_seconds: int = 0
    tickets: int = 0
    state_seconds: dict[str, float] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


def day_bounds(now: dt.datetime, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """Local midnight of ``now``'s day and ``now``, as naive UTC (the stored form)."""
    local = now.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    to_utc = lambda moment: moment.astimezone(dt.timezone.utc).replace(tzinfo=None)  # noqa: E731
    return to_utc(midnight), to_utc(local)


def agent_day(agent_id: int, user_id: int, now: dt.datetime, tz: ZoneInfo, history_limit: int = 50) -> AgentDay:
    """The agent's day until ``now`` (aware). A history row holds the change's time (naive UTC), its event,
    the status and state it went to, the reason and the seconds it lasted (until the next row or now)."""
    start, end = day_bounds(now, tz)
    day = AgentDay()
    calls, talk = (CallRecord.select(fn.COUNT(CallRecord.id), fn.SUM(CallRecord.talk_seconds))
                   .where((CallRecord.agent == user_id) & CallRecord.answered_at.is_null(False)
                          & (CallRecord.started_at >= start) & (CallRecord.started_at < end)).tuples().get())
    day.calls, day.talk_seconds = int(calls or 0), int(talk or 0)
    day.tickets = (Ticket.select().where((Ticket.created_by == user_id) & (Ticket.created_at >= start)
                                         & (Ticket.created_at < end)).count())
    opening = (AgentStateLog.select().where((AgentStateLog.agent == agent_id) & (AgentStateLog.at < start))
               .order_by(AgentStateLog.at.desc(), AgentStateLog.id.desc()).first())
    rows = list(AgentStateLog.select().where((AgentStateLog.agent == agent_id) & (AgentStateLog.at >= start)
                                             & (AgentStateLog.at < end))
                .order_by(AgentStateLog.at, AgentStateLog.id))
    log = [(agent_id, r.at, r.to_status, r.to_state) for r in ([opening] if opening else []) + rows]
    day.state_seconds = state_seconds(log, start, end).get(agent_id, {})
    for index, row in enumerate(rows):
        until = rows[index + 1].at if index + 1 < len(rows) else end
        day.history.append({"at": row.at, "event": row.event, "status": row.to_status, "state": row.to_state,
                            "reason": row.reason, "seconds": int(max((until - row.at).total_seconds(), 0))})
    day.history.reverse()
    del day.history[history_limit:]
    return day
