"""Live: the real FreeSWITCH's dialplan for an active/standby pair of apps (freeswitch-conf: hotline extension,
hotline-failover). The two app addresses are this test's listeners, given per call as channel variables
(hotline_outbound, hotline_outbound_standby win over the globals). Skipped without HOTLINE_TEST_ESL.

What it shows of the real switch (1.11): a refused address fails at once; an app that accepts the connection
but never sends `connect` hands the call on to the next address (socket_resume=true in the dialplan: at once
when it closes the socket, after FreeSWITCH's 25 s wait for `connect` when it stays silent) instead of leaving
it parked for ever; when the app's socket drops mid-call (answered: socket_resume false again) the application
the app had started runs to its end, then the dialplan goes on."""
from __future__ import annotations

import socket
import time

import pytest

from tests.live.conftest import OutboundListener
from tests.ports import refusing_port

pytestmark = pytest.mark.live


@pytest.fixture
def refusing_address():
    """An address nothing listens on (connection refused at once), held for the test."""
    with refusing_port() as port:
        yield f"127.0.0.1:{port}"


def test_standby_takes_the_call_when_the_first_address_refuses(esl_events, place_call, outbound_listener,
                                                               refusing_address):
    """Should bring the call to hotline_outbound_standby when hotline_outbound refuses, without waiting out the
    25 s a silent address costs (CONNECT_WAIT): the standby's accept is awaited 10 s at most."""
    call = place_call(outbound=refusing_address, variables={"hotline_outbound_standby": outbound_listener.address})
    app = outbound_listener.accept(timeout=10)
    channel = app.connect_call()
    assert channel["Caller-Destination-Number"] == "12345"
    app.send("sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING")
    assert esl_events.job_result(call.job, timeout=15).strip() == "-ERR NORMAL_CLEARING"


# FreeSWITCH waits 25 s for `connect` (mod_event_socket.c, listener_run: read_packet(..., 25)), not settable.
CONNECT_WAIT = 25
SILENT_APP_TIMEOUT = {"originate_timeout": "120"}  # the loopback call must outlive that wait unanswered


def _channel_gone(esl, uuid: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while esl.api(f"uuid_exists {uuid}").strip() == "true":
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _standby_takes_and_ends_it(esl_events, call, standby: OutboundListener, timeout: float) -> None:
    """The standby gets the same call within ``timeout`` s, hangs it up, and no channel of it stays."""
    app = standby.accept(timeout=timeout)
    channel = app.connect_call()
    assert channel["Caller-Destination-Number"] == "12345" and channel["variable_socket_resume"] == "true"
    app.send("sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING")
    assert _channel_gone(esl_events, channel["Unique-ID"]) and _channel_gone(esl_events, call.uuid)


def test_an_app_closing_the_socket_unread_hands_the_call_to_the_standby(esl_events, place_call, outbound_listener):
    """Should bring the call to the standby well before FreeSWITCH's connect wait when the first app accepts
    and closes the socket without `connect` (a stopping app's server), and leave no channel behind (without
    socket_resume the channel stayed parked in the first `socket` until the caller hung up)."""
    standby = OutboundListener()
    try:
        call = place_call(outbound=outbound_listener.address,
                          variables={"hotline_outbound_standby": standby.address, **SILENT_APP_TIMEOUT})
        outbound_listener.accept(timeout=10).close()
        _standby_takes_and_ends_it(esl_events, call, standby, timeout=CONNECT_WAIT / 2)
    finally:
        standby.close()


def test_a_silent_app_hands_the_call_to_the_standby_after_the_connect_wait(esl_events, place_call,
                                                                           outbound_listener):
    """Should bring the call to the standby once FreeSWITCH gives up waiting for `connect` from a first app
    that accepted the socket and stays silent (hung), and leave no channel behind."""
    standby = OutboundListener()
    try:
        call = place_call(outbound=outbound_listener.address,
                          variables={"hotline_outbound_standby": standby.address, **SILENT_APP_TIMEOUT})
        silent = outbound_listener.accept(timeout=10)
        _standby_takes_and_ends_it(esl_events, call, standby, timeout=CONNECT_WAIT + 15)
        silent.close()
    finally:
        standby.close()


class _LateListener(OutboundListener):
    """A listener on a given address, listening only from ``listen()`` on (the standby taking over)."""

    def __init__(self, address: str) -> None:
        host, port = address.split(":")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, int(port)))
        self.calls = []

    def listen(self) -> None:
        self.sock.listen(4)


def test_caller_left_by_a_dead_app_reaches_the_other_after_the_wait(esl_events, place_call, outbound_listener):
    """Should, when the app's socket drops while a prompt plays, let the prompt end, try the standby (not
    listening yet: refused), wait hotline_failover_wait and bring the same channel to the standby, which
    listens by then."""
    late = _LateListener("127.0.0.1:0")  # bound, not listening: refused
    try:
        call = place_call(outbound=outbound_listener.address, variables={"hotline_outbound_standby": late.address})
        first = outbound_listener.accept(timeout=10)
        first.connect_call()
        first.run("answer")
        b_leg = first.uuid
        # answered: a dropped socket no longer resets the channel (that would cut the tone)
        assert esl_events.api(f"uuid_getvar {b_leg} socket_resume").strip() == "false"
        first.execute("playback", "tone_stream://%(1000,0,440);loops=2")
        dropped = time.monotonic()
        outbound_listener.sock.close()  # the app dies: its server and the call's socket close
        first.close()  # the 2 s tone plays on, then the standby is tried and refused
        time.sleep(3.5)
        assert esl_events.api(f"uuid_exists {b_leg}").strip() == "true"
        late.listen()  # the standby has taken over
        second = late.accept(timeout=20)
        waited = time.monotonic() - dropped
        channel = second.connect_call()
        assert channel["Unique-ID"] == b_leg and call.exists()
        assert waited >= 5.0, waited  # the tone, then hotline_failover_wait (5 s)
        second.send("sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING")
    finally:
        late.close()


def test_caller_an_agent_talked_to_is_not_sent_back_into_the_menu(esl_events, place_call, outbound_listener,
                                                                   refusing_address):
    """Should hang up at once, without the failover wait, a caller the app had bridged to someone
    (last_bridge_to set) when the app's socket drops and the standby refuses."""
    call = place_call(outbound=outbound_listener.address, variables={"hotline_outbound_standby": refusing_address})
    app = outbound_listener.accept(timeout=10)
    app.connect_call()
    app.run("answer")
    app.run("set", "last_bridge_to=00000000-0000-0000-0000-000000000000")
    b_leg = app.uuid
    app.close()
    # Gone within 4 s, before hotline_failover_wait (5 s) could end: hung up at once, not kept for the standby.
    assert _channel_gone(esl_events, b_leg, timeout=4.0)
    assert esl_events.job_result(call.job, timeout=5).strip().startswith("+OK")
