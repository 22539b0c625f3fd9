"""A voicemail whose ticket's transaction dies with its database connection (PostgreSQL terminating it) after
the store has taken and indexed the message: the runner tries the step again on a new connection, and that
try must find the message already stored for the call and file its ticket once, not look for the caller's
file where it was and file nothing ("recording file missing": the caller listed, the message on no desk)."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.db import database
from tests.fakeswitch import Press, Speak, WaitFor
from tests.integration.product.connection_lost import call_with_the_connection_lost, terminate_before

CALLER = "13912340003"
# The human menu (open around the clock with the shipped tree), 0: leave a message.
MESSAGE = [Press("1"), Press("0"), Speak(3), Press("#"), WaitFor("playback", "message_saved")]


# The statements terminated: the message's ticket insert (inside the ticket's transaction, after the store
# indexed the recording: nothing of the ticket committed), and the insert that lists the caller for a call-back
# (after the ticket's commit: the retry must find that ticket, not file a second one, and still list the caller).
FILING_THE_TICKET = ('INSERT INTO "ticket" (', "Voicemail")
LISTING_THE_CALLER = ('INSERT INTO "missed_call" (', CALLER)


@pytest.fixture
def terminate_at(monkeypatch, request) -> list:
    """The first statement with ``request.param``'s text and parameter has its backend terminated."""
    text, parameter = request.param
    return terminate_before(monkeypatch, lambda sql, params: text in sql and any(parameter in str(p) for p in params))


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("terminate_at", [FILING_THE_TICKET, LISTING_THE_CALLER], indirect=True,
                         ids=["filing the ticket", "listing the caller"])
def test_a_message_whose_connection_dies_is_filed_once(make_product, db_url, terminate_at):
    """Should, when the connection dies as the message's ticket is filed or just after, file one ticket
    on the indexed recording the first try stored, list the caller once for a call-back with that ticket and
    tell the caller the message was saved."""
    from caseflow.models import Ticket, TicketCall
    from recorder.models import MissedCall

    call, rows = call_with_the_connection_lost(make_product, CALLER, MESSAGE, terminate_at)
    with database.connection_context():
        assert [(r.kind, r.status) for r in rows] == [("voicemail", "ok")], [(r.status, r.failure_reason)
                                                                             for r in rows]
        [ticket] = Ticket.select().where(Ticket.citizen_phone == CALLER)
        assert TicketCall.select().where((TicketCall.ticket == ticket)
                                         & (TicketCall.call_uuid == call.uuid)).exists()
        [missed] = MissedCall.select().where(MissedCall.caller == CALLER)
        assert missed.reason == "voicemail" and missed.ticket_id == ticket.id and missed.calls == 1
    played = [Path(p).stem for p in call.played]
    assert "message_saved" in played, played
