"""Benchmark: call records at a sustained 30 calls/s with recording on, and recording search at scale.

1. Sustained calls: for ``--seconds`` seconds, 30 new calls a second (``--rate``), up to ``--workers`` at a
   time on their own database connections, each one as the running
   product does it: CallRecord row at call start, Recording index row reserved (day folder checked),
   agent answered, hang-up finalising the record with its HMAC and the missed-call rule, and the
   recording's index row completed (duration, size, sha256 as store.finish writes them; the sox
   conversion is measured separately below because it runs off the call path). Printed: achieved rate,
   per-call database work p50/p99, and the worst lag of a call's start behind the 30/s schedule.
2. A-law conversion: sox time for a 3-minute PCM recording (how many finished recordings a second one
   core keeps up with).
3. Search: ``--recordings`` indexed recordings (default 200,000; the issue's figure is 1,000,000:
   ``--recordings 1000000``) over a year, 200 agents, a tenth linked to tickets; then ``--queries``
   searches of each kind (one day; agent over a week; caller; acceptance number) through
   recorder.search, p50/p99.

Runs on SQLite (a file under a temporary folder) and on PostgreSQL when reachable (``--pg URL``, a schema
of its own, dropped afterwards). Prints tables; asserts nothing.

    .venv/bin/python bench/recorder.py [--seconds 10] [--rate 30] [--workers 8] [--recordings 200000] [--queries 200]
                                       [--pg postgresql://postgres@127.0.0.1:5432/test | --pg ""]
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import random
import struct
import sys
import tempfile
import time
import uuid
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import DEFAULT_PG, open_backend, pct  # noqa: E402



# --- 1. sustained calls ------------------------------------------------------------------------------

def sustained_calls(folder: Path, seconds: float, rate: float, workers: int) -> dict:
    """Start calls on a fixed schedule (each on a worker thread with its own connection, as live calls run
    side by side); measure each call's database work and how late calls started against the schedule."""
    from concurrent.futures import ThreadPoolExecutor

    from core.db import database
    from recorder.cdr import CdrRecorder
    from recorder.integrity import record_key
    from recorder.models import Recording
    from recorder.storage import RecordingStore

    cdr = CdrRecorder(record_key("bench-secret-" + "x" * 32))
    store = RecordingStore(folder / "recordings")
    total = int(seconds * rate)
    work, lags = [], []

    def one_call(index: int, due: float) -> None:
        began = time.perf_counter()
        lags.append(began - due)
        call_uuid = str(uuid.uuid4())
        cdr.call_started(call_uuid, caller=f"138{index % 100000000:08d}", called="12345", server="fs1")
        cdr.ivr_node(call_uuid, "welcome")
        cdr.queue_entered(call_uuid, "consult")
        rec = store.begin(call_uuid)
        cdr.agent_answered(call_uuid, f"{1000 + index % 200}")
        cdr.hangup(call_uuid, "NORMAL_CLEARING", "caller")
        Recording.update(status="ok", duration_ms=180000, size=1_440_058, sha256="0" * 64, format="wav-alaw").where(
            Recording.id == rec.id).execute()
        work.append((time.perf_counter() - began) * 1000)

    def guarded(index: int, due: float) -> None:
        with database.connection_context():
            one_call(index, due)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = []
        for index in range(total):
            due = start + index / rate
            now = time.perf_counter()
            if now < due:
                time.sleep(due - now)
            futures.append(pool.submit(guarded, index, due))
        for future in futures:
            future.result()
    elapsed = time.perf_counter() - start
    return {"calls": total, "rate": total / elapsed, "p50": pct(work, 50), "p99": pct(work, 99),
            "lag": max(lags) * 1000 if lags else 0.0}


# --- 2. conversion -------------------------------------------------------------------------------------

def conversion(folder: Path, seconds: int = 180, runs: int = 5) -> dict:
    from recorder.wavfile import convert_to_alaw

    source = folder / "pcm.wav"
    rate = 8000
    with wave.open(str(source), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        one = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(rate))
        w.writeframes(one * seconds)
    times = []
    for run in range(runs):
        began = time.perf_counter()
        convert_to_alaw(source, folder / f"alaw-{run}.wav")
        times.append((time.perf_counter() - began) * 1000)
    return {"p50": pct(times, 50), "max": max(times), "per_core": 1000 / pct(times, 50)}


# --- 3. search -----------------------------------------------------------------------------------------

def fill(count: int, seed: int = 12345) -> dict:
    """Insert ``count`` recordings (and tickets linked to a tenth of them) in batches."""
    from caseflow.models import Ticket, TicketCall
    from core.db import database
    from recorder.models import Recording

    rng = random.Random(seed)
    first_day = dt.date(2026, 1, 1)
    callers = [f"1{rng.randint(3000000000, 9999999999)}" for _ in range(max(count // 20, 10))]
    batch, tickets, links = [], [], []
    numbers, uuids = [], []
    began = time.perf_counter()
    for i in range(count):
        day = first_day + dt.timedelta(days=i * 365 // count)
        started = dt.datetime.combine(day, dt.time(8)) + dt.timedelta(seconds=rng.randint(0, 12 * 3600))
        call_uuid = f"{i:08x}-bench-{rng.getrandbits(48):012x}"
        caller = rng.choice(callers)
        batch.append({"call_uuid": call_uuid, "kind": "conversation", "path": f"{day}/{call_uuid}.wav", "day": day,
                      "started_at": started, "duration_ms": rng.randint(20000, 600000), "size": 200000,
                      "sha256": "0" * 64, "format": "wav-alaw", "channels": 1, "status": "ok", "caller": caller,
                      "agent_no": str(1000 + rng.randint(0, 199))})
        if i % 10 == 0:
            number = f"{10000000 + i // 10:08d}"
            tickets.append({"number": number, "content": "bench", "citizen_phone": caller, "created_at": started,
                            "updated_at": started})
            links.append((number, call_uuid, started))
            numbers.append(number)
        uuids.append(call_uuid)
        if len(batch) >= 5000:
            with database.atomic():
                Recording.insert_many(batch).execute()
                if tickets:
                    Ticket.insert_many(tickets).execute()
            batch, tickets = [], []
    with database.atomic():
        if batch:
            Recording.insert_many(batch).execute()
        if tickets:
            Ticket.insert_many(tickets).execute()
    ids = dict(Ticket.select(Ticket.number, Ticket.id).tuples())
    rows = [{"ticket": ids[n], "call_uuid": u, "purpose": "intake", "at": at} for n, u, at in links]
    for start in range(0, len(rows), 5000):
        with database.atomic():
            TicketCall.insert_many(rows[start:start + 5000]).execute()
    database.execute_sql("ANALYZE")
    return {"seconds": time.perf_counter() - began, "callers": callers, "numbers": numbers, "first_day": first_day}


def search(data: dict, queries: int, seed: int = 99) -> dict:
    from recorder.models import Recording
    from recorder.search import RecordingQuery, search_recordings

    rng = random.Random(seed)
    first = data["first_day"]
    kinds = {
        "one day": lambda: {"from": str(first + dt.timedelta(days=rng.randint(0, 360))),
                            "to": None},
        "agent, one week": lambda: (lambda d: {"from": str(d), "to": str(d + dt.timedelta(days=6)),
                                               "agent": str(1000 + rng.randint(0, 199))})(
            first + dt.timedelta(days=rng.randint(0, 350))),
        "caller": lambda: {"caller": rng.choice(data["callers"])},
        "acceptance number": lambda: {"ticket": rng.choice(data["numbers"])},
    }
    results = {}
    for name, make in kinds.items():
        times, found = [], 0
        for _ in range(queries):
            args = make()
            if name == "one day":
                args["to"] = args["from"]
            query = RecordingQuery.parse(args)
            began = time.perf_counter()
            rows, _more = search_recordings(Recording.select(), query, limit=25)
            times.append((time.perf_counter() - began) * 1000)
            found += len(rows)
        results[name] = {"p50": pct(times, 50), "p99": pct(times, 99), "rows": found / queries}
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the sustained-call run")
    parser.add_argument("--rate", type=float, default=30.0, help="new calls per second")
    parser.add_argument("--workers", type=int, default=8, help="calls handled side by side")
    parser.add_argument("--recordings", type=int, default=200_000, help="indexed recordings for the search test")
    parser.add_argument("--queries", type=int, default=200, help="searches of each kind")
    parser.add_argument("--pg", default=os.environ.get("HOTLINE_BENCH_PG", DEFAULT_PG),
                        help="PostgreSQL URL ('' to skip)")
    args = parser.parse_args(argv)

    backends = ["sqlite"]
    if args.pg:
        try:
            import psycopg2

            psycopg2.connect(args.pg, connect_timeout=2).close()
            backends.append("postgres")
        except Exception as exc:  # noqa: BLE001 - report and carry on with SQLite
            print(f"PostgreSQL not reachable ({exc.__class__.__name__}); SQLite only")

    call_rows, search_rows = [], []
    with tempfile.TemporaryDirectory(prefix="bench-recorder-") as tmp:
        conv = conversion(Path(tmp))
        for backend in backends:
            folder = Path(tmp) / backend
            folder.mkdir()
            database, cleanup = open_backend(backend, folder, args.pg, "recorder")
            try:
                calls = sustained_calls(folder, args.seconds, args.rate, args.workers)
                call_rows.append((backend, calls))
                data = fill(args.recordings)
                found = search(data, args.queries)
                search_rows.append((backend, data["seconds"], found))
            finally:
                database.close()
                cleanup()

    print(f"\nSustained calls with recording on: target {args.rate:.0f} calls/s for {args.seconds:.0f} s, "
          f"{args.workers} calls side by side")
    print(f"{'database':10} {'calls':>6} {'achieved/s':>10} {'work p50 ms':>12} {'work p99 ms':>12} {'max lag ms':>11}")
    for backend, r in call_rows:
        print(f"{backend:10} {r['calls']:6d} {r['rate']:10.1f} {r['p50']:12.2f} {r['p99']:12.2f} {r['lag']:11.1f}")
    print("\nA-law conversion (sox) of a 3-minute recording, off the call path")
    print(f"{'p50 ms':>8} {'max ms':>8} {'recordings/s per core':>22}")
    print(f"{conv['p50']:8.1f} {conv['max']:8.1f} {conv['per_core']:22.1f}")
    print(f"\nRecording search over {args.recordings:,} indexed recordings, {args.queries} searches of each kind")
    print(f"{'database':10} {'fill s':>7} {'search':20} {'p50 ms':>8} {'p99 ms':>8} {'rows/page':>10}")
    for backend, seconds, found in search_rows:
        for name, r in found.items():
            print(f"{backend:10} {seconds:7.1f} {name:20} {r['p50']:8.2f} {r['p99']:8.2f} {r['rows']:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
