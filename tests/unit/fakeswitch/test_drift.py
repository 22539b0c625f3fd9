"""The fake, run through a captured scenario, sends what the real switch sent (tests/transcripts): each channel's
event types in order, the header names of every event type, the variables the app reads, the value shapes.
Any drift of the fake from the captures fails here; the differences that are meant are listed below."""
from __future__ import annotations

import json
import re

import pytest

from tests.fakeswitch import transcript
from tests.unit.fakeswitch.rawclient import RawClient

CAPTURE = transcript.ESL_DIR / "inbound_plain_and_json.txt"
pytestmark = pytest.mark.skipif(not CAPTURE.exists(), reason="no transcripts under tests/transcripts")

# Intended differences, each for a reason:
# - uuids, timestamps, sequence numbers, hostnames and addresses differ by nature (compared by shape only);
# - the capture's B leg leaves its park before it hangs up (mod_loopback breaks it first); the fake hangs it up
#   first, then the park ends;
# - header names that only the real endpoint or build has (media statistics, SIP/SDP, the export list);
# - CHANNEL_UUID / CHANNEL_OUTGOING / CODEC of the A leg come before the API event in the fake (the real
#   switch fires API from the api thread, racing the originate).
# (The loopback A leg's caller-id flip at CALL_UPDATE is played by the fake too: test_capture_headers.)
ENDPOINT_VARIABLES = re.compile(r"^variable_(rtp_|sip_|switch_r_sdp|DP_MATCH|export_vars|RFC2822_DATE|"
                                r"originate_early_media|originate_endpoint|is_loopback|"
                                r"pre_transfer_caller_id_number|origination_uuid|current_application_data)")
# Variables the app (switch/, acd/, recorder/) reads off events: present on the same events as captured.
APP_VARIABLES = ("variable_hangup_cause", "variable_billsec", "variable_answersec", "variable_answermsec",
                 "variable_answerusec", "variable_duration", "variable_waitsec", "variable_progresssec",
                 "variable_read_codec", "variable_read_rate", "variable_write_codec", "variable_write_rate",
                 "variable_start_uepoch", "variable_answer_uepoch", "variable_end_uepoch", "variable_call_uuid")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _shape(value: str) -> str:
    """What kind of value it is, for comparing values that differ by nature."""
    if UUID.match(value):
        return "uuid"
    if re.fullmatch(r"\d{16}", value):
        return "usec"
    if re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", value):
        return "stamp"
    if re.fullmatch(r"-?\d+", value):
        return "int"
    return "text"


def _json_events(frames):
    out = []
    for fr in frames:
        head, _, body = fr.partition(b"\n\n")
        if b"Content-Type: text/event-json" in head:
            out.append(json.loads(body))
    return out


def _real():
    events = _json_events(transcript.load(CAPTURE).frames("IN"))   # the `event json ALL` part
    originate = next(e for e in events if e["Event-Name"] == "API" and e.get("API-Command") == "originate")
    return events, originate["API-Command-Argument"]


def _fake(fakeswitch, argument):
    c = RawClient.connect(fakeswitch.address)
    c.read_frame()
    c.command("auth ClueCon")
    c.command("event json ALL")
    c.command(f"bgapi originate {argument}")
    job = c.read_until(lambda f: f.content_type == "text/event-json" and f.event()[0]["Event-Name"] == "BACKGROUND_JOB")
    uuid = job.event()[1].split()[1]
    fakeswitch.wait_for(lambda: all(ch.parked for ch in fakeswitch.channels.values()), 5, "both legs parked")
    c.command(f"api uuid_kill {uuid} NORMAL_CLEARING")
    fakeswitch.wait_for(lambda: not fakeswitch.channels and len(fakeswitch.gone) == 2, 5, "both legs gone")
    c.command("noevents")   # a barrier: every event before it has been written
    return _json_events(fakeswitch.inbound_sessions[0].sent)


def _legs(events):
    """{'A' | 'B': [event, ...]} by Channel-Name suffix, in order."""
    legs = {"A": [], "B": []}
    for e in events:
        name = e.get("Channel-Name", "")
        if name.endswith("-a"):
            legs["A"].append(e)
        elif name.endswith("-b"):
            legs["B"].append(e)
    return legs


def _kind(e):
    name = e["Event-Name"]
    if name in ("CHANNEL_STATE", "CHANNEL_CALLSTATE"):
        return name, e.get("Channel-State"), e.get("Channel-Call-State")
    if name in ("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE"):
        return name, e.get("Application")
    return (name,)


@pytest.fixture(scope="module")
def scenario():
    from tests.fakeswitch import FakeSwitch
    real, argument = _real()
    with FakeSwitch(time_scale=0.01) as fs:
        fake = _fake(fs, argument)
    return real, fake


def test_each_channel_sends_the_captured_event_types_in_order(scenario):
    """Should give each leg of a loopback originate + uuid_kill the captured events in the captured order."""
    real, fake = scenario
    r, f = _legs(real), _legs(fake)
    assert [_kind(e) for e in f["A"]] == [_kind(e) for e in r["A"]]
    real_b = [_kind(e) for e in r["B"]]
    fake_b = [_kind(e) for e in f["B"]]
    # the loopback B leg: hang-up before the park ends (see the list above); otherwise the same order
    assert sorted(fake_b) == sorted(real_b)
    assert [k for k in fake_b if k[0] not in ("CHANNEL_HANGUP", "CHANNEL_UNPARK", "CHANNEL_EXECUTE_COMPLETE")] == \
        [k for k in real_b if k[0] not in ("CHANNEL_HANGUP", "CHANNEL_UNPARK", "CHANNEL_EXECUTE_COMPLETE")]


def test_every_event_type_has_the_captured_header_names(scenario):
    """Should send, per event type, the captured header names (variables aside), no more and no fewer."""
    real, fake = scenario
    def names(events):
        out = {}
        for e in events:
            out.setdefault(e["Event-Name"], set()).update(k for k in e if not k.startswith("variable_"))
        return out
    r, f = names(real), names(fake)
    assert set(f) == set(r)
    for event_name in r:
        assert f[event_name] == r[event_name], (event_name, f[event_name] ^ r[event_name])


def test_variables_the_app_reads_are_where_the_capture_has_them(scenario):
    """Should carry the app's variables on the same events, with values of the same shape."""
    real, fake = scenario
    for leg in ("A", "B"):
        r = {e["Event-Name"]: e for e in _legs(real)[leg]}
        f = {e["Event-Name"]: e for e in _legs(fake)[leg]}
        for event_name in ("CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"):
            for var in APP_VARIABLES:
                assert (var in f[event_name]) == (var in r[event_name]), (leg, event_name, var)
                if var in r[event_name]:
                    assert _shape(f[event_name][var]) == _shape(r[event_name][var]), (leg, event_name, var)
        real_vars = {k for e in r.values() for k in e if k.startswith("variable_") and not ENDPOINT_VARIABLES.match(k)}
        fake_vars = {k for e in f.values() for k in e if k.startswith("variable_")}
        assert real_vars <= fake_vars, (leg, real_vars - fake_vars)


def test_values_have_the_captured_shapes(scenario):
    """Should give every common header a value of the captured shape (uuid, timestamp, number, text)."""
    real, fake = scenario
    r = {}
    for e in real:
        for k, v in e.items():
            if not k.startswith("variable_") and k != "_body":
                r.setdefault((e["Event-Name"], k), set()).add(_shape(str(v)))
    for e in fake:
        for k, v in e.items():
            key = (e["Event-Name"], k)
            if key in r and k not in ("Caller-Caller-ID-Number", "Caller-Callee-ID-Number", "Caller-ANI",
                                      "Caller-Orig-Caller-ID-Number", "API-Command-Argument"):
                # a time not reached yet is 0 on both sides
                assert _shape(str(v)) in r[key] or (v == "0" and "usec" in r[key]), (key, v, r[key])


def test_event_xml_is_sent_as_xml(fakeswitch):
    """Should answer `event xml` with text/event-xml frames (headers as elements, URL-encoded values)."""
    c = RawClient.connect(fakeswitch.address)
    c.read_frame()
    c.command("auth ClueCon")
    assert c.command("event xml CHANNEL_CREATE").headers["Reply-Text"] == "+OK event listener enabled xml"
    fakeswitch.add_agent("1000", answer_delay=0)
    c.command("api originate user/1000 &park")
    f = c.read_until(lambda f: f.content_type == "text/event-xml")
    text = f.body.decode("utf-8")
    assert int(f.headers["Content-Length"]) == len(f.body)
    assert text.startswith("<event>\n  <headers>\n    <Event-Name>CHANNEL_CREATE</Event-Name>\n")
    assert "<Caller-Channel-Name>sofia/internal/1000%40127.0.0.1%3A5070</Caller-Channel-Name>" in text
    assert text.endswith("  </headers>\n</event>")


@pytest.mark.parametrize("dtmf_type, source", [("rfc2833", "RTP"), ("info", "INFO"), ("inband", "INBAND_AUDIO")])
def test_dtmf_source_follows_the_call_and_hangup_disposition(fakeswitch, dtmf_type, source):
    """Should report DTMF-Source as the caller's DTMF mode says, and recv_bye when the caller hangs up."""
    from tests.fakeswitch import Hangup, Press
    from tests.unit.fakeswitch.rawclient import AppServer, execute

    def app(c):
        c.command("connect")
        c.command("myevents")
        execute(c, "answer")
        execute(c, "play_and_get_digits", "1 1 1 3000 # silence_stream://100 silence d \\d 1000")
        c.read_until(lambda f: f.content_type == "text/disconnect-notice")
        c.close()

    with AppServer(app) as srv:
        call = fakeswitch.place_call(srv.address, variables={"dtmf_type": dtmf_type}, script=[Press("5"), Hangup()])
        call.wait_ended(10)
        srv.wait_done()
    events = [RawFrame for RawFrame in call.sent if b"Event-Name: DTMF" in RawFrame]
    assert events and f"DTMF-Source: {source}".encode() in events[0]
    assert call.channel.get_var("sip_hangup_disposition") == "recv_bye"
    assert int(call.channel.get_var("answermsec")) >= 0 and call.channel.get_var("answerusec").isdigit()
