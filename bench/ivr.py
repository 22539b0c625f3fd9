"""Benchmark: concurrent callers walking the default IVR tree through the fake FreeSWITCH.

The fake switch (tests/fakeswitch) runs in its own process and places N calls at once; each caller follows
one of three scripts in turn: the complaint recording (2, 2, speaks, #, 1: a ticket is created in the real
database and the number read back), the status query (2, 3, a number, 1, a PIN) and the main menu with no
key (to a person; nobody answers, so a message is left). The app process runs switch.OutboundServer with
ivr.runner.run_call on a fresh SQLite database, or a PostgreSQL schema of its own (``--backend``; both by
default when PostgreSQL answers), and the real rendered prompts. Calls arrive at 30 per second
(FreeSWITCH's default sessions-per-second) and run in real time, so with 1000 callers about all of them are
on the line at once.

Printed per size: calls completed, CPU time of the app per call, p50/p99 latency between an event the app
reads and the next command it writes (the app's reaction time), peak memory of the app (max RSS), tickets
created, each reaction p99 beside its aim (under 50 ms with 1000 callers, issue 15 item 9) and, on
PostgreSQL, the most connections the app held at once. Asserts nothing.

    .venv/bin/python bench/ivr.py [--sizes 100,1000] [--backend sqlite|postgres|both] [--pg URL]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import DEFAULT_PG, available_backends, pct  # noqa: E402

REACT_AIM_MS = 50.0  # reaction p99 with 1000 callers (issue 15 item 9)


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- the fake switch process -------------------------------------------------------------------------
def run_fake(port: int, calls: int, rate: float = 30.0) -> int:
    """Place ``calls`` scripted callers at once; print how they ended as one JSON line."""
    import gevent

    from tests.fakeswitch import FakeSwitch, Press, Speak

    _raise_fd_limit()
    scripts = [
        lambda: [Press("2", timeout=300), Press("2", timeout=300), Speak(3, timeout=300), Press("#", timeout=300),
                 Press("1", timeout=300)],
        lambda: [Press("2", timeout=300), Press("3", timeout=300), Press("12345678#", timeout=300),
                 Press("1", timeout=300), Press("123456#", timeout=300)],
        lambda: [Speak(3, timeout=300), Press("#", timeout=300)],
    ]
    # Real time: prompts last as long as they sound and timeouts are the tree's own, so the fake (pure
    # Python, writing every recording sample by sample) is not what limits the calls; 1000 callers then
    # really are on the line together.
    fs = FakeSwitch(password="ClueCon", time_scale=1.0)
    fs.start()
    placed = []
    for i in range(calls):
        # Arrivals at FreeSWITCH's default 30 sessions per second: the calls overlap for minutes, so all
        # of them are on the line together, without every caller reaching the same step in the same instant.
        placed.append(fs.place_call(("127.0.0.1", port), caller=f"1380000{i:04d}", script=scripts[i % 3](),
                                    connect_timeout=60))
        gevent.sleep(1.0 / rate)
    causes: dict[str, int] = {}
    script_errors: list[str] = []
    for call in placed:
        try:
            call.wait_ended(timeout=900)
            key = f"{call.hangup_cause} by {call.hangup_by}"
        except TimeoutError:
            key = "not ended"
        causes[key] = causes.get(key, 0) + 1
        if call.script_error is not None:
            script_errors.append(str(call.script_error)[:300])
    gevent.sleep(0.1)
    print(json.dumps({"causes": causes, "script_errors": len(script_errors),
                      "first_script_error": script_errors[0] if script_errors else ""}), flush=True)
    fs.stop()
    return 0


# --- the app process -------------------------------------------------------------------------------------
class _TimingSocket:
    """Wraps an accepted socket: the time from the last read (the event that triggered it) to each command."""

    reactions: list[float] = []

    def __init__(self, sock):
        self._sock = sock
        self._last_recv = 0.0

    def recv(self, size):
        data = self._sock.recv(size)
        if data:
            self._last_recv = time.perf_counter()
        return data

    def recv_into(self, buffer):
        size = self._sock.recv_into(buffer)
        if size:
            self._last_recv = time.perf_counter()
        return size

    def sendall(self, data):
        if self._last_recv:
            _TimingSocket.reactions.append(time.perf_counter() - self._last_recv)
            self._last_recv = 0.0
        return self._sock.sendall(data)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def run_size(calls: int, sounds: str, backend: str = "sqlite", pg_url: str = DEFAULT_PG) -> dict:
    """One size in this (fresh) process, on a fresh SQLite file or a PostgreSQL schema of its own."""
    from gevent import monkey

    monkey.patch_all()
    import gevent
    from gevent import subprocess as gsubprocess

    from caseflow import pins
    from caseflow.models import Ticket
    from core import db as core_db
    from core.config import load_config
    from hotline.schema import all_models, create_schema
    from ivr.runner import run_call
    from hotline.ivr_services import HotlineIvrServices
    from ivr.store import TreeStore
    from switch.outbound import OutboundServer

    _raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="bench-ivr-"))
    url, drop_schema = f"sqlite:///{work}/b.sqlite3", None
    if backend == "postgres":
        url, drop_schema = _pg_schema(pg_url, f"bench_ivr_{os.getpid()}")
    config = load_config({"var_dir": str(work), "sounds_dir": sounds, "recordings_dir": str(work / "rec"),
                          "mode": "test", "secret_key": "b" * 40, "database_url": url})
    core_db.bind_database(config.database_url)
    pins.install(pins.PinKeys.from_config(config))  # the IVR's tickets' PINs, as a product's start
    create_schema(all_models())
    trees = TreeStore()
    trees.ensure_default()
    services = HotlineIvrServices(config=config, trees=trees)
    done: list[str] = []
    errors: list[str] = []

    live = {"now": 0, "peak": 0}

    def handler(session):
        live["now"] += 1
        live["peak"] = max(live["peak"], live["now"])
        try:
            engine = run_call(session, services, config)
            done.append(engine.outcome)
        except Exception as exc:  # noqa: BLE001 - a benchmark counts failures instead of stopping
            errors.append(repr(exc))
        finally:
            live["now"] -= 1

    class TimedServer(OutboundServer):
        def _on_connection(self, sock, address):
            return super()._on_connection(_TimingSocket(sock), address)

    server = TimedServer("127.0.0.1", 0, handler, max_calls=calls + 10)
    server.start()
    gevent.sleep(0.2)
    peak_connections = [0]

    def sample_connections():
        while True:
            peak_connections[0] = max(peak_connections[0], _server_connections())
            gevent.sleep(0.5)

    sampler = gevent.spawn(sample_connections) if backend == "postgres" else None
    cpu_before = time.process_time()
    wall_before = time.perf_counter()
    fake = gsubprocess.Popen([sys.executable, __file__, "--fake", str(calls), str(server.address[1])],
                             stdout=gsubprocess.PIPE, cwd=str(ROOT))
    out, _ = fake.communicate(timeout=1800)
    deadline = time.monotonic() + 60
    while len(done) + len(errors) < calls and time.monotonic() < deadline:
        gevent.sleep(0.1)
    cpu = time.process_time() - cpu_before
    wall = time.perf_counter() - wall_before
    server.stop(drain_timeout=10)
    report = json.loads(out.decode().strip().splitlines()[-1]) if out.strip() else {}
    reactions = _TimingSocket.reactions
    if sampler is not None:
        sampler.kill()
    tickets = Ticket.select().count()
    if drop_schema is not None:
        core_db.database.close()
        drop_schema()
    outcomes: dict[str, int] = {}
    for outcome in done:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return {
        "calls": calls, "peak": live["peak"], "completed": len(done), "errors": len(errors), "cpu_ms_per_call": cpu / max(1, calls) * 1e3,
        "wall_s": wall, "react_p50_ms": pct(reactions, 50) * 1e3,
        "react_p99_ms": pct(reactions, 99) * 1e3, "reactions": len(reactions),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tickets": tickets, "outcomes": outcomes, "backend": backend, "connections": peak_connections[0],
        "causes": report.get("causes", {}),
        "first_error": errors[0] if errors else "", "script_errors": report.get("script_errors", 0),
        "first_script_error": report.get("first_script_error", ""),
    }


def _pg_schema(pg_url: str, schema: str):
    """(URL of a fresh schema ``schema`` on ``pg_url``, a function dropping it)."""
    import psycopg2

    def run(statement: str) -> None:
        conn = psycopg2.connect(pg_url, connect_timeout=3)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
        conn.close()

    run(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE; CREATE SCHEMA "{schema}"')
    from core.db import in_schema

    return in_schema(pg_url, schema), lambda: run(f'DROP SCHEMA "{schema}" CASCADE')


def _server_connections(port: int = 5432) -> int:
    """Sockets of this process connected to the PostgreSQL port now."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] in inodes and int(fields[2].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                count += 1
    return count


def _ensure_prompts() -> str:
    from core.config import load_config
    from ivr.prompts import render_all

    sounds = load_config().sounds_dir
    render_all(sounds, 8000)
    return str(sounds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--fake", nargs=2, metavar=("CALLS", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sounds", help=argparse.SUPPRESS)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--pg", default=os.environ.get("HOTLINE_TEST_PG", DEFAULT_PG))
    args = parser.parse_args(argv)
    if args.fake:
        return run_fake(int(args.fake[1]), int(args.fake[0]))
    if args.one:
        print(json.dumps(run_size(args.one, args.sounds, args.backend, args.pg)), flush=True)
        return 0
    backends = available_backends(args.pg) if args.backend == "both" else [args.backend]
    sounds = _ensure_prompts()
    rows = []
    for backend in backends:
        for size in [int(s) for s in args.sizes.split(",")]:
            done = subprocess.run([sys.executable, __file__, "--one", str(size), "--sounds", sounds, "--backend",
                                   backend, "--pg", args.pg], capture_output=True, text=True, cwd=str(ROOT),
                                  timeout=2400)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode != 0 or not lines:
                print(f"{backend} size {size}: failed\n{done.stderr[-2000:]}")
                continue
            rows.append(json.loads(lines[-1]))
    print("IVR: concurrent callers walking the default tree through the fake FreeSWITCH (separate process)")
    print(f"{'backend':<9} {'calls':>6} {'peak':>5} {'done':>5} {'errors':>6} {'CPU/call':>9} {'react p50':>10} "
          f"{'react p99':>10} {'aim p99':>8} {'peak RSS':>9} {'tickets':>7} {'wall':>7}  outcomes")
    for r in rows:
        print(f"{r['backend']:<9} {r['calls']:>6} {r['peak']:>5} {r['completed']:>5} {r['errors']:>6} "
              f"{r['cpu_ms_per_call']:>7.1f}ms {r['react_p50_ms']:>8.2f}ms {r['react_p99_ms']:>8.2f}ms "
              f"{REACT_AIM_MS:>6.0f}ms {r['peak_rss_mib']:>7.0f}MiB {r['tickets']:>7} {r['wall_s']:>6.1f}s  "
              f"{'within' if r['react_p99_ms'] < REACT_AIM_MS else 'NOT within'} {r['outcomes']}")
        if r["backend"] == "postgres":
            print(f"       PostgreSQL connections the app held at most: {r['connections']}")
        print(f"       hang-up causes at the fake: {r['causes']}")
        if r.get("script_errors"):
            print(f"       caller scripts that could not follow: {r['script_errors']}: {r['first_script_error']}")
        if r["first_error"]:
            print(f"       first error: {r['first_error']}")
    print("(react = from reading an event to writing the app's next command on that call's socket; CPU is the "
          "app process only, database writes included)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
