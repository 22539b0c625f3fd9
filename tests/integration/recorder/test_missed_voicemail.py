"""Missed-call list with call-back attempts, and voicemail becoming a ticket with its recording."""
from __future__ import annotations

import datetime as dt

import pytest

from caseflow.accounts import create_user
from caseflow.models import Notification, TicketCall
from caseflow.org import create_department
from recorder.missed import MissedCallError, add_missed, attempts_of, list_missed, record_attempt
from recorder.models import CallRecord, MissedCall
from recorder.storage import recording_for_attachment, recordings_of_ticket
from recorder.voicemail import leave_message
from tests.unit.recorder.test_wavfile import write_pcm


def test_list_and_call_back(db, clock):
    """Should list open missed calls newest first, one entry per number counting its calls, and close it
    once reached."""
    agent = create_user("1001", "王芳", "correct horse battery", roles=["agent"])
    a1 = add_missed("13800000001", "abandoned", queue="consult", at=clock.now() - dt.timedelta(minutes=9))
    add_missed("13800000002", "out_of_hours", at=clock.now() - dt.timedelta(minutes=5))
    a2 = add_missed("13800000001", "ivr_hangup", at=clock.now())
    assert a2.id == a1.id
    entries = list_missed()
    assert [e.missed.id for e in entries][0] == a1.id  # its latest call is the newest
    assert {e.missed.caller: e.calls_from_number for e in entries} == {"13800000001": 2, "13800000002": 1}
    assert (entries[0].missed.reason, entries[0].missed.queue) == ("ivr_hangup", "consult")
    record_attempt(a1.id, "no_answer", agent=agent, note="无人接")
    assert MissedCall.get_by_id(a1.id).status == "open" and MissedCall.get_by_id(a1.id).attempts == 1
    record_attempt(a1.id, "reached", agent=agent, call_uuid="cb-1")
    assert [m.status for m in MissedCall.select().where(MissedCall.caller == "13800000001")] == ["done"]
    assert [a.outcome for a in attempts_of(a1.id)] == ["no_answer", "reached"]
    assert [e.missed.caller for e in list_missed()] == ["13800000002"]
    assert len(list_missed("done")) == 1 and len(list_missed("all", caller="0002")) == 1
    again = add_missed("13800000001", "abandoned")  # a new missed call after the call-back: a new entry
    assert again.id != a1.id and again.calls == 1


def test_bad_call_back_input(db):
    """Should refuse an unknown outcome, an unknown entry, and a user without the call-back permission."""
    entry = add_missed("1380", "abandoned")
    clerk = create_user("2001", "张三", "correct horse battery", roles=["dept"])
    with pytest.raises(MissedCallError, match="outcome"):
        record_attempt(entry.id, "maybe")
    with pytest.raises(MissedCallError, match="no missed call"):
        record_attempt(999999, "reached")
    with pytest.raises(MissedCallError, match="回拨权限"):
        record_attempt(entry.id, "reached", agent=clerk)
    with pytest.raises(MissedCallError):
        add_missed("1", "bored")
    assert MissedCall.get_by_id(entry.id).attempts == 0


def test_voicemail_becomes_ticket_with_recording(cdr, store, tmp_path):
    """Should create a ticket with the recording attached, linked to the call, on the centre desk and the
    call-back list, and mark the call record as voicemail."""
    centre = create_department("C", "热线办")
    cdr.call_started("vm-1", caller="13912345678", called="12345")
    message = write_pcm(tmp_path / "msg.wav", seconds=4.0)
    result = leave_message(call_uuid="vm-1", caller="13912345678", recording_path=message, recordings=store,
                           reason="busy", cdr=cdr)
    ticket = result.ticket
    assert result.number == ticket.number and len(ticket.number) == 8
    assert ticket.citizen_phone == "13912345678" and "坐席全忙" in ticket.content
    assert result.recording.status == "ok" and result.recording.kind == "voicemail"
    assert [r.id for r in recordings_of_ticket(ticket)] == [result.recording.id]
    assert recording_for_attachment("recordings/" + result.recording.path).id == result.recording.id
    assert recording_for_attachment("2026/01/x.pdf") is None
    assert store.local_path(result.recording).exists()
    assert TicketCall.get(TicketCall.ticket == ticket).call_uuid == "vm-1"
    assert result.missed.reason == "voicemail" and result.missed.ticket_id == ticket.id
    assert Notification.get(Notification.department == centre).ticket_id == ticket.id
    record = cdr.hangup("vm-1", "NORMAL_CLEARING", "caller")
    assert record.disposition == "voicemail"
    assert MissedCall.select().count() == 1  # not listed twice


def test_empty_voicemail_lists_caller_without_ticket(cdr, store, tmp_path):
    """Should keep a caller who left an empty message on the call-back list, with no ticket."""
    cdr.call_started("vm-2", caller="withheld")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    result = leave_message(call_uuid="vm-2", caller="withheld", recording_path=empty, recordings=store,
                           reason="closed")
    assert result.ticket is None and result.number == ""
    assert result.recording.status == "failed" and empty.exists()
    assert result.missed.reason == "voicemail" and result.missed.caller == "withheld"
    with pytest.raises(ValueError):
        leave_message(call_uuid="vm-2", caller="1", recording_path=empty, recordings=store, reason="lunch")


def test_withheld_caller_voicemail_still_ticketed(cdr, store, tmp_path):
    """Should create the ticket even when the caller ID is not a usable phone number."""
    message = write_pcm(tmp_path / "m.wav", seconds=2.0)
    result = leave_message(call_uuid="vm-3", caller="anonymous", recording_path=message, recordings=store)
    assert result.ticket is not None and result.ticket.citizen_phone == ""
    assert CallRecord.select().count() == 0
