"""Call records, recordings and missed calls through the whole product (hotline.product) on the fake
FreeSWITCH: what run.py builds is what is tested."""
from __future__ import annotations

import datetime as dt

import pytest

from core.clock import Clock
from core.db import database
from recorder.integrity import record_key, verify_database
from recorder.models import CallRecord, MissedCall, Recording
from recorder.wavfile import FORMAT_ALAW, read_wav_info
from tests.fakeswitch import Hangup, Press, Speak, WaitFor

SECRET = "p" * 40


class OfficeHoursClock(Clock):
    """Real time passing, shifted to a Monday 10:00 in Shanghai (the IVR's time check must say open)."""

    def __init__(self):
        super().__init__("Asia/Shanghai")
        self.offset = dt.datetime(2026, 1, 5, 10, 0, tzinfo=self.tz) - dt.datetime.now(self.tz)

    def now(self) -> dt.datetime:
        return dt.datetime.now(self.tz) + self.offset


@pytest.fixture
def product(make_product):
    """The whole product on the fake switch, in office hours, without queues: "to a person" rings the
    agent extensions in order (the IVR's fallback), so a scripted phone answers at once."""
    return make_product(clock=OfficeHoursClock(), secret_key=SECRET, demo_queues=False)


def finalised(product, call_uuid, check=lambda record: True):
    """Wait (on the record itself, with a timeout) until the call record is final and passes ``check``."""
    def ready():
        with database.connection_context():
            record = CallRecord.get_or_none(CallRecord.call_uuid == call_uuid)
            return record if record is not None and record.finalised and check(record) else None
    return product.fs.wait_for(ready, 15.0, f"call record {call_uuid}")


def test_conversation_is_recorded_and_call_record_signed(product):
    """Should record the bridged conversation (A-law, indexed), and sign an answered call record with the
    agent, the IVR path and the talk time; no missed call."""
    # 300 simulated seconds of talk (3 s of wall time): a real conversation, long enough to be recorded.
    desk = product.fs.add_agent("1000", talk_seconds=300, answer_delay=0.2)
    call = product.fs.place_call(product.parts["outbound"].address, caller="13912345678", destination="12345",
                                 script=[])
    call.wait_ended(timeout=30)
    assert desk.answered_calls
    record = finalised(product, call.uuid, lambda r: r.disposition == "answered" and r.ivr_path != "[]")

    def recorded():
        with database.connection_context():
            return Recording.get_or_none((Recording.call_uuid == call.uuid) & (Recording.status == "ok"))
    rec = product.fs.wait_for(recorded, 15.0, "the indexed recording")
    assert record.agent_no == "1001" and record.caller == "13912345678"
    assert "welcome" in [n["node"] for n in record.ivr_nodes()]
    store = product.parts["recordings"].store
    assert read_wav_info(store.local_path(rec)).format_tag == FORMAT_ALAW and rec.duration_ms > 0
    assert rec.path.startswith("2026-01-05/") and rec.agent_no == "1001"
    with database.connection_context():
        assert MissedCall.select().count() == 0
        assert verify_database(record_key(SECRET)).problems == []


def test_hang_up_in_menu_is_a_missed_call(product):
    """Should list a caller who hung up in the menu before reaching anyone for a call-back."""
    call = product.fs.place_call(product.parts["outbound"].address, caller="13800001111", destination="12345",
                                 script=[WaitFor("playback"), Hangup()])
    call.wait_ended(timeout=30)
    record = finalised(product, call.uuid)
    assert record.disposition == "self_service"

    def listed():
        with database.connection_context():
            return MissedCall.get_or_none(MissedCall.caller == "13800001111")
    assert product.fs.wait_for(listed, 10.0, "the missed call").reason == "ivr_hangup"


def test_an_ivr_call_is_finalised_once(product, monkeypatch):
    """Should write an IVR call's record once when the caller hangs up in the menu: after the IVR's last word
    (its trace), not also on the hang-up before it (the Finaliser's write, undecided, then written again)."""
    from recorder import cdr as cdr_module

    written, write_record = [], cdr_module.write_record

    def counting(key, draft, *args):
        written.append(draft.call_uuid)
        return write_record(key, draft, *args)

    monkeypatch.setattr(cdr_module, "write_record", counting)
    cdr = product.parts["cdr"]
    call = product.fs.place_call(product.parts["outbound"].address, caller="13800002222", destination="12345",
                                 script=[WaitFor("playback"), Hangup()])
    call.wait_ended(timeout=30)

    def listed():
        with database.connection_context():
            return MissedCall.get_or_none(MissedCall.caller == "13800002222")
    assert product.fs.wait_for(listed, 10.0, "the missed call").reason == "ivr_hangup"
    product.fs.wait_for(lambda: call.uuid not in cdr.drafts and not cdr.finished[call.uuid].awaiting_ivr, 10.0,
                        "the IVR's last word")
    assert cdr.settle()
    assert written.count(call.uuid) == 1, written
    assert finalised(product, call.uuid).disposition == "self_service"


def test_abandoned_queue_caller_is_listed_once(product):
    """Should list a caller who hangs up while waiting in a queue exactly once, although both the ACD and
    the call record report the call: one entry, one call counted, with the queue and the wait."""
    from acd.dispatcher import create_queue

    with database.connection_context():
        queue = create_queue("general", "general", announce_interval=0, max_wait=0)
        product.parts["acd"].load()  # nobody of the demo agents is registered: the caller waits
    try:
        _abandon_in_queue(product)
    finally:  # on PostgreSQL the product's tables outlive the test: later calls must not find the queue
        with database.connection_context():
            queue.delete_instance(recursive=True)
            MissedCall.delete().where(MissedCall.caller == "13811112222").execute()
            product.parts["acd"].load()


def _abandon_in_queue(product):
    from recorder.models import MissedCallOccurrence

    call = product.fs.place_call(product.parts["outbound"].address, caller="13811112222", destination="12345",
                                 script=[WaitFor("playback", arg_contains="local_stream"), Hangup()])
    call.wait_ended(timeout=30)
    finalised(product, call.uuid, lambda r: r.disposition == "abandoned")

    def reported_by_acd():
        with database.connection_context():
            return MissedCallOccurrence.get_or_none((MissedCallOccurrence.call_uuid == call.uuid)
                                                    & (MissedCallOccurrence.source == "acd"))
    product.fs.wait_for(reported_by_acd, 10.0, "the ACD's report of the abandoned caller")
    with database.connection_context():
        rows = list(MissedCall.select().where(MissedCall.caller == "13811112222"))
        assert [(r.reason, r.calls, r.status) for r in rows] == [("abandoned", 1, "open")]
        assert rows[0].queue and MissedCallOccurrence.select().where(
            MissedCallOccurrence.missed == rows[0]).count() == 1


def test_complaint_recording_is_served_not_missed(product):
    """Should treat a caller who left a complaint recording as served: self-service, no missed call, and
    the recording indexed for the ticket."""
    call = product.fs.place_call(product.parts["outbound"].address, caller="13912340000", destination="12345",
                                 script=[Press("2"), Press("2"), Speak(3), Press("#"), Press("1"),
                                         WaitFor("playback", "ticket_thanks")])
    call.wait_ended(timeout=30)
    finalised(product, call.uuid, lambda r: '"record' in r.ivr_path or r.ivr_path.count("node") > 2)
    from recorder.storage import recordings_of_ticket
    from caseflow.models import Ticket, TicketCall

    def served():
        with database.connection_context():
            record = CallRecord.get(CallRecord.call_uuid == call.uuid)
            missed = MissedCall.select().where(MissedCall.caller == "13912340000").count()
            return record if missed == 0 and record.disposition == "self_service" else None
    product.fs.wait_for(served, 10.0, "the served call record")
    with database.connection_context():
        ticket = Ticket.select().join(TicketCall).where(TicketCall.call_uuid == call.uuid).get()
        assert [r.status for r in recordings_of_ticket(ticket)] == ["ok"]


def test_all_busy_voicemail_becomes_ticket_and_call_back(product):
    """Should take a message when nobody can answer: a ticket with the recording, the call record marked
    voicemail, and the caller on the call-back list once (not also as a missed IVR call)."""
    call = product.fs.place_call(product.parts["outbound"].address, caller="13955556666", destination="12345",
                                 script=[WaitFor("record"), Speak(3), Press("#")])
    call.wait_ended(timeout=30)
    finalised(product, call.uuid, lambda r: r.disposition == "voicemail")

    def listed():
        with database.connection_context():
            rows = list(MissedCall.select().where(MissedCall.caller == "13955556666"))
            return rows if rows and rows[0].ticket_id else None
    rows = product.fs.wait_for(listed, 10.0, "the voicemail call-back entry")
    assert [r.reason for r in rows] == ["voicemail"]
    from recorder.storage import recordings_of_ticket

    with database.connection_context():
        assert [r.kind for r in recordings_of_ticket(rows[0].ticket)] == ["voicemail"]


@pytest.fixture
def unwritable_product(make_product, tmp_path):
    """The product whose recordings folder is a file: nothing can be recorded."""
    blocker = tmp_path / "recordings-is-a-file"
    blocker.write_text("not a folder")
    return make_product(clock=OfficeHoursClock(), secret_key=SECRET, demo_queues=False,
                        recordings_dir=str(blocker))


def test_unwritable_storage_the_call_goes_on(unwritable_product):
    """Should still connect the caller to the agent when recordings cannot be written, and raise an alarm."""
    from ops.models import SystemAlarm

    product = unwritable_product
    desk = product.fs.add_agent("1000", talk_seconds=300, answer_delay=0.2)
    call = product.fs.place_call(product.parts["outbound"].address, caller="13912345678", destination="12345",
                                 script=[])
    call.wait_ended(timeout=30)
    assert desk.answered_calls and call.bridged_to
    record = finalised(product, call.uuid, lambda r: r.disposition == "answered")
    assert record.agent_no == "1001"

    def alerted():
        with database.connection_context():
            return SystemAlarm.get_or_none(SystemAlarm.kind == "recording_storage")
    assert call.uuid in product.fs.wait_for(alerted, 10.0, "the storage alarm").text
    with database.connection_context():
        assert Recording.get(Recording.call_uuid == call.uuid).status == "failed"


def test_call_record_names_the_switch_not_the_socket_port(product):
    """Should name the FreeSWITCH the call is on by its event-socket address (as configured, host:8021),
    not by the ephemeral port its outbound socket connection came from."""
    call = product.fs.place_call(product.parts["outbound"].address, caller="13800002222", destination="12345",
                                 script=[WaitFor("play_and_get_digits", "main_menu"), Hangup()])
    call.wait_ended(timeout=30)
    record = finalised(product, call.uuid)
    assert record.server == f"127.0.0.1:{product.fs.esl_port}"
