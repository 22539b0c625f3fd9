"""Scripted callers and agents on the fake switch: digits, retries, bridges, supervisors, faxes, edge cases."""
from __future__ import annotations

import subprocess
import shutil

import pytest

from tests.fakeswitch import Hangup, Press, SendFax, Speak, Wait, WaitBridged, WaitFor
from tests.ports import refusing_port
from tests.unit.fakeswitch.rawclient import AppServer, RawClient, execute


def _start(c, *, linger=True, events="PLAYBACK_START PLAYBACK_STOP RECORD_START RECORD_STOP"):
    c.command("connect")
    c.command("myevents")
    if linger:
        c.command("linger")
    if events:
        c.command("event plain " + events)


def _run(fs, app, script=None, timeout=10, **kw):
    with AppServer(app) as srv:
        call = fs.place_call(srv.address, script=script, **kw)
        call.wait_ended(timeout)
        srv.wait_done(timeout=timeout)
    return call


def test_pagd_retries_invalid_then_accepts(fakeswitch):
    """Should play the invalid prompt after a wrong entry and accept the next try."""
    res = {}

    def app(c):
        _start(c)
        h, _ = execute(c, "play_and_get_digits", "1 1 3 2000 # tone_stream://%(500,0,440) "
                                                 "tone_stream://%(100,0,300) choice ^[1-3]$ 1000")
        res["choice"] = h.get("variable_choice")
        res["result"] = h.get("variable_read_result")
        c.command("exit")

    call = _run(fakeswitch, app, [Press("9"), Press("2")])
    assert res == {"choice": "2", "result": "success"}
    assert call.played == ["tone_stream://%(500,0,440)", "tone_stream://%(100,0,300)", "tone_stream://%(500,0,440)"]
    assert call.pressed == "92"


def test_pagd_times_out_without_input(fakeswitch):
    """Should end after all tries with no digits, leaving the variable unset and read_result timeout."""
    res = {}

    def app(c):
        _start(c)
        h, _ = execute(c, "play_and_get_digits", "1 4 2 3000 # silence_stream://500 silence_stream://100 d \\d+ 1000")
        res["d"] = h.get("variable_d")
        res["result"] = h.get("variable_read_result")
        c.command("exit")

    call = _run(fakeswitch, app, [])
    assert res == {"d": None, "result": "timeout"}
    assert call.collected == []


def test_read_and_max_digits_without_terminator(fakeswitch):
    """Should stop read at max digits without a terminator and keep type-ahead out of playback."""
    res = {}

    def app(c):
        _start(c)
        h, _ = execute(c, "read", "4 4 silence_stream://200 pin 5000 #")
        res["pin"] = h.get("variable_pin")
        c.command("exit")

    call = _run(fakeswitch, app, [Press("12345", interval=0.05)])
    assert res["pin"] == "1234"
    assert call.collected == ["1234"]


def test_digits_during_plain_playback_are_dropped_but_star_breaks(fakeswitch):
    """Should drop non-terminator digits during playback (DTMF events still sent) and break on *."""
    res = {"dtmf": []}

    def app(c):
        _start(c)
        c.send("sendmsg\ncall-command: execute\nexecute-app-name: playback\n"
               "execute-app-arg: tone_stream://%(20000,0,440)\nEvent-UUID: pb\n\n")
        h, _ = c.read_event("CHANNEL_EXECUTE_COMPLETE", 5, Application_UUID="pb")
        res["terminator"] = h.get("variable_playback_terminator_used")
        res["status"] = h.get("Application-Response")
        stop = [f for f in c.frames if f.content_type == "text/event-plain" and
                f.event()[0]["Event-Name"] == "PLAYBACK_STOP"]
        res["stop"] = stop[0].event()[0]["Playback-Status"]
        res["dtmf"] = [f.event()[0]["DTMF-Digit"] for f in c.frames if f.content_type == "text/event-plain"
                       and f.event()[0]["Event-Name"] == "DTMF"]
        c.command("exit")

    _run(fakeswitch, app, [WaitFor("playback"), Press("5*", wait=False)])
    assert res == {"dtmf": ["5", "*"], "terminator": "*", "status": "FILE PLAYED", "stop": "break"}


def test_argument_as_body_loops_and_existing_wav_length(fakeswitch, tmp_path):
    """Should take the argument from a text/plain body, honour loops, and play a real WAV for its length."""
    from tests.fakeswitch import audio
    wav = tmp_path / "hello.wav"
    audio.write_wav(wav, 1.5, [(0, 1.5)])
    res = {}

    def app(c):
        _start(c)
        body = str(wav)
        c.command(f"sendmsg\ncall-command: execute\nexecute-app-name: playback\nloops: 2\nEvent-UUID: b1\n"
                  f"content-type: text/plain\ncontent-length: {len(body)}\n\n{body}")
        h, _ = c.read_event("CHANNEL_EXECUTE_COMPLETE", 5, Application_UUID="b1")
        h, _ = c.read_event("CHANNEL_EXECUTE_COMPLETE", 5, Application_UUID="b1")
        res["ms"] = h["variable_playback_ms"]
        res["data"] = h["Application-Data"]
        c.command("exit")

    call = _run(fakeswitch, app)
    assert res == {"ms": "1500", "data": str(wav)}
    assert call.played == [str(wav), str(wav)]


def test_hangup_mid_record_keeps_partial_wav(fakeswitch, tmp_path):
    """Should write what was recorded when the caller hangs up mid-record, then complete the app."""
    path = tmp_path / "partial.wav"
    res = {}

    def app(c):
        _start(c)
        h, _ = execute(c, "record", f"{path} 120")
        res["ms"] = int(h["variable_record_ms"])
        res["cause"] = h.get("Hangup-Cause")

    call = _run(fakeswitch, app, [Speak(1.5), Hangup()])
    assert res["cause"] == "NORMAL_CLEARING"
    assert 1500 <= res["ms"] < 120000
    assert call.recordings[0].path == str(path) and path.exists()
    assert call.hangup_by == "caller"


def test_record_stops_on_silence(fakeswitch, tmp_path):
    """Should end a record after silence_hits seconds of silence once the caller stops talking."""
    res = {}

    def app(c):
        _start(c)
        h, _ = execute(c, "record", f"{tmp_path}/s.wav 120 200 2")
        res["ms"] = int(h["variable_record_ms"])
        res["exhausted"] = h["variable_silence_hits_exhausted"]
        c.command("exit")

    call = _run(fakeswitch, app, [Speak(3)])
    assert res["exhausted"] == "true"
    assert 5000 <= res["ms"] < 120000
    assert call.recordings[0].speech_seconds >= 2.9


def test_linger_seconds_then_disconnect(fakeswitch):
    """Should send the linger notice with Linger-Time N, then a disconnect notice and close."""
    notices = []

    def app(c):
        c.command("connect")
        assert c.command("linger 5").headers["Reply-Text"] == "+OK will linger 5 seconds"
        c.command("sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING\n\n")
        after = c.command("sendmsg\ncall-command: execute\nexecute-app-name: answer\n\n")
        notices.append(after.headers["Reply-Text"])
        for _ in range(2):
            f = c.read_until(lambda f: f.content_type == "text/disconnect-notice", 5)
            notices.append((f.headers["Content-Disposition"], f.headers.get("Linger-Time")))

    call = _run(fakeswitch, app)
    assert notices == ["+OK", ("linger", "5"), ("disconnect", None)]
    assert call.hangup_by == "app"


def test_app_closing_socket_before_answer_refuses_the_call(fakeswitch):
    """Should run the dialplan's hangup with NORMAL_TEMPORARY_FAILURE (SIP 503) when the app closes the
    socket of a call it never answered, as the real switch does."""
    def app(c):
        c.command("connect")
        c.close()

    call = _run(fakeswitch, app, [Wait(1)])
    assert call.hangup_cause == "NORMAL_TEMPORARY_FAILURE" and call.hangup_by == "app"
    assert call.executed[-1] == ("hangup", "NORMAL_TEMPORARY_FAILURE")


def test_app_closing_socket_lets_the_running_playback_finish(fakeswitch, tmp_path):
    """Should let the playback in progress end (FILE PLAYED) after the app closes the socket of an
    answered call, and only then hang up NORMAL_CLEARING, as the real switch does."""
    def app(c):
        c.command("connect")
        c.command("myevents")
        execute(c, "answer")
        c.command("sendmsg\ncall-command: execute\nexecute-app-name: playback\n"
                  "execute-app-arg: silence_stream://2000\n\n")
        c.read_event("CHANNEL_EXECUTE", 5, Application="playback")
        c.close()

    call = _run(fakeswitch, app, [Wait(10)])
    assert call.hangup_cause == "NORMAL_CLEARING" and call.hangup_by == "app"
    names = [name for name, _ in call.executed]
    assert names[-2:] == ["playback", "hangup"], call.executed
    # the playback ran to its end; its response is gone once the hangup app starts (every application's
    # start clears current_application_response, as tests/transcripts/park_bridge_states.txt shows)
    assert call.variables.get("playback_ms") == "2000"
    assert "current_application_response" not in call.variables


def test_app_closing_socket_leaves_a_park_to_the_caller(fakeswitch):
    """Should keep a parked call up after the app closes its socket (the park never ends by itself), until
    the caller hangs up."""
    def app(c):
        c.command("connect")
        c.command("myevents")
        execute(c, "answer")
        c.command("sendmsg\ncall-command: execute\nexecute-app-name: park\n\n")
        c.read_event("CHANNEL_EXECUTE", 5, Application="park")
        c.close()

    call = _run(fakeswitch, app, [Wait(100), Hangup()])
    assert call.hangup_by == "caller"
    assert ("hangup", "NORMAL_CLEARING") not in call.executed


def test_api_and_bgapi_on_the_socket_and_myevents_filter(fakeswitch):
    """Should answer api/bgapi on the socket, owner-scoped BACKGROUND_JOB, and hide other channels' events."""
    res = {}
    fakeswitch.add_agent("1000", answer_delay=0)

    def app(c):
        _start(c, events="BACKGROUND_JOB CHANNEL_CREATE")
        me = c.frames[0].headers["Unique-ID"]
        res["api"] = c.command(f"api uuid_getvar {me} sip_from_user").body
        r = c.command(f"bgapi uuid_getvar {me} sip_from_user")
        h, body = c.read_event("BACKGROUND_JOB")
        res["job"] = (h["Job-UUID"] == r.headers["Job-UUID"], h["Job-Owner-UUID"] == me, body)
        # An agent leg created elsewhere must not reach this socket.
        RawClient.connect(fakeswitch.address)
        fakeswitch.api("originate user/1000 &park")
        res["foreign"] = [f for f in c.frames if f.content_type == "text/event-plain"
                          and f.event()[0]["Event-Name"] == "CHANNEL_CREATE"]
        c.command("exit")

    _run(fakeswitch, app, caller="13900001111")
    assert res["api"] == b"13900001111"
    assert res["job"] == (True, True, "13900001111")
    assert res["foreign"] == []


def test_json_events_on_the_socket(fakeswitch):
    """Should send text/event-json with unencoded values when the socket asks for json."""
    res = {}

    def app(c):
        c.command("connect")
        c.command("myevents json")
        f = None
        c.send("sendmsg\ncall-command: execute\nexecute-app-name: set\nexecute-app-arg: x=a b:c\nEvent-UUID: j\n\n")
        f = c.read_until(lambda f: f.content_type == "text/event-json" and
                         f.event()[0].get("Event-Name") == "CHANNEL_EXECUTE_COMPLETE")
        res["h"] = f.event()[0]
        c.command("exit")

    _run(fakeswitch, app)
    assert res["h"]["Application-Data"] == "x=a b:c" and res["h"]["variable_x"] == "a b:c"


def test_bridge_to_agent_until_agent_hangs_up(fakeswitch):
    """Should bridge the caller to a ringing agent, emit BRIDGE/UNBRIDGE, and return when the agent hangs up."""
    agent = fakeswitch.add_agent("1000", answer=True, answer_delay=1, talk_seconds=3)
    res = {}

    def app(c):
        _start(c, events="")
        execute(c, "answer")
        execute(c, "set", "hangup_after_bridge=false")
        h, _ = execute(c, "bridge", "{origination_caller_id_name=Hotline}user/1000@127.0.0.1")
        res["last"] = h.get("variable_last_bridge_hangup_cause")
        res["frames"] = [f.event()[0]["Event-Name"] for f in c.frames if f.content_type == "text/event-plain"]
        execute(c, "playback", "silence_stream://100")
        c.command("exit")

    call = _run(fakeswitch, app, [WaitBridged()])
    assert res["last"] == "NORMAL_CLEARING"
    assert "CHANNEL_BRIDGE" in res["frames"] and "CHANNEL_UNBRIDGE" in res["frames"]
    assert call.bridged_to and call.bridged_to[0] is agent.channels[0]
    assert agent.channels[0].hangup_by == "agent"
    # after `exit` the dialplan's own hangup ends the answered call, as on the real switch
    assert call.executed[-2:] == [("playback", "silence_stream://100"), ("hangup", "NORMAL_CLEARING")]


@pytest.mark.parametrize("mode,cause", [("busy", "USER_BUSY"), (False, "CALL_REJECTED"), ("timeout", "NO_ANSWER")])
def test_bridge_failures_set_disposition(fakeswitch, mode, cause):
    """Should fail the bridge with the agent's cause in originate_disposition."""
    fakeswitch.add_agent("1001", answer=mode, answer_delay=0.5)
    res = {}

    def app(c):
        _start(c, events="")
        execute(c, "set", "call_timeout=5")
        h, _ = execute(c, "bridge", "user/1001")
        res["disp"] = h.get("variable_originate_disposition")
        c.command("exit")

    _run(fakeswitch, app)
    assert res["disp"] == cause


def test_caller_hangup_while_bridged_hangs_up_agent(fakeswitch):
    """Should hang up the agent leg when the caller hangs up during the bridge."""
    agent = fakeswitch.add_agent("1000", answer_delay=0)

    def app(c):
        _start(c, events="")
        execute(c, "bridge", "user/1000")

    call = _run(fakeswitch, app, [WaitBridged(), Wait(1), Hangup()])
    assert call.hangup_by == "caller"
    fakeswitch.wait_for(lambda: agent.channels[0].hung_up, 5, "agent leg down")
    assert agent.channels[0].hangup_by == "caller"


def test_supervisor_eavesdrop_whisper_barge_and_conference(fakeswitch):
    """Should let a team lead listen, whisper and barge through eavesdrop, and join a conference."""
    fakeswitch.add_agent("1000", answer_delay=0)
    lead = fakeswitch.add_agent("1009", answer_delay=0)
    c = RawClient.connect(fakeswitch.address)
    c.read_frame()
    c.command("auth ClueCon")
    c.command("event plain CUSTOM conference::maintenance")
    cust = c.command("api originate loopback/9999/default &park").body.decode().split()[1]
    agent_leg = c.command("api originate user/1000 &park").body.decode().split()[1]
    c.command(f"api uuid_bridge {cust} {agent_leg}")
    fakeswitch.wait_for(lambda: fakeswitch.channels[cust].other is not None, 5, "bridge")
    r = c.command(f"api originate user/1009 &eavesdrop({cust})")
    assert r.body.startswith(b"+OK ")
    ev = fakeswitch.wait_for(lambda: fakeswitch.eavesdrops, 5, "eavesdrop")[0]
    assert ev.target.uuid == cust and ev.mode == "listen"
    lead.press("2")
    fakeswitch.wait_for(lambda: ev.mode == "whisper", 5, "whisper")
    lead.press("3")
    fakeswitch.wait_for(lambda: ev.mode == "three_way", 5, "barge")
    assert ev.modes == ["listen", "whisper", "three_way"]
    lead.hangup()
    fakeswitch.wait_for(lambda: not ev.active, 5, "eavesdrop ends")
    assert c.command(f"api uuid_transfer {cust} -both conference:room1@default inline").body == b"+OK\n"
    conf = fakeswitch.wait_for(lambda: (lambda x: x if x and len(x.members) == 2 else None)(
        fakeswitch.conferences.get("room1")), 5, "2 members")
    actions = [c.read_event("CUSTOM")[0]["Action"] for _ in range(4)]
    # as captured: the conference is created, both join, the one that talks (the agent's phone, not the
    # loopback customer who joined first) takes the floor
    assert actions == ["conference-create", "add-member", "add-member", "floor-change"]
    listing = c.command("api conference room1 list").body.decode()
    assert cust in listing and agent_leg in listing and listing.count("\n") == 2
    assert '"conference_name":\t"room1"' in c.command("api conference room1 json_list").body.decode()
    # one line per member, newest first (mod_conference's member list)
    assert c.command("api conference room1 hup all").body == b"+OK hup 2\n+OK hup 1\n"
    fakeswitch.wait_for(lambda: "room1" not in fakeswitch.conferences, 5, "conference gone")
    assert conf.members == []


def test_rxfax_writes_a_real_tiff(fakeswitch, tmp_path):
    """Should receive a fax from a fax-sending caller into a TIFF that tiffinfo reads."""
    path = tmp_path / "fax" / "in.tif"
    res = {}

    def app(c):
        _start(c, events="CUSTOM spandsp::rxfaxresult")
        execute(c, "answer")
        h, _ = execute(c, "rxfax", str(path), timeout=10)
        res["ok"] = h["variable_fax_success"]
        res["pages"] = h["variable_fax_document_transferred_pages"]
        c.command("exit")

    call = _run(fakeswitch, app, [SendFax(pages=2)])
    assert res == {"ok": "1", "pages": "2"}
    assert call.faxes == [str(path)]
    assert path.read_bytes()[:4] == b"II*\x00"
    if shutil.which("tiffinfo"):
        out = subprocess.run(["tiffinfo", str(path)], capture_output=True, text=True, timeout=10)
        assert out.returncode == 0 and out.stdout.count("TIFF Directory") == 2


def test_rxfax_without_fax_caller_fails(fakeswitch, tmp_path):
    """Should report fax_success=0 when the caller is not a fax machine."""
    res = {}

    def app(c):
        _start(c, events="")
        h, _ = execute(c, "rxfax", f"{tmp_path}/x.tif", timeout=10)
        res["ok"] = h["variable_fax_success"]
        c.command("exit")

    _run(fakeswitch, app)
    assert res["ok"] == "0"
    assert not (tmp_path / "x.tif").exists()


def test_transfer_app_releases_the_socket(fakeswitch):
    """Should end socket control when the app transfers the call (disconnect notice), and ring the agent."""
    agent = fakeswitch.add_agent("1005", answer_delay=0, talk_seconds=1)
    notices = []

    def app(c):
        _start(c, linger=False, events="")
        c.send("sendmsg\ncall-command: execute\nexecute-app-name: transfer\nexecute-app-arg: 1005 XML default\n\n")
        f = c.read_until(lambda f: f.content_type == "text/disconnect-notice", 5)
        notices.append(f.headers["Content-Disposition"])

    call = _run(fakeswitch, app)
    assert notices == ["disconnect"]
    assert call.transfers == [("1005", "XML", "default")]
    assert agent.channels and agent.channels[0].answered_us
    assert call.hangup_by == "agent"
    assert call.executed == [("transfer", "1005 XML default"), ("bridge", "user/1005")]


def test_script_timeout_is_reported_and_caller_hangs_up(fakeswitch):
    """Should record a ScriptError and hang up when an awaited application never comes."""
    def app(c):
        _start(c, events="")
        execute(c, "answer")
        c.read_until(lambda f: f.content_type == "text/disconnect-notice", 5)

    call = _run(fakeswitch, app, [WaitFor("record", timeout=0.3)])
    assert call.script_error is not None and "record" in str(call.script_error)
    assert call.hangup_by == "caller"


def test_unreachable_app_is_reported(fakeswitch):
    """Should record the connect error and end the call when the app's port refuses."""
    with refusing_port() as port:
        call = fakeswitch.place_call(("127.0.0.1", port))
        call.wait_ended(5)
    assert isinstance(call.connect_error, OSError)


def test_oversized_command_closes_the_socket(fakeswitch):
    """Should close the connection when a command has no end within the size limit."""
    c = RawClient.connect(fakeswitch.address)
    c.read_frame()
    c.send(b"auth ClueCon\n\n")
    c.read_frame()
    with pytest.raises((EOFError, OSError)):
        c.send(b"x" * (1024 * 1024 + 10))
        c.read_frame(5)


def test_record_ignores_hash_unless_it_is_a_terminator(fakeswitch, tmp_path):
    """Should keep recording on # by default (mod_dptools default terminator is *) and stop on *."""
    res = []

    def app(c):
        _start(c)
        h, _ = execute(c, "record", f"{tmp_path}/a.wav 120 200 3")
        res.append((h.get("variable_playback_terminator_used"), h["variable_silence_hits_exhausted"]))
        h, _ = execute(c, "record", f"{tmp_path}/b.wav 120")
        res.append((h.get("variable_playback_terminator_used"), h["variable_silence_hits_exhausted"]))
        c.command("exit")

    _run(fakeswitch, app, [Speak(1), Press("#"), Speak(1), Press("*")])
    # no terminator: the record app's empty playback_terminator_used unsets it (switch_channel_set_variable)
    assert res == [(None, "true"), ("*", "false")]


def test_missing_prompt_makes_every_pagd_try_fail(fakeswitch):
    """Should fail play_and_get_digits when its prompt file is missing, as switch_ivr_read does."""
    res = {}

    def app(c):
        _start(c)
        h, _ = execute(c, "play_and_get_digits", "1 1 2 2000 # /nonexistent/welcome.wav silence_stream://100 m \\d 1000")
        res["m"] = h.get("variable_m")
        c.command("exit")

    call = _run(fakeswitch, app, [Press("1")])
    assert res["m"] is None
    assert call.not_found == ["/nonexistent/welcome.wav"] * 2


def test_single_key_menu_terminator_and_invalid_variable(fakeswitch):
    """Should return nothing for a lone terminator on a one-digit read and keep a regex miss in <var>_invalid."""
    res = []

    def app(c):
        _start(c)
        for _ in range(2):
            h, _ = execute(c, "play_and_get_digits", "1 1 1 2000 # tone_stream://%(3000,0,440) "
                                                     "silence_stream://100 k ^[1-3]$ 1000")
            res.append((h.get("variable_k"), h.get("variable_k_invalid"), h.get("variable_read_result")))
        c.command("exit")

    _run(fakeswitch, app, [Press("#"), Press("7")])
    assert res == [(None, None, "success"), (None, "7", "success")]


def test_originate_to_the_ivr_extension_and_transfer_back(fakeswitch):
    """Should connect an originated leg sent to 12345 to the app (outbound IVR call), run the party's script,
    and reconnect a socket call transferred back to 12345 with the same Unique-ID."""
    seen = []

    def app(c):
        reply = c.command("connect")
        uuid = reply.headers["Unique-ID"]
        c.command("myevents")
        h, _ = execute(c, "play_and_get_digits", "1 1 1 3000 # tone_stream://%(500,0,440) silence_stream://100 s \\d 1000")
        seen.append((uuid, h.get("variable_s")))
        if len(seen) == 1:
            c.send("sendmsg\ncall-command: execute\nexecute-app-name: transfer\nexecute-app-arg: 12345 XML default\n\n")
            c.read_until(lambda f: f.content_type == "text/disconnect-notice", 5)
        else:
            c.command("sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING")
            c.read_until(lambda f: f.content_type == "text/disconnect-notice", 5)

    citizen = fakeswitch.add_agent("13800138000", answer_delay=1, script=[Press("5"), Press("6")])
    with AppServer(app) as srv:
        fakeswitch.route_to_socket("12345", srv.address)
        r = fakeswitch.api("originate {hotline_attempt=77}sofia/gateway/carrier/13800138000 12345 XML default")
        assert r.startswith("+OK ")
        uuid = r.split()[1].strip()
        call = fakeswitch.wait_for(lambda: citizen.socket_calls, 5, "socket call")[0]
        call.wait_ended(10)
        srv.wait_done(2)
    assert seen == [(uuid, "5"), (uuid, "6")]
    assert call.variables["hotline_attempt"] == "77"
    assert len(call.sessions) == 2 and call.hangup_by == "app"


def test_loopback_originate_into_the_socket_like_the_capture(fakeswitch):
    """Should run the B leg of loopback/12345 in the socket app, as the captured test call did."""
    seen = {}

    def app(c):
        r = c.command("connect")
        seen.update(name=r.headers["Channel-Name"], leg=r.headers.get("variable_loopback_leg"),
                    other=r.headers.get("variable_other_loopback_leg_uuid"))
        c.command("exit")

    with AppServer(app) as srv:
        fakeswitch.route_to_socket("12345", srv.address)
        a = fakeswitch.api("originate {origination_uuid=a730b873-f5f6-4207-bc8f-b380b0836c29}"
                           "loopback/12345/default &park").split()[1]
        srv.wait_done()
        fakeswitch.wait_for(lambda: not fakeswitch.channels, 5, "both legs gone")
    assert seen == {"name": "loopback/12345-b", "leg": "B", "other": "a730b873-f5f6-4207-bc8f-b380b0836c29"}
    assert a == "a730b873-f5f6-4207-bc8f-b380b0836c29"
