"""The ACD's choice of agent for an offer (acd.offers): its fast path equals the full ranking of every free agent."""
import datetime as dt
import random

import pytest

from acd.dispatcher import Acd
from acd.models import Agent, Queue, QueueEntry
from acd.strategies import STRATEGIES, QueueSnapshot, choose_agent, offer_mode


class _Pool:
    def all(self):
        return ["fs1", "fs2"]


class _Waiter:
    def __init__(self, offered):
        self.entry = QueueEntry(server="fs1")
        self.offered = set(offered)


def _acd(seed: int, n: int) -> Acd:
    """An Acd holding n in-memory agents (no database: only the structures the choice reads)."""
    rng = random.Random(seed)
    acd = Acd(_Pool(), rng=random.Random(seed))
    today = acd.clock.today()
    now = dt.datetime(2026, 12, 6, 12)
    for i in range(1, n + 1):
        acd.agents[i] = Agent(
            id=i, extension=str(1000 + i), server=rng.choice(["fs1", "fs2", "fs3"]), registered=rng.random() > 0.1,
            status=rng.choice(["available"] * 4 + ["on_break", "after_call_work"]),
            state=rng.choice(["idle"] * 4 + ["ringing", "in_call"]),
            counters_date=rng.choice([today, today - dt.timedelta(days=1)]), calls_today=rng.randint(0, 3),
            talk_seconds_today=rng.randint(0, 3) * 60, idle_since=now - dt.timedelta(seconds=rng.randint(0, 4)),
            since=now, position=rng.randint(0, 3), version=0)
        acd.operator_no[i] = str(8000 + rng.randint(0, 9))
        if rng.random() < 0.9:
            acd.skills[i] = {"consult": (rng.randint(0, 3), rng.randint(0, 2))}
    acd.peer_routes = {"fs2": "sofia/internal/{extension}@10.0.0.2"}
    return acd


def _full_order(acd: Acd, queue: Queue, waiter: _Waiter) -> list[int]:
    """The choice as it was: every skilled agent's snapshot built afresh, the whole rule's order."""
    today = acd.clock.today()
    skilled = [acd.agents[i] for i, skills in acd.skills.items() if "consult" in skills]
    snaps = [acd._build_snapshot(a, queue, today) for a in skilled
             if a.status == "available" and a.state == "idle" and a.registered]
    base = QueueSnapshot(queue.name, strategy=queue.strategy, caller_server="fs1",
                         reachable_servers=frozenset({"fs2"}), last_agent_id=queue.last_agent_id,
                         exclude=frozenset(waiter.offered))
    order = choose_agent(base, snaps, rng=random.Random(1))
    if not order and waiter.offered:
        order = choose_agent(QueueSnapshot(queue.name, strategy=queue.strategy, caller_server="fs1",
                                           reachable_servers=frozenset({"fs2"}), last_agent_id=queue.last_agent_id),
                             snaps, rng=random.Random(1))
    rung = 1 if offer_mode(queue.strategy) == "sequential" else acd.settings.max_ring_all
    return order[:rung]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_offer_choice_equals_full_ranking(strategy):
    """Should offer the same agents as ranking every free agent's fresh snapshot, over changing random agent sets."""
    for seed in range(25):
        rng = random.Random(seed)
        acd = _acd(seed, rng.randint(0, 120))
        queue = Queue(id=1, name="q", skill="consult", strategy=strategy)
        for _ in range(6):
            waiter = _Waiter(rng.sample(sorted(acd.agents), min(len(acd.agents), rng.randint(0, 5))))
            acd.rng = random.Random(1)
            chosen = acd._choose(queue, waiter, acd._free_agents("consult"))
            assert chosen == _full_order(acd, queue, waiter), (seed, strategy)
            queue.last_agent_id = chosen[0] if chosen else queue.last_agent_id
            # Agents change between offers (the cached snapshots must follow): counters, state, phone, server.
            for agent in rng.sample(list(acd.agents.values()), min(len(acd.agents), 10)):
                agent.calls_today += 1
                agent.talk_seconds_today += 30
                agent.status, agent.state = rng.choice([("available", "idle"), ("on_break", "idle"),
                                                        ("available", "in_call")])
                agent.version += 1
            # set_registered bumps no version: the phone and its server each on their own.
            for agent in rng.sample(list(acd.agents.values()), min(len(acd.agents), 3)):
                agent.registered = not agent.registered
            for agent in rng.sample(list(acd.agents.values()), min(len(acd.agents), 3)):
                agent.server = rng.choice(["fs1", "fs2", "fs3"])
