"""A bug in a call's IVR handling (an unexpected error: not the caller, the switch or a database outage)
after the caller recorded a complaint, a mayor's-mailbox message or a voicemail, before its ticket is filed:
through the whole product on the fake FreeSWITCH, the recording is kept with the call (indexed, never
deleted), the caller is on the call-back list as not_filed, the IVR trace is delivered, the ivr_failed alarm
is raised, and the process serves the next caller. Before, the file stayed unindexed in the IVR's folder and
a caller whose call the system ended was on no list, with only a log line."""
from __future__ import annotations

import pytest

from caseflow.models import Ticket
from core.db import database
from ivr import engine as e
from ivr.runner import IvrCall
from ivr.models import IvrTrace
from ops.models import SystemAlarm
from recorder.models import MissedCall, Recording
from tests.fakeswitch import Hangup, Press, Speak, WaitFor
from tests.integration.recorder.test_ivr_exits_missed import _call, product  # noqa: F401 - the fixture

# The caller's steps up to the moment the IVR files what they recorded (the default tree, office hours).
RECORDINGS = [
    ("complaint", lambda c: [Press("2"), Press("2"), Speak(3), Press("#"), Press("1")]),
    ("mayor mailbox", lambda c: [Press("2"), Press("1"), Speak(3), Press("#"), Press("1")]),
    ("voicemail cut by the hang-up", lambda c: [Press("1"), Press("1"), WaitFor("record"), Speak(4), Hangup()]),
    ("complaint not confirmed", lambda c: [Press("2"), Press("2"), Speak(3), Press("#"),
                                           WaitFor("play_and_get_digits", "record_confirm"), Hangup()]),
]
BROKEN = "13912340021"


def _break_filing(monkeypatch):
    """IvrCall._service fails on a bug when it is to file BROKEN's recording (the greenlet's own code, past
    every service's error handling)."""
    service = IvrCall._service

    def broken(self, action):
        if isinstance(action, e.CreateTicket) and action.caller == BROKEN:
            raise RuntimeError("a bug before filing")
        return service(self, action)

    monkeypatch.setattr(IvrCall, "_service", broken)


def _kept(product, record, reason):
    """The call's recording kept and linked, the caller listed once with ``reason``, the trace, the alarm."""
    store = product.parts["recordings"].store
    with database.connection_context():
        recordings = list(Recording.select().where(Recording.call_uuid == record.call_uuid))
        assert [(r.kind, r.status, r.call_id) for r in recordings] == [("ivr", "ok", record.id)]
        assert recordings[0].duration_ms > 0 and store.local_path(recordings[0]).is_file()
        missed = [(m.reason, m.calls, m.call_id, m.ticket_id)
                  for m in MissedCall.select().where(MissedCall.caller == record.caller)]
        assert missed == [(reason, 1, record.id, None)]
        assert Ticket.select().where(Ticket.citizen_phone == record.caller).count() == 0
        trace = IvrTrace.get(IvrTrace.call_uuid == record.call_uuid)
        alarms = [(a.kind, a.severity, a.count) for a in SystemAlarm.select().where(SystemAlarm.kind == "ivr_failed")]
    assert alarms == [("ivr_failed", "critical", 1)]
    assert e.NOT_FILED in trace.entries
    # Nothing left unindexed where the switch wrote it.
    assert product.parts["ivr_services"].unfiled_recordings(record.call_uuid) == []
    return trace


def _system_fault(record):
    """The caller listed once as not_stored (系统故障未能受理), the trace saying why, the alarm raised."""
    with database.connection_context():
        missed = [(m.reason, m.calls) for m in MissedCall.select().where(MissedCall.caller == BROKEN)]
        trace = IvrTrace.get(IvrTrace.call_uuid == record.call_uuid)
        alarms = [(a.kind, a.count) for a in SystemAlarm.select().where(SystemAlarm.kind == "ivr_failed")]
    assert missed == [("not_stored", 1)]
    assert trace.outcome == "ivr_error" and e.IVR_FAILED in trace.entries
    assert alarms == [("ivr_failed", 1)]


def _next_caller_filed(product):
    """The same process files the next caller's complaint (a ticket, not listed)."""
    caller = "13912340022"
    _call(product, caller, lambda c: [Press("2"), Press("2"), Speak(3), Press("#"), Press("1"),
                                      WaitFor("playback", "ticket_thanks"), Hangup()], {}, None)
    with database.connection_context():
        assert Ticket.select().where(Ticket.citizen_phone == caller).count() == 1
        assert MissedCall.select().where(MissedCall.caller == caller).count() == 0


@pytest.mark.parametrize("case,script", RECORDINGS, ids=[c[0] for c in RECORDINGS])
def test_bug_before_filing_keeps_the_recording_and_lists_the_caller(product, monkeypatch, case, script):
    """Should keep what the caller recorded with the call and list them as not_filed (系统故障，录音已保存待受理)
    when the call's greenlet fails on a bug before filing it, raise the ivr_failed alarm, and file the next
    caller's complaint in the same process."""
    _break_filing(monkeypatch)
    record = _call(product, BROKEN, script, {}, None)
    trace = _kept(product, record, "not_filed")
    assert trace.outcome == "ivr_error"
    _next_caller_filed(product)


def test_filing_step_failing_keeps_the_recording_and_lists_the_caller(product, monkeypatch):
    """Should keep the recording with the call and list the caller as not_filed, not as an unusable recording
    (no_ticket), when the back office's filing fails on a bug; the caller hears that it failed and is offered
    a person as before."""
    services = product.parts["ivr_services"]

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in filing")

    monkeypatch.setattr(services, "create_ticket_from_recording", broken)
    record = _call(product, BROKEN, lambda c: [Press("2"), Press("2"), Speak(3), Press("#"), Press("1"),
                                               WaitFor("playback", "ticket_failed"), Hangup()], {}, None)
    _kept(product, record, "not_filed")


def test_bug_with_nothing_recorded_lists_the_caller_as_a_system_fault(product, monkeypatch):
    """Should list a caller whose call the IVR failed on in a menu (nothing recorded) as not_stored
    (系统故障未能受理), although the system ended the call, and raise the ivr_failed alarm."""
    def broken(self, event):
        raise RuntimeError("a bug in the menu")

    monkeypatch.setattr(e.IvrEngine, "_on_menu", broken)
    record = _call(product, BROKEN, lambda c: [Press("2")], {}, None)
    assert record.hangup_side == "system"
    _system_fault(record)


def test_bug_before_the_menu_lists_the_caller_as_a_system_fault(product, monkeypatch):
    """Should list a caller whose call the IVR failed on before its menu (reading the active tree) as
    not_stored, with a trace and the ivr_failed alarm, and serve the next caller."""
    services = product.parts["ivr_services"]
    active_tree = services.active_tree
    calls = []

    def broken():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug reading the tree")
        return active_tree()

    monkeypatch.setattr(services, "active_tree", broken)
    record = _call(product, BROKEN, lambda c: [], {}, None)  # on the line until the app hangs up
    _system_fault(record)
    _next_caller_filed(product)
