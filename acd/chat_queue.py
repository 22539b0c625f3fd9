"""Online chat distribution (P2 §5.4, 文字交谈): who may take one more chat, and in which order agents are
offered a waiting chat. Pure: no I/O; acd.chat does the database work around it.

The order comes from the same rules as calls (acd.strategies.choose_agent on the same snapshots); only who is
eligible differs. A chat needs no free phone: an agent is eligible when ready ("available", whatever the
phone is doing), holding the queue's skill and under their chat capacity (offered + active chats). Among the
eligible, fewer open chats come first; the queue's rule orders agents with the same count. A chat is offered
to one agent at a time (ring-all queues too: a text cannot be "answered" by two).

Capacity policy (documented in README): chats never block calls. A phone call is offered to an agent in
chats exactly as if they had none (the call dispatcher does not look at chats), and an agent in a call still
receives chats up to their capacity; an agent who wants no chats sets the capacity to 0.
"""
from __future__ import annotations

import dataclasses
import random as _random
from dataclasses import dataclass
from typing import Mapping, Sequence

from acd.strategies import AgentSnapshot, QueueSnapshot, choose_agent

DEFAULT_CAPACITY = 2
MAX_CAPACITY = 10


@dataclass(frozen=True)
class ChatLoad:
    """An agent's chats: how many are open (offered or active) and how many they take."""

    open_chats: int = 0
    capacity: int = DEFAULT_CAPACITY


def capacity_error(value) -> str:
    """'' when ``value`` is a capacity an agent may choose (0..MAX_CAPACITY), else why not (zh / en)."""
    text = str(value).strip()
    if not text.isdigit() or len(text) > 3 or int(text) > MAX_CAPACITY:
        return f"同时交谈数应为 0 到 {MAX_CAPACITY} / the number of chats must be 0 to {MAX_CAPACITY}"
    return ""


def has_room(load: ChatLoad | None) -> bool:
    """True while the agent has fewer open chats than their capacity (no load row = the default)."""
    load = load or ChatLoad()
    return load.open_chats < load.capacity


def chat_eligible(agent: AgentSnapshot, load: ChatLoad | None) -> bool:
    """Ready (available, any phone state), skilled for the queue, under capacity."""
    return agent.status == "available" and agent.skill_level > 0 and has_room(load)


def choose_chat_agent(queue: QueueSnapshot, agents: Sequence[AgentSnapshot], loads: Mapping[int, ChatLoad],
                      strategy: str | None = None, rng: _random.Random | None = None) -> list[int]:
    """Agent ids in offer order for one waiting chat; [] when nobody may take it.

    The phone fields that do not matter for a chat (phone state, registration, server) are neutralised
    before the shared rule runs, so ``choose_agent``'s own eligibility keeps only the exclusions.
    """
    fit = [dataclasses.replace(a, state="idle", registered=True, server="") for a in agents
           if chat_eligible(a, loads.get(a.id))]
    order = choose_agent(dataclasses.replace(queue, caller_server=""), fit, strategy, rng)
    count = {a: (loads.get(a) or ChatLoad()).open_chats for a in order}
    return sorted(order, key=lambda agent_id: count[agent_id])  # stable: the rule breaks equal counts
