"""Every IVR exit of the default tree through the whole product on the fake FreeSWITCH, with the call's
hang-up handled by the call record BEFORE the IVR's trace arrives (the order a loaded real switch shows): a
caller whom self-service served is never put on the missed-call list, not even for a moment, and the log's
"missed call from ..." lines name only callers nobody served."""
from __future__ import annotations

import gevent.event
import pytest

from core.db import database
from recorder.models import CallRecord, MissedCall
from tests.fakeswitch import Hangup, Press, SendFax, Speak, WaitFor
from tests.integration.recorder.test_product_calls import SECRET, OfficeHoursClock


@pytest.fixture
def product(db, make_product):
    """The product in office hours, without queues or agents, on fresh tables (``db``: PostgreSQL keeps one
    schema for the whole test process); each IVR trace is held until the call record has handled the
    hang-up event and written whatever that event handed to its finaliser (since b1a0f2a an IVR call's
    hang-up only notes the end and the record waits for the trace; the hold once waited for a write that no
    longer comes first, 15 s per test)."""
    product = make_product(clock=OfficeHoursClock(), secret_key=SECRET, demo_queues=False)
    cdr, services = product.parts["cdr"], product.parts["ivr_services"]
    hung_up: dict[str, gevent.event.Event] = {}
    hangup, save_trace = cdr.hangup, services.save_trace

    def hangup_and_tell(call_uuid, *args, **kwargs):
        try:
            return hangup(call_uuid, *args, **kwargs)  # the switch's hang-up event, handled
        finally:
            hung_up.setdefault(call_uuid, gevent.event.Event()).set()

    def save_trace_late(record):
        hung_up.setdefault(record.call_uuid, gevent.event.Event()).wait(15)
        cdr.settle(15)  # a finalisation the hang-up handed over is written first
        save_trace(record)

    cdr.hangup = hangup_and_tell
    services.save_trace = save_trace_late
    product.traced = set()
    services.on_trace.append(lambda record: product.traced.add(record.call_uuid))
    return product


def _poll():
    from ivr.models import Poll, PollQuestion

    poll = Poll.create(title="公交", active=True)
    PollQuestion.create(poll=poll, position=1, text="满意请按1，不满意请按2。", choices="12")


def _ticket(caller):
    from caseflow import services

    return services.create_ticket("路灯不亮", type="complaint", citizen_phone=caller).number


# (case, script(context) -> steps, channel variables, setup) for callers self-service served. The
# satisfaction key-press (after an agent's hand-back) and the duty transfer are in tests/unit/ivr/test_served.
SERVED = [
    ("complaint recording confirmed", lambda c: [Press("2"), Press("2"), Speak(3), Press("#"), Press("1"),
                                                 WaitFor("playback", "ticket_thanks"), Hangup()], {}, None),
    ("mayor mailbox message", lambda c: [Press("2"), Press("1"), Speak(3), Press("#"), Press("1"),
                                         WaitFor("playback", "ticket_thanks"), Hangup()], {}, None),
    ("status query answered", lambda c: [Press("2"), Press("3"), Press(c["ticket"] + "#"), Press("1"),
                                         WaitFor("playback", "status_accepted"), Hangup()], {}, "ticket"),
    ("consultation played to its end", lambda c: [Press("2"), Press("4"), Press("1"),
                                                  WaitFor("play_and_get_digits", "consult_send_offer"), Hangup()],
     {}, None),
    ("poll answered", lambda c: [Press("2"), Press("5"), Press("2"), WaitFor("playback", "poll_thanks"), Hangup()],
     {}, "poll"),
    ("fax received", lambda c: [SendFax(pages=1), Press("2"), Press("6")], {}, None),
]
NOT_SERVED = [
    ("hung up in the menu", lambda c: [WaitFor("play_and_get_digits", "main_menu"), Hangup()], {}, None),
    ("hung up mid-recording", lambda c: [Press("2"), Press("2"), Speak(4), Hangup()], {}, None),
    ("hung up before confirming", lambda c: [Press("2"), Press("2"), Speak(3), Press("#"),
                                             WaitFor("play_and_get_digits", "record_confirm"), Hangup()], {}, None),
    ("hung up during the consultation topic", lambda c: [Press("2"), Press("4"), Press("1"),
                                                         WaitFor("playback", "consult_guide"), Hangup()], {}, None),
]


def _call(product, caller, script, variables, setup):
    context = {}
    with database.connection_context():
        if setup == "ticket":
            context["ticket"] = _ticket(caller)
        elif setup == "poll":
            _poll()
    call = product.fs.place_call(product.parts["outbound"].address, caller=caller, destination="12345",
                                 script=script(context), variables=variables)
    call.wait_ended(timeout=60)
    product.fs.wait_for(lambda: call.uuid in product.traced, 20.0, "the IVR trace")

    def final():
        with database.connection_context():
            record = CallRecord.get_or_none(CallRecord.call_uuid == call.uuid)
            return record if record is not None and record.finalised else None
    return product.fs.wait_for(final, 10.0, "the final call record")


def _missed_lines(caplog, caller):
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"missed call from {caller} ")]


@pytest.mark.parametrize("case,script,variables,setup", SERVED, ids=[c[0] for c in SERVED])
def test_served_caller_is_never_listed(product, caplog, case, script, variables, setup):
    """Should keep a caller whom self-service served off the missed-call list from the start: no entry, no
    "missed call from" log line, although the call record closed before the IVR's trace came."""
    caplog.set_level("INFO", logger="recorder.missed")
    caller = "13912340001"
    record = _call(product, caller, script, variables, setup)
    assert record.disposition in ("self_service", "fax")
    with database.connection_context():
        assert MissedCall.select().where(MissedCall.caller == caller).count() == 0
    assert _missed_lines(caplog, caller) == []


@pytest.mark.parametrize("case,script,variables,setup", NOT_SERVED, ids=[c[0] for c in NOT_SERVED])
def test_unserved_caller_is_listed_once(product, caplog, case, script, variables, setup):
    """Should list a caller whom nothing served as hung up in the IVR, once, with one log line."""
    caplog.set_level("INFO", logger="recorder.missed")
    caller = "13912340002"
    record = _call(product, caller, script, variables, setup)
    assert record.disposition == "self_service" and record.hangup_side == "caller"
    with database.connection_context():
        rows = [(m.reason, m.calls) for m in MissedCall.select().where(MissedCall.caller == caller)]
    assert rows == [("ivr_hangup", 1)]
    assert len(_missed_lines(caplog, caller)) == 1 and "ivr_hangup" in _missed_lines(caplog, caller)[0]


def test_message_cut_by_the_hang_up_is_listed_as_voicemail(product, caplog):
    """Should list a caller whose message (all agents busy) was cut by the hang-up once, as voicemail for a
    call-back, never first as hung up in the IVR; the record says voicemail."""
    caplog.set_level("INFO", logger="recorder.missed")
    caller = "13912340003"
    record = _call(product, caller, lambda c: [Press("1"), Press("1"), WaitFor("record"), Speak(4), Hangup()], {},
                   None)
    assert record.disposition == "voicemail"
    with database.connection_context():
        rows = [(m.reason, m.calls) for m in MissedCall.select().where(MissedCall.caller == caller)]
    assert rows == [("voicemail", 1)]
    lines = _missed_lines(caplog, caller)
    assert len(lines) == 1 and "(voicemail, voicemail)" in lines[0]


def test_complaint_recording_not_usable_is_listed_as_no_ticket(product, caplog, monkeypatch):
    """Should list a caller whose confirmed complaint recording turns out unusable (no audio: no ticket) for a
    call-back, once, as no_ticket, when the tree's failure route ends the call (the system hangs up): such a
    caller was on no list."""
    from pathlib import Path

    from ivr.edit import edit_node
    from ivr.tree import load_tree
    from recorder.models import Recording
    from recorder.wavfile import read_wav_info

    caplog.set_level("INFO", logger="recorder.missed")
    trees = product.parts["ivr_services"].trees
    with database.connection_context():
        source = edit_node(load_tree(), "complaint_record", {"on_fail": "goodbye"})
        trees.activate(trees.add_version(source, comment="failure ends the call").id, "admin")
    services = product.parts["ivr_services"]
    create = services.create_ticket_from_recording

    def no_audio_left(caller, kind, recording_path, **kwargs):
        header = read_wav_info(Path(recording_path)).data_offset
        with open(recording_path, "r+b") as wav:  # the header alone, saying so: a recording with no audio
            wav.truncate(header)
            wav.seek(header - 4)
            wav.write(bytes(4))
        return create(caller, kind, recording_path, **kwargs)

    monkeypatch.setattr(services, "create_ticket_from_recording", no_audio_left)
    caller = "13912340004"
    record = _call(product, caller, lambda c: [Press("2"), Press("2"), Speak(3), Press("#"), Press("1"),
                                               WaitFor("playback", "ticket_failed")], {}, None)
    assert record.hangup_side == "system"
    with database.connection_context():
        assert [r.status for r in Recording.select().where(Recording.call_uuid == record.call_uuid)] == ["failed"]
        rows = [(m.reason, m.calls, m.ticket_id) for m in MissedCall.select().where(MissedCall.caller == caller)]
    assert rows == [("no_ticket", 1, None)]
    assert len(_missed_lines(caplog, caller)) == 1
