"""The ACD at run time: queued callers, offers to agents over FreeSWITCH, reconciliation, live statistics.

How a caller is offered to agents, and why that way, is told in acd.offers; how an agent's state changes
and is written, acd.transitions; the waiting loop is acd.waiting,
reconciliation with each FreeSWITCH acd.reconcile, the live figures acd.live. Acd is composed of those
parts (mixins over the one state below), so each can be read and changed on its own.
"""
from __future__ import annotations

import collections
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import gevent
import gevent.event

from acd import state as sm
from acd.consultation import Consultation, Consultations
from recorder.dialout import DialOut
from acd.errors import AcdError
from acd.legs import AgentCall, Legs
from acd.models import Agent, AgentSkill, Queue, QueueEntry, utcnow
from acd.prompts import AcdPrompts
from acd.admin import create_agent, create_queue, update_queue  # noqa: F401 - re-exported
from acd.live import LiveMixin
from acd.offers import OffersMixin
from acd.reconcile import ReconcileMixin
from acd.strategies import AgentSnapshot
from acd.transitions import TransitionsMixin
from acd.waiting import QueueOutcome, Waiter, WaitingMixin  # noqa: F401 - QueueOutcome re-exported
from caseflow.models import User
from core.clock import Clock
from switch import events as sw
from switch.marks import HandBackLedger

log = logging.getLogger(__name__)

ENDED_KEEP = 600.0  # seconds a channel that ended is remembered (late events)


@dataclass
class AcdSettings:
    """Tunables; defaults suit a single FreeSWITCH with agents on the internal SIP profile."""

    no_answer_reason: str = "未接听 / no answer"
    hotline_number: str = "12345"  # where a caller re-enters the app (freeswitch-conf's hotline extension)
    reconcile_interval: float = 30.0
    bridge_timeout: float = 4 * 3600.0  # longest conversation the caller's greenlet waits for
    sip_profile: str = "internal"
    dial_template: str = "user/{extension}"
    # agent server -> dial template used from other servers, e.g. {"10.0.0.2:8021": "sofia/gateway/fs2/{extension}"},
    # or "off" (never offered to callers elsewhere); overrides the route learned from that server.
    cross_server_dial: dict[str, str] = field(default_factory=dict)
    # Production: a server whose peer_password is still the shipped placeholder gets no learned route.
    refuse_placeholder_peer: bool = False
    max_ring_all: int = 20
    progressive_delay: int = 5  # seconds between agents added by ring-progressively
    default_wrap_up: int = 15
    break_retries: int = 120  # uuid_break resends while the music has not stopped (about 2 minutes)


class Acd(TransitionsMixin, WaitingMixin, OffersMixin, ReconcileMixin, LiveMixin):
    """Queues, agents and offers for one app, over one inbound connection per FreeSWITCH."""

    def __init__(self, pool, clock: Clock | None = None, settings: AcdSettings | None = None,
                 prompts: AcdPrompts | None = None, rng: random.Random | None = None):
        self.pool = pool
        self.clock = clock or Clock()
        self.settings = settings or AcdSettings()
        self.prompts = prompts
        self.rng = rng or random.Random()
        self.agents: dict[int, Agent] = {}
        self.operator_no: dict[int, str] = {}
        self.by_extension: dict[str, int] = {}
        self.skills: dict[int, dict[str, tuple[int, int]]] = {}
        self.queues: dict[str, Queue] = {}
        # Every leg the ACD follows and its one owner (a caller's Waiter, an agent's AgentCall, a Consultation).
        self.legs = Legs()
        self.waiters: Mapping[str, Waiter] = self.legs.of_kind(Waiter)  # read-only: claimed in acd.waiting
        self.queue_waiters: dict[str, dict[str, Waiter]] = collections.defaultdict(dict)
        # channel uuid -> the FreeSWITCH whose inbound connection announced it (bounded, newest kept)
        self.channel_server: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.core_server: dict[str, str] = {}  # FreeSWITCH Core-UUID -> pool name
        self.peer_routes: dict[str, str] = {}  # pool name -> its hotline_peer_uri, learned when reconciling
        self._channel_seen: dict[str, gevent.event.Event] = {}
        self.ended_legs: collections.OrderedDict[str, None] = collections.OrderedDict()
        # Channels that ended (monotonic time, uuid): both maps above forget them after ENDED_KEEP (by count
        # alone, 50,000 + 20,000 entries were about 13 MiB after some hours at 150 calls: issue 15 item 11).
        self._ended_at: collections.deque[tuple[float, str]] = collections.deque()
        self.monotonic = time.monotonic
        self.answered_at: dict[int, float] = {}  # agent id -> monotonic answer time
        self.free_at: dict[int, float] = {}  # agent id -> perf_counter when it became offerable
        self.listeners: list[Callable[[dict], None]] = []
        # Callers an agent handed on (transfer, three-way, back to the IVR): their bridge ending is not the end.
        self.handed_off: set[str] = set()
        # The hand-back marks (hotline_queue, hotline_ivr_node) the app set on callers it sent back into the
        # socket: the IVR acts on a mark only if it is here (a forged one moves nobody).
        self.handbacks = HandBackLedger()
        # Attended transfers in progress (consultation leg -> agent, call, target, answered).
        self.consultations = Consultations(self.legs)
        # The dial-out policy every call to a number goes through (product wiring sets the configured one).
        self.dialout = DialOut()
        self._gone: dict[str, gevent.event.Event] = {}
        # Callers an earlier run left waiting, sent back in by reconciliation: uuid -> when they first entered
        # the queue (the new entry keeps that wait). Bounded: entries older than an hour are dropped.
        self.requeued: collections.OrderedDict[str, object] = collections.OrderedDict()
        # Callables(server, channels) run at every reconciliation with the channel uuids that server has now:
        # call records, recordings and campaign attempts whose hang-up event was lost are swept by them.
        self.reconcilers: list[Callable[[str, set[str]], object]] = []
        self.average_talk: dict[str, tuple[float, float | None]] = {}  # queue -> (read at, seconds): acd.live
        self.decision_times: collections.deque[float] = collections.deque(maxlen=100000)
        self.free_to_offer: collections.deque[float] = collections.deque(maxlen=100000)
        self._dispatch_scheduled = False
        self._dispatching = False
        self._offers_writing = 0  # offers made in memory whose write is under way (acd.offers)
        self._offers_held_back = False  # a pass stopped at OFFER_WRITES_AT_ONCE: the next write's end kicks
        self._last_offer_queue = ""  # the queue of the latest offer: the next pass starts after it (acd.offers)
        self._snapshots: dict[tuple[int, str], tuple[tuple, AgentSnapshot]] = {}
        self._loop: gevent.Greenlet | None = None
        self._timers: dict[int, gevent.Greenlet] = {}
        self._started = False

    # ------------------------------------------------------------------ lifecycle
    def start(self, reconcile_now: bool = True) -> None:
        """Load state from the database, subscribe to every FreeSWITCH, reconcile, start the periodic loop."""
        self.load()
        for conn in self.connections():
            conn.subscribe(self.on_event)
            conn.on_connected(lambda conn=conn: self._spawn_reconcile(conn))
        self._started = True
        if reconcile_now:
            for conn in self.connections():
                if getattr(conn, "connected", True):
                    # A switch that fails here is reconciled again when it (re)connects.
                    self._safe_reconcile(self._server_name(conn))
        self._loop = gevent.spawn(self._periodic)

    def stop(self) -> None:
        """Stop the periodic loop and timers (agents' state stays in the database)."""
        self._started = False
        if self._loop is not None:
            self._loop.kill(block=False)
        for timer in list(self._timers.values()):
            timer.kill(block=False)
        self._timers.clear()

    def load(self) -> None:
        """(Re)load queues, agents and skills from the database (after an admin change or a restart)."""
        self._snapshots.clear()
        self.queues = {q.name: q for q in Queue.select().where(Queue.active == True)}  # noqa: E712
        agents = list(Agent.select(Agent, User).join(User))
        self.agents = {a.id: a for a in agents}
        self.operator_no = {a.id: a.user.operator_no for a in agents}
        self.by_extension = {a.extension: a.id for a in agents}
        skills: dict[int, dict[str, tuple[int, int]]] = collections.defaultdict(dict)
        for row in AgentSkill.select():
            skills[row.agent_id][row.skill] = (row.level, row.position)
        self.skills = dict(skills)
        for agent in agents:
            if agent.leg_uuid and sm.holds_call(agent.state):
                self.legs.claim(agent.leg_uuid, AgentCall(agent.id))
            if sm.is_offerable(agent.status, agent.state, agent.registered):
                self.free_at.setdefault(agent.id, time.perf_counter())
        if self.prompts is not None and self.prompts.render is not None:
            # New agents' operator numbers are rendered now, not while a caller waits for the bridge.
            gevent.spawn(self.prompts.prepare, sorted(set(self.operator_no.values())))

    def connections(self) -> list:
        """The inbound connections, one per FreeSWITCH."""
        return list(self.pool.all())

    @staticmethod
    def _server_name(conn) -> str:
        return getattr(conn, "name", None) or getattr(getattr(conn, "endpoint", None), "name", "")

    def conn_for(self, server: str):
        """The inbound connection for ``server`` (by name, then by host; the only one if there is one)."""
        try:
            return self.pool.get(server)
        except (KeyError, LookupError, ValueError):
            pass
        host = server.rpartition(":")[0] or server
        for_host = getattr(self.pool, "for_host", None)
        if for_host is not None:
            try:
                return for_host(host)
            except (KeyError, LookupError):
                pass
        conns = self.connections()
        for conn in conns:
            if self._server_name(conn).rpartition(":")[0] == host:
                return conn
        if len(conns) == 1:
            return conns[0]
        raise AcdError(f"no FreeSWITCH connection named {server!r}")

    def server_of(self, session) -> str:
        """The FreeSWITCH (pool name) a caller's channel lives on.

        The inbound connection that announced the channel knows for sure (servers may share a host); the
        socket's peer address is the fallback.
        """
        known = self.channel_server.get(session.uuid)
        if known:
            return known
        # Every FreeSWITCH names itself in each event (Core-UUID); the call's channel data carries it too.
        core = (getattr(session, "channel_data", None) or {}).get("Core-UUID", "")
        if core and core in self.core_server:
            return self.core_server[core]
        if not session.server:
            return ""
        host = session.server.rpartition(":")[0] or session.server
        same_host = [c for c in self.connections() if self._server_name(c).rpartition(":")[0] == host]
        if len(same_host) > 1:
            # Several FreeSWITCH on one host: the address cannot tell; the channel's creation event will.
            waiting = self._channel_seen.setdefault(session.uuid, gevent.event.Event())
            try:
                waiting.wait(2.0)
            finally:
                self._channel_seen.pop(session.uuid, None)
            if session.uuid in self.channel_server:
                return self.channel_server[session.uuid]
        try:
            return self._server_name(self.conn_for(session.server))
        except AcdError:
            return session.server

    def subscribe(self, listener: Callable[[dict], None]) -> None:
        """Receive every ACD notice (agent state, screen pop, queue changes) as a dict."""
        self.listeners.append(listener)

    def notify(self, kind: str, **data) -> None:
        """Send a notice ``{"type": kind, **data}`` to every listener (desks, console); a failing one is logged."""
        notice = {"type": kind, **data}
        for listener in list(self.listeners):
            try:
                listener(notice)
            except Exception:  # noqa: BLE001 - a broken listener must never stop the ACD
                log.exception("ACD listener failed on %s", kind)

    _notify = notify  # the former name, still used by tests (tests/integration/acd/test_web.py)

    # ------------------------------------------------------------------ agents
    def agent(self, agent_id: int) -> Agent:
        try:
            return self.agents[agent_id]
        except KeyError:
            raise AcdError(f"unknown agent {agent_id}") from None

    def agent_for_user(self, user_id: int) -> Agent:
        for agent in self.agents.values():
            if agent.user_id == user_id:
                return agent
        raise AcdError(f"user {user_id} is not an agent")

    def set_registered(self, agent_id: int, registered: bool, server: str = "", contact: str = "") -> None:
        """Record a phone (un)registration; an unregistered phone is never offered a call."""
        agent = self.agent(agent_id)
        changed = agent.registered != registered or (server and agent.server != server)
        agent.registered = registered
        if server:
            agent.server = server
        if contact:
            agent.contact = contact[:255]
        if changed:
            agent.save(only=[Agent.registered, Agent.server, Agent.contact])
            self.notify("registration", agent_id=agent_id, registered=registered, server=agent.server)
        if sm.is_offerable(agent.status, agent.state, registered):
            self.free_at.setdefault(agent_id, time.perf_counter())
            self.kick()

    # ------------------------------------------------------------------ queues
    def queue_for(self, skill: str | None, queue_name: str | None = None) -> Queue:
        """The queue named, or the active queue serving ``skill``."""
        if queue_name:
            if queue_name in self.queues:
                return self.queues[queue_name]
            raise AcdError(f"unknown queue {queue_name!r}")
        for queue in self.queues.values():
            if queue.skill == skill or queue.name == skill:
                return queue
        raise AcdError(f"no active queue serves skill {skill!r}")

    # ------------------------------------------------------------------ a call's end and wrap-up
    def _end_call(self, agent_id: int, leg: str, reason: str) -> None:
        agent = self.agents.get(agent_id)
        if agent is None or agent.leg_uuid != leg or agent.state != "in_call":
            return
        started = self.answered_at.pop(agent_id, None)
        talk = time.monotonic() - started if started is not None else \
            max(0.0, (utcnow() - agent.since).total_seconds())
        self.legs.release(leg, AgentCall(agent_id))
        call_uuid, queue_name = agent.call_uuid, agent.call_queue
        consult = self.consultations.for_agent(agent_id)
        if consult is not None:
            # The call ended mid-consultation. The agent's leg gone: FreeSWITCH bridges the caller to an
            # answered target (completed) or drops a target still ringing.
            self.end_consultation(consult.leg, "caller_hung_up" if reason == "caller hung up" else
                                  "completed" if consult.answered else "agent_hung_up")
        # The caller's queue entry closed in the agent's own transaction (one pooled connection, taken ahead):
        # written apart, its pool wait timing out left the agent in a call, its leg forgotten, until the next
        # reconciliation (bench/simulation.py on PostgreSQL).
        change = self._change(agent_id, "call_end", reason, {"talk_seconds": talk})
        self._write([change], lambda: QueueEntry.update(
            ended_at=utcnow(), talk_seconds=round(talk, 3), end_reason=reason[:64]).where(
            (QueueEntry.call_uuid == call_uuid) & (QueueEntry.agent == agent_id) & QueueEntry.ended_at.is_null()
        ).execute())
        self._changed(change.agent, "call_end")
        self.notify("call_ended", agent_id=agent_id, call_uuid=call_uuid)
        if agent.state == "wrap_up":
            queue = self.queues.get(queue_name)
            seconds = queue.wrap_up_seconds if queue is not None else self.settings.default_wrap_up
            self._schedule_wrap_up(agent_id, seconds)

    def _schedule_wrap_up(self, agent_id: int, seconds: float) -> None:
        self._cancel_timer(agent_id)
        version = self.agents[agent_id].version
        if seconds <= 0:
            self._wrap_up_done(agent_id, version)
            return
        self._timers[agent_id] = gevent.spawn_later(seconds, self._wrap_up_done, agent_id, version)

    def _cancel_timer(self, agent_id: int) -> None:
        timer = self._timers.pop(agent_id, None)
        if timer is not None and timer is not gevent.getcurrent():
            timer.kill(block=False)

    def _wrap_up_done(self, agent_id: int, version: int) -> None:
        agent = self.agents.get(agent_id)
        self._timers.pop(agent_id, None)
        if agent is not None and agent.version == version and agent.state == "wrap_up":
            self.transition(agent_id, "wrap_up_done")

    # ------------------------------------------------------------------ attended transfers
    def start_consultation(self, agent_id: int, leg: str, target: str) -> Consultation:
        """An attended transfer begins on the agent's call: ``leg`` is the consultation leg's uuid."""
        agent = self.agent(agent_id)
        consult = self.consultations.start(leg, agent_id, agent.call_uuid, target, time.monotonic())
        # The caller may be bridged on to the target (or back to the agent) by FreeSWITCH: its bridge
        # ending is then not the end of the call.
        self.handed_off.add(agent.call_uuid)
        self.notify("consult", **consult.notice())
        return consult

    def end_consultation(self, leg: str, outcome: str) -> Consultation | None:
        """The consultation on ``leg`` is over (idempotent: None when it already was)."""
        consult = self.consultations.end(leg)
        if consult is None:
            return None
        if not consult.answered:
            # The target never answered: FreeSWITCH leaves the caller's bridge with the agent as it was,
            # so that bridge ending is again the end of the call.
            self.handed_off.discard(consult.call_uuid)
        log.info("consultation %s of agent %s over: %s", leg, consult.agent_id, outcome)
        self.notify("consult", **consult.notice("ended", outcome))
        return consult

    def _consultation_answered(self, leg: str) -> None:
        if leg in self.ended_legs:
            return  # an answer arriving after the hang-up
        consult = self.consultations.answered(leg)
        if consult is not None:
            self.notify("consult", **consult.notice())

    # ------------------------------------------------------------------ FreeSWITCH events
    def on_event(self, event) -> None:
        """Every domain event from every FreeSWITCH comes here (see switch.events)."""
        core = event.raw.get("Core-UUID") if event.raw else None
        if core and event.server and self.core_server.get(core) != event.server:
            self.core_server[core] = event.server
        try:
            if isinstance(event, sw.ChannelCreated):
                self.on_channel_created(event)
            elif isinstance(event, sw.ChannelAnswered):
                self.on_channel_answered(event)
            elif isinstance(event, sw.ChannelHangup):
                self.on_channel_hangup(event)
            elif isinstance(event, sw.Registered):
                self.on_registered(event)
            elif isinstance(event, sw.Unregistered):
                self.on_unregistered(event)
        except sm.TransitionRefused as exc:
            # Events in an unexpected order (duplicates, answer after hang-up) are refused by the table.
            log.info("ignored %s for %s: %s", type(event).__name__, event.uuid, exc)

    def on_channel_created(self, event) -> None:
        if event.uuid and event.server:
            self.channel_server[event.uuid] = event.server
            while len(self.channel_server) > 50000:
                self.channel_server.popitem(last=False)
            seen = self._channel_seen.get(event.uuid)
            if seen is not None:
                seen.set()
        agent_id = self.legs.agent_of(event.uuid)
        if agent_id is None or event.uuid in self.ended_legs:
            return
        agent = self.agents[agent_id]
        if agent.state == "reserved" and agent.leg_uuid == event.uuid:
            self.transition(agent_id, "ring")

    def on_channel_answered(self, event) -> None:
        owner = self.legs.owner_of(event.uuid)
        if isinstance(owner, Consultation):
            self._consultation_answered(event.uuid)
        elif isinstance(owner, AgentCall) and event.uuid not in self.ended_legs:
            self._agent_answered(owner.agent_id, event.uuid)
        # Otherwise not ours (a caller's answer is its own greenlet's), or an answer after the hang-up.

    def _forget_ended(self, uuid: str) -> None:
        """Note that ``uuid`` ended now, and forget the channels that ended more than ENDED_KEEP ago."""
        now = self.monotonic()
        self._ended_at.append((now, uuid))
        while self._ended_at and now - self._ended_at[0][0] > ENDED_KEEP:
            _at, old = self._ended_at.popleft()
            self.channel_server.pop(old, None)
            self.ended_legs.pop(old, None)

    def on_channel_hangup(self, event) -> None:
        self.ended_legs[event.uuid] = None
        gone = self._gone.get(event.uuid)
        if gone is not None:
            gone.set()
        while len(self.ended_legs) > 20000:
            self.ended_legs.popitem(last=False)
        self._forget_ended(event.uuid)
        owner = self.legs.owner_of(event.uuid)
        if isinstance(owner, Waiter):
            self._caller_gone(owner)
        elif isinstance(owner, Consultation):
            self.end_consultation(event.uuid, owner.ending())
        elif isinstance(owner, AgentCall):
            self._agent_leg_gone(owner.agent_id, event)

    def _agent_leg_gone(self, agent_id: int, event) -> None:
        agent = self.agents[agent_id]
        if agent.state == "in_call" and event.cause == "LOSE_RACE":
            self._lost_race(agent_id, event.uuid)
        elif agent.state == "in_call":
            self._end_call(agent_id, event.uuid, event.cause or "hangup")
        elif agent.state in ("reserved", "ringing"):
            self.offer_failed(agent_id, event.uuid, event.cause or "NORMAL_CLEARING", None)

    def on_registered(self, event) -> None:
        agent_id = self.by_extension.get(event.user)
        if agent_id is not None:
            self.set_registered(agent_id, True, event.server, event.contact)

    def on_unregistered(self, event) -> None:
        agent_id = self.by_extension.get(event.user)
        if agent_id is None:
            return
        agent = self.agents[agent_id]
        if not agent.server or agent.server == event.server:
            self.set_registered(agent_id, False)
            if event.server:  # one of the seat's phones went: another one may still be there
                gevent.spawn(self.recheck_registration, agent_id, event.server)
