"""Inbound control of calls on the fake switch: sendmsg/myevents by uuid, broadcast, bridge of a socket
call to an agent, hupall, show channels; caller scripts that count commands."""
from __future__ import annotations

import json

from tests.fakeswitch import Hangup, WaitFor
from tests.unit.fakeswitch.rawclient import AppServer, RawClient, execute


def _ctl(fs, events=None):
    c = RawClient.connect(fs.address)
    c.read_frame()
    c.command("auth ClueCon")
    if events:
        c.command("event plain " + events)
    return c


def _parked_call(fs, srv_holder):
    """A socket call whose app answers, says linger, and then just listens until the channel ends."""
    def app(c):
        c.command("connect")
        c.command("myevents")
        c.command("linger")
        execute(c, "answer")
        execute(c, "set", "park_after_bridge=true")
        srv_holder.append(c)
        c.read_until(lambda f: f.content_type == "text/disconnect-notice", 10)
        c.close()
    return app


def test_inbound_sendmsg_and_myevents_by_uuid(fakeswitch):
    """Should execute on a channel by uuid from the control connection and scope myevents to that uuid."""
    fakeswitch.add_agent("1000", answer_delay=0)
    fakeswitch.add_agent("1001", answer_delay=0)
    c = _ctl(fakeswitch)
    a = c.command("api originate user/1000 &park").body.decode().split()[1]
    c.command("api originate user/1001 &park")
    assert c.command(f"myevents {a}").headers["Reply-Text"] == "+OK Events Enabled"
    r = c.command(f"sendmsg {a}\ncall-command: execute\nexecute-app-name: playback\n"
                  "execute-app-arg: silence_stream://200\nEvent-UUID: m1")
    assert r.headers["Reply-Text"] == "+OK"
    h, _ = c.read_event("CHANNEL_EXECUTE_COMPLETE", Application_UUID="m1")
    assert h["Unique-ID"] == a and h["Application-Response"] == "FILE PLAYED"
    assert c.command("sendmsg 00000000-0000-0000-0000-000000000000\ncall-command: hangup").headers[
        "Reply-Text"] == "-ERR invalid session id [00000000-0000-0000-0000-000000000000]"
    assert c.command("myevents").headers["Reply-Text"] == "-ERR invalid uuid"
    others = [f for f in c.frames + c.pending if f.content_type == "text/event-plain"
              and f.event()[0].get("Unique-ID") not in (a, None)]
    assert others == []


def test_queue_music_then_agent_bridge_of_a_socket_call(fakeswitch):
    """Should play to a socket call by uuid_broadcast, bridge it to an agent with uuid_bridge, and keep it
    up (park_after_bridge) when the agent hangs up."""
    agent = fakeswitch.add_agent("1000", answer_delay=0)
    holder = []
    ctl = _ctl(fakeswitch, "CHANNEL_BRIDGE CHANNEL_UNBRIDGE PLAYBACK_START")
    with AppServer(_parked_call(fakeswitch, holder)) as srv:
        call = fakeswitch.place_call(srv.address)
        fakeswitch.wait_for(lambda: holder, 5, "app ready")
        assert ctl.command(f"api uuid_broadcast {call.uuid} local_stream://moh aleg").body == b"+OK Message sent\n"
        ctl.read_event("PLAYBACK_START", Unique_ID=call.uuid)
        leg = ctl.command("api originate user/1000 &park").body.decode().split()[1]
        ctl.command(f"api uuid_bridge {call.uuid} {leg}")
        h, _ = ctl.read_event("CHANNEL_BRIDGE")
        assert h["Bridge-A-Unique-ID"] == call.uuid and h["Other-Leg-Unique-ID"] == leg
        h, _ = holder[0].read_event("CHANNEL_BRIDGE")
        assert h["Unique-ID"] == call.uuid
        agent.hangup()
        ctl.read_event("CHANNEL_UNBRIDGE")
        assert not call.channel.hung_up
        assert call.channel.get_var("last_bridge_hangup_cause") == "NORMAL_CLEARING"
        assert ctl.command(f"api uuid_kill {call.uuid}").body == b"+OK\n"
        call.wait_ended(5)
        srv.wait_done()
    assert call.played == ["local_stream://moh"]
    assert call.hangup_by == "switch"


def test_show_channels_and_hupall(fakeswitch):
    """Should list live channels (plain and json) and hang them all up with hupall."""
    fakeswitch.add_agent("1000", answer_delay=0)
    c = _ctl(fakeswitch, "CHANNEL_HANGUP_COMPLETE")
    uuid = c.command("api originate {origination_caller_id_number=12345}user/1000 &park").body.decode().split()[1]
    rows = json.loads(c.command("api show channels as json").body)
    assert rows["row_count"] == 1 and rows["rows"][0]["uuid"] == uuid
    assert rows["rows"][0]["application"] == "park"
    # the leg took the identity of the phone it reached (switch_channel_flip_cid), as a real one lists it
    assert (rows["rows"][0]["cid_num"], rows["rows"][0]["callee_num"]) == ("1000", "12345")
    assert (rows["rows"][0]["initial_cid_num"], rows["rows"][0]["callee_direction"]) == ("12345", "RECV")
    plain = c.command("api show calls").body.decode()
    assert plain.startswith("uuid,direction,created,") and plain.endswith("\n\n1 total.\n")
    assert c.command("api hupall MANAGER_REQUEST").body == b"+OK hangup all channels with cause MANAGER_REQUEST\n"
    h, _ = c.read_event("CHANNEL_HANGUP_COMPLETE")
    assert h["Hangup-Cause"] == "MANAGER_REQUEST"


def test_caller_hangs_up_after_three_commands(fakeswitch):
    """Should let a script hang up after the app has executed a given number of applications."""
    def app(c):
        c.command("connect")
        c.command("myevents")
        for i in range(5):
            c.send(f"sendmsg\ncall-command: execute\nexecute-app-name: playback\n"
                   f"execute-app-arg: silence_stream://1000\nEvent-UUID: e{i}\n\n")
        c.read_until(lambda f: f.content_type == "text/disconnect-notice", 10)

    with AppServer(app) as srv:
        call = fakeswitch.place_call(srv.address, script=[WaitFor(count=3), Hangup()])
        call.wait_ended(10)
        srv.wait_done()
    assert len(call.executed) == 3
    assert call.hangup_by == "caller"


def test_emit_arbitrary_events(fakeswitch):
    """Should deliver events a test fires itself, CUSTOM subclasses included, to subscribed clients."""
    c = _ctl(fakeswitch, "HEARTBEAT CUSTOM callcenter::info")
    fakeswitch.emit("HEARTBEAT", [("Up-Time", "0 years")])
    fakeswitch.emit_custom("callcenter::info", [("CC-Action", "agent-status-change")], body="体")
    h, _ = c.read_event("HEARTBEAT")
    assert h["Up-Time"] == "0 years"
    h, body = c.read_event("CUSTOM")
    assert h["Event-Subclass"] == "callcenter::info" and body == "体"


def test_eavesdrop_mode_from_variables_and_dtmf_off(fakeswitch):
    """Should start eavesdrop whispering when eavesdrop_whisper_aleg is set and ignore keys when DTMF is off."""
    fakeswitch.add_agent("1000", answer_delay=0)
    lead = fakeswitch.add_agent("1009", answer_delay=0)
    target = fakeswitch.api("originate user/1000 &park").split()[1]
    r = fakeswitch.api("originate {eavesdrop_whisper_aleg=true,eavesdrop_enable_dtmf=false}user/1009 "
                       f"&eavesdrop({target})")
    assert r.startswith("+OK ")
    ev = fakeswitch.wait_for(lambda: fakeswitch.eavesdrops, 5, "eavesdrop")[0]
    assert ev.mode == "whisper"
    lead.press("3")
    assert fakeswitch.api(f"uuid_recv_dtmf {lead.current.uuid} 0") == "+OK\n"
    fakeswitch.api(f"uuid_kill {target}")
    fakeswitch.wait_for(lambda: not ev.active, 5, "eavesdrop ends with its target")
    assert ev.modes == ["whisper"]


def test_dump_park_answer_and_user_exists(fakeswitch):
    """Should dump a channel's data, park and answer by uuid, and say which users exist."""
    fakeswitch.add_agent("1000", answer_delay=0)
    uuid = fakeswitch.api("originate user/1000 &park").split()[1]
    dump = fakeswitch.api(f"uuid_dump {uuid}")
    assert f"Unique-ID: {uuid}\n" in dump and "variable_dialed_user: 1000\n" in dump
    assert fakeswitch.api(f"uuid_park {uuid}") == "+OK\n"
    assert fakeswitch.api(f"uuid_answer {uuid}") == "+OK\n"
    assert fakeswitch.api("user_exists id 1000 127.0.0.1") == "true"
    assert fakeswitch.api("user_exists id 1999 127.0.0.1") == "false"
    assert fakeswitch.api("uuid_dump nope") == "-ERR No such channel!\n"


def test_heartbeat_events_when_asked(tmp_path):
    """Should fire HEARTBEAT events on the configured (simulated) interval only when asked to."""
    from tests.fakeswitch import FakeSwitch
    fs = FakeSwitch(record_dir=tmp_path, heartbeat_seconds=20).start()
    try:
        c = _ctl(fs, "HEARTBEAT")
        h, _ = c.read_event("HEARTBEAT", 5)
        assert h["Heartbeat-Interval"] == "20" and h["Event-Info"] == "System Ready"
    finally:
        fs.stop()
