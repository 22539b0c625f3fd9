"""A bounded wait for a condition another greenlet brings about: the tests synchronise on state, not on sleeps
(a short sleep lets a test pass or fail by the machine's load). ``poll_until`` is the same for a condition
another process brings about, looked at from plain threads (Kannel, Kamailio, a live switch)."""
from __future__ import annotations

import time

import gevent


def wait_until(predicate, timeout: float = 5.0, what: str = "condition"):
    """Yield to other greenlets until ``predicate()`` is true and return its value; AssertionError naming
    ``what`` after ``timeout`` s."""
    with gevent.Timeout(timeout, AssertionError(f"timed out waiting for {what}")):
        while True:
            value = predicate()
            if value:
                return value
            gevent.sleep(0.002)


def poll_until(predicate, timeout: float, what: str = "condition", every: float = 0.1):
    """Look at ``predicate()`` every ``every`` s (time.sleep: no hub to yield to, and each look may ask another
    process) until it is true and return its value; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
