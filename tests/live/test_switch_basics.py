"""Live: the real FreeSWITCH running freeswitch-conf/ answers on ESL as configured and brings a call to
12345 to an outbound socket server, digits and audio included.  Skipped without HOTLINE_TEST_ESL.
"""
from __future__ import annotations

import pytest

from tests.live.eslraw import EslClient, EslError
from tests.ports import refusing_port

pytestmark = pytest.mark.live


def test_esl_auth_and_status(esl):
    """Should authenticate and answer `api status` with the switch's uptime and session counts."""
    status = esl.api("status")
    assert status.startswith("UP ")
    assert "session(s) since startup" in status
    assert "session(s) max" in status


def test_esl_refuses_a_wrong_password(esl_endpoint):
    """Should refuse a wrong password with FreeSWITCH's own -ERR and close the connection."""
    host, port, password = esl_endpoint
    with pytest.raises(EslError, match="-ERR invalid"):
        EslClient.connect(host, port, password + "-wrong")


def test_loaded_modules_match_the_configuration(esl):
    """Should have loaded every module freeswitch-conf asks for (a module that fails to load is an error)."""
    from tests.live.test_freeswitch_conf import REQUIRED_MODULES

    for module in REQUIRED_MODULES:
        assert esl.api(f"module_exists {module}").strip() == "true", module


def test_sip_profiles_run_on_loopback(esl):
    """Should run the internal and external SIP profiles, bound to the configured address only."""
    status = esl.api("sofia status")
    lines = {line.split()[0]: line for line in status.splitlines() if line.strip().startswith(("internal", "external"))
             and "profile" in line}
    assert "RUNNING" in lines["internal"] and "RUNNING" in lines["external"]
    assert "127.0.0.1:5060" in lines["internal"]
    assert "127.0.0.1:5080" in lines["external"]


def test_call_to_12345_reaches_the_outbound_socket(esl_events, place_call, outbound_listener, tone_wav):
    """Should bring loopback/12345 to the test's socket: connect, answer, a digit, audio, hang-up."""
    call = place_call(caller="13800138000", outbound=outbound_listener.address)
    app = outbound_listener.accept(timeout=15)
    channel = app.connect_call()
    assert channel["Caller-Destination-Number"] == "12345"
    assert channel["Caller-Caller-ID-Number"] == "13800138000"
    assert channel["Socket-Mode"] == "async" and channel["Control"] == "full"
    assert channel["variable_hotline_entry"] == "internal"

    answered = app.run("answer")
    assert answered["Application"] == "answer"
    assert esl_events.job_result(call.job, timeout=15).startswith("+OK")

    # A digit from the citizen's side arrives as a DTMF event on the app's socket.
    call.press("7")
    dtmf = app.wait_event(lambda e: e.get("Event-Name") == "DTMF", timeout=10)
    assert dtmf["DTMF-Digit"] == "7"
    assert dtmf["Unique-ID"] == app.uuid

    # Audio from the citizen's side is recorded by the app's channel.
    record_path = tone_wav.parent / "heard.wav"
    recording = app.execute("record", f"{record_path} 3 200 1")
    call.speak(str(tone_wav))
    app.wait_complete(recording, timeout=15)
    assert record_path.exists() and record_path.stat().st_size > 44

    app.run("hangup", "NORMAL_CLEARING")
    hangup = esl_events.wait_event(lambda e: e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE"
                                   and e.get("Unique-ID") == call.uuid, timeout=10)
    assert hangup["Hangup-Cause"] == "NORMAL_CLEARING"


def test_closing_the_socket_ends_an_answered_call(esl_events, place_call, outbound_listener):
    """Should hang an answered call up normally when the app's socket closes without a hangup and no app
    takes the call again (the app gone: the pair dialplan tries the standby, waits hotline_failover_wait,
    tries both once more, then hangs up; tests/live/test_pair_live.py has the rest)."""
    call = place_call(outbound=outbound_listener.address)
    app = outbound_listener.accept(timeout=15)
    app.connect_call()
    app.run("answer")
    assert esl_events.job_result(call.job, timeout=15).startswith("+OK")
    outbound_listener.sock.close()  # the app's server is gone with it
    app.close()
    hangup = esl_events.wait_event(lambda e: e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE"
                                   and e.get("Unique-ID") == app.uuid, timeout=20)
    assert hangup["Hangup-Cause"] == "NORMAL_CLEARING"


def test_call_is_refused_when_the_app_is_unreachable(esl_events, place_call):
    """Should refuse the call (NORMAL_TEMPORARY_FAILURE, i.e. SIP 503) when nothing listens at the socket."""
    with refusing_port() as port:  # held, never listening
        call = place_call(outbound=f"127.0.0.1:{port}")
        result = esl_events.job_result(call.job, timeout=15)
    assert result.strip() == "-ERR NORMAL_TEMPORARY_FAILURE"


def test_unknown_number_is_unallocated(esl_events, place_call):
    """Should refuse numbers the dialplan does not know instead of sending them to the app."""
    call = place_call(destination="99999")
    assert esl_events.job_result(call.job, timeout=15).strip() == "-ERR UNALLOCATED_NUMBER"


def test_configured_outbound_address_is_used(esl_events, place_call, configured_outbound):
    """Should send 12345 to the global hotline_outbound when the call does not override it."""
    server = configured_outbound
    server.settimeout(15)
    call = place_call()
    conn, _ = server.accept()
    try:
        conn.settimeout(10)
        conn.sendall(b"connect\n\n")
        reply = b""
        while b"\n\n" not in reply:
            chunk = conn.recv(65536)
            assert chunk, "FreeSWITCH closed the socket before replying to connect"
            reply += chunk
        assert b"Caller-Destination-Number: 12345" in reply
        assert f"Caller-Caller-ID-Number: {call.caller}".encode() in reply
        # Hang up explicitly before closing: a socket closed right after `connect` can race the socket
        # app's park and leave the channel parked until the caller gives up (seen on 1.11.3-dev).
        conn.sendall(b"sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING\n\n")
        assert esl_events.job_result(call.job, timeout=15).strip() == "-ERR NORMAL_CLEARING"
    finally:
        conn.close()
