"""An IVR complaint whose database connection is terminated while its recording is being indexed
(test_postgres_connections_killed_under_load lost callers so): the store had already moved the caller's file
into its day folder when the row's update met the dead connection. The runner tries the step again on a new
connection, and that try must finish the row the first one left, not look for the file where it was and
give up on the caller's complaint ("recording file missing": no ticket, nobody listed for a call-back)."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.db import database
from tests.fakeswitch import Press, Speak, WaitFor
from tests.integration.product.connection_lost import call_with_the_connection_lost, terminate_before

CALLER = "13912340002"
COMPLAINT = [Press("2"), Press("2"), Speak(3), Press("#"), Press("1"), WaitFor("playback", "ticket_thanks")]


@pytest.fixture
def terminate_before_indexing(monkeypatch) -> list:
    """The first statement that indexes a finished recording (its size and sha256) has its backend terminated."""
    return terminate_before(monkeypatch, lambda sql, params: sql.startswith('UPDATE "recording"') and '"sha256"' in sql)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_recording_whose_connection_dies_as_it_is_indexed_still_files_the_ticket(make_product, db_url,
                                                                                    terminate_before_indexing):
    """Should, when the connection dies as the complaint's recording is indexed, file one ticket with that
    recording attached, tell the caller its number and keep one recording row of the step, indexed."""
    from caseflow.models import Attachment, Ticket
    from recorder.models import MissedCall

    call, rows = call_with_the_connection_lost(make_product, CALLER, COMPLAINT, terminate_before_indexing)
    with database.connection_context():
        assert [(r.kind, r.status) for r in rows] == [("ivr", "ok")], [(r.status, r.failure_reason) for r in rows]
        [ticket] = Ticket.select().where(Ticket.citizen_phone == CALLER)
        [attached] = Attachment.select().where((Attachment.ticket == ticket) & (Attachment.kind == "recording"))
        assert attached.path == "recordings/" + rows[0].path and attached.sha256 == rows[0].sha256
        assert not MissedCall.select().where(MissedCall.caller == CALLER).exists()
    played = [Path(p).stem for p in call.played]
    assert "ticket_thanks" in played, played
