"""Pure rules of call records: disposition, durations, missed-call reason, hang-up side, MAC canonical form."""
from __future__ import annotations

import datetime as dt

import pytest

from recorder.drafts import CallDraft, classify, durations, missed_reason, side_of
from recorder.integrity import canonical_bytes, compute_mac, mac_matches, record_key

T0 = dt.datetime(2026, 11, 27, 8, 0, 0)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_answered_call_times():
    """Should count wait from queue entry to answer, and talk from answer to end minus hold."""
    d = CallDraft("u1", caller="138", started_at=T0, queue_entered_at=at(10), answered_at=at(25),
                  ended_at=at(125), hold_total=20)
    assert classify(d) == "answered"
    assert durations(d) == (15, 80, 20)
    assert missed_reason(d, "answered") is None


def test_open_hold_counts_until_end():
    """Should count a hold still running at hang-up up to the end of the call."""
    d = CallDraft("u1", started_at=T0, answered_at=at(0), hold_started_at=at(50), ended_at=at(60))
    assert durations(d) == (0, 50, 10)


def test_abandoned_in_queue_is_missed():
    """Should classify a caller who left the queue unanswered as abandoned and put them on the missed list."""
    d = CallDraft("u2", caller="139", started_at=T0, queue_entered_at=at(5), ended_at=at(65))
    assert classify(d) == "abandoned"
    assert durations(d)[0] == 60
    assert missed_reason(d, "abandoned") == "abandoned"


def test_callback_request_is_its_own_reason():
    """Should list a caller who asked (in the queue) to be called back as such, not as abandoned."""
    d = CallDraft("cb", caller="139", started_at=T0, queue_entered_at=at(5), ended_at=at(30),
                  flags={"callback_requested"})
    assert missed_reason(d, classify(d)) == "callback_request"


def test_overflow_voicemail_blacklist_fax():
    """Should apply the disposition rules in order: blacklist, fax, answered, voicemail, overflow."""
    base = dict(caller="1", started_at=T0, queue_entered_at=at(1), ended_at=at(9))
    assert classify(CallDraft("a", flags={"overflowed"}, **base)) == "overflowed"
    assert classify(CallDraft("b", flags={"voicemail", "overflowed"}, **base)) == "voicemail"
    assert classify(CallDraft("c", flags={"blacklisted", "voicemail"}, **base)) == "blacklisted"
    assert classify(CallDraft("d", flags={"fax"}, **base)) == "fax"
    assert missed_reason(CallDraft("b", flags={"voicemail"}, **base), "voicemail") is None


def test_ivr_hangup_and_out_of_hours():
    """Should list an IVR caller who hung up unserved, and an out-of-hours caller, but not a served one
    (self-service after hours included)."""
    unserved = CallDraft("e", caller="2", started_at=T0, ended_at=at(5), hangup_side="caller")
    assert classify(unserved) == "self_service"
    assert missed_reason(unserved, "self_service") == "ivr_hangup"
    served = CallDraft("f", caller="2", started_at=T0, ended_at=at(5), hangup_side="caller", flags={"served"})
    assert missed_reason(served, "self_service") is None
    closed = CallDraft("g", caller="2", started_at=T0, ended_at=at(5), flags={"out_of_hours"})
    assert missed_reason(closed, "self_service") == "out_of_hours"
    night_query = CallDraft("h", caller="2", started_at=T0, ended_at=at(5), flags={"out_of_hours", "served"})
    assert missed_reason(night_query, "self_service") is None
    anonymous = CallDraft("h", caller="", started_at=T0, ended_at=at(5))
    assert missed_reason(anonymous, "self_service") is None


@pytest.mark.parametrize("value,leg,expected", [
    ("recv_bye", "caller", "caller"), ("send_bye", "caller", "system"), ("recv_bye", "agent", "agent"),
    ("agent", "caller", "agent"), ("caller", "agent", "agent"), ("switch", "agent", "system"),
    ("caller", "caller", "caller"), ("nonsense", "caller", ""), ("", "caller", "")])
def test_side_mapping(value, leg, expected):
    """Should map the switch's hang-up disposition to caller/agent/system."""
    assert side_of(value, leg) == expected


def test_mac_detects_any_change_and_wrong_key():
    """Should match the fields it was computed over and nothing else, and only under its own key."""
    key = record_key("s" * 40)
    fields = {"id": 7, "call_uuid": "u", "talk_seconds": 80, "started_at": T0, "caller": "138"}
    mac = compute_mac(key, fields)
    assert mac.startswith("v2:") and mac_matches(key, fields, mac)
    assert not mac_matches(key, {**fields, "talk_seconds": 81}, mac)
    assert not mac_matches(key, {**fields, "id": 8}, mac)
    assert not mac_matches(record_key("t" * 40), fields, mac)
    assert not mac_matches(key, fields, "")
    assert not mac_matches(key, fields, "v0:" + mac[3:])


def test_canonical_form_ignores_timezone_representation():
    """Should treat the same instant as equal whether aware or naive UTC, so databases agree."""
    aware = dt.datetime(2026, 11, 27, 16, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    naive = dt.datetime(2026, 11, 27, 8, 0)
    assert canonical_bytes({"started_at": aware}) == canonical_bytes({"started_at": naive})


def test_dedicated_key_wins_and_missing_key_is_refused():
    """Should prefer HOTLINE_RECORD_KEY and refuse to sign with no key at all."""
    assert record_key("x" * 40, {"HOTLINE_RECORD_KEY": "k"}) == b"k"
    with pytest.raises(ValueError):
        record_key("", {})
