"""The ACD on a real FreeSWITCH (skipped unless HOTLINE_TEST_ESL is set, or without sipp).

The app side is the product's own parts: a SwitchPool on the live switch, the Acd, and an OutboundServer
on 127.0.0.1:0 whose handler answers and puts the caller into a queue.  Agents' phones are sipp UAS
processes registered on the internal profile, talking (A-law RTP) once they answer as desk phones do; a
caller is a loopback call to 12345.

Extensions used here: 1015-1017 (shared with test_acd_controls_live.py: run the live suite one test at a
time, -p no:xdist, as the README says).
"""
from __future__ import annotations

import datetime as dt
import random

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
from tests.live.product import in_thread, wait_until

pytestmark = pytest.mark.live





class LiveLine:
    """Pool + Acd + outbound server: every call that reaches it is answered and queued for `skill`.

    With `recordings_dir`, the recorder is wired as hotline.product wires it: a call record per call, and
    every bridged conversation recorded (uuid_record) and indexed when the switch reports it stopped.
    With `prompts` (acd.prompts.AcdPrompts), the ACD announces queue positions and the answering agent's
    operator number (自动报工号) from those files, as hotline.product wires it.
    """

    def __init__(self, endpoint, skill: str, recordings_dir=None, prompts=None):
        self.pool = SwitchPool([EslEndpoint(*endpoint)], api_timeout=5.0)
        self.pool.start()
        assert self.pool.all()[0].wait_connected(10)
        self.acd = Acd(self.pool, settings=AcdSettings(reconcile_interval=3600), prompts=prompts)
        self.cdr = None
        if recordings_dir is not None:
            from recorder.cdr import CdrRecorder
            from hotline.product import attach_recorder as attach
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
                                  server=self.pool.name_for_call(session))
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
    phone = AgentPhone(sipp, tmp_path, sip_port, "1016", password, scenario="answer_rtp.xml")
    line = None
    try:
        in_thread(phone.register)
        line = LiveLine(esl_endpoint, "consult")
        for agent in (absent, present):
            line.acd.transition(agent.id, "login")
            line.acd.transition(agent.id, "ready")
        assert line.acd.agents[present.id].registered and not line.acd.agents[absent.id].registered

        citizen = place_call(caller="13911110000", outbound=line.address)
        bridged = in_thread(esl_events.wait_event, lambda ev: ev.get("Event-Name") == "CHANNEL_BRIDGE"
                             and ev.get("Caller-Caller-ID-Number") == "13911110000"
                             and ev.get("Unique-ID") != citizen.uuid, 40)
        agent_leg = bridged["Other-Leg-Unique-ID"]
        answered = esl.api(f"uuid_getvar {agent_leg} dialed_user").strip()
        assert answered == "1016"
        assert line.acd.agents[present.id].state == "in_call"
        esl.api(f"uuid_kill {agent_leg}")               # the agent hangs up: the conversation ends
        wait_until(lambda: line.outcomes, 20, "the queue outcome")
        outcome = next(iter(line.outcomes.values()))
        assert outcome is not None and (outcome.outcome, outcome.agent_id) == ("answered", present.id)
        entry = QueueEntry.get(QueueEntry.call_uuid == next(iter(line.outcomes)))
        assert entry.offered_agents == str(present.id)
        wait_until(lambda: line.acd.agents[present.id].state == "idle", 10, "the agent back to idle")
        assert line.acd.stuck_agents() == []
        status, output = in_thread(phone.finished, 20)
        assert status == 0, output[-2000:]
    finally:
        if line is not None:
            line.close()
        in_thread(phone.close)


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
    phone = AgentPhone(sipp, tmp_path, sip_port, "1017", password, scenario="answer_rtp.xml")
    line = None
    try:
        in_thread(phone.register)
        line = LiveLine(esl_endpoint, "consult", recordings_dir=recordings)
        line.acd.transition(agent.id, "login")
        line.acd.transition(agent.id, "ready")
        day_started = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
        citizen = place_call(caller="13922220000", outbound=line.address)
        bridged = in_thread(esl_events.wait_event, lambda ev: ev.get("Event-Name") == "CHANNEL_BRIDGE"
                             and ev.get("Caller-Caller-ID-Number") == "13922220000"
                             and ev.get("Unique-ID") != citizen.uuid, 40)
        call_uuid, agent_leg = bridged["Unique-ID"], bridged["Other-Leg-Unique-ID"]
        in_thread(esl_events.wait_event, lambda ev: ev.get("Event-Name") == "RECORD_START"
                   and ev.get("Unique-ID") == call_uuid, 20)
        citizen.speak("tone_stream://%(1000,0,440);loops=3")    # the caller talks for three seconds
        in_thread(esl_events.wait_event, lambda ev: ev.get("Event-Name") == "PLAYBACK_STOP"
                   and ev.get("Unique-ID") == citizen.uuid, 20)
        esl.api(f"uuid_kill {agent_leg}")                # the agent hangs up
        wait_until(lambda: Recording.select().where((Recording.call_uuid == call_uuid)
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
        in_thread(phone.close)


def _events_until(esl_events, done, timeout: float) -> list[dict]:
    """Every event from now on until done(events) holds; AssertionError (with what was seen) after timeout."""
    seen: dict[str, dict] = {}     # by Event-Sequence: wait_event offers a queued event again on each read

    def take(event):
        seen.setdefault(event.get("Event-Sequence", str(len(seen))), event)
        return done(list(seen.values()))

    try:
        in_thread(esl_events.wait_event, take, timeout)
    except Exception as exc:  # noqa: BLE001 - say what came
        names = [(e.get("Event-Name"), e.get("Application", ""), e.get("Unique-ID", "")[:8]) for e in seen.values()]
        raise AssertionError(f"{exc}; events seen: {names[-40:]}") from exc
    return list(seen.values())


def _operator_prompt_played(db, esl_endpoint, esl, esl_events, sipp, place_call, tmp_path, *, strategy: str,
                            caller: str, phones_answering: bool) -> None:
    """A caller queued with two registered agents (1015, 1016) on a queue of `strategy`: the caller's leg
    plays the answering agent's operator_<no>.wav before the media joins, and is bridged to that agent."""
    from acd.prompts import AcdPrompts
    from ivr.prompts import call_time_renderer

    password = esl.api("global_getvar agent_password").strip()
    sip_port = int(esl.api("global_getvar internal_sip_port").strip())
    create_queue("consult", "consult", strategy=strategy, wrap_up_seconds=0, announce_interval=0,
                 ring_timeout=15)
    agents = {"1015": _agent("8111", "1015", "consult"), "1016": _agent("8112", "1016", "consult")}
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    sounds.chmod(0o755)  # FreeSWITCH reads the rendered prompts by path
    prompts = AcdPrompts(sounds, render=call_time_renderer("zh", 8000))
    # One phone answers; with ring-all the other may answer too (FreeSWITCH hangs the loser up) or not.
    phones = {ext: AgentPhone(sipp, tmp_path, sip_port, ext, password, scenario="answer_rtp.xml")
              for ext in (agents if phones_answering else ("1016",))}
    line = None
    try:
        for phone in phones.values():
            in_thread(phone.register)
        line = LiveLine(esl_endpoint, "consult", prompts=prompts)
        for agent in agents.values():
            line.acd.transition(agent.id, "login")
            line.acd.transition(agent.id, "ready")
        registered = {ext for ext, agent in agents.items() if line.acd.agents[agent.id].registered}
        assert registered == set(phones)

        citizen = place_call(caller=caller, outbound=line.address)

        def the_call(ev):     # the app's leg (loopback/12345-b, in the socket session), not the citizen's
            return ev.get("Caller-Caller-ID-Number") == caller and ev.get("Unique-ID") != citizen.uuid \
                and ev.get("Channel-Name", "").startswith("loopback/")

        def played_and_bridged(seen):
            return any(ev.get("Event-Name") == "CHANNEL_BRIDGE" and the_call(ev) for ev in seen) and any(
                ev.get("Event-Name") == "PLAYBACK_START" and the_call(ev) for ev in seen)

        seen = _events_until(esl_events, played_and_bridged, 60)
        bridged = next(ev for ev in seen if ev.get("Event-Name") == "CHANNEL_BRIDGE" and the_call(ev))
        call, agent_leg = bridged["Unique-ID"], bridged["Other-Leg-Unique-ID"]
        extension = esl.api(f"uuid_getvar {agent_leg} dialed_user").strip()
        answered = agents[extension]
        expected = prompts.operator("8111" if extension == "1015" else "8112")
        assert expected.endswith(f"operator_{'8111' if extension == '1015' else '8112'}.wav")
        executed = [ev.get("Application-Data") for ev in seen if ev.get("Event-Name") == "CHANNEL_EXECUTE"
                    and ev.get("Unique-ID") == call and ev.get("Application") == "playback"]
        assert executed == [expected], executed
        started = [ev.get("Playback-File-Path") for ev in seen
                   if ev.get("Event-Name") == "PLAYBACK_START" and ev.get("Unique-ID") == call]
        assert started == [expected], started
        assert line.acd.agents[answered.id].state == "in_call" and line.acd.agents[answered.id].leg_uuid == agent_leg

        esl.api(f"uuid_kill {agent_leg}")               # the agent hangs up: the conversation ends
        wait_until(lambda: call in line.outcomes, 20, "the queue outcome")
        outcome = line.outcomes[call]
        assert outcome is not None and (outcome.outcome, outcome.agent_id) == ("answered", answered.id)
        wait_until(lambda: all(line.acd.agents[a.id].state == "idle" for a in agents.values()), 20,
              "both agents idle")
        assert line.acd.stuck_agents() == []
    finally:
        if line is not None:
            line.close()
        for phone in phones.values():
            in_thread(phone.close)


def test_ring_all_caller_hears_the_answering_agents_operator_number(db, esl_endpoint, esl, esl_events, sipp,
                                                                    place_call, tmp_path):
    """Should ring both agents at once and, when one answers, play that agent's operator number (自动报工号:
    its api_on_answer names operator_<no>.wav on the caller under its own leg uuid, the caller's
    bridge_pre_execute_aleg_app plays ${acd_operator_prompt_${bridge_uuid}}) to the caller before bridging
    them; afterwards nobody is stuck."""
    _operator_prompt_played(db, esl_endpoint, esl, esl_events, sipp, place_call, tmp_path, strategy="ring_all",
                            caller="13944440001", phones_answering=True)


def test_sequential_rule_caller_hears_the_answering_agents_operator_number(db, esl_endpoint, esl, esl_events,
                                                                           sipp, place_call, tmp_path):
    """Should play the operator number of the one agent a sequential rule (least talk time) offered the call
    to, before bridging the caller to that agent."""
    _operator_prompt_played(db, esl_endpoint, esl, esl_events, sipp, place_call, tmp_path,
                            strategy="least_talk_time", caller="13944440002", phones_answering=False)


def _set_global(esl, name: str, value: str) -> str:
    before = esl.api(f"global_getvar {name}").strip()
    assert esl.api(f"global_setvar {name}={value}").startswith("+OK")
    return before


@pytest.mark.parametrize("who_hangs_up", ["caller", "agent"])
def test_call_record_of_a_queue_call_answered_after_ringing(who_hangs_up, db, esl_endpoint, esl, esl_events, sipp,
                                                            tmp_path):
    """Should record, for a carrier caller queued to an agent whose phone rings 4 s before it answers: a wait
    from queue entry to the agent's answer (>= 3 s, in the call record and the queue row the 15-second
    answer rate reads, so that call is not counted as answered within 3 s), 挂机方 = whoever sent the BYE
    (the caller or the agent), and the switch's event-socket address as the server."""
    from recorder.models import CallRecord
    from stats.queries import call_hours
    from tests.live.sipphone import CarrierTalker

    if esl.api("global_getvar external_sip_ip").strip() != "127.0.0.1":
        pytest.skip("the external profile is not on 127.0.0.1 here")
    password = esl.api("global_getvar agent_password").strip()
    sip_port = int(esl.api("global_getvar internal_sip_port").strip())
    carrier_port = int(esl.api("global_getvar external_sip_port").strip())
    create_queue("consult", "consult", wrap_up_seconds=0, announce_interval=0, ring_timeout=15)
    agent = _agent("8104", "1017", "consult")
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    recordings.chmod(0o777)
    phone = AgentPhone(sipp, tmp_path, sip_port, "1017", password, scenario="answer_late.xml")
    caller_no = "1397" + "%07d" % random.randrange(10_000_000)
    line = caller = before = None
    try:
        in_thread(phone.register)
        line = LiveLine(esl_endpoint, "consult", recordings_dir=recordings)
        line.acd.transition(agent.id, "login")
        line.acd.transition(agent.id, "ready")
        # A SIP call cannot carry the test's address: the carrier route follows the global (restored below).
        before = _set_global(esl, "hotline_outbound", line.address)
        caller = CarrierTalker(sipp, tmp_path, carrier_port, caller_no)
        bridged = in_thread(esl_events.wait_event, lambda ev: ev.get("Event-Name") == "CHANNEL_BRIDGE"
                            and ev.get("Caller-Caller-ID-Number") == caller_no
                            and ev.get("Channel-Name", "").startswith("sofia/external/"), 40)
        call_uuid, agent_leg = bridged["Unique-ID"], bridged["Other-Leg-Unique-ID"]
        # The cue: the one told hangs up (sends the BYE) itself.
        cued = call_uuid if who_hangs_up == "caller" else agent_leg
        assert esl.api(f"uuid_send_info {cued}").startswith("+OK")

        def closed():
            record = CallRecord.get_or_none(CallRecord.call_uuid == call_uuid)
            return record is not None and record.finalised and record.hangup_side != ""
        wait_until(closed, 30, "the call record closed with a hang-up side")
        record = CallRecord.get(CallRecord.call_uuid == call_uuid)
        entry = QueueEntry.get(QueueEntry.call_uuid == call_uuid)
        assert (record.disposition, record.agent_no) == ("answered", "8104")
        assert record.wait_seconds >= 3, (record.wait_seconds, record.queue_entered_at, record.answered_at)
        assert entry.wait_seconds >= 3, entry.wait_seconds
        assert record.hangup_side == who_hangs_up
        assert record.server == "%s:%d" % esl_endpoint[:2]
        hour = entry.entered_at.replace(minute=0, second=0, microsecond=0)
        counts = dict(call_hours(hour, hour + dt.timedelta(hours=1)))[hour]
        # The statistics read the same start: the queue row's wait, entry to the agent's answer.
        assert abs(entry.wait_seconds - (entry.answered_at - entry.entered_at).total_seconds()) < 1.5
        assert (counts.answered, counts.answered_in_target) == (1, 1) and counts.wait_seconds >= 3, counts
        for sip in (caller, phone):
            status, output = in_thread(sip.finished, 20)
            assert status == 0, output[-2000:]
    finally:
        if before is not None:
            _set_global(esl, "hotline_outbound", before)
        if caller is not None:
            caller.close()
        if line is not None:
            line.close()
        in_thread(phone.close)


def test_product_wait_counts_from_asking_for_a_person(db, db_url, esl_endpoint, esl, esl_events, sipp, place_call,
                                                      tmp_path, rendered_sounds):
    """Should count a caller's wait from pressing 1 for a person (the queue node), through its "connecting"
    prompt and the agent's 4 s of ringing, to the answer: the whole product on the real switch, as the
    call record and the queue row the 15-second answer rate reads show it (the wait once began only when
    the prompt ended, and showed 0 s for a phone that answered at once)."""
    import wave

    from acd.models import Agent
    from core.db import database
    from recorder.models import CallRecord
    from tests.live.product import AppLeg, start_product, stop_product

    password = esl.api("global_getvar agent_password").strip()
    sip_port = int(esl.api("global_getvar internal_sip_port").strip())
    with wave.open(str(rendered_sounds / "zh" / "connecting.wav")) as prompt:
        prompt_seconds = prompt.getnframes() / prompt.getframerate()
    running = start_product(esl_endpoint, db_url, tmp_path, rendered_sounds)
    phone = AgentPhone(sipp, tmp_path, sip_port, "1000", password, scenario="answer_late.xml")  # demo agent 1001
    try:
        assert all(conn.wait_connected(10) for conn in running.parts["pool"].all())
        acd = running.parts["acd"]
        in_thread(phone.register)
        with database.connection_context():
            agent = Agent.get(Agent.user == User.get(User.operator_no == "1001"))
        wait_until(lambda: acd.agents[agent.id].registered, 10, "the agent's phone registered")
        acd.transition(agent.id, "login")
        acd.transition(agent.id, "ready")
        leg = AppLeg.to_consult_queue(place_call, esl_events, running, "1398")
        citizen = leg.citizen
        bridged = leg.wait(lambda ev: ev.get("Event-Name") == "CHANNEL_BRIDGE", "the agent's answer", 60)
        call_uuid = bridged["Unique-ID"]
        citizen.hangup()

        def closed():
            with database.connection_context():
                record = CallRecord.get_or_none(CallRecord.call_uuid == call_uuid)
                return record is not None and record.finalised
        wait_until(closed, 30, "the call record closed")
        with database.connection_context():
            record = CallRecord.get(CallRecord.call_uuid == call_uuid)
            entry = QueueEntry.get(QueueEntry.call_uuid == call_uuid)
        least = prompt_seconds + 3                          # the prompt, then (at least) 3 of the 4 s of ringing
        assert record.disposition == "answered" and record.wait_seconds >= least, (record.wait_seconds, least)
        assert entry.wait_seconds >= least, (entry.wait_seconds, least)
        assert record.server == "%s:%d" % esl_endpoint[:2]
    finally:
        in_thread(phone.close)
        stop_product(running)
