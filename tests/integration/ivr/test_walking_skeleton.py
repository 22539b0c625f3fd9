"""The walking skeleton through the fake FreeSWITCH: a call to 12345 becomes a ticket with its recording."""
from __future__ import annotations

import hashlib
from pathlib import Path

from caseflow.models import Attachment, Ticket
from ivr.models import IvrTrace
from tests.fakeswitch import Press, Speak, WaitFor


def prompt(phone, key, lang="zh"):
    return f"{phone.sounds}/{lang}/{key}.wav"


def test_walking_skeleton(phone):
    """Should welcome the caller, take 2, 2, a spoken complaint ended by #, 1 to confirm, read back the
    8-digit acceptance number digit by digit, and leave a ticket with the caller's number, channel phone
    and the recording attached."""
    call = phone.call([Press("2"), Press("2"), Speak(3), Press("#"), Press("1"),
                       WaitFor("playback", "ticket_thanks")])
    assert call.played[0] == prompt(phone, "welcome")
    ticket = Ticket.get()
    number = ticket.number
    assert len(number) == 8 and number.isdigit()
    i = call.played.index(prompt(phone, "acceptance_number"))
    assert call.played[i + 1:i + 9] == [prompt(phone, f"digit_{d}") for d in number]
    assert (ticket.citizen_phone, ticket.channel, ticket.type) == ("13800138000", "phone", "complaint")
    attachment = Attachment.get(Attachment.ticket == ticket)
    stored = Path(phone.config.recordings_dir) / attachment.path.removeprefix("recordings/")
    assert attachment.size == stored.stat().st_size > 1000
    assert attachment.sha256 == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert [r.terminator for r in call.recordings] == ["#"]
    assert call.hangup_cause == "NORMAL_CLEARING"
    trace = IvrTrace.get(IvrTrace.call_uuid == call.uuid)
    assert trace.tickets == number and trace.caller == "13800138000"
    assert [s["keys"] for s in trace.steps if s["what"] == "key"][:2] == ["2", "2"]
