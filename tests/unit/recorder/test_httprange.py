"""Byte ranges for recording playback."""
from __future__ import annotations

import pytest

from recorder.httprange import RangeNotSatisfiable, parse_range


@pytest.mark.parametrize("header,expected", [
    (None, None), ("", None), ("bytes=0-", (0, 999)), ("bytes=0-499", (0, 499)), ("bytes=500-", (500, 999)),
    ("bytes=-100", (900, 999)), ("bytes=-5000", (0, 999)), ("bytes=990-5000", (990, 999)),
    ("bytes=999-999", (999, 999)), ("bytes = 10-20", (10, 20)),
    ("items=0-10", None), ("bytes=0-1,5-9", None), ("bytes=abc", None), ("bytes=20-10", None), ("bytes=-", None),
    ("bytes=" + "9" * 40 + "-", None)])
def test_ranges(header, expected):
    """Should turn satisfiable single ranges into inclusive bounds and ignore what may be ignored."""
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header,size", [("bytes=1000-", 1000), ("bytes=5000-6000", 1000), ("bytes=-0", 1000),
                                         ("bytes=0-", 0), ("bytes=-10", 0)])
def test_out_of_bounds(header, size):
    """Should refuse a range starting past the end (416), remembering the size for Content-Range."""
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, size)
    assert caught.value.size == size
