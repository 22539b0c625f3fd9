"""When an outgoing message may leave (pure): quiet hours for non-urgent notices, per-recipient daily caps,
retry backoff. Times are aware datetimes in the hotline's zone."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from channels.sms import SmsInputError


@dataclass(frozen=True)
class QuietHours:
    """A daily window (may pass midnight) in which non-urgent messages wait; start == end means none."""

    start: dt.time = dt.time(21, 0)
    end: dt.time = dt.time(8, 0)

    @classmethod
    def parse(cls, text: str) -> "QuietHours":
        """'21:00-08:00'; '' or 'off' for no quiet hours."""
        text = str(text or "").strip()
        if text.lower() in ("", "off", "none"):
            return cls(dt.time(0), dt.time(0))
        match = re.match(r"^([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})\Z", text)
        if not match:
            raise SmsInputError(f"quiet hours: expected HH:MM-HH:MM or off, got {text[:30]!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise SmsInputError(f"quiet hours: {text!r} is not a time of day")
        return cls(dt.time(h1, m1), dt.time(h2, m2))

    def contains(self, moment: dt.datetime) -> bool:
        t = moment.timetz().replace(tzinfo=None)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def next_end(self, moment: dt.datetime) -> dt.datetime:
        """The end of the quiet window ``moment`` lies in (``moment`` itself when outside it)."""
        if not self.contains(moment):
            return moment
        end = moment.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        return end if end > moment else end + dt.timedelta(days=1)


def earliest_send(moment: dt.datetime, urgent: bool, quiet: QuietHours) -> dt.datetime:
    """When a message created at ``moment`` may first go out."""
    return moment if urgent else quiet.next_end(moment)


def over_cap(sent_today: int, cap: int) -> bool:
    """True when a recipient already got ``cap`` messages this local day (cap 0: no cap)."""
    return cap > 0 and sent_today >= cap


def backoff(attempts: int, first: float = 5.0, longest: float = 300.0) -> dt.timedelta:
    """Wait before attempt ``attempts + 1``: 5 s, 10 s, 20 s ... at most 5 minutes."""
    return dt.timedelta(seconds=min(longest, first * (2 ** max(0, attempts - 1))))


class Pace:
    """At most ``rate`` messages a second on average, in bursts of up to ``burst`` (a token bucket; rate 0:
    no limit). ``wait(now)`` with a monotonic ``now`` in seconds: 0 and a token taken when one may go now,
    else the seconds until one may (nothing taken)."""

    def __init__(self, rate: float, burst: float = 0.0):
        if rate < 0:
            raise ValueError(f"rate must be 0 (no limit) or positive, got {rate!r}")
        self.rate = float(rate)
        self.burst = max(1.0, float(burst or rate / 10 or 1.0))
        self._tokens = self.burst
        self._at: float | None = None

    def wait(self, now: float) -> float:
        if not self.rate:
            return 0.0
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0 - 1e-9:  # a wait of exactly the missing part may come back a hair short
            self._tokens = max(0.0, self._tokens - 1.0)
            return 0.0
        return (1.0 - self._tokens) / self.rate
