"""The ticket's creation key (issue 16): a writer that may try again after a lost commit (the IVR) files a
ticket once per key; databases made before it gain the keys' table when the product starts on them."""
from __future__ import annotations

import peewee
import pytest

from caseflow import services


def test_a_creation_key_files_one_ticket(db):
    """Should find a ticket by its creation key, refuse a second ticket with the same key (nothing of it
    stored) and let tickets without a key be many."""
    from caseflow.models import Ticket

    first = services.create_ticket("路灯不亮", citizen_phone="13912345678", creation_key="ivr:call-1:a.wav")
    assert services.ticket_by_creation_key("ivr:call-1:a.wav") == first
    assert services.ticket_by_creation_key("ivr:call-1:b.wav") is None
    assert services.ticket_by_creation_key("") is None
    with pytest.raises(peewee.IntegrityError):
        services.create_ticket("路灯不亮", citizen_phone="13912345678", creation_key="ivr:call-1:a.wav")
    services.create_ticket("噪音扰民", citizen_phone="13912345678")
    services.create_ticket("噪音扰民", citizen_phone="13912345678")
    assert Ticket.select().count() == 3


def test_an_existing_database_gains_the_creation_keys(db):
    """Should give a database made before the creation keys their table when the product starts on it
    (create_schema: a new table needs no migration step), keeping its tickets."""
    from caseflow.models import Ticket, TicketCreationKey
    from hotline.schema import create_schema

    old = services.create_ticket("路灯不亮", citizen_phone="13912345678")
    db.drop_tables([TicketCreationKey])
    assert not db.table_exists("ticket_creation_key")
    create_schema()
    assert db.table_exists("ticket_creation_key")
    new = services.create_ticket("噪音扰民", citizen_phone="13912345678", creation_key="k")
    assert services.ticket_by_creation_key("k") == new
    assert Ticket.get_by_id(old.id).number == old.number


def test_attachments_are_stored_in_the_tickets_own_transaction(db):
    """Should store a ticket's attachments with it (the IVR's recording), and when one cannot be stored keep
    nothing of the ticket (its history and call link included): the IVR needs no transaction around it."""
    from caseflow.models import Attachment, Ticket, TicketCall, TicketHistory

    recording = dict(kind="recording", filename="a.wav", path="recordings/ivr/a.wav", content_type="audio/wav",
                     size=10, sha256="0" * 64)
    ticket = services.create_ticket("录音投诉", citizen_phone="13912345678", call_uuid="call-1",
                                    creation_key="ivr:call-1:a.wav", attachments=[recording])
    assert [(a.kind, a.path, a.size) for a in ticket.attachments] == [("recording", "recordings/ivr/a.wav", 10)]
    with pytest.raises(peewee.IntegrityError):
        services.create_ticket("录音投诉", citizen_phone="13912345678", call_uuid="call-3",
                               creation_key="ivr:call-3:c.wav", attachments=[dict(recording, path=None)])
    assert Ticket.select().count() == 1
    assert TicketHistory.select().count() == 1 and TicketCall.select().count() == 1
    assert Attachment.select().count() == 1
    assert services.ticket_by_creation_key("ivr:call-3:c.wav") is None
