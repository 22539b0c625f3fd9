"""Offers: matching waiting callers with free agents, ringing them (the dial string is switch.offer_dial's), and
how each offer ends.

Part of the ACD (acd.dispatcher.Acd is composed of this mixin): its methods work on the Acd's state (agents,
legs, waiters, settings...). The waiting caller's greenlet runs the bridge (acd.waiting); what happens to the
agents of an offer (reserved, ringing, answered, failed) is decided here. An agent's leg is its AgentCall's
in the one leg registry (acd.legs) from the offer to the call's end, the failed offer or the lost race.

How a call is offered (and why this way): the caller's own outbound-socket session runs ``bridge`` with a
dial string for the chosen agent(s), each leg carrying an ``origination_uuid`` we choose, the caller's
number as caller id and the queue's ring timeout (``leg_timeout``). Compared with ``originate`` +
``uuid_bridge`` from the inbound connection this is the robust choice:
  * if the caller hangs up while the agent's phone rings, FreeSWITCH itself cancels the agent leg — there
    is no answered, parked agent leg left talking to nobody;
  * one command per offer instead of three, nothing to clean up between "answered" and "bridged";
  * the operator number (自动报工号) is played to the caller by FreeSWITCH after the agent answers, as the
    bridge starts (``bridge_pre_execute_app``), with no race against our event handling;
  * ring-all and ring-progressively are native dial strings (``,`` and ``leg_delay_start``).
The inbound connections (one per FreeSWITCH) carry the events that move agents through ringing, in call
and wrap-up, the registrations, the channel lists for reconciliation, and the ``uuid_break`` that stops a
waiting caller's music when an agent has been chosen.

No agent can stay reserved or ringing: every offer ends through exactly one of the caller's ``bridge``
returning, the agent leg's hangup event, the caller's hangup, or reconciliation against ``show channels``
(at start, after each reconnect and periodically); each of these is idempotent, keyed on the agent's
current leg uuid, so duplicate or late events (an answer after the hang-up) change nothing.

Several FreeSWITCH servers: the caller's own server rings the agent's leg, also when the agent's phone is
registered on another server. Each server says how the others reach its agents (``hotline_peer_uri``,
``sofia/internal/{extension}@<its SIP address>:<port>``); the app reads it over the inbound connection
whenever it reconciles with that server (connect, reconnect, periodically) and the caller's server dials it
as directory user ``hotline-peer``, answering the far server's challenge with its own ``${peer_password}``
(expanded by FreeSWITCH when the bridge runs: the secret stays in the switches' configuration). The far
server's dialplan (``hotline_peer`` context) rings the seat's phone. ``AcdSettings.cross_server_dial``
(``HOTLINE_CROSS_SERVER_DIAL``) overrides the learned route per server, e.g. a SIP gateway, or ``off``.
The agent's leg we follow is the one on the caller's server (our ``origination_uuid``): it rings, answers
and hangs up with the far phone, and reconciliation looks for it there (``call_server``), so the far
server's own legs for the phone are neither needed nor mistaken for the agent's. Limit: a server that has
not told its route (never connected, older configuration) is reachable only by its own callers.

Long because: an offer's whole life is here, as one set of agents' and legs' bookkeeping: the match, the offer
made in memory then written (and undone when the write fails), its legs chosen, and each way it ends.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import gevent

from acd import state as sm
from acd.legs import AgentCall
from acd.models import Agent, Queue, QueueEntry, utcnow
from acd.strategies import AgentSnapshot, QueueSnapshot, choose_agent, offer_mode
from core.config import NO_ROUTE
from switch import commands, offer_dial
from switch.kamailio import REGISTRAR
from switch.listings import parse_peer_uri

if TYPE_CHECKING:
    from acd.waiting import Waiter

log = logging.getLogger(__name__)

# An offer whose bridge fails sooner than this never rang: the caller backs off before the next one.
FAST_FAILURE_SECONDS = 1.0

# A caller whose offer could not be written (the database's pool wait timed out...) is offered again after this.
WRITE_RETRY_SECONDS = 1.0

# Offers whose write is under way at once, at most: each waits for a pooled connection of its own, so the
# dispatch pass goes on to the next caller meanwhile; more would crowd the pool's queue when the database is
# slow (every waiting caller's offer a waiter), and a write's end lets the pass make the next.
OFFER_WRITES_AT_ONCE = 8

# Hang-up causes of an unanswered agent leg that mean "the agent let it ring out".
NO_ANSWER_CAUSES = frozenset({"NO_ANSWER", "ALLOTTED_TIMEOUT", "NO_USER_RESPONSE", "RECOVERY_ON_TIMER_EXPIRE",
                              "PROGRESS_TIMEOUT"})
# ... "the phone is not there".
UNREACHABLE_CAUSES = frozenset({"USER_NOT_REGISTERED", "SUBSCRIBER_ABSENT", "DESTINATION_OUT_OF_ORDER",
                                "UNALLOCATED_NUMBER", "NO_ROUTE_DESTINATION"})


@dataclass
class _BeforeOffer:
    """What an offer changes in memory before its write yields, kept to put back when the write fails."""

    offered: set[int]
    entry: tuple[str, str]
    last_agent_id: int | None
    free_at: dict[int, float | None] = field(default_factory=dict)  # agent id -> free since (perf counter)


@dataclass
class Offer:
    """One ringing attempt for one caller: agent id -> agent leg uuid."""

    agent_ids: list[int]
    legs: dict[int, str]
    mode: str
    answered_by: int | None = None
    made: float = field(default_factory=time.monotonic)
    written: bool = False  # the caller bridges only once it is (acd.waiting): a failed write undoes it


def _after(items: list[tuple[str, object]], name: str) -> list[tuple[str, object]]:
    """``items`` (queue name, waiters) turned to start after ``name``'s queue: the passes take the queues in
    turn. A pass stops at OFFER_WRITES_AT_ONCE, and under overload each write's end runs one more; started
    from the first queue each time, the later queues got no offer until the first drained."""
    names = [item[0] for item in items]
    start = names.index(name) + 1 if name in names else 0
    return items[start:] + items[:start]


def _seat_number(operator_no: str) -> int:
    digits = "".join(ch for ch in operator_no if ch.isdigit())
    return int(digits[-9:]) if digits else 0


def _variable(result, name: str) -> str:
    if result is None:
        return ""
    variables = getattr(result, "variables", None) or {}
    return str(variables.get(name) or variables.get(f"variable_{name}") or "")


def _failure_cause(disposition: str, result) -> str:
    cause = (disposition or _variable(result, "bridge_hangup_cause") or _variable(result, "hangup_cause")).upper()
    return cause or "NO_ANSWER"


class OffersMixin:
    """Offers and peer routes of acd.dispatcher.Acd."""

    def cross_server_route(self, server: str) -> str | None:
        """The dial template that reaches ``server``'s agents from another server, or None: the configured
        one (``off`` = none), else the one ``server`` told us."""
        configured = self.settings.cross_server_dial.get(server)
        if configured is not None:
            return None if configured == NO_ROUTE else configured
        return self.peer_routes.get(server)

    def learn_peer_route(self, server: str, conn) -> str | None:
        """Ask ``server`` how the others reach its agents (``hotline_peer_uri``) and remember it."""
        uri = parse_peer_uri(conn.api(commands.global_getvar("hotline_peer_uri"), timeout=10.0))
        if uri is not None and self.settings.refuse_placeholder_peer:
            password = conn.api(commands.global_getvar("peer_password"), timeout=10.0).strip()
            if password in ("", offer_dial.PEER_PASSWORD_PLACEHOLDER):
                log.error("%s: peer_password is not set (still the shipped placeholder): its agents are not "
                          "offered to callers on other servers until it is (docs/freeswitch.md)", server)
                uri = None
        if uri is None:
            self.peer_routes.pop(server, None)
        elif self.peer_routes.get(server) != uri:
            log.info("%s: agents reachable from the other servers as %s", server, uri)
            self.peer_routes[server] = uri
        return uri

    def _skilled_agents(self, skill: str) -> list[Agent]:
        return [self.agents[aid] for aid, skills in self.skills.items() if skill in skills and aid in self.agents]

    def _free_agents(self, skill: str) -> list[Agent]:
        """The agents with ``skill`` that can be offered a call now (acd.state.is_offerable), read as in
        _snapshots_of: per offer over every agent of the queue."""
        agents = self.agents
        free = []
        for agent_id, skills in self.skills.items():
            agent = agents.get(agent_id) if skill in skills else None
            if agent is not None:
                data = agent.__data__
                if sm.is_offerable(data.get("status"), data.get("state"), data.get("registered")):
                    free.append(agent)
        return free

    def _snapshot(self, agent: Agent, queue: Queue, today: dt.date | None = None) -> AgentSnapshot:
        """The agent as the rules see it for ``queue`` (cached until the agent's next change)."""
        return self._snapshots_of([agent], queue, today or self.clock.today())[0]

    def _snapshots_of(self, agents: list[Agent], queue: Queue, today: dt.date) -> list[AgentSnapshot]:
        """Each agent as the rules see it for ``queue``, rebuilt only for agents changed since the last offer.

        Runs over every free agent per offer (4,500 in a city's hub): the stamp reads the row's values from
        peewee's ``__data__`` (what each field's accessor returns) in one loop, a third of the cost of the
        accessors (docs/performance.md, the simulation's section)."""
        skill, skills, cache = queue.skill, self.skills, self._snapshots
        out = []
        for agent in agents:
            data = agent.__data__
            agent_id = data["id"]
            key = (agent_id, skill)
            stamp = (data.get("version"), data.get("registered"), data.get("server"), today,
                     skills.get(agent_id, {}).get(skill))
            cached = cache.get(key)
            if cached is None or cached[0] != stamp:
                cached = cache[key] = (stamp, self._build_snapshot(agent, queue, today))
            out.append(cached[1])
        return out

    def _build_snapshot(self, agent: Agent, queue: Queue, today: dt.date) -> AgentSnapshot:
        level, position = self.skills.get(agent.id, {}).get(queue.skill, (0, 0))
        idle = agent.idle_since or agent.since
        seat = agent.position or _seat_number(self.operator_no.get(agent.id, ""))
        current = agent.counters_date == today
        return AgentSnapshot(
            id=agent.id, status=agent.status, state=agent.state, registered=agent.registered,
            server=agent.server, calls_today=agent.calls_today if current else 0,
            talk_seconds_today=agent.talk_seconds_today if current else 0,
            idle_since=idle.timestamp() if idle else 0.0, skill_level=level, tier_position=position, seat=seat)

    def kick(self) -> None:
        """An agent became free or a caller arrived: dispatch now (inline, so a busy hub adds no delay).

        A kick during a dispatch pass asks that pass to run once more instead of nesting.
        """
        if self._dispatching:
            self._dispatch_scheduled = True
            return
        self.dispatch()

    def dispatch(self) -> int:
        """Match waiting callers (oldest first, per queue) with eligible agents; returns offers made."""
        if self._dispatching:
            self._dispatch_scheduled = True
            return 0
        self._dispatching = True
        made = 0
        try:
            while True:
                self._dispatch_scheduled = False
                made += self._dispatch_pass()
                if not self._dispatch_scheduled:
                    return made
        finally:
            self._dispatching = False

    def _dispatch_pass(self) -> int:
        made = 0
        for queue_name, waiters in _after(list(self.queue_waiters.items()), self._last_offer_queue):
            queue = self.queues.get(queue_name)
            if queue is None or not waiters:
                continue
            for waiter in list(waiters.values()):
                if self._offers_writing >= OFFER_WRITES_AT_ONCE:
                    self._offers_held_back = True  # the next write to end runs the pass again
                    return made
                if waiter.offer is not None or waiter.done or waiter.reason in ("hangup", "key") \
                        or waiter.retry_after > time.monotonic():
                    continue
                if waiter.uuid in self.ended_legs:
                    self._caller_gone(waiter)
                    continue
                started = time.perf_counter()
                free = self._free_agents(queue.skill)
                if not free:
                    break
                order = self._choose(queue, waiter, free)
                self.decision_times.append(time.perf_counter() - started)
                if not order:
                    continue
                self._make_offer(waiter, queue, order)
                self._last_offer_queue = queue_name
                made += 1
        return made

    def _choose(self, queue: Queue, waiter: Waiter, free: list[Agent]) -> list[int]:
        snapshots = self._snapshots_of(free, queue, self.clock.today())
        servers = set(self.settings.cross_server_dial) | set(self.peer_routes)
        reachable = frozenset(s for s in servers if self.cross_server_route(s))
        base = QueueSnapshot(queue.name, strategy=queue.strategy, caller_server=waiter.entry.server,
                             reachable_servers=reachable, last_agent_id=queue.last_agent_id,
                             exclude=frozenset(waiter.offered))
        if len(self.connections()) <= 1:
            base = dataclasses.replace(base, caller_server="")
        # Only as many as the offer rings (_make_offer): the same first ids as the whole order, without it.
        limit = 1 if offer_mode(queue.strategy) == "sequential" else self.settings.max_ring_all
        order = choose_agent(base, snapshots, queue.strategy, rng=self.rng, limit=limit)
        if not order and waiter.offered:
            # Everyone free has been tried for this caller already: try them again rather than wait forever.
            order = choose_agent(dataclasses.replace(base, exclude=frozenset()), snapshots, queue.strategy,
                                 rng=self.rng, limit=limit)
        return order

    def _make_offer(self, waiter: Waiter, queue: Queue, order: list[int]) -> None:
        """Reserve the chosen agents for the caller in memory, then write it in a greenlet of its own
        (_write_offer), which tells their desks and wakes the caller. The pass does not wait for the write:
        on PostgreSQL under load each write waited its turn for a pooled connection behind the IVR's and the
        call records' statements, seconds each, and one pass writing its offers one after the other made 8
        offers in 40 s with 453 callers waiting beside 4,900 free agents (bench/simulation.py, 1,000 calls).
        The offer stands in memory meanwhile: its agents are not free, its caller is not offered again."""
        mode = offer_mode(queue.strategy)
        chosen = order[:1] if mode == "sequential" else order[: self.settings.max_ring_all]
        for agent_id in chosen:  # a refusal before anything changes
            sm.transition(self.agent(agent_id).status, self.agent(agent_id).state, "reserve")
        now = time.perf_counter()
        call = dict(call_uuid=waiter.uuid, call_server=waiter.entry.server, call_number=waiter.entry.caller_number,
                    call_queue=queue.name, call_direction="inbound")
        entry = waiter.entry
        before = _BeforeOffer(offered=set(waiter.offered), entry=(entry.state, entry.offered_agents),
                              last_agent_id=queue.last_agent_id)
        legs, changes, waits = {}, [], []
        for agent_id in chosen:
            freed = before.free_at[agent_id] = self.free_at.pop(agent_id, None)
            if freed is not None:
                # From the moment both an agent and this caller were waiting to the offer.
                waits.append(now - max(freed, waiter.entered_perf))
            legs[agent_id] = str(uuidlib.uuid4())
            changes.append(self._change(agent_id, "reserve", "", {**call, "leg_uuid": legs[agent_id]}))
            self.legs.claim(legs[agent_id], AgentCall(agent_id))
        # The offer stands in memory before the write yields: a caller hanging up meanwhile ends it.
        waiter.offered.update(chosen)
        offer = waiter.offer = Offer(agent_ids=list(chosen), legs=legs, mode=mode)
        entry.state = "offering"
        entry.offered_agents = ",".join(str(i) for i in sorted(waiter.offered))
        queue.last_agent_id = chosen[0]
        self._offers_writing += 1
        gevent.spawn(self._write_offer, waiter, queue, offer, changes, before, waits)

    def _write_offer(self, waiter: Waiter, queue: Queue, offer: Offer, changes: list, before: _BeforeOffer,
                     waits: list[float]) -> None:
        """Write an offer made in memory (the agents, their log rows, the caller's entry and the queue's last
        agent: one transaction), then tell the desks and wake the caller; a write that fails is undone in
        memory (the database holds none of it) and the caller offered again after WRITE_RETRY_SECONDS."""
        entry, chosen = waiter.entry, offer.agent_ids
        try:
            try:
                # The queue's pointer as memory has it now: another offer's write may have ended first.
                self._write(changes, lambda: entry.save(only=[QueueEntry.state, QueueEntry.offered_agents]),
                            lambda: Queue.update(last_agent_id=queue.last_agent_id).where(
                                Queue.id == queue.id).execute())
            except BaseException as exc:
                self._undo_offer(waiter, queue, offer, changes, before)
                if not isinstance(exc, Exception):
                    raise  # killed or timed out: undone all the same
                log.warning("offer of %s to agents %s not written, offered again in %.1f s: %r", waiter.uuid,
                            chosen, WRITE_RETRY_SECONDS, exc)
                return
            self._offer_written(waiter, queue, offer, changes, waits)
        finally:
            self._offers_writing -= 1
            if self._offers_held_back:
                self._offers_held_back = False
                self.kick()

    def _offer_written(self, waiter: Waiter, queue: Queue, offer: Offer, changes: list, waits: list[float]) -> None:
        entry, legs = waiter.entry, offer.legs
        offer.written = True
        self.free_to_offer.extend(waits)
        # An agent whose leg changed during the write was moved on by another path (the caller's hang-up
        # ended the offer): that path told its desk, and it is not offered this caller.
        reserved = [change.agent for change in changes if change.agent.leg_uuid == legs[change.agent.id]]
        for agent in reserved:
            self._changed(agent, "reserve")
        if waiter.done:
            return  # the caller hung up while the offer was written: _caller_gone ended it
        for agent in reserved:
            self.notify("offer", agent_id=agent.id, call_uuid=waiter.uuid, number=entry.caller_number,
                         queue=queue.name)
        self._wake(waiter, "offer")

    def _undo_offer(self, waiter: Waiter, queue: Queue, offer: Offer, changes: list, before: _BeforeOffer) -> None:
        """Put back in memory what an offer whose write failed changed: its agents free again (each one not
        moved on meanwhile), their legs, the caller without an offer, its entry and the queue's pointer."""
        for agent, _row, previous in changes:
            leg = offer.legs[agent.id]
            self.legs.release(leg, AgentCall(agent.id))
            if agent.leg_uuid != leg:
                continue  # moved on during the write (the caller's hang-up ended the offer): written by that path
            agent.__data__.update(previous)  # as the database has it (its columns marked unsaved by _write)
            if before.free_at[agent.id] is not None:
                self.free_at[agent.id] = before.free_at[agent.id]
        if waiter.offer is offer:
            waiter.offer = None
        waiter.offered = before.offered
        if waiter.entry.state == "offering":
            waiter.entry.state, waiter.entry.offered_agents = before.entry
        if queue.last_agent_id == offer.agent_ids[0]:
            queue.last_agent_id = before.last_agent_id
        if not waiter.done:
            # The database is the likely cause: the next offers would wait for it too.
            waiter.retry_after = time.monotonic() + WRITE_RETRY_SECONDS
            waiter.event.set()  # a caller waiting for this write (acd.waiting._hold) holds with music again
            gevent.spawn_later(WRITE_RETRY_SECONDS, self.kick)

    def dial_string(self, waiter: Waiter, offer: Offer) -> str:
        """The bridge target for an offer (switch.offer_dial writes it): each agent's leg by the route that
        reaches its phone from the caller's server, delayed by its place for ring-progressively, with the
        agent's operator-number prompt when the ACD plays them."""
        queue = waiter.queue
        legs = []
        for index, agent_id in enumerate(offer.agent_ids):
            agent = self.agents[agent_id]
            template, peer = self.settings.dial_template, False
            if agent.server == REGISTRAR:
                # Registered through Kamailio: every switch rings it there, no peer account needed.
                template = self.cross_server_route(REGISTRAR) or template
            elif waiter.entry.server and agent.server and agent.server != waiter.entry.server:
                template, peer = self.cross_server_route(agent.server) or template, True
            prompt = (None if self.prompts is None
                      else self.prompts.operator(self.operator_no.get(agent_id, "")) or "")
            legs.append(offer_dial.AgentLeg(
                agent_id=agent_id, leg_uuid=offer.legs[agent_id], template=template, extension=agent.extension,
                delay=index * self.settings.progressive_delay if offer.mode == "progressive" else 0, peer=peer,
                operator_prompt=prompt))
        return offer_dial.offer_dial_string(waiter.uuid, waiter.entry.caller_number, queue.name,
                                            queue.ring_timeout, legs)

    def _prepare_operator_prompt(self, waiter: Waiter) -> None:
        """Make the caller hear the answering agent's operator number before the conversation."""
        session = waiter.session
        # 自动报工号 for every rule, ring-all included: each agent leg, when answered, stores its prompt on
        # the caller under its own leg uuid (api_on_answer in dial_string); FreeSWITCH sets bridge_uuid to
        # the winning leg and then plays ${<prefix>${bridge_uuid}} to the caller as the bridge starts.
        # Per-leg names, so two phones answering at once cannot overwrite each other's prompt.
        # The data must reach the channel literally, to be expanded when the bridge runs it: uuid_setvar
        # stores it as given (the `set` application expands it, once more after the execute's own
        # expansion), and it is bridge_pre_execute_data itself, as the bridge copies the _aleg_ variants
        # only when they hold no ${...} (switch_channel_set_variable's check, switch_ivr_bridge.c).
        session.set("bridge_pre_execute_app", "playback")
        reply = session.api(commands.uuid_setvar(waiter.uuid, "bridge_pre_execute_data",
                                                 offer_dial.ANSWERED_LEG_PROMPT))
        if not reply.startswith("+OK"):
            log.warning("operator prompt not set up for %s: %s", waiter.uuid, reply.strip()[:120])

    def _back_off_if_fast(self, waiter: Waiter, offer: Offer) -> None:
        """An offer that failed before any phone could ring (a route refused, a phone busy at once) is not
        retried for this caller at once: 1, 2, 4 ... up to 10 s, so the caller keeps hearing music, other
        callers are served and the queue's maximum wait still applies."""
        if time.monotonic() - offer.made >= FAST_FAILURE_SECONDS:
            waiter.fast_failures = 0
            return
        waiter.fast_failures += 1
        pause = min(10.0, 2.0 ** (waiter.fast_failures - 1))
        waiter.retry_after = time.monotonic() + pause
        gevent.spawn_later(pause, self.kick)

    def _offer_over(self, waiter: Waiter | None, offer: Offer, cause: str, caller_gone: bool = False) -> None:
        """End an offer for every agent still reserved/ringing on it (idempotent)."""
        for agent_id, leg in offer.legs.items():
            agent = self.agents.get(agent_id)
            if agent is None or agent.leg_uuid != leg:
                continue
            if agent.state in ("reserved", "ringing"):
                self.offer_failed(agent_id, leg, cause if agent_id != offer.answered_by else "LOSE_RACE",
                                   waiter.queue if waiter else None)
            elif agent.state == "in_call" and caller_gone:
                self._end_call(agent_id, leg, "caller hung up")

    def offer_failed(self, agent_id: int, leg: str, cause: str, queue: Queue | None = None) -> None:
        """An agent's phone that rang (or was about to) and will not be answered on ``leg``: no answer, busy,
        unreachable, the dial refused, the channel lost (``cause``: FreeSWITCH's hang-up cause). The agent
        returns to idle (a break first when the queue, ``queue`` or the call's own, breaks after a missed
        offer) and the desk is told. Ignored unless ``leg`` is the agent's reserved or ringing leg, so a late
        or repeated report changes nothing; the one entry point for the offers here, the hang-up handler,
        reconciliation and the desk's own dial-outs (acd.agent_controls)."""
        agent = self.agents.get(agent_id)
        if agent is None or agent.leg_uuid != leg or agent.state not in ("reserved", "ringing"):
            return
        self.legs.release(leg, AgentCall(agent_id))
        if cause in NO_ANSWER_CAUSES:
            agent.missed_today += 1
        queue = queue or self.queues.get(agent.call_queue)
        # Break and registration first: the agent must not be offered again the moment it is idle.
        if cause in UNREACHABLE_CAUSES:
            self.set_registered(agent_id, False)
        put_on_break = cause in NO_ANSWER_CAUSES and queue is not None and queue.no_answer_break \
            and agent.status == "available"
        if put_on_break:
            self.transition(agent_id, "not_ready", reason=self.settings.no_answer_reason)
        self.transition(agent_id, "offer_failed", reason=cause)
        self.notify("offer_over", agent_id=agent_id, cause=cause)
        if put_on_break:
            # Said plainly on the desk (with 示闲 at hand): a silent break looks like a quiet queue.
            self.notify("no_answer_break", agent_id=agent_id, cause=cause, queue=queue.name,
                         reason=self.settings.no_answer_reason)

    def _agent_answered(self, agent_id: int, leg: str) -> None:
        agent = self.agents[agent_id]
        if agent.leg_uuid != leg or agent.state not in ("reserved", "ringing"):
            return
        self.answered_at[agent_id] = time.monotonic()
        self.transition(agent_id, "answer")
        waiter = self.waiters.get(agent.call_uuid)
        if waiter is not None:
            if waiter.offer is not None:
                waiter.offer.answered_by = agent_id
            # Served: no longer waiting in the queue (statistics, positions, and never offered again), and the
            # desks' and the console's waiting counts say so now, not when the call ends.
            waiter.done = True
            self.queue_waiters[waiter.queue.name].pop(waiter.uuid, None)
            self.notify("queue", queue=waiter.queue.name, waiting=len(self.queue_waiters[waiter.queue.name]))
            entry = waiter.entry
            entry.state = "bridged"
            entry.agent = agent_id
            entry.agent_leg_uuid = leg
            entry.answered_at = utcnow()
            entry.wait_seconds = round(time.monotonic() - waiter.entered, 3)
            entry.save(only=entry.dirty_fields)
        self.notify("answered", agent_id=agent_id, call_uuid=agent.call_uuid, number=agent.call_number,
                     queue=agent.call_queue, direction=agent.call_direction)

    def _lost_race(self, agent_id: int, leg: str) -> None:
        """Ring-all: this agent answered as well, but FreeSWITCH bridged another phone and hung this one up.
        The agent had no call (no count, no wrap-up) and the caller's entry names the agent who has it."""
        agent = self.agents[agent_id]
        call_uuid = agent.call_uuid
        self.answered_at.pop(agent_id, None)
        self.legs.release(leg, AgentCall(agent_id))
        self.transition(agent_id, "offer_failed", reason="LOSE_RACE")
        self.notify("offer_over", agent_id=agent_id, cause="LOSE_RACE")
        waiter = self.waiters.get(call_uuid)
        offer = waiter.offer if waiter is not None else None
        if offer is None:
            return
        winner = next((aid for aid, other in offer.legs.items() if other != leg and aid in self.agents
                       and self.agents[aid].leg_uuid == other and self.agents[aid].state == "in_call"), None)
        if offer.answered_by == agent_id:
            offer.answered_by = winner
        if winner is not None and waiter.entry.agent_id != winner:
            waiter.entry.agent, waiter.entry.agent_leg_uuid = winner, offer.legs[winner]
            waiter.entry.save(only=[QueueEntry.agent, QueueEntry.agent_leg_uuid])
