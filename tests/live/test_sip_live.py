"""Live: an agent's SIP phone (sipp) registers on the internal profile with the configured password and
is refused with a wrong one.  Skipped without HOTLINE_TEST_ESL, or without sipp (Debian: sip-tester).
"""
from __future__ import annotations

import subprocess
import uuid as uuidlib

import pytest

from tests.live.eslraw import EslClient, OutboundCall
from tests.live.sipphone import SCENARIOS, register
from tests.live.sipphone import free_udp_port as _free_udp_port

pytestmark = pytest.mark.live



@pytest.fixture
def sip_events(esl_endpoint):
    client = EslClient.connect(*esl_endpoint)
    client.subscribe("CUSTOM", "sofia::register", "sofia::unregister", "sofia::register_failure")
    yield client
    client.close()


@pytest.fixture
def internal_port(esl) -> int:
    """The internal profile's SIP port, as the switch was configured."""
    return int(esl.api("global_getvar internal_sip_port").strip())


def test_agent_phone_registers_and_unregisters(sipp, esl, sip_events, internal_port, tmp_path):
    """Should register extension 1010 with the configured agent password, list it, then unregister it."""
    password = esl.api("global_getvar agent_password").strip()
    port = _free_udp_port()
    done = register(sipp, tmp_path, internal_port, "1010", password, 120, port)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    event = sip_events.wait_event(lambda e: e.get("Event-Subclass") == "sofia::register"
                                  and e.get("from-user") == "1010", timeout=10)
    assert event["profile-name"] == "internal"
    listing = esl.api("sofia status profile internal reg")
    assert "1010@" in listing and f"127.0.0.1:{port}" in listing

    done = register(sipp, tmp_path, internal_port, "1010", password, 0, port)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    sip_events.wait_event(lambda e: e.get("Event-Subclass") == "sofia::unregister"
                          and e.get("from-user") == "1010", timeout=10)
    assert f"127.0.0.1:{port}" not in esl.api("sofia status profile internal reg")


def test_wrong_password_is_refused(sipp, esl, sip_events, internal_port, tmp_path):
    """Should refuse a REGISTER with a wrong password and list no registration for it."""
    port = _free_udp_port()
    done = register(sipp, tmp_path, internal_port, "1011", "not-the-password", 120, port)
    assert done.returncode != 0
    failure = sip_events.wait_event(lambda e: e.get("Event-Subclass") == "sofia::register_failure"
                                    and e.get("to-user") == "1011", timeout=10)
    assert failure["profile-name"] == "internal"
    assert f"127.0.0.1:{port}" not in esl.api("sofia status profile internal reg")


def test_unknown_extension_cannot_register(sipp, esl, internal_port, tmp_path):
    """Should refuse an extension outside 1000-1019 even with the agents' password."""
    password = esl.api("global_getvar agent_password").strip()
    port = _free_udp_port()
    done = register(sipp, tmp_path, internal_port, "2000", password, 120, port)
    assert done.returncode != 0
    assert f"127.0.0.1:{port}" not in esl.api("sofia status profile internal reg")


def test_originate_rings_a_registered_agent_phone(sipp, esl, esl_events, internal_port, tmp_path):
    """Should ring extension 1012 at its registered contact (user/1012), and end the call with a BYE."""
    password = esl.api("global_getvar agent_password").strip()
    phone_port, register_port = _free_udp_port(), _free_udp_port()
    phone = subprocess.Popen(
        [sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", str(phone_port), "-m", "1", "-timeout", "30s",
         "-timeout_error", "-nostdin"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        done = register(sipp, tmp_path, internal_port, "1012", password, 120, register_port, phone_port)
        assert done.returncode == 0, done.stdout[-2000:]
        call_uuid = str(uuidlib.uuid4())
        job = esl.bgapi(f"originate {{origination_uuid={call_uuid},originate_timeout=15}}user/1012 &park")
        assert esl_events.job_result(job, timeout=20).strip() == f"+OK {call_uuid}"
        answered = esl_events.wait_event(lambda e: e.get("Event-Name") == "CHANNEL_ANSWER"
                                         and e.get("Unique-ID") == call_uuid)
        assert answered["Channel-Name"] == f"sofia/internal/1012@127.0.0.1:{phone_port}"
        assert answered["variable_dialed_user"] == "1012"
        esl.api(f"uuid_kill {call_uuid}")
        output, _ = phone.communicate(timeout=20)
        assert phone.returncode == 0, output[-2000:]
    finally:
        if phone.poll() is None:
            phone.kill()
            phone.communicate(timeout=10)
        register(sipp, tmp_path, internal_port, "1012", password, 0, register_port, phone_port)


def test_desk_phone_call_to_12345_reaches_the_app(sipp, esl, internal_port, configured_outbound, tmp_path):
    """Should authenticate a desk phone's INVITE to 12345 (407) and hand the call to the app's socket."""
    password = esl.api("global_getvar agent_password").strip()
    phone = subprocess.Popen(
        [sipp, f"127.0.0.1:{internal_port}", "-sf", str(SCENARIOS / "call_auth.xml"), "-s", "12345",
         "-key", "caller", "1013", "-au", "1013", "-ap", password, "-i", "127.0.0.1",
         "-p", str(_free_udp_port()), "-mp", str(_free_udp_port()), "-m", "1", "-timeout", "30s",
         "-timeout_error", "-nostdin"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        configured_outbound.settimeout(15)
        conn, _ = configured_outbound.accept()
        app = OutboundCall(conn)
        channel = app.connect_call()
        assert channel["Caller-Destination-Number"] == "12345"
        assert channel["Caller-Caller-ID-Number"] == "1013"
        assert channel["Caller-Context"] == "default"
        assert channel["Channel-Name"].startswith("sofia/internal/1013@")
        assert channel["variable_sip_authorized"] == "true"
        assert channel["variable_hotline_entry"] == "internal"
        app.run("answer")
        app.run("hangup", "NORMAL_CLEARING")
        app.close()
        output, _ = phone.communicate(timeout=20)
        assert phone.returncode == 0, output[-2000:]
    finally:
        if phone.poll() is None:
            phone.kill()
            phone.communicate(timeout=10)
