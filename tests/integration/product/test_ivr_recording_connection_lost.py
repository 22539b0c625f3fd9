"""An IVR complaint whose database connection is terminated while its recording is being indexed
(test_postgres_connections_killed_under_load lost callers so): the store had already moved the caller's file
into its day folder when the row's update met the dead connection. The runner tries the step again on a new
connection, and that try must finish the row the first one left, not look for the file where it was and
give up on the caller's complaint ("recording file missing": no ticket, nobody listed for a call-back)."""
from __future__ import annotations

from pathlib import Path

import pytest

from core import db as core_db
from core.db import database
from tests.fakeswitch import Press, Speak, WaitFor
from tests.integration.product.test_pooled_connections import _terminate

CALLER = "13912340002"
COMPLAINT = [Press("2"), Press("2"), Speak(3), Press("#"), Press("1"), WaitFor("playback", "ticket_thanks")]


@pytest.fixture
def terminate_before_indexing(monkeypatch) -> list:
    """The backend of the first statement that indexes a finished recording (its size and sha256), terminated
    just before that statement is sent (after any check of the connection: as PostgreSQL going away between
    two statements does). The list returned gets the terminated backend's pid."""
    cursor_class = core_db._psycopg2_classes()[1]
    execute, killed = cursor_class.execute, []

    def terminating(self, sql, *args, **kwargs):
        if not killed and sql.startswith('UPDATE "recording"') and '"sha256"' in sql:
            killed.append(_terminate(self.connection.info.backend_pid))
        return execute(self, sql, *args, **kwargs)

    monkeypatch.setattr(cursor_class, "execute", terminating)
    return killed


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_recording_whose_connection_dies_as_it_is_indexed_still_files_the_ticket(make_product, db_url,
                                                                                    terminate_before_indexing):
    """Should, when the connection dies as the complaint's recording is indexed, file one ticket with that
    recording attached, tell the caller its number and keep one recording row of the step, indexed."""
    from caseflow.models import Attachment, Ticket
    from recorder.models import MissedCall, Recording

    product = make_product()
    call = product.fs.place_call(product.parts["outbound"].address, caller=CALLER, destination="12345",
                                 script=COMPLAINT)
    call.wait_ended(timeout=60)

    assert len(terminate_before_indexing) == 1
    with database.connection_context():
        rows = list(Recording.select().where(Recording.call_uuid == call.uuid))
        assert [(r.kind, r.status) for r in rows] == [("ivr", "ok")], [(r.status, r.failure_reason) for r in rows]
        [ticket] = Ticket.select().where(Ticket.citizen_phone == CALLER)
        [attached] = Attachment.select().where((Attachment.ticket == ticket) & (Attachment.kind == "recording"))
        assert attached.path == "recordings/" + rows[0].path and attached.sha256 == rows[0].sha256
        assert not MissedCall.select().where(MissedCall.caller == CALLER).exists()
    played = [Path(p).stem for p in call.played]
    assert "ticket_thanks" in played, played
