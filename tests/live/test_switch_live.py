"""switch/ (OutboundServer, CallSession, InboundConnection, SwitchPool) against a real FreeSWITCH
(skipped unless HOTLINE_TEST_ESL is set).

Calls are placed with the `place_call` fixture and brought to the app's own OutboundServer on 127.0.0.1:0;
what the switch did is read from a raw ESL connection (`esl_events`), which blocks, so it waits in gevent's
thread pool while the server's greenlets keep running.
"""
from __future__ import annotations

import gevent
import gevent.event
import pytest

from core.config import EslEndpoint
from switch.errors import CallHangup, SwitchTimeout
from switch.inbound import InboundConnection, SwitchPool
from switch.outbound import OutboundServer
from tests.live.product import in_thread

pytestmark = pytest.mark.live
LONG_SILENCE = "silence_stream://60000"     # a minute: far longer than any wait below


def _hangup_of(esl_events, predicate, timeout=15):
    return in_thread(esl_events.wait_event, lambda ev: ev.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE"
                      and predicate(ev), timeout)


@pytest.fixture
def server():
    """Factory for an OutboundServer on 127.0.0.1:0 with a handler; stopped at teardown."""
    servers = []

    def start(handler, **options):
        srv = OutboundServer("127.0.0.1", 0, handler, **options)
        srv.start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop(drain_timeout=2)


def _address(srv) -> str:
    return "%s:%d" % srv.address


def test_handler_returning_hangs_up_a_busy_channel_live(server, place_call, esl_events):
    """Should end the call when the handler gives up on a playback and returns while it still plays.

    Closing the socket alone is not enough on a real switch: the `socket` app only returns (and the
    dialplan's hangup runs) once the playback in progress has finished, a minute later here.
    """
    sessions = []

    def handler(session):
        sessions.append(session)
        session.answer()
        with pytest.raises(SwitchTimeout):
            session.playback(LONG_SILENCE, timeout=1)

    srv = server(handler)
    place_call(outbound=_address(srv))
    hangup = _hangup_of(esl_events, lambda ev: sessions and ev.get("Unique-ID") == sessions[0].uuid)
    assert hangup["Hangup-Cause"] == "NORMAL_CLEARING"
    assert hangup.get("variable_current_application") != "hangup"   # not the dialplan's hangup after socket


def test_calls_over_the_cap_are_refused_with_congestion_live(server, place_call, esl_events):
    """Should refuse a call over max_calls with NORMAL_CIRCUIT_CONGESTION (SIP 503), keeping the first."""
    release = gevent.event.Event()
    first_up = gevent.event.Event()

    def handler(session):
        session.answer()
        first_up.set()
        session.wait_for(release, timeout=60)

    srv = server(handler, max_calls=1)
    first = place_call(caller="13800000001", outbound=_address(srv))
    assert first_up.wait(20)
    second = place_call(caller="13800000002", outbound=_address(srv))
    result = in_thread(esl_events.job_result, second.job, 20)
    assert result.strip() == "-ERR NORMAL_CIRCUIT_CONGESTION"
    assert srv.calls_rejected == 1 and srv.active_calls == 1 and first.exists()
    release.set()
    _hangup_of(esl_events, lambda ev: ev.get("Unique-ID") == first.uuid)


def test_stop_hangs_up_calls_that_outlive_the_drain_live(server, place_call, esl_events):
    """Should hang up (SYSTEM_SHUTDOWN) a call still playing when the drain time is over."""
    errors = []
    playing = gevent.event.Event()

    def handler(session):
        session.answer()
        playing.set()
        try:
            session.playback(LONG_SILENCE, timeout=90)
        except CallHangup as exc:
            errors.append(exc)
            raise

    srv = server(handler)
    call = place_call(caller="13800000003", outbound=_address(srv))   # a number no other test uses
    assert playing.wait(20)
    assert srv.stop(drain_timeout=0.5) == 1
    hangup = _hangup_of(esl_events, lambda ev: ev.get("Unique-ID") != call.uuid
                        and ev.get("Caller-Caller-ID-Number") == call.caller)
    assert hangup["Hangup-Cause"] == "SYSTEM_SHUTDOWN"
    assert len(errors) == 1


def test_pool_finds_the_calls_switch_by_core_uuid_live(server, place_call, esl_endpoint):
    """Should learn the switch's Core-UUID (global_getvar core_uuid) and map a call to its connection by it."""
    host, port, password = esl_endpoint
    pool = SwitchPool([EslEndpoint(host, port, password)], api_timeout=5.0)
    pool.start()
    try:
        conn = pool.all()[0]
        assert conn.wait_connected(10)
        core_uuid = conn.api("global_getvar core_uuid").strip()
        assert len(core_uuid) == 36 and conn.core_uuid == core_uuid
        found = gevent.event.AsyncResult()

        def handler(session):
            found.set((session.channel_data.get("Core-UUID"), pool.for_call(session)))
            session.answer()

        srv = server(handler)
        place_call(outbound=_address(srv))
        call_core, connection = found.get(timeout=20)
        assert call_core == core_uuid and connection is conn
    finally:
        pool.stop()


def test_inbound_connection_runs_api_and_bgapi_live(esl_endpoint):
    """Should run api and bgapi (Job-UUID correlated) on the real switch, and report -ERR as CommandFailed."""
    from switch.errors import CommandFailed

    host, port, password = esl_endpoint
    conn = InboundConnection(EslEndpoint(host, port, password))
    conn.start()
    try:
        assert conn.wait_connected(10)
        assert "is ready" in conn.api("status")
        job = conn.bgapi("version", timeout=15)
        assert job.ok and "FreeSWITCH" in job.body
        with pytest.raises(CommandFailed):
            conn.api("uuid_kill 00000000-0000-0000-0000-000000000000", check=True)
    finally:
        conn.stop()
