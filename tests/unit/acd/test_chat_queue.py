"""Chat distribution (acd.chat_queue): who may take a chat, capacity, and the order of the shared rules."""
from __future__ import annotations

import random

from acd.chat_queue import (DEFAULT_CAPACITY, MAX_CAPACITY, ChatLoad, capacity_error, chat_eligible,
                            choose_chat_agent, has_room)
from acd.strategies import AgentSnapshot, QueueSnapshot


def agent(agent_id, **fields):
    return AgentSnapshot(id=agent_id, **fields)


def test_ready_agent_in_a_call_may_take_a_chat_but_not_one_on_break_or_unskilled():
    """Should offer chats to ready agents whatever their phone does, never to agents on break, in wrap-up,
    logged out or without the queue's skill."""
    load = ChatLoad(0, 2)
    assert chat_eligible(agent(1, state="in_call", registered=False), load)
    assert chat_eligible(agent(1, state="ringing"), load)
    assert not chat_eligible(agent(1, status="on_break"), load)
    assert not chat_eligible(agent(1, status="after_call_work", state="wrap_up"), load)
    assert not chat_eligible(agent(1, status="logged_out"), load)
    assert not chat_eligible(agent(1, skill_level=0), load)


def test_capacity_counts_offered_and_active_chats_with_a_default_of_two():
    """Should stop offering at the capacity, use the default 2 for an agent with no setting, and let 0 mean
    no chats at all."""
    assert DEFAULT_CAPACITY == 2
    assert has_room(None) and has_room(ChatLoad(1, 2)) and not has_room(ChatLoad(2, 2))
    assert not has_room(ChatLoad(0, 0))
    queue = QueueSnapshot("chat")
    agents = [agent(1), agent(2), agent(3)]
    loads = {1: ChatLoad(2, 2), 2: ChatLoad(0, 0)}
    assert choose_chat_agent(queue, agents, loads) == [3]


def test_fewer_open_chats_first_and_the_queue_rule_breaks_ties():
    """Should put the agent with fewer open chats first, and order agents with equal counts by the queue's
    rule (here fewest calls, then highest skill) exactly as for calls."""
    queue = QueueSnapshot("chat", strategy="fewest_calls")
    agents = [agent(1, calls_today=1), agent(2, calls_today=9), agent(3, calls_today=5)]
    loads = {1: ChatLoad(1, 3), 2: ChatLoad(0, 3), 3: ChatLoad(0, 3)}
    assert choose_chat_agent(queue, agents, loads) == [3, 2, 1]
    assert choose_chat_agent(QueueSnapshot("chat", strategy="highest_skill"),
                             [agent(1, skill_level=2), agent(2, skill_level=8)], {}) == [2, 1]


def test_exclusions_round_robin_and_random_follow_the_shared_rules():
    """Should skip agents already offered this chat, continue after the last agent in round robin, and be
    reproducible with a seeded random order; the caller's server never matters for a chat."""
    agents = [agent(1, server="fs1"), agent(2, server="fs2"), agent(3, server="fs3")]
    assert choose_chat_agent(QueueSnapshot("chat", exclude=frozenset({1}), caller_server="fs1"), agents, {}) == [2, 3]
    assert choose_chat_agent(QueueSnapshot("chat", strategy="round_robin", last_agent_id=2), agents, {}) == [3, 1, 2]
    first = choose_chat_agent(QueueSnapshot("chat", strategy="random"), agents, {}, rng=random.Random(7))
    again = choose_chat_agent(QueueSnapshot("chat", strategy="random"), agents, {}, rng=random.Random(7))
    assert first == again and sorted(first) == [1, 2, 3]


def test_capacity_values_an_agent_may_choose():
    """Should accept 0..MAX_CAPACITY and refuse the rest with a reason in both languages."""
    assert capacity_error("0") == "" and capacity_error(str(MAX_CAPACITY)) == "" and capacity_error(3) == ""
    for bad in ("-1", str(MAX_CAPACITY + 1), "two", "", "1.5", "9" * 40):
        assert "0 to" in capacity_error(bad)
