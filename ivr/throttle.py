"""Failed look-ups per calling number within a sliding window, bounded in memory (pure: times are passed in).

The IVR's status query uses it to stop a line that guesses ticket numbers. It lives in the process's
memory: each process counts its own callers (several app processes each allow the limit), and a restart
forgets. Memory stays bounded however many numbers call: at most ``max_keys`` numbers are kept, the least
recently seen forgotten first, and a number's entry goes when its last failure leaves the window.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field


@dataclass
class FailureWindow:
    """At most ``limit`` failures per key within ``window`` seconds, for at most ``max_keys`` keys."""

    limit: int
    window: float
    max_keys: int = 10_000
    _failures: collections.OrderedDict = field(default_factory=collections.OrderedDict, repr=False)

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0 or self.max_keys < 1:
            raise ValueError(f"FailureWindow needs limit >= 1, window > 0 and max_keys >= 1, got "
                             f"{self.limit}, {self.window}, {self.max_keys}")

    def _recent(self, key: str, now: float) -> collections.deque | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and now - times[0] > self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        self._failures.move_to_end(key)
        return times

    def blocked(self, key: str, now: float) -> bool:
        """True when ``key`` has used up its failures for now."""
        times = self._recent(key, now)
        return times is not None and len(times) >= self.limit

    def count(self, key: str, now: float) -> int:
        """Failures of ``key`` still inside the window."""
        times = self._recent(key, now)
        return len(times) if times is not None else 0

    def fail(self, key: str, now: float) -> None:
        """Note a failure of ``key`` at ``now`` (only the last ``limit`` matter, so no more are kept)."""
        times = self._recent(key, now)
        if times is None:
            times = self._failures[key] = collections.deque(maxlen=self.limit)
        times.append(now)
        self._forget_expired(now)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def _forget_expired(self, now: float) -> None:
        """Drop keys whose newest failure has left the window, oldest-seen first (cheap: stops at the first
        key still in use)."""
        while self._failures:
            key, times = next(iter(self._failures.items()))
            if times and now - times[-1] <= self.window:
                break
            del self._failures[key]

    def __len__(self) -> int:
        return len(self._failures)
