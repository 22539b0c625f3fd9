"""HTTP Range requests for playing recordings (RFC 9110 §14): one byte range, or the whole file.

``parse_range`` returns None to send the whole file (no header, or a header we may ignore: another unit,
several ranges, malformed), or (first, last) inclusive; a syntactically valid range that lies outside the
file raises RangeNotSatisfiable (the 416 answer with ``Content-Range: bytes */size``).
"""
from __future__ import annotations

import re

_SPEC = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$")


class RangeNotSatisfiable(ValueError):
    """The requested range starts beyond the end of the file (or the file is empty)."""

    def __init__(self, size: int):
        super().__init__(f"range not satisfiable for {size} bytes")
        self.size = size


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range to send, None for the whole file, or RangeNotSatisfiable."""
    if not header:
        return None
    match = _SPEC.match(header.strip().replace(" ", ""))
    if not match:
        return None  # other units, several ranges, garbage: a server may ignore Range and send 200
    first, last = match.group(1), match.group(2)
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid range-spec: ignore the header
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, min(end, size - 1)
