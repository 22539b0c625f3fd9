"""Outbound server and CallSession against a scripted peer that sends bytes from the real transcripts."""
from __future__ import annotations

import gevent
import gevent.event
import pytest
from gevent import socket

from switch.errors import CallHangup, SwitchTimeout
from switch.events import DtmfReceived
from tests.waiting import wait_until

from .peer import ScriptedPeer, TranscriptBlocks, replay, transcript

ASYNC_FULL = "outbound_socket_async_full.txt"


def connect_call(peer: ScriptedPeer, blocks: TranscriptBlocks):
    """Answer connect/myevents/event/linger from the transcript."""
    for prefix in ("connect", "myevents", "event plain", "linger"):
        peer.send(*blocks.frames_for(peer.expect(prefix)))


def test_full_call_replayed_from_the_real_capture(serve):
    """Should answer, play, set, collect 1234, record and hang up, matching each step by Event-UUID."""
    blocks = TranscriptBlocks(transcript(ASYNC_FULL))
    digits_seen = []

    def script(session):
        session.on_event(lambda e: digits_seen.append(e.digit) if isinstance(e, DtmfReceived) else None)
        session.answer()
        played = session.playback("/srv/hotline-fs/media/hello-tone.wav")
        session.set("esl_test_var", "hello world")
        digits = session.play_and_get_digits(2, 5, 1, 7000, "#", "tone_stream://%(1000,0,620)")
        recorded = session.record("/srv/hotline-fs/rec/outbound-record.wav", 3)
        session.hangup()
        with pytest.raises(CallHangup):
            session.playback("/srv/hotline-fs/media/after-hangup.wav")
        return session, played, digits, recorded

    server, handler = serve(script)
    peer = ScriptedPeer.dial(server.address)
    commands = replay(peer, blocks)
    assert handler.done.wait(5) and handler.error is None, handler.error
    session, played, digits, recorded = handler.result
    assert session.uuid == "4912fe94-2272-4959-94d6-a442bda1eb6c"
    assert session.caller == "5552000" and session.destination == "12345"
    assert session.channel_data["variable_uuid"] == session.uuid
    assert played.response == "FILE PLAYED"
    assert digits == "1234" and digits_seen[:5] == ["1", "2", "3", "4", "#"]
    assert recorded.path.endswith("outbound-record.wav") and recorded.duration_ms == 1500
    assert session.hung_up and session.hangup_cause == "NORMAL_CLEARING"
    lines = [c.line for c in commands]
    assert lines[:3] == ["connect", "myevents", lines[2]] and lines[2].startswith("event plain ")
    for needed in ("PLAYBACK_START", "RECORD_STOP", "DTMF", "CUSTOM spandsp::"):
        assert needed in lines[2]
    assert lines[3] == "linger"
    executes = [c for c in commands if c.headers.get("call-command") == "execute"]
    assert len({c.headers["Event-UUID"] for c in executes}) == len(executes)
    wait_until(lambda: server.active_calls == 0)


def test_completion_of_another_execute_does_not_end_the_wait(serve):
    """Should ignore an EXECUTE_COMPLETE of the same application with a foreign Application-UUID."""
    blocks = TranscriptBlocks(transcript(ASYNC_FULL))
    server, handler = serve(lambda s: s.playback("/srv/hotline-fs/media/hello-tone.wav"))
    peer = ScriptedPeer.dial(server.address)
    connect_call(peer, blocks)
    command = peer.expect("sendmsg")
    ours = blocks.frames_for(command)
    complete = ours[-1]
    peer.send(ours[0])                                              # +OK
    foreign = complete.replace(command.headers["Event-UUID"].encode(), b"00000000-0000-4000-8000-000000000000")
    peer.send(foreign.replace(b"FILE%20PLAYED", b"FILE%20LOSTXX"))  # same length, other response
    assert not handler.done.wait(0.2)
    peer.send(complete)
    assert handler.done.wait(5) and handler.error is None
    assert handler.result.response == "FILE PLAYED"


def test_caller_hangup_mid_playback_raises_callhangup(serve):
    """Should interrupt a playback wait with CallHangup when CHANNEL_HANGUP arrives, then close the socket."""
    blocks = TranscriptBlocks(transcript(ASYNC_FULL))
    server, handler = serve(lambda s: s.playback("/srv/hotline-fs/media/hello-tone.wav", timeout=30))
    peer = ScriptedPeer.dial(server.address)
    connect_call(peer, blocks)
    peer.expect("sendmsg")
    peer.reply("+OK")
    hangup_frames = blocks.block(lambda c: c.headers.get("call-command") == "hangup")
    peer.send(next(f for f in hangup_frames if b"Event-Name: CHANNEL_HANGUP\n" in f))
    assert handler.done.wait(5)
    assert isinstance(handler.error, CallHangup) and handler.error.cause == "NORMAL_CLEARING"
    assert peer.wait_closed()
    wait_until(lambda: server.active_calls == 0)


@pytest.mark.parametrize("breakage", ["mid-frame", "mid-command", "garbage", "disconnect-notice"])
def test_broken_peer_ends_the_call_cleanly(serve, breakage):
    """Should end the call with CallHangup on a socket closed mid-frame, garbage or a disconnect notice."""
    blocks = TranscriptBlocks(transcript(ASYNC_FULL))
    server, handler = serve(lambda s: s.playback("/srv/hotline-fs/media/hello-tone.wav", timeout=30))
    peer = ScriptedPeer.dial(server.address)
    connect_call(peer, blocks)
    command = peer.expect("sendmsg")
    frames = blocks.frames_for(command)
    if breakage == "mid-command":
        peer.close()                                               # no reply to the sendmsg at all
    else:
        peer.send(frames[0])
        if breakage == "mid-frame":
            peer.send(frames[1][: len(frames[1]) // 2])
            peer.close()
        elif breakage == "garbage":
            peer.send(b"\x00\xffnot an esl frame\n\n")
        else:
            peer.send(b"Content-Type: text/disconnect-notice\nContent-Disposition: disconnect\n"
                      b"Content-Length: 23\n\nDisconnected, goodbye.\n")
    assert handler.done.wait(5)
    assert isinstance(handler.error, CallHangup)
    wait_until(lambda: server.active_calls == 0)
    # the server still takes calls afterwards
    server.handler.script = lambda s: s.uuid
    peer2 = ScriptedPeer.dial(server.address)
    replay(peer2, TranscriptBlocks(transcript(ASYNC_FULL)))
    wait_until(lambda: server.calls_total == 2)


def test_unknown_and_undecodable_frames_are_skipped(serve):
    """Should report and skip frames of unknown type or with non-UTF-8 bodies and carry on with the call."""
    blocks = TranscriptBlocks(transcript(ASYNC_FULL))
    server, handler = serve(lambda s: s.playback("/srv/hotline-fs/media/hello-tone.wav"))
    peer = ScriptedPeer.dial(server.address)
    connect_call(peer, blocks)
    frames = blocks.frames_for(peer.expect("sendmsg"))
    peer.send(frames[0], b"Content-Type: text/x-unknown\nContent-Length: 3\n\nabc",
              b"Content-Type: text/event-plain\nContent-Length: 4\n\n\xb2\xe2\xca\xd4", *frames[1:])
    assert handler.done.wait(5) and handler.error is None
    assert handler.result.response == "FILE PLAYED"
    assert handler.sessions[0]._channel.defects == 2


def test_execute_and_reply_timeouts(serve):
    """Should raise SwitchTimeout when neither the completion nor (separately) the reply arrives."""
    blocks = TranscriptBlocks(transcript(ASYNC_FULL))
    outcomes = []

    def script(session):
        for call in (lambda: session.execute("playback", "x.wav", timeout=0.2),
                     lambda: session.api("status", timeout=0.2)):
            try:
                call()
            except SwitchTimeout as exc:
                outcomes.append(str(exc))

    server, handler = serve(script)
    peer = ScriptedPeer.dial(server.address)
    connect_call(peer, blocks)
    peer.expect("sendmsg")
    peer.reply("+OK")                   # the application never completes
    peer.expect("api status")           # and the api reply never comes
    assert handler.done.wait(5) and handler.error is None
    assert len(outcomes) == 2 and "did not complete" in outcomes[0] and "no reply" in outcomes[1]


def test_concurrent_calls_over_the_cap_are_rejected_politely(serve):
    """Should connect and hang up a call beyond max_calls with a congestion cause, keeping the first."""
    blocks = TranscriptBlocks(transcript(ASYNC_FULL))
    release = gevent.event.Event()
    server, handler = serve(lambda s: s.wait_for(release, timeout=10), max_calls=1)
    first = ScriptedPeer.dial(server.address)
    connect_call(first, blocks)
    wait_until(lambda: server.active_calls == 1)
    second = ScriptedPeer.dial(server.address)
    second.send(*blocks.frames_for(second.expect("connect")))
    hangup = second.expect("sendmsg")
    assert hangup.headers == {"call-command": "hangup", "hangup-cause": "NORMAL_CIRCUIT_CONGESTION"}
    second.reply("+OK")
    assert second.wait_closed()
    assert server.calls_rejected == 1 and server.active_calls == 1
    release.set()
    assert handler.done.wait(5) and handler.error is None


def test_refusal_beyond_the_refusals_in_flight_still_hangs_up(serve):
    """Should, with as many refusals waiting for the switch as allowed (max_rejecting, 0 here), still write
    connect and the congestion hang-up without waiting for a reply, then wait for the switch to close: a
    socket closed before `connect` leaves the caller parked in silence (the `socket` app in async mode parks
    the channel when its listener ends, mod_event_socket.c), which is what a saturated switch got."""
    release = gevent.event.Event()
    server, handler = serve(lambda s: s.wait_for(release, timeout=10), max_calls=1, max_rejecting=0)
    blocks = TranscriptBlocks(transcript(ASYNC_FULL))
    first = ScriptedPeer.dial(server.address)
    connect_call(first, blocks)
    wait_until(lambda: server.active_calls == 1)
    second = ScriptedPeer.dial(server.address)
    second.expect("connect")                       # never answered: the switch is too slow to reply
    hangup = second.expect("sendmsg")
    assert hangup.headers == {"call-command": "hangup", "hangup-cause": "NORMAL_CIRCUIT_CONGESTION"}
    with pytest.raises(AssertionError):              # still open: the switch closes it once it has read them
        second.wait_closed(timeout=0.3)
    second.close()
    wait_until(lambda: server.calls_rejected == 1)
    assert server.active_calls == 1
    release.set()
    assert handler.done.wait(5) and handler.error is None


def test_stop_drains_calls_in_progress(serve):
    """Should stop accepting at once and let the running call finish before stop() returns."""
    blocks = TranscriptBlocks(transcript(ASYNC_FULL))
    server, handler = serve(lambda s: s.playback("/srv/hotline-fs/media/hello-tone.wav"))
    peer = ScriptedPeer.dial(server.address)
    connect_call(peer, blocks)
    frames = blocks.frames_for(peer.expect("sendmsg"))
    stopper = gevent.spawn(server.stop, 10)
    wait_until(lambda: not server.accepting)
    gevent.sleep(0)
    with pytest.raises(OSError):
        socket.create_connection(server.address, timeout=2)
    assert not stopper.ready()
    peer.send(*frames)
    assert peer.expect("sendmsg").headers["call-command"] == "hangup"     # the handler returned
    peer.reply("+OK")
    assert stopper.get(timeout=5) == 0
    assert handler.error is None and handler.result.response == "FILE PLAYED"


def test_stop_cuts_calls_that_outlive_the_drain(serve):
    """Should cut a call still running after drain_timeout; its handler sees CallHangup."""
    blocks = TranscriptBlocks(transcript(ASYNC_FULL))
    server, handler = serve(lambda s: s.playback("/srv/hotline-fs/media/hello-tone.wav", timeout=60))
    peer = ScriptedPeer.dial(server.address)
    connect_call(peer, blocks)
    peer.expect("sendmsg")
    peer.reply("+OK")
    assert server.stop(drain_timeout=0.2) == 1
    assert isinstance(handler.error, CallHangup) and server.active_calls == 0


def test_handler_exception_closes_the_call(serve):
    """Should log a handler's exception, hang the call up and close the socket."""
    blocks = TranscriptBlocks(transcript(ASYNC_FULL))

    def script(session):
        raise RuntimeError("bug in the IVR")

    server, handler = serve(script)
    peer = ScriptedPeer.dial(server.address)
    connect_call(peer, blocks)
    hangup = peer.expect("sendmsg")
    assert hangup.headers.get("call-command") == "hangup"
    peer.reply("+OK")
    assert peer.wait_closed()
    wait_until(lambda: server.active_calls == 0)


def test_hostile_arguments_are_refused(serve):
    """Should refuse an argument that would inject a command, and spaces in a pagd prompt path."""
    blocks = TranscriptBlocks(transcript(ASYNC_FULL))
    errors = []

    def script(session):
        for call in (lambda: session.set("x\nhangup", "1"),
                     lambda: session.play_and_get_digits(1, 1, 1, 1000, "#", "a b.wav"),
                     lambda: session.hangup("NORMAL CLEARING\n\napi shutdown")):
            try:
                call()
            except ValueError as exc:
                errors.append(exc)

    server, handler = serve(script)
    peer = ScriptedPeer.dial(server.address)
    connect_call(peer, blocks)
    hangup = peer.expect("sendmsg")                   # the close-time hangup, nothing before it
    assert hangup.headers.get("call-command") == "hangup"
    peer.reply("+OK")
    assert handler.done.wait(5) and len(errors) == 3


def test_silent_peer_is_dropped_after_the_reply_timeout(serve):
    """Should give up on a peer that never answers `connect`, without running the handler."""
    server, handler = serve(lambda s: None, reply_timeout=0.2)
    peer = ScriptedPeer.dial(server.address)
    peer.expect("connect")
    assert peer.wait_closed()
    wait_until(lambda: server.active_calls == 0)
    assert not handler.done.is_set() and server.calls_total == 0


def test_call_lost_during_set_up_is_handed_on(serve):
    """Should hand a call whose set-up failed after its channel data (no reply to `myevents`) to
    on_setup_lost with the session naming it, without running the handler; a peer silent from the start is
    not handed on (nothing names its call)."""
    blocks = TranscriptBlocks(transcript(ASYNC_FULL))
    lost = []
    server, handler = serve(lambda s: None, reply_timeout=0.2,
                            on_setup_lost=lambda session, exc: lost.append((session.uuid, session.caller, exc)))
    peer = ScriptedPeer.dial(server.address)
    peer.send(*blocks.frames_for(peer.expect("connect")))
    peer.expect("myevents")                       # and the switch says nothing more
    wait_until(lambda: lost)
    [(uuid, caller, exc)] = lost
    assert uuid == "4912fe94-2272-4959-94d6-a442bda1eb6c" and caller == "5552000"
    assert isinstance(exc, SwitchTimeout) and "myevents" in str(exc)
    silent = ScriptedPeer.dial(server.address)
    silent.expect("connect")
    assert silent.wait_closed()
    wait_until(lambda: server.active_calls == 0)
    assert len(lost) == 1 and not handler.done.is_set() and server.calls_total == 0
