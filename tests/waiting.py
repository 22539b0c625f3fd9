"""A bounded wait for a condition another greenlet brings about: the tests synchronise on state, not on sleeps
(a short sleep lets a test pass or fail by the machine's load)."""
from __future__ import annotations

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
