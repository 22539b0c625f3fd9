"""Reader for recorded ESL wire transcripts (the format of /work/shared/esl/*.txt), for tests and benchmarks.

Each wire line is ``[seconds] <conn> C->S|S->C <python bytes literal>``; S->C lines are one complete
frame each.  Lines starting with ``^`` (summaries) or ``##``/``#`` (notes) and TCP connect/close notes
are not wire data.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

_WIRE = re.compile(r"^\[\s*([0-9.]+)\]\s+(\S+)\s+(C->S|S->C)\s+(b(['\"]).*\5)\s*$")


@dataclass(frozen=True)
class WireLine:
    """One recorded write: when, on which connection, which direction, the exact bytes."""

    seconds: float
    conn: str
    direction: str          # "C->S" (client wrote) or "S->C" (one frame FreeSWITCH sent)
    data: bytes


def parse_transcript(text: str) -> list[WireLine]:
    """Return the wire lines of a transcript text, in order."""
    lines = []
    for raw in text.splitlines():
        match = _WIRE.match(raw)
        if match is None:
            continue
        data = ast.literal_eval(match.group(4))
        if not isinstance(data, bytes):
            raise ValueError(f"not a bytes literal: {raw[:80]!r}")
        lines.append(WireLine(float(match.group(1)), match.group(2), match.group(3), data))
    return lines


def load_transcript(path: str | Path) -> list[WireLine]:
    """Read and parse one transcript file."""
    return parse_transcript(Path(path).read_text(encoding="utf-8"))


def server_stream(lines: list[WireLine], conn: str | None = None) -> bytes:
    """Concatenate every S->C frame (of one connection, or all) into the byte stream a client would read."""
    return b"".join(l.data for l in lines if l.direction == "S->C" and (conn is None or l.conn == conn))
