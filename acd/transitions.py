"""An agent's state changes at run time: the state machine's event applied in memory, written with its log row,
then the timers, the desks' notice and the next dispatch.

Part of the ACD (acd.dispatcher.Acd is composed of this mixin). ``transition`` is the one way an agent's state
changes; the offer path (acd.offers) writes several agents' changes and its own rows in one transaction
(``_write``): on PostgreSQL each transaction or lone statement takes a pooled connection, and the dispatch
pass waiting for one per write in turn emptied the pool under load (issue 15 item 10).
"""
from __future__ import annotations

import time
from typing import Callable, NamedTuple

from acd import state as sm
from acd.models import Agent, AgentStateLog, utcnow
from core.db import ahead_in_pool, database


class Change(NamedTuple):
    """An agent changed in memory (``_change``), its log row, and the columns the change set with their values
    before it (for an offer to put back when its write fails)."""

    agent: Agent
    row: dict
    previous: dict[str, object]


class TransitionsMixin:
    """Agents' state changes; the Acd's ``agents``, ``clock``, timers, ``notify`` and ``kick`` are used."""

    def _roll_counters(self, agent: Agent) -> None:
        today = self.clock.today()
        if agent.counters_date != today:
            agent.counters_date = today
            agent.calls_today = agent.talk_seconds_today = agent.missed_today = 0

    def transition(self, agent_id: int, event: str, reason: str = "", **fields) -> Agent:
        """Apply a state-machine event to an agent, persist it with a log row, notify, re-dispatch."""
        change = self._change(agent_id, event, reason, fields)
        self._write([change])
        self._changed(change.agent, event)
        return change.agent

    @staticmethod
    def _write(changes: list[Change], *writes: Callable[[], object]) -> None:
        """One transaction (one pooled connection, taken once) for agents' changes, their log rows and the
        other ``writes``: the dispatch pass used to wait for a connection per write.

        Each agent's columns saved are those its change set and any still unsaved (changed columns only: this
        runs several times per call), never none: two writes of one agent can wait for a connection at once
        (an offer's and the caller's hang-up's), and the first one's save leaves nothing dirty for the second.
        When the transaction fails, what it saved is marked unsaved again: the database rolled it back."""
        saved = []
        try:
            # Ahead of the other waiters for a pooled connection: a caller and a free agent wait on it.
            with ahead_in_pool(), database.atomic():
                for agent, _row, previous in changes:
                    columns = agent._dirty | set(previous)
                    saved.append((agent, columns))
                    agent.save(only=columns)
                if changes:
                    AgentStateLog.insert_many([change.row for change in changes]).execute()
                for write in writes:
                    write()
        except BaseException:
            for agent, columns in saved:
                agent._dirty |= columns
            raise

    def _change(self, agent_id: int, event: str, reason: str, fields: dict) -> Change:
        """The in-memory half of ``transition``: the agent changed (refused by the table before anything
        changes), its log row and the columns set, for the caller to write."""
        agent = self.agent(agent_id)
        before = dict(agent.__data__)
        to_status, to_state = sm.transition(agent.status, agent.state, event)
        now = utcnow()
        self._roll_counters(agent)
        old_status, old_state = agent.status, agent.state
        talk = fields.pop("talk_seconds", None)
        if talk is not None:
            agent.calls_today += 1
            agent.talk_seconds_today += int(round(talk))
            agent.last_call_end = now
        agent.status, agent.state = to_status, to_state
        if event == "not_ready":
            agent.break_reason = (reason or "小休 / break")[:64]
        elif to_status != "on_break":
            agent.break_reason = ""
        if to_state == "idle" and old_state != "idle":
            agent.idle_since = now
        if to_state == "idle":
            for name in ("call_uuid", "leg_uuid", "call_server", "call_number", "call_queue", "call_direction"):
                setattr(agent, name, "")
            agent.on_hold = False
        for name, value in fields.items():
            setattr(agent, name, value)
        agent.since = now
        agent.version += 1
        row = dict(agent=agent.id, at=now, event=event, from_status=old_status, from_state=old_state,
                   to_status=to_status, to_state=to_state, reason=reason[:128],
                   call_uuid=agent.call_uuid or fields.get("call_uuid", ""))
        previous = {name: before.get(name) for name, value in agent.__data__.items() if before.get(name) != value}
        return Change(agent, row, previous)

    def _changed(self, agent: Agent, event: str) -> None:
        """What follows a written change: timers, the notice, the agent offerable again (or not)."""
        agent_id = agent.id
        if agent.state != "wrap_up":
            self._cancel_timer(agent_id)
        self.notify("agent", agent_id=agent_id, status=agent.status, state=agent.state, event=event,
                    reason=agent.break_reason)
        if sm.is_offerable(agent.status, agent.state, agent.registered):
            self.free_at[agent_id] = time.perf_counter()
            self.kick()
        else:
            self.free_at.pop(agent_id, None)
