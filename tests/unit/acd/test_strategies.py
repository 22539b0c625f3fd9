"""Distribution rules: each rule's choice over sequences of calls, eligibility, and bad input."""
import dataclasses
import random

import pytest

from acd.strategies import (STRATEGIES, AgentSnapshot, QueueSnapshot, check_strategy, choose_agent,
                            offer_mode)


def agents(n, **common):
    return [AgentSnapshot(id=i, seat=i, idle_since=float(i), **common) for i in range(1, n + 1)]


def simulate(strategy, snapshots, talk_times, *, rng=None):
    """Offer calls one at a time; the first agent in the order takes the call, then is idle again.

    Returns the agent id that took each call.
    """
    world = {a.id: a for a in snapshots}
    clock = 100.0
    last = None
    taken = []
    for talk in talk_times:
        queue = QueueSnapshot("q", strategy=strategy, last_agent_id=last)
        order = choose_agent(queue, list(world.values()), rng=rng)
        winner = order[0]
        taken.append(winner)
        clock += talk + 1
        a = world[winner]
        world[winner] = dataclasses.replace(a, calls_today=a.calls_today + 1,
                                            talk_seconds_today=a.talk_seconds_today + talk, idle_since=clock)
        last = winner
    return taken


def test_least_talk_time_is_default_and_balances_talk():
    """Should be the default rule and give the next call to the agent with the least talk time today."""
    q = QueueSnapshot("q")
    assert q.strategy == "least_talk_time"
    snaps = agents(3)
    # Agent 1 takes a long call, then 2 and 3 take short ones and keep getting calls until they catch up.
    taken = simulate("least_talk_time", snaps, [300, 10, 10, 10, 10, 200])
    assert taken == [1, 2, 3, 2, 3, 2]


def test_fewest_calls_balances_counts():
    """Should keep call counts within one of each other over a sequence of calls."""
    taken = simulate("fewest_calls", agents(4), [300, 10, 5, 1] * 5)
    counts = [taken.count(i) for i in range(1, 5)]
    assert max(counts) - min(counts) <= 1
    assert sorted(counts) == [5, 5, 5, 5]


def test_longest_idle_picks_who_waited_longest():
    """Should give each call to whoever has been idle longest, cycling through everyone."""
    taken = simulate("longest_idle", agents(3), [10] * 6)
    assert taken == [1, 2, 3, 1, 2, 3]


def test_highest_skill_level_first():
    """Should always prefer the higher skill level while that agent is free."""
    snaps = [AgentSnapshot(id=1, skill_level=3, idle_since=0), AgentSnapshot(id=2, skill_level=9, idle_since=5),
             AgentSnapshot(id=3, skill_level=9, idle_since=1)]
    order = choose_agent(QueueSnapshot("q", strategy="highest_skill"), snaps)
    assert order == [3, 2, 1]  # equal levels: idle longer first
    taken = simulate("highest_skill", snaps, [10] * 4)
    assert set(taken) == {2, 3}


def test_fixed_order_seat_one_first():
    """Should always offer seat 1 first, seat 2 only when seat 1 is busy (按座席编号)."""
    snaps = [AgentSnapshot(id=7, seat=2), AgentSnapshot(id=8, seat=1), AgentSnapshot(id=9, seat=3)]
    assert simulate("fixed_order", snaps, [10] * 3) == [8, 8, 8]
    busy = [dataclasses.replace(snaps[1], state="in_call"), snaps[0], snaps[2]]
    assert choose_agent(QueueSnapshot("q", strategy="fixed_order"), busy) == [7, 9]


def test_top_down_uses_tier_position():
    """Should order by the queue tier position, then seat."""
    snaps = [AgentSnapshot(id=1, seat=1, tier_position=2), AgentSnapshot(id=2, seat=2, tier_position=1)]
    assert choose_agent(QueueSnapshot("q", strategy="top_down"), snaps) == [2, 1]


def test_round_robin_rotates_after_last():
    """Should start after the agent offered last and wrap around."""
    assert simulate("round_robin", agents(3), [10] * 7) == [1, 2, 3, 1, 2, 3, 1]
    # Pointer on an agent who is now busy: continue with the next one.
    snaps = agents(4)
    snaps[1] = dataclasses.replace(snaps[1], state="in_call")
    assert choose_agent(QueueSnapshot("q", strategy="round_robin", last_agent_id=2), snaps) == [3, 4, 1]


def test_random_is_seedable():
    """Should give the same order for the same seed and cover every agent over many calls."""
    snaps = agents(5)
    q = QueueSnapshot("q", strategy="random")
    a = choose_agent(q, snaps, rng=random.Random(42))
    b = choose_agent(q, snaps, rng=random.Random(42))
    assert a == b and sorted(a) == [1, 2, 3, 4, 5]
    taken = simulate("random", snaps, [1] * 200, rng=random.Random(7))
    assert set(taken) == {1, 2, 3, 4, 5}


def test_ring_all_and_progressive_modes():
    """Should ring everyone at once for ring-all and add agents one by one for ring-progressively."""
    assert offer_mode("ring_all") == "simultaneous"
    assert offer_mode("ring_progressively") == "progressive"
    assert offer_mode("least_talk_time") == "sequential"
    snaps = agents(3)
    assert choose_agent(QueueSnapshot("q", strategy="ring_all"), snaps) == [1, 2, 3]
    assert choose_agent(QueueSnapshot("q", strategy="ring_progressively"), snaps) == [1, 2, 3]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_only_available_idle_registered_skilled_agents(strategy):
    """Should never return an agent that is on break, busy, unregistered, unskilled or already offered."""
    snaps = [
        AgentSnapshot(id=1),
        AgentSnapshot(id=2, status="on_break"),
        AgentSnapshot(id=3, state="ringing"),
        AgentSnapshot(id=4, registered=False),
        AgentSnapshot(id=5, skill_level=0),
        AgentSnapshot(id=6),
        AgentSnapshot(id=7, status="after_call_work", state="wrap_up"),
        AgentSnapshot(id=8, status="logged_out"),
    ]
    q = QueueSnapshot("q", strategy=strategy, exclude=frozenset({6}))
    assert choose_agent(q, snaps, rng=random.Random(1)) == [1]
    assert choose_agent(q, [], rng=random.Random(1)) == []


def test_server_reachability():
    """Should offer agents on another FreeSWITCH only when that server is reachable from the caller's."""
    snaps = [AgentSnapshot(id=1, server="fs1"), AgentSnapshot(id=2, server="fs2")]
    assert choose_agent(QueueSnapshot("q", caller_server="fs1"), snaps) == [1]
    q = QueueSnapshot("q", caller_server="fs1", reachable_servers=frozenset({"fs2"}))
    assert sorted(choose_agent(q, snaps)) == [1, 2]


def test_unknown_strategy_is_refused():
    """Should refuse an unknown rule name with the list of known ones."""
    with pytest.raises(ValueError, match="unknown distribution strategy 'fastest'.*least_talk_time"):
        check_strategy("fastest")
    with pytest.raises(ValueError):
        choose_agent(QueueSnapshot("q", strategy="nope"), agents(2))


def test_choice_is_deterministic_on_ties():
    """Should break ties by idle time then id, so the same snapshot gives the same order."""
    snaps = [AgentSnapshot(id=3), AgentSnapshot(id=1), AgentSnapshot(id=2)]
    for strategy in ("fewest_calls", "least_talk_time", "longest_idle", "highest_skill"):
        assert choose_agent(QueueSnapshot("q", strategy=strategy), snaps) == [1, 2, 3]


def _random_world(seed: int, n: int) -> tuple[random.Random, list[AgentSnapshot]]:
    """Agents with many ties (counters, idle times, seats, tiers), some not offerable, on four servers."""
    rng = random.Random(seed)
    snaps = [AgentSnapshot(id=i, status=rng.choice(["available"] * 5 + ["on_break"]),
                           state=rng.choice(["idle"] * 5 + ["ringing"]), registered=rng.random() > 0.05,
                           server=f"fs{rng.randint(1, 4)}", calls_today=rng.randint(0, 3),
                           talk_seconds_today=float(rng.randint(0, 3) * 60), idle_since=float(rng.randint(0, 5)),
                           skill_level=rng.randint(0, 3), tier_position=rng.randint(0, 2), seat=rng.randint(0, 9))
             for i in rng.sample(range(1, 10 * n), n)]
    return rng, snaps


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_limited_choice_is_the_full_rankings_head(strategy):
    """Should give, with ``limit``, exactly the first ids of the full order (the ACD asks only for what it rings)."""
    for seed in range(60):
        rng, snaps = _random_world(seed, rng_n := random.Random(seed).randint(0, 80))
        last = rng.choice([None, *(a.id for a in snaps[:5])])
        q = QueueSnapshot("q", strategy=strategy, caller_server=rng.choice(["", "fs1"]),
                          reachable_servers=frozenset({"fs2", "fs3"}), last_agent_id=last,
                          exclude=frozenset(a.id for a in snaps if rng.random() < 0.1))
        for limit in (1, 2, 20, rng_n + 1):
            full = choose_agent(q, snaps, rng=random.Random(seed))
            assert choose_agent(q, snaps, rng=random.Random(seed), limit=limit) == full[:limit], (seed, limit)
