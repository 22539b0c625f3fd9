"""Overload admission (issue 16): the pure decision, the recent figures it reads, the settings, and the door's
state (shedding with hysteresis, the alarm once per episode)."""
from __future__ import annotations

import gevent
import pytest

from switch.admission import Admission, AdmissionLimits, LoopLag, RecentFigures, decide

LIMITS = AdmissionLimits(max_calls=10, reply_seconds=2.0, lag_seconds=0.5)


@pytest.mark.parametrize("active, latency, lag, shedding, expected", [
    (0, 0.0, 0.0, False, ""),
    (9, 1.9, 0.4, False, ""),                  # under every limit
    (10, 0.0, 0.0, False, "full"),             # at max_calls
    (3, 2.5, 0.0, False, "slow_switch"),       # the switch answers slowly
    (3, 0.1, 0.8, False, "overloaded"),        # the app's own loop is late
    (3, 1.5, 0.0, True, "slow_switch"),        # shedding: 1.5 s is not yet under half the limit
    (3, 0.9, 0.3, True, "overloaded"),         # replies recovered, the loop not yet
    (3, 0.9, 0.2, True, ""),                   # both under half: admit again
    (12, 0.0, 0.0, True, "full"),
])
def test_decide(active, latency, lag, shedding, expected):
    """Should refuse at max_calls, when the replies or the loop pass their limit, and while shedding until
    both are back under half of it."""
    assert decide(active, latency, lag, LIMITS, shedding) == expected


def test_a_limit_of_zero_is_off():
    """Should never refuse for a figure whose limit is 0, nor for calls when max_calls is 0."""
    off = AdmissionLimits(max_calls=0, reply_seconds=0, lag_seconds=0)
    assert decide(100000, 999.0, 999.0, off, True) == ""


def test_recent_figures_judge_nothing_on_few_samples_and_forget_old_ones():
    """Should give 0 below five samples, the 90th percentile above (one spike does not count), and drop
    samples older than the window."""
    now = [0.0]
    figures = RecentFigures(window=10.0, clock=lambda: now[0])
    for value in (5.0, 5.0, 5.0, 5.0):
        figures.record(value)
    assert figures.level() == 0.0
    figures.record(5.0)
    assert figures.level() == 5.0
    now[0] = 11.0
    assert figures.level() == 0.0 and len(figures) == 0
    spikes = RecentFigures(window=10.0, clock=lambda: now[0])
    for value in [0.01] * 30 + [9.0, 9.0]:
        spikes.record(value)
    assert spikes.level() == 0.01


def test_settings_from_the_environment():
    """Should read HOTLINE_OVERLOAD_* and refuse malformed values with the setting's name."""
    limits = AdmissionLimits.from_extra({"HOTLINE_OVERLOAD_REPLY_SECONDS": "1.5", "HOTLINE_OVERLOAD_LAG_SECONDS": "0",
                                         "HOTLINE_OVERLOAD_REFUSE": "Busy"}, max_calls=300)
    assert limits == AdmissionLimits(max_calls=300, reply_seconds=1.5, lag_seconds=0.0, refuse="busy")
    assert AdmissionLimits.from_extra({}) == AdmissionLimits()
    for key, value in (("REPLY_SECONDS", "fast"), ("LAG_SECONDS", "-1"), ("REPLY_SECONDS", "１"),
                       ("REFUSE", "drop")):
        with pytest.raises(ValueError, match=f"HOTLINE_OVERLOAD_{key}"):
            AdmissionLimits.from_extra({f"HOTLINE_OVERLOAD_{key}": value})


class _Figures(RecentFigures):
    def __init__(self):
        super().__init__()
        self.value = 0.0

    def level(self):
        return self.value


def test_the_door_sheds_with_hysteresis_and_alarms_once_per_episode():
    """Should refuse while the replies are slow, keep refusing until they are under half the limit, count
    the refusals by reason, and raise the overload alarm once when shedding starts (again at the next
    episode)."""
    alarms = []
    latency, lag = _Figures(), LoopLag(_Figures())
    door = Admission(LIMITS, latency=latency, lag=lag, alarm=lambda *a, **k: alarms.append((a, k)))
    assert door.refusal(3) == ""
    latency.value = 3.0
    assert door.refusal(3) == "slow_switch" and door.refusal(4) == "slow_switch"
    latency.value = 1.5
    assert door.refusal(4) == "slow_switch"      # not yet under half
    latency.value = 0.5
    assert door.refusal(4) == "" and door.shedding == ""
    assert door.refusal(10) == "full"
    lag.figures.value = 0.9
    assert door.refusal(2) == "overloaded"
    assert [a[0] for a, _k in alarms] == ["overload", "overload"]
    assert alarms[0][1] == {"subject": "calls", "severity": "critical"} and "slow_switch" in alarms[0][0][1]
    assert door.refused == {"slow_switch": 3, "full": 1, "overloaded": 1}
    assert door.status()["shedding"] == "overloaded"


def test_calls_arriving_while_the_alarm_is_stored_raise_no_other():
    """Should raise the overload alarm once when many calls arrive while storing it waits (the database):
    every one of them raised it again, each holding a pooled connection on the same alarm row."""
    alarms = []

    def slow_alarm(*args, **kwargs):
        alarms.append(args)
        gevent.sleep(0.05)

    latency = _Figures()
    latency.value = 3.0
    door = Admission(LIMITS, latency=latency, lag=LoopLag(_Figures()), alarm=slow_alarm)
    refusals = [gevent.spawn(door.refusal, 3) for _ in range(10)]
    gevent.joinall(refusals, timeout=5, raise_error=True)
    assert [r.value for r in refusals] == ["slow_switch"] * 10 and len(alarms) == 1


def test_lag_counts_the_time_the_loop_was_behind():
    """Should weigh each lag by the time its wait covered (half of the time, as LoopLag judges): a 1 s or a
    3 s stall among idle ticks does not count, a loop standing still for most of the window or late on most
    ticks does."""
    now = [0.0]

    def figures():
        return RecentFigures(window=10.0, clock=lambda: now[0], quantile=0.5, min_samples=1)
    one_stall, long_stall, hung, busy = figures(), figures(), figures(), figures()
    for _ in range(70):
        one_stall.record(0.0, 0.1)
        long_stall.record(0.0, 0.1)
    for _ in range(40):
        hung.record(0.0, 0.1)
    one_stall.record(1.0, 1.1)
    long_stall.record(3.0, 3.1)
    hung.record(6.0, 6.1)
    assert hung.level() == 6.0
    for i in range(40):
        busy.record(0.3 if i % 4 else 0.0, 0.4)  # late on three ticks of four
    assert one_stall.level() == 0.0 and long_stall.level() == 0.0 and busy.level() == 0.3


def test_loop_lag_sees_a_blocked_loop():
    """Should record how late the ticker wakes when something blocks the loop (a blocking call in the hub)."""
    import time

    lag = LoopLag(RecentFigures(), tick=0.01).start()
    try:
        for _ in range(6):
            gevent.sleep(0.011)
            time.sleep(0.05)  # blocks the hub: the ticker wakes about 40 ms late
        assert lag.figures.level() >= 0.02
    finally:
        lag.stop()
