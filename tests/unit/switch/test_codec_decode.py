"""switch.codec's header decoding (escape_decode over the whole block, issue 15 item 8) against the urllib
unquote decoding it replaced: the same headers, or the same error, for random blocks built from the cases
that matter (a % not followed by two hex digits, GBK and UTF-8 escapes, raw Chinese, %0A and raw or encoded
NUL, backslashes, lines without a name or a separator). Seeded, so a failure names its input and repeats."""
from __future__ import annotations

import random
from urllib.parse import unquote

import pytest

from switch import codec
from switch.errors import ProtocolError

# every test twice: the pure-Python header-block split and the C one (conftest.codec_split)
pytestmark = pytest.mark.usefixtures("codec_split")

# Pieces of a value: plain text, escapes good and bad, separators inside values, what escape_decode would
# read as escapes of its own if the backslashes were not doubled.
_VALUE_PIECES = [
    "abc", "12345", " ", ":", ": ", "%", "%4", "%4G", "%G4", "%41", "%7e", "%20", "%25", "%%", "%%41", "%3A%20",
    "%E4%B8%AD", "%e5%9b%bd", "%E4%B8", "%B8%AD", "%F0%9F%98%80", "%ED%A0%80", "%D5%C5%C8%FD", "%D6%D0",
    "%0A", "%0a", "%0D", "%00", "\x00", "中", "张三", "\\", "\\x41", "\\n", "%5C", "%5Cx41", "\\%41", "%\\",
    "\t", "%FF", "%C0%80", "+",
]
_KEYS = ["Event-Name", "Caller-Caller-ID-Name", "variable_x", "Unique-ID", "Key With Space", "K%41", "中"]
_BAD_LINES = ["", "Key:", ": value", "no separator", "Key:value", "%0A: x"]


def _reference_decode(block: bytes, what: str) -> dict[str, str]:
    """The decoding before escape_decode (switch/codec.py at e4f22fb): unquote over the whole block."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{what} is not UTF-8 (byte {exc.start}: {bytes(block[exc.start:exc.start + 4])!r})") from None
    decoded = text
    newline = False
    if "%" in text:
        if "%0A" in text or "%0a" in text:
            if "\x00" in text or "%00" in text:
                return codec._decode_header_lines(text, what)
            decoded = text.replace("%0A", "\x00").replace("%0a", "\x00")
            newline = True
        decoded = unquote(decoded, errors="replace")
    parts = [line.partition(": ") for line in decoded.split("\n")]
    for key, sep, _ in parts:
        if not sep or not key:
            return codec._decode_header_lines(text, what)
    if newline:
        return {key: value.replace("\x00", "\n") if "\x00" in value else value for key, _, value in parts}
    return {key: value for key, _, value in parts}


def _outcome(decode, block: bytes):
    try:
        return "headers", decode(block, "event")
    except ProtocolError as error:
        return "error", str(error)


def _random_value(rng: random.Random) -> str:
    return "".join(rng.choice(_VALUE_PIECES) for _ in range(rng.randrange(0, 6)))


def _random_block(rng: random.Random) -> bytes:
    lines = []
    for _ in range(rng.randrange(1, 8)):
        if rng.random() < 0.08:
            lines.append(rng.choice(_BAD_LINES))
        else:
            lines.append(f"{rng.choice(_KEYS)}: {_random_value(rng)}")
    return "\n".join(lines).encode("utf-8")


@pytest.mark.parametrize("seed", range(20))
def test_decoding_equals_unquote_on_random_blocks(seed):
    """Should give the same headers (or the same ProtocolError) as the unquote decoding for 500 random
    blocks a seed."""
    rng = random.Random(seed)
    for _ in range(500):
        block = _random_block(rng)
        assert _outcome(codec._decode_header_block, block) == _outcome(_reference_decode, block), block


@pytest.mark.parametrize("value", [
    "%", "%4", "%4G", "100%", "%%", "%E4%B8%AD", "%D5%C5%C8%FD", "%E4%B8中", "%B8中%AD", "x%0Ay", "%0a%0A",
    "a%00b", "a\x00b%0Ab", "\\x41%41", "%5Cx41", "%\\", "\\", "%F0%9F%98", "%FF%FE", "%ED%A0%80",
])
def test_edge_values_decode_as_unquote_does(value):
    """Should decode each edge value, alone and between two plain headers, exactly as the unquote decoding."""
    for block in (f"Event-Name: X\nValue: {value}".encode(), f"Value: {value}\nEvent-Name: X".encode()):
        assert _outcome(codec._decode_header_block, block) == _outcome(_reference_decode, block), block


def test_unquote_helper_equals_unquote_on_random_bytes():
    """Should URL-decode any UTF-8 text with escapes as unquote(errors="replace") does: 20,000 random strings
    over % , hex digits, backslashes, x, NUL, newline and non-ASCII characters."""
    rng = random.Random(15)
    alphabet = "%%%%0123456789abcdefABCDEFgG\\x\x00\n 中ä€"
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        assert codec._unquote(text.encode("utf-8")) == unquote(text, errors="replace"), text


def test_an_encoded_newline_stays_in_its_value_among_many():
    """Should put every %0A back as a newline in its own value only, the other values untouched."""
    block = b"A: 1%0A2\nB: plain\nC: x%0a\nD: %0A%0A\nE: %E4%B8%AD"
    assert codec._decode_header_block(block, "event") == {"A": "1\n2", "B": "plain", "C": "x\n", "D": "\n\n",
                                                           "E": "中"}


# Blocks shaped as FreeSWITCH writes them (values URL-encoded), which switch.codec splits by whole-block
# operations (_split_regular_block), mixed with what must send a block back to the line-by-line path: a
# name with an escape, a raw "=", CR, NUL or ": " in a value, bad escapes, encoded NUL and newline.
_ENCODED_PIECES = [
    "abc", "12345", "Fri,", "-_.", "%20", "%3A", "%3a%20", "%3D", "%25", "%0A", "%0a", "%0D", "%E4%B8%AD",
    "%e5%9b%bd", "%D5%C5%C8%FD", "%E4%B8", "%FF", "%5C", "%5Cx41", "%22", "%40", "%2B", "%7E",
]
_IRREGULAR_PIECES = ["%", "%4", "%G4", "%%41", "=", "=41", "\r", "\\", "\\x41", "%00", "\x00", ":", " ", ": "]
_REGULAR_KEYS = ["Event-Name", "Caller-Caller-ID-Name", "variable_sip_h_X-ACD-Queue", "Unique-ID", "a"]
_IRREGULAR_KEYS = ["K%41", "K%3A%20x", "%0A", "", "Key With Space", "K=1", "K:x"]


def _regular_block(rng: random.Random, irregular: float) -> bytes:
    lines = []
    for _ in range(rng.randrange(1, 12)):
        key = rng.choice(_IRREGULAR_KEYS if rng.random() < irregular else _REGULAR_KEYS)
        pieces = [rng.choice(_IRREGULAR_PIECES if rng.random() < irregular else _ENCODED_PIECES)
                  for _ in range(rng.randrange(0, 5))]
        lines.append(f"{key}: {''.join(pieces)}")
        if rng.random() < irregular / 4:
            lines.append(rng.choice(_BAD_LINES))
    return "\n".join(lines).encode("utf-8")


@pytest.mark.parametrize("seed", range(10))
def test_whole_block_split_equals_unquote_on_freeswitch_shaped_blocks(seed):
    """Should give the unquote decoding's headers (or its error) for 500 blocks a seed shaped as FreeSWITCH
    writes them, a few with one irregular piece; every clean one through the whole-block split."""
    rng = random.Random(1000 + seed)
    taken = 0
    for i in range(500):
        irregular = 0.0 if i % 2 == 0 else 0.15
        block = _regular_block(rng, irregular)
        assert _outcome(codec._decode_header_block, block) == _outcome(_reference_decode, block), block
        fast = codec._split_block(block)
        if fast is not None:
            taken += 1
            assert fast == _reference_decode(block, "event"), block
        elif irregular == 0.0:
            pytest.fail(f"a clean FreeSWITCH-shaped block took the line-by-line path: {block!r}")
    assert taken >= 250


@pytest.mark.parametrize("block", [
    b"A: 1\nB:x y", b"A: 1\nB x: y", b"A: 1\nB", b"A: 1\n: y", b"A: 1\n\nB: 2", b"A: x%0\nB: 2", b"A: x%\nB: 2",
    b"A: x=41\nB: 2", b"A: x\r\nB: 2", b"K%3A%20x: v", b"A: 1: 2", b"A: 1 2", b"A: %00", b"A: x\x00y",
])
def test_irregular_blocks_leave_the_whole_block_split(block):
    """Should refuse the whole-block split for each irregular block (the line-by-line path decides)."""
    assert codec._split_block(block) is None
    assert _outcome(codec._decode_header_block, block) == _outcome(_reference_decode, block)
