"""The pool's connections handed out in turn (core.db._PoolWait.turn, issue 15 item 10): a freed connection goes
to the greenlet waiting longest, and one arriving while others wait queues behind them (playhouse's wait let a
newcomer take it: under the simulation's load waits reached the 10 s timeout while holds were short)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gevent
import gevent.event
import pytest

from core import db as core_db
from tests.conftest import _PG_URL
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[3]


def test_waiters_are_served_in_arrival_order_and_a_newcomer_waits_its_turn():
    """Should give each freed place to the first waiter, and queue a newcomer that finds room behind those
    already waiting."""
    room, served = [0], []
    wait = core_db._PoolWait(lambda: room[0])

    def take(name):
        with wait.turn(5) as ok:
            assert ok
            room[0] -= 1
            served.append(name)

    waiters = [gevent.spawn(take, n) for n in range(5)]
    wait_until(lambda: len(wait._queue) == 5, what="five waiters queued")
    room[0] += 1  # a connection back: a newcomer arriving now, before any waiter ran, finds room
    wait.notify()
    waiters.append(gevent.spawn(take, "newcomer"))
    for n in range(1, 6):
        wait_until(lambda: len(served) == n, what=f"{n} served")  # the place taken before the next comes back
        room[0] += 1
        wait.notify()
    gevent.joinall(waiters, timeout=5, raise_error=True)
    assert served == [0, 1, 2, 3, 4, "newcomer"]


def test_a_waiter_gives_up_at_its_timeout_and_the_next_keeps_its_place():
    """Should answer False after the timeout, and pass the turn on to the next waiter."""
    room, results = [0], []
    wait = core_db._PoolWait(lambda: room[0])

    def take(timeout):
        with wait.turn(timeout) as ok:
            results.append((timeout, ok))

    first, second = gevent.spawn(take, 0.05), gevent.spawn(take, 5)
    first.join(5)  # its own timeout ends it
    assert results == [(0.05, False)] and len(wait._queue) == 1
    room[0] = 1
    wait.notify()
    gevent.joinall([first, second], timeout=5, raise_error=True)
    assert results == [(0.05, False), (5, True)]


def test_as_many_waiters_are_served_at_once_as_places_come_free():
    """Should grant every free place at once, in arrival order (one after the other, each hand-off waited for
    the checkout before it: 257 waiters timed out with 2 of 20 connections in use), and pass a place granted
    to a waiter killed before it ran on to the next."""
    room, inside = [0], []
    wait = core_db._PoolWait(lambda: room[0])
    release = gevent.event.Event()

    def take(name):
        with wait.turn(5) as ok:
            assert ok
            inside.append(name)
            release.wait(5)

    waiters = [gevent.spawn(take, n) for n in range(5)]
    wait_until(lambda: len(wait._queue) == 5, what="five waiters queued")
    waiters[0].kill(block=False)  # delivered at the hub's next turn: granted below, killed before it runs
    room[0] = 3
    wait.notify()
    assert wait._granted == 3 and len(wait._queue) == 2  # at once, before any of them ran
    wait_until(lambda: len(inside) == 3, what="three inside")
    assert inside == [1, 2, 3] and waiters[0].dead
    release.set()
    room[0] = 1
    wait.notify()
    gevent.joinall(waiters, timeout=5)
    assert inside == [1, 2, 3, 4] and wait._granted == 0 and not wait._queue


# A monkey-patched process (as run.py), a pool of one: five greenlets queue behind a transaction, one after the
# other; the one holding it asks again the moment it gives the connection back (a newcomer finding the pool
# free): it comes last.
_FAIR_CHILD = r"""
from gevent import monkey; monkey.patch_all()
import sys
import gevent
import gevent.event
from core import db as core_db
from tests.waiting import wait_until

url = sys.argv[1]
if url.startswith("sqlite"):
    database = core_db._pooled_sqlite_class()(url.split("///", 1)[1], max_connections=1, timeout=10,
                                              pragmas=core_db.SQLITE_PRAGMAS, check_same_thread=False)
else:
    database = core_db.open_database(url + ("&" if "?" in url else "?") + "max_connections=1")
order = []

holding, all_queued = gevent.event.Event(), gevent.event.Event()

def holder():
    with database.atomic():
        database.execute_sql("SELECT 1")
        holding.set()
        all_queued.wait(10)
    database.execute_sql("SELECT 2")   # at once, before any waiter ran
    order.append("holder again")

def waiter(n):
    with database.atomic():
        database.execute_sql("SELECT 3")
        order.append(n)

greenlets = [gevent.spawn(holder)]
assert holding.wait(10)
for n in range(5):   # each queued before the next comes
    greenlets.append(gevent.spawn(waiter, n))
    wait_until(lambda: len(database._pool_available._queue) == n + 1, what=f"waiter {n} queued")
all_queued.set()
gevent.joinall(greenlets, timeout=30, raise_error=True)
print(" ".join(map(str, order)), len(database._in_use))
database.close_all()
"""


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_pooled_connection_goes_to_the_longest_waiter(engine, tmp_path):
    """Should serve the greenlets waiting for the only connection in the order they came, and the greenlet
    that just gave it back after them."""
    if engine == "postgres" and not _PG_URL:
        pytest.skip("PostgreSQL not reachable")
    url = f"sqlite:///{tmp_path / 'fair.sqlite3'}" if engine == "sqlite" else _PG_URL
    done = subprocess.run([sys.executable, "-c", _FAIR_CHILD, url], capture_output=True, text=True, timeout=90,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0", "1", "2", "3", "4", "holder", "again", "0"], done.stdout


def test_the_timeout_says_it_was_the_wait_for_a_pooled_connection():
    """Should say in the pool's timeout that it was the wait for a pooled connection (not the server's
    connect, whose message says so)."""
    database = core_db._pooled_sqlite_class()(":memory:", max_connections=1, timeout=1)
    assert "waiting for a pooled connection" in database._full_message()
    assert "max_connections" in database._full_message()
