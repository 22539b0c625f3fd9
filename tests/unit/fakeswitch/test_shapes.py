"""The fake's frames have the shape of the real captures (tests/transcripts, from ../shared/esl/): header names and order,
content types, URL-encoding, Content-Length in UTF-8 bytes; and the captures replay byte for byte."""
from __future__ import annotations

import collections
import urllib.parse

import pytest

from tests.fakeswitch import Press, Speak, transcript, wire
from tests.unit.fakeswitch.rawclient import AppServer, RawClient, execute

TRANSCRIPTS = transcript.available()
needs_transcripts = pytest.mark.skipif(not TRANSCRIPTS, reason="no transcripts under tests/transcripts")

# Caller-profile fields that depend on the endpoint (loopback vs sofia, display name set or not).
ENDPOINT_SPECIFIC = {"Caller-Network-Addr", "Caller-Username", "Channel-Presence-ID", "Caller-Callee-ID-Name",
                     "Caller-Callee-ID-Number", "Caller-Caller-ID-Name", "Caller-Orig-Caller-ID-Name",
                     "Caller-Transfer-Source"}


def _split(frame: bytes):
    head, _, body = frame.partition(b"\n\n")
    outer = [ln.split(": ", 1) for ln in head.decode("utf-8").split("\n")]
    return outer, body


def _plain_events(frames):
    """{event name: [(outer names, inner (name, raw value) pairs)]} for text/event-plain frames."""
    out = collections.defaultdict(list)
    for fr in frames:
        outer, body = _split(fr)
        if dict(outer).get("Content-Type") != "text/event-plain":
            continue
        inner = body.partition(b"\n\n")[0].decode("utf-8")
        pairs = [tuple(ln.split(": ", 1)) for ln in inner.split("\n")]
        name = dict(pairs)["Event-Name"]
        out[name].append(([k for k, _ in outer], pairs))
    return out


@pytest.fixture(scope="module")
def real_events():
    events = collections.defaultdict(list)
    for path in TRANSCRIPTS:
        for k, v in _plain_events(transcript.load(path).frames()).items():
            events[k] += v
    return events


@needs_transcripts
def test_url_encoding_matches_every_captured_value():
    """Should re-encode every captured header value (events and the connect reply) to the same bytes."""
    checked = 0
    for path in TRANSCRIPTS:
        for fr in transcript.load(path).frames():
            outer, body = _split(fr)
            d = dict(outer)
            if d.get("Content-Type") == "text/event-plain":
                pairs = [ln.split(": ", 1) for ln in body.partition(b"\n\n")[0].decode().split("\n")]
            elif "Event-Name" in d:          # the connect reply: every header encoded
                pairs = outer
            else:
                continue
            for k, v in pairs:
                if k == "Reply-Text" and "Event-Name" in d:
                    continue
                assert wire.url_encode(urllib.parse.unquote(v)) == v, (path.name, k, v)
                checked += 1
    assert checked > 10000


def test_url_encode_rules():
    """Should encode like switch_url_encode: unsafe set, UTF-8 bytes, existing %XX kept."""
    assert wire.url_encode("2026-11-27 20:38:21") == "2026-11-27%2020%3A38%3A21"
    assert wire.url_encode("Fri, 27 Nov") == "Fri,%2027%20Nov"
    assert wire.url_encode("tone_stream://%(250,50,440);loops=2") == "tone_stream%3A//%25(250,50,440)%3Bloops%3D2"
    assert wire.url_encode("\\d+") == "%5Cd%2B"
    assert wire.url_encode("张三") == "%E5%BC%A0%E4%B8%89"
    assert wire.url_encode("a%41b") == "a%41b"
    assert wire.url_encode("+OK\n") == "%2BOK%0A"


def test_content_length_counts_utf8_bytes(fakeswitch):
    """Should count Content-Length in UTF-8 bytes for api bodies and JSON events with Chinese text."""
    c = RawClient.connect(fakeswitch.address)
    c.read_frame()
    c.command("auth ClueCon")
    fakeswitch.add_agent("1000", answer_delay=0)
    c.command("event json CHANNEL_CREATE")
    c.command("api originate {origination_caller_id_name='市民 张三'}user/1000 &park")
    f = c.read_until(lambda f: f.content_type == "text/event-json")
    assert int(f.headers["Content-Length"]) == len(f.body)
    assert f.event()[0]["Caller-Caller-ID-Name"] == "市民 张三"
    uuid = next(iter(fakeswitch.channels))
    c.command(f"api uuid_setvar {uuid} note 工单 12345")
    r = c.command(f"api uuid_getvar {uuid} note")
    assert r.body.decode("utf-8") == "工单 12345"
    assert int(r.headers["Content-Length"]) == len("工单 12345".encode("utf-8"))
    plain = wire.event_plain([("Event-Name", "CUSTOM"), ("x", "张")], body="体")
    outer, body = _split(plain)
    assert int(dict(outer)["Content-Length"]) == len(body)
    assert body.endswith(b"Content-Length: 3\n\n" + "体".encode("utf-8"))


def test_reply_frames_are_byte_exact():
    """Should build command/reply, api/response and notices exactly like the captures."""
    assert wire.command_reply("+OK accepted") == b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"
    j = "3228a1f2-155f-46e5-a1e2-9f5cffb877cd"
    assert wire.command_reply(f"+OK Job-UUID: {j}", [("Job-UUID", j)]) == (
        f"Content-Type: command/reply\nReply-Text: +OK Job-UUID: {j}\nJob-UUID: {j}\n\n".encode())
    assert wire.api_response("-ERR No such channel!\n") == (
        b"Content-Type: api/response\nContent-Length: 22\n\n-ERR No such channel!\n")
    u = "4912fe94-2272-4959-94d6-a442bda1eb6c"
    assert wire.linger_notice(u, "loopback/12345-b", -1) == (
        f"Content-Type: text/disconnect-notice\nControlled-Session-UUID: {u}\nContent-Disposition: linger\n"
        f"Channel-Name: loopback/12345-b\nLinger-Time: -1\nContent-Length: 0\n\n").encode()
    assert wire.disconnect_notice(u) == (
        f"Content-Type: text/disconnect-notice\nControlled-Session-UUID: {u}\nContent-Disposition: disconnect\n"
        "Content-Length: 67\n\nDisconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n").encode()


def _outbound_scenario(fs, tmp_path):
    """The scenario of outbound_socket_async_full.txt, against the fake."""
    def app(c):
        c.command("connect")
        c.command("myevents")
        c.command("linger")
        execute(c, "answer")
        c.command("event plain PLAYBACK_START PLAYBACK_STOP RECORD_START RECORD_STOP BACKGROUND_JOB")
        execute(c, "playback", "tone_stream://%(250,50,440,480);loops=2")
        execute(c, "set", "esl_test_var=hello world")
        execute(c, "play_and_get_digits",
                "2 5 1 7000 # tone_stream://%(1000,0,620) silence_stream://250 pagd_digits \\d+ 3000")
        c.command("bgapi uuid_getvar x y")
        execute(c, "record", f"{tmp_path}/r.wav 3")
        c.command("sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING\n\n")
        c.read_until(lambda f: f.content_type == "text/disconnect-notice")
        c.close()

    with AppServer(app) as srv:
        call = fs.place_call(srv.address, script=[Press("1234#"), Speak(1)])
        call.wait_ended(10)
        srv.wait_done()
    return call


@needs_transcripts
def test_outbound_event_shapes_match_capture(fakeswitch, tmp_path, real_events):
    """Should send each event with the real outer frame, common block order and header names."""
    call = _outbound_scenario(fakeswitch, tmp_path)
    fake = _plain_events(call.sent)
    assert {"CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_ANSWER", "DTMF", "PLAYBACK_START",
            "PLAYBACK_STOP", "RECORD_START", "RECORD_STOP", "BACKGROUND_JOB", "CHANNEL_HANGUP",
            "CHANNEL_HANGUP_COMPLETE", "CHANNEL_UNPARK", "CHANNEL_STATE"} <= set(fake)
    for name, samples in fake.items():
        assert name in real_events, name
        real_names = set()
        for _, pairs in real_events[name]:
            real_names |= {k for k, _ in pairs}
        for outer, pairs in samples:
            func = dict(pairs).get("Event-Calling-Function")
            real_outer, real_pairs = next((r for r in real_events[name]
                                           if dict(r[1]).get("Event-Calling-Function") == func),
                                          real_events[name][0])
            assert outer == real_outer, name
            names = [k for k, _ in pairs]
            assert names[:13] == [k for k, _ in real_pairs][:13], name
            extra = {n for n in names if not n.startswith("variable_")} - real_names - ENDPOINT_SPECIFIC
            assert not extra, (name, extra)
            # Event-specific headers of the capture (not profile blocks) are all present.
            specific = {k for k, _ in real_pairs if not k.startswith(("Caller-", "Other-", "Channel-",
                                                                       "variable_", "Job-Command-Arg",
                                                                       "Job-Owner", "Hangup-Cause"))}
            assert specific <= set(names), (name, specific - set(names))


@needs_transcripts
def test_connect_reply_shape_matches_capture(fakeswitch, tmp_path):
    """Should reply to connect with the captured header layout (profile as Channel-, then state, Caller-)."""
    real = next(f for f in transcript.load(transcript.ESL_DIR / "outbound_socket_sip_caller_rfc2833.txt").frames()
                if f.startswith(b"Event-Name: CHANNEL_DATA"))
    call = _outbound_scenario(fakeswitch, tmp_path)
    fake = next(f for f in call.sent if f.startswith(b"Event-Name: CHANNEL_DATA"))
    rn = [k for k, _ in _split(real)[0] if not k.startswith("variable_")]
    fn = [k for k, _ in _split(fake)[0] if not k.startswith("variable_")]
    assert fn == [k for k in rn if k in fn]           # same relative order
    assert set(rn) - set(fn) <= ENDPOINT_SPECIFIC | {"Channel-Username", "Channel-Network-Addr"} | set()
    assert fake.endswith(b"Content-Type: command/reply\nReply-Text: %2BOK%0A\nSocket-Mode: async\nControl: full\n\n")


@needs_transcripts
def test_inbound_event_shapes_match_capture(fakeswitch, tmp_path, real_events):
    """Should produce ACD-scenario events (create, answer, bridge, record, custom) shaped like the capture."""
    c = RawClient.connect(fakeswitch.address)
    c.read_frame()
    c.command("auth ClueCon")
    c.command("event plain CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_HANGUP_COMPLETE "
              "CHANNEL_EXECUTE_COMPLETE RECORD_START RECORD_STOP BACKGROUND_JOB CHANNEL_PARK "
              "CUSTOM conference::maintenance sofia::register sofia::unregister")
    fakeswitch.add_agent("1000", answer_delay=0)
    cust = c.command("api originate loopback/9999/default &park").body.decode().split()[1]
    agent = c.command("api originate user/1000 &park").body.decode().split()[1]
    c.command(f"api uuid_bridge {cust} {agent}")
    c.read_event("CHANNEL_BRIDGE")
    c.command(f"api uuid_record {cust} start {tmp_path}/a.wav")
    c.command(f"api uuid_record {cust} stop {tmp_path}/a.wav")
    c.command(f"api uuid_transfer {cust} -both conference:acd_room@default inline")
    fakeswitch.wait_for(lambda: len(fakeswitch.conferences.get("acd_room", type("x", (), {"members": []})).members) == 2,
                        5, "two members")
    c.command("api conference acd_room hup all")
    c.command(f"api uuid_kill {cust}")
    fakeswitch.wait_for(lambda: not fakeswitch.channels, 5, "all channels gone")
    c.command("api status")
    fake = _plain_events(fakeswitch.inbound_sessions[0].sent)
    for name in ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "CHANNEL_PARK",
                 "CHANNEL_EXECUTE_COMPLETE", "RECORD_START", "RECORD_STOP", "CHANNEL_HANGUP_COMPLETE", "CUSTOM"):
        assert name in fake, name
        real_names = set().union(*[{k for k, _ in p} for _, p in real_events[name]])
        for outer, pairs in fake[name]:
            assert outer == real_events[name][0][0]
            extra = {k for k, _ in pairs if not k.startswith("variable_")} - real_names - ENDPOINT_SPECIFIC
            assert not extra, (name, extra)


@needs_transcripts
def test_replay_inbound_capture_byte_for_byte():
    """Should serve the captured inbound connection's frames in order to a client sending its commands."""
    tr = transcript.load(transcript.ESL_DIR / "inbound_plain_and_json.txt")
    with transcript.ReplayServer(tr, "IN") as srv:
        c = RawClient.connect(srv.address)
        got = []
        expected = tr.frames("IN")
        cmds = iter(tr.commands("IN"))
        for step in tr.of("IN"):
            if step.direction == "C->S" and step.data is not None:
                c.send(next(cmds))
            elif step.direction == "S->C" and step.data is not None:
                got.append(c.read_frame(5).raw)
        srv.finished.wait(5)
    assert got == expected
    assert len(srv.received) == len(tr.commands("IN"))


@needs_transcripts
def test_replay_outbound_capture_to_an_app():
    """Should replay the captured outbound socket to an app server, frame for frame."""
    tr = transcript.load(transcript.ESL_DIR / "outbound_socket_sip_caller_rfc2833.txt")
    got = []

    def app(c):
        cmds = iter(tr.commands("OUT"))
        for step in tr.of("OUT"):
            if step.direction == "C->S" and step.data is not None:
                c.send(next(cmds))
            elif step.direction == "S->C" and step.data is not None:
                got.append(c.read_frame(5).raw)
        c.close()

    with AppServer(app) as srv:
        received = []
        transcript.replay_outbound(tr, "OUT", srv.address, received)
        srv.wait_done()
    assert got == tr.frames("OUT")
    assert received[0].line == "connect"


def test_transcript_parser_rejects_garbage(tmp_path):
    """Should say which line is malformed instead of guessing."""
    p = tmp_path / "bad.txt"
    p.write_text("[   0.001] IN S->C b'ok\\n\\n'\n[   0.002] IN S->C not-bytes\n")
    with pytest.raises(ValueError, match="bad.txt:2"):
        transcript.load(p)


@needs_transcripts
def test_conference_json_list_formatting_matches_capture(fakeswitch):
    """Should format conference json_list like the capture (cJSON tabs) with the same keys."""
    import json
    real = next(f for f in transcript.load(transcript.ESL_DIR / "acd_bridge_eavesdrop_record_transfer_conference.txt")
                .frames() if b'"conference_name"' in f)
    real_body = _split(real)[1].decode()
    fakeswitch.add_agent("1000", answer_delay=0)
    fakeswitch.api("originate user/1000 &conference(room9@default)")
    fakeswitch.wait_for(lambda: "room9" in fakeswitch.conferences, 5, "conference")
    body = fakeswitch.api("conference room9 json_list")
    assert body.startswith('[{\n\t\t"conference_name":\t"room9",') and body.endswith("\t\t\t}]\n\t}]")
    assert real_body.startswith('[{\n\t\t"conference_name":\t') and real_body.endswith("\t\t\t}]\n\t}]")
    real_member = json.loads(real_body)[0]["members"][0]
    fake_member = json.loads(body)[0]["members"][0]
    assert set(fake_member) == set(real_member)
    assert set(fake_member["flags"]) == set(real_member["flags"])
