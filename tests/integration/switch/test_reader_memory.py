"""What a call's reader holds (issue 15 item 11): the readers of one thread share one receive buffer, and a
reader waiting for its next read keeps nothing of the last one."""
from __future__ import annotations

import gevent
import gevent.event

from switch.codec import Frame, FrameParser

from .peer import ScriptedPeer, TranscriptBlocks, transcript
from .test_outbound import ASYNC_FULL, connect_call, wait_until

UUID = b"4912fe94-2272-4959-94d6-a442bda1eb6c"
OTHER = b"0000fe94-2272-4959-94d6-a442bda1eb6c"


def test_calls_read_in_pieces_at_once_each_get_their_own_bytes(serve, monkeypatch):
    """Should give each call its own channel data when two calls' frames arrive cut into pieces, one
    call's piece after the other's: the shared buffer carries nothing from one reader to the next."""
    blocks = TranscriptBlocks(transcript(ASYNC_FULL))
    fed, real_feed = [0], FrameParser.feed

    def counted_feed(parser, data):
        fed[0] += len(data)
        return real_feed(parser, data)

    monkeypatch.setattr(FrameParser, "feed", counted_feed)  # what the readers have read, all told
    release = gevent.event.Event()
    server, handler = serve(lambda session: (release.wait(5), (session.uuid, session.caller))[1])
    first, second = ScriptedPeer.dial(server.address), ScriptedPeer.dial(server.address)
    replies = []
    for peer, uuid in ((first, UUID), (second, OTHER)):
        command = peer.expect("connect")
        replies.append(b"".join(f.replace(UUID, uuid) for f in blocks.frames_for(command)))
    step, sent = 97, fed[0]
    for start in range(0, max(map(len, replies)), step):
        for peer, reply in zip((first, second), replies):
            if reply[start:start + step]:
                peer.send(reply[start:start + step])
                sent += len(reply[start:start + step])
                # Each piece read before the next is sent: one reader's read, then the other's.
                wait_until(lambda: fed[0] == sent)
    for peer in (first, second):
        for prefix in ("myevents", "event plain", "linger"):
            peer.send(*blocks.frames_for(peer.expect(prefix)))
    wait_until(lambda: len(handler.sessions) == 2)
    release.set()
    wait_until(lambda: len(handler.results) == 2)
    assert sorted(handler.results) == sorted([(UUID.decode(), "5552000"), (OTHER.decode(), "5552000")])
    assert all(session.channel_data["variable_uuid"] == session.uuid for session in handler.sessions)
    for peer in (first, second):
        peer.close()


def waits_in_its_read(reader) -> bool:
    """True while the reader greenlet waits in its socket's recv_into (not handling what it read)."""
    frame = reader.gr_frame
    while frame is not None:
        if frame.f_code.co_name == "recv_into":
            return True
        frame = frame.f_back
    return False


def test_a_waiting_reader_keeps_no_frame_or_bytes_of_its_last_read(serve):
    """Should hold neither the last frame nor the bytes received in the reader's frames while it waits."""
    blocks = TranscriptBlocks(transcript(ASYNC_FULL))
    waiting = gevent.event.Event()
    server, handler = serve(lambda session: (waiting.set(), session.wait_hangup(5)))
    peer = ScriptedPeer.dial(server.address)
    connect_call(peer, blocks)
    assert waiting.wait(5)
    session = handler.sessions[0]
    reader = session._channel._reader
    wait_until(lambda: waits_in_its_read(reader))
    frame = reader.gr_frame
    held = []
    while frame is not None:
        held += [value for value in frame.f_locals.values()
                 if isinstance(value, Frame) or isinstance(value, (bytes, bytearray)) and len(value) > 64]
        frame = frame.f_back
    assert held == []
    peer.close()
    wait_until(lambda: server.active_calls == 0)
