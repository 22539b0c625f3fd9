"""Live figures of the ACD: per queue and per agent, for the console, the wallboard and the alarm rules.

Part of the ACD (acd.dispatcher.Acd is composed of this mixin): read-only over its state and today's queue
entries.
"""
from __future__ import annotations

import datetime as dt
import time

from acd.models import Queue, QueueEntry, utcnow

AVERAGE_KEEP = 30.0  # seconds a queue's average talk time is kept for the callers' expected wait


class LiveMixin:
    """Live statistics of acd.dispatcher.Acd."""

    def _average_handle_seconds(self, queue: Queue) -> float:
        """Today's average talk (of up to 200 calls) plus wrap-up, for the expected wait a caller is told;
        read at most every AVERAGE_KEEP seconds per queue: every waiting caller's announcement asked the
        database (and took a pooled connection) for it (issue 15 item 10)."""
        cache = self.average_talk
        now = time.monotonic()
        kept = cache.get(queue.name)
        if kept is None or now - kept[0] > AVERAGE_KEEP:
            # Kept as it was while this read is under way: the callers announced meanwhile do not read too
            # (29 at once waited for a pooled connection for it under bench/simulation.py on PostgreSQL).
            cache[queue.name] = (now, kept[1] if kept is not None else None)
            since = self._today_start_utc()
            rows = (QueueEntry.select(QueueEntry.talk_seconds)
                    .where((QueueEntry.queue == queue) & (QueueEntry.entered_at >= since)
                           & QueueEntry.talk_seconds.is_null(False)).limit(200))
            talks = [r.talk_seconds for r in rows]
            kept = cache[queue.name] = (now, sum(talks) / len(talks) if talks else None)
        return (kept[1] + queue.wrap_up_seconds) if kept[1] is not None else 180.0

    def _today_start_utc(self) -> dt.datetime:
        local = self.clock.now()
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def queue_stats(self) -> list[dict]:
        """Per queue: waiting, longest wait, answered/abandoned today, 15-second answer rate, averages."""
        since = self._today_start_utc()
        now = time.monotonic()
        out = []
        for queue in sorted(self.queues.values(), key=lambda q: q.name):
            entries = list(QueueEntry.select().where((QueueEntry.queue == queue) & (QueueEntry.entered_at >= since)))
            answered = [e for e in entries if e.answered_at is not None]
            abandoned = [e for e in entries if e.state == "abandoned"]
            waits = [e.wait_seconds for e in answered if e.wait_seconds is not None]
            talks = [e.talk_seconds for e in answered if e.talk_seconds is not None]
            within = [w for w in waits if w <= queue.answer_target_seconds]
            waiting = list(self.queue_waiters.get(queue.name, {}).values())
            out.append({
                "queue": queue.name, "display_name": queue.display_name or queue.name, "skill": queue.skill,
                "strategy": queue.strategy, "waiting": len(waiting),
                "longest_wait": round(max((now - w.entered for w in waiting), default=0.0), 1),
                "answered_today": len(answered), "abandoned_today": len(abandoned),
                "offered_today": len(entries),
                "answer_rate_15s": round(100.0 * len(within) / len(answered), 1) if answered else None,
                "average_wait": round(sum(waits) / len(waits), 1) if waits else None,
                "average_talk": round(sum(talks) / len(talks), 1) if talks else None,
            })
        return out

    def agent_stats(self) -> list[dict]:
        """Per agent: status, state, time in it, today's counters, the call held, help requests."""
        now = utcnow()
        rows = []
        for agent in sorted(self.agents.values(), key=lambda a: self.operator_no.get(a.id, "")):
            today = agent.counters_date == self.clock.today()
            rows.append({
                "agent_id": agent.id, "operator_no": self.operator_no.get(agent.id, ""),
                "name": agent.user.name, "extension": agent.extension, "server": agent.server,
                "registered": agent.registered, "status": agent.status, "state": agent.state,
                "break_reason": agent.break_reason,
                "seconds_in_state": int((now - agent.since).total_seconds()),
                "calls_today": agent.calls_today if today else 0,
                "talk_seconds_today": agent.talk_seconds_today if today else 0,
                "call_number": agent.call_number, "call_uuid": agent.call_uuid, "on_hold": agent.on_hold,
                "help_requested": agent.help_requested_at is not None, "desk": agent.desk_activity,
            })
        return rows

    def stuck_agents(self, older_than: float = 0.0) -> list[int]:
        """Agents reserved/ringing/in call with no live channel or offer behind them (should be none)."""
        live_legs = {leg for w in self.waiters.values() if w.offer for leg in w.offer.legs.values()}
        now = utcnow()
        stuck = []
        for agent in self.agents.values():
            if agent.state in ("reserved", "ringing") and agent.leg_uuid not in live_legs \
                    and (now - agent.since).total_seconds() >= older_than:
                stuck.append(agent.id)
        return stuck


# ---------------------------------------------------------------------- pure helpers
