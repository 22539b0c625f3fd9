"""Who owns each call leg the ACD follows: one registry, so an event for a channel has one place to ask.

Three kinds of owner, each a distinct channel (issue 10 item 2, as switchio's listener keeps its calls):
  * a waiting caller's channel -> its ``Waiter`` (acd.waiting), from entering a queue to leaving it;
  * an agent's leg -> ``AgentCall(agent_id)``, from the offer (acd.offers) or the desk's own call
    (acd.agent_controls ``dial``) to the call's end, the failed offer or the lost ring-all race;
  * a consultation leg of an attended transfer -> its ``Consultation`` (acd.consultation).
The event handlers (acd.dispatcher ``on_channel_*``) dispatch on ``owner_of(uuid)``; the parts that add or
drop a leg go through ``claim`` and ``release``.

Rules (pure bookkeeping, no I/O):
  * a second claim by the same owner changes nothing (a reload and reconciliation re-adopt the agents'
    legs they already hold); a claim by another owner raises ``LegTaken`` and keeps the first;
  * a release names its owner: one by another owner is refused (False), so a late path cannot drop the
    leg its successor holds; the release of a leg nobody holds is a no-op (False), because one end is
    reported by several paths (the hang-up event, reconciliation, the caller's greenlet's ``finally``).
``AgentCall`` is equal by agent id; every other owner is the same owner only as the same object.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping


class LegTaken(ValueError):
    """A leg already held by another owner was claimed."""


@dataclass(frozen=True)
class AgentCall:
    """The owner of an agent's leg: the agent whose phone it rings."""

    agent_id: int


def _same(held: object, owner: object) -> bool:
    return held is owner or (type(held) is AgentCall and held == owner)


def _describe(owner: object) -> str:
    # A Waiter's repr spells out its session and queue entry: the kind is what a reader of the error needs.
    return repr(owner) if type(owner) is AgentCall else type(owner).__name__


class Legs:
    """Call leg uuid -> its one owner, with a live read-only view per kind of owner."""

    def __init__(self):
        self._owners: dict[str, object] = {}
        self._by_kind: dict[type, dict[str, object]] = {}

    def claim(self, uuid: str, owner: object) -> None:
        """Make ``owner`` the leg's owner (again: nothing changes); LegTaken when another owner holds it."""
        if not uuid:
            raise ValueError("a leg needs its channel uuid")
        held = self._owners.get(uuid)
        if held is not None:
            if _same(held, owner):
                return
            raise LegTaken(f"leg {uuid} is held by {_describe(held)}, not claimable by {_describe(owner)}")
        self._owners[uuid] = owner
        self._kind(type(owner))[uuid] = owner

    def release(self, uuid: str, owner: object) -> bool:
        """Forget the leg if ``owner`` holds it (True); False when nobody or another owner does."""
        held = self._owners.get(uuid)
        if held is None or not _same(held, owner):
            return False
        del self._owners[uuid]
        del self._by_kind[type(held)][uuid]
        return True

    def owner_of(self, uuid: str) -> object | None:
        """The leg's owner (a Waiter, an AgentCall or a Consultation), or None when the ACD does not follow it."""
        return self._owners.get(uuid)

    def agent_of(self, uuid: str) -> int | None:
        """The agent whose leg this is, or None."""
        held = self._owners.get(uuid)
        return held.agent_id if type(held) is AgentCall else None

    def of_kind(self, kind: type) -> Mapping[str, object]:
        """The legs held by owners of exactly ``kind``: a live read-only view (uuid -> owner)."""
        return MappingProxyType(self._kind(kind))

    def _kind(self, kind: type) -> dict[str, object]:
        return self._by_kind.setdefault(kind, {})

    def __contains__(self, uuid: str) -> bool:
        return uuid in self._owners

    def __len__(self) -> int:
        return len(self._owners)
