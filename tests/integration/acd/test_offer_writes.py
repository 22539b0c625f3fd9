"""An offer's writes in one transaction (issue 15 item 10): the agents reserved, their log rows, the caller's
queue entry and the queue's round-robin pointer. On PostgreSQL each transaction or lone statement takes a
connection from the pool; the dispatch pass waited for one per write in turn, and under load those waits
emptied the pool."""
from __future__ import annotations

from contextlib import contextmanager

import gevent
import gevent.event

from acd import offers
from acd.dispatcher import create_queue
from acd.models import Agent, AgentStateLog, Queue, QueueEntry
from core.db import DatabaseTimeout
from tests.integration.acd.conftest import wait_for
from tests.integration.acd.doubles import Session
from tests.integration.acd.test_dispatcher import ready_all


@contextmanager
def checkouts(database):
    """Count what takes a pooled connection: an outermost transaction, or a statement outside one."""
    taken = [0]
    cls = type(database)
    begin, execute_sql = cls.begin, cls.execute_sql

    def counting_begin(self, *args, **kwargs):
        taken[0] += 1
        return begin(self, *args, **kwargs)

    def counting_execute(self, sql, *args, **kwargs):
        if not self.in_transaction():
            taken[0] += 1
        return execute_sql(self, sql, *args, **kwargs)

    cls.begin, cls.execute_sql = counting_begin, counting_execute
    try:
        yield taken
    finally:
        cls.begin, cls.execute_sql = begin, execute_sql


def test_a_ring_all_offer_writes_in_one_transaction(make_acd, setup_agents, db, world):
    """Should write a ring-all offer to three agents (three reservations and log rows, the entry, the
    pointer) in one transaction, and leave the rows as the separate writes did."""
    create_queue("consult", "consult", strategy="ring_all", ring_timeout=20, wrap_up_seconds=0,
                 announce_interval=0)
    agents = setup_agents(3)
    for phone in world.phones.values():
        phone.answer_delay = None  # they ring on: the offer stays as written
    acd = make_acd()
    ready_all(acd, agents)
    made, real_write_offer, offer_made = [], acd._write_offer, gevent.event.Event()

    def write_offer(*args):  # the offer's write, in a greenlet of its own
        with checkouts(db) as taken:
            real_write_offer(*args)
        made.append(taken[0])
        offer_made.set()

    acd._write_offer = write_offer
    session = Session(world, caller="13900003333")
    job = gevent.spawn(acd.enter_queue, session, "consult")
    try:
        assert offer_made.wait(5)
        assert made == [1]
        assert {a.state for a in acd.agents.values()} <= {"reserved", "ringing"}
        reserves = AgentStateLog.select().where(AgentStateLog.event == "reserve")
        assert sorted(r.agent_id for r in reserves) == sorted(a.id for a in agents)
        assert {r.call_uuid for r in reserves} == {session.uuid}
        entry = QueueEntry.get(QueueEntry.call_uuid == session.uuid)
        assert entry.state == "offering" and entry.offered_agents == ",".join(str(a.id) for a in
                                                                              sorted(agents, key=lambda a: a.id))
        assert Queue.get(Queue.name == "consult").last_agent_id in {a.id for a in agents}
    finally:
        session.hangup_now()
        job.get(timeout=5)


def test_the_expected_wait_reads_a_queues_average_talk_once_in_a_while(make_acd, queue, db, monkeypatch):
    """Should read today's average talk time for the callers' expected wait once per AVERAGE_KEEP seconds
    and queue, not at every waiting caller's announcement."""
    from acd import live

    acd = make_acd()
    with checkouts(db) as taken:
        first = [acd._average_handle_seconds(queue) for _ in range(5)]
    assert taken[0] == 1 and first == [180.0] * 5  # no call talked today: the default
    monkeypatch.setattr(live, "AVERAGE_KEEP", 0.0)
    with checkouts(db) as taken:
        acd._average_handle_seconds(queue)
    assert taken[0] == 1


def test_callers_announced_while_the_average_is_read_do_not_read_it_too(make_acd, queue, db, monkeypatch):
    """Should give the callers announced while a queue's average talk time is being read the value kept
    (the default before the first read) without reading it again: when the kept one expired under load,
    every waiting caller's announcement read it at once, a pooled connection each."""
    acd = make_acd()
    release, reading = gevent.event.Event(), []
    real_start = acd._today_start_utc

    def today_start():  # the read under way: it waits (for a pooled connection) until released
        reading.append(True)
        release.wait(10)
        return real_start()

    acd._today_start_utc = today_start
    first = gevent.spawn(acd._average_handle_seconds, queue)
    try:
        wait_for(lambda: reading, what="the first read under way")
        with checkouts(db) as taken:
            assert acd._average_handle_seconds(queue) == 180.0  # nothing kept yet: the default
        assert taken[0] == 0 and len(reading) == 1
    finally:
        release.set()
    assert first.get(timeout=5) == 180.0


def ringing_on(setup_agents, world, n=2):
    """A ring-all queue and ``n`` ready agents whose phones ring on (the offer stays as written)."""
    create_queue("consult", "consult", strategy="ring_all", ring_timeout=20, wrap_up_seconds=0,
                 announce_interval=0)
    agents = setup_agents(n)
    for phone in world.phones.values():
        phone.answer_delay = None
    return agents


def watch(acd):
    """The desks' notices of offers and reservations, as (type, agent id)."""
    seen = []
    acd.listeners.append(lambda n: seen.append((n["type"], n.get("agent_id")))
                         if n["type"] == "offer" or n.get("event") == "reserve" else None)
    return seen


def test_an_offer_whose_write_fails_is_undone_and_made_again(make_acd, setup_agents, db, world, monkeypatch):
    """Should put an offer whose write fails (the pool's wait timed out) back in memory: its agents free and
    their legs dropped, the caller without an offer, its entry waiting, nothing written, no desk told; and
    offer the caller again on a later pass."""
    monkeypatch.setattr(offers, "WRITE_RETRY_SECONDS", 0.05)
    agents = ringing_on(setup_agents, world)
    ids = sorted(a.id for a in agents)
    acd = make_acd()
    ready_all(acd, agents)
    seen = watch(acd)
    real_write, real_undo, undone = acd._write, acd._undo_offer, []

    def write(changes, *writes):
        if writes and not undone:  # the offer's write (an agent's own transition has no other writes)
            raise DatabaseTimeout("waited 5.0 s for a pooled connection")
        return real_write(changes, *writes)

    def undo(waiter, queue, offer, changes, before):
        real_undo(waiter, queue, offer, changes, before)
        undone.append(dict(offer=waiter.offer, offered=set(waiter.offered), entry=waiter.entry.state,
                           free=sorted(a.id for a in acd._free_agents("consult")), free_at=sorted(acd.free_at),
                           legs=[acd.legs.owner_of(leg) for leg in offer.legs.values()],
                           memory={a.id: (a.state, a.leg_uuid, a.call_uuid) for a in acd.agents.values()},
                           stored={a.id: (a.state, a.leg_uuid, a.call_uuid) for a in Agent.select()},
                           reserves=AgentStateLog.select().where(AgentStateLog.event == "reserve").count(),
                           notices=list(seen)))

    acd._write, acd._undo_offer = write, undo
    session = Session(world, caller="13900004444")
    job = gevent.spawn(acd.enter_queue, session, "consult")
    try:
        wait_for(lambda: {agent for kind, agent in seen if kind == "offer"} == set(ids), what="the second offer")
        first = undone[0]
        assert first["offer"] is None and first["offered"] == set() and first["entry"] == "waiting"
        assert first["free"] == ids and first["free_at"] == ids and first["legs"] == [None, None]
        assert first["memory"] == first["stored"] == {i: ("idle", "", "") for i in ids}
        assert first["reserves"] == 0 and first["notices"] == []
        assert len(undone) == 1
        assert {a.state for a in acd.agents.values()} <= {"reserved", "ringing"}
        assert {a.call_uuid for a in Agent.select()} == {session.uuid}
        assert sorted(r.agent_id for r in AgentStateLog.select().where(AgentStateLog.event == "reserve")) == ids
        assert QueueEntry.get(QueueEntry.call_uuid == session.uuid).state == "offering"
    finally:
        session.hangup_now()
        job.get(timeout=5)


def test_a_caller_hanging_up_while_the_offer_is_written(make_acd, setup_agents, db, world):
    """Should write an offer whose agents the caller's hang-up freed and wrote while the offer waited for its
    connection (both writes change the same agents; the second found nothing unsaved and raised 'no data to
    save!'), leave the agents idle in memory and stored, and tell no desk of a reservation or an offer."""
    agents = ringing_on(setup_agents, world)
    acd = make_acd()
    ready_all(acd, agents)
    seen = watch(acd)
    session = Session(world, caller="13900005555")
    real_write, hung_up = acd._write, []

    def write(changes, *writes):
        if writes and not hung_up:  # the offer's write yields for a connection: the caller hangs up meanwhile
            hung_up.append(True)
            session.hangup_now()  # the hang-up path runs here: _caller_gone -> offer_failed -> its own writes
        return real_write(changes, *writes)

    acd._write = write
    outcome = gevent.spawn(acd.enter_queue, session, "consult").get(timeout=5)
    assert hung_up and outcome.outcome == "abandoned"
    assert {(a.state, a.leg_uuid) for a in acd.agents.values()} == {("idle", "")}
    assert {(a.state, a.leg_uuid, a.call_uuid) for a in Agent.select()} == {("idle", "", "")}
    assert seen == []
    assert QueueEntry.get(QueueEntry.call_uuid == session.uuid).state == "abandoned"
    events = [r.event for r in AgentStateLog.select().where(AgentStateLog.agent == agents[0].id)
              .order_by(AgentStateLog.id)]
    assert events[-2:] in (["offer_failed", "reserve"], ["reserve", "offer_failed"])


def test_the_pass_offers_the_next_caller_while_an_offer_is_written(make_acd, setup_agents, db, world):
    """Should offer (and write) a second caller while the first caller's offer still waits for its write: on
    PostgreSQL under load each write waited seconds for a pooled connection, and a pass writing its offers
    one after the other made 8 offers in 40 s with 453 callers waiting beside thousands of free agents."""
    agents = ringing_on(setup_agents, world)
    Queue.update(strategy="longest_idle").execute()  # one agent an offer: the second caller gets the other
    acd = make_acd()
    ready_all(acd, agents)
    release, held = gevent.event.Event(), []
    real_write = acd._write

    def write(changes, *writes):
        if writes and not held:  # the first offer's write waits (for a connection) until released
            held.append(changes[0].agent.id)
            release.wait(10)
        return real_write(changes, *writes)

    acd._write = write
    first, second = Session(world, caller="13900006666"), Session(world, caller="13900007777")
    jobs = [gevent.spawn(acd.enter_queue, first, "consult")]
    try:
        wait_for(lambda: held, what="the first offer's write")
        jobs.append(gevent.spawn(acd.enter_queue, second, "consult"))
        other = next(a.id for a in agents if a.id != held[0])
        wait_for(lambda: Agent.get_by_id(other).call_uuid == second.uuid, what="the second offer written")
        assert not release.is_set() and Agent.get_by_id(held[0]).state == "idle"  # the first still unwritten
        assert acd.agents[held[0]].call_uuid == first.uuid  # ... but standing in memory: not offered twice
        release.set()
        wait_for(lambda: Agent.get_by_id(held[0]).call_uuid == first.uuid, what="the first offer written")
    finally:
        release.set()
        first.hangup_now()
        second.hangup_now()
        for job in jobs:
            job.get(timeout=5)


def hold_offer_writes(acd, record):
    """Hold each offer's write, after ``record(changes)``, until the event returned is set."""
    release, real_write = gevent.event.Event(), acd._write

    def write(changes, *writes):
        if writes:
            record(changes)
            release.wait(10)
        return real_write(changes, *writes)

    acd._write = write
    return release


def test_a_pass_stops_at_the_writes_allowed_at_once_and_goes_on_after(make_acd, setup_agents, db, world,
                                                                       monkeypatch):
    """Should have at most OFFER_WRITES_AT_ONCE offers' writes under way (more would crowd the pool's queue
    when the database is slow), and offer the callers held back when a write ends."""
    monkeypatch.setattr(offers, "OFFER_WRITES_AT_ONCE", 1)
    agents = ringing_on(setup_agents, world)
    Queue.update(strategy="longest_idle").execute()
    acd = make_acd()
    ready_all(acd, agents)
    held = []
    release = hold_offer_writes(acd, lambda changes: held.append(changes[0].agent.id))
    callers = [Session(world, caller="13900008888"), Session(world, caller="13900009999")]
    jobs = [gevent.spawn(acd.enter_queue, session, "consult") for session in callers]
    try:
        wait_for(lambda: held, what="the first offer's write")
        waiters = lambda: list(acd.waiters.values())  # noqa: E731
        wait_for(lambda: len(waiters()) == 2 and all(w.offer or w.step == "music" for w in waiters()),
                 what="the second caller's pass done, the caller on hold")
        assert len(held) == 1 and {a.state for a in acd.agents.values()} == {"reserved", "idle"}
        release.set()
        wait_for(lambda: {a.call_uuid for a in Agent.select()} == {s.uuid for s in callers},
                 what="both offers written")
    finally:
        release.set()
        for session in callers:
            session.hangup_now()
        for job in jobs:
            job.get(timeout=5)


def test_the_passes_take_the_queues_in_turn_at_the_writes_allowed_at_once(make_acd, setup_agents, db, world,
                                                                         monkeypatch):
    """Should offer a second queue's caller before the first queue's later ones when the writes allowed at
    once are under way (review1 item 6): each write's end runs one more pass, and passes that started from the
    first queue each time gave the other queues nothing until the first drained."""
    monkeypatch.setattr(offers, "OFFER_WRITES_AT_ONCE", 1)
    agents = ringing_on(setup_agents, world, n=4)
    create_queue("other", "consult", strategy="longest_idle", ring_timeout=20, wrap_up_seconds=0,
                 announce_interval=0)
    Queue.update(strategy="longest_idle").execute()
    acd = make_acd()
    ready_all(acd, agents)
    offered = []  # the queue of each offer, in the order written
    release = hold_offer_writes(acd, lambda changes: offered.append(changes[0].agent.call_queue))
    first = Session(world, caller="13900001001")
    later = [Session(world, caller="13900001002"), Session(world, caller="13900001003")]
    other = Session(world, caller="13900002001")
    jobs = [gevent.spawn(acd.enter_queue, first, "consult")]
    try:
        wait_for(lambda: offered, what="the first offer's write")
        jobs.append(gevent.spawn(acd.enter_queue, other, "other"))
        wait_for(lambda: other.uuid in acd.waiters, what="the other queue's caller waiting")
        jobs += [gevent.spawn(acd.enter_queue, session, "consult") for session in later]
        waiting = lambda: list(acd.waiters.values())  # noqa: E731
        wait_for(lambda: len(waiting()) == 4 and all(w.offer or w.step == "music" for w in waiting()),
                 what="every caller's pass done, the callers on hold")
        release.set()
        wait_for(lambda: len(offered) == 4, what="every offer written")
        assert offered == ["consult", "other", "consult", "consult"]
    finally:
        release.set()
        for session in [first, other, *later]:
            session.hangup_now()
        for job in jobs:
            job.get(timeout=5)


def test_a_calls_end_closes_the_queue_entry_in_the_agents_transaction(make_acd, setup_agents, db, world):
    """Should close the caller's queue entry in the transaction that writes the agent's call end (one pooled
    connection): written apart, a pool wait timing out on the entry left the agent in a call with its leg
    forgotten until the next reconciliation."""
    create_queue("consult", "consult", ring_timeout=20, wrap_up_seconds=30, announce_interval=0)
    agents = setup_agents(1)
    acd = make_acd()
    ready_all(acd, agents)
    ends, real_end = [], acd._end_call

    def end_call(agent_id, leg, reason):
        with checkouts(db) as taken:
            real_end(agent_id, leg, reason)
        ends.append(taken[0])

    acd._end_call = end_call
    session = Session(world, caller="13900001212")
    job = gevent.spawn(acd.enter_queue, session, "consult")
    try:
        wait_for(lambda: acd.agents[agents[0].id].state == "in_call", what="the agent in the call")
    finally:
        session.hangup_now()
        job.get(timeout=5)
    wait_for(lambda: ends, what="the call's end")
    assert ends[0] == 1
    assert acd.agents[agents[0].id].state == "wrap_up"
    entry = QueueEntry.get(QueueEntry.call_uuid == session.uuid)
    assert entry.ended_at is not None and entry.end_reason and entry.talk_seconds is not None
    assert Agent.get_by_id(agents[0].id).state == "wrap_up"
