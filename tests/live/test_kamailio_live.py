"""Kamailio in front of two real FreeSWITCH (skipped unless HOTLINE_TEST_ESL and HOTLINE_TEST_ESL_B name them,
or without kamailio, sipp or PostgreSQL at HOTLINE_TEST_PG).

A real Kamailio on free ports with the configuration hotline.kamailio renders for the two switches (their SIP
addresses and seats read from them over ESL): the agent's phone (sipp) registers with Kamailio, the ACD reads
the registration from Kamailio's location table, a citizen (sipp) calls 12345 at Kamailio, the dispatcher hands
the call to one of the switches, the app queues it, and the caller's switch rings the agent through Kamailio.
Then switch B stops answering SIP (its external profile stopped): Kamailio's probes take it out within seconds
and the next call still completes, on A.

Extensions used here: 1010 (registered with Kamailio only). Caller numbers: 1395556xxxx. The switches' global
hotline_outbound points at this test's socket server while it runs (put back afterwards), as in
test_carrier_live.py: run the live suite one test at a time.
"""
from __future__ import annotations

import os
import subprocess
import time
import uuid

import gevent
import pytest

from acd.dispatcher import Acd, AcdSettings, create_agent, create_queue
from acd.models import QueueEntry
from acd.registrar import KamailioRegistrations
from caseflow.models import User
from core.config import EslEndpoint
from switch import kamailio as kam
from switch.errors import CallHangup
from switch.inbound import SwitchPool
from switch.outbound import OutboundServer
from tests.integration.switch.test_kamailio_real import (  # noqa: F401 - pg_url: the fixture
    Kamailio, _free_sip_port, pg_url)
from tests.live.product import in_thread, wait_until
from tests.live.sipphone import SCENARIOS, free_udp_port, register
from tests.live.test_cross_server_live import esl_b  # noqa: F401 - the second switch's fixture
from tests.ports import free_port

pytestmark = pytest.mark.live

SEAT = "1010"


def _call(sipp: str, workdir, port: int, caller: str, talk_ms: int) -> subprocess.Popen:
    """A citizen calling 12345 at Kamailio (from 127.0.0.1, a carrier's address), hanging up after talk_ms."""
    return subprocess.Popen(
        [sipp, f"127.0.0.1:{port}", "-sf", str(SCENARIOS / "call_via_proxy.xml"), "-s", "12345", "-key", "caller",
         caller, "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mp", str(free_udp_port()), "-m", "1",
         "-d", str(talk_ms), "-timeout", "60s", "-timeout_error", "-nostdin", "-trace_err",
         "-error_file", str(workdir / f"caller-{caller}-errors.log")],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop_profile(client, profile: str, timeout: float = 15.0) -> None:
    """Stop a SIP profile of a live switch. mod_sofia refuses to stop a profile that has been up less than
    10 seconds ("must be up for at least 10 seconds to stop/restart", nothing logged), and the SQLite variant
    of this test has just started B's external profile again when the PostgreSQL one stops it: ask again until
    the switch says it is stopping."""
    deadline = time.monotonic() + timeout
    while True:
        reply = client.api(f"sofia profile {profile} stop")
        if "stopping:" in reply:
            return
        if "must be up for at least" not in reply or time.monotonic() > deadline:
            pytest.fail(f"the switch did not stop its {profile} profile: {reply!r}")
        gevent.sleep(1)


def test_calls_through_kamailio_reach_an_agent_registered_there_and_survive_a_switch_stopping(
        db, esl_endpoint, esl, esl_b, sipp, pg_url, tmp_path):
    """Should spread calls to 12345 over both switches, bridge each to the agent registered with Kamailio
    (rung by the caller's switch through Kamailio), and, once switch B stops answering SIP, complete the next
    call on A."""
    import psycopg2

    if not os.access(kam.KAMAILIO_BINARY, os.X_OK):
        pytest.skip("kamailio is not installed (Debian kamailio, kamailio-postgres-modules)")
    name_a, name_b = "%s:%d" % esl_endpoint[:2], "%s:%d" % esl_b.endpoint[:2]
    switch_a, values_a = kam.read_switch(name_a, esl.api)
    switch_b, values_b = kam.read_switch(name_b, esl_b.api)
    if values_a["agent_password"] != values_b["agent_password"]:
        pytest.fail("the two switches have different agent_password values: Kamailio registers seats for both")
    schema = f"kam_live_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    table = f"{schema}.location"
    with psycopg2.connect(pg_url) as connection, connection.cursor() as cursor:
        cursor.execute(kam.location_table_sql(table))
    sip = ("127.0.0.1", _free_sip_port())
    settings = kam.KamailioSettings(
        sip=sip, rpc=("127.0.0.1", free_port()), db_url=kam.kamailio_db_url(pg_url),
        switches=(switch_a, switch_b), seat_re=values_a["agent_extensions"],
        agent_password=values_a["agent_password"], carriers=("127.0.0.1/32",), location_table=table,
        ping_interval=1, fr_timer=1000, pike_density=200)
    front = Kamailio(tmp_path, settings)
    reader = psycopg2.connect(pg_url)
    reader.autocommit = True

    create_queue("kamq", "kamq", wrap_up_seconds=0, announce_interval=0, ring_timeout=20)
    user = User.create(operator_no="8160", name="话务员8160", password_hash="x", roles="agent", extension=SEAT)
    agent = create_agent(user, {"kamq": 5})
    phone_port = free_udp_port()
    phone = subprocess.Popen(
        [sipp, "-sf", str(SCENARIOS / "answer_proxied.xml"), "-i", "127.0.0.1", "-p", str(phone_port),
         "-mp", str(free_udp_port()), "-m", "3", "-timeout", "120s", "-timeout_error", "-nostdin",
         "-trace_msg", "-message_file", str(tmp_path / "phone-messages.log")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pool = SwitchPool([EslEndpoint(*esl_endpoint), EslEndpoint(*esl_b.endpoint)], api_timeout=5.0)
    acd = Acd(pool, settings=AcdSettings(reconcile_interval=3600))
    outcomes = {}

    def handle(session):
        try:
            session.answer()
            outcomes[session.uuid] = acd.enter_queue(session, "kamq")
        except CallHangup:
            outcomes[session.uuid] = None
            raise

    server = OutboundServer("127.0.0.1", 0, handle)
    watch = KamailioRegistrations(acd, lambda: kam.read_registrations(reader, table), kam.dial_route(sip),
                                  interval=0.5)
    saved = [(client, client.api("global_getvar hotline_outbound").strip()) for client in (esl, esl_b)]
    callers = []
    try:
        front.start()
        done = in_thread(register, sipp, tmp_path, sip[1], SEAT, settings.agent_password, 120, free_udp_port(),
                         phone_port)
        assert done.returncode == 0, done.stdout[-2000:]
        pool.start()
        assert all(conn.wait_connected(10) for conn in pool.all())
        acd.start()
        watch.start()
        wait_until(lambda: acd.agents[agent.id].registered, 10, "the agent registered through Kamailio")
        assert acd.agents[agent.id].server == kam.REGISTRAR
        acd.transition(agent.id, "login")
        acd.transition(agent.id, "ready")
        server.start()
        for client in (esl, esl_b):
            client.api("global_setvar hotline_outbound=%s:%d" % server.address)
        wait_until(lambda: all(flags.startswith("A") for flags in front.targets().values()), 15,
                   "both switches answering Kamailio's probes")

        def one_call(number: str) -> str:
            """Place a call, wait for it to end, check the agent answered it; returns the switch it was on."""
            before = set(outcomes)
            caller = _call(sipp, tmp_path, sip[1], number, 3000)
            callers.append(caller)
            output, _ = in_thread(caller.communicate, None, 60)
            assert caller.returncode == 0, output[-3000:]
            wait_until(lambda: set(outcomes) - before, 20, "the queue outcome")
            call_uuid = (set(outcomes) - before).pop()
            outcome = outcomes[call_uuid]
            assert outcome is not None and (outcome.outcome, outcome.agent_id) == ("answered", agent.id)
            wait_until(lambda: acd.agents[agent.id].state == "idle", 15, "the agent back to idle")
            return QueueEntry.get(QueueEntry.call_uuid == call_uuid).server

        # Round robin over both switches: two calls, one on each, the agent reached through Kamailio from both.
        assert {one_call("13955560001"), one_call("13955560002")} == {name_a, name_b}
        # Switch B stops answering SIP: out of the set within seconds; the next call completes on A.
        _stop_profile(esl_b, "external")
        wait_until(lambda: front.targets().get(switch_b.call_port, "").startswith("I"), 15,
                   "switch B taken out by Kamailio's probes")
        assert one_call("13955560003") == name_a
        output, _ = in_thread(phone.communicate, None, 30)
        assert phone.returncode == 0, output[-3000:]
        assert acd.stuck_agents() == []
    finally:
        esl_b.api("sofia profile external start")
        for client, value in saved:
            if value and not value.startswith("-ERR"):
                client.api(f"global_setvar hotline_outbound={value}")
        for process in callers + [phone]:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=10)
        server.stop(drain_timeout=5)
        watch.stop()
        acd.stop()
        pool.stop()
        front.stop()
        reader.close()
        with psycopg2.connect(pg_url) as dropping, dropping.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
