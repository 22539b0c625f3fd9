"""The fake switch's outbound mode, driven by a raw-socket stand-in for the app."""
from __future__ import annotations

import wave

from tests.fakeswitch import Hangup, Press, Speak, WaitFor
from tests.unit.fakeswitch.rawclient import AppServer, execute


def _start(c, linger=True):
    reply = c.command("connect")
    c.command("myevents")
    if linger:
        c.command("linger")
    c.command("event plain PLAYBACK_START PLAYBACK_STOP RECORD_START RECORD_STOP")
    return reply


def test_connect_reply_is_header_only_channel_data(fakeswitch):
    """Should answer connect with one header-only frame carrying the channel data and socket mode."""
    seen = {}

    def app(c):
        seen["reply"] = c.command("connect")
        c.command("exit")

    with AppServer(app) as srv:
        call = fakeswitch.place_call(srv.address, caller="13800138000", destination="12345")
        srv.wait_done()
        call.wait_ended(5)
    f = seen["reply"]
    assert f.body == b""
    assert "Content-Length" not in f.headers
    assert f.headers["Reply-Text"] == "%2BOK%0A"
    assert f.headers["Socket-Mode"] == "async" and f.headers["Control"] == "full"
    assert f.headers["Unique-ID"] == call.uuid
    assert f.headers["Caller-Caller-ID-Number"] == "13800138000"
    assert f.headers["Caller-Destination-Number"] == "12345"
    assert any(k.startswith("variable_") for k in f.headers)
    names = [k for k, _ in f.header_pairs]
    assert names[-4:] == ["Content-Type", "Reply-Text", "Socket-Mode", "Control"]


def test_ivr_walk_pagd_record_and_wav(fakeswitch, tmp_path):
    """Should run pagd with the caller's digits, record a real WAV of the spoken length, end with linger."""
    out = {}
    path = tmp_path / "rec" / "complaint.wav"

    def app(c):
        _start(c)
        execute(c, "answer")
        h, _ = execute(c, "play_and_get_digits",
                       "1 1 3 5000 # tone_stream://%(2000,0,440) silence_stream://250 menu ^[12]$ 3000")
        out["menu"] = h.get("variable_menu")
        execute(c, "set", "playback_terminators=#")
        h, _ = execute(c, "record", f"{path} 60 200 3")
        out["record_ms"] = int(h["variable_record_ms"])
        out["term"] = h.get("variable_playback_terminator_used")
        c.command("sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING\n\n")
        out["notice"] = c.read_until(lambda f: f.content_type == "text/disconnect-notice")
        c.close()

    with AppServer(app) as srv:
        call = fakeswitch.place_call(srv.address, script=[Press("2"), Speak(2.0), Press("#")])
        call.wait_ended(10)
        srv.wait_done()
    assert out["menu"] == "2"
    assert out["term"] == "#"
    assert 2000 <= out["record_ms"] < 60000
    with wave.open(str(path)) as w:
        secs = w.getnframes() / w.getframerate()
        frames = w.readframes(w.getnframes())
    assert abs(secs * 1000 - out["record_ms"]) < 50
    assert any(frames[i] for i in range(0, min(len(frames), 16000)))
    assert out["notice"].headers["Content-Disposition"] == "linger"
    assert call.hangup_by == "app" and call.hangup_cause == "NORMAL_CLEARING"
    assert call.collected == ["2"]
    assert call.script_error is None


def test_caller_hangs_up_mid_prompt(fakeswitch):
    """Should interrupt the playback, complete it after CHANNEL_HANGUP, then send a disconnect notice."""
    order = []

    def app(c):
        _start(c, linger=False)
        execute(c, "answer")
        c.send("sendmsg\ncall-command: execute\nexecute-app-name: playback\n"
               "execute-app-arg: tone_stream://%(60000,0,440)\nEvent-UUID: p1\n\n")
        while True:
            f = c.read_frame(5)
            if f.content_type == "text/disconnect-notice":
                order.append(("notice", f.headers.get("Content-Disposition")))
                break
            if f.content_type == "text/event-plain":
                h, _ = f.event()
                order.append((h["Event-Name"], h.get("Application", ""), h.get("Application-Response", "")))

    with AppServer(app) as srv:
        call = fakeswitch.place_call(srv.address, script=[WaitFor("playback"), Hangup()])
        call.wait_ended(10)
        srv.wait_done()
    names = [o[0] for o in order]
    assert names.index("CHANNEL_HANGUP") < names.index("PLAYBACK_STOP")
    complete = [o for o in order if o[0] == "CHANNEL_EXECUTE_COMPLETE" and o[1] == "playback"]
    assert complete == [("CHANNEL_EXECUTE_COMPLETE", "playback", "PLAYBACK ERROR")]
    assert names[-2:] == ["CHANNEL_HANGUP_COMPLETE", "notice"]
    assert order[-1] == ("notice", "disconnect")
    assert call.hangup_by == "caller"


def test_unknown_application_hangs_up_without_complete(fakeswitch):
    """Should reply +OK to an unknown app, hang up DESTINATION_OUT_OF_ORDER, never complete that id."""
    seen = []

    def app(c):
        _start(c, linger=False)
        r = c.command("sendmsg\ncall-command: execute\nexecute-app-name: no_such_app\nEvent-UUID: zz\n\n")
        seen.append(r.headers["Reply-Text"])
        while True:
            f = c.read_frame(5)
            if f.content_type == "text/disconnect-notice":
                break
            h, _ = f.event()
            seen.append((h["Event-Name"], h.get("Application-UUID"), h.get("Hangup-Cause")))
        # sendmsg after hang-up: the socket is closed by now, nothing more to read.

    with AppServer(app) as srv:
        call = fakeswitch.place_call(srv.address)
        call.wait_ended(10)
        srv.wait_done()
    assert seen[0] == "+OK"
    assert not any(isinstance(s, tuple) and s[1] == "zz" for s in seen)
    assert ("CHANNEL_HANGUP", None, "DESTINATION_OUT_OF_ORDER") in seen
    assert call.hangup_cause == "DESTINATION_OUT_OF_ORDER" and call.hangup_by == "switch"


def test_switch_side_truncated_frame_and_drop(fakeswitch):
    """Should let a test write half a frame on the outbound socket and drop it; the call then ends."""
    got = {}

    def app(c):
        c.command("connect")
        c.command("myevents")
        call = fakeswitch.calls[-1]
        call.session.inject(b"Content-Length: 500\nContent-Type: text/event-plain\n\nEvent-Name: CHANN")
        call.session.drop()
        c.sock.settimeout(2)
        data = b""
        while True:
            chunk = c.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        got["tail"] = c.buf + data

    with AppServer(app) as srv:
        call = fakeswitch.place_call(srv.address)
        call.wait_ended(5)
        srv.wait_done()
    assert got["tail"].endswith(b"Event-Name: CHANN")
    assert call.hangup_by == "switch"
