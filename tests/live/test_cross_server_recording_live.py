"""A recorded conversation across two real FreeSWITCH instances, through the whole product (skipped unless
HOTLINE_TEST_ESL and HOTLINE_TEST_ESL_B name them, or without sipp).

The product (hotline.product) has both switches in its pool. A citizen calls switch B and asks for a person
(1, then 1: the consult queue); demo agent 1001's phone (seat 1000, sipp) is registered on switch A, so B dials
A's learned hotline_peer_uri as hotline-peer (test_cross_server_live.py has the opposite direction, with the
ACD alone). The conversation is recorded on B (uuid_record on the caller's leg), and once the citizen hangs up
the recording must be stored, indexed (duration, size, sha256) and playable from the ticket the agent files
for the call, through the web UI.

Extensions used here: 1000 (on A, demo agent 1001). Caller numbers: 1394xxxxxxx.
"""
from __future__ import annotations

import hashlib
import http.cookiejar
import re
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from caseflow.models import User
from core.db import database
from tests.live.conftest import CALL_EVENTS, CallPlacer
from tests.live.eslraw import EslClient
from tests.live.product import AppLeg, in_thread, start_product, stop_product, wait_until
from tests.live.sipphone import AgentPhone
from tests.live.test_cross_server_live import esl_b  # noqa: F401 (fixture)

pytestmark = pytest.mark.live


class _Browser:
    """A logged-in user of the web UI (cookies kept), off the gevent hub."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str, form: dict | None = None) -> tuple[int, bytes]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None

        def fetch():
            with self.opener.open(self.base + path, data=data, timeout=20) as answer:
                return answer.status, answer.read()
        return in_thread(fetch)

    def login(self, operator_no: str, password: str) -> None:
        _status, page = self.get("/login")
        token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
        self.get("/login", {"operator_no": operator_no, "password": password, "csrf_token": token})


def test_caller_on_b_talks_to_agent_on_a_recorded_and_playable_from_the_ticket(
        db, db_url, esl_endpoint, esl, esl_b, sipp, tmp_path, rendered_sounds):  # noqa: F811 (fixture)
    """Should bridge a caller on B to the agent registered on A (B dials A as hotline-peer), record the
    conversation, and once the caller hangs up have the recording stored (A-law WAV of the talk), indexed with
    its duration, size and sha256 on the call's record, and playable from the agent's ticket for the call."""
    from acd.models import Agent
    from caseflow import services
    from recorder.models import CallRecord, Recording

    for client in (esl, esl_b):
        if "{extension}" not in client.api("global_getvar hotline_peer_uri"):
            pytest.fail("a switch runs a configuration without hotline_peer_uri: restart it or reloadxml")
    password = esl.api("global_getvar agent_password").strip()
    sip_port_a = int(esl.api("global_getvar internal_sip_port").strip())
    name_a, name_b = (f"{host}:{port}" for host, port, _ in (esl_endpoint, esl_b.endpoint))
    both = ",".join(f"{host}:{port}:{secret}" for host, port, secret in (esl_endpoint, esl_b.endpoint))
    running = start_product(esl_endpoint, db_url, tmp_path, rendered_sounds, settings={"esl": both})
    phone = AgentPhone(sipp, tmp_path, sip_port_a, "1000", password, scenario="answer_rtp.xml")
    events_b = EslClient.connect(*esl_b.endpoint)
    events_b.subscribe(*CALL_EVENTS)
    place_on_b = CallPlacer(esl_b.endpoint)
    try:
        pool, acd = running.parts["pool"], running.parts["acd"]
        assert sorted(conn.name for conn in pool.all()) == sorted([name_a, name_b])
        assert all(conn.wait_connected(10) for conn in pool.all())
        in_thread(phone.register)
        with database.connection_context():
            agent = Agent.get(Agent.user == User.get(User.operator_no == "1001"))
        wait_until(lambda: acd.agents[agent.id].registered and acd.agents[agent.id].server == name_a, 15,
                   "the agent's phone registered on A")
        acd.transition(agent.id, "login")
        acd.transition(agent.id, "ready")

        leg = AppLeg.to_consult_queue(place_on_b, events_b, running, "1394")
        citizen = leg.citizen
        bridged = leg.wait(lambda ev: ev.get("Event-Name") == "CHANNEL_BRIDGE", "the agent on A answering", 60)
        call_uuid, peer_leg = bridged["Unique-ID"], bridged["Other-Leg-Unique-ID"]
        assert esl_b.api(f"uuid_getvar {peer_leg} sip_auth_username").strip() == "hotline-peer"
        assert acd.agents[agent.id].call_server == name_b
        wait_until(lambda: acd.agents[agent.id].state == "in_call", 10, "the agent in call")
        leg.wait(lambda ev: ev.get("Event-Name") == "RECORD_START", "the conversation's recording to start", 20)
        citizen.speak("tone_stream://%(1000,0,440);loops=3")  # the citizen talks for three seconds
        in_thread(events_b.wait_event, lambda ev: ev.get("Event-Name") == "PLAYBACK_STOP"
                  and ev.get("Unique-ID") == citizen.uuid, 20)
        citizen.hangup()

        def indexed():
            with database.connection_context():
                return Recording.select().where((Recording.call_uuid == call_uuid)
                                                & (Recording.status != "recording")).exists()
        wait_until(indexed, 60, "the recording indexed")
        wait_until(lambda: acd.agents[agent.id].state == "idle", 15, "the agent back to idle")
        with database.connection_context():
            rec = Recording.get(Recording.call_uuid == call_uuid)
            assert (rec.status, rec.kind) == ("ok", "conversation"), rec.failure_reason
            record = CallRecord.get(CallRecord.call_uuid == call_uuid)
            assert (record.server, record.disposition, record.caller) == (name_b, "answered", leg.caller)
            user = User.get(User.operator_no == "1001")
            # The agent files the call's ticket on the desk (the form saved while the call is shown).
            ticket = services.create_ticket("市民反映小区路灯不亮（跨交换机通话）", citizen_phone=leg.caller,
                                            created_by=user, call_uuid=call_uuid, clock=running.clock)
        path = Path(running.config.recordings_dir) / rec.path
        stored = path.read_bytes()
        assert rec.size == len(stored) and rec.sha256 == hashlib.sha256(stored).hexdigest()
        assert rec.duration_ms >= 2000
        info = subprocess.run(["soxi", str(path)], check=True, timeout=30, capture_output=True, text=True).stdout
        assert "A-law" in info and "Sample Rate    : 8000" in info

        browser = _Browser(f"http://{running.config.http[0]}:{running.parts['web'].server_port}")
        browser.login("9001", "demo1234")  # the hotline centre hears every recording
        # The ticket's recordings (linked from the ticket page): Play opens the player on the recording.
        status, page = browser.get(f"/recordings/ticket/{ticket.number}")
        assert status == 200 and f'href="/recordings/{rec.id}"'.encode() in page, page[-3000:]
        status, page = browser.get(f"/recordings/{rec.id}")
        assert status == 200 and f'src="/recordings/{rec.id}/audio"'.encode() in page, page[-3000:]
        status, audio = browser.get(f"/recordings/{rec.id}/audio")  # the player's first slice (206)
        assert status == 206 and len(audio) > 44 and stored.startswith(audio)
    finally:
        place_on_b.close()
        events_b.close()
        in_thread(phone.close)
        stop_product(running)
