"""Cross-server offers on two real FreeSWITCH instances (skipped unless HOTLINE_TEST_ESL and
HOTLINE_TEST_ESL_B name them, or without sipp).

Instance B runs from the same freeswitch-conf/ with its own override folder (docs/freeswitch.md, "A second
instance on one machine"): other ports, and seats 1050-1059. An agent's sipp phone registers on B; a caller
arrives on A; the app has both switches in its pool, learns B's hotline_peer_uri and bridges the caller from
A to the phone on B as hotline-peer.

Extensions used here: 1050-1059 (on B only). Caller numbers: 1395555xxxx.
"""
from __future__ import annotations

import os

import pytest

from acd.dispatcher import Acd, AcdSettings, create_agent, create_queue
from acd.models import QueueEntry
from caseflow.models import User
from core.config import EslEndpoint
from switch.errors import CallHangup
from switch.inbound import SwitchPool
from switch.outbound import OutboundServer
from tests.live.conftest import parse_endpoint
from tests.live.eslraw import EslClient, EslError
from tests.live.sipphone import AgentPhone
from tests.live.product import in_thread, wait_until

pytestmark = pytest.mark.live

ENV_B = "HOTLINE_TEST_ESL_B"




@pytest.fixture
def esl_b(esl_endpoint):
    """An ESL connection to the second instance (HOTLINE_TEST_ESL_B); skips when it is unset."""
    value = os.environ.get(ENV_B, "").strip()
    if not value:
        pytest.skip(f"{ENV_B} is not set: no second FreeSWITCH (docs/freeswitch.md, 'Several servers')")
    try:
        endpoint = parse_endpoint(value)
        client = EslClient.connect(*endpoint)
    except (ValueError, OSError, EslError) as exc:
        pytest.fail(f"{ENV_B}: cannot use this FreeSWITCH: {exc}")
    client.endpoint = endpoint
    yield client
    client.close()



def test_caller_on_a_is_bridged_to_the_agent_registered_on_b(db, esl_endpoint, esl, esl_events, esl_b, sipp,
                                                              place_call, tmp_path):
    """Should offer a caller on A the only agent, whose phone is registered on B: A dials B's learned
    hotline_peer_uri as hotline-peer, B rings the phone, the agent goes in call and back to idle, and
    nothing is left on either switch."""
    for client in (esl, esl_b):
        if "{extension}" not in client.api("global_getvar hotline_peer_uri"):
            # Both switches were named for this test: a missing setting is a failure to report, not a skip.
            pytest.fail("a switch runs a configuration without hotline_peer_uri: restart it or reloadxml")
    if esl_b.api("user_exists id 1050 127.0.0.1").strip() != "true":
        pytest.fail("instance B has no seat 1050 (its override folder's directory/*.xml, docs/freeswitch.md)")
    password = esl_b.api("global_getvar agent_password").strip()
    sip_port_b = int(esl_b.api("global_getvar internal_sip_port").strip())
    create_queue("consult", "consult", wrap_up_seconds=0, announce_interval=0, ring_timeout=20)
    user = User.create(operator_no="8150", name="话务员8150", password_hash="x", roles="agent", extension="1050")
    agent = create_agent(user, {"consult": 5})
    phone = AgentPhone(sipp, tmp_path, sip_port_b, "1050", password, scenario="answer_rtp.xml")
    pool = SwitchPool([EslEndpoint(*esl_endpoint), EslEndpoint(*esl_b.endpoint)], api_timeout=5.0)
    outcomes = {}

    def handle(session):
        try:
            session.answer()
            # A loopback caller speaks L16; offer G.711 to the far legs, as a carrier line would.
            session.execute("export", "nolocal:absolute_codec_string=PCMA,PCMU")
            outcomes[session.uuid] = acd.enter_queue(session, "consult")
        except CallHangup:
            outcomes[session.uuid] = None
            raise

    acd = Acd(pool, settings=AcdSettings(reconcile_interval=3600))
    server = OutboundServer("127.0.0.1", 0, handle)
    try:
        in_thread(phone.register)
        pool.start()
        assert all(conn.wait_connected(10) for conn in pool.all())
        name_a, name_b = (conn.name for conn in pool.all())
        acd.start()
        assert acd.peer_routes[name_b] == f"sofia/internal/{{extension}}@127.0.0.1:{sip_port_b}"
        assert acd.agents[agent.id].registered and acd.agents[agent.id].server == name_b
        acd.transition(agent.id, "login")
        acd.transition(agent.id, "ready")
        server.start()

        citizen = place_call(caller="13955550001", outbound="%s:%d" % server.address)
        bridged = in_thread(esl_events.wait_event, lambda ev: ev.get("Event-Name") == "CHANNEL_BRIDGE"
                             and ev.get("Caller-Caller-ID-Number") == "13955550001"
                             and ev.get("Unique-ID") != citizen.uuid, 40)
        leg = bridged["Other-Leg-Unique-ID"]
        assert acd.agents[agent.id].leg_uuid == leg and acd.agents[agent.id].call_server == name_a
        assert esl.api(f"uuid_getvar {leg} sip_auth_username").strip() == "hotline-peer"
        wait_until(lambda: acd.agents[agent.id].state == "in_call", 10, "the agent in call")
        # B's side: the peer call rang the phone registered there.
        # B's side, as its own inbound connection reported it: the peer call and the phone's leg.
        far_legs = [uuid for uuid, server in acd.channel_server.items() if server == name_b]
        assert len(far_legs) == 2
        assert all(esl_b.api(f"uuid_exists {uuid}").strip() == "true" for uuid in far_legs)
        assert {esl_b.api(f"uuid_getvar {uuid} user_context").strip() for uuid in far_legs} >= {"hotline_peer"}
        # Reconciliation reads `show channels`, which FreeSWITCH fills from its core database a moment after
        # a channel is created: reconcile once A lists the agent's leg, as the periodic pass would.
        wait_until(lambda: leg in esl.api("show channels as json"), 10, "A listing the agent's leg")
        for name in (name_a, name_b):
            acd.reconcile(name)
        assert acd.agents[agent.id].state == "in_call"
        citizen.hangup()  # the caller ends the conversation: A's leg, then B's legs, go
        wait_until(lambda: outcomes, 20, "the queue outcome")
        outcome = next(iter(outcomes.values()))
        assert outcome is not None and (outcome.outcome, outcome.agent_id) == ("answered", agent.id)
        assert QueueEntry.get(QueueEntry.call_uuid == next(iter(outcomes))).agent_leg_uuid == leg
        wait_until(lambda: acd.agents[agent.id].state == "idle", 10, "the agent back to idle")
        assert acd.stuck_agents() == []
        wait_until(lambda: all(esl_b.api(f"uuid_exists {uuid}").strip() == "false" for uuid in far_legs), 10,
              "B's legs gone")
        status, output = in_thread(phone.finished, 20)
        assert status == 0, output[-2000:]
    finally:
        server.stop(drain_timeout=5)
        acd.stop()
        pool.stop()
        in_thread(phone.close)
