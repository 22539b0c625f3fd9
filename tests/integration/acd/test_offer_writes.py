"""An offer's writes in one transaction (issue 15 item 10): the agents reserved, their log rows, the caller's
queue entry and the queue's round-robin pointer. On PostgreSQL each transaction or lone statement takes a
connection from the pool; the dispatch pass waited for one per write in turn, and under load those waits
emptied the pool."""
from __future__ import annotations

from contextlib import contextmanager

import gevent

from acd.dispatcher import create_queue
from acd.models import AgentStateLog, Queue, QueueEntry
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
    made, real_make_offer = [], acd._make_offer

    def make_offer(waiter, queue, order):
        with checkouts(db) as taken:
            real_make_offer(waiter, queue, order)
        made.append(taken[0])

    acd._make_offer = make_offer
    session = Session(world, caller="13900003333")
    job = gevent.spawn(acd.enter_queue, session, "consult")
    try:
        with gevent.Timeout(5):
            while not made:
                gevent.sleep(0.01)
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
