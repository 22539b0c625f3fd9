"""The IVR and the ACD hand callers to each other: a caller the ACD sent on (transferred) is no longer the
IVR's, and a caller an agent blind-transferred into a queue (hotline_queue) goes straight to that queue."""
from __future__ import annotations

from acd.dispatcher import QueueOutcome
from ivr.models import IvrTrace
from switch.errors import CallHangup, SwitchTimeout
from tests.fakeswitch import Hangup, WaitFor
from tests.integration.ivr.test_phone_paths import played


class FakeAcd:
    """An ACD whose enter_queue does one scripted thing and says what it did."""

    def __init__(self, action):
        self.action = action
        self.calls = []

    def enter_queue(self, session, skill, queue_name=None, waited=0.0):
        self.calls.append((skill, queue_name))
        return self.action(session)


def _transfer_to_agent(session):
    try:
        session.execute("transfer", "1000 XML default", timeout=10.0)
    except (CallHangup, SwitchTimeout):
        pass  # the channel left the socket application
    return QueueOutcome("transferred", "general")


def test_transferred_caller_is_left_alone(phone):
    """Should end the IVR's control when the ACD transferred the caller: no busy prompt, no hang-up."""
    desk = phone.fs.add_agent("1000", talk_seconds=1, answer_delay=0.1)
    phone.services.acd = FakeAcd(_transfer_to_agent)
    call = phone.call([])
    heard = played(phone, call)
    assert heard and heard[-1] == "connecting"
    assert "all_busy" not in heard
    assert desk.answered_calls
    assert phone.services.acd.calls == [("general", None)]
    assert IvrTrace.get(IvrTrace.call_uuid == call.uuid).outcome == "queue_transferred"


def test_hotline_queue_goes_straight_to_the_named_queue(phone):
    """Should skip the welcome and menus for a caller an agent transferred into a queue, and fall back to
    the all-busy node when that queue is busy."""
    phone.services.acd = FakeAcd(lambda session: QueueOutcome("busy", "complaint_q"))
    call = phone.sent_back([WaitFor("playback", "all_busy"), Hangup()], "hotline_queue", "complaint_q")
    phone.finish(call)
    heard = played(phone, call)
    assert "welcome" not in heard and "main_menu" not in heard
    assert heard[0] == "all_busy"
    assert phone.services.acd.calls == [(None, "complaint_q")]
    entries = IvrTrace.get(IvrTrace.call_uuid == call.uuid).entries
    assert "complaint_q" in entries and "@queue" in entries


def test_hotline_queue_answered_hangs_up_after_the_conversation(phone):
    """Should record the named queue as the outcome when the agent answered."""
    phone.services.acd = FakeAcd(lambda session: QueueOutcome("answered", "complaint_q", agent_id=1))
    call = phone.sent_back([], "hotline_queue", "complaint_q")
    phone.finish(call)
    assert played(phone, call) == []
    assert IvrTrace.get(IvrTrace.call_uuid == call.uuid).outcome == "queue:complaint_q"


def test_forged_hotline_queue_is_not_a_queue_transfer(phone):
    """Should give a caller whose hotline_queue the app did not set the welcome and menus, never the queue."""
    phone.services.acd = FakeAcd(lambda session: QueueOutcome("answered", "complaint_q", agent_id=1))
    call = phone.fs.place_call(phone.server.address, script=[WaitFor("playback", "welcome"), Hangup()],
                               variables={"hotline_queue": "complaint_q"})
    phone.finish(call)
    assert played(phone, call)[:1] == ["welcome"]
    assert (None, "complaint_q") not in phone.services.acd.calls
