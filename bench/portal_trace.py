"""bench/portal.py ``--trace``: where a serving process's slow requests spent their time (issue 11's tail).

In each serving process (a web worker, or the bench's own process on SQLite) a greenlet switch tracer measures
every run of a greenlet between two switches: while one runs, the hub and every other request wait. Per request:
its time in the app, its own runs (CPU on the hub), the runs of other greenlets while it was in the app (time it
may have waited behind them), the longest of those with the request it served, and the garbage collector's pauses
in between. At the end the process prints to stderr the slowest requests, the longest runs (the hub blocked) and
the collector's pauses per generation. Switched on by the environment (BENCH_PORTAL_TRACE=1), so the workers
inherit it.
"""
from __future__ import annotations

import gc
import os
import resource
import sys
import time
from collections import deque

import greenlet

ENV = "BENCH_PORTAL_TRACE"
SLOWEST = 20
KEEP_RUNS = 200_000  # runs of 0.5 ms or more, newest last


class Tracer:
    """The switch tracer, the collector's callback and the slowest requests of this process."""

    def __init__(self):
        self.last = time.perf_counter()
        self.last_cpu = time.thread_time()  # a run's wall time less its CPU time: the process not on a CPU
        self.runs: deque = deque(maxlen=KEEP_RUNS)  # (end, seconds, label, greenlet) of runs >= 0.5 ms, not the hub's
        self.longest: list = []  # (seconds, label) of the longest runs
        self.gc_started = 0.0
        self.gc_pauses: dict[int, list[float]] = {}
        self.gc_log: deque = deque(maxlen=KEEP_RUNS)  # (end, seconds, generation)
        self.slowest: list = []  # (total, own, others, longest other, its label, gc, label)
        self.requests = 0
        self.first = None  # when the first request arrived: the slowest are shown at their second of the run
        self.in_app = 0
        self.most_in_app = 0

    def install(self) -> None:
        from gevent import get_hub

        self.hub = get_hub()
        greenlet.settrace(self.switched)
        gc.callbacks.append(self.collected)

    def switched(self, event, args) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        origin = args[0]
        took, took_cpu = now - self.last, cpu - self.last_cpu
        self.last, self.last_cpu = now, cpu
        if origin is self.hub or origin.parent is None:  # the hub polling (or the main greenlet), no request
            return
        origin.bench_own = getattr(origin, "bench_own", 0.0) + took
        origin.bench_own_cpu = getattr(origin, "bench_own_cpu", 0.0) + took_cpu
        # The run that a request's end fell in (from its last wait to its answer written) is that request's: a
        # request that waits for nothing (a picture, a kept page) is one run, labelled before its end cleared it.
        ended, origin.bench_ended = getattr(origin, "bench_ended", None), None
        if took >= 0.0005:
            label = getattr(origin, "bench_label", None) or ended or _name(origin)
            self.runs.append((now, took, label, id(origin)))
            if len(self.longest) < SLOWEST or took > self.longest[-1][0]:
                self.longest.append((took, took_cpu, label))
                self.longest.sort(reverse=True)
                del self.longest[SLOWEST:]

    def collected(self, phase, info) -> None:
        now = time.perf_counter()
        if phase == "start":
            self.gc_started = now
            return
        took = now - self.gc_started
        self.gc_pauses.setdefault(info["generation"], []).append(took)
        self.gc_log.append((now, took, info["generation"]))

    def begin(self, label: str):
        current = greenlet.getcurrent()
        current.bench_label = label
        current.bench_own = current.bench_own_cpu = 0.0
        if self.first is None:
            self.first = time.perf_counter()
        self.in_app += 1
        self.most_in_app = max(self.most_in_app, self.in_app)
        return time.perf_counter()

    def end(self, started: float) -> None:
        now = time.perf_counter()
        self.in_app -= 1
        self.requests += 1
        current = greenlet.getcurrent()
        total = now - started
        own = getattr(current, "bench_own", 0.0) + (now - self.last)
        own_cpu = getattr(current, "bench_own_cpu", 0.0) + (time.thread_time() - self.last_cpu)
        label = current.bench_label
        current.bench_label, current.bench_ended = None, label
        if len(self.slowest) >= SLOWEST and total <= self.slowest[-1][0]:
            return
        others, worst = 0.0, (0.0, "")
        for end, took, run_label, origin in reversed(self.runs):
            if end <= started:
                break
            if origin == id(current):
                continue
            others += min(took, end - started)
            worst = max(worst, (took, run_label))
        collected = sum(took for end, took, _gen in self.gc_log if end > started)
        self.slowest.append((total, own, own_cpu, others, worst[0], worst[1], collected,
                             f"{label} (at {started - self.first:.1f} s)"))
        self.slowest.sort(reverse=True)
        del self.slowest[SLOWEST:]

    def report(self, out=sys.stderr) -> None:
        ms = 1000
        print(f"--- trace (pid {os.getpid()}): {self.requests} requests, at most {self.most_in_app} in the app at "
              "once", file=out)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(f"  process: {usage.ru_utime + usage.ru_stime:.1f} s CPU, {usage.ru_nivcsw} involuntary context "
              "switches (taken off a CPU while running)", file=out)
        print(f"  slowest requests: total / own runs (their CPU) / others' runs meanwhile / longest other run (its "
              "request) / gc meanwhile, ms", file=out)
        for total, own, own_cpu, others, worst, worst_label, collected, label in self.slowest:
            print(f"  {total * ms:8.1f} {own * ms:7.1f} ({own_cpu * ms:5.1f}) {others * ms:8.1f} {worst * ms:7.1f} "
                  f"({worst_label}) gc {collected * ms:5.1f}  {label}", file=out)
        print("  longest runs without a switch (the hub blocked), wall (CPU) ms:", file=out)
        for took, took_cpu, label in self.longest:
            print(f"  {took * ms:8.1f} ({took_cpu * ms:5.1f})  {label}", file=out)
        for generation, pauses in sorted(self.gc_pauses.items()):
            pauses = sorted(pauses)
            print(f"  gc generation {generation}: {len(pauses)} pauses, max {pauses[-1] * ms:.1f} ms, "
                  f"total {sum(pauses) * ms:.0f} ms", file=out)
        out.flush()


def _name(greenlet_) -> str:
    """A greenlet outside a request: its class and the function it runs (a handler between requests, the bus...)."""
    run = getattr(greenlet_, "_run", None) or getattr(greenlet_, "run", None)
    target = getattr(run, "__qualname__", None) or type(run).__name__
    return f"{type(greenlet_).__name__}:{getattr(run, '__module__', '')}.{target}"


TRACER: Tracer | None = None


def tracer() -> Tracer | None:
    """This process's tracer, installed on first use when BENCH_PORTAL_TRACE is set (None otherwise)."""
    global TRACER
    if TRACER is None and os.environ.get(ENV):
        TRACER = Tracer()
        TRACER.install()
    return TRACER
