"""Whether the gevent hub stays free while something runs: a ticker greenlet counts how often it got to run
(the tests of work moved off the hub, to a thread pool or a child process, use it)."""
from __future__ import annotations

import gevent


def ticks_during(action) -> tuple[int, object]:
    """(how often a greenlet sleeping 1 ms got to run while ``action()`` ran in this one, its result)."""
    ticks = [0]

    def ticker():
        while True:
            gevent.sleep(0.001)
            ticks[0] += 1

    greenlet = gevent.spawn(ticker)
    gevent.sleep(0)  # let it start
    try:
        before = ticks[0]
        result = action()
        return ticks[0] - before, result
    finally:
        greenlet.kill()
