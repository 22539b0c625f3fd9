"""The IVR calls in progress and where each caller is in its tree (team leads watch it: P5 §3.6 监控).

``LiveCalls`` is kept by the IVR services object (one per process) and updated by the runner as a call
moves from node to node; ``snapshot()`` counts callers per tree version and node, with the longest time
someone has been at each node. Pure bookkeeping: no I/O, no gevent.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class LiveCall:
    """One caller in the IVR: tree version, current node and since when (monotonic seconds)."""

    uuid: str
    version_id: int | None
    node: str
    since: float
    started: float
    direction: str = "inbound"


class LiveCalls:
    """Active IVR calls by call UUID. Safe to read from a web request while calls update it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._calls: dict[str, LiveCall] = {}
        self._lock = threading.Lock()

    def start(self, uuid: str, version_id: int | None, node: str = "", direction: str = "inbound") -> None:
        """A call entered the IVR."""
        now = self._clock()
        with self._lock:
            self._calls[uuid] = LiveCall(uuid, version_id, node, now, now, direction)

    def move(self, uuid: str, node: str) -> None:
        """The call is now at ``node`` (a no-op when it stays where it is)."""
        with self._lock:
            call = self._calls.get(uuid)
            if call is not None and call.node != node:
                call.node, call.since = node, self._clock()

    def end(self, uuid: str) -> None:
        """The call left the IVR (hang-up, a person answered, transferred away)."""
        with self._lock:
            self._calls.pop(uuid, None)

    def __len__(self) -> int:
        return len(self._calls)

    def snapshot(self) -> dict:
        """{"total", "versions": [{"version_id", "callers", "nodes": [{"node", "callers", "longest_s"}]}]}.

        Nodes are ordered by callers (most first); ``longest_s`` is the longest time a caller has been at
        that node, in whole seconds.
        """
        now = self._clock()
        with self._lock:
            calls = list(self._calls.values())
        versions: dict[int | None, dict[str, list[float]]] = {}
        for call in calls:
            versions.setdefault(call.version_id, {}).setdefault(call.node or "", []).append(now - call.since)
        result = []
        for version_id, nodes in sorted(versions.items(), key=lambda item: (item[0] is None, item[0] or 0)):
            rows = [{"node": node, "callers": len(waits), "longest_s": int(max(waits))}
                    for node, waits in nodes.items()]
            rows.sort(key=lambda row: (-row["callers"], row["node"]))
            result.append({"version_id": version_id, "callers": sum(r["callers"] for r in rows), "nodes": rows})
        return {"total": len(calls), "versions": result}

    def counts(self, version_id: int | None) -> dict[str, int]:
        """Callers per node of one tree version (the flow chart's badges)."""
        with self._lock:
            calls = list(self._calls.values())
        counts: dict[str, int] = {}
        for call in calls:
            if call.version_id == version_id and call.node:
                counts[call.node] = counts.get(call.node, 0) + 1
        return counts
