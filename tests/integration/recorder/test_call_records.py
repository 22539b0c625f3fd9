"""Call records built from hooks and events, finalised with a MAC, and `python -m recorder.verify`."""
from __future__ import annotations

import io
import json

from core import db as core_db
from recorder.cdr import CdrRecorder
from recorder import verify
from switch.events import ChannelBridged, ChannelHangup
from recorder.models import CallRecord, MissedCall

from .conftest import SECRET


def answered_call(cdr, clock, uuid="call-1", caller="13800138000"):
    cdr.call_started(uuid, caller=caller, called="12345", server="fs1:8021")
    cdr.ivr_node(uuid, "welcome")
    clock.advance(seconds=3)
    cdr.ivr_node(uuid, "human")
    cdr.queue_entered(uuid, "consult")
    clock.advance(seconds=4)
    cdr.agent_offered(uuid, "1001")
    clock.advance(seconds=6)
    cdr.agent_offer_result(uuid, "1001", "timeout")
    cdr.agent_offered(uuid, "1002")
    clock.advance(seconds=2)
    cdr.agent_answered(uuid, "1002", agent_uuid=f"{uuid}-agent")
    clock.advance(seconds=30)
    cdr.hold(uuid, True)
    clock.advance(seconds=10)
    cdr.hold(uuid, False)
    clock.advance(seconds=20)
    return cdr.hangup(uuid, "NORMAL_CLEARING", "recv_bye")


def test_answered_call_record(cdr, clock):
    """Should keep caller, IVR path, queue times, offers, agent, durations and a MAC for an answered call."""
    record = answered_call(cdr, clock)
    row = CallRecord.get(CallRecord.call_uuid == "call-1")
    assert row.id == record.id and row.finalised and row.mac.startswith("v2:")
    assert row.disposition == "answered" and row.agent_no == "1002" and row.queue == "consult"
    assert [n["node"] for n in row.ivr_nodes()] == ["welcome", "human"]
    assert [(o["agent"], o["result"]) for o in row.offers()] == [("1001", "timeout"), ("1002", "answered")]
    assert (row.wait_seconds, row.talk_seconds, row.hold_seconds) == (12, 50, 10)
    assert row.hangup_side == "caller" and row.hangup_cause == "NORMAL_CLEARING"
    assert json.loads(row.other_uuids) == ["call-1-agent"]
    assert MissedCall.select().count() == 0


def test_agent_hangs_up_first_via_switch_events(cdr, clock):
    """Should record that the agent hung up when the agent's leg ends (by the agent) before the caller's."""
    cdr.call_started("c2", caller="139", called="12345")
    cdr.queue_entered("c2", "q")
    clock.advance(seconds=2)
    cdr.agent_answered("c2", "1003")
    cdr.on_switch_event(ChannelBridged(server="fs1", uuid="c2", other_uuid="leg-b"))
    clock.advance(seconds=5)
    cdr.on_switch_event(ChannelHangup(server="fs1", uuid="leg-b", cause="NORMAL_CLEARING", hangup_side="caller"))
    cdr.on_switch_event(ChannelHangup(server="fs1", uuid="c2", cause="NORMAL_CLEARING", hangup_side="switch"))
    cdr.on_switch_event(ChannelHangup(server="fs1", uuid="c2", cause="NORMAL_CLEARING", complete=True))
    assert cdr.settle()
    row = CallRecord.get(CallRecord.call_uuid == "c2")
    assert row.finalised and row.hangup_side == "agent" and row.talk_seconds == 5


def test_caller_hangs_up_first(cdr, clock):
    """Should record the caller as the side that hung up when the switch then ends the agent's leg."""
    cdr.call_started("c5", caller="139")
    cdr.agent_answered("c5", "1003", agent_uuid="leg-c")
    clock.advance(seconds=5)
    cdr.on_switch_event(ChannelHangup(server="fs1", uuid="leg-c", cause="NORMAL_CLEARING", hangup_side="switch"))
    cdr.on_switch_event(ChannelHangup(server="fs1", uuid="c5", cause="NORMAL_CLEARING", hangup_side="caller"))
    assert cdr.settle()
    assert CallRecord.get(CallRecord.call_uuid == "c5").hangup_side == "caller"


def _hangups(cdr, clock):
    """(bridged, hangup, side) for the hang-up-side tests: ``bridged(uuid, leg)`` answers a caller on agent 1003's
    leg and lets 5 s pass; ``hangup(uuid, side="", complete=False)`` feeds the switch's CHANNEL_HANGUP (or,
    complete, CHANNEL_HANGUP_COMPLETE) with that side; ``side(uuid)`` is the side recorded once settled."""
    def bridged(uuid, leg):
        cdr.call_started(uuid, caller="139")
        cdr.agent_answered(uuid, "1003", agent_uuid=leg)
        clock.advance(seconds=5)

    def hangup(uuid, side="", complete=False):
        cdr.on_switch_event(ChannelHangup(server="fs1", uuid=uuid, cause="NORMAL_CLEARING", hangup_side=side,
                                          complete=complete))

    def side(uuid):
        assert cdr.settle()  # the events' finalisations are written by the recorder's finaliser
        return CallRecord.get(CallRecord.call_uuid == uuid).hangup_side

    return bridged, hangup, side


def test_hangup_side_from_the_final_hangup_event(cdr, clock):
    """Should take who hung up from the channel's final hang-up event, as the real switch sends it: its
    first CHANNEL_HANGUP carries no sip_hangup_disposition, only CHANNEL_HANGUP_COMPLETE does (caller's BYE:
    recv_bye; the switch's: send_bye); an agent whose leg ended first stays the side that hung up."""
    bridged, hangup, side = _hangups(cdr, clock)

    bridged("bye-1", "leg-1")  # the caller sends BYE: its leg goes first, the switch then ends the agent's
    hangup("bye-1")
    hangup("leg-1")
    assert side("bye-1") == ""
    hangup("bye-1", "caller", complete=True)
    hangup("leg-1", "switch", complete=True)
    assert side("bye-1") == "caller" and CallRecord.get(CallRecord.call_uuid == "bye-1").finalised

    bridged("bye-2", "leg-2")  # the agent sends BYE: the agent's leg goes first
    hangup("leg-2")
    hangup("bye-2")
    hangup("leg-2", "caller", complete=True)
    hangup("bye-2", "switch", complete=True)
    assert side("bye-2") == "agent"

    cdr.call_started("bye-3", caller="139")  # the IVR ends the call
    hangup("bye-3")
    hangup("bye-3", "switch", complete=True)
    assert side("bye-3") == "system"


def test_agent_leg_ending_first_without_a_disposition_is_not_the_agent(cdr, clock):
    """Should not record the agent as the side that hung up when the agent's leg's first hang-up event has no
    SIP disposition and the switch's final event says it sent the BYE (the system, or a loopback citizen's
    leaving, ended the call): unknown for a loopback caller (no disposition of its own), system when the
    caller's leg says we ended it; the agent only with the agent leg's own BYE as evidence."""
    call, hangup, side = _hangups(cdr, clock)

    call("loop-1", "leg-l1")  # a loopback citizen hangs up; the agent's leg's events happen to come first
    hangup("leg-l1")
    hangup("loop-1")
    hangup("leg-l1", "switch", complete=True)
    hangup("loop-1", complete=True)
    assert side("loop-1") == ""

    call("sys-1", "leg-s1")  # the system ends the call (uuid_kill of both legs)
    hangup("leg-s1")
    hangup("sys-1")
    hangup("sys-1", "switch", complete=True)
    hangup("leg-s1", "switch", complete=True)
    assert side("sys-1") == "system"

    call("late-1", "leg-t1")  # the agent's BYE, its disposition only after the record closed
    hangup("leg-t1")
    hangup("late-1")
    assert side("late-1") == ""
    hangup("late-1", "switch", complete=True)
    assert side("late-1") == "system"
    hangup("leg-t1", "caller", complete=True)
    assert side("late-1") == "agent" and CallRecord.get(CallRecord.call_uuid == "late-1").finalised


def test_abandoned_call_goes_to_missed_list(cdr, clock):
    """Should finalise an unanswered queue call as abandoned and add it to the missed calls."""
    cdr.call_started("c3", caller="13900000000")
    cdr.queue_entered("c3", "complaints")
    clock.advance(seconds=40)
    record = cdr.hangup("c3", "ORIGINATOR_CANCEL", "recv_bye")
    assert record.disposition == "abandoned" and record.wait_seconds == 40
    missed = MissedCall.get()
    assert (missed.caller, missed.reason, missed.queue, missed.call_id) == ("13900000000", "abandoned",
                                                                           "complaints", record.id)


def test_unknown_call_and_flags(cdr):
    """Should ignore hooks for calls it never saw and refuse an unknown flag."""
    assert cdr.hangup("nobody") is None
    cdr.ivr_node("nobody", "x")
    cdr.call_started("c4", caller="1")
    try:
        cdr.flag("c4", "vip")
    except ValueError as exc:
        assert "vip" in str(exc)
    else:
        raise AssertionError("unknown flag accepted")


def test_verify_lists_a_record_edited_in_sql(cdr, clock, db, db_url, monkeypatch, tmp_path):
    """Should list a call record whose duration was changed in SQL, and exit non-zero."""
    monkeypatch.setenv("HOTLINE_SECRET_KEY", SECRET)
    monkeypatch.setenv("HOTLINE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("HOTLINE_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("HOTLINE_RECORD_KEY", raising=False)
    first = answered_call(cdr, clock, "v-1")
    second = answered_call(cdr, clock, "v-2")
    out = io.StringIO()
    try:
        assert verify.main(["--database-url", db_url], out=out) == 0, out.getvalue()
        core_db.database.initialize(db)
        db.execute_sql("UPDATE call_record SET talk_seconds = 3 WHERE id = %d" % second.id)
        out = io.StringIO()
        assert verify.main(["--database-url", db_url], out=out) == 1
        lines = out.getvalue().splitlines()
        assert lines[0].split("\t")[:2] == [f"record {second.id}", "v-2"]
        assert "fields altered" in lines[0]
        assert not any(line.startswith(f"record {first.id}\t") for line in lines)
        assert ": 1 problems" in lines[-1]
    finally:
        core_db.database.initialize(db)


def test_verify_refuses_without_key(monkeypatch, tmp_path):
    """Should exit with status 2 and say why when no key can be found (production without a secret)."""
    monkeypatch.setenv("HOTLINE_MODE", "production")
    monkeypatch.delenv("HOTLINE_SECRET_KEY", raising=False)
    monkeypatch.setenv("HOTLINE_CONFIG", str(tmp_path / "none.toml"))
    out = io.StringIO()
    assert verify.main([], out=out) == 2
    assert "cannot check" in out.getvalue()


def test_finished_drafts_stay_bounded_by_count_and_age(key, clock, db):
    """Should keep the drafts of ended calls (for late events) no longer than ``keep_seconds`` and no more
    than ``keep_finished``, their legs forgotten with them, and still amend a call that just ended."""
    now = [1000.0]
    cdr = CdrRecorder(key, clock=clock, keep_finished=50, keep_seconds=120, monotonic=lambda: now[0])
    for i in range(200):  # more calls than the count allows, within the age
        cdr.call_started(f"n{i}", caller="139")
        cdr.add_leg(f"n{i}", f"n{i}-agent")
        cdr.hangup(f"n{i}", "NORMAL_CLEARING", "recv_bye")
        now[0] += 0.1
    assert len(cdr.finished) == 50 and len(cdr.finished_leg_of) == 50 and len(cdr._finished_at) == 50
    assert list(cdr.finished)[0] == "n150"
    now[0] += 121  # two minutes later one more call ends: every older draft has aged out
    cdr.call_started("late", caller="139")
    cdr.hangup("late", "NORMAL_CLEARING", "recv_bye")
    assert list(cdr.finished) == ["late"] and cdr.finished_leg_of == {} and list(cdr._finished_at) == ["late"]
    cdr.flag("late", "voicemail")  # a word just after the hang-up still lands on its record
    assert "voicemail" in cdr.finished["late"].flags
