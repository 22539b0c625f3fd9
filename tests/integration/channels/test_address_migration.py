"""Migration 0004: message and opt-out addresses widened from 64 to 255 characters, on SQLite and PostgreSQL."""
import datetime as dt

import peewee
import pytest

from channels.models import Message, OptOut
from core.db import is_postgres

STEP = "0004_message_address_255"
LONG = "z" * 240 + "@example.gov.cn"  # 255 characters, as RFC 5321 paths may be


def _message(address):
    now = dt.datetime(2026, 3, 4, 2, 0)
    return Message.create(channel="email", direction="in", address=address, body="旧邮件", status="received",
                          created_at=now, updated_at=now)


def _lengths(db):
    rows = db.execute_sql("SELECT table_name, character_maximum_length FROM information_schema.columns "
                          "WHERE table_name IN ('message', 'opt_out') AND column_name = 'address' "
                          "AND table_schema = current_schema()").fetchall()
    return dict(rows)


def test_step_widens_the_address_of_an_old_database(db):
    """Should upgrade a database whose address columns hold 64 characters (PostgreSQL refuses a longer one
    there) so that a 255-character e-mail address is stored in a message and an opt-out, keeping old rows."""
    from core.migrations import SchemaMigration
    from hotline.schema import all_models, create_schema

    if is_postgres(db):
        for table in ("message", "opt_out"):
            db.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN "address" TYPE VARCHAR(64)')
        assert _lengths(db) == {"message": 64, "opt_out": 64}
        with pytest.raises(peewee.DataError), db.atomic():
            _message(LONG)
    old = _message("citizen@example.cn")
    SchemaMigration.delete().where(SchemaMigration.name == STEP).execute()
    assert STEP in create_schema(all_models())
    assert STEP not in create_schema(all_models())  # once
    if is_postgres(db):
        assert _lengths(db) == {"message": 255, "opt_out": 255}
    assert len(LONG) == 255
    assert Message.get_by_id(_message(LONG).id).address == LONG
    OptOut.create(address=LONG)
    assert OptOut.get(OptOut.address == LONG) and Message.get_by_id(old.id).address == "citizen@example.cn"
