"""Distribution rules: each a pure function from snapshots to the order in which agents are offered a call.

The plan's five (P5 §3.6.5): fewest calls, least talk time (the default: 按通话时间均衡), longest idle,
highest skill level, fixed order (按座席编号: seat 1 always first). Plus mod_callcenter's ring-all,
round-robin, top-down, random and ring-progressively.

``choose_agent(queue, agents, strategy)`` returns agent ids in offer order; ``offer_mode(strategy)`` says
whether they are rung one after another ("sequential"), all at once ("simultaneous") or added one by one
while the earlier ones keep ringing ("progressive"). Only available + idle + registered agents that hold the
queue's skill (and sit on a server the caller can reach) are ever returned.
"""
from __future__ import annotations

import heapq
import random as _random
from dataclasses import dataclass, field
from typing import Callable, Sequence

DEFAULT_STRATEGY = "least_talk_time"


@dataclass(frozen=True)
class AgentSnapshot:
    """What a rule may look at for one agent (copied out of the live state; never mutated)."""

    id: int
    status: str = "available"
    state: str = "idle"
    registered: bool = True
    server: str = ""
    calls_today: int = 0
    talk_seconds_today: float = 0.0
    idle_since: float = 0.0  # epoch seconds when the agent last became idle (lower = idle longer)
    skill_level: int = 1  # level in the queue's skill; 0 = lacks the skill
    tier_position: int = 0  # position in the queue's tier (top-down)
    seat: int = 0  # fixed seat number (按座席编号), e.g. the operator number


@dataclass(frozen=True)
class QueueSnapshot:
    """What a rule may look at for the queue and the call being offered."""

    name: str
    strategy: str = DEFAULT_STRATEGY
    caller_server: str = ""  # "" = any server
    reachable_servers: frozenset[str] = field(default_factory=frozenset)  # servers bridgeable from the caller's
    last_agent_id: int | None = None  # round-robin pointer
    exclude: frozenset[int] = field(default_factory=frozenset)  # agents already offered this call


def eligible(queue: QueueSnapshot, agent: AgentSnapshot) -> bool:
    """Available, idle, registered, skilled, reachable from the caller's server, not yet offered this call."""
    if not (agent.status == "available" and agent.state == "idle" and agent.registered):
        return False
    if agent.skill_level <= 0 or agent.id in queue.exclude:
        return False
    if queue.caller_server and agent.server != queue.caller_server:
        return agent.server in queue.reachable_servers
    return True


def _by(key: Callable[[AgentSnapshot], tuple]) -> Callable[..., list[int]]:
    def rule(queue, agents, rng=None, limit=None):
        # The first ``limit`` of the full ranking: heapq.nsmallest is sorted(...)[:limit] (same ties, stable),
        # O(n) for one agent instead of a sort of every free agent per offer.
        ranked = sorted(agents, key=key) if limit is None else heapq.nsmallest(limit, agents, key=key)
        return [a.id for a in ranked]

    return rule


# Ties fall back to "idle longest, then lowest id" so every rule is deterministic.
def _tie(agent: AgentSnapshot) -> tuple:
    return (agent.idle_since, agent.id)


fewest_calls = _by(lambda a: (a.calls_today, *_tie(a)))
least_talk_time = _by(lambda a: (a.talk_seconds_today, *_tie(a)))
longest_idle = _by(lambda a: _tie(a))
highest_skill = _by(lambda a: (-a.skill_level, *_tie(a)))
fixed_order = _by(lambda a: (a.seat, a.id))
top_down = _by(lambda a: (a.tier_position, a.seat, a.id))
ring_all = _by(lambda a: (a.tier_position, a.seat, a.id))
ring_progressively = _by(lambda a: (a.tier_position, a.seat, a.id))


def round_robin(queue: QueueSnapshot, agents: list[AgentSnapshot], rng=None, limit=None) -> list[int]:
    """Tier order, starting just after the agent offered last in this queue (wrapping around)."""
    ordered = sorted(agents, key=lambda a: (a.tier_position, a.seat, a.id))
    if queue.last_agent_id is None or not ordered:
        return [a.id for a in ordered]
    ids = [a.id for a in ordered]
    if queue.last_agent_id in ids:
        start = ids.index(queue.last_agent_id) + 1
    else:
        # The agent offered last is not eligible now: continue with the next id after it.
        start = next((i for i, agent_id in enumerate(ids) if agent_id > queue.last_agent_id), 0)
    return ids[start:] + ids[:start]


def random_order(queue: QueueSnapshot, agents: list[AgentSnapshot], rng: _random.Random | None = None,
                 limit=None) -> list[int]:
    """A random order; pass a seeded ``random.Random`` for reproducible choices."""
    ids = sorted(a.id for a in agents)
    (rng or _random.Random()).shuffle(ids)
    return ids


STRATEGIES: dict[str, Callable] = {
    "fewest_calls": fewest_calls,
    "least_talk_time": least_talk_time,
    "longest_idle": longest_idle,
    "highest_skill": highest_skill,
    "fixed_order": fixed_order,
    "ring_all": ring_all,
    "round_robin": round_robin,
    "top_down": top_down,
    "random": random_order,
    "ring_progressively": ring_progressively,
}

# Names shown to administrators (zh-CN first).
STRATEGY_LABELS = {
    "fewest_calls": "接话数量均衡 / fewest calls",
    "least_talk_time": "通话时间均衡 / least talk time",
    "longest_idle": "最长空闲优先 / longest idle",
    "highest_skill": "业务级别优先 / highest skill level",
    "fixed_order": "按座席编号 / fixed order",
    "ring_all": "同时振铃 / ring all",
    "round_robin": "轮询 / round robin",
    "top_down": "自上而下 / top down",
    "random": "随机 / random",
    "ring_progressively": "逐个追加振铃 / ring progressively",
}

_MODES = {"ring_all": "simultaneous", "ring_progressively": "progressive"}


def offer_mode(strategy: str) -> str:
    """How the ordered agents are rung: sequential, simultaneous or progressive."""
    check_strategy(strategy)
    return _MODES.get(strategy, "sequential")


def check_strategy(strategy: str) -> str:
    """Return ``strategy`` if known, else raise ValueError naming the known ones."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown distribution strategy {strategy!r}; known: {', '.join(sorted(STRATEGIES))}")
    return strategy


def choose_agent(queue: QueueSnapshot, agents: Sequence[AgentSnapshot], strategy: str | None = None,
                 rng: _random.Random | None = None, limit: int | None = None) -> list[int]:
    """Agent ids in offer order for one call; [] when nobody is eligible.

    ``limit``: only the first ``limit`` ids are wanted (the offer rings no more): the same ids as the full
    order's first ``limit``, cheaper for the ranking rules. Round-robin and random still order everyone
    (random must draw from the rng exactly as before) and are cut afterwards.
    """
    rule = STRATEGIES[check_strategy(strategy or queue.strategy)]
    candidates = [a for a in agents if eligible(queue, a)]
    return rule(queue, candidates, rng, limit=limit)[:limit]
