"""Frame builders and a command reader for the fake FreeSWITCH, shaped after the real captures.

Written independently of switch/'s codec (so a bug is not mirrored on both sides). Every shape here was
copied from ../shared/esl/*.txt: header order, which frames carry Content-Length, the URL-encoding rules
of `text/event-plain` (FreeSWITCH's switch_url_encode without double encoding), JSON events with `_body`.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache

# switch_utils.h SWITCH_URL_UNSAFE; bytes below space and above '~' are encoded too.
_UNSAFE = frozenset(b"\r\n #%&+:;<=>?@[\\]^`{|}\"")
# switch_url_encode_opt(double_encode=FALSE) leaves an existing %XX alone; its hex set is upper case only.
_HEX = frozenset(b"0123456789ABCDEF")

DISCONNECT_TEXT = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"

MAX_COMMAND_BYTES = 1024 * 1024


# Anything that may need encoding; most header values (numbers, uuids, names) have none and skip the loop.
_NEEDS_WORK = re.compile(r'[^\x20-\x7e]|[ #%&+:;<=>?@\[\\\]^`{|}"]')


def url_encode(value) -> str:
    """Encode a header value the way FreeSWITCH does in text/event-plain (UTF-8, %XX upper case)."""
    text = value if isinstance(value, str) else str(value)
    if not _NEEDS_WORK.search(text):
        return text
    return _encode_slow(text)


@lru_cache(maxsize=8192)
def _encode_slow(text: str) -> str:
    raw = text.encode("utf-8")
    out: list[str] = []
    n = len(raw)
    for i, b in enumerate(raw):
        if b == 0x25 and i + 1 < n and raw[i + 1] in _HEX and (i + 2 >= n or raw[i + 2] in _HEX):
            # Already looks encoded: the real switch copies it as is (strchr also matches the NUL at the end).
            out.append("%")
        elif b < 0x20 or b > 0x7E or b in _UNSAFE:
            out.append("%%%02X" % b)
        else:
            out.append(chr(b))
    return "".join(out)


def _frame(headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    text = "".join(f"{k}: {v}\n" for k, v in headers) + "\n"
    return text.encode("utf-8") + body


def auth_request() -> bytes:
    """The greeting the switch sends first on an inbound connection."""
    return b"Content-Type: auth/request\n\n"


def command_reply(reply_text: str, extra: list[tuple[str, str]] | None = None) -> bytes:
    """`command/reply` with a Reply-Text and no body (extra headers follow, e.g. Job-UUID)."""
    return _frame([("Content-Type", "command/reply"), ("Reply-Text", reply_text)] + list(extra or []))


def api_response(body: str) -> bytes:
    """`api/response`: Content-Type, then Content-Length in UTF-8 bytes, then the body as is."""
    data = body.encode("utf-8")
    return _frame([("Content-Type", "api/response"), ("Content-Length", str(len(data)))], data)


def disconnect_notice(session_uuid: str | None = None) -> bytes:
    """Final notice before the switch closes: plain on inbound, with Controlled-Session-UUID on outbound."""
    data = DISCONNECT_TEXT.encode("utf-8")
    headers = [("Content-Type", "text/disconnect-notice")]
    if session_uuid:
        headers += [("Controlled-Session-UUID", session_uuid), ("Content-Disposition", "disconnect")]
    headers.append(("Content-Length", str(len(data))))
    return _frame(headers, data)


def linger_notice(session_uuid: str, channel_name: str, linger_time: int) -> bytes:
    """Notice sent when the channel hangs up and the client asked to linger (-1 = until it closes)."""
    return _frame([
        ("Content-Type", "text/disconnect-notice"),
        ("Controlled-Session-UUID", session_uuid),
        ("Content-Disposition", "linger"),
        ("Channel-Name", channel_name),
        ("Linger-Time", str(linger_time)),
        ("Content-Length", "0"),
    ])


def channel_data_reply(headers: list[tuple[str, str]]) -> bytes:
    """Reply to `connect`: one header-only frame with every channel header, URL-encoded, no Content-Length."""
    tail = [("Content-Type", "command/reply"), ("Reply-Text", url_encode("+OK\n")),
            ("Socket-Mode", "async"), ("Control", "full")]
    return _frame([(k, url_encode(v)) for k, v in headers] + tail)


def event_plain(headers: list[tuple[str, str]], body: str | None = None) -> bytes:
    """`text/event-plain`: inner headers URL-encoded; a body is announced by an inner Content-Length."""
    inner = "".join(f"{k}: {url_encode(v)}\n" for k, v in headers)
    if body:
        data = body.encode("utf-8")
        inner_bytes = (inner + f"Content-Length: {len(data)}\n\n").encode("utf-8") + data
    else:
        inner_bytes = (inner + "\n").encode("utf-8")
    return _frame([("Content-Length", str(len(inner_bytes))), ("Content-Type", "text/event-plain")], inner_bytes)


def event_json(headers: list[tuple[str, str]], body: str | None = None) -> bytes:
    """`text/event-json`: one compact JSON object, values not encoded, body under `_body`."""
    obj: dict[str, str] = {}
    for k, v in headers:
        obj[k] = str(v)
    if body:
        obj["Content-Length"] = str(len(body.encode("utf-8")))
        obj["_body"] = body
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return _frame([("Content-Length", str(len(data))), ("Content-Type", "text/event-json")], data)


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def event_xml(headers: list[tuple[str, str]], body: str | None = None) -> bytes:
    """`text/event-xml`: switch_event_xmlize printed by switch_xml_toxml: one element per header, values
    URL-encoded as in plain (add_xml_header), two-space indents, a body as `<body>` after an inner
    Content-Length header."""
    lines = ["<event>", "  <headers>"]
    lines += [f"    <{k}>{_xml_text(url_encode(v))}</{k}>" for k, v in headers]
    if body:
        lines.append(f"    <Content-Length>{len(body.encode('utf-8'))}</Content-Length>")
    lines.append("  </headers>")
    if body:
        lines.append(f"  <body>{_xml_text(body)}</body>")
    lines.append("</event>")
    data = "\n".join(lines).encode("utf-8")
    return _frame([("Content-Length", str(len(data))), ("Content-Type", "text/event-xml")], data)


def event_frame(fmt: str, headers: list[tuple[str, str]], body: str | None = None) -> bytes:
    """An event in the connection's format ("plain", "json" or "xml")."""
    if fmt == "json":
        return event_json(headers, body)
    if fmt == "xml":
        return event_xml(headers, body)
    return event_plain(headers, body)


class Command:
    """One client command: the first line, its headers (names as sent) and an optional body."""

    __slots__ = ("line", "headers", "body")

    def __init__(self, line: str, headers: list[tuple[str, str]], body: str):
        self.line = line
        self.headers = headers
        self.body = body

    def header(self, name: str, default: str | None = None) -> str | None:
        """Case-insensitive header lookup (clients write `content-length`, `Event-UUID`...)."""
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return default

    def __repr__(self) -> str:
        return f"Command({self.line!r}, {self.headers!r}, {self.body!r})"


class CommandTooLarge(Exception):
    """The client sent a command without a blank line within MAX_COMMAND_BYTES."""


class CommandReader:
    """Reads client commands from a socket: lines up to a blank line, then Content-Length bytes."""

    def __init__(self, sock):
        self._sock = sock
        self._buf = b""

    def _fill(self) -> bool:
        data = self._sock.recv(65536)
        if not data:
            return False
        self._buf += data
        return True

    def read(self) -> Command | None:
        """The next command, or None when the client closed the connection."""
        while True:
            # The real switch treats CR as whitespace; accept CRLF framing too.
            norm = self._buf.replace(b"\r\n", b"\n")
            idx = norm.find(b"\n\n")
            if idx >= 0:
                break
            if len(self._buf) > MAX_COMMAND_BYTES:
                raise CommandTooLarge(len(self._buf))
            if not self._fill():
                return None
        # Map the end of the header block back to the raw buffer.
        raw_end = self._locate_end(idx)
        head = self._buf[:raw_end].replace(b"\r\n", b"\n").rstrip(b"\n").decode("utf-8", "replace")
        self._buf = self._buf[raw_end:]
        lines = head.split("\n")
        while lines and not lines[0].strip():
            lines.pop(0)
        if not lines:
            return Command("", [], "")
        first = lines[0].strip()
        headers: list[tuple[str, str]] = []
        for ln in lines[1:]:
            if ":" in ln:
                k, _, v = ln.partition(":")
                headers.append((k.strip(), v.strip()))
        cmd = Command(first, headers, "")
        length = cmd.header("content-length")
        if length and length.strip().isdigit():
            need = int(length)
            if need > MAX_COMMAND_BYTES:
                raise CommandTooLarge(need)
            while len(self._buf) < need:
                if not self._fill():
                    return None
            cmd.body = self._buf[:need].decode("utf-8", "replace")
            self._buf = self._buf[need:]
        return cmd

    def _locate_end(self, norm_idx: int) -> int:
        """Index in the raw buffer just past the blank line found at norm_idx of the CRLF-normalised copy."""
        count = 0
        i = 0
        raw = self._buf
        target = norm_idx + 2
        while count < target:
            if raw[i:i + 2] == b"\r\n":
                i += 2
            else:
                i += 1
            count += 1
        return i
