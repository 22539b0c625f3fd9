"""Benchmark: what the call process holds per live call (issue 15 item 11, the last MiB at 150 up).

The whole product (hotline.product.Product, a fresh SQLite file) on the fake FreeSWITCH in a process of its
own, as bench/memory_creep.py builds it. First ``--warm`` complaint callers finish (caches, pools, the
tree warmed), then ``--at`` callers at once walk to the recording (2, 2) and talk into it for ``--talk``
simulated seconds: while all of them are in it the app takes a tracemalloc snapshot and counts greenlets
and their stack depths; another snapshot 10 s after the last one ended. Printed: RSS idle / held / after,
the allocation sites (``--depth`` frames) that grew most between idle and held, per call, and the object
types whose count grew. Asserts nothing.

    .venv/bin/python bench/memory_held.py [--at 150] [--warm 100] [--scale 1.0] [--talk 115] [--ramp 0.3] [--depth 12]
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

from bench.memory_creep import _rss_kib, _types  # noqa: E402
from bench.outbound_calls import _raise_fd_limit  # noqa: E402


def run_fake(warm: int, at: int, scale: float, talk: float, ramp: float, record_dir: str) -> int:
    """Print the ESL port, read the app's outbound address; ``warm`` callers that finish, then ``at`` at once
    that stay ``talk`` simulated seconds in the recording. One JSON line per phase."""
    import gevent
    import gevent.pool

    from tests.fakeswitch import FakeSwitch, Press, Speak

    _raise_fd_limit()
    fs = FakeSwitch(password="ClueCon", time_scale=scale, record_dir=Path(record_dir))
    fs.start()
    print(json.dumps({"esl_port": fs.esl_port}), flush=True)
    host, port = gevent.get_hub().threadpool.apply(sys.stdin.readline).split()
    in_record = {"n": 0}

    def one(i: int, seconds: float) -> None:
        class Mark:
            def run(self, call) -> None:
                in_record["n"] += 1
        script = [Press("2", timeout=120), Press("2", timeout=120), Mark(), Speak(seconds, timeout=120),
                  Press("#", timeout=120), Press("1", timeout=120)]
        call = fs.place_call((host, int(port)), caller=f"139{i:08d}", destination="12345", script=script,
                             connect_timeout=60)
        try:
            call.wait_ended(timeout=600)
        except TimeoutError:
            pass

    pool = gevent.pool.Pool(50)
    for i in range(warm):
        pool.spawn(one, i, 3)
    pool.join()
    print(json.dumps({"warm": warm}), flush=True)
    gevent.get_hub().threadpool.apply(sys.stdin.readline)
    group = gevent.pool.Group()
    for i in range(at):
        group.spawn(one, warm + i, talk)
        gevent.sleep(ramp)
    while in_record["n"] < at and len(group):
        gevent.sleep(0.5)
    gevent.sleep(3.0)  # the Speak has begun everywhere
    print(json.dumps({"held": in_record["n"], "up": len(fs.channels) if hasattr(fs, "channels") else -1}),
          flush=True)
    group.join()
    print(json.dumps({"done": at}), flush=True)
    fs.stop()
    return 0


def _greenlets() -> tuple[int, dict[int, int], int]:
    """(greenlets alive, {stack depth: count}, frames in all)."""
    import gc

    import greenlet

    depths: dict[int, int] = {}
    alive = 0
    for g in gc.get_objects():
        if not isinstance(g, greenlet.greenlet) or g.dead:
            continue
        alive += 1
        depth, f = 0, g.gr_frame
        while f is not None:
            depth, f = depth + 1, f.f_back
        depths[depth] = depths.get(depth, 0) + 1
    return alive, depths, sum(d * c for d, c in depths.items())


def _heap() -> str:
    """glibc's heap (mallinfo2: in use / free in the main arena and others, mmapped) and pymalloc's arenas."""
    import ctypes
    import re

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                         "fsmblks", "uordblks", "fordblks", "keepcost")]
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MallInfo2
        m = libc.mallinfo2()
        glibc = (f"malloc heap {m.arena / 2**20:.1f} MiB (in use {m.uordblks / 2**20:.1f}, free "
                 f"{m.fordblks / 2**20:.1f}), mmapped {m.hblkhd / 2**20:.1f}")
    except (OSError, AttributeError):
        glibc = "mallinfo2 not available"
    with tempfile.TemporaryFile("w+") as out:  # it writes to the C stderr
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read()
    arenas = re.search(r"# arenas allocated current\s*=\s*([\d,]+)", text)
    used = re.search(r"# bytes in allocated blocks\s*=\s*([\d,]+)", text)
    free = re.search(r"# bytes in available blocks\s*=\s*([\d,]+)", text)
    if arenas and used and free:
        n = lambda match: int(match.group(1).replace(",", ""))  # noqa: E731
        return (f"{glibc}; pymalloc {n(arenas)} arenas, objects {n(used) / 2**20:.1f} MiB, free blocks "
                f"{n(free) / 2**20:.1f} MiB")
    return glibc


def _where(frame, root: Path) -> str:
    name = frame.filename
    short = str(Path(name).relative_to(root)) if name.startswith(str(root)) else "/".join(Path(name).parts[-2:])
    return f"{short}:{frame.lineno}"


def run_app(warm: int, at: int, scale: float, talk: float, ramp: float, depth: int, top: int, sounds: str) -> None:
    from gevent import monkey

    monkey.patch_all()
    import gc
    import tracemalloc

    import gevent
    from gevent import subprocess as gsubprocess

    from core.config import load_config
    from core.heap import release_free_heap
    from core.logsetup import configure_logging
    from hotline.product import Product

    configure_logging("WARNING")
    _raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="bench-held-"))
    fake = gsubprocess.Popen([sys.executable, __file__, "--fake", str(warm), str(at), str(scale), str(talk),
                              str(ramp), str(work / "fs")],
                             stdin=gsubprocess.PIPE, stdout=gsubprocess.PIPE, cwd=str(ROOT))
    esl_port = json.loads(fake.stdout.readline())["esl_port"]
    config = load_config({"database_url": f"sqlite:///{work}/held.sqlite3", "var_dir": str(work / "var"),
                          "sounds_dir": sounds, "esl": f"127.0.0.1:{esl_port}:ClueCon", "outbound": "127.0.0.1:0",
                          "http": "127.0.0.1:0", "mode": "test", "secret_key": "c" * 40, "load_demo": True,
                          "max_calls": at + 20, "esl_heartbeat_timeout": 0,
                          "HOTLINE_OVERLOAD_REPLY_SECONDS": "0", "HOTLINE_OVERLOAD_LAG_SECONDS": "0"})
    product = Product(config).build()
    product.start()
    while not product.parts["pool"].connected:
        gevent.sleep(0.1)
    host, port = product.parts["outbound"].address
    fake.stdin.write(f"{host} {port}\n".encode())
    fake.stdin.flush()
    print(json.loads(fake.stdout.readline()), flush=True)  # the warm calls ended
    gevent.sleep(3.0)
    gc.collect()
    release_free_heap()
    g_idle = _greenlets()
    idle_rss, idle_types = _rss_kib(), _types()
    print(f"idle: {_heap()}", flush=True)
    if depth:
        tracemalloc.start(depth)
    idle = tracemalloc.take_snapshot() if depth else None
    fake.stdin.write(b"go\n")
    fake.stdin.flush()
    started = time.monotonic()
    held = json.loads(fake.stdout.readline())
    gc.collect()
    g_held = _greenlets()
    held_rss, held_types = _rss_kib(), _types()
    print(f"held: {_heap()}", flush=True)
    snap = tracemalloc.take_snapshot() if depth else None
    print(f"held: {held} after {time.monotonic() - started:.0f} s; RSS idle {idle_rss // 1024} -> held "
          f"{held_rss // 1024} MiB ({(held_rss - idle_rss) / at:.0f} KiB per call"
          f"{', tracemalloc on' if depth else ''})", flush=True)
    print(f"greenlets: idle {g_idle[0]} (frames {g_idle[2]}), held {g_held[0]} (frames {g_held[2]}): "
          f"{(g_held[0] - g_idle[0]) / at:.2f} greenlets, {(g_held[2] - g_idle[2]) / at:.1f} frames per call; "
          f"depths held {sorted(g_held[1].items())}")
    if not depth:
        print(json.loads(fake.stdout.readline()), flush=True)
        gevent.sleep(10.0)
        gc.collect()
        print(f"10 s after the last call: RSS {_rss_kib() // 1024} MiB; {_heap()}")
        release_free_heap()
        print(f"after malloc_trim(0): RSS {_rss_kib() // 1024} MiB; {_heap()}")
        product.stop(drain_timeout=5)
        fake.wait(timeout=30)
        return
    traced = sum(s.size for s in snap.statistics("filename")) - sum(s.size for s in idle.statistics("filename"))
    print(f"traced growth {traced / 2**20:.1f} MiB ({traced / 1024 / at:.0f} KiB per call)")
    print(f"\nallocation sites that grew most idle -> held (per call; {depth} frames, ours innermost first):")
    for stat in snap.compare_to(idle, "traceback")[:top]:
        if stat.size_diff <= 0:
            continue
        ours = [f for f in reversed(stat.traceback) if str(f.filename).startswith(str(ROOT))
                and "/.venv/" not in f.filename]
        inner = stat.traceback[-1]
        chain = " < ".join(_where(f, ROOT) for f in ours[:4]) or _where(inner, ROOT)
        print(f"  {stat.size_diff / 1024 / at:7.2f} KiB {stat.count_diff / at:6.1f} blk  "
              f"[{_where(inner, ROOT)}] {chain}")
    print("\nby file (innermost), per call:")
    for stat in snap.compare_to(idle, "filename")[:15]:
        if stat.size_diff > 0:
            print(f"  {stat.size_diff / 1024 / at:7.2f} KiB  {_where(stat.traceback[-1], ROOT)}")
    print("\nobject types whose count grew, per call:")
    for name, count in sorted(((n, held_types.get(n, 0) - idle_types.get(n, 0)) for n in held_types),
                              key=lambda x: -x[1])[:25]:
        if count > 0:
            print(f"  {count / at:7.2f} {name}")
    print(json.loads(fake.stdout.readline()), flush=True)
    gevent.sleep(10.0)
    gc.collect()
    after = tracemalloc.take_snapshot()
    after_rss = _rss_kib()
    print(f"\n10 s after the last call: RSS {after_rss // 1024} MiB; kept traced vs idle:")
    for stat in after.compare_to(idle, "traceback")[:12]:
        if stat.size_diff > 0:
            ours = [f for f in reversed(stat.traceback) if str(f.filename).startswith(str(ROOT))
                    and "/.venv/" not in f.filename]
            print(f"  {stat.size_diff / 1024:8.1f} KiB  [{_where(stat.traceback[-1], ROOT)}] "
                  f"{' < '.join(_where(f, ROOT) for f in ours[:3])}")
    tracemalloc.stop()
    release_free_heap()
    print(f"after malloc_trim(0): RSS {_rss_kib() // 1024} MiB; {_heap()}")
    product.stop(drain_timeout=5)
    fake.wait(timeout=30)


def main() -> int:
    if sys.argv[1:2] == ["--fake"]:
        return run_fake(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]),
                        float(sys.argv[6]), sys.argv[7])
    parser = argparse.ArgumentParser()
    parser.add_argument("--at", type=int, default=150)
    parser.add_argument("--warm", type=int, default=100)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--talk", type=float, default=115.0, help="simulated seconds in the recording")
    parser.add_argument("--ramp", type=float, default=0.3, help="wall seconds between the held callers")
    parser.add_argument("--depth", type=int, default=12, help="tracemalloc's frames; 0: no tracemalloc")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sounds", default=str(ROOT / "sounds"))
    args = parser.parse_args()
    run_app(args.warm, args.at, args.scale, args.talk, args.ramp, args.depth, args.top, args.sounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
