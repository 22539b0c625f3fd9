"""A ticket's history as read back: the staff timeline and the citizen's status query (IVR, website)."""
from __future__ import annotations

import hmac
import logging
import re
from typing import Optional

from caseflow import pins
from caseflow import workflow as wf
from caseflow.models import Ticket, TicketHistory
from caseflow.values import parse_number, TicketInputError

log = logging.getLogger(__name__)


# ---- the citizen's status query (IVR, portal) ----------------------------------------------------
def status_query(number, secret: str, lang: str = "zh") -> Optional[dict]:
    """Status of a ticket for a citizen who gives its number plus their phone number or the PIN.

    Returns None for a wrong pair exactly as for an unknown number, so guessing numbers reveals nothing
    (callers should also limit attempts). A merged duplicate reports its master's progress. The PIN is checked
    against its keyed hash under the process's installed keys (caseflow.pins), and hashed again under the
    current key when it was stored plain or under a previous one.
    """
    try:
        number = parse_number(number)
    except TicketInputError:
        return None
    secret = re.sub(r"[^0-9]", "", str(secret or ""))
    ticket = Ticket.get_or_none(Ticket.number == number)
    if not secret:
        return None
    phone = re.sub(r"[^0-9]", "", ticket.citizen_phone) if ticket is not None else ""
    by_phone = bool(phone) and hmac.compare_digest(secret, phone)
    # The PIN is checked (and its hash computed) even when the phone matched: the same time either way.
    if not (pins.verify(ticket, secret) or by_phone):
        return None
    shown = ticket.master if ticket.status == wf.MERGED and ticket.master_id else ticket
    return {"number": ticket.number, "status": shown.status, "citizen": wf.citizen_status(shown.status),
            "label": wf.citizen_words(shown.status, lang),
            "reply": shown.reply if shown.status in (wf.APPROVED, wf.ANSWERED, wf.CALLED_BACK, wf.CLOSED,
                                                      wf.ARCHIVED) else ""}


def timeline(ticket: Ticket) -> list[TicketHistory]:
    """The ticket's history, oldest first."""
    return list(TicketHistory.select().where(TicketHistory.ticket == ticket).order_by(TicketHistory.id))
