"""Overload admission: refuse new calls at the door before the calls already accepted suffer.

At twice what the machine can carry, FreeSWITCH saturates, its event-socket replies take seconds and calls
that were accepted stop producing their tickets. FreeSWITCH's own limits (max-sessions, sessions-per-second
in freeswitch-conf/autoload_configs/switch.conf.xml) cap what the switch takes; this module caps what the
app takes, from two things it measures itself:

- the ESL reply latency: how long the switch takes to answer a command (every command but `api`, whose
  reply waits for the command's own work): the 90th percentile of the last 10 s (``REPLY_LATENCY``);
- the app's own load: how late the event loop wakes a 100 ms ticker (``LoopLag``), weighted by the time
  each wait covered: the lag the loop had for half of the last 10 s or more. A slow moment (a 3 s stall in
  10 s) does not count; a loop that is late most of the time, or stands still for over 5 s, does. The
  figures start afresh once the app has started (``LoopLag.restart``): starting is not load.

Pure part: ``decide(active, latency, lag, limits, shedding)``. Once shedding, the app admits again only when
both figures fell under half their limit (``RESUME``), so it does not flap at the edge. A refused call gets
a 503 (the carrier fails over; unanswered hang-up NORMAL_CIRCUIT_CONGESTION) or, configured, a short busy
prompt in early media before the hang-up.
"""
from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

import gevent

log = logging.getLogger(__name__)

RESUME = 0.5           # admit again below this share of each limit
WINDOW_SECONDS = 10.0  # how far back the figures look
MIN_SAMPLES = 5        # fewer samples in the window judge nothing (a quiet switch is not a slow one)
TICK_SECONDS = 0.1

REFUSE_MODES = ("503", "busy")


@dataclass(frozen=True)
class AdmissionLimits:
    """When the app refuses new calls (HOTLINE_MAX_CALLS, HOTLINE_OVERLOAD_*). A limit of 0 is off."""

    max_calls: int = 1000
    reply_seconds: float = 2.0   # ESL reply latency (90th percentile of the last 10 s)
    # Event-loop lag (what it was for half of the last 10 s). 2 s: a caller's prompts and keys are already
    # seconds late; less shut the door on a machine merely busy with other work (the shared 2-core one).
    lag_seconds: float = 2.0
    refuse: str = "503"          # 503: hang up unanswered (SIP 503); busy: a short busy prompt, then hang up

    @classmethod
    def from_extra(cls, extra: Mapping[str, str], max_calls: int = 1000) -> "AdmissionLimits":
        """Read HOTLINE_OVERLOAD_REPLY_SECONDS, _LAG_SECONDS and _REFUSE (503 or busy); bad values raise."""
        values: dict = {"max_calls": max_calls}
        for name, key in (("reply_seconds", "REPLY_SECONDS"), ("lag_seconds", "LAG_SECONDS")):
            raw = extra.get(f"HOTLINE_OVERLOAD_{key}")
            if raw is None or str(raw).strip() == "":
                continue
            text = str(raw).strip()
            try:
                if not text.isascii():
                    raise ValueError
                value = float(text)
            except ValueError:
                raise ValueError(f"HOTLINE_OVERLOAD_{key}: a number of seconds, got {raw!r}") from None
            if not 0 <= value <= 600:
                raise ValueError(f"HOTLINE_OVERLOAD_{key}: 0 (off) to 600 seconds, got {raw!r}")
            values[name] = value
        refuse = str(extra.get("HOTLINE_OVERLOAD_REFUSE", "503") or "503").strip().lower()
        if refuse not in REFUSE_MODES:
            raise ValueError(f"HOTLINE_OVERLOAD_REFUSE: 503 or busy, got {refuse!r}")
        values["refuse"] = refuse
        return cls(**values)


def decide(active: int, latency: float, lag: float, limits: AdmissionLimits, shedding: bool) -> str:
    """Why a new call is refused now ('' to admit it): 'full' at max_calls, 'slow_switch' when the ESL
    replies are slow, 'overloaded' when the app's loop is late; while ``shedding``, until both figures are
    back under RESUME of their limit."""
    if limits.max_calls and active >= limits.max_calls:
        return "full"
    factor = RESUME if shedding else 1.0
    if limits.reply_seconds and latency > limits.reply_seconds * factor:
        return "slow_switch"
    if limits.lag_seconds and lag > limits.lag_seconds * factor:
        return "overloaded"
    return ""


class RecentFigures:
    """Samples of one figure over the last ``window`` seconds; ``level()`` is their ``quantile`` (each sample
    counted by its weight), 0 below ``min_samples``."""

    def __init__(self, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic,
                 max_samples: int = 4096, quantile: float = 0.9, min_samples: int = MIN_SAMPLES):
        self.window, self.clock, self.quantile, self.min_samples = window, clock, quantile, min_samples
        self._samples: collections.deque[tuple[float, float, float]] = collections.deque(maxlen=max_samples)

    def record(self, value: float, weight: float = 1.0) -> None:
        self._samples.append((self.clock(), value, weight))

    def _prune(self) -> None:
        limit = self.clock() - self.window
        while self._samples and self._samples[0][0] < limit:
            self._samples.popleft()

    def level(self) -> float:
        self._prune()
        if not self._samples or len(self._samples) < self.min_samples:
            return 0.0
        ordered = sorted((value, weight) for _at, value, weight in self._samples)
        share = self.quantile * sum(weight for _value, weight in ordered)
        seen = 0.0
        for value, weight in ordered:
            seen += weight
            if seen > share:
                return value
        return ordered[-1][0]

    def clear(self) -> None:
        self._samples.clear()

    def __len__(self) -> int:
        self._prune()
        return len(self._samples)


# The process's ESL reply latency: switch.protocol records every command's round trip here.
REPLY_LATENCY = RecentFigures()


class LoopLag:
    """A greenlet that sleeps TICK_SECONDS and records how much later than asked it woke up."""

    def __init__(self, figures: Optional[RecentFigures] = None, tick: float = TICK_SECONDS):
        self.figures = figures if figures is not None else RecentFigures(quantile=0.5, min_samples=1)
        self.tick = tick
        self._greenlet: Optional[gevent.Greenlet] = None

    def start(self) -> "LoopLag":
        if self._greenlet is None or self._greenlet.dead:
            self._greenlet = gevent.spawn(self._run)
        return self

    def restart(self) -> None:
        """Forget what was measured so far (the app's start, which is not load)."""
        self.figures.clear()

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _run(self) -> None:
        while True:
            asked = time.monotonic()
            gevent.sleep(self.tick)
            waited = time.monotonic() - asked
            self.figures.record(max(0.0, waited - self.tick), weight=waited)


class Admission:
    """The outbound server's door: ``refusal(active)`` says why a new call is refused ('' admits it),
    keeping the shedding state, counting refusals, and raising the overload alarm when shedding starts."""

    def __init__(self, limits: AdmissionLimits | None = None, latency: RecentFigures | None = None,
                 lag: LoopLag | None = None, alarm: Optional[Callable[..., object]] = None):
        self.limits = limits or AdmissionLimits()
        self.latency = latency if latency is not None else REPLY_LATENCY
        self.lag = lag if lag is not None else LoopLag()
        self.alarm = alarm
        self.shedding = ""
        self.refused: collections.Counter[str] = collections.Counter()

    def figures(self) -> tuple[float, float]:
        return self.latency.level(), self.lag.figures.level()

    def refusal(self, active: int) -> str:
        latency, lag = self.figures()
        reason = decide(active, latency, lag, self.limits, bool(self.shedding))
        if reason in ("slow_switch", "overloaded"):
            if not self.shedding:
                # Shedding before the alarm: storing it waits for the database, and every call arriving
                # meanwhile raised it again (bench/simulation.py: 15 of the 20 pooled connections at once, each
                # waiting seconds on the one alarm row, the callers in the menus timing out behind them).
                self.shedding = reason
                log.warning("overload: refusing new calls (%s: ESL replies %.2f s, loop lag %.2f s, %d calls)",
                            reason, latency, lag, active)
                self._alarm(reason, latency, lag, active)
            self.shedding = reason
        elif self.shedding and reason != "full":
            log.warning("overload over: admitting calls again (ESL replies %.2f s, loop lag %.2f s, %d calls; "
                        "%d refused meanwhile)", latency, lag, active, sum(self.refused.values()))
            self.shedding = ""
        if reason:
            self.refused[reason] += 1
        return reason

    def _alarm(self, reason: str, latency: float, lag: float, active: int) -> None:
        if self.alarm is None:
            from core.alarms import raise_alarm

            alarm = raise_alarm
        else:
            alarm = self.alarm
        text = (f"呼入过载，新来电被拒绝 / overload: new calls refused ({reason}: ESL replies {latency:.1f} s, "
                f"loop lag {lag:.1f} s, {active} calls up)")
        alarm("overload", text, subject="calls", severity="critical")

    def status(self) -> dict:
        latency, lag = self.figures()
        return {"shedding": self.shedding, "reply_seconds": round(latency, 3), "lag_seconds": round(lag, 3),
                "refused": dict(self.refused), "limits": {"max_calls": self.limits.max_calls,
                                                          "reply_seconds": self.limits.reply_seconds,
                                                          "lag_seconds": self.limits.lag_seconds,
                                                          "refuse": self.limits.refuse}}
