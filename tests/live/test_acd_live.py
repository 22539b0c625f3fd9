"""The ACD on a real FreeSWITCH (skipped unless HOTLINE_TEST_ESL is set, or without sipp).

The app side is the product's own parts: a SwitchPool on the live switch, the Acd, and an OutboundServer
on 127.0.0.1:0 whose handler answers and puts the caller into a queue.  Agents' phones are sipp UAS
processes registered on the internal profile; a caller is a loopback call to 12345.
"""
from __future__ import annotations

import shutil

import gevent
import pytest

from acd.dispatcher import Acd, AcdSettings, create_agent, create_queue
from acd.models import Agent, QueueEntry
from caseflow.models import User
from core.config import EslEndpoint
from switch.errors import CallHangup
from switch.inbound import SwitchPool
from switch.outbound import OutboundServer
from tests.live.sipphone import AgentPhone

pytestmark = pytest.mark.live


def _in_thread(func, *args):
    """A blocking call (raw ESL client, sipp) off the hub, so the app's greenlets keep running."""
    return gevent.get_hub().threadpool.apply(func, args)


def _wait(predicate, timeout: float, what: str):
    with gevent.Timeout(timeout, AssertionError(f"timed out waiting for {what}")):
        while not predicate():
            gevent.sleep(0.05)


@pytest.fixture
def sipp():
    path = shutil.which("sipp")
    if path is None:
        pytest.skip("sipp is not installed (Debian package sip-tester)")
    return path


class LiveLine:
    """Pool + Acd + outbound server: every call that reaches it is answered and queued for `skill`.

    With `recordings_dir`, the recorder is wired as core.product wires it: a call record per call, and
    every bridged conversation recorded (uuid_record) and indexed when the switch reports it stopped.
    """

    def __init__(self, endpoint, skill: str, recordings_dir=None):
        self.pool = SwitchPool([EslEndpoint(*endpoint)], api_timeout=5.0)
        self.pool.start()
        assert self.pool.all()[0].wait_connected(10)
        self.acd = Acd(self.pool, settings=AcdSettings(reconcile_interval=3600))
        self.cdr = None
        if recordings_dir is not None:
            from recorder.cdr import CdrRecorder
            from recorder.hooks import attach
            from recorder.recording import RecordingService
            from recorder.storage import RecordingStore

            self.cdr = CdrRecorder(key=b"k" * 32)
            recordings = RecordingService(RecordingStore(recordings_dir))
            bridge = attach(self.cdr, acd=self.acd, recordings=recordings, pool=self.pool, spawn=gevent.spawn)
            for conn in self.pool.all():
                conn.subscribe(self.cdr.on_switch_event)
                conn.subscribe(bridge.on_switch_event)
                conn.subscribe(recordings.on_switch_event)
        self.acd.start()
        self.skill = skill
        self.outcomes = {}
        self.server = OutboundServer("127.0.0.1", 0, self.handle)
        self.server.start()

    def handle(self, session):
        if self.cdr is not None:
            self.cdr.call_started(session.uuid, caller=session.caller, called=session.destination,
                                  server=session.server)
        try:
            session.answer()
            # A loopback caller leg speaks L16, which FreeSWITCH alone would offer the agent's phone (488);
            # a carrier line or desk phone brings G.711.  Offer that, as a real call would.
            session.execute("export", "nolocal:absolute_codec_string=PCMA,PCMU")
            self.outcomes[session.uuid] = self.acd.enter_queue(session, self.skill)
        except CallHangup:
            self.outcomes[session.uuid] = None
            raise

    @property
    def address(self) -> str:
        return "%s:%d" % self.server.address

    def close(self):
        self.server.stop(drain_timeout=5)
        self.acd.stop()
        self.pool.stop()


def _agent(no: str, extension: str, skill: str) -> Agent:
    user = User.create(operator_no=no, name=f"话务员{no}", password_hash="x", roles="agent", extension=extension)
    return create_agent(user, {skill: 5})


def test_queued_caller_is_offered_to_the_registered_agent_only(db, esl_endpoint, esl, esl_events, sipp,
                                                                place_call, tmp_path):
    """Should ring only the agent whose phone is registered, bridge the caller when it answers, and leave
    both agents idle afterwards; the unregistered agent (first in fixed order) is never offered."""
    password = esl.api("global_getvar agent_password").strip()
    sip_port = int(esl.api("global_getvar internal_sip_port").strip())
    create_queue("consult", "consult", strategy="fixed_order", wrap_up_seconds=0, announce_interval=0,
                 ring_timeout=15)
    absent = _agent("8101", "1015", "consult")      # first in fixed order (seat 8101), but no phone
    present = _agent("8102", "1016", "consult")
    phone = AgentPhone(sipp, tmp_path, sip_port, "1016", password)
    line = None
    try:
        _in_thread(phone.register)
        line = LiveLine(esl_endpoint, "consult")
        for agent in (absent, present):
            line.acd.transition(agent.id, "login")
            line.acd.transition(agent.id, "ready")
        assert line.acd.agents[present.id].registered and not line.acd.agents[absent.id].registered

        citizen = place_call(caller="13911110000", outbound=line.address)
        bridged = _in_thread(esl_events.wait_event, lambda ev: ev.get("Event-Name") == "CHANNEL_BRIDGE"
                             and ev.get("Caller-Caller-ID-Number") == "13911110000"
                             and ev.get("Unique-ID") != citizen.uuid, 40)
        agent_leg = bridged["Other-Leg-Unique-ID"]
        answered = esl.api(f"uuid_getvar {agent_leg} dialed_user").strip()
        assert answered == "1016"
        assert line.acd.agents[present.id].state == "in_call"
        esl.api(f"uuid_kill {agent_leg}")               # the agent hangs up: the conversation ends
        _wait(lambda: line.outcomes, 20, "the queue outcome")
        outcome = next(iter(line.outcomes.values()))
        assert outcome is not None and (outcome.outcome, outcome.agent_id) == ("answered", present.id)
        entry = QueueEntry.get(QueueEntry.call_uuid == next(iter(line.outcomes)))
        assert entry.offered_agents == str(present.id)
        _wait(lambda: line.acd.agents[present.id].state == "idle", 10, "the agent back to idle")
        assert line.acd.stuck_agents() == []
        status, output = _in_thread(phone.finished, 20)
        assert status == 0, output[-2000:]
    finally:
        if line is not None:
            line.close()
        _in_thread(phone.close)


def test_agent_conversation_is_recorded_alaw_under_the_day_folder(db, esl_endpoint, esl, esl_events, sipp,
                                                                   place_call, tmp_path):
    """Should record the caller's conversation with the agent (not the wait) to
    recordings/YYYY-MM-DD/<call uuid>.wav in A-law, indexed with duration, size and sha256."""
    import datetime as dt
    import subprocess
    from zoneinfo import ZoneInfo

    from recorder.models import Recording

    password = esl.api("global_getvar agent_password").strip()
    sip_port = int(esl.api("global_getvar internal_sip_port").strip())
    create_queue("consult", "consult", wrap_up_seconds=0, announce_interval=0, ring_timeout=15)
    agent = _agent("8103", "1017", "consult")
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    recordings.chmod(0o777)  # FreeSWITCH may run as its own user
    phone = AgentPhone(sipp, tmp_path, sip_port, "1017", password)
    line = None
    try:
        _in_thread(phone.register)
        line = LiveLine(esl_endpoint, "consult", recordings_dir=recordings)
        line.acd.transition(agent.id, "login")
        line.acd.transition(agent.id, "ready")
        day_started = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
        citizen = place_call(caller="13922220000", outbound=line.address)
        bridged = _in_thread(esl_events.wait_event, lambda ev: ev.get("Event-Name") == "CHANNEL_BRIDGE"
                             and ev.get("Caller-Caller-ID-Number") == "13922220000"
                             and ev.get("Unique-ID") != citizen.uuid, 40)
        call_uuid, agent_leg = bridged["Unique-ID"], bridged["Other-Leg-Unique-ID"]
        _in_thread(esl_events.wait_event, lambda ev: ev.get("Event-Name") == "RECORD_START"
                   and ev.get("Unique-ID") == call_uuid, 20)
        citizen.speak("tone_stream://%(1000,0,440);loops=3")    # the caller talks for three seconds
        _in_thread(esl_events.wait_event, lambda ev: ev.get("Event-Name") == "PLAYBACK_STOP"
                   and ev.get("Unique-ID") == citizen.uuid, 20)
        esl.api(f"uuid_kill {agent_leg}")                # the agent hangs up
        _wait(lambda: Recording.select().where((Recording.call_uuid == call_uuid)
                                               & (Recording.status != "recording")).exists(),
              30, "the recording to be indexed")
        rec = Recording.get(Recording.call_uuid == call_uuid)
        assert rec.status == "ok", rec.failure_reason
        days = {day_started, dt.datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()}  # midnight
        assert rec.path in {f"{day}/{call_uuid}.wav" for day in days}
        path = recordings / rec.path
        info = subprocess.run(["soxi", str(path)], check=True, timeout=30, capture_output=True, text=True).stdout
        assert "A-law" in info and "Sample Rate    : 8000" in info
        assert rec.duration_ms >= 2000 and rec.size == path.stat().st_size and len(rec.sha256) == 64
    finally:
        if line is not None:
            line.close()
        _in_thread(phone.close)
