"""Call records completed from the ACD's queue rows and notices, and re-finalised when the IVR trace arrives
after the hang-up."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from acd.models import Agent, Queue, QueueEntry
from caseflow.accounts import create_user
from hotline.product import attach_recorder as attach
from recorder.integrity import verify_database
from recorder.models import CallRecord, MissedCall

T0 = dt.datetime(2026, 11, 27, 1, 30, 0)


class Acd:
    def __init__(self):
        self.listeners, self.operator_no, self.agents = [], {}, {}

    def subscribe(self, listener):
        self.listeners.append(listener)

    def notify(self, **notice):
        for listener in self.listeners:
            listener(notice)


def trace(uuid, outcome, entries=(), tickets=(), served=""):
    return SimpleNamespace(call_uuid=uuid, outcome=outcome, entries=list(entries), tickets=list(tickets),
                           served=served)


def setup(cdr):
    acd, ivr = Acd(), SimpleNamespace(on_trace=[])
    attach(cdr, acd=acd, ivr_services=ivr)
    queue = Queue.create(name="consult", skill="consult")
    user = create_user("1001", "王芳", "correct horse battery", roles=["agent"])
    agent = Agent.create(user=user, extension="1000")
    return acd, ivr, queue, agent


def test_answered_queue_call_from_rows_and_notices(cdr, clock, key):
    """Should take the queue times and the agent from the ACD, and the offers from its notices."""
    acd, ivr, queue, agent = setup(cdr)
    cdr.call_started("q-1", caller="13800000001")
    acd.notify(type="offer", agent_id=agent.id, call_uuid="q-1", number="13800000001", queue="consult")
    clock.advance(seconds=12)
    acd.notify(type="answered", agent_id=agent.id, call_uuid="q-1", number="13800000001", queue="consult")
    QueueEntry.create(call_uuid="q-1", queue=queue, entered_at=T0, state="answered_done", agent=agent,
                      answered_at=T0 + dt.timedelta(seconds=12), ended_at=T0 + dt.timedelta(seconds=70))
    clock.advance(seconds=58)
    record = cdr.hangup("q-1", "NORMAL_CLEARING", "caller")
    assert (record.disposition, record.queue, record.agent_no, record.wait_seconds) == ("answered", "consult",
                                                                                          "1001", 12)
    assert [o["agent"] for o in record.offers()] == ["1001"]
    ivr.on_trace[0](trace("q-1", "queue:consult", [{"node": "welcome", "what": "enter menu", "at": "x"}]))
    again = CallRecord.get(CallRecord.call_uuid == "q-1")
    assert [n["node"] for n in again.ivr_nodes()] == ["welcome"] and again.mac != record.mac
    assert verify_database(key).problems == [] and MissedCall.select().count() == 0


def test_hold_and_outbound_call(cdr, clock, key):
    """Should count hold time from the desk's hold notices, and keep an agent's outbound call (answered at
    the bridge, never a missed call)."""
    from recorder.hooks import BridgeRecorder
    from switch.events import ChannelBridged, ChannelHangup

    acd, ivr, queue, agent = setup(cdr)
    cdr.call_started("h-1", caller="13800000004")
    acd.agents[agent.id] = SimpleNamespace(call_uuid="h-1", leg_uuid="leg-h", extension="1000", server="fs1")
    acd.notify(type="answered", agent_id=agent.id, call_uuid="h-1", number="13800000004", queue="consult")
    clock.advance(seconds=10)
    acd.notify(type="hold", agent_id=agent.id, on_hold=True)
    clock.advance(seconds=25)
    acd.notify(type="hold", agent_id=agent.id, on_hold=False)
    clock.advance(seconds=5)
    record = cdr.hangup("h-1", "NORMAL_CLEARING", "caller")
    assert (record.hold_seconds, record.talk_seconds) == (25, 15)

    acd.agents[agent.id] = SimpleNamespace(call_uuid="out-1", leg_uuid="out-1", extension="1000", server="fs1")
    acd.notify(type="answered", agent_id=agent.id, call_uuid="out-1", number="13900000009", direction="outbound")
    bridge = BridgeRecorder(cdr, recordings=SimpleNamespace(start_on_bridged=lambda conn, uuid: None),
                            pool=SimpleNamespace(all=lambda: [object()]))
    clock.advance(seconds=8)
    bridge.on_switch_event(ChannelBridged(server="fs1", uuid="out-1", other_uuid="citizen-leg"))
    clock.advance(seconds=30)
    cdr.on_switch_event(ChannelHangup(server="fs1", uuid="out-1", cause="NORMAL_CLEARING", hangup_side="caller"))
    assert cdr.settle()
    out = CallRecord.get(CallRecord.call_uuid == "out-1")
    assert (out.direction, out.called, out.agent_no, out.disposition, out.talk_seconds) == (
        "outbound", "13900000009", "1001", "answered", 30)
    cdr.call_started("out-2", called="13900000010", direction="outbound")
    assert cdr.hangup("out-2", "NO_ANSWER").disposition == "no_answer"
    assert MissedCall.select().count() == 0 and verify_database(key).problems == []


def test_callback_request_and_late_trace(cdr, clock, key):
    """Should list a caller who asked for a call-back in the queue as such, and withdraw an 'IVR hang-up'
    entry when the late IVR trace shows the caller was served."""
    acd, ivr, queue, agent = setup(cdr)
    cdr.call_started("q-2", caller="13800000002")
    QueueEntry.create(call_uuid="q-2", queue=queue, entered_at=T0, state="callback_requested",
                      ended_at=T0 + dt.timedelta(seconds=40), offered_agents=str(agent.id))
    clock.advance(seconds=45)
    record = cdr.hangup("q-2", "NORMAL_CLEARING", "caller")
    assert record.disposition == "abandoned"
    assert MissedCall.get(MissedCall.call == record).reason == "callback_request"
    assert record.offers()[0]["agent"] == "1001"

    cdr.call_started("q-3", caller="13800000003")
    clock.advance(seconds=20)
    cdr.hangup("q-3", "NORMAL_CLEARING", "caller")
    assert MissedCall.select().where(MissedCall.caller == "13800000003").count() == 1
    ivr.on_trace[0](trace("q-3", "hangup", [{"node": "query", "what": "status in_progress", "at": "x"}],
                          served="status"))
    assert MissedCall.select().where(MissedCall.caller == "13800000003").count() == 0
    assert verify_database(key).problems == []


def missed_lines(caplog, caller):
    return [r for r in caplog.records if r.getMessage().startswith(f"missed call from {caller} ")]


def test_ivr_call_waits_for_the_ivr_verdict(cdr, clock, key, caplog):
    """Should not list a self-service caller when the call hangs up before the IVR's trace arrives: its record
    is written once the trace comes (not also at the hang-up), a served caller is never on the list (nor in the
    log's "missed call from" lines), an unserved one is listed once the trace says so, and without any trace
    once the IVR lets go of the call."""
    caplog.set_level("INFO", logger="recorder.missed")
    acd, ivr, queue, agent = setup(cdr)
    seen = []
    cdr.on_missed = seen.append
    cdr.call_started("s-1", caller="13800000005", ivr=True)
    clock.advance(seconds=30)
    assert cdr.hangup("s-1", "NORMAL_CLEARING", "recv_bye") is None
    assert not CallRecord.get(CallRecord.call_uuid == "s-1").finalised and MissedCall.select().count() == 0
    ivr.on_trace[0](trace("s-1", "hangup", [{"node": "complaint_record", "what": "ticket 12345678", "at": "x"}],
                          tickets=["12345678"], served="ticket"))
    record = CallRecord.get(CallRecord.call_uuid == "s-1")
    assert record.disposition == "self_service" and record.finalised
    cdr.ivr_ended("s-1")
    assert MissedCall.select().count() == 0 and not missed_lines(caplog, "13800000005") and seen == []

    cdr.call_started("s-2", caller="13800000006", ivr=True)
    cdr.hangup("s-2", "NORMAL_CLEARING", "recv_bye")
    assert MissedCall.select().count() == 0
    ivr.on_trace[0](trace("s-2", "hangup", [{"node": "main", "what": "caller hung up", "at": "x"}]))
    cdr.ivr_ended("s-2")
    assert [(m.caller, m.reason, m.calls) for m in MissedCall.select()] == [("13800000006", "ivr_hangup", 1)]
    assert len(missed_lines(caplog, "13800000006")) == 1 and len(seen) == 1

    cdr.call_started("s-3", caller="13800000007", ivr=True)
    cdr.hangup("s-3", "NORMAL_CLEARING", "recv_bye")
    assert MissedCall.select().where(MissedCall.caller == "13800000007").count() == 0
    cdr.ivr_ended("s-3")  # the trace never came: decide without it
    assert MissedCall.get(MissedCall.caller == "13800000007").reason == "ivr_hangup"
    assert verify_database(key).problems == []


def test_message_filed_after_the_hang_up_marks_the_record(cdr, clock, key):
    """Should mark the call record voicemail when the message is filed after the caller hung up (the IVR
    keeps a recording cut by the hang-up), instead of losing the flag on a closed record."""
    acd, ivr, queue, agent = setup(cdr)
    cdr.call_started("v-1", caller="13800000008", ivr=True)
    cdr.hangup("v-1", "NORMAL_CLEARING", "recv_bye")
    cdr.flag("v-1", "voicemail")
    assert not CallRecord.get(CallRecord.call_uuid == "v-1").finalised  # written with the IVR's word
    ivr.on_trace[0](trace("v-1", "hangup", served=""))
    assert CallRecord.get(CallRecord.call_uuid == "v-1").disposition == "voicemail"
    assert MissedCall.select().count() == 0 and verify_database(key).problems == []
