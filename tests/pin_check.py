"""What a citizen does with a receipt's query PIN, for the tests: read it from the text and check it against the
ticket's stored keyed hash (caseflow.pins), which never holds the PIN itself."""
from __future__ import annotations

import re

_PIN = re.compile(r"(?<![0-9])[0-9]{6}(?![0-9])")


def pin_in(text: str, ticket) -> str:
    """The one 6-digit PIN ``text`` carries, asserted to be ``ticket``'s (and not what the ticket stores)."""
    from caseflow import pins
    from caseflow.models import Ticket

    found = _PIN.findall(text)
    assert len(found) == 1, f"one 6-digit PIN expected in {text!r}"
    stored = Ticket.get_by_id(ticket.id).query_pin
    assert found[0] not in stored and stored.startswith(pins.PIN_FORM + "$")
    assert pins.verify(Ticket.get_by_id(ticket.id), found[0]), "the receipt's PIN does not open its ticket"
    return found[0]
