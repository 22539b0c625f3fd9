"""switch/ against the protocol-level fake FreeSWITCH (tests/fakeswitch): whole calls and the control link."""
from __future__ import annotations

import wave

import gevent
import gevent.event
import pytest

from core.config import EslEndpoint
from switch.errors import CallHangup, SwitchDisconnected, SwitchTimeout
from switch.events import ChannelAnswered, ChannelCreated, ChannelHangup, DtmfReceived, Registered
from switch.inbound import CONNECTED
from tests.fakeswitch import Hangup, Press, Speak, Wait, WaitFor
from tests.waiting import wait_until


@pytest.fixture
def inbound(fakeswitch, inbound_to):
    return lambda password="ClueCon", **kw: inbound_to("127.0.0.1", fakeswitch.esl_port, password, **kw)


# --- outbound calls ------------------------------------------------------------------------------

def test_full_call_answers_plays_collects_records_and_hangs_up(serve, fake_call, fakeswitch):
    """Should run a whole IVR-like call: menu digit, a spoken message ended by #, a number, goodbye."""
    def script(session):
        session.answer()
        session.playback("welcome.wav")
        choice = session.play_and_get_digits(1, 1, 3, 5000, "#", "menu.wav")
        message = session.record(str(fakeswitch.record_dir / f"{session.uuid}.wav"), 60, 200, 5)
        number = session.play_and_get_digits(4, 8, 1, 5000, "#", "enter_number.wav")
        session.playback("goodbye.wav")
        session.hangup()
        return session.caller, session.destination, choice, message, number

    server, handler = serve(script)
    call = fake_call(server.address, script=[Press("2"), Speak(2), Press("#"), Press("1234#")],
                     caller="13800138000")
    call.wait_ended(timeout=10)
    assert handler.done.wait(5) and handler.errors == []
    caller, destination, choice, message, number = handler.results[0]
    assert (caller, destination, choice, number) == ("13800138000", "12345", "2", "1234")
    assert message.terminator == "#" and message.duration_ms and message.duration_ms >= 1500
    with wave.open(message.path) as wav:
        assert wav.getnframes() / wav.getframerate() >= 1.5
    apps = [app for app, _ in call.executed]
    assert apps == ["answer", "playback", "play_and_get_digits", "set", "record", "play_and_get_digits", "playback"]
    assert ("set", "playback_terminators=#") in call.executed
    assert "welcome.wav" in call.played and "goodbye.wav" in call.played
    assert call.hangup_by == "app" and call.hangup_cause == "NORMAL_CLEARING"
    wait_until(lambda: server.active_calls == 0)


def test_caller_hanging_up_mid_playback_raises_callhangup(serve, fake_call):
    """Should interrupt the playback wait with CallHangup carrying the caller's hang-up cause."""
    server, handler = serve(lambda s: (s.answer(), s.playback("long-announcement.wav", timeout=30)))
    call = fake_call(server.address, script=[WaitFor("playback"), Hangup()])
    call.wait_ended(timeout=10)
    assert handler.done.wait(5)
    assert isinstance(handler.errors[0], CallHangup) and handler.errors[0].cause == "NORMAL_CLEARING"
    assert call.hangup_by == "caller"
    wait_until(lambda: server.active_calls == 0)


def test_socket_closed_mid_frame_ends_the_call_cleanly(serve, fake_call):
    """Should end the call with CallHangup when the switch's socket dies in the middle of a frame."""
    started = gevent.event.Event()

    def script(session):
        session.answer()
        started.set()
        session.execute("sleep", "600000", timeout=30)

    server, handler = serve(script)
    call = fake_call(server.address, script=[])
    assert started.wait(5)
    call.wait_for_app("sleep")
    call.session.inject(b"Content-Length: 900\nContent-Type: text/event-plain\n\nEvent-Name: DTMF\nUnique-")
    call.session.drop()
    assert handler.done.wait(5) and isinstance(handler.errors[0], CallHangup)
    wait_until(lambda: server.active_calls == 0)
    # the server is unharmed: the next call runs
    handler.script = lambda s: s.answer()
    fake_call(server.address, script=[]).wait_ended(timeout=10)
    assert len(handler.errors) == 1 and handler.results == [None]


def test_unknown_application_hangs_up_instead_of_waiting_forever(serve, fake_call):
    """Should raise CallHangup (DESTINATION_OUT_OF_ORDER) when FreeSWITCH has no such application."""
    server, handler = serve(lambda s: s.execute("no_such_app", "x", timeout=30))
    fake_call(server.address, script=[]).wait_ended(timeout=10)
    assert handler.done.wait(5)
    assert isinstance(handler.errors[0], CallHangup) and handler.errors[0].cause == "DESTINATION_OUT_OF_ORDER"


def test_silent_caller_gives_empty_digits(serve, fake_call):
    """Should return "" from play_and_get_digits when the caller enters nothing."""
    server, handler = serve(lambda s: s.play_and_get_digits(1, 1, 2, 1000, "#", "menu.wav"))
    fake_call(server.address, script=[]).wait_ended(timeout=10)
    assert handler.done.wait(5) and handler.results == [""]


def test_dtmf_reaches_on_event_and_the_digit_buffer(serve, fake_call):
    """Should deliver a key pressed outside any prompt as DtmfReceived and keep it in session.dtmf."""
    def script(session):
        pressed = gevent.event.Event()
        session.on_event(lambda e: pressed.set() if isinstance(e, DtmfReceived) else None)
        session.answer()
        session.wait_for(pressed, timeout=5)
        return list(session.dtmf)

    server, handler = serve(script)
    fake_call(server.address, script=[WaitFor("answer"), Press("5", wait=False)]).wait_ended(timeout=10)
    assert handler.done.wait(5) and handler.results == [["5"]]


def test_calls_over_the_cap_are_rejected_with_congestion(serve, fake_call):
    """Should take max_calls calls and hang up the others with NORMAL_CIRCUIT_CONGESTION."""
    release = gevent.event.Event()
    server, handler = serve(lambda s: (s.answer(), s.wait_for(release, timeout=10)), max_calls=2)
    calls = [fake_call(server.address, script=[Wait(1000)]) for _ in range(2)]
    wait_until(lambda: server.active_calls == 2)
    extra = [fake_call(server.address, script=[Wait(1000)]) for _ in range(3)]
    for call in extra:
        call.wait_ended(timeout=10)
        assert call.hangup_cause == "NORMAL_CIRCUIT_CONGESTION" and call.executed == []
    assert server.calls_rejected == 3 and server.active_calls == 2
    release.set()
    for call in calls:
        call.wait_ended(timeout=10)
        assert call.hangup_by == "app"


def test_stop_lets_the_running_call_finish(serve, fake_call):
    """Should stop accepting new calls and let the call in progress play to its end before returning."""
    server, handler = serve(lambda s: (s.answer(), s.playback("notice.wav")))
    call = fake_call(server.address, script=[])
    call.wait_for_app("playback")
    stopper = gevent.spawn(server.stop, 10)
    wait_until(lambda: not server.accepting)
    late = fake_call(server.address, script=[])
    late.wait_ended(timeout=10)
    assert late.connect_error is not None
    assert stopper.get(timeout=10) == 0
    assert handler.errors == [] and "notice.wav" in call.wait_ended(timeout=10).played


# --- inbound control connection -----------------------------------------------------------------

def test_inbound_api_bgapi_and_events(inbound, fakeswitch):
    """Should run api, originate to an agent with bgapi, and see the channel's events as domain events."""
    fakeswitch.add_agent("1000", answer=True, answer_delay=0.05)
    conn = inbound()
    got = []
    conn.subscribe(got.append)
    assert conn.wait_connected(5)
    assert "UP" in conn.api("status")
    job = conn.bgapi("originate user/1000 &park", timeout=10)
    assert job.ok and job.body.startswith("+OK ")
    leg = job.body.split()[1]
    wait_until(lambda: any(isinstance(e, ChannelAnswered) and e.uuid == leg for e in got), what="answer event")
    assert any(isinstance(e, ChannelCreated) and e.uuid == leg for e in got)
    assert conn.api(f"uuid_kill {leg}").startswith("+OK")
    wait_until(lambda: any(isinstance(e, ChannelHangup) and e.uuid == leg for e in got), what="hangup event")
    failed = conn.bgapi("originate user/1999 &park", timeout=10)
    assert not failed.ok and failed.body.startswith("-ERR")


def test_inbound_reconnects_after_the_fake_drops_it(inbound, fakeswitch):
    """Should reconnect, resubscribe, call on_connected again and keep delivering events."""
    conn = inbound()
    connected = []
    conn.on_connected(lambda: connected.append(conn.state))
    got = []
    conn.subscribe(got.append)
    assert conn.wait_connected(5)
    fakeswitch.drop_inbound()
    wait_until(lambda: len(connected) == 2, what="second on_connected")
    assert connected == [CONNECTED, CONNECTED] and conn.connects == 2
    fakeswitch.add_agent("1001", registered=True)
    wait_until(lambda: any(isinstance(e, Registered) and e.user == "1001" for e in got), what="register event")


def test_inbound_survives_a_switch_restart(inbound, fakeswitch):
    """Should report disconnected while the switch is down, refuse api at once, and come back after."""
    conn = inbound()
    assert conn.wait_connected(5)
    fakeswitch.stop_inbound()
    wait_until(lambda: not conn.connected, what="disconnected state")
    with pytest.raises(SwitchDisconnected):
        conn.api("status")
    fakeswitch.start_inbound()
    assert conn.wait_connected(5) or wait_until(lambda: conn.connected)
    assert "UP" in conn.api("status")


def test_inbound_wrong_password(inbound):
    """Should report the refused password clearly and never become connected."""
    conn = inbound(password="not-the-password")
    wait_until(lambda: "password refused" in conn.last_error, what="auth error")
    assert not conn.connected


@pytest.mark.parametrize("bad", [
    b"\xff\xfe garbage that is no frame\n\n",
    b"Content-Type: api/response\nContent-Length: abc\n\n",
    b"Content-Length: 900\nContent-Type: text/event-plain\n\nEvent-Name: DTMF\n",   # then the socket closes
])
def test_inbound_bad_frames_reconnect(inbound, fakeswitch, bad):
    """Should drop a connection that sent broken framing (or died mid-frame) and reconnect."""
    conn = inbound()
    assert conn.wait_connected(5)
    session = fakeswitch.wait_inbound(count=1)[0]
    session.inject(bad)
    if bad.startswith(b"Content-Length: 900"):
        session.drop()
    wait_until(lambda: conn.connects == 2 and conn.connected, what="reconnect")
    assert "UP" in conn.api("status")


def test_inbound_undecodable_event_is_skipped(inbound, fakeswitch):
    """Should skip a well-framed event that is not UTF-8 and keep the same connection."""
    conn = inbound()
    got = []
    conn.subscribe(got.append)
    assert conn.wait_connected(5)
    session = fakeswitch.wait_inbound(count=1)[0]
    session.inject(b"Content-Length: 4\nContent-Type: text/event-plain\n\n\xb2\xe2\xca\xd4")
    fakeswitch.add_agent("1002", registered=True)
    wait_until(lambda: any(isinstance(e, Registered) for e in got), what="register event")
    assert conn.connects == 1


def test_record_sets_terminators_only_when_they_change(serve, fake_call, fakeswitch):
    """Should set playback_terminators before the first record and again only after it was changed."""
    def script(session):
        path = str(fakeswitch.record_dir / "m.wav")
        first = session.record(path, 5, 200, 3)
        second = session.record(path, 5, 200, 3)
        session.set("playback_terminators", "*")
        third = session.record(path, 5, 200, 3)
        return first, second, third

    server, handler = serve(script)
    call = fake_call(server.address, script=[Speak(1), Press("#"), Speak(1), Press("#"), Speak(1), Press("#")])
    call.wait_ended(timeout=10)
    assert handler.done.wait(5) and handler.errors == []
    assert [r.terminator for r in handler.results[0]] == ["#", "#", "#"]
    sets = [arg for app, arg in call.executed if app == "set"]
    assert sets == ["playback_terminators=#", "playback_terminators=*", "playback_terminators=#"]


def test_pool_maps_a_call_to_its_fake_switch(serve, fake_call, fakeswitch, tmp_path):
    """Should map an outbound call to the right one of two switches on 127.0.0.1 by Core-UUID."""
    from switch.inbound import SwitchPool
    from tests.fakeswitch import FakeSwitch

    other = FakeSwitch(password="ClueCon", record_dir=tmp_path)
    other.start()
    pool = SwitchPool([EslEndpoint("127.0.0.1", fakeswitch.esl_port, "ClueCon"),
                       EslEndpoint("127.0.0.1", other.esl_port, "ClueCon")], backoff_initial=0.05)
    try:
        pool.start()
        assert all(c.wait_connected(5) for c in pool.all())
        fakeswitch.add_agent("1000")                      # any event tells a connection its Core-UUID
        other.add_agent("1000")
        wait_until(lambda: all(c.core_uuid for c in pool.all()), what="Core-UUIDs")
        server, handler = serve(lambda s: pool.for_call(s).name)
        call_other = other.place_call(server.address, script=[])
        call_other.wait_ended(timeout=10)
        fake_call(server.address, script=[]).wait_ended(timeout=10)
        assert handler.done.wait(5)
        wait_until(lambda: len(handler.results) == 2)
        assert handler.results == [f"127.0.0.1:{other.esl_port}", f"127.0.0.1:{fakeswitch.esl_port}"]
    finally:
        pool.stop()
        other.stop()


def test_stop_hangs_up_calls_that_outlive_the_drain(serve, fake_call):
    """Should hang up (SYSTEM_SHUTDOWN) a call still playing after the drain, not just drop its socket."""
    server, handler = serve(lambda s: (s.answer(), s.playback("silence_stream://600000", timeout=60)))
    call = fake_call(server.address, script=[])
    call.wait_for_app("playback")
    assert server.stop(drain_timeout=0.1) == 1
    call.wait_ended(timeout=5)
    assert (call.hangup_by, call.hangup_cause) == ("app", "SYSTEM_SHUTDOWN")
    assert handler.done.wait(5) and isinstance(handler.errors[0], CallHangup)


def test_handler_returning_mid_playback_hangs_up(serve, fake_call):
    """Should hang up a call whose handler gave up on a playback and returned while it still plays."""
    def script(session):
        session.answer()
        with pytest.raises(SwitchTimeout):
            session.playback("silence_stream://600000", timeout=0.2)

    server, handler = serve(script)
    call = fake_call(server.address, script=[])
    call.wait_ended(timeout=5)
    assert (call.hangup_by, call.hangup_cause) == ("app", "NORMAL_CLEARING")
    assert handler.errors == []


def test_inbound_counts_dropped_events_and_resyncs_once_per_interval(inbound, fakeswitch):
    """Should count the events a full queue drops, run the on_connected callbacks (the reconnect hook) once
    the events queued before the drop were handled, and not again for a second burst within resync_interval."""
    conn = inbound(max_queued_events=3, resync_interval=3600)
    release = gevent.event.Event()
    release.set()
    got = []
    resyncs = []

    def slow_subscriber(event):
        release.wait(10)
        got.append(event)

    conn.on_connected(lambda: resyncs.append((conn.dropped_events, len(got))))
    conn.subscribe(slow_subscriber)
    assert conn.wait_connected(5)
    wait_until(lambda: len(resyncs) == 1, what="the connect's callback")
    release.clear()
    for n in range(30):
        fakeswitch.add_agent(f"2{n:03d}", registered=True)
    wait_until(lambda: conn.dropped_events >= 26, what="events dropped by the full queue")
    assert resyncs == [(0, 0)] and conn.status()["dropped_events"] == conn.dropped_events
    release.set()
    wait_until(lambda: len(resyncs) == 2, what="the resync after the drops")
    dropped_then, handled_then = resyncs[1]
    assert dropped_then == conn.dropped_events and handled_then >= 3  # after the events queued before

    first = conn.dropped_events
    release.clear()
    for n in range(30):
        fakeswitch.add_agent(f"3{n:03d}", registered=True)
    wait_until(lambda: conn.dropped_events >= first + 26, what="a second burst dropped")
    release.set()
    fakeswitch.add_agent("4000", registered=True)
    wait_until(lambda: any(isinstance(e, Registered) and e.user == "4000" for e in got), what="the last event")
    assert len(resyncs) == 2 and conn.connects == 1  # the next resync waits for the interval


def test_a_silent_switch_is_dropped_after_missed_heartbeats_and_reconciled(fakeswitch, inbound):
    """Should subscribe to HEARTBEAT, treat a switch that stays silent with its socket open as dead once
    no heartbeat came for heartbeat_timeout, reconnect when it speaks again and run on_connected (the
    reconcile); the status shows the last heartbeat's age."""
    fakeswitch.set_heartbeat(5)  # simulated seconds: every 0.05 s at the fake's time scale
    # 40 beats' time: a process stalled half a second on a busy machine (its beats unread) is not silent.
    conn = inbound(heartbeat_timeout=2.0, connect_timeout=0.3)
    reconciled = []
    conn.on_connected(lambda: reconciled.append(conn.connects))
    assert conn.wait_connected(5)
    session = fakeswitch.wait_for(lambda: fakeswitch.inbound_sessions and fakeswitch.inbound_sessions[0],
                                  what="inbound session")
    assert any("HEARTBEAT" in cmd.line for cmd in session.commands if cmd.line.startswith("event "))
    beat = conn.last_heartbeat
    wait_until(lambda: conn.last_heartbeat != beat, what="a heartbeat")
    assert 0 <= conn.status()["heartbeat_age"] < conn.heartbeat_timeout
    # Several timeouts' worth of beats while alive: nothing happens.
    beats = [conn.last_heartbeat]
    wait_until(lambda: beats.append(conn.last_heartbeat) or len(set(beats)) > 4, what="more heartbeats")
    assert conn.connects == 1 and conn.heartbeat_deaths == 0 and conn.connected
    fakeswitch.go_silent()
    wait_until(lambda: not conn.connected, timeout=10, what="the silent switch dropped")
    assert conn.heartbeat_deaths == 1 and "no heartbeat" in conn.status()["last_error"]
    assert session.closed or fakeswitch.wait_for(lambda: session.closed, what="old socket closed")
    assert conn.status()["heartbeat_age"] is None
    fakeswitch.go_silent(False)
    wait_until(lambda: conn.connected and reconciled == [1, 2], timeout=10, what="reconnected and reconciled")
    assert conn.heartbeat_deaths == 1
