"""The agent state machine: status (what the agent chose) and state (what the phone is doing) as one table.

Pure: no I/O. ``transition(status, state, event)`` returns the next (status, state) or raises
``TransitionRefused`` saying why. The dispatcher, agent controls and team-lead actions all go through it,
so no code path can leave an agent in a combination the table does not declare.

Status: logged_out, available, on_break (临时闭席, with a reason), after_call_work.
State:  idle, reserved (chosen for a call, phone not yet ringing), ringing, in_call, wrap_up.

A status change during a call (not ready, log out) is kept and takes effect when the call ends, which is
what agents expect ("break after this call").
"""
from __future__ import annotations

from dataclasses import dataclass

STATUSES = ("logged_out", "available", "on_break", "after_call_work")
STATES = ("idle", "reserved", "ringing", "in_call", "wrap_up")

# Events and what they mean:
#   login        agent logs in (starts on break: "logged in, not ready yet")
#   ready        agent is ready for calls (also ends wrap-up early, cancels a pending break)
#   not_ready    agent takes a break (reason carried by the caller of transition())
#   logout       agent logs out
#   reserve      dispatcher picked this agent for a call
#   ring         the agent's phone is ringing
#   answer       the agent answered (inbound offer or their own outbound call)
#   offer_failed no answer / refused / channel gone before answer
#   call_end     the call the agent held ended
#   wrap_up_done wrap-up time is over
#   dial         the agent starts an outbound call (their own phone rings first)
EVENTS = ("login", "ready", "not_ready", "logout", "reserve", "ring", "answer", "offer_failed",
          "call_end", "wrap_up_done", "dial")


class TransitionRefused(ValueError):
    """The event is not allowed in the agent's current status and state."""

    def __init__(self, status: str, state: str, event: str, why: str = ""):
        self.status, self.state, self.event = status, state, event
        message = f"agent is {status}/{state}: {event!r} is not allowed"
        super().__init__(f"{message} ({why})" if why else message)


@dataclass(frozen=True)
class Transition:
    """One row of the table: from (status, state) on event to (status, state)."""

    status: str
    state: str
    event: str
    to_status: str
    to_state: str


def _rows() -> list[Transition]:
    rows: list[Transition] = []

    def add(status, state, event, to_status, to_state):
        rows.append(Transition(status, state, event, to_status, to_state))

    add("logged_out", "idle", "login", "on_break", "idle")
    # Ready / not ready / log out while idle or in wrap-up.
    for status in ("on_break", "available"):
        add(status, "idle", "ready", "available", "idle")
        add(status, "idle", "not_ready", "on_break", "idle")
        add(status, "idle", "logout", "logged_out", "idle")
    add("after_call_work", "wrap_up", "ready", "available", "idle")
    add("after_call_work", "wrap_up", "not_ready", "on_break", "idle")
    add("after_call_work", "wrap_up", "logout", "logged_out", "idle")
    add("after_call_work", "wrap_up", "wrap_up_done", "available", "idle")
    # Offer cycle: only an available, idle agent can be reserved.
    add("available", "idle", "reserve", "available", "reserved")
    for status in ("available", "on_break", "logged_out", "after_call_work"):
        add(status, "reserved", "ring", status, "ringing")
        add(status, "reserved", "offer_failed", status, "idle")
        add(status, "ringing", "offer_failed", status, "idle")
        add(status, "reserved", "answer", status, "in_call")  # answer seen before the ringing event
        add(status, "ringing", "answer", status, "in_call")
        # Ring-all: this phone answered too, but FreeSWITCH bridged another (LOSE_RACE): no call was had.
        add(status, "in_call", "offer_failed", "available" if status == "after_call_work" else status, "idle")
    # A break chosen while the phone rings applies once the offer is over (the offer itself continues).
    for state in ("reserved", "ringing"):
        add("available", state, "not_ready", "on_break", state)
        add("on_break", state, "ready", "available", state)
    # During a call: status changes are pending until the call ends.
    add("available", "in_call", "not_ready", "on_break", "in_call")
    add("available", "in_call", "logout", "logged_out", "in_call")
    add("on_break", "in_call", "ready", "available", "in_call")
    add("on_break", "in_call", "not_ready", "on_break", "in_call")
    add("on_break", "in_call", "logout", "logged_out", "in_call")
    add("after_call_work", "in_call", "ready", "available", "in_call")
    add("after_call_work", "in_call", "not_ready", "on_break", "in_call")
    add("after_call_work", "in_call", "logout", "logged_out", "in_call")
    add("logged_out", "in_call", "ready", "available", "in_call")
    add("available", "in_call", "call_end", "after_call_work", "wrap_up")
    add("after_call_work", "in_call", "call_end", "after_call_work", "wrap_up")
    add("on_break", "in_call", "call_end", "on_break", "idle")
    add("logged_out", "in_call", "call_end", "logged_out", "idle")
    # Outbound calls: from idle or wrap-up, whatever the status (agents call out while not ready).
    for status in ("available", "on_break"):
        add(status, "idle", "dial", status, "ringing")
    add("after_call_work", "wrap_up", "dial", "after_call_work", "ringing")
    return rows


TABLE: dict[tuple[str, str, str], tuple[str, str]] = {
    (row.status, row.state, row.event): (row.to_status, row.to_state) for row in _rows()
}

_WHY = {
    "reserve": "only an available, idle agent can be offered a call",
    "login": "the agent is already logged in",
    "logout": "the phone is ringing with an offer; decline it first",
    "answer": "there is no offer or call to answer",
    "ring": "there is no reserved offer",
    "call_end": "the agent holds no call",
    "offer_failed": "there is no pending offer",
    "wrap_up_done": "the agent is not in wrap-up",
    "dial": "the agent is busy with another call or logged out",
    "ready": "log in first",
    "not_ready": "log in first",
}


def transition(status: str, state: str, event: str) -> tuple[str, str]:
    """Next (status, state) for ``event``; raises TransitionRefused (with the reason) when not allowed."""
    if status not in STATUSES:
        raise ValueError(f"unknown agent status {status!r}")
    if state not in STATES:
        raise ValueError(f"unknown agent state {state!r}")
    if event not in EVENTS:
        raise ValueError(f"unknown agent event {event!r}")
    try:
        return TABLE[(status, state, event)]
    except KeyError:
        raise TransitionRefused(status, state, event, _WHY.get(event, "")) from None


def allowed(status: str, state: str, event: str) -> bool:
    """True if ``event`` is declared for (status, state)."""
    return (status, state, event) in TABLE


def is_offerable(status: str, state: str, registered: bool) -> bool:
    """An agent can be offered a call only when available, idle and with a registered phone."""
    return status == "available" and state == "idle" and registered


def holds_call(state: str) -> bool:
    """True while the agent's phone is busy with a call (offer or conversation)."""
    return state in ("reserved", "ringing", "in_call")
