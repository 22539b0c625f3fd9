"""The attended-transfer bookkeeping (acd.consultation): pure, events in any order."""
from __future__ import annotations

import pytest

from acd.consultation import Consultations


def _one():
    consultations = Consultations()
    consult = consultations.start("leg-1", 7, "caller-1", "agent:1002", now=100.0)
    return consultations, consult


def test_answer_is_taken_once_and_hang_up_ends_once():
    """Should report the first answer only, forget the consultation on its end, and ignore what comes after
    (a duplicate hang-up, an answer after the hang-up)."""
    consultations, consult = _one()
    assert consultations.for_agent(7) is consult and consult.state == "ringing" and "leg-1" in consultations
    assert consultations.answered("leg-1") is consult and consult.state == "answered"
    assert consultations.answered("leg-1") is None
    assert consult.ending() == "target_hung_up"
    assert consultations.end("leg-1") is consult
    assert consultations.end("leg-1") is None and consultations.answered("leg-1") is None
    assert consultations.for_agent(7) is None and "leg-1" not in consultations


def test_outcome_of_a_hang_up():
    """Should name how the leg's hang-up ends it: never answered, cancelled by the agent, or the target."""
    _consultations, consult = _one()
    assert consult.ending() == "no_answer"
    consult.closing = "cancelling"
    assert consult.ending() == "cancelled"
    assert consult.notice("ended", "cancelled") == {"agent_id": 7, "call_uuid": "caller-1", "leg": "leg-1",
                                                   "target": "agent:1002", "state": "ended",
                                                   "outcome": "cancelled"}


def test_one_consultation_per_agent_and_stale_legs():
    """Should refuse a second consultation for the same agent, and list legs the switch no longer has once
    they are older than the grace time."""
    consultations, consult = _one()
    with pytest.raises(ValueError):
        consultations.start("leg-2", 7, "caller-1", "number:123", now=101.0)
    consultations.start("leg-3", 8, "caller-2", "number:123", now=110.0)
    assert consultations.stale({"leg-3"}, now=105.0, grace=10.0) == []
    assert consultations.stale({"leg-3"}, now=111.0, grace=10.0) == [consult]
    assert [c.leg for c in consultations.stale(set(), now=121.0, grace=10.0)] == ["leg-1", "leg-3"]
