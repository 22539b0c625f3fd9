"""The leg registry (acd.legs): one owner per leg, the claim and release rules, the views per kind."""
from __future__ import annotations

import pytest

from acd.consultation import Consultation, Consultations
from acd.legs import AgentCall, Legs, LegTaken


class Caller:
    """Stands for acd.waiting.Waiter (whose module needs gevent): an owner compared by identity."""


def _consultation(leg: str = "consult-1") -> Consultation:
    return Consultation(leg=leg, agent_id=7, call_uuid="caller-1", target="agent:1002", started=0.0)


def test_each_leg_has_one_owner_of_its_kind():
    """Should tell each leg's owner, the agent of an agent's leg, and nothing for a leg nobody holds."""
    legs, caller, consult = Legs(), Caller(), _consultation()
    legs.claim("caller-1", caller)
    legs.claim("leg-1", AgentCall(7))
    legs.claim("consult-1", consult)
    assert legs.owner_of("caller-1") is caller and legs.owner_of("consult-1") is consult
    assert legs.owner_of("leg-1") == AgentCall(7) and legs.agent_of("leg-1") == 7
    assert legs.agent_of("caller-1") is None and legs.agent_of("consult-1") is None
    assert legs.owner_of("nobody") is None and legs.agent_of("nobody") is None
    assert "leg-1" in legs and "nobody" not in legs and len(legs) == 3


def test_claim_again_by_the_same_owner_changes_nothing():
    """Should accept a second claim by the same owner (a reload, reconciliation re-adopting an agent's leg):
    an AgentCall is the same owner by agent id, a caller or consultation as the same object."""
    legs, caller = Legs(), Caller()
    legs.claim("leg-1", AgentCall(7))
    legs.claim("leg-1", AgentCall(7))
    legs.claim("caller-1", caller)
    legs.claim("caller-1", caller)
    assert len(legs) == 2 and dict(legs.of_kind(AgentCall)) == {"leg-1": AgentCall(7)}


@pytest.mark.parametrize("second", [AgentCall(8), Caller(), _consultation("leg-1")])
def test_claim_by_another_owner_is_refused_and_keeps_the_first(second):
    """Should refuse a leg another owner holds, whatever its kind, and leave it to the first."""
    legs = Legs()
    legs.claim("leg-1", AgentCall(7))
    with pytest.raises(LegTaken, match="leg leg-1 is held by"):
        legs.claim("leg-1", second)
    assert legs.agent_of("leg-1") == 7 and len(legs) == 1


def test_a_caller_is_not_the_same_owner_as_an_equal_looking_one():
    """Should compare callers and consultations by identity: two consultations with equal fields are two."""
    legs = Legs()
    legs.claim("consult-1", _consultation())
    with pytest.raises(LegTaken):
        legs.claim("consult-1", _consultation())


def test_release_only_by_the_owner():
    """Should release a leg for its owner (True), refuse another owner (False, the leg kept), and treat the
    release of a leg nobody holds as done (False), however often it is reported."""
    legs, caller = Legs(), Caller()
    legs.claim("caller-1", caller)
    legs.claim("leg-1", AgentCall(7))
    assert legs.release("caller-1", Caller()) is False and legs.owner_of("caller-1") is caller
    assert legs.release("leg-1", AgentCall(8)) is False and legs.agent_of("leg-1") == 7
    assert legs.release("caller-1", caller) is True and legs.owner_of("caller-1") is None
    assert legs.release("leg-1", AgentCall(7)) is True
    assert legs.release("leg-1", AgentCall(7)) is False and legs.release("nobody", caller) is False
    assert len(legs) == 0


def test_a_released_leg_may_be_claimed_by_a_new_owner():
    """Should let a new owner claim a leg once its former owner released it (a caller handed back into a
    queue: its new Waiter takes the channel over)."""
    legs, first, second = Legs(), Caller(), Caller()
    legs.claim("caller-1", first)
    legs.release("caller-1", first)
    legs.claim("caller-1", second)
    assert legs.owner_of("caller-1") is second
    assert legs.release("caller-1", first) is False and legs.owner_of("caller-1") is second


def test_views_per_kind_are_live_and_read_only():
    """Should show each kind's legs in a view that follows claims and releases and cannot be written."""
    legs, caller = Legs(), Caller()
    callers = legs.of_kind(Caller)
    agents = legs.of_kind(AgentCall)
    assert dict(callers) == {} and dict(agents) == {}
    legs.claim("caller-1", caller)
    legs.claim("leg-1", AgentCall(7))
    assert dict(callers) == {"caller-1": caller} and dict(agents) == {"leg-1": AgentCall(7)}
    assert callers.get("leg-1") is None and "caller-1" not in agents
    with pytest.raises(TypeError):
        callers["caller-2"] = Caller()  # type: ignore[index]
    legs.release("caller-1", caller)
    assert dict(callers) == {} and len(agents) == 1


def test_a_leg_needs_a_uuid():
    """Should refuse a claim without a channel uuid with a clear error."""
    with pytest.raises(ValueError, match="needs its channel uuid"):
        Legs().claim("", AgentCall(7))


def test_consultations_share_the_registry():
    """Should keep consultation legs in the registry they are given, beside the callers and agents' legs,
    and refuse a consultation on a leg someone else holds."""
    legs = Legs()
    legs.claim("leg-1", AgentCall(7))
    consultations = Consultations(legs)
    consult = consultations.start("consult-1", 7, "caller-1", "agent:1002", now=0.0)
    assert legs.owner_of("consult-1") is consult and dict(consultations.by_leg) == {"consult-1": consult}
    with pytest.raises(LegTaken):
        consultations.start("leg-1", 8, "caller-2", "agent:1003", now=0.0)
    assert consultations.end("consult-1") is consult and "consult-1" not in legs
    assert consultations.end("consult-1") is None and legs.agent_of("leg-1") == 7
