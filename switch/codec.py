"""ESL wire codec: bytes from the event socket -> Frame objects, and commands -> bytes.

Why our own codec instead of greenswitch's reader: greenswitch reads a header block line by line with
readline() (unbounded), decodes every body as UTF-8 and raises on the first bad byte inside its reader
greenlet, URL-decodes the *whole* event text before splitting it (so a value containing %0A forges a new
header line), ignores the inner Content-Length of events with bodies (BACKGROUND_JOB, sendevent) and has
no notion of a cap.  This parser is incremental (feed whatever recv() returned), counts every length in
bytes, caps header blocks and bodies, and either raises ProtocolError (framing can no longer be trusted)
or marks a well-framed frame with a defect (the stream stays usable).

Framing (seen in /work/shared/esl): header lines "Key: value", a blank line (LF only), then exactly
Content-Length body bytes with no terminator.  text/event-plain bodies are themselves a header block with
URL-encoded values, optionally followed by an inner Content-Length and body; text/event-json bodies are a
JSON object whose "_body" holds the event body.

A header block's split into its dict, the hot part, is done by switch/_esl_split.c where `make setup` built it
(greenswitch and pure Python fall short of issue 15 item 8); _split_regular_block stays reference and fallback.
"""
from __future__ import annotations

import json
from binascii import a2b_qp
from codecs import escape_decode
from operator import itemgetter
from typing import Iterable, Mapping
from urllib.parse import unquote

from switch.errors import ProtocolError

AUTH_REQUEST = "auth/request"
COMMAND_REPLY = "command/reply"
API_RESPONSE = "api/response"
EVENT_PLAIN = "text/event-plain"
EVENT_JSON = "text/event-json"
EVENT_XML = "text/event-xml"
DISCONNECT_NOTICE = "text/disconnect-notice"
RUDE_REJECTION = "text/rude-rejection"
LOG_DATA = "log/data"

KNOWN_CONTENT_TYPES = frozenset(
    {AUTH_REQUEST, COMMAND_REPLY, API_RESPONSE, EVENT_PLAIN, EVENT_JSON, EVENT_XML, DISCONNECT_NOTICE,
     RUDE_REJECTION, LOG_DATA}
)

DEFAULT_MAX_HEADER_BYTES = 1 << 20   # a connect reply of a SIP channel is ~10 KB; 1 MiB is generous
DEFAULT_MAX_BODY_BYTES = 16 << 20    # `show channels` with thousands of calls stays well below this


class Frame:
    """One ESL frame: outer headers (URL-decoded), body text, and for events the parsed event.

    ``event`` is the dict of event headers for text/event-plain and text/event-json frames (None
    otherwise or when the event body was malformed); ``event_body`` the event's own body (the inner
    Content-Length part, or JSON ``_body``).  ``defects`` lists what was wrong with a frame whose framing
    was still sound (non-UTF-8 body, malformed event, unknown content type); such frames are reported by
    the connection and otherwise ignored.  A parser in lazy mode leaves events unparsed until one of
    these is read; ``event_name`` then only peeks at the Event-Name line.
    """

    __slots__ = ("headers", "_body", "_raw", "content_type", "_event", "_event_body", "_defects", "_pending")

    def __init__(self, headers: dict[str, str], body: str | None = "", content_type: str | None = None,
                 event: dict[str, str] | None = None, event_body: str = "", defects: tuple[str, ...] = (),
                 raw: bytes = b"", pending: bool = False):
        self.headers = headers
        self._body = body
        self._raw = raw
        self.content_type = content_type if content_type is not None else headers.get("Content-Type", "")
        self._event = event
        self._event_body = event_body
        self._defects = defects
        self._pending = pending

    def _parse_event(self) -> None:
        self._pending = False
        try:
            self._event, self._event_body = parse_event_body(self.content_type, self._raw)
        except ProtocolError as exc:
            self._event, self._defects = None, (str(exc),)

    @property
    def event(self) -> dict[str, str] | None:
        """The event's headers (text/event-plain|json), None for other frames or a malformed event."""
        if self._pending:
            self._parse_event()
        return self._event

    @property
    def event_body(self) -> str:
        """The event's own body ("" when it has none)."""
        if self._pending:
            self._parse_event()
        return self._event_body

    @property
    def defects(self) -> tuple[str, ...]:
        """What was wrong with this well-framed frame (empty when nothing)."""
        if self._pending:
            self._parse_event()
        return self._defects

    @property
    def body(self) -> str:
        """The frame body as text (for events, the serialised event; decoded on first use)."""
        if self._body is None:
            self._body = self._raw.decode("utf-8", "replace")
        return self._body

    @property
    def reply_text(self) -> str:
        """Reply-Text of a command/reply, stripped of the trailing newline the connect reply carries."""
        return self.headers.get("Reply-Text", "").strip()

    @property
    def ok(self) -> bool:
        """True for a command/reply that starts with +OK (api/response: a body not starting with -ERR)."""
        if self.content_type == API_RESPONSE:
            return not self.body.startswith("-ERR")
        return self.reply_text.startswith("+OK")

    @property
    def event_name(self) -> str:
        """Event-Name of an event frame ("" for non-events); an unparsed event is only peeked at."""
        if self._pending:
            raw = self._raw
            if self.content_type == EVENT_PLAIN:
                # FreeSWITCH writes Event-Name first; anything else (a variable_Event-Name) gets parsed
                if raw.startswith(b"Event-Name: "):
                    end = raw.find(b"\n", 12)
                    name = raw[12:end if end >= 0 else len(raw)]
                    if name.isalnum() or name.replace(b"_", b"").isalnum():
                        return name.decode("ascii")
            elif self.content_type == EVENT_JSON:
                start = raw.find(b'"Event-Name":"')
                if start >= 0:
                    end = raw.find(b'"', start + 14)
                    name = raw[start + 14:end]
                    if end > 0 and name.replace(b"_", b"").isalnum():
                        return name.decode("ascii")
        event = self.event
        return event.get("Event-Name", "") if event is not None else ""

    @property
    def is_event(self) -> bool:
        """True when this frame carries a (well-formed) event."""
        return self.event is not None

    def __repr__(self) -> str:
        extra = f" {self.event_name}" if self.content_type in (EVENT_PLAIN, EVENT_JSON) else ""
        return f"<Frame {self.content_type}{extra} headers={len(self.headers)} body={len(self.body)}>"


_separator = itemgetter(1)  # of a str.partition: "" when the line had no ": "


def _unquote(data: bytes) -> str:
    """URL-decode ``data`` (valid UTF-8) exactly as ``unquote(text, errors="replace")`` does, in C: every %XX
    becomes the escape \\xXX that codecs.escape_decode turns into its byte (backslashes of the text doubled
    first, so only ours are escapes), then one UTF-8 decode. A % not followed by two hex digits, which
    unquote leaves as it is, makes escape_decode refuse: unquote does that block (urllib's unquote splits the
    text with a regex and converts each run of escapes through bytes: most of a full event parse's time)."""
    try:
        return escape_decode(data.replace(b"\\", b"\\\\").replace(b"%", b"\\x"))[0].decode("utf-8", "replace")
    except ValueError:
        return unquote(data.decode("utf-8"), errors="replace")


# A block as FreeSWITCH writes it (every value URL-encoded: no raw space, colon, newline, "=" or CR in one) is
# split by a few whole-block C operations instead of a partition a line. Its "shape" (the block with every
# byte but ": \n%=\r" deleted, then the %s) must be ": \n" repeated, with no % before a line's colon (the
# general path decodes a name before splitting). Each separator then becomes a NUL and each % an "=", so
# that binascii.a2b_qp decodes the escapes in one pass (an encoded newline stays in its value); a % without
# two hex digits shows in the length, and one split gives name, "" and value for every line.
_NOT_SHAPE = bytes(c for c in range(256) if c not in b": \n%=\r")
_SHAPES = b": \n" * 4096                 # a block of more lines takes the general path
_SEPARATORS_TO_NUL = bytes.maketrans(b": \n%", b"\0\0\0=")


def _split_regular_block(block: bytes | bytearray) -> dict[str, str] | None:
    """The headers of a regular ASCII block exactly as the general path would give them, or None when the
    block is not regular (non-ASCII, a line without ": " or with a raw one in its value, a %XX in a name,
    a % without two hex digits, a NUL raw or encoded, an empty name): the general path then decodes it,
    or says what is wrong."""
    if not block.isascii():
        return None
    shape = block.translate(None, _NOT_SHAPE)
    escapes = 0
    if b"%" in shape:
        if b"%:" in shape:
            return None
        size = len(shape)
        shape = shape.replace(b"%", b"")
        escapes = size - len(shape)
    if len(shape) % 3 != 2 or not _SHAPES.startswith(shape):
        return None
    data = block.translate(_SEPARATORS_TO_NUL)
    if escapes:
        decoded = a2b_qp(data)
        # "=XX" shrinks by 2; a bad one ("=", "=4", "==", "=G1") by less
        if len(decoded) != len(data) - 2 * escapes:
            return None
        text = decoded.decode("utf-8", "replace")
    else:
        text = data.decode("ascii")
    tokens = text.split("\0")
    # more tokens: a NUL of the block's own, raw or encoded; a non-empty middle one: "Key:x y"
    if len(tokens) != len(shape) + 1 or any(tokens[1::3]):
        return None
    headers = dict(zip(tokens[0::3], tokens[2::3]))
    return None if "" in headers else headers


try:    # the same function in C, when make setup could build it
    from switch._esl_split import split_block as _ACCELERATOR
except ImportError:
    _ACCELERATOR = None
_split_block = _ACCELERATOR or _split_regular_block


def implementation() -> str:
    """Which header-block split this process uses, for the start log line and the benchmark."""
    if _split_block is _split_regular_block:
        return "pure Python" + ("" if _ACCELERATOR else " (switch._esl_split not built: make setup)")
    return "C accelerator switch._esl_split"


def use_accelerator(on: bool) -> bool:
    """Use the C split (when built) or the pure-Python one; returns whether the C one is now in use. For the
    tests and the benchmark, which run both."""
    global _split_block
    _split_block = _ACCELERATOR if on and _ACCELERATOR else _split_regular_block
    return _split_block is not _split_regular_block


def _decode_header_block(block: bytes | bytearray, what: str) -> dict[str, str]:
    """Parse "Key: value" lines; values URL-decoded. Raises ProtocolError on a malformed line."""
    headers = _split_block(block)
    if headers is not None:
        return headers
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{what} is not UTF-8 (byte {exc.start}: {bytes(block[exc.start:exc.start + 4])!r})") from None
    decoded = text
    newline = False
    if "%" in text:
        data = bytes(block)
        if b"%0A" in data or b"%0a" in data:
            # a value holds an encoded newline: decoding it before splitting would forge a header line.
            # Park it as NUL while decoding (when the block has no NUL of its own, raw or encoded).
            if b"\x00" in data or b"%00" in data:
                return _decode_header_lines(text, what)
            data = data.replace(b"%0A", b"\x00").replace(b"%0a", b"\x00")
            newline = True
        # keys are never encoded, so one pass over the whole block is safe (several times faster than
        # decoding value by value); escapes that are not UTF-8 (a GBK caller name) become U+FFFD
        decoded = _unquote(data)
    parts = [line.partition(": ") for line in decoded.split("\n")]
    if not all(map(_separator, parts)):
        return _decode_header_lines(text, what)      # reports the bad line, or accepts "Key:"
    headers = {key: value for key, _, value in parts}
    if "" in headers:
        return _decode_header_lines(text, what)      # ": value": a line without a name
    if newline:
        # the values that held %0A: the lines of the parked NULs (a few), not every value
        at = decoded.find("\x00")
        while at >= 0:
            start = decoded.rfind("\n", 0, at) + 1
            key = decoded[start:decoded.index(": ", start)]
            headers[key] = headers[key].replace("\x00", "\n")
            end = decoded.find("\n", at)
            at = decoded.find("\x00", end) if end >= 0 else -1
    return headers


def _decode_header_lines(text: str, what: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in text.split("\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            if line.endswith(":"):          # "Key:" with an empty value
                key, value = line[:-1], ""
            else:
                raise ProtocolError(f"{what}: malformed header line {line[:80]!r}")
        if not key or any(c.isspace() for c in key):
            raise ProtocolError(f"{what}: malformed header name in {line[:80]!r}")
        # non-UTF-8 escapes (a GBK caller name) become U+FFFD rather than losing the whole event
        headers[key] = unquote(value, errors="replace") if "%" in value else value
    return headers


def _event_frame_head(block: bytes | bytearray) -> tuple[dict[str, str], int] | None:
    """The outer headers FreeSWITCH writes before every event, "Content-Length: N\nContent-Type:
    text/event-plain" (or json), and N, as the general parse gives them; None for any other block."""
    if block.startswith(b"Content-Length: "):
        digits, separator, kind = block[16:].partition(b"\nContent-Type: ")
        if separator and digits.isdigit() and (kind == b"text/event-plain" or kind == b"text/event-json"):
            return {"Content-Length": digits.decode("ascii"), "Content-Type": kind.decode("ascii")}, int(digits)
    return None


def _parse_length(value: str, what: str) -> int:
    value = value.strip()
    if not value.isdigit():
        raise ProtocolError(f"{what}: Content-Length {value[:20]!r} is not a non-negative integer")
    return int(value)


def parse_event_body(content_type: str, body: bytes | str) -> tuple[dict[str, str], str]:
    """Parse the body of a text/event-plain or text/event-json frame into (event headers, event body).

    Plain: URL-decoded header lines, then (when an inner Content-Length is present) a blank line and
    exactly that many bytes (UTF-8) of body.  JSON: an object; "_body" becomes the event body.
    Raises ProtocolError when the body is malformed.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if content_type == EVENT_JSON:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"event-json body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ProtocolError("event-json body is not a JSON object")
        inner = data.pop("_body", "")
        headers = {str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in data.items()}
        return headers, inner if isinstance(inner, str) else json.dumps(inner, ensure_ascii=False)
    if content_type != EVENT_PLAIN:
        raise ProtocolError(f"not an event content type: {content_type!r}")
    if raw.endswith(b"\n\n"):
        # FreeSWITCH's event without a body of its own: a regular block has no blank line, so its end is
        # the first (looking for it is a slow two-byte search over the whole event)
        headers = _split_block(raw[:-2])
        if headers is not None and "Content-Length" not in headers:
            return headers, ""
    split = raw.find(b"\n\n")
    head = raw[:split] if split >= 0 else raw.rstrip(b"\n")
    headers = _decode_header_block(head, "event-plain headers") if head else {}
    inner = ""
    length_text = headers.get("Content-Length")
    if length_text is not None:
        length = _parse_length(length_text, "event-plain")
        rest = raw[split + 2:] if split >= 0 else b""
        if len(rest) != length:
            raise ProtocolError(f"event-plain inner Content-Length {length} but {len(rest)} bytes follow")
        try:
            inner = rest.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"event-plain body is not UTF-8 (byte {exc.start})") from None
    elif split >= 0 and raw[split + 2:].strip(b"\n"):
        raise ProtocolError("event-plain has data after its headers but no inner Content-Length")
    return headers, inner


class FrameParser:
    """Incremental ESL frame parser: ``feed(bytes) -> list[Frame]``.

    Memory is bounded by max_header_bytes + max_body_bytes.  After a ProtocolError the parser stays
    broken (the byte stream can no longer be trusted) and every later feed raises the same error.
    """

    __slots__ = ("max_header_bytes", "max_body_bytes", "lazy_events", "_buf", "_pending", "_broken",
                 "_searched", "frames_parsed")

    def __init__(self, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, lazy_events: bool = False):
        self.lazy_events = lazy_events      # True: events are parsed when first read (see Frame)
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self._buf = bytearray()
        self._pending: tuple[dict[str, str], int] | None = None
        self._broken: ProtocolError | None = None
        self._searched = 0  # of an unfinished header block: a trickled block is searched once, not per read
        self.frames_parsed = 0

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return every frame now complete (possibly none)."""
        if self._broken is not None:
            raise self._broken
        try:
            return self._feed(data)
        except ProtocolError as exc:
            self._broken = exc
            self._buf = bytearray()
            self._pending = None
            self._searched = 0
            raise

    def close(self) -> None:
        """The peer closed the stream: raise ProtocolError when a frame was cut off mid-way."""
        if self._broken is None and (self._pending is not None or self._buf.strip(b"\n")):
            missing = f", {self._pending[1] - len(self._buf)} body bytes missing" if self._pending else ""
            self._broken = ProtocolError(f"connection closed mid-frame ({len(self._buf)} bytes buffered{missing})")
            raise self._broken

    def _feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        pos = 0
        size = len(buf)
        max_header = self.max_header_bytes
        while True:
            pending = self._pending
            if pending is None:
                while pos < size and buf[pos] == 10:     # tolerate stray newlines between frames
                    pos += 1
                end = buf.find(b"\n\n", pos + self._searched)
                if end < 0:
                    if size - pos > max_header:
                        raise ProtocolError(f"header block exceeds {max_header} bytes without a blank line")
                    self._searched = max(0, size - pos - 1)  # the last byte may begin the blank line
                    break
                self._searched = 0
                if end - pos > max_header:
                    raise ProtocolError(f"header block of {end - pos} bytes exceeds {max_header}")
                block = buf[pos:end]
                pos = end + 2
                event_head = _event_frame_head(block)
                if event_head is not None:
                    headers, length = event_head
                else:
                    headers = _decode_header_block(block, "frame headers")
                    length_text = headers.get("Content-Length")
                    length = _parse_length(length_text, "frame") if length_text is not None else 0
                if length > self.max_body_bytes:
                    raise ProtocolError(f"Content-Length {length} exceeds the cap of {self.max_body_bytes} bytes")
                if length == 0:
                    frames.append(self._make(headers, b""))
                    continue
                pending = self._pending = (headers, length)
            headers, length = pending
            if size - pos < length:
                break
            body = bytes(buf[pos:pos + length])
            pos += length
            self._pending = None
            frames.append(self._make(headers, body))
        if pos == size:
            # a fresh buffer instead of `del`: a bytearray keeps its largest size, and a thousand idle
            # calls would each hold on to the biggest read they ever saw
            self._buf = bytearray()
        elif pos:
            del buf[:pos]
        self.frames_parsed += len(frames)
        return frames

    def _make(self, headers: dict[str, str], body: bytes) -> Frame:
        content_type = headers.get("Content-Type")
        if content_type is None:
            raise ProtocolError(f"frame without Content-Type (headers: {sorted(headers)[:6]})")
        if content_type == EVENT_PLAIN or content_type == EVENT_JSON:
            if self.lazy_events:
                return Frame(headers, None, content_type, raw=body, pending=True)
            # events are parsed from the bytes (inner Content-Length counts bytes); the serialised text
            # is only decoded if someone asks for Frame.body
            try:
                event, event_body = parse_event_body(content_type, body)
            except ProtocolError as exc:
                return Frame(headers, None, content_type, None, "", (str(exc),), raw=body)
            return Frame(headers, None, content_type, event, event_body, (), raw=body)
        defects: tuple[str, ...] = ()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = body.decode("utf-8", "replace")
            defects = (f"body is not UTF-8 (byte {exc.start})",)
        if content_type not in KNOWN_CONTENT_TYPES:
            defects += (f"unknown content type {content_type[:60]!r}",)
        return Frame(headers, text, content_type, None, "", defects)


def _check_line(text: str, what: str) -> str:
    if "\n" in text or "\r" in text:
        raise ValueError(f"{what} must be a single line (a newline would inject another ESL command): {text[:60]!r}")
    return text


def encode_command(command: str, headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
                   body: str | None = None) -> bytes:
    """Encode one ESL command: the command line, optional headers, a blank line, optional body.

    Newlines in the command or header values are refused (ValueError): they would let data that came
    from a caller (digits, names) inject further commands.  A body gets a content-length in bytes.
    """
    lines = [_check_line(command, "command")]
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for key, value in items:
        lines.append(f"{_check_line(str(key), 'header name')}: {_check_line(str(value), 'header value')}")
    if body is None:
        return ("\n".join(lines) + "\n\n").encode("utf-8")
    data = body.encode("utf-8")
    if not any(line.lower().startswith("content-type:") for line in lines[1:]):
        lines.append("content-type: text/plain")
    lines.append(f"content-length: {len(data)}")
    return ("\n".join(lines) + "\n\n").encode("utf-8") + data
