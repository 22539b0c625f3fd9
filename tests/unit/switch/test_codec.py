"""ESL wire codec: every frame of every real transcript, the facts they show, and bad input."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from switch import codec
from switch.codec import (
    API_RESPONSE, AUTH_REQUEST, COMMAND_REPLY, DISCONNECT_NOTICE, EVENT_JSON, EVENT_PLAIN, KNOWN_CONTENT_TYPES,
    RUDE_REJECTION, FrameParser, encode_command, parse_event_body,
)
from switch.errors import ProtocolError
from switch.transcript import load_transcript, parse_transcript, server_stream

from .conftest import transcript_params

# every test twice: the pure-Python header-block split and the C one (conftest.codec_split)
pytestmark = pytest.mark.usefixtures("codec_split")


def frames_of(data: bytes, **kw):
    parser = FrameParser(**kw)
    frames = parser.feed(data)
    parser.close()
    return frames


def event_frame(headers: str, body: bytes = b"") -> bytes:
    """Build a text/event-plain frame the way FreeSWITCH serialises it."""
    inner = headers.encode("utf-8")
    if body:
        inner += b"Content-Length: %d\n\n" % len(body) + body
    else:
        inner += b"\n"
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(inner) + inner


# --- every transcript ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", transcript_params())
def test_every_recorded_frame_parses_alone(path):
    """Should parse each recorded S->C frame into exactly one frame with no defect and a known type."""
    lines = [l for l in load_transcript(path) if l.direction == "S->C"]
    assert lines, "transcript has no server frames"
    for line in lines:
        parser = FrameParser()
        frames = parser.feed(line.data)
        assert len(frames) == 1, line.data[:120]
        frame = frames[0]
        assert frame.defects == (), (frame.defects, line.data[:120])
        assert frame.content_type in KNOWN_CONTENT_TYPES
        if frame.content_type in (EVENT_PLAIN, EVENT_JSON):
            assert frame.event and frame.event_name, line.data[:120]
        assert parser.buffered == 0


@pytest.mark.parametrize("path", transcript_params())
@pytest.mark.parametrize("chunk", [1, 7, 1000, 1 << 20])
def test_whole_stream_parses_in_any_chunking(path, chunk):
    """Should read the concatenated stream of each transcript identically whatever recv() sizes arrive."""
    lines = load_transcript(path)
    expected = [l.data for l in lines if l.direction == "S->C"]
    stream = server_stream(lines)
    parser = FrameParser()
    frames = []
    for i in range(0, len(stream), chunk):
        frames += parser.feed(stream[i:i + chunk])
    parser.close()
    assert len(frames) == len(expected)
    for frame, data in zip(frames, expected):
        alone = FrameParser().feed(data)[0]
        assert (frame.headers, frame.body, frame.event, frame.event_body) == \
               (alone.headers, alone.body, alone.event, alone.event_body)


def test_inbound_transcript_facts(all_transcripts):
    """Should show the facts of the inbound capture: greeting, replies, api bodies, bgapi Job-UUID, json."""
    frames = frames_of(server_stream(all_transcripts["inbound_plain_and_json.txt"], "IN"))
    assert frames[0].content_type == AUTH_REQUEST
    assert frames[1].content_type == COMMAND_REPLY and frames[1].reply_text == "+OK accepted" and frames[1].ok
    version = frames[2]
    assert version.content_type == API_RESPONSE and version.body.startswith("FreeSWITCH Version")
    errors = [f for f in frames if f.content_type == API_RESPONSE and not f.ok]
    assert any(f.body.startswith("-ERR no_such_command") for f in errors)
    jobs = [f for f in frames if f.event_name == "BACKGROUND_JOB"]
    chosen = [f for f in jobs if f.event["Job-UUID"] == "868d8c33-f46a-452f-94f5-1e197e80a545"]
    assert chosen and chosen[0].event_body == "265\n" and chosen[0].event["Job-Command"] == "uptime"
    failed = [f for f in jobs if f.event_body.startswith("-ERR")]
    assert failed and failed[0].event_body == "-ERR NORMAL_CLEARING\n"
    assert failed[0].event["Job-Command-Arg"] == "loopback/no_such_ext_8888/default &park"   # URL-decoded
    json_events = [f for f in frames if f.content_type == EVENT_JSON]
    assert json_events and all("Event-Name" in f.event for f in json_events)
    assert any(f.event_name == "BACKGROUND_JOB" and f.event_body for f in json_events)
    assert frames[-1].content_type == DISCONNECT_NOTICE


def test_outbound_transcript_facts(all_transcripts):
    """Should read the connect reply's URL-encoded channel data, Application-UUIDs and the linger notice."""
    frames = frames_of(server_stream(all_transcripts["outbound_socket_async_full.txt"], "OUT"))
    connect = frames[0]
    assert connect.content_type == COMMAND_REPLY and connect.ok and connect.reply_text == "+OK"
    assert connect.headers["Unique-ID"] == "4912fe94-2272-4959-94d6-a442bda1eb6c"
    assert connect.headers["Socket-Mode"] == "async" and connect.headers["Control"] == "full"
    assert connect.headers["Caller-Caller-ID-Number"] == "5552000"
    assert "%" not in connect.headers["Event-Date-Local"]          # URL-decoded like event headers
    completes = [f.event for f in frames if f.event_name == "CHANNEL_EXECUTE_COMPLETE"]
    assert "461b1a91-ea76-41a4-8304-d7443d79ca76" in [e["Application-UUID"] for e in completes]
    pagd = [e for e in completes if e["Application"] == "play_and_get_digits"][0]
    assert pagd["variable_pagd_digits"] == "1234"
    digits = [f.event["DTMF-Digit"] for f in frames if f.event_name == "DTMF"]
    assert digits[:5] == ["1", "2", "3", "4", "#"]
    notice = [f for f in frames if f.content_type == DISCONNECT_NOTICE][0]
    assert notice.headers["Content-Disposition"] == "linger"


def test_sip_transcript_disconnect_after_linger(all_transcripts):
    """Should see a linger notice then a disconnect notice with its goodbye body on the SIP capture."""
    frames = frames_of(server_stream(all_transcripts["outbound_socket_sip_caller_rfc2833.txt"], "OUT"))
    notices = [f for f in frames if f.content_type == DISCONNECT_NOTICE]
    assert [n.headers.get("Content-Disposition") for n in notices] == ["linger", "disconnect"]
    assert notices[1].body.startswith("Disconnected, goodbye.")


# --- encodings and lengths -------------------------------------------------------------------------

def test_content_length_counts_utf8_bytes_across_split_codepoints():
    """Should count Content-Length in UTF-8 bytes and join a character split between two reads."""
    body = "市民热线 12345：投诉已受理\n".encode("utf-8")
    data = b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body) + body
    data += b"Content-Type: command/reply\nReply-Text: +OK\n\n"
    parser = FrameParser()
    cut = data.index(body) + 2                 # in the middle of the first Chinese character
    first = parser.feed(data[:cut])
    rest = parser.feed(data[cut:])
    assert first == [] and len(rest) == 2
    assert rest[0].body == "市民热线 12345：投诉已受理\n" and rest[1].reply_text == "+OK"


def test_event_plain_inner_body_counts_utf8_bytes():
    """Should cut the inner body of an event after its inner Content-Length in bytes, URL-decoding headers."""
    body = "张三的投诉\n".encode("utf-8")
    frame = frames_of(event_frame("Event-Name: CUSTOM\nEvent-Subclass: hotline%3A%3Anote\nCaller-Caller-ID-Name: %E5%BC%A0%E4%B8%89\n", body))[0]
    assert frame.event["Event-Subclass"] == "hotline::note"
    assert frame.event["Caller-Caller-ID-Name"] == "张三"
    assert frame.event_body == "张三的投诉\n"


def test_encoded_newline_cannot_forge_a_header():
    """Should keep a %0A inside a value as part of that value (greenswitch decodes first and splits after)."""
    frame = frames_of(event_frame("Event-Name: DTMF\nCaller-Caller-ID-Name: x%0AEvent-Name: CHANNEL_HANGUP\n"))[0]
    assert frame.event["Event-Name"] == "DTMF"
    assert frame.event["Caller-Caller-ID-Name"] == "x\nEvent-Name: CHANNEL_HANGUP"


def test_json_event_body_and_unencoded_values():
    """Should take _body out of a JSON event as its body and keep values as they are."""
    payload = '{"Event-Name":"BACKGROUND_JOB","Job-UUID":"j1","Job-Command-Arg":"a%20b","_body":"+OK 7\\n"}'.encode()
    data = b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(payload) + payload
    frame = frames_of(data)[0]
    assert frame.event == {"Event-Name": "BACKGROUND_JOB", "Job-UUID": "j1", "Job-Command-Arg": "a%20b"}
    assert frame.event_body == "+OK 7\n"


def test_rude_rejection_and_auth_request():
    """Should parse the access-list rejection and the auth greeting."""
    frames = frames_of(b"Content-Type: auth/request\n\n"
                       b"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n")
    assert [f.content_type for f in frames] == [AUTH_REQUEST, RUDE_REJECTION]
    assert frames[1].body == "Access Denied, go away.\n"


def test_parse_event_body_plain_without_body():
    """Should parse an event that has no body."""
    headers, body = parse_event_body(EVENT_PLAIN, b"Event-Name: CHANNEL_ANSWER\nUnique-ID: u1\n\n")
    assert headers == {"Event-Name": "CHANNEL_ANSWER", "Unique-ID": "u1"} and body == ""


# --- bad input -------------------------------------------------------------------------------------

def test_truncated_frame_is_reported_on_close():
    """Should report a frame cut off by the peer closing the socket, not wait for it."""
    parser = FrameParser()
    assert parser.feed(b"Content-Type: api/response\nContent-Length: 100\n\nonly a part") == []
    with pytest.raises(ProtocolError, match="closed mid-frame"):
        parser.close()


def test_truncated_header_block_is_reported_on_close():
    """Should report a header block without its blank line when the stream ends."""
    parser = FrameParser()
    parser.feed(b"Content-Type: command/re")
    with pytest.raises(ProtocolError):
        parser.close()


def test_clean_close_between_frames():
    """Should accept a close right after a complete frame."""
    parser = FrameParser()
    parser.feed(b"Content-Type: command/reply\nReply-Text: +OK\n\n")
    parser.close()


def test_oversized_header_block_without_blank_line():
    """Should refuse a header block that grows past the cap instead of buffering forever."""
    parser = FrameParser(max_header_bytes=1024)
    with pytest.raises(ProtocolError, match="header block"):
        for _ in range(100):
            parser.feed(b"X-Filler: " + b"a" * 50 + b"\n")
    assert parser.buffered == 0


def test_body_over_the_cap_is_refused_before_reading_it():
    """Should refuse a Content-Length above the cap at once."""
    with pytest.raises(ProtocolError, match="exceeds the cap"):
        FrameParser(max_body_bytes=1000).feed(b"Content-Type: api/response\nContent-Length: 1001\n\n")


@pytest.mark.parametrize("value", [b"-5", b"abc", b"12x", b""])
def test_malformed_content_length(value):
    """Should refuse a Content-Length that is not a non-negative integer."""
    with pytest.raises(ProtocolError, match="Content-Length"):
        FrameParser().feed(b"Content-Type: api/response\nContent-Length: " + value + b"\n\nxx")


def test_content_length_too_short_is_caught_at_the_next_frame():
    """Should refuse the leftover body bytes that a too-short Content-Length leaves as a header block."""
    data = (b"Content-Type: api/response\nContent-Length: 5\n\nFreeSWITCH Version 1.10\n\n"
            b"Content-Type: command/reply\nReply-Text: +OK\n\n")
    parser = FrameParser()
    with pytest.raises(ProtocolError, match="malformed header"):
        parser.feed(data)
    with pytest.raises(ProtocolError):      # stays broken: the stream cannot be trusted any more
        parser.feed(b"Content-Type: command/reply\nReply-Text: +OK\n\n")


def test_content_length_too_long_waits_then_reports_on_close():
    """Should hold a frame whose Content-Length overruns (bounded by the cap) and report it on close."""
    parser = FrameParser()
    assert parser.feed(b"Content-Type: api/response\nContent-Length: 50\n\nshort body\n") == []
    with pytest.raises(ProtocolError, match="39 body bytes missing|closed mid-frame"):
        parser.close()


def test_non_utf8_header_block_is_a_protocol_error():
    """Should refuse a header block that is not UTF-8."""
    with pytest.raises(ProtocolError, match="not UTF-8"):
        FrameParser().feed(b"Content-Type: command/reply\nReply-Text: +OK \xff\xfe\n\n")


def test_non_utf8_body_is_a_defect_and_the_stream_continues():
    """Should mark a body that is not UTF-8 as a defect and keep parsing the next frames."""
    data = (b"Content-Type: api/response\nContent-Length: 4\n\n\xb2\xe2\xca\xd4"      # GBK bytes
            b"Content-Type: command/reply\nReply-Text: +OK\n\n")
    frames = frames_of(data)
    assert len(frames) == 2
    assert frames[0].defects and "not UTF-8" in frames[0].defects[0]
    assert frames[1].defects == () and frames[1].ok


def test_percent_encoded_non_utf8_value_is_replaced_not_fatal():
    """Should decode a GBK caller name in an event with replacement characters rather than drop the event."""
    frame = frames_of(event_frame("Event-Name: CHANNEL_CREATE\nCaller-Caller-ID-Name: %D5%C5%C8%FD\n"))[0]
    assert frame.defects == () and frame.event["Event-Name"] == "CHANNEL_CREATE"
    assert "\ufffd" in frame.event["Caller-Caller-ID-Name"]


def test_unknown_content_type_is_a_defect():
    """Should return a frame of an unknown content type marked as a defect."""
    frames = frames_of(b"Content-Type: text/x-surprise\nContent-Length: 2\n\nhi")
    assert frames[0].content_type == "text/x-surprise" and "unknown content type" in frames[0].defects[0]


def test_missing_content_type_is_a_protocol_error():
    """Should refuse a frame without Content-Type."""
    with pytest.raises(ProtocolError, match="without Content-Type"):
        FrameParser().feed(b"Reply-Text: +OK\n\n")


def test_malformed_json_event_is_a_defect():
    """Should mark a JSON event that is not a JSON object as a defect."""
    for payload in (b"{not json", b"[1, 2]"):
        frame = frames_of(b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(payload) + payload)[0]
        assert frame.event is None and frame.defects


def test_wrong_inner_content_length_is_a_defect():
    """Should mark an event whose inner Content-Length does not match its body as a defect."""
    inner = b"Event-Name: BACKGROUND_JOB\nJob-UUID: j\nContent-Length: 10\n\n+OK\n"
    frame = frames_of(b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(inner) + inner)[0]
    assert frame.event is None and "inner Content-Length" in frame.defects[0]


def test_garbage_is_refused_quickly():
    """Should refuse random binary garbage instead of waiting for a frame."""
    with pytest.raises(ProtocolError):
        FrameParser().feed(bytes(range(256)) + b"\n\n")


# --- commands -----------------------------------------------------------------------------------------

def test_encode_command_with_headers_and_body():
    """Should encode a sendmsg with headers and a body whose length is counted in bytes."""
    data = encode_command("sendmsg", {"call-command": "execute", "execute-app-name": "playback"}, body="提示音.wav")
    head, body = data.split(b"\n\n", 1)
    assert head.startswith(b"sendmsg\ncall-command: execute\nexecute-app-name: playback\n")
    assert b"content-length: %d" % len("提示音.wav".encode()) in head and body == "提示音.wav".encode()
    assert encode_command("api status") == b"api status\n\n"


@pytest.mark.parametrize("command,headers", [("api status\n\nexit", None), ("sendmsg", {"execute-app-arg": "x\nhangup"}),
                                             ("sendmsg", {"bad\rname": "x"})])
def test_encode_command_refuses_injection(command, headers):
    """Should refuse newlines that would inject further commands."""
    with pytest.raises(ValueError, match="single line"):
        encode_command(command, headers)


def test_transcript_reader_ignores_notes():
    """Should keep only wire lines and skip notes, summaries and TCP remarks."""
    text = ("# header\n## note\n[   0.1] IN S->C b'Content-Type: auth/request\\n\\n'\n"
            "           ^ Content-Type=auth/request\n[   0.2] IN C->S <client closes TCP socket>\n")
    lines = parse_transcript(text)
    assert len(lines) == 1 and lines[0].data == b"Content-Type: auth/request\n\n" and lines[0].conn == "IN"


@pytest.mark.parametrize("path", transcript_params())
def test_lazy_events_peek_the_same_names(path):
    """Should give the same Event-Name by peeking, and the same event once parsed, in lazy mode."""
    stream = server_stream(load_transcript(path))
    eager = FrameParser().feed(stream)
    lazy = FrameParser(lazy_events=True).feed(stream)
    assert [f.event_name for f in lazy] == [f.event_name for f in eager]
    assert [(f.event, f.event_body, f.defects) for f in lazy] == [(f.event, f.event_body, f.defects) for f in eager]


def test_lazy_malformed_event_reports_when_read():
    """Should report a malformed event as a defect when a lazy frame is read."""
    frame = FrameParser(lazy_events=True).feed(b"Content-Length: 4\nContent-Type: text/event-plain\n\n\xb2\xe2\xca\xd4")[0]
    assert frame.event_name == "" and frame.event is None and frame.defects


# --- the C accelerator (switch/_esl_split.c) ---------------------------------------------------------

def test_implementation_names_the_split_in_use(codec_split):
    """Should name the C accelerator while its split is in use and pure Python otherwise (the start log)."""
    assert ("C accelerator" in codec.implementation()) == (codec_split is not codec._split_regular_block)


def test_codec_without_the_built_module():
    """Should import and parse in pure Python, saying so, where switch._esl_split cannot be imported."""
    script = ("import sys; sys.modules['switch._esl_split'] = None\n"
              "from switch import codec\n"
              "frames = codec.FrameParser().feed(b'Content-Type: command/reply\\nReply-Text: %2BOK\\n\\n')\n"
              "print(codec.implementation(), codec.use_accelerator(True), frames[0].reply_text)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=Path(codec.__file__).parent.parent)
    assert done.stdout.strip() == "pure Python (switch._esl_split not built: make setup) False +OK", done.stderr


def test_blank_line_split_across_reads_after_a_trickled_block():
    """Should find a header block's blank line when it arrives a byte at a time after a long trickle (the
    parser searches only the new bytes of an unfinished block, keeping one back for a split blank line)."""
    parser = FrameParser()
    block = b"Content-Type: api/response\n" + b"".join(b"X-H%d: v\n" % i for i in range(200))
    frames = []
    for i in range(len(block)):
        frames += parser.feed(block[i:i + 1])
    assert frames == [] and parser.buffered == len(block)
    frames += parser.feed(b"\n")
    assert len(frames) == 1 and frames[0].headers["X-H199"] == "v" and parser.buffered == 0
    frames = parser.feed(b"\n\nContent-Type: auth/request\n") + parser.feed(b"\n")
    assert [f.content_type for f in frames] == ["auth/request"]
