"""Attended transfers (咨询转) in progress: which consultation leg belongs to which agent's call, and what
the switch has said about it so far.

Pure bookkeeping, no I/O: the dispatcher feeds it the consultation leg's answer and hang-up (in any order,
duplicates included) and the agent controls ask it whether a transfer can be completed or cancelled.

How FreeSWITCH's ``att_xfer`` (run on the agent's leg) ends, which is what the outcomes below name:
  * the agent's leg hangs up while the target is up: the caller is bridged to the target ("completed");
  * the target hangs up (or is hung up: "cancelled") while the agent is up: the agent is bridged back to
    the caller ("target_hung_up" / "cancelled");
  * the target never answers: nothing changes, the agent still talks to the caller ("no_answer");
  * the agent hangs up before the target answered: the consultation is dropped ("agent_hung_up");
  * the caller hangs up meanwhile: there is nobody left to transfer ("caller_hung_up").
"""
from __future__ import annotations

from dataclasses import dataclass

from acd.legs import Legs

OUTCOMES = ("completed", "cancelled", "target_hung_up", "no_answer", "agent_hung_up", "caller_hung_up", "failed",
            "lost")


@dataclass
class Consultation:
    """One attended transfer: the consultation leg (its origination_uuid) and the call it belongs to."""

    leg: str
    agent_id: int
    call_uuid: str  # the caller's channel
    target: str  # what the agent chose, e.g. "agent:1002" (shown on the desk, kept in the action log)
    started: float  # monotonic
    answered: bool = False
    closing: str = ""  # "completing" / "cancelling": the agent asked, the switch's answer is on its way

    @property
    def state(self) -> str:
        return "answered" if self.answered else "ringing"

    def notice(self, state: str | None = None, outcome: str = "") -> dict:
        """The desk's view of this consultation (an SSE notice's fields)."""
        data = {"agent_id": self.agent_id, "call_uuid": self.call_uuid, "leg": self.leg,
                "target": self.target, "state": state or self.state}
        if outcome:
            data["outcome"] = outcome
        return data

    def ending(self) -> str:
        """The outcome when the consultation leg hangs up on its own account."""
        if self.closing == "cancelling":
            return "cancelled"
        return "target_hung_up" if self.answered else "no_answer"


class Consultations:
    """The consultations in progress, by consultation leg; at most one per agent.

    The legs are held in the ACD's one leg registry (``legs``, acd.legs), shared with the callers and the
    agents' legs; ``by_leg`` is its read-only view of the consultation legs."""

    def __init__(self, legs: Legs | None = None):
        self.legs = legs if legs is not None else Legs()
        self.by_leg = self.legs.of_kind(Consultation)

    def __contains__(self, leg: str) -> bool:
        return leg in self.by_leg

    def start(self, leg: str, agent_id: int, call_uuid: str, target: str, now: float) -> Consultation:
        if self.for_agent(agent_id) is not None:
            raise ValueError(f"agent {agent_id} already has a consultation in progress")
        consult = Consultation(leg=leg, agent_id=agent_id, call_uuid=call_uuid, target=target, started=now)
        self.legs.claim(leg, consult)
        return consult

    def for_agent(self, agent_id: int) -> Consultation | None:
        return next((c for c in self.by_leg.values() if c.agent_id == agent_id), None)

    def answered(self, leg: str) -> Consultation | None:
        """Mark the leg answered; the consultation only the first time (a duplicate changes nothing)."""
        consult = self.by_leg.get(leg)
        if consult is None or consult.answered:
            return None
        consult.answered = True
        return consult

    def end(self, leg: str) -> Consultation | None:
        """Forget the consultation; it is returned only by the first call (later events change nothing)."""
        consult = self.by_leg.get(leg)
        if consult is not None:
            self.legs.release(leg, consult)
        return consult

    def stale(self, live_channels: set[str], now: float, grace: float) -> list[Consultation]:
        """Consultations whose leg the switch no longer has (a hang-up event lost, an originate that never
        created its channel), once they are older than ``grace`` seconds."""
        return [c for c in self.by_leg.values() if c.leg not in live_channels and now - c.started >= grace]
