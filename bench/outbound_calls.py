"""Benchmark: 100, 500 and 1000 concurrent calls through the fake FreeSWITCH into switch.OutboundServer.

The fake switch (tests/fakeswitch) runs in a separate process so the app process's CPU and memory are
its own.  Each size runs in a fresh app process.  Each call: connect/myevents/event/linger, answer,
wait until all N calls are up, then `--executes` round trips of `set` spread over `--spread` seconds,
then hang up.

Printed per size: call set-up rate (accept -> handler running; calls arrive at --rate/s, default the
30/s target, 0 = all at once), set-up latency, execute
round trip p50/p99 (to the fake and back), the part of it added by the app (encode + write of the
sendmsg, and recv of the completion -> handler running again), app memory per call (RSS growth / N) and
app CPU.  Targets: 1000 concurrent, 30 new calls/s, < 5 ms p99 added by the app.  Asserts nothing.

    .venv/bin/python bench/outbound_calls.py [--sizes 100,500,1000] [--executes 5]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import pct  # noqa: E402


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# --- the fake switch process -------------------------------------------------------------------------

def run_fake(host: str, port: int, calls: int, rate: float) -> int:
    """Place `calls` calls into the app, `rate` per second (0: all at once); report how they ended."""
    import gevent

    from tests.fakeswitch import FakeSwitch

    _raise_fd_limit()
    fs = FakeSwitch(password="ClueCon", time_scale=0.01)
    fs.start()
    placed = []
    start = time.monotonic()
    for i in range(calls):
        if rate > 0:
            gevent.sleep(max(0.0, start + i / rate - time.monotonic()))
        placed.append(fs.place_call((host, port), caller=f"1380000{i:04d}", script=[], connect_timeout=30))
    causes: dict[str, int] = {}
    for call in placed:
        try:
            call.wait_ended(timeout=300)
            causes[str(call.hangup_cause)] = causes.get(str(call.hangup_cause), 0) + 1
        except TimeoutError:
            causes["not ended"] = causes.get("not ended", 0) + 1
    gevent.sleep(0.1)
    print(json.dumps({"causes": causes}), flush=True)
    fs.stop()
    return 0


# --- the app process -------------------------------------------------------------------------------------

class _TimingSocket:
    """Wraps the accepted socket to timestamp the app's own reads and writes."""

    def __init__(self, sock):
        self._sock = sock
        self.last_recv_at = 0.0
        self.last_send_done_at = 0.0

    def recv(self, size):
        data = self._sock.recv(size)
        self.last_recv_at = time.perf_counter()
        return data

    def recv_into(self, buffer):
        size = self._sock.recv_into(buffer)
        self.last_recv_at = time.perf_counter()
        return size

    def sendall(self, data):
        result = self._sock.sendall(data)
        self.last_send_done_at = time.perf_counter()
        return result

    def __getattr__(self, name):
        return getattr(self._sock, name)


def run_size(calls: int, executes: int, spread: float, rate: float) -> dict:
    """One size in this (fresh) process: start the server, run the fake, measure; returns a result row."""
    from gevent import monkey

    monkey.patch_all()
    import gevent
    import gevent.event
    from gevent import subprocess as gsubprocess

    from switch.outbound import OutboundServer

    _raise_fd_limit()
    accepted_at: dict[int, float] = {}
    accept_times: list[float] = []
    started: list[float] = []
    setup_latency: list[float] = []
    round_trips: list[float] = []
    app_added: list[float] = []
    all_up = gevent.event.Event()

    def handler(session):
        now = time.perf_counter()
        started.append(now)
        setup_latency.append(now - accepted_at.pop(id(session._channel.sock), now))
        if len(started) == calls:
            all_up.set()
        session.answer()
        session.wait_for(all_up, timeout=300)
        sock = session._channel.sock
        for i in range(executes):
            gevent.sleep(random.uniform(0, 2.0 * spread / executes))   # about `spread` s in all
            t0 = time.perf_counter()
            session.execute("set", f"bench_step={i}", timeout=60)
            t1 = time.perf_counter()
            round_trips.append(t1 - t0)
            app_added.append((sock.last_send_done_at - t0) + (t1 - sock.last_recv_at))
        session.hangup()

    class TimedServer(OutboundServer):
        def _on_connection(self, sock, address):
            wrapped = _TimingSocket(sock)
            accepted_at[id(wrapped)] = time.perf_counter()
            accept_times.append(accepted_at[id(wrapped)])
            return super()._on_connection(wrapped, address)

    def watchdog():
        # calls the fake could not connect never start: stop waiting once no new call came for 10 s
        last, since = -1, time.monotonic()
        while not all_up.is_set():
            gevent.sleep(0.5)
            if len(started) != last:
                last, since = len(started), time.monotonic()
            elif started and time.monotonic() - since > 10:
                all_up.set()

    server = TimedServer("127.0.0.1", 0, handler, max_calls=calls + 10)
    server.start()
    gevent.spawn(watchdog)
    gevent.sleep(0.2)
    rss_before = _rss_kib()
    cpu_before = time.process_time()
    fake = gsubprocess.Popen([sys.executable, __file__, "--fake", str(calls), str(server.address[1]), str(rate)],
                             stdout=gsubprocess.PIPE, cwd=str(ROOT))
    if not all_up.wait(300):
        fake.kill()
        return {"calls": calls, "error": f"only {len(started)} calls came up"}
    rss_up = _rss_kib()
    out, _ = fake.communicate(timeout=600)
    cpu = time.process_time() - cpu_before
    server.stop(drain_timeout=10)
    report = json.loads(out.decode().strip().splitlines()[-1]) if out.strip() else {}
    span = max(started) - min(started) if len(started) > 1 else 0.0
    setup_rate = len(started) / (max(started) - min(accept_times)) if started else 0.0
    return {
        "calls": calls, "up": len(started), "setup_rate": setup_rate, "setup_span": span,
        "setup_p50_ms": pct(setup_latency, 50) * 1e3, "setup_p99_ms": pct(setup_latency, 99) * 1e3,
        "rt_p50_ms": pct(round_trips, 50) * 1e3, "rt_p99_ms": pct(round_trips, 99) * 1e3,
        "app_p50_ms": pct(app_added, 50) * 1e3, "app_p99_ms": pct(app_added, 99) * 1e3,
        "kib_per_call": (rss_up - rss_before) / max(1, len(started)), "cpu_s": cpu,
        "executes": len(round_trips), "causes": report.get("causes", {}),
    }


def app_path_cpu(rounds: int = 3000) -> float | None:
    """CPU microseconds the app spends on one execute round trip, measured without the network.

    Encode the sendmsg, then frame the recorded reply, CHANNEL_EXECUTE and CHANNEL_EXECUTE_COMPLETE
    (from the real capture) the way a session does: peek names, parse the completion.  Unlike the
    wall-clock columns this does not depend on what else the machine is running.
    """
    from switch.codec import FrameParser, encode_command
    from switch.transcript import load_transcript

    path = ROOT.parent / "shared" / "esl" / "outbound_socket_async_full.txt"
    if not path.exists():
        return None
    lines = [l.data for l in load_transcript(path) if l.conn == "OUT" and l.direction == "S->C"]
    reply = next(d for d in lines if d.startswith(b"Content-Type: command/reply\nReply-Text: +OK\n"))
    execute = next(d for d in lines if b"Event-Name: CHANNEL_EXECUTE\n" in d and b"Application: set" in d)
    complete = next(d for d in lines if b"Event-Name: CHANNEL_EXECUTE_COMPLETE\n" in d and b"Application: set" in d)
    data = reply + execute + complete
    parser = FrameParser(lazy_events=True)
    start = time.process_time()
    for i in range(rounds):
        encode_command("sendmsg", {"call-command": "execute", "execute-app-name": "set",
                                   "execute-app-arg": f"bench_step={i}", "Event-UUID": "0" * 36})
        for frame in parser.feed(data):
            if frame.event_name == "CHANNEL_EXECUTE_COMPLETE":
                frame.event.get("Application-UUID")
    return (time.process_time() - start) / rounds * 1e6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,500,1000")
    parser.add_argument("--executes", type=int, default=5, help="execute round trips per call")
    parser.add_argument("--spread", type=float, default=30.0,
                        help="seconds over which a call spreads its executes (an IVR call runs an app "
                             "every few seconds)")
    parser.add_argument("--rate", type=float, default=30.0,
                        help="new calls per second the fake places (0: all at once, a burst)")
    parser.add_argument("--fake", nargs=3, metavar=("CALLS", "PORT", "RATE"), help=argparse.SUPPRESS)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fake:
        return run_fake("127.0.0.1", int(args.fake[1]), int(args.fake[0]), float(args.fake[2]))
    if args.one:
        print(json.dumps(run_size(args.one, args.executes, args.spread, args.rate)), flush=True)
        return 0
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        done = subprocess.run([sys.executable, __file__, "--one", str(size), "--executes", str(args.executes),
                               "--spread", str(args.spread), "--rate", str(args.rate)],
                              capture_output=True, text=True, cwd=str(ROOT), timeout=1200)
        lines = [l for l in done.stdout.splitlines() if l.startswith("{")]
        if done.returncode != 0 or not lines:
            print(f"size {size}: failed\n{done.stderr[-2000:]}")
            continue
        rows.append(json.loads(lines[-1]))
    print(f"outbound calls through the fake FreeSWITCH (separate process); app process measured; "
          f"{args.executes} executes per call over ~{args.spread:.0f} s; calls arrive "
          + (f"at {args.rate:g}/s" if args.rate > 0 else "all at once"))
    print(f"{'calls':>6} {'up':>5} {'setup/s':>8} {'setup p50':>10} {'setup p99':>10} {'exec p50':>9} "
          f"{'exec p99':>9} {'app p50':>8} {'app p99':>8} {'KiB/call':>9} {'app CPU s':>9}  hang-up causes")
    for r in rows:
        if "error" in r:
            print(f"{r['calls']:>6}  {r['error']}")
            continue
        print(f"{r['calls']:>6} {r['up']:>5} {r['setup_rate']:>8.0f} {r['setup_p50_ms']:>8.1f}ms {r['setup_p99_ms']:>8.1f}ms "
              f"{r['rt_p50_ms']:>7.2f}ms {r['rt_p99_ms']:>7.2f}ms {r['app_p50_ms']:>6.2f}ms {r['app_p99_ms']:>6.2f}ms "
              f"{r['kib_per_call']:>9.1f} {r['cpu_s']:>9.2f}  {r['causes']}")
    print(f"machine load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
          "(fake switch and other processes share them; latencies are wall-clock)")
    print("(exec = `set` round trip to the fake and back; app = encode+write of the sendmsg plus recv of the "
          "completion until the handler runs again)")
    cpu_us = app_path_cpu()
    if cpu_us is not None:
        print(f"app CPU per execute round trip (encode + frame + parse the completion, no network): {cpu_us:.0f} us")
    big = [r for r in rows if "error" not in r and r["calls"] >= 1000]
    if big:
        r = big[-1]
        verdict = [f"1000 concurrent: {'yes' if r['up'] >= 1000 else 'no'} ({r['up']} up)",
                   f"30 new calls/s: {'yes' if r['setup_rate'] >= 29 else 'no'} ({r['setup_rate']:.0f}/s set up, "
                   f"p99 set-up {r['setup_p99_ms']:.0f} ms)",
                   f"<5 ms p99 added by the app: {'yes' if r['app_p99_ms'] < 5 else 'no'} ({r['app_p99_ms']:.2f} ms)"]
        print("targets: " + "; ".join(verdict))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
