"""The per-process, bounded count of failed IVR status look-ups (ivr.throttle)."""
from __future__ import annotations

import pytest

from ivr.throttle import FailureWindow


def test_blocks_after_the_limit_until_failures_leave_the_window():
    """Should block a number after ``limit`` failures and let it try again once the oldest is an hour old."""
    window = FailureWindow(limit=3, window=3600.0)
    for t in (0.0, 10.0, 20.0):
        assert not window.blocked("13800000001", t)
        window.fail("13800000001", t)
    assert window.blocked("13800000001", 30.0)
    assert not window.blocked("13800000002", 30.0)
    assert window.blocked("13800000001", 3600.0)
    assert not window.blocked("13800000001", 3600.5)
    assert window.count("13800000001", 3600.5) == 2


def test_memory_stays_bounded_however_many_numbers_fail():
    """Should keep at most ``max_keys`` numbers (least recently seen forgotten first) and drop numbers whose
    failures all left the window; it grew by one entry per calling number, for ever, before."""
    window = FailureWindow(limit=10, window=60.0, max_keys=100)
    for n in range(5000):
        window.fail(f"139{n:08d}", float(n) / 1000)
    assert len(window) == 100
    assert window.count("13900004999", 5.0) == 1 and window.count("13900000000", 5.0) == 0
    window.fail("13700000000", 100.0)  # a minute later: every earlier number has expired
    assert len(window) == 1
    for _ in range(50):
        window.fail("13700000000", 101.0)
    assert window.count("13700000000", 101.0) == 10  # no more kept than the limit needs


def test_rejects_nonsense_settings():
    """Should refuse a zero limit, window or size with a clear error."""
    for args in ((0, 60.0), (3, 0.0), (3, 60.0, 0)):
        with pytest.raises(ValueError, match="FailureWindow needs"):
            FailureWindow(*args)
