"""ivr.live.LiveCalls: callers per node and tree version, longest time at a node."""
from __future__ import annotations

import threading

from ivr.live import LiveCalls


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_snapshot_counts_per_version_and_node():
    """Should count callers per node of each version and give the longest time at each node."""
    clock = Clock()
    live = LiveCalls(clock)
    live.start("a", 2)
    live.move("a", "main")
    clock.now += 10
    live.start("b", 2, "main")
    live.start("c", 1, "self_menu")
    clock.now += 5
    snap = live.snapshot()
    assert snap["total"] == 3
    assert snap["versions"] == [
        {"version_id": 1, "callers": 1, "nodes": [{"node": "self_menu", "callers": 1, "longest_s": 5}]},
        {"version_id": 2, "callers": 2, "nodes": [{"node": "main", "callers": 2, "longest_s": 15}]},
    ]
    assert live.counts(2) == {"main": 2} and live.counts(3) == {}


def test_move_resets_the_time_only_on_a_new_node_and_end_removes():
    """Should keep the time at a node when re-entered, restart it on another node, and forget ended calls."""
    clock = Clock()
    live = LiveCalls(clock)
    live.start("a", None, "main")
    clock.now += 7
    live.move("a", "main")
    assert live.snapshot()["versions"][0]["nodes"][0]["longest_s"] == 7
    live.move("a", "poll")
    clock.now += 1
    assert live.snapshot()["versions"][0]["nodes"] == [{"node": "poll", "callers": 1, "longest_s": 1}]
    live.end("a")
    live.end("a")  # twice: harmless
    live.move("gone", "main")  # an unknown call: harmless
    assert live.snapshot() == {"total": 0, "versions": []} and len(live) == 0


def test_concurrent_updates_and_snapshots():
    """Should stay consistent while threads add, move and end calls and another takes snapshots."""
    live = LiveCalls()

    def worker(prefix):
        for i in range(300):
            uuid = f"{prefix}-{i}"
            live.start(uuid, 1, "main")
            live.move(uuid, "self_menu")
            live.end(uuid)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for _ in range(200):
        snap = live.snapshot()
        assert snap["total"] == sum(v["callers"] for v in snap["versions"])
    for t in threads:
        t.join(10)
    assert len(live) == 0
