"""Benchmark: how long the hotline is deaf when the active app of a pair dies (issue 15 item 2; aim < 10 s).

Two app processes (run.py) on one PostgreSQL schema of their own and the fake FreeSWITCH (tests/fakeswitch)
in this process. Each round kills the active with SIGKILL, then places a call every 0.2 s through the
dialplan's two socket actions (the pair's two addresses, as freeswitch-conf does) until one is answered with
the welcome prompt, and restarts the killed process (it comes back as the standby). Printed per setting
(HOTLINE_PAIR_CHECK_INTERVAL / _TIMEOUT; the fence is their sum + 0.5 s): from the kill to the standby taking
the lock, to it acting (after the fence), to its outbound socket listening, and to the first new call served,
median and worst over the rounds. Asserts nothing.

    .venv/bin/python bench/takeover.py [--rounds 3] [--settings 1:2,0.5:1]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AIM = 10.0


def _round(fs, ports, processes, victim, survivor, start) -> dict:
    import gevent

    from tests.fakeswitch import WaitFor

    killed = processes[victim].kill()
    processes[victim].exited(10)
    served_at = None
    attempts = 0
    while served_at is None and time.monotonic() - killed < 60:
        attempts += 1
        placed = time.monotonic()
        call = fs.place_call(("127.0.0.1", ports["a"]), standby=("127.0.0.1", ports["b"]),
                             caller=f"1390000{attempts:04d}", script=[WaitFor("playback", "welcome")])
        try:
            call.wait_for_app("playback", timeout=2.0)
            if any("welcome" in p for p in call.played):
                served_at = placed
                break
        except TimeoutError:
            pass
        gevent.sleep(max(0.0, placed + 0.2 - time.monotonic()))
    new = processes[survivor]
    row = {
        "lock": new.wait_log("took the active lock", 30, after=killed) - killed,
        "active": new.wait_log("active: this process drives the switches", 30, after=killed) - killed,
        "listening": new.wait_log("outbound ESL server listening", 30, after=killed) - killed,
        "served": (served_at - killed) if served_at is not None else float("nan"),
        "attempts": attempts,
    }
    processes[victim] = start(victim)
    processes[victim].wait_log("standby: another app process is active", 180)
    return row


def run_setting(pg_url: str, interval: str, timeout: str, rounds: int, sounds: Path) -> list[dict]:
    from tests.fakeswitch import FakeSwitch
    from tests.integration.product.app_process import AppProcess, PgSchema, app_env, free_port

    folder = Path(tempfile.mkdtemp(prefix="takeover-"))
    schema = PgSchema(pg_url, "bench")
    fs = FakeSwitch(password="ClueCon", record_dir=folder / "fs", keep_frames=False)
    fs.start()
    ports = {"a": free_port(), "b": free_port()}
    processes = {}

    def start(node):
        env = app_env(schema.url, folder / f"var-{node}", sounds, esl=f"127.0.0.1:{fs.esl_port}:ClueCon",
                      outbound_port=ports[node], http_port=free_port(), node=node, HOTLINE_LOAD_DEMO="false",
                      HOTLINE_PAIR_CHECK_INTERVAL=interval, HOTLINE_PAIR_CHECK_TIMEOUT=timeout)
        return AppProcess(f"{node}-{time.monotonic():.0f}", ["run.py"], env, folder)

    rows = []
    try:
        processes["a"] = start("a")
        processes["a"].wait_log("active: this process drives the switches", 180)
        processes["b"] = start("b")
        processes["b"].wait_log("standby: another app process is active", 180)
        active = "a"
        for _ in range(rounds):
            standby = "b" if active == "a" else "a"
            rows.append(_round(fs, ports, processes, active, standby, start))
            active = standby
    finally:
        for process in processes.values():
            process.stop()
        fs.stop()
        schema.drop()
    return rows


def main() -> int:
    from bench.common import DEFAULT_PG, pct

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settings", default="1:2,0.5:1", help="interval:timeout pairs, comma-separated")
    args = parser.parse_args()
    pg_url = os.environ.get("HOTLINE_TEST_PG", DEFAULT_PG)
    sounds = ROOT / "sounds"
    print(f"takeover after kill -9 of the active app, fake FreeSWITCH, {args.rounds} rounds per setting "
          f"(aim: first new call served < {AIM:g} s)")
    print(f"{'check every/within':>18} {'fence':>6} | {'lock taken':>10} {'acting':>8} {'listening':>9} "
          f"{'call served':>11} (median / worst, s) | aim")
    for pair in args.settings.split(","):
        interval, timeout = pair.split(":")
        rows = run_setting(pg_url, interval, timeout, args.rounds, sounds)
        fence = float(interval) + float(timeout) + 0.5

        def cell(key):
            values = [r[key] for r in rows]
            return f"{pct(values, 50):4.2f}/{max(values):4.2f}"
        worst = max(r["served"] for r in rows)
        print(f"{interval + ' s / ' + timeout + ' s':>18} {fence:5.1f}s | {cell('lock'):>10} {cell('active'):>8} "
              f"{cell('listening'):>9} {cell('served'):>11}                     | "
              f"{'met' if worst < AIM else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
