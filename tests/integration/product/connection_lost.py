"""Shared by the tests of a product call whose PostgreSQL connection is terminated at one chosen statement
(test_ivr_recording_connection_lost.py, test_voicemail_connection_lost.py)."""
from __future__ import annotations

from core import db as core_db
from core.db import database
from core.statements import prepared_text
from tests.integration.product.test_pooled_connections import _terminate


def terminate_before(monkeypatch, chosen) -> list:
    """The backend of the first statement for which ``chosen(sql, params)`` is true, terminated just before that
    statement is sent (after any check of the connection: as PostgreSQL going away between two statements
    does). The list returned gets the terminated backend's pid."""
    cursor_class = core_db._psycopg2_classes()[1]
    execute, killed = cursor_class.execute, []

    def terminating(self, sql, params=None, *args, **kwargs):
        if not killed and chosen(prepared_text(sql), params or ()):  # a kept statement's EXECUTE by its text
            killed.append(_terminate(self.connection.info.backend_pid))
        return execute(self, sql, params, *args, **kwargs)

    monkeypatch.setattr(cursor_class, "execute", terminating)
    return killed


def call_with_the_connection_lost(make_product, caller: str, script, killed: list):
    """One call from ``caller`` to 12345 through the product, ended; returns (the call, its recording rows) once
    it is checked that exactly one backend was terminated during it."""
    from recorder.models import Recording

    product = make_product()
    call = product.fs.place_call(product.parts["outbound"].address, caller=caller, destination="12345",
                                 script=script)
    call.wait_ended(timeout=60)
    assert len(killed) == 1
    with database.connection_context():
        rows = list(Recording.select().where(Recording.call_uuid == call.uuid))
    return call, rows
