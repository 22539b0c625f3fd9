"""A caller who hangs up while the IVR is still trying to store their complaint (the database away, issue 16):
on the missed-call list once, for the most specific reason, and only when nothing was filed for them."""
from __future__ import annotations

import peewee
import psycopg2
import pytest

from caseflow.models import Ticket
from core.db import database
from ivr import runner
from recorder.models import MissedCall, MissedCallOccurrence
from tests.fakeswitch import Hangup, Press, Speak, Wait
from tests.integration.recorder.test_product_calls import SECRET, OfficeHoursClock, finalised

# The caller confirms (1), and hangs up while the IVR is still trying to store the complaint.
COMPLAINT_THEN_GONE = [Press("2"), Press("2"), Speak(3), Press("#"), Press("1"), Wait(0.2), Hangup()]


@pytest.fixture
def flaky_store(make_product, monkeypatch):
    """The product, with the complaint's storing step failing as a lost connection for the first ``fails``
    tries (set by the test) and the IVR's pauses between tries shortened."""
    product = make_product(clock=OfficeHoursClock(), secret_key=SECRET, demo_queues=False)
    services = product.parts["ivr_services"]
    real = services.create_ticket_from_recording
    state = {"fails": 0, "tries": 0}

    def create(*args, **kwargs):
        state["tries"] += 1
        if state["tries"] <= state["fails"]:
            try:  # as peewee wraps the driver's error (raised while handling it)
                raise psycopg2.OperationalError("server closed the connection unexpectedly")
            except psycopg2.OperationalError as lost:
                raise peewee.OperationalError(lost, *lost.args)
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "create_ticket_from_recording", create)
    monkeypatch.setattr(runner, "DATABASE_RETRY_PAUSES", (0.3, 0.3, 0.3, 0.3))
    return product, state


def _listing(caller):
    with database.connection_context():
        return [(m.reason, m.calls, [o.reason for o in m.occurrences])
                for m in MissedCall.select().where(MissedCall.caller == caller)]


def _tickets(caller):
    with database.connection_context():
        return Ticket.select().where(Ticket.citizen_phone == caller).count()


def test_a_complaint_stored_after_the_hang_up_is_not_a_missed_call(flaky_store):
    """Should, when the caller confirmed and hung up while the store was still being tried and the third try
    stored it: file the ticket and list nobody for a call-back (the caller was served)."""
    product, state = flaky_store
    state["fails"] = 2
    caller = "13900002222"
    call = product.fs.place_call(product.parts["outbound"].address, caller=caller, destination="12345",
                                 script=COMPLAINT_THEN_GONE)
    call.wait_ended(timeout=60)
    product.fs.wait_for(lambda: _tickets(caller) == 1, 15.0, "the ticket")
    finalised(product, call.uuid, lambda r: r.disposition == "self_service")
    assert state["tries"] == 3
    assert _listing(caller) == []


def test_a_complaint_never_stored_is_listed_once_as_not_stored(flaky_store):
    """Should, when the caller confirmed and hung up and every try failed: file nothing and list the caller
    once, as not_stored (not also as hung up in the menu)."""
    product, state = flaky_store
    state["fails"] = 1000
    caller = "13900003333"
    call = product.fs.place_call(product.parts["outbound"].address, caller=caller, destination="12345",
                                 script=COMPLAINT_THEN_GONE)
    call.wait_ended(timeout=60)
    finalised(product, call.uuid)
    product.fs.wait_for(lambda: _listing(caller), 15.0, "the missed-call entry")
    assert _tickets(caller) == 0
    assert _listing(caller) == [("not_stored", 1, ["not_stored"])]
    with database.connection_context():
        assert MissedCallOccurrence.select().count() == 1


def test_a_caller_gone_at_the_confirm_prompt_with_the_database_away_is_listed_once(flaky_store):
    """Should, when the caller hung up at the confirm prompt (the recording kept as an unconfirmed ticket) and
    every try to store it failed: file nothing and list the caller once, as not_stored."""
    product, state = flaky_store
    state["fails"] = 1000
    caller = "13900004444"
    call = product.fs.place_call(product.parts["outbound"].address, caller=caller, destination="12345",
                                 script=[Press("2"), Press("2"), Speak(3), Press("#"), Hangup()])
    call.wait_ended(timeout=60)
    finalised(product, call.uuid)
    product.fs.wait_for(lambda: _listing(caller), 15.0, "the missed-call entry")
    product.fs.wait_for(lambda: state["tries"] >= 5, 15.0, "every try")
    assert _tickets(caller) == 0
    assert _listing(caller) == [("not_stored", 1, ["not_stored"])]


def test_a_complaint_a_lost_try_used_up_is_listed_as_not_stored(flaky_store, monkeypatch):
    """Should, when a try lost with the connection had already used up the caller's recording (moved it away)
    so that the next try files nothing: list the caller once, as not_stored (was: on no list, the complaint
    lost without a trace)."""
    from pathlib import Path

    product, state = flaky_store
    services = product.parts["ivr_services"]
    flaky = services.create_ticket_from_recording

    def used_up_then_lost(caller, kind, recording_path, **kwargs):
        if state["tries"] == 0:
            Path(recording_path).unlink()
        return flaky(caller, kind, recording_path, **kwargs)

    monkeypatch.setattr(services, "create_ticket_from_recording", used_up_then_lost)
    state["fails"] = 1
    caller = "13900005555"
    call = product.fs.place_call(product.parts["outbound"].address, caller=caller, destination="12345",
                                 script=[Press("2"), Press("2"), Speak(3), Press("#"), Press("1"), Wait(3)])
    call.wait_ended(timeout=60)
    finalised(product, call.uuid)
    product.fs.wait_for(lambda: _listing(caller), 15.0, "the missed-call entry")
    assert state["tries"] == 2
    assert _tickets(caller) == 0
    assert _listing(caller) == [("not_stored", 1, ["not_stored"])]
