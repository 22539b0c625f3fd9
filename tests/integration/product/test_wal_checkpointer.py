"""SQLite's WAL checkpointed from a real OS thread (core.db.WalCheckpointer, issue 15 item 7): in the call process
a commit never runs SQLite's automatic checkpoint (the sync of the database file that made every 25th ticket
slow) while the checkpointer lives; it keeps the WAL bounded, leaves it empty at its stop, and when it is gone
the automatic checkpoints come back. In a monkey-patched child, as run.py."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

_CHILD = r"""
from gevent import monkey; monkey.patch_all()
import os, sys
import gevent
from core import db
from tests.waiting import wait_until

path = sys.argv[1]
database = db.open_database("sqlite:///" + path)
database.execute_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)")
MB = 1024 * 1024

def wal():
    return os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0

def write(rows, pause=0.0):   # 40 KB a row, one commit each, on the hub; the largest WAL seen
    largest = 0
    for _ in range(rows):
        with database.atomic():
            database.execute_sql("INSERT INTO t (b) VALUES (randomblob(40000))")
        largest = max(largest, wal())
        gevent.sleep(pause)
    return largest

def autocheckpoint():
    return database.execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0]

print("pooled", type(database).__name__)
print("without", write(300) // MB, autocheckpoint())            # SQLite's own, inside the commits
checkpointer = db.WalCheckpointer(database, interval=3600).start()
wait_until(lambda: checkpointer.checkpoints >= 1, 30, "its first round")  # done; the next in an hour
database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
print("hub", write(300) // MB, autocheckpoint())                # no commit checkpoints: the WAL only grows
checkpointer.stop()
print("stopped", wal(), autocheckpoint())                       # truncated; SQLite's own back
checkpointer = db.WalCheckpointer(database, interval=0.05, truncate_above=2 * MB).start()
print("thread", write(600, 0.005) // MB, checkpointer.checkpoints > 5, autocheckpoint())
checkpointer.beat = 0.0                                          # as if its thread had died
print("dead", autocheckpoint())
checkpointer.stop()
print("end", wal())
"""


def test_the_wal_is_checkpointed_by_its_thread_not_by_commits(tmp_path):
    """Should leave the commits on the hub without automatic checkpoints while the checkpointer lives (12 MB
    written: the WAL grows past 3,000 pages, where SQLite's own checkpoint keeps it near 1,000), keep the WAL
    within its bound by the thread's checkpoints (24 MB written, never past a few MB), truncate it at the stop,
    and give the connections SQLite's automatic checkpoints back once it stopped or its heartbeat went stale."""
    done = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "wal.sqlite3")], capture_output=True,
                          text=True, timeout=180, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert lines["pooled"] == "PooledCooperativeSqliteDatabase"
    without, auto = map(int, lines["without"].split())
    assert without <= 6 and auto == 1000, done.stdout
    on_hub, auto = map(int, lines["hub"].split())
    assert on_hub >= 11 and auto == 0, done.stdout
    assert lines["stopped"] == "0 1000", done.stdout
    by_thread, rounds, auto = lines["thread"].split()
    assert int(by_thread) <= 8 and rounds == "True" and auto == "0", done.stdout
    assert lines["dead"] == "1000", done.stdout
    assert lines["end"] == "0", done.stdout
