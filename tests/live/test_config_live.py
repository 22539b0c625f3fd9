"""Live: what freeswitch-conf/ promises, checked on the running switch: the ESL address list, the carrier
profile's address list and number filter, the public context, conference, music on hold and fax
(spandsp rxfax/txfax and fax-tone detection).  Skipped without HOTLINE_TEST_ESL.
"""
from __future__ import annotations

import ipaddress
import re
import socket
import subprocess
import uuid as uuidlib

import pytest

from tests.live.eslraw import EslClient

pytestmark = pytest.mark.live

OTHER_LOCAL_ADDRESS = "127.0.0.2"   # on this machine, but not in the default allow lists (127.0.0.1/32)


def _admitted(cidrs: str, address: str) -> bool:
    return any(ipaddress.ip_address(address) in ipaddress.ip_network(c.strip(), strict=False)
               for c in cidrs.split(",") if c.strip())


def test_esl_refuses_an_address_outside_the_acl(esl, esl_endpoint):
    """Should refuse an ESL connection from an address not in esl_allowed, before asking for a password."""
    host, port, password = esl_endpoint
    if host != "127.0.0.1":
        pytest.skip("needs the switch on 127.0.0.1 to connect from another loopback address")
    if _admitted(esl.api("global_getvar esl_allowed_cidrs").strip(), OTHER_LOCAL_ADDRESS):
        pytest.skip(f"{OTHER_LOCAL_ADDRESS} is admitted by this switch's esl_allowed_cidrs")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((OTHER_LOCAL_ADDRESS, 0))
    sock.settimeout(5)
    sock.connect((host, port))
    client = EslClient(sock)
    try:
        greeting = client.read_frame(5)
    finally:
        client.close()
    assert greeting.content_type == "text/rude-rejection"
    assert "Access Denied" in greeting.body


# --- the carrier's profile, spoken to with a minimal SIP client (one INVITE, its final answer, ACK) ---

def sip_invite(source: str, port: int, number: str, timeout: float = 10.0) -> int:
    """Send one INVITE for ``number`` to 127.0.0.1:port from ``source``; the final status code."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    sock.settimeout(timeout)
    local_port = sock.getsockname()[1]
    branch, tag, call_id = ("z9hG4bK" + uuidlib.uuid4().hex[:16], uuidlib.uuid4().hex[:10],
                            uuidlib.uuid4().hex + "@" + source)
    sdp = (f"v=0\r\no=- 1 1 IN IP4 {source}\r\ns=-\r\nc=IN IP4 {source}\r\nt=0 0\r\n"
           f"m=audio {local_port + 2} RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
           f"a=rtpmap:101 telephone-event/8000\r\n")
    head = (f"Via: SIP/2.0/UDP {source}:{local_port};branch={branch};rport\r\n"
            f"From: <sip:13800138000@{source}>;tag={tag}\r\n")
    invite = (f"INVITE sip:{number}@127.0.0.1:{port} SIP/2.0\r\n{head}"
              f"To: <sip:{number}@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
              f"Contact: <sip:13800138000@{source}:{local_port}>\r\nContent-Type: application/sdp\r\n"
              f"Content-Length: {len(sdp)}\r\n\r\n{sdp}")
    try:
        sock.sendto(invite.encode(), ("127.0.0.1", port))
        while True:
            data = sock.recv(65535).decode("utf-8", "replace")
            status = int(data.split(" ", 2)[1])
            if status >= 200:
                break
        to_header = re.search(r"^To: (.*)$", data, re.MULTILINE | re.IGNORECASE).group(1).strip()
        ack = (f"ACK sip:{number}@127.0.0.1:{port} SIP/2.0\r\n{head}To: {to_header}\r\nCall-ID: {call_id}\r\n"
               f"CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        sock.sendto(ack.encode(), ("127.0.0.1", port))
        return status
    finally:
        sock.close()


@pytest.fixture
def external_port(esl) -> int:
    if esl.api("global_getvar external_sip_ip").strip() != "127.0.0.1":
        pytest.skip("the external profile is not on 127.0.0.1 here")
    return int(esl.api("global_getvar external_sip_port").strip())


def test_carrier_profile_refuses_other_addresses(esl, external_port):
    """Should answer 403 to an INVITE from an address outside carrier_cidrs."""
    if _admitted(esl.api("global_getvar carrier_cidrs").strip(), OTHER_LOCAL_ADDRESS):
        pytest.skip(f"{OTHER_LOCAL_ADDRESS} is admitted by carrier_cidrs")
    assert sip_invite(OTHER_LOCAL_ADDRESS, external_port, "12345") == 403


def test_carrier_profile_refuses_numbers_that_are_not_the_hotline(esl, external_port):
    """Should answer 404 (UNALLOCATED_NUMBER) to the carrier for a number that is not the hotline's."""
    if not _admitted(esl.api("global_getvar carrier_cidrs").strip(), "127.0.0.1"):
        pytest.skip("127.0.0.1 is not in carrier_cidrs here")
    assert sip_invite("127.0.0.1", external_port, "110") == 404


def test_carrier_numbers_reach_the_app_through_the_public_context(esl_events, place_call, outbound_listener):
    """Should bring a call for the hotline's DID in `public` to the same socket, marked as a carrier call."""
    call = place_call(destination="057112345", context="public", outbound=outbound_listener.address)
    app = outbound_listener.accept(timeout=15)
    channel = app.connect_call()
    assert channel["Caller-Destination-Number"] == "057112345"
    assert channel["Caller-Context"] == "public"
    assert channel["variable_hotline_entry"] == "carrier"
    app.run("hangup", "NORMAL_CLEARING")
    assert esl_events.job_result(call.job, timeout=15).startswith("-ERR")
    # A local number that merely ends in 12345 is not the hotline.
    other = place_call(destination="55512345", context="public", outbound=outbound_listener.address)
    assert esl_events.job_result(other.job, timeout=15).strip() == "-ERR UNALLOCATED_NUMBER"


def test_three_way_conference_uses_the_hotline_profile(esl, esl_events, place_call, outbound_listener):
    """Should put a leg into conference NAME@hotline: 8 kHz, and listed with its member."""
    name = "c-" + uuidlib.uuid4().hex[:12]
    esl_events.subscribe("CUSTOM", "conference::maintenance")
    call = place_call(outbound=outbound_listener.address, app=f"conference({name}@hotline)")
    app = outbound_listener.accept(timeout=15)
    app.connect_call()
    app.run("answer")
    assert esl_events.job_result(call.job, timeout=15).startswith("+OK")
    joined = esl_events.wait_event(lambda e: e.get("Event-Subclass") == "conference::maintenance"
                                   and e.get("Action") == "add-member" and e.get("Conference-Name") == name)
    assert joined["Unique-ID"] == call.uuid
    assert joined["Conference-Profile-Name"] == "hotline"
    assert call.uuid in esl.api(f"conference {name} list")
    summary = esl.api("conference list summary")
    assert re.search(rf"Conference {name} \(1 member rate: 8000", summary), summary
    call.hangup()


def test_music_on_hold_stream_is_running(esl):
    """Should run local_stream `moh` from the app's sounds/moh directory (it must exist at start-up)."""
    shown = esl.api("local_stream show moh")
    assert "location:" in shown, ("local_stream moh is not running: create sounds/moh (the app's hold "
                                  "music) and run `local_stream start moh`, or restart FreeSWITCH")
    assert re.search(r"rate:\s+8000", shown)
    assert shown.split("location:")[1].split()[0].rstrip("/").endswith("sounds/moh")


def _fax_result(event: dict[str, str]) -> tuple[str, str]:
    return event.get("variable_fax_success", ""), event.get("variable_fax_document_transferred_pages", "")


def test_fax_is_received_with_spandsp(esl_events, place_call, outbound_listener, fax_tiff, tmp_path):
    """Should receive a one-page fax sent with txfax into the hotline: ECM on, the TIFF written."""
    received = tmp_path / "received.tif"
    tmp_path.chmod(0o777)
    call = place_call(caller="057188887777", outbound=outbound_listener.address, app=f"txfax({fax_tiff})")
    app = outbound_listener.accept(timeout=15)
    app.connect_call()
    app.run("answer")
    done = app.run("rxfax", str(received), timeout=120)
    success, pages = _fax_result(done)
    assert success == "1", {k: v for k, v in done.items() if k.startswith("variable_fax")}
    assert pages == "1"
    assert done.get("variable_fax_ecm_used") == "on"
    info = subprocess.run(["tiffinfo", str(received)], capture_output=True, text=True, timeout=30).stdout
    assert "Image Width: 1728" in info
    call.hangup()


def test_fax_tone_detection_from_the_dialplan(esl, esl_events, place_call, outbound_listener, fax_tiff):
    """Should, with hotline_fax_detect=true, hear a calling fax machine's CNG and tell the app."""
    call = place_call(outbound=outbound_listener.address, app=f"txfax({fax_tiff})",
                      variables={"hotline_fax_detect": "true"})
    app = outbound_listener.accept(timeout=15)
    app.connect_call()
    assert app.command("event plain DETECTED_TONE").headers["Reply-Text"].startswith("+OK")
    app.run("answer")
    detected = app.wait_event(lambda e: e.get("Event-Name") == "DETECTED_TONE", timeout=20)
    assert detected["Detected-Fax-Tone"] == "true"
    assert detected["Unique-ID"] == app.uuid
    assert esl.api(f"uuid_getvar {app.uuid} fax_tone_detected").strip() == "true"
    call.hangup()


def test_fax_detection_starts_when_the_app_answers(esl, esl_events, place_call, outbound_listener):
    """Should start the dialplan's fax detector on 12345 with the shipped configuration
    (hotline_fax_detect=true) when the app answers, not before: the call still rings when the app connects
    (a detector would pre-answer it into early media), spandsp_start_fax_detect runs on the answer; with
    hotline_fax_detect=false on the call nothing is armed."""
    assert esl.api("global_getvar hotline_fax_detect").strip() == "true"
    place_call(outbound=outbound_listener.address)
    app = outbound_listener.accept(timeout=15)
    app.connect_call()
    assert app.channel["Answer-State"] == "ringing"
    app.run("answer")
    esl_events.wait_event(lambda e: e.get("Event-Name") == "CHANNEL_EXECUTE" and e.get("Unique-ID") == app.uuid
                          and e.get("Application") == "spandsp_start_fax_detect", timeout=10)
    place_call(outbound=outbound_listener.address, variables={"hotline_fax_detect": "false"})
    plain = outbound_listener.accept(timeout=15)
    plain.connect_call()
    assert plain.channel["Answer-State"] == "ringing"
    assert "variable_execute_on_answer_hotline_fax" not in plain.channel
    assert "variable_execute_on_answer_hotline_fax" in app.channel
