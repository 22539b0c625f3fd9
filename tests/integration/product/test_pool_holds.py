"""What keeps a pooled connection out of the pool (core.db._ReleasingPool, issue 15 item 10): at 1,000 calls on
PostgreSQL the app counted all 20 in use while the server showed each idle, not in a transaction. A
connection_context() took one at its start and kept it, idle, until its first statement ended, whatever the
greenlet waited for before (a seal turn, the switch); a greenlet killed or timed out while its check-in waited
for the pool's lock left its connection counted in use for good. Each scenario in a monkey-patched child
(as run.py), on both databases; every one ends with the pool's count back at 0."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import _PG_URL

REPO = Path(__file__).resolve().parents[3]

_CHILD = r"""
from gevent import monkey; monkey.patch_all()
import json
import logging
import sys
import gevent
import gevent.event
from core import db as core_db
from tests.waiting import wait_until

url, scenario = sys.argv[1], sys.argv[2]
if url.startswith("sqlite"):
    database = core_db._pooled_sqlite_class()(url.split("///", 1)[1], max_connections=1, timeout=1,
                                              pragmas=core_db.SQLITE_PRAGMAS, check_same_thread=False)
else:
    database = core_db.open_database(url + ("&" if "?" in url else "?") + "max_connections=1",
                                     core_db.DbTimeouts(connect=1))
out = {}


def others_query():
    try:
        return database.execute_sql("SELECT 7").fetchone()[0]
    except core_db.DatabaseTimeout:
        return "timeout"


if scenario == "context":
    # A greenlet in a connection_context() waits for another's statement before its own (a nested checkout):
    # with the pool's only connection taken at the block's start, the other timed out and the first with it.
    other_done, in_block = gevent.event.AsyncResult(), gevent.event.Event()

    def in_context():
        with database.connection_context():
            out["in_use_in_block"] = len(database._in_use)
            in_block.set()
            value = other_done.get(timeout=5)
            out["own"] = database.execute_sql("SELECT 8").fetchone()[0]
            return value

    first = gevent.spawn(in_context)
    assert in_block.wait(5)
    other_done.set(others_query())
    out["other"] = first.get(timeout=10)
elif scenario in ("kill_in_release", "timeout_in_release"):
    # The statement done, its check-in waits for the pool's lock (held here as a checkout's ping or a new
    # connection holds it); the greenlet is killed, or its timeout strikes, right there: thrown into it as
    # gevent.Timeout's timer throws it, once the check-in is seen waiting for the lock.
    statement_done, lock_taken, at_lock = gevent.event.Event(), gevent.event.Event(), gevent.event.Event()
    pool_lock, victim_greenlet, deadlines = database._pool_lock, [], []

    class WatchedLock:  # the pool's lock, telling when the victim comes to take it (its check-in)
        def __enter__(self):
            if gevent.getcurrent() is victim_greenlet[0]:
                at_lock.set()
            return pool_lock.__enter__()

        def __exit__(self, *exc_info):
            return pool_lock.__exit__(*exc_info)

    def hook(event):
        if gevent.getcurrent() is victim_greenlet[0]:
            statement_done.set()
            lock_taken.wait(5)

    database._pool_lock = WatchedLock()
    database.query_hooks.append(hook)

    def victim():
        if scenario == "timeout_in_release":
            with gevent.Timeout(60, False) as deadline:
                deadlines.append(deadline)
                database.execute_sql("SELECT 1")
                return "ran on"
            return "timed out"
        database.execute_sql("SELECT 1")
        return "ran on"

    victim_greenlet.append(gevent.spawn(victim))
    assert statement_done.wait(5)
    with pool_lock:
        lock_taken.set()
        assert at_lock.wait(5)
        victim_greenlet[0].kill(deadlines[0] if deadlines else gevent.GreenletExit, block=True, timeout=5)
    victim_greenlet[0].join(5)
    out["victim"] = "killed" if isinstance(victim_greenlet[0].value, gevent.GreenletExit) else victim_greenlet[0].value
    database.query_hooks.remove(hook)
    database._pool_lock = pool_lock
    out["other"] = others_query()
elif scenario == "kill_waiting":
    # A waiter killed in the queue, a holder killed inside its transaction, another timed out in one.
    holding = gevent.event.Event()

    def hold(seconds):
        with database.atomic():
            database.execute_sql("SELECT 1")
            holding.set()
            gevent.sleep(seconds)

    holder = gevent.spawn(hold, 60)
    assert holding.wait(5)
    waiter = gevent.spawn(others_query)
    wait_until(lambda: len(database._pool_available._queue) == 1, what="the waiter queued")
    waiter.kill()
    out["queue_after_kill"] = len(database._pool_available._queue)
    holder.kill()
    out["in_use_after_holder_killed"] = len(database._in_use)
    holding.clear()

    def timed_out_holder():
        with gevent.Timeout(60, False) as deadline:
            deadlines.append(deadline)
            hold(60)

    deadlines = []
    timed = gevent.spawn(timed_out_holder)
    assert holding.wait(5)
    timed.kill(deadlines[0], block=True, timeout=5)  # its timeout strikes inside the transaction
    out["other"] = others_query()
elif scenario == "holders":
    # The report of who holds the connections, asked by a wait that timed out.
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logging.getLogger("core.db").addHandler(Keep())
    release, holding = gevent.event.Event(), gevent.event.Event()

    def transaction_waiting_for_the_switch():
        with database.atomic():
            database.execute_sql("SELECT 1")
            holding.set()
            release.wait(10)

    holder = gevent.spawn(transaction_waiting_for_the_switch)
    assert holding.wait(5)
    out["first"] = others_query()
    release.set()
    holder.join(5)
    release.clear()
    holding.clear()
    holder = gevent.spawn(transaction_waiting_for_the_switch)  # taken after the report: where is recorded
    assert holding.wait(5)
    out["holders"] = database.holders()
    release.set()
    holder.join(5)
    out["reports"] = [r for r in records if "no free connection" in r]
    out["other"] = others_query()
out["in_use"] = len(database._in_use)
print(json.dumps(out))
database.close_all()
"""


def _run(engine, scenario, tmp_path) -> dict:
    if engine == "postgres" and not _PG_URL:
        pytest.skip("PostgreSQL not reachable")
    url = f"sqlite:///{tmp_path / 'holds.sqlite3'}" if engine == "sqlite" else _PG_URL
    done = subprocess.run([sys.executable, "-c", _CHILD, url, scenario], capture_output=True, text=True,
                          timeout=90, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_connection_context_holds_no_connection_before_its_statements(engine, tmp_path):
    """Should take no pooled connection at a connection_context()'s start: a greenlet waiting there for
    another's statement (the pool's only connection) lets it run, then runs its own."""
    out = _run(engine, "context", tmp_path)
    assert out == {"in_use_in_block": 0, "other": 7, "own": 8, "in_use": 0}


@pytest.mark.parametrize("scenario", ["kill_in_release", "timeout_in_release"])
@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_check_in_interrupted_while_waiting_for_the_pools_lock_loses_no_place(engine, scenario, tmp_path):
    """Should take the connection out of the pool's count when its greenlet is killed or timed out while the
    check-in waits for the pool's lock, so the pool's only place serves the next statement."""
    out = _run(engine, scenario, tmp_path)
    assert out == {"victim": "killed" if scenario == "kill_in_release" else "timed out", "other": 7, "in_use": 0}


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_waiters_and_holders_killed_or_timed_out_give_their_places_back(engine, tmp_path):
    """Should leave the queue when a waiter is killed, and give the connection back when its holder is
    killed or timed out inside a transaction."""
    out = _run(engine, "kill_waiting", tmp_path)
    assert out == {"queue_after_kill": 0, "in_use_after_holder_killed": 0, "other": 7, "in_use": 0}


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_wait_that_times_out_reports_who_holds_the_connections(engine, tmp_path):
    """Should log, when a wait for a connection times out, each holder's greenlet and where it waits, and
    from then on also where each connection was taken."""
    out = _run(engine, "holders", tmp_path)
    assert out["first"] == "timeout" and out["other"] == 7 and out["in_use"] == 0
    assert len(out["reports"]) == 1
    assert "transaction_waiting_for_the_switch" in out["reports"][0] and "1 in use" in out["reports"][0]
    assert len(out["holders"]) == 1
    now_at, _, taken_at = out["holders"][0].partition("; taken at ")
    assert "now at" in now_at and "transaction_waiting_for_the_switch" in now_at
    assert "transaction_waiting_for_the_switch" in taken_at


def test_the_sqlite_pool_waits_for_a_connection_as_long_as_told(tmp_path):
    """Should wait for a pooled SQLite connection the ``timeout`` given, not for ever (the SQLite class's
    timeout of 0 for sqlite3.connect was taken for the pool's wait: none, i.e. without end)."""
    from core import db as core_db

    database = core_db._pooled_sqlite_class()(str(tmp_path / "t.sqlite3"), max_connections=1, timeout=3,
                                              pragmas=core_db.SQLITE_PRAGMAS, check_same_thread=False)
    assert database._wait_timeout == 3
