"""Pooled connections for the ACD's writes first (core.db.ahead_in_pool, issue 15 item 10): a caller and a free
agent wait on each of them, and queued behind the IVR's and the call records' statements an offer's write waited
seconds on PostgreSQL under load (bench/simulation.py)."""
from __future__ import annotations

import gevent

from core import db as core_db
from tests.waiting import wait_until


def test_waiters_ahead_are_served_first_in_their_arrival_order():
    """Should give a freed place to the waiters queued ahead, in the order they came, before those already
    waiting without."""
    room, served = [0], []
    wait = core_db._PoolWait(lambda: room[0])

    def take(name, ahead):
        with wait.turn(5, ahead) as ok:
            assert ok
            room[0] -= 1
            served.append(name)

    waiters = [gevent.spawn(take, n, False) for n in range(3)]
    wait_until(lambda: len(wait._queue) == 3, what="three waiters queued")
    waiters += [gevent.spawn(take, "acd1", True), gevent.spawn(take, "acd2", True)]
    wait_until(lambda: len(wait._queue) == 5, what="two more queued ahead")
    for n in range(1, 6):
        room[0] += 1
        wait.notify()
        wait_until(lambda: len(served) == n, what=f"{n} served")
    gevent.joinall(waiters, timeout=5, raise_error=True)
    assert served == ["acd1", "acd2", 0, 1, 2]


def test_a_waiter_not_ahead_goes_before_the_ahead_ones_coming_after_part_of_its_timeout():
    """Should serve a waiter not ahead within its timeout while waiters ahead keep coming, one for each place
    freed (review1 item 3: served only when none was queued ahead, the IVR's statements timed out)."""
    room, served = [0], []
    wait = core_db._PoolWait(lambda: room[0])

    def take(name, ahead, timeout):
        with wait.turn(timeout, ahead) as ok:
            if ok:
                room[0] -= 1
            served.append((name, ok))

    ordinary = gevent.spawn(take, "ordinary", False, 2)
    wait_until(lambda: len(wait._queue) == 1, what="the ordinary waiter queued")
    stream = []
    while not ordinary.dead and len(stream) < 2000:
        stream.append(gevent.spawn(take, f"acd{len(stream)}", True, 30))
        wait_until(lambda: len(wait._queue) == 2, what="one ahead queued beside it")
        room[0] += 1
        wait.notify()
        wait_until(lambda: len(wait._queue) == 1 or ordinary.dead, what="one served")
        # not a synchronisation: the bound is on the ordinary waiter's time waited, so time must pass
        gevent.sleep(0.01)
    room[0] += 1
    wait.notify()
    gevent.joinall([ordinary, *stream], timeout=5, raise_error=True)
    assert ("ordinary", True) in served and all(ok for _, ok in served)


def test_a_waiter_killed_while_queued_ahead_leaves_nothing_behind():
    """Should take a waiter queued ahead and killed out of the queue, granted nothing, and give the next place
    to the waiter behind it."""
    room, served = [0], []
    wait = core_db._PoolWait(lambda: room[0])

    def take(name, ahead):
        with wait.turn(5, ahead) as ok:
            assert ok
            served.append(name)

    ordinary = gevent.spawn(take, "ordinary", False)
    killed = gevent.spawn(take, "killed", True)
    wait_until(lambda: len(wait._queue) == 2, what="both queued")
    assert wait._queue[0].ahead
    killed.kill()
    assert len(wait._queue) == 1 and not wait._queue[0].ahead and wait._granted == 0
    room[0] = 1
    wait.notify()
    ordinary.join(5)
    assert served == ["ordinary"] and wait._granted == 0 and not wait._queue


def test_a_block_ahead_marks_the_checkouts_inside_it_only(tmp_path, db):
    """Should mark the greenlet's checkouts as ahead inside the block only (nested blocks too), and do
    nothing on a database without a pool of waiters (the tests' own)."""
    pooled = core_db._pooled_sqlite_class()(str(tmp_path / "a.db"), max_connections=2, timeout=5)
    with pooled.ahead():
        with pooled.ahead():
            assert pooled._state.ahead is True
        assert pooled._state.ahead is True
    assert pooled._state.ahead is False
    with core_db.ahead_in_pool():
        assert db.execute_sql("SELECT 1").fetchone() == (1,)


def test_where_a_connection_is_taken_is_read_without_the_line_cache(monkeypatch):
    """Should name the innermost frame and the app's own frames around a checkout without checking the line
    cache (a stat of every frame's file, at every checkout once a pool wait has timed out: about 5 % of the
    hub's time in bench/simulation.py on PostgreSQL)."""
    import linecache
    import sys

    checked = []
    monkeypatch.setattr(linecache, "checkcache", lambda *args: checked.append(args))

    def taken_here():
        return core_db._app_frames(sys._getframe(), 3)

    line = core_db._frames_line(taken_here())
    assert checked == []
    assert line.startswith("test_pool_ahead.py:") and " taken_here < " in line \
        and "test_where_a_connection_is_taken_is_read_without_the_line_cache" in line
