"""Benchmark: what the call process keeps per finished call (issue 15 item 11, the creep).

The whole product as run.py builds it (hotline.product.Product, monkey-patched, a fresh SQLite file) on the
fake FreeSWITCH in a process of its own: callers leave a complaint recording (2, 2, speech, #, 1) with at most
``--at`` on the line, prompts at ``--scale`` of their length, until ``--calls`` have finished. After
``--warm`` calls the app takes a tracemalloc snapshot and counts Python objects by type, again at the end;
printed: resident memory over the calls, the allocation sites that grew most between the two snapshots
and the object types whose count grew. Asserts nothing.

    .venv/bin/python bench/memory_creep.py [--calls 3000] [--warm 500] [--at 50] [--scale 0.02]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.live_parts import rss_kib  # noqa: E402
from bench.outbound_calls import _raise_fd_limit  # noqa: E402
from core.heap import release_free_heap  # noqa: E402


def _rss_kib() -> int:
    return rss_kib(os.getpid())


# --- the fake switch process -------------------------------------------------------------------------
def run_fake(calls: int, at: int, scale: float, record_dir: str) -> int:
    """Print the ESL port, read the app's outbound address, place ``calls`` complaint callers with at most
    ``at`` on the line; one JSON line per 50 finished calls, then a summary."""
    import gevent
    import gevent.pool

    from tests.fakeswitch import FakeSwitch, Press, Speak

    _raise_fd_limit()
    fs = FakeSwitch(password="ClueCon", time_scale=scale, record_dir=Path(record_dir))
    fs.start()
    print(json.dumps({"esl_port": fs.esl_port}), flush=True)
    host, port = gevent.get_hub().threadpool.apply(sys.stdin.readline).split()  # the fake serves meanwhile
    pool = gevent.pool.Pool(at)
    ended = {"n": 0, "causes": {}}

    def one(i: int) -> None:
        call = fs.place_call((host, int(port)), caller=f"139{i:08d}", destination="12345",
                             script=[Press("2", timeout=60), Press("2", timeout=60), Speak(3, timeout=60),
                                     Press("#", timeout=60), Press("1", timeout=60)], connect_timeout=30)
        try:
            call.wait_ended(timeout=300)
            key = str(call.hangup_cause)
        except TimeoutError:
            key = "not ended"
        ended["causes"][key] = ended["causes"].get(key, 0) + 1
        ended["n"] += 1
        if ended["n"] % 50 == 0:
            print(json.dumps({"ended": ended["n"]}), flush=True)

    for i in range(calls):
        pool.spawn(one, i)
    pool.join()
    print(json.dumps({"done": ended["n"], "causes": ended["causes"]}), flush=True)
    fs.stop()
    return 0


# --- the app process -------------------------------------------------------------------------------------
def _sqlite_kib() -> int:
    """What SQLite holds in this process (page caches, schemas, statements): sqlite3_memory_used of the
    library the sqlite3 module is linked with (the same one once loaded), in KiB; -1 if not found."""
    import ctypes
    import ctypes.util

    try:
        lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        return int(lib.sqlite3_memory_used()) // 1024
    except (OSError, AttributeError):
        return -1


def _types() -> dict[str, int]:
    import gc

    counts: dict[str, int] = {}
    for obj in gc.get_objects():
        name = type(obj).__qualname__
        counts[name] = counts.get(name, 0) + 1
    return counts


def run_app(calls: int, warm: int, at: int, scale: float, sounds: str, top: int, trace: bool = True) -> None:
    from gevent import monkey

    monkey.patch_all()
    import gc
    import tracemalloc

    import gevent
    from gevent import subprocess as gsubprocess

    from core.config import load_config
    from core.logsetup import configure_logging
    from hotline.product import Product

    configure_logging("WARNING")
    _raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="bench-creep-"))
    fake = gsubprocess.Popen([sys.executable, __file__, "--fake", str(calls), str(at), str(scale), str(work / "fs")],
                             stdin=gsubprocess.PIPE, stdout=gsubprocess.PIPE, cwd=str(ROOT))
    esl_port = json.loads(fake.stdout.readline())["esl_port"]
    config = load_config({"database_url": f"sqlite:///{work}/creep.sqlite3", "var_dir": str(work / "var"),
                          "sounds_dir": sounds, "esl": f"127.0.0.1:{esl_port}:ClueCon", "outbound": "127.0.0.1:0",
                          "http": "127.0.0.1:0", "mode": "test", "secret_key": "c" * 40, "load_demo": True,
                          "max_calls": at + 20, "esl_heartbeat_timeout": 0,  # the fake sends no HEARTBEAT
                          # the door off: on a loaded machine it refuses callers the bench wants finished
                          "HOTLINE_OVERLOAD_REPLY_SECONDS": "0", "HOTLINE_OVERLOAD_LAG_SECONDS": "0"})
    product = Product(config).build()
    product.start()
    while not product.parts["pool"].connected:
        gevent.sleep(0.1)
    if trace:
        tracemalloc.start(8)
    host, port = product.parts["outbound"].address
    fake.stdin.write(f"{host} {port}\n".encode())
    fake.stdin.flush()
    started = time.monotonic()
    snap = {}
    series = []
    while True:
        line = fake.stdout.readline()
        if not line:
            break
        report = json.loads(line)
        if "ended" in report:
            db_kib = (work / "creep.sqlite3").stat().st_size // 1024
            series.append((report["ended"], _rss_kib() // 1024, round(time.monotonic() - started)))
            print(f"{series[-1][0]} calls ended, RSS {series[-1][1]} MiB, SQLite {_sqlite_kib() / 1024:.1f} MiB, "
                  f"database file {db_kib / 1024:.1f} MiB, {series[-1][2]} s", flush=True)
            if report["ended"] == warm and "warm" not in snap:
                gevent.sleep(1.0)
                gc.collect()
                snap["warm"] = (tracemalloc.take_snapshot() if trace else None, _types(), _rss_kib(), _sqlite_kib())
        if "done" in report:
            print(f"fake switch: {report}")
            break
    gevent.sleep(3.0)  # the last calls' records closed
    gc.collect()
    end = (tracemalloc.take_snapshot() if trace else None, _types(), _rss_kib(), _sqlite_kib())
    print("finished calls: RSS MiB (s): " + ", ".join(f"{n}: {m} ({t})" for n, m, t in series))
    if "warm" in snap:
        first, types, rss, lite = snap["warm"]
        grown = calls - warm
        traced = (f"; traced {sum(s.size for s in first.statistics('filename')) / 2**20:.1f} -> "
                  f"{sum(s.size for s in end[0].statistics('filename')) / 2**20:.1f} MiB") if trace else ""
        print(f"\nbetween {warm} and {calls} finished calls ({grown}): RSS {rss // 1024} -> {end[2] // 1024} MiB, "
              f"{(end[2] - rss) / grown:.1f} KiB per call{traced}; SQLite {lite / 1024:.1f} -> {end[3] / 1024:.1f} MiB")
        trimmed = release_free_heap()
        print(f"after malloc_trim(0) ({'done' if trimmed else 'nothing given back'}): RSS {_rss_kib() // 1024} MiB")
        print("\nallocation sites that grew most (traceback, innermost of ours):" if trace else "")
        for stat in (end[0].compare_to(first, "traceback")[:top] if trace else []):
            if stat.size_diff <= 0:
                continue
            frames = [f for f in stat.traceback if "/site-packages/" not in f.filename and "/lib/python3" not in f.filename]
            where = frames[-1] if frames else stat.traceback[-1]
            inner = stat.traceback[-1]
            print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  "
                  f"{Path(where.filename).relative_to(ROOT) if str(where.filename).startswith(str(ROOT)) else where.filename}:{where.lineno}"
                  f"  (allocated in {Path(inner.filename).name}:{inner.lineno})")
        print("\nobject types whose count grew:")
        for name, count in sorted(((n, end[1].get(n, 0) - types.get(n, 0)) for n in end[1]), key=lambda x: -x[1])[:15]:
            if count > 0:
                print(f"  {count:+8d} {name}")
    product.stop(drain_timeout=5)
    fake.wait(timeout=30)


def main() -> int:
    if sys.argv[1:2] == ["--fake"]:
        return run_fake(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--warm", type=int, default=500)
    parser.add_argument("--at", type=int, default=50)
    parser.add_argument("--scale", type=float, default=0.02)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-trace", action="store_true", help="without tracemalloc (its own memory is RSS too)")
    parser.add_argument("--sounds", default=str(ROOT / "sounds"), help="rendered prompts (make prompts)")
    args = parser.parse_args()
    run_app(args.calls, args.warm, args.at, args.scale, args.sounds, args.top, trace=not args.no_trace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
