"""Time: one place that says what time it is, so tests can control it, plus the configured zone."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


class Clock:
    """Wall clock in the configured time zone; inject a FixedClock in tests."""

    def __init__(self, tz: str = "Asia/Shanghai"):
        self.tz = ZoneInfo(tz)

    def now(self) -> dt.datetime:
        """Aware 'now' in the configured zone."""
        return dt.datetime.now(self.tz)

    def today(self) -> dt.date:
        return self.now().date()

    def local(self, moment: dt.datetime) -> dt.datetime:
        """Express a stored (aware or naive-UTC) datetime in the configured zone."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
        return moment.astimezone(self.tz)


class FixedClock(Clock):
    """A clock that only moves when told to (tests, benchmarks)."""

    def __init__(self, start: dt.datetime, tz: str = "Asia/Shanghai"):
        super().__init__(tz)
        if start.tzinfo is None:
            start = start.replace(tzinfo=self.tz)
        self._now = start

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, **delta) -> dt.datetime:
        self._now = self._now + dt.timedelta(**delta)
        return self._now

    def set(self, moment: dt.datetime) -> None:
        self._now = moment if moment.tzinfo else moment.replace(tzinfo=self.tz)


def parse_day(raw: str | None) -> dt.date | None:
    """A date typed into a form as YYYY-MM-DD; None when empty, ValueError when malformed."""
    raw = (raw or "").strip()
    if not raw:
        return None
    if len(raw) != 10:  # fromisoformat would also take 20260101 and week dates
        raise ValueError(f"not a YYYY-MM-DD date: {raw[:20]!r}")
    return dt.date.fromisoformat(raw)
