"""The fake switch's inbound event socket, driven by a raw-socket client."""
from __future__ import annotations

import json
import wave

import pytest

from tests.unit.fakeswitch.rawclient import RawClient


def _client(fs, auth=True):
    c = RawClient.connect(fs.address)
    greeting = c.read_frame()
    assert greeting.raw == b"Content-Type: auth/request\n\n"
    if auth:
        assert c.command("auth ClueCon").headers["Reply-Text"] == "+OK accepted"
    return c


def test_commands_before_auth_and_wrong_password(fakeswitch):
    """Should refuse commands before auth and disconnect after a wrong password, as the real switch does."""
    c = _client(fakeswitch, auth=False)
    assert c.command("api status").raw == b"Content-Type: command/reply\nReply-Text: -ERR command not found\n\n"
    reply = c.command("auth wrong")
    assert reply.headers["Reply-Text"] == "-ERR invalid"
    notice = c.read_frame()
    assert notice.content_type == "text/disconnect-notice"
    assert notice.body.startswith(b"Disconnected, goodbye.")
    with pytest.raises(EOFError):
        c.read_frame(2)


def test_api_replies(fakeswitch):
    """Should answer api with api/response bodies, -ERR bodies for unknown commands and channels."""
    c = _client(fakeswitch)
    status = c.command("api status")
    assert status.content_type == "api/response"
    assert int(status.headers["Content-Length"]) == len(status.body)
    assert status.body.startswith(b"UP ")
    assert c.command("api no_such_command foo").body == b"-ERR no_such_command Command not found!\n"
    assert c.command("api uuid_getvar 00000000-0000-0000-0000-000000000000 foo").body == b"-ERR No such channel!\n"
    assert c.command("api uuid_kill 00000000-0000-0000-0000-000000000000").body == b"-ERR No such channel!\n"
    unknown = c.command("frobnicate")
    assert unknown.headers["Reply-Text"] == "-ERR command not found"
    assert json.loads(c.command("api show channels as json").body) == {"row_count": 0}
    assert c.command("api show channels").body.endswith(b"\n\n0 total.\n")


def test_bgapi_job_uuid_and_background_job_only_when_subscribed(fakeswitch):
    """Should honour a client Job-UUID and send BACKGROUND_JOB only after subscribing to it."""
    c = _client(fakeswitch)
    r = c.command("bgapi uptime")
    job = r.headers["Job-UUID"]
    assert r.headers["Reply-Text"] == f"+OK Job-UUID: {job}"
    # Not subscribed: the next thing we read is the reply to our next command, no event in between.
    assert c.command("event plain BACKGROUND_JOB").headers["Reply-Text"] == "+OK event listener enabled plain"
    assert not any(f.content_type == "text/event-plain" for f in c.frames)
    r = c.command("bgapi uptime\nJob-UUID: 868d8c33-f46a-452f-94f5-1e197e80a545")
    assert r.headers["Job-UUID"] == "868d8c33-f46a-452f-94f5-1e197e80a545"
    h, body = c.read_event("BACKGROUND_JOB")
    assert h["Job-UUID"] == "868d8c33-f46a-452f-94f5-1e197e80a545"
    assert h["Job-Command"] == "uptime" and "Job-Command-Arg" not in h
    assert body.strip().isdigit()


def test_failed_originate_job_body(fakeswitch):
    """Should put -ERR <CAUSE> in the BACKGROUND_JOB body when the originate fails."""
    c = _client(fakeswitch)
    c.command("event json BACKGROUND_JOB")
    c.command("bgapi originate user/1099 &park")
    h, body = c.read_event("BACKGROUND_JOB")
    assert body == "-ERR SUBSCRIBER_ABSENT\n"
    assert h["Job-Command-Arg"] == "user/1099 &park"


def test_custom_subclasses_and_formats(fakeswitch):
    """Should deliver CUSTOM only for listed subclasses, accumulate subscriptions, switch format per connection."""
    c = _client(fakeswitch)
    c.command("event plain CUSTOM")
    fakeswitch.add_agent("1000")
    c.command("event plain CUSTOM sofia::unregister")
    c.command("event json CUSTOM sofia::register")
    fakeswitch.add_agent("1001")
    f = c.read_until(lambda f: f.content_type.startswith("text/event"))
    assert f.content_type == "text/event-json"
    h, _ = f.event()
    assert h["Event-Subclass"] == "sofia::register" and h["from-user"] == "1001"
    fakeswitch.set_registered("1001", False)
    h, _ = c.read_event("CUSTOM")
    assert h["Event-Subclass"] == "sofia::unregister"
    c.command("noevents")
    assert c.command("noevents").headers["Reply-Text"] == "-ERR not listening for events"


def test_filter_limits_events(fakeswitch):
    """Should deliver only events matching a filter once one is set."""
    c = _client(fakeswitch)
    c.command("event plain CHANNEL_CREATE BACKGROUND_JOB")
    assert c.command("filter Event-Name BACKGROUND_JOB").headers["Reply-Text"] == \
        "+OK filter added. [Event-Name]=[BACKGROUND_JOB]"
    fakeswitch.add_agent("1000", answer_delay=0)
    c.command("bgapi originate user/1000 &park")
    f = c.read_until(lambda f: f.content_type == "text/event-plain")
    assert f.event()[0]["Event-Name"] == "BACKGROUND_JOB"


def test_exit_says_goodbye(fakeswitch):
    """Should reply +OK bye, send the disconnect notice and close."""
    c = _client(fakeswitch)
    assert c.command("exit").headers["Reply-Text"] == "+OK bye"
    n = c.read_until(lambda f: f.content_type == "text/disconnect-notice")
    assert n.raw == (b"Content-Type: text/disconnect-notice\nContent-Length: 67\n\n"
                     b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n")
    with pytest.raises(EOFError):
        c.read_frame(2)


def test_drop_and_come_back_on_same_port(fakeswitch):
    """Should let a test drop clients, refuse while stopped, and listen again on the same port."""
    c = _client(fakeswitch)
    port = fakeswitch.esl_port
    fakeswitch.stop_inbound()
    with pytest.raises(EOFError):
        c.read_frame(2)
    with pytest.raises(OSError):
        RawClient.connect(fakeswitch.address, timeout=1)
    fakeswitch.start_inbound()
    assert fakeswitch.esl_port == port
    c2 = _client(fakeswitch)
    assert fakeswitch.wait_inbound(1)[0].authed
    fakeswitch.inbound_sessions[0].inject(b"Content-Type: api/response\nContent-Length: 99\n\nshort")
    c2.sock.settimeout(2)
    assert c2.sock.recv(100) == b"Content-Type: api/response\nContent-Length: 99\n\nshort"
    c2.close()


def test_originate_agent_events_and_failures(fakeswitch):
    """Should ring scripted agents with CREATE/PROGRESS/ANSWER events or fail with the real causes."""
    c = _client(fakeswitch)
    c.command("event plain CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE")
    fakeswitch.add_agent("1000", answer=True, answer_delay=0.2)
    fakeswitch.add_agent("1001", answer="busy")
    fakeswitch.add_agent("1002", answer="timeout")
    fakeswitch.add_agent("1003", registered=False)
    fakeswitch.add_agent("1004", answer=False)
    r = c.command("api originate {origination_uuid=aaaa1111-0000-0000-0000-000000000001,"
                  "origination_caller_id_name='Hot Line'}user/1000 &park")
    assert r.body == b"+OK aaaa1111-0000-0000-0000-000000000001\n"
    names = [c.read_event(n)[0] for n in ("CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_ANSWER")]
    assert all(h["Unique-ID"] == "aaaa1111-0000-0000-0000-000000000001" for h in names)
    assert names[0]["Caller-Caller-ID-Name"] == "Hot Line"
    assert c.command("api originate user/1001 &park").body == b"-ERR USER_BUSY\n"
    assert c.command("api originate {originate_timeout=5}user/1002 &park").body == b"-ERR NO_ANSWER\n"
    assert c.command("api originate user/1003 &park").body == b"-ERR USER_NOT_REGISTERED\n"
    assert c.command("api originate user/1004 &park").body == b"-ERR CALL_REJECTED\n"
    h, _ = c.read_event("CHANNEL_HANGUP_COMPLETE")
    assert h["Hangup-Cause"] in ("USER_BUSY", "NO_ANSWER", "CALL_REJECTED")
    regs = c.command("api show registrations").body.decode()
    assert "\n1000,127.0.0.1," in regs and "\n1003," not in regs and regs.endswith("\n\n4 total.\n")
    reg = c.command("api sofia status profile internal reg").body.decode()
    assert "User:       \t1000@127.0.0.1" in reg and "1003@" not in reg


def test_bridge_kill_record_and_hold(fakeswitch, tmp_path):
    """Should bridge two legs (CHANNEL_BRIDGE), record to a real WAV, hold, and kill both legs."""
    c = _client(fakeswitch)
    c.command("event plain CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_HANGUP_COMPLETE RECORD_START RECORD_STOP "
              "CHANNEL_HOLD CHANNEL_EXECUTE_COMPLETE")
    fakeswitch.add_agent("1000", answer_delay=0)
    cust = c.command("api originate loopback/9999/default &park").body.decode().split()[1]
    agent = c.command("api originate user/1000 &park").body.decode().split()[1]
    assert c.command(f"api uuid_bridge {cust} {agent}").body == f"+OK {agent}\n".encode()
    h, _ = c.read_event("CHANNEL_BRIDGE")
    assert h["Bridge-A-Unique-ID"] == cust and h["Bridge-B-Unique-ID"] == agent
    assert h["Other-Leg-Unique-ID"] == agent
    wav = tmp_path / "calls" / "c.wav"
    assert c.command(f"api uuid_record {cust} start {wav}").body == b"+OK Success\n"
    c.read_event("RECORD_START")
    assert wav.stat().st_size == 44  # a bare header from the start, as a real FreeSWITCH leaves it
    assert c.command(f"api uuid_hold {agent}").body == b"+OK Success\n"
    c.read_event("CHANNEL_HOLD")
    assert c.command(f"api uuid_getvar {cust} bridge_uuid").body.decode() == agent
    assert c.command(f"api uuid_setvar {cust} case_no 12345678").body == b"+OK\n"
    assert c.command(f"api uuid_getvar {cust} case_no").body == b"12345678"
    assert c.command(f"api uuid_getvar {cust} nope").body == b"_undef_"
    assert c.command(f"api uuid_kill {agent}").body == b"+OK\n"
    h, _ = c.read_event("CHANNEL_UNBRIDGE")
    c.read_event("RECORD_STOP")
    gone = {c.read_event("CHANNEL_HANGUP_COMPLETE")[0]["Unique-ID"] for _ in range(3)}
    assert {cust, agent} < gone
    with wave.open(str(wav)) as w:
        assert w.getframerate() == 8000 and w.getnframes() > 0
