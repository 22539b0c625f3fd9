"""Agent state machine: one declared table, refused transitions say why."""
import pytest

from acd import state
from acd.state import TransitionRefused, transition


def run(events, start=("logged_out", "idle")):
    status, st = start
    for event in events:
        status, st = transition(status, st, event)
    return status, st


def test_full_inbound_cycle():
    """Should go login -> ready -> reserved -> ringing -> in call -> wrap-up -> available idle."""
    assert run(["login"]) == ("on_break", "idle")
    assert run(["login", "ready", "reserve", "ring"]) == ("available", "ringing")
    assert run(["login", "ready", "reserve", "ring", "answer"]) == ("available", "in_call")
    assert run(["login", "ready", "reserve", "ring", "answer", "call_end"]) == ("after_call_work", "wrap_up")
    assert run(["login", "ready", "reserve", "ring", "answer", "call_end", "wrap_up_done"]) == ("available", "idle")


def test_offer_failed_returns_to_idle():
    """Should return an agent whose offer rang out to idle, from reserved or ringing."""
    assert run(["login", "ready", "reserve", "offer_failed"]) == ("available", "idle")
    assert run(["login", "ready", "reserve", "ring", "offer_failed"]) == ("available", "idle")


def test_break_during_call_is_pending():
    """Should keep a break chosen during a call and apply it when the call ends (no wrap-up)."""
    s = run(["login", "ready", "reserve", "ring", "answer", "not_ready"])
    assert s == ("on_break", "in_call")
    assert transition(*s, "call_end") == ("on_break", "idle")


def test_logout_during_call_is_pending():
    """Should log the agent out once the call ends when they logged out during it."""
    s = run(["login", "ready", "reserve", "ring", "answer", "logout"])
    assert transition(*s, "call_end") == ("logged_out", "idle")


def test_refused_transitions_raise_clear_errors():
    """Should refuse reserving a busy or unavailable agent, and logging out while ringing, with reasons."""
    with pytest.raises(TransitionRefused, match="only an available, idle agent"):
        transition("on_break", "idle", "reserve")
    with pytest.raises(TransitionRefused, match="only an available, idle agent"):
        transition("available", "in_call", "reserve")
    with pytest.raises(TransitionRefused, match="decline it first"):
        transition("available", "ringing", "logout")
    with pytest.raises(TransitionRefused, match="already logged in"):
        transition("available", "idle", "login")
    with pytest.raises(TransitionRefused):
        transition("available", "idle", "call_end")


def test_unknown_names_are_rejected():
    """Should reject unknown statuses, states and events with ValueError naming them."""
    with pytest.raises(ValueError, match="status 'busy'"):
        transition("busy", "idle", "ready")
    with pytest.raises(ValueError, match="state 'talking'"):
        transition("available", "talking", "ready")
    with pytest.raises(ValueError, match="event 'explode'"):
        transition("available", "idle", "explode")


def test_every_row_lands_on_known_names():
    """Should only declare transitions into known statuses and states."""
    for (status, st, event), (to_status, to_state) in state.TABLE.items():
        assert status in state.STATUSES and to_status in state.STATUSES
        assert st in state.STATES and to_state in state.STATES
        assert event in state.EVENTS


def test_no_state_is_a_trap():
    """Should offer a way back to idle from every busy state (nothing can stay reserved or ringing)."""
    for status in state.STATUSES:
        for st in ("reserved", "ringing"):
            assert state.allowed(status, st, "offer_failed"), (status, st)
        for st in ("in_call",):
            assert state.allowed(status, st, "call_end"), (status, st)


def test_is_offerable_requires_registration():
    """Should not offer an available idle agent whose phone is unregistered."""
    assert state.is_offerable("available", "idle", True)
    assert not state.is_offerable("available", "idle", False)
    assert not state.is_offerable("on_break", "idle", True)
