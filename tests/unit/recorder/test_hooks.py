"""The IVR trace as the call record sees it."""
from __future__ import annotations

from recorder.drafts import CallDraft, classify, missed_reason
from recorder.hooks import apply_trace


def entry(node, what, keys=""):
    return {"at": "2026-01-05T10:00:00.000", "node": node, "what": what, "keys": keys}


def test_path_is_nodes_entered_once_each_visit():
    """Should keep the nodes entered, in order, without repeating a node re-entered in place."""
    draft = CallDraft("u", caller="1")
    apply_trace(draft, "hangup", [entry("", "call started"), entry("welcome", "enter menu"), entry("welcome", "key", "9"),
                                  entry("welcome", "enter menu"), entry("self", "enter menu")], [])
    assert [n["node"] for n in draft.ivr_path] == ["welcome", "self"]
    assert missed_reason(draft, classify(draft)) == "ivr_hangup"


def test_flags_from_trace():
    """Should mark blacklisted and out-of-hours calls from what the IVR did, and served calls from the
    engine's own verdict (not from a guess over the trace's wording)."""
    blocked = CallDraft("a", caller="1")
    apply_trace(blocked, "blacklisted", [entry("bl", "blocked")], [])
    assert classify(blocked) == "blacklisted"
    night = CallDraft("b", caller="1")
    apply_trace(night, "hangup", [entry("time", "time: closed")], [])
    assert missed_reason(night, classify(night)) == "out_of_hours"
    told = CallDraft("c", caller="1", awaiting_ivr=True)
    apply_trace(told, "hangup", [entry("q", "status in_progress")], [], served="status")
    assert "served" in told.flags and missed_reason(told, classify(told)) is None
    assert not told.awaiting_ivr  # the trace is the IVR's last word
    # A hangup node reached after a failure ("completed") or an unconfirmed recording kept as a ticket
    # is not a served exit: the caller stays on the list for a call-back.
    failed = CallDraft("d", caller="1")
    apply_trace(failed, "completed", [entry("q", "too many wrong attempts")], [])
    assert missed_reason(failed, classify(failed)) == "ivr_hangup"


def test_a_step_not_stored_lists_the_caller_for_a_call_back():
    """Should list a caller whose complaint the IVR could not store (the database stayed away: the trace's
    ivr.engine.NOT_STORED line) for a call-back, even when the system ended the call or the caller was served
    by a look-up before; a person who answered still takes it off the list."""
    from ivr.engine import NOT_STORED

    entries = [{"what": "enter complaint", "node": "complaint", "at": "t"},
               {"what": NOT_STORED, "node": "complaint", "at": "t"}]
    for side, served in (("system", ""), ("caller", "status")):
        draft = CallDraft("u", caller="13912345678", hangup_side=side)
        apply_trace(draft, "", entries, [], served=served)
        assert "not_stored" in draft.flags
        assert missed_reason(draft, classify(draft)) == "not_stored"
    answered = CallDraft("u", caller="13912345678", flags={"not_stored"})
    assert missed_reason(answered, "answered") is None


def test_a_recording_the_storage_refused_lists_the_caller_for_a_call_back():
    """Should list a caller whose recording the storage refused (the disk full: ivr.engine.NOT_RECORDED) as
    not_stored, also when the IVR's final route ended the call with a goodbye (the system hung up)."""
    from ivr.engine import NOT_RECORDED

    draft = CallDraft("u", caller="13912345678", hangup_side="system")
    apply_trace(draft, "", [{"what": NOT_RECORDED, "node": "complaint_record", "at": "t"}], [])
    assert missed_reason(draft, classify(draft)) == "not_stored"
    assert missed_reason(CallDraft("u", caller="13912345678", hangup_side="system"), "self_service") is None


def test_a_recording_that_became_no_ticket_lists_the_caller_for_a_call_back():
    """Should list a caller whose recording filed no ticket (ivr.engine.NO_TICKET: nothing usable in it) as
    no_ticket, also when the system ended the call or self-service served the caller afterwards; a person who
    answered takes it off the list, and a step not stored keeps its own reason."""
    from ivr.engine import NO_TICKET, NOT_STORED

    for side, served in (("system", ""), ("caller", "status")):
        draft = CallDraft("u", caller="13912345678", hangup_side=side)
        apply_trace(draft, "", [entry("complaint_record", NO_TICKET)], [], served=served)
        assert missed_reason(draft, classify(draft)) == "no_ticket"
    assert missed_reason(CallDraft("u", caller="13912345678", flags={"no_ticket"}), "answered") is None
    lost = CallDraft("u", caller="13912345678", hangup_side="system")
    apply_trace(lost, "", [entry("complaint_record", NOT_STORED)], [])
    assert missed_reason(lost, classify(lost)) == "not_stored"


def test_a_recording_kept_after_an_ivr_failure_lists_the_caller_as_not_filed():
    """Should list a caller whose recording the IVR kept after failing on a bug (ivr.engine.NOT_FILED) as
    not_filed, ahead of any other reason in the trace, also when the system ended the call; a caller the bug
    left nothing of (IVR_FAILED) as not_stored; a person who answered takes either off the list."""
    from ivr.engine import IVR_FAILED, NO_TICKET, NOT_FILED

    draft = CallDraft("u", caller="13912345678", hangup_side="system")
    apply_trace(draft, "ivr_error", [entry("complaint_record", NO_TICKET), entry("complaint_record", NOT_FILED)], [])
    assert missed_reason(draft, classify(draft)) == "not_filed"
    bare = CallDraft("u", caller="13912345678", hangup_side="system")
    apply_trace(bare, "ivr_error", [entry("main", IVR_FAILED)], [])
    assert missed_reason(bare, classify(bare)) == "not_stored"
    assert missed_reason(CallDraft("u", caller="13912345678", flags={"not_filed"}), "answered") is None


def test_bridged_call_recorded_on_its_switch_when_switches_share_a_host():
    """Should find the bridged call's switch by its name when several switches share one host (the host alone
    is ambiguous), and by the host when only the host matches."""
    from recorder.hooks import BridgeRecorder

    class Pool:
        def __init__(self, names):
            self.conns = {name: object() for name in names}

        def get(self, name):
            return self.conns[name]

        def for_host(self, host):
            matches = [c for n, c in self.conns.items() if n.rpartition(":")[0] == host]
            if len(matches) != 1:
                raise KeyError(host)
            return matches[0]

        def all(self):
            return list(self.conns.values())

    pool = Pool(["127.0.0.1:8021", "127.0.0.1:8031", "10.0.0.2:8021"])
    recorder = BridgeRecorder(cdr=None, recordings=None, pool=pool)
    assert recorder._connection("127.0.0.1:8031") is pool.conns["127.0.0.1:8031"]
    assert recorder._connection("10.0.0.2:41000") is pool.conns["10.0.0.2:8021"]
    assert recorder._connection("127.0.0.1:41000") is None
