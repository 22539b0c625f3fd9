"""record() must not report a terminator key left on the channel by an earlier record or playback."""
from __future__ import annotations

import gevent.event
import pytest

from switch.outbound import OutboundServer
from tests.fakeswitch import Press, Speak


@pytest.fixture
def serve():
    servers = []

    def start(script):
        done, results = gevent.event.Event(), []

        def handler(session):
            try:
                results.append(script(session))
            finally:
                done.set()

        server = OutboundServer("127.0.0.1", 0, handler)
        server.start()
        servers.append(server)
        return server, done, results

    yield start
    for server in servers:
        server.stop(drain_timeout=2)


def test_second_record_ended_by_silence_reports_no_terminator(serve, fake_call, fakeswitch):
    """Should unset playback_terminator_used after a record ended by # so a silent record reports no key."""
    def script(session):
        path = str(fakeswitch.record_dir / "t.wav")
        first = session.record(path, 5, 200, 1)
        second = session.record(path, 5, 200, 1)
        return first.terminator, second.terminator

    server, done, results = serve(script)
    call = fake_call(server.address, script=[Speak(1), Press("#"), Speak(1)])
    call.wait_ended(timeout=15)
    assert done.wait(5)
    assert results == [("#", "")]
    apps = [(app, arg) for app, arg in call.executed if app in ("record", "unset")]
    assert [a for a, _ in apps] == ["record", "unset", "record"]
    assert apps[1] == ("unset", "playback_terminator_used")


def test_record_without_earlier_terminator_sends_no_unset(serve, fake_call, fakeswitch):
    """Should not spend a round trip on unset when no terminator was left on the channel."""
    def script(session):
        return session.record(str(fakeswitch.record_dir / "u.wav"), 5, 200, 1).terminator

    server, done, results = serve(script)
    call = fake_call(server.address, script=[Speak(1)])
    call.wait_ended(timeout=15)
    assert done.wait(5) and results == [""]
    assert "unset" not in [app for app, _ in call.executed]
