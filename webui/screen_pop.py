"""The agent desk's screen pop: the caller's number, citizen profile and recent tickets, unmasked only for
the caller of the agent's own queue call (``pop_for``), with each ticket's status named in the user's
language. Used by the desk (webui/blueprints/agent_desk.py), its event stream (webui.desk_feed) and the
chat seat (webui/blueprints/desk_chat.py).
"""
from __future__ import annotations

from flask import g

from caseflow.models import Citizen, Ticket
from caseflow.privacy import mask_name
from webui.app import code_label
from webui.i18n import gettext


def screen_pop(number: str, limit: int = 5, *, full: bool) -> dict:
    """Caller's number, citizen profile and open/recent tickets, for the screen pop.

    ``full`` is for the caller of the agent's own offered or answered queue call (see pop_for); otherwise
    the number is one the agent typed (or a citizen typed into a chat), and whoever holds it is nobody the
    desk may unmask: the name is masked and the address and the ticket list are withheld. No default: every
    caller says which it is."""
    citizen = Citizen.get_or_none(Citizen.phone == number) if number else None
    tickets = []
    if number and full:
        rows = (Ticket.select().where(Ticket.citizen_phone == number).order_by(Ticket.created_at.desc())
                .limit(limit))
        tickets = [{"number": t.number, "type": t.type, "status": t.status, "title": t.title,
                    "created_at": t.created_at.isoformat(timespec="minutes")} for t in rows]
    if citizen is None:
        profile = None
    elif full:
        profile = {"name": citizen.name, "address": citizen.address, "blacklisted": citizen.blacklisted}
    else:
        profile = {"name": mask_name(citizen.name), "address": "", "blacklisted": citizen.blacklisted}
    return {"number": number, "masked": not full, "citizen": profile, "tickets": tickets,
            "open_tickets": [t for t in tickets if t["status"] not in ("approved", "closed", "archived")]}


def caller_of_own_call(agent) -> bool:
    """True when the agent's call number is the caller of a queue call the ACD offered them (ringing or
    answered): the only number the desk unmasks. An outbound call's number is what the agent typed."""
    return bool(agent is not None and agent.call_number and agent.call_direction == "inbound"
                and agent.state in ("reserved", "ringing", "in_call"))


def pop_for(agent) -> dict:
    """The screen pop of the agent's current call, unmasked only for the caller of their own queue call."""
    return screen_pop(agent.call_number if agent is not None else "", full=caller_of_own_call(agent))


def ticket_status_names() -> dict[str, str]:
    """Ticket status codes named in the user's language (the screen pop shows names, never codes)."""
    from caseflow.workflow import STATUS_LABELS

    lang = g.get("lang") or "zh"
    return {code: code_label(code, "status", lang, gettext) for code in STATUS_LABELS}


def labelled(pop: dict | None, names: dict[str, str] | None = None) -> dict | None:
    """The screen pop with each ticket's status name (``names``: ticket_status_names, taken in the request)."""
    if pop is None:
        return None
    names = ticket_status_names() if names is None else names
    for ticket in pop["tickets"]:
        ticket["status_label"] = names.get(ticket["status"], "")
    return pop
