"""An IVR complaint whose commit reached the database but whose reply was lost with the connection (issue 16:
"an IVR retry right as a commit's connection dies could file a ticket twice"): the runner tries the step again
on a new connection, and that second try must find the ticket the first one stored (the ticket's creation
key) instead of filing another or telling the caller it failed. On PostgreSQL a proxy lets the COMMIT through
and cuts the connection before its reply (tests/…/pgproxy.py); on SQLite, which has no connection to lose,
the database's commit is wrapped to fail after committing."""
from __future__ import annotations

from pathlib import Path

import peewee
import pytest

from core.db import database
from tests.fakeswitch import Press, Speak, WaitFor
from tests.integration.product.pgproxy import PgProxy

CALLER = "13912340001"
COMPLAINT = [Press("2"), Press("2"), Speak(3), Press("#"), Press("1"), WaitFor("playback", "ticket_thanks")]


@pytest.fixture
def pg_proxy():
    """A proxy in front of PostgreSQL, stopped after the product (set up before it)."""
    proxy = PgProxy().start()
    yield proxy
    proxy.stop()


def _lose_reply_of_ticket_commit(monkeypatch, db) -> list:
    """Wrap ``db``'s commit: the first commit that stored the caller's ticket commits, then fails as a lost
    connection does (and so does the rollback peewee tries next, as psycopg2's on a closed connection). The
    list returned gets an entry when it did."""
    from caseflow.models import Ticket

    real_commit, real_rollback = db.commit, db.rollback
    fired: list = []

    def commit():
        result = real_commit()
        if not fired and Ticket.select().where(Ticket.citizen_phone == CALLER).exists():
            fired.append(True)
            raise peewee.OperationalError("server closed the connection unexpectedly")
        return result

    def rollback():
        if fired == [True]:
            fired.append("rollback")
            raise peewee.InterfaceError("connection already closed")
        return real_rollback()

    monkeypatch.setattr(db, "commit", commit)
    monkeypatch.setattr(db, "rollback", rollback)
    return fired


def test_an_ivr_retry_after_a_lost_commit_files_the_ticket_once(pg_proxy, make_product, db_url, monkeypatch):
    """Should, when the connection dies right after the complaint's ticket was committed, file exactly one
    ticket with its recording, read that ticket's number to the caller and not list the caller for a
    call-back."""
    from caseflow.models import Attachment, Ticket
    from recorder.models import MissedCall

    postgres = db_url.startswith("postgres")
    product = make_product(database_url=pg_proxy.url(db_url)) if postgres else make_product()
    if postgres:
        pg_proxy.cut_after_commit(b'INSERT INTO "ticket" (')
        fired = None
    else:
        fired = _lose_reply_of_ticket_commit(monkeypatch, database.obj)

    call = product.fs.place_call(product.parts["outbound"].address, caller=CALLER, destination="12345",
                                 script=COMPLAINT)
    call.wait_ended(timeout=60)

    assert (pg_proxy.commits_cut == 1) if postgres else fired == [True, "rollback"]
    with database.connection_context():
        tickets = list(Ticket.select().where(Ticket.citizen_phone == CALLER))
        assert len(tickets) == 1, [t.number for t in tickets]
        [ticket] = tickets
        assert Attachment.select().where((Attachment.ticket == ticket) & (Attachment.kind == "recording")).count() == 1
        assert not MissedCall.select().where(MissedCall.caller == CALLER).exists()
    sounds = product.config.sounds_dir
    played = [Path(p).stem for p in call.played]
    assert "ticket_thanks" in played, played
    i = call.played.index(f"{sounds}/zh/acceptance_number.wav")
    heard = "".join(Path(p).stem.removeprefix("digit_") for p in call.played[i + 1:i + 9])
    assert heard == ticket.number
