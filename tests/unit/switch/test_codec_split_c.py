"""switch/_esl_split.c (switch.codec's C header-block split) against the pure-Python split it accelerates:
the same dict or the same None for every block, the same frames or the same error for every stream: seeded
random blocks, every frame of the recorded transcripts, every prefix and seeded mutations of real blocks, and
malformed input (truncated lines, no ": ", bad escapes, non-UTF-8, huge blocks, NUL bytes). Skipped where
make setup could not build the module."""
from __future__ import annotations

import random
from contextlib import contextmanager

import pytest

from switch import codec
from switch.codec import FrameParser
from switch.errors import ProtocolError
from switch.transcript import load_transcript, server_stream

from .conftest import TRANSCRIPTS, transcript_params
from .test_codec_decode import _outcome, _random_block, _regular_block

split_c = codec._ACCELERATOR
python_split = codec._split_regular_block
pytestmark = pytest.mark.skipif(split_c is None, reason="switch._esl_split is not built (make setup)")


@contextmanager
def split_in_use(accelerated: bool):
    codec.use_accelerator(accelerated)
    try:
        yield
    finally:
        codec.use_accelerator(True)


def _frame_facts(frame) -> tuple:
    return frame.headers, frame.content_type, frame.body, frame.event, frame.event_body, frame.defects


def _stream_outcome(stream: bytes, chunk: int, accelerated: bool) -> tuple:
    """Every frame's facts, and the error that ended the stream (or None), with one split in use."""
    with split_in_use(accelerated):
        parser, facts = FrameParser(), []
        try:
            for i in range(0, len(stream), chunk):
                facts += [_frame_facts(f) for f in parser.feed(stream[i:i + chunk])]
            parser.close()
        except ProtocolError as error:
            return facts, str(error)
        return facts, None


def _block_outcome(block: bytes, accelerated: bool) -> tuple:
    with split_in_use(accelerated):
        return _outcome(codec._decode_header_block, block)


def assert_same_split(block: bytes) -> None:
    """The C split and the Python one agree on ``block`` (as bytes and as a bytearray), and so do the
    header decodings that use them (headers or error)."""
    expected = python_split(block)
    assert split_c(block) == expected, block[:200]
    assert split_c(bytearray(block)) == expected, block[:200]
    assert _block_outcome(block, True) == _block_outcome(block, False), block[:200]


def _real_blocks() -> list[bytes]:
    """Every outer header block and every event-plain header block of the transcripts."""
    blocks = []
    for path in TRANSCRIPTS:
        for line in load_transcript(path):
            if line.direction != "S->C":
                continue
            head, _, body = line.data.partition(b"\n\n")
            blocks.append(head)
            if b"Content-Type: text/event-plain" in head:
                blocks.append(body.partition(b"\n\n")[0])
    return blocks


@pytest.mark.parametrize("seed", range(10))
def test_same_split_on_seeded_random_blocks(seed):
    """Should split 1,000 random blocks a seed (the decoding tests' generators: escapes good and bad, GBK,
    NUL, CR, '=', lines without a name or separator) exactly as the Python split does."""
    rng = random.Random(seed)
    for i in range(500):
        assert_same_split(_random_block(rng))
        assert_same_split(_regular_block(rng, 0.0 if i % 2 else 0.2))


@pytest.mark.parametrize("path", transcript_params())
@pytest.mark.parametrize("chunk", [1448, 1 << 20])
def test_same_frames_on_every_recorded_stream(path, chunk):
    """Should read every frame of each real transcript into the same headers, body, event and defects."""
    stream = server_stream(load_transcript(path))
    c_outcome = _stream_outcome(stream, chunk, True)
    assert c_outcome[1] is None and c_outcome[0]
    assert c_outcome == _stream_outcome(stream, chunk, False)


def test_real_blocks_take_the_c_split():
    """Should split every real header block with the C split (FreeSWITCH writes them regular) but the few
    the Python split also leaves to the general path, identically."""
    blocks = _real_blocks()
    assert blocks
    taken = 0
    for block in blocks:
        assert_same_split(block)
        taken += split_c(block) is not None
    assert taken >= 0.9 * len(blocks)


def test_every_prefix_of_real_blocks():
    """Should agree on every truncation of real blocks (a line cut anywhere: in a name, before ": ", inside
    an escape)."""
    blocks = _real_blocks()
    for block in [b for b in blocks if b"%" in b and len(b) < 3000][:10]:
        for end in range(len(block) + 1):
            assert_same_split(block[:end])
    largest = max(blocks, key=len)
    for end in range(0, len(largest) + 1, 13):
        assert_same_split(largest[:end])


def test_seeded_mutations_of_real_blocks():
    """Should agree on 20,000 real blocks with one to three bytes replaced, inserted or deleted (bytes that matter
    to the split: separators, escapes, NUL, CR, '=', non-ASCII and non-UTF-8)."""
    rng = random.Random(8)
    blocks = _real_blocks()
    alphabet = b": \n%=\r\x00\xff\xe4\xb8\xad0aAgG\t\\x"
    for _ in range(20000):
        block = bytearray(rng.choice(blocks))
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(block) + 1)
            action = rng.randrange(3)
            if action == 0 and at < len(block):
                block[at] = rng.choice(alphabet)
            elif action == 1:
                block[at:at] = bytes([rng.choice(alphabet)])
            else:
                del block[at:at + 1]
        assert_same_split(bytes(block))


@pytest.mark.parametrize("block", [
    b"", b"\n", b"A: 1\n", b"A: 1\n\n", b"A", b"A:", b"A: ", b": 1", b"A:1", b"A 1", b"A : 1", b"A:  1",
    b"A: 1\nB", b"A: 1\n: 2", b"A: 1: 2", b"A: x%", b"A: x%4", b"A: x%4G", b"A: x%G4", b"A: %%41", b"A: %00",
    b"A: %0", b"A: %0A", b"A: %0d%0A", b"A%41: 1", b"A%3A%20B: 1", b"A: x\x00y", b"A\x00: 1", b"\x00",
    b"A: \xff", b"A: \xe4\xb8\xad", b"A\xe4: 1", b"A: %FF%FE", b"A: %E4%B8", b"A: %E4%B8%AD", b"A: %ED%A0%80",
    b"A: %C0%80", b"A: %F4%90%80%80", b"A: x=41", b"A=1: 2", b"A: x\r", b"A\r: 1", b"A\t: 1", b"A: \t",
    b"A: 1\nA: 2", b"A: 1\nB: 2\nA: 3", b"A: %20\nB: %3A%20", b"A: " + b"%41" * 100_000,
    b"K: v\n" * 4095 + b"K: last", b"K: v\n" * 4096 + b"K: over",
    b"A: " + b"x" * (1 << 20), b"\n".join(b"H%d: %%E4%%B8%%AD%d" % (i, i) for i in range(5000)),
])
def test_same_outcome_on_malformed_and_edge_blocks(block):
    """Should give the same dict or None, and the same headers or error once decoded, for each edge block."""
    assert_same_split(block)


@pytest.mark.parametrize("stream", [
    b"Content-Type: command/reply\nReply-Text: +OK \xff\xfe\n\n",                       # non-UTF-8 headers
    b"Content-Type: command/reply\nReply-Text\n\n",                                    # no ": "
    b"Content-Type: command/reply\nReply-Text: %E4%B8\nX: %zz\n\n",                    # bad escapes
    b"Content-Type: command/reply\nReply-Text: +OK\x00\n\n",                           # NUL
    b"Content-Type: command/reply\nReply-Text: +OK\nX-Filler: " + b"a" * 2_000_000 + b"\n\n",   # over the cap
    b"Content-Type: command/reply\nReply-Text: +OK\nContent-Length: 1\n",                # truncated
    b"Content-Type: api/response\nContent-Length: 5\n\n+OK\n\nXYZ: 1\n\n",              # too short a length
    b"Content-Length: 40\nContent-Type: text/event-plain\n\nEvent-Name: X\nA: %00\nB: %0A\n\n",
    b"Content-Length: 23\nContent-Type: text/event-plain\n\nEvent-Name: X\nA%41: 1\n\n",
    b"Content-Length: 26\nContent-Type: text/event-plain\n\nEvent-Name: X\nA: x\xffy\n\n",
    b"Content-Length: 34\nContent-Type: text/event-plain\n\nEvent-Name: X\nContent-Length: 9\n\n",
    bytes(range(256)) + b"\n\n",
])
def test_same_frames_or_error_on_bad_streams(stream):
    """Should give the same frames, defects and ProtocolError for bad streams with either split."""
    # byte by byte only for the small ones: the parser searches its whole buffer again at every feed
    for chunk in (1448, 1 << 22) if len(stream) > 4096 else (1, 1448):
        assert _stream_outcome(stream, chunk, True) == _stream_outcome(stream, chunk, False)


def test_argument_types():
    """Should take any bytes-like block (the parser passes bytes and bytearray slices) and refuse anything
    else with TypeError, never read it."""
    assert split_c(memoryview(b"A: %41")) == python_split(b"A: %41") == {"A": "A"}
    for bad in ("A: 1", None, 5):
        with pytest.raises(TypeError):
            split_c(bad)
