"""Benchmark: a city's peak simulated (issue 15 item 10): several fake FreeSWITCH servers, thousands of agents and
of concurrent calls, one app process; what that process holds, where it saturates and which process limits it.

Processes: ``--switches`` fake FreeSWITCH servers (bench/sim_switch.py, tests/fakeswitch speaking the real event
socket protocol: the app's inbound ESL connection to each, and an outbound socket per call to the app), the app
(bench/sim_app.py: hotline.product.Product, what run.py starts, on a fresh SQLite file or a PostgreSQL schema of its
own), and this one, which prepares the database, drives the others and reads /proc.

The configuration: the demo organisation and IVR tree, its four queues (综合, 政策咨询, 投诉举报, 便民服务; their
rules least talk time, highest skill, longest idle), ``--agents`` seats (general and one other skill each, levels
drawn), registered on their home switch and reachable from every switch (sim_switch's front door). Every seat is
signed in (login, ready) through acd.agent_controls, the desk's own controls. Callers walk the IVR: most to a
queue (1, then 1/2/3 or nothing), the rest to the complaint recording; agents answer after a drawn ring, talk a
lognormal time (mean ``--talk-mean`` s) and end their after-call work after a lognormal time (mean ``--acw-mean``).

``--scale`` is wall seconds per simulated second (1 = real time). The switches' prompts, timeouts, talk and the
agents' after-call work follow it; the app's own clocks (queue announcements, wrap-up limits) are set from it. At
scale s a level of N calls on the line makes the app do what N / s calls would in real time: the column "real-time
equivalent" says so.

Steps (``--steps``, calls on the line over all switches): the level is raised, held while ``--hold`` wall seconds
are measured, then raised again; at the end every caller is let finish and counted. Printed per step: calls on the
line, events/s the app handled (inbound ESL), CPU of the app / each switch / PostgreSQL, the app's RSS, hub latency
p50/p99 (a probe greenlet), ACD offer latency p50/p99 (an agent and a caller both waiting -> the offer) and the
choice of agent's p99 (the rule over every free agent's snapshot), the app's CPU per call served and what 70 % of
a core would carry at that cost, tickets created/s, the app's most database connections; where it saturated and which process was the limit. Asserts
nothing; ``--json`` adds one JSON line of the totals (tests/integration/product/test_simulation.py reads it).

    nice -n 19 .venv/bin/python bench/simulation.py [--switches 4] [--agents 5000] [--steps 500,1000,2000,3000]
        [--backend sqlite|postgres] [--scale 0.25] [--hold 60]
    small: --switches 2 --agents 200 --steps 50,100 --scale 0.05 --hold 5
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import DEFAULT_PG, pct  # noqa: E402
from bench.live_parts import HZ, cpu_ticks, loadavg, machine_ticks, rss_kib  # noqa: E402
from bench.sim_switch import EXTENSION_BASE, GATEWAY  # noqa: E402

PREPARE = """
import random, sys
from caseflow import pins
from core.config import load_config
from core.db import bind_database, database
from hotline.schema import all_models, create_schema
from webui.app import load_demo_if_empty
from acd.demo import load_acd_demo
from acd.admin import create_agent
from acd.models import Queue
from caseflow.models import User
from caseflow.search import ensure_all
url, var, agents, scale, base = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
config = load_config({"database_url": url, "var_dir": var, "mode": "test", "secret_key": "p" * 40})
pins.install(pins.PinKeys.from_config(config))  # the demo tickets' PINs, as a product's start
bind_database(config.database_url)
with database.connection_context():
    create_schema(all_models())
    ensure_all()
load_demo_if_empty(config)
rng = random.Random(7)
with database.connection_context():
    load_acd_demo()
    # The app's own clocks in wall seconds: scaled like the switches' simulated time.
    for q in Queue.select():
        q.wrap_up_seconds, q.announce_interval = max(1, round(601 * scale)), max(5, round(30 * scale))
        q.max_wait = round(q.max_wait * scale) + 5
        q.save()
    others = ["consult", "complaint", "convenience"]
    with database.atomic():
        for i in range(agents):
            user = User.create(operator_no=f"3{i:05d}", name=f"坐席{i:04d}", password_hash="x", roles="agent",
                               extension=str(base + i))
            create_agent(user, {"general": rng.randint(1, 9), others[i % 3]: rng.randint(3, 9)})
"""


class Child:
    """A process spoken to in JSON lines (stdin / stdout), read by a thread of its own."""

    def __init__(self, args: list[str], env: dict | None, log_path: Path):
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.events.put(json.loads(line))
        self.events.put({"event": "exited"})

    def send(self, **command) -> None:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def expect(self, name: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            if event["event"] == name:
                return event
            if event["event"] == "exited":
                raise RuntimeError(f"{self.proc.args[1]} exited (code {self.proc.poll()}), see {self.log.name}")

    def ask(self, name: str, wait: float = 120, **command) -> dict:
        self.send(**command)
        return self.expect(name, wait)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send(cmd="stop")
                self.proc.wait(60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self.log.close()


def postgres_pids() -> list[int]:
    """The PostgreSQL server's processes (shared with whatever else uses that server)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


class Meter:
    """CPU shares (100 = one core) of the app, each switch and PostgreSQL between two reads; the app's RSS peak."""

    def __init__(self, app_pid: int, switch_pids: list[int]):
        self.app_pid, self.switch_pids = app_pid, switch_pids
        self.rss_peak = 0
        self.stopping = threading.Event()
        threading.Thread(target=self._watch_rss, daemon=True).start()

    def _watch_rss(self) -> None:
        while not self.stopping.wait(1.0):
            self.rss_peak = max(self.rss_peak, rss_kib(self.app_pid))

    def read(self) -> dict:
        return {"at": time.monotonic(), "app": cpu_ticks(self.app_pid),
                "switches": [cpu_ticks(p) for p in self.switch_pids],
                "postgres": {p: cpu_ticks(p) for p in postgres_pids()}, "machine": machine_ticks()}

    @staticmethod
    def shares(first: dict, last: dict) -> dict:
        seconds = last["at"] - first["at"]
        share = lambda a, b: 100.0 * (b - a) / HZ / seconds  # noqa: E731
        total = last["machine"][0] - first["machine"][0]
        idle = last["machine"][1] - first["machine"][1]
        return {"app": share(first["app"], last["app"]),
                "switches": [share(a, b) for a, b in zip(first["switches"], last["switches"])],
                # Backends come and go: only those alive at both reads count (a short one is missed).
                "postgres": share(0, sum(t - first["postgres"][p] for p, t in last["postgres"].items()
                                         if p in first["postgres"] and t >= first["postgres"][p])),
                "machine": 100.0 * (total - idle) / total if total else float("nan")}


def prepare(url: str, var: Path, agents: int, scale: float) -> None:
    subprocess.run([sys.executable, "-c", PREPARE, url, str(var), str(agents), str(scale), str(EXTENSION_BASE)],
                   cwd=ROOT, check=True, timeout=3600, stdout=subprocess.DEVNULL,
                   env={**os.environ, "HOTLINE_LOG_LEVEL": "WARNING"})


def database_url(args, folder: Path):
    """(URL, cleanup) of a fresh database for the run."""
    if args.backend == "sqlite":
        return f"sqlite:///{folder / 'sim.sqlite3'}", lambda: None
    from bench.ivr import _pg_schema

    url, drop = _pg_schema(args.pg, f"bench_sim_{os.getpid()}")
    return url, drop  # the app's pool: 20 connections (core.db)


def app_environment(args, url: str, folder: Path, esl_ports: list[int]) -> dict:
    from bench.live_parts import sounds_dir
    from tests.integration.product.app_process import app_env, free_port

    esl = ",".join(f"127.0.0.1:{p}:ClueCon" for p in esl_ports)
    cross = ";".join(f"127.0.0.1:{p}=sofia/gateway/{GATEWAY}/{{extension}}" for p in esl_ports)
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           **app_env(url, folder / "var", sounds_dir(folder), esl=esl, outbound_port=free_port(),
                     http_port=free_port(), node="sim", HOTLINE_LOAD_DEMO="true", HOTLINE_CROSS_SERVER_DIAL=cross,
                     HOTLINE_MAX_CALLS=str(max(1000, 2 * max(args.levels))), HOTLINE_PAIR="off",
                     SIM_SCALE=str(args.scale), SIM_ACW_MEAN=str(args.acw_mean), SIM_SEED=str(args.seed))}
    for key in ("HOTLINE_TEST_PG", "HOTLINE_TEST_ESL"):
        env.pop(key, None)
    return env


def step_row(level: int, args, app_first: dict, app_last: dict, cpu: dict, rss_mib: float, ramp: float) -> dict:
    seconds = max(1e-9, app_last["at"] - app_first["at"])
    served = app_last["served"] - app_first["served"]
    # The app's CPU per call it served at this level, and what 70 % of one core would carry at that cost
    # with calls of real length: calls a second x seconds a call = calls on the line. Steadier than the
    # latencies on a shared machine: the neighbours' load changes how long the app waits, not what it does.
    cpu_per_call = cpu["app"] / 100 * seconds / served if served else float("nan")
    carries = 0.7 / cpu_per_call * call_seconds(args) if served else float("nan")
    lags = [x * 1000 for x in app_last["lags"]]
    offers = [x * 1000 for x in app_last["offers"]]
    decisions = [x * 1000 for x in app_last["decisions"]]
    return {"level": level, "equivalent": round(level / args.scale), "active": app_last["active"],
            "calls_s": served / seconds, "cpu_per_call_ms": cpu_per_call * 1000, "carries": carries,
            "peak_active": app_last["peak_active"], "waiting": app_last["waiting"], "in_call": app_last["in_call"],
            "wrap_up": app_last["wrap_up"], "available": app_last["available"],
            "events_s": (app_last["events"] - app_first["events"]) / seconds,
            "tickets_s": (app_last["tickets"] - app_first["tickets"]) / seconds,
            "lag_p50": pct(lags, 50), "lag_p99": pct(lags, 99), "offer_p50": pct(offers, 50),
            "offer_p99": pct(offers, 99), "offers": len(offers), "decision_p99": pct(decisions, 99), "connections": app_last["connections"],
            "refused": app_last["refused"] - app_first["refused"],
            "cpu": cpu, "rss_mib": rss_mib, "ramp_s": ramp, "load": loadavg()}


def limit_of(row: dict, cores: int, postgres: bool) -> tuple[str, str]:
    """(why this step is past what one app process holds ('' if not), the process nearest its ceiling)."""
    cpu = row["cpu"]
    candidates = [("the app (one core: its gevent hub)", cpu["app"] / 100),
                  *[(f"fake switch {i + 1} (one core)", s / 100) for i, s in enumerate(cpu["switches"])]]
    if postgres:
        candidates.append(("PostgreSQL (all cores)", cpu["postgres"] / (100 * cores)))
    name, used = max(candidates, key=lambda c: c[1])
    why = []
    if row["lag_p99"] > 500:
        why.append(f"hub latency p99 {row['lag_p99']:.0f} ms")
    if row["offer_p99"] > 2000:
        why.append(f"offer latency p99 {row['offer_p99']:.0f} ms")
    if cpu["app"] > 85:
        why.append(f"app CPU {cpu['app']:.0f} %")
    if row["refused"]:
        why.append(f"the app's door refused {row['refused']} calls")
    where = f"{name} at {used * 100:.0f} %"
    if cpu["machine"] > 90 and used < 0.85:
        # No process at its own ceiling while every core is busy: they wait for the CPU (the neighbours').
        where = f"the machine's CPU ({cpu['machine']:.0f} % busy; nearest its own ceiling: {where})"
    return "; ".join(why), where


HEADER = ("| calls on the line (real-time equiv.) | calls/s | events/s | CPU app / switches / PostgreSQL % | "
          "app CPU per call ms | one core at 70 % carries | app RSS MiB | "
          "hub p50 / p99 ms | offer p50 / p99 ms (n) | choice p99 ms | tickets/s | refused | DB conns | "
          "waiting / in call / wrap-up / free | load |")


def print_row(row: dict) -> None:
    cpu = row["cpu"]
    switches = "+".join(f"{s:.0f}" for s in cpu["switches"])
    print(f"| {row['active']} of {row['level']} ({row['equivalent']}) | {row['calls_s']:.1f} | "
          f"{row['events_s']:.0f} | {cpu['app']:.0f} / {switches} / {cpu['postgres']:.0f} | "
          f"{row['cpu_per_call_ms']:.0f} | {row['carries']:.0f} | {row['rss_mib']:.0f} | "
          f"{row['lag_p50']:.1f} / {row['lag_p99']:.1f} | {row['offer_p50']:.1f} / {row['offer_p99']:.1f} "
          f"({row['offers']}) | {row['decision_p99']:.1f} | {row['tickets_s']:.2f} | {row['refused']} | {row['connections']} | {row['waiting']} / "
          f"{row['in_call']} / {row['wrap_up']} / {row['available']} | {row['load']} |", flush=True)


def call_seconds(args) -> float:
    """Simulated seconds a call lasts on average: about 35 s of IVR before a queue, then the talk; a complaint
    about 60 s of menus and prompts around its recording."""
    return args.person_share * (35 + args.talk_mean) + (1 - args.person_share) * 85


def run(args) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    (folder / "var").mkdir()
    url, cleanup = database_url(args, folder)
    began = time.monotonic()
    print(f"preparing: {args.agents} seats, 4 queues on {args.backend} ...", flush=True)
    try:
        prepare(url, folder / "var", args.agents, args.scale)
    except BaseException:
        cleanup()  # the PostgreSQL schema would outlive a failed preparation
        raise
    switches = [Child([str(ROOT / "bench" / "sim_switch.py"), "--index", str(i), "--switches", str(args.switches),
                       "--agents", str(args.agents), "--scale", str(args.scale), "--person-share",
                       str(args.person_share), "--talk-mean", str(args.talk_mean), "--seed", str(args.seed)],
                      None, folder / f"switch{i}.log") for i in range(args.switches)]
    app = None
    rows: list[dict] = []
    totals: dict = {}
    try:
        ports = [s.expect("ready", 600)["port"] for s in switches]
        app = Child([str(ROOT / "bench" / "sim_app.py")], app_environment(args, url, folder, ports),
                    folder / "app.log")
        ready = app.expect("ready", 600)
        address = ready["outbound"]
        signed = app.ask("signed_in", 1800, cmd="sign_in", prefix=str(EXTENSION_BASE)[0])
        deadline = time.monotonic() + 300
        while app.ask("sample", cmd="sample")["registered"] < signed["count"] and time.monotonic() < deadline:
            time.sleep(1)  # the registrations come with each switch's reconciliation
        signed["registered"] = app.ask("sample", cmd="sample")["registered"]
        print(f"set up in {time.monotonic() - began:.0f} s: {args.switches} switches, {signed['count']} seats "
              f"signed in, {signed['registered']} registered; scale {args.scale} wall s per simulated s; "
              f"load {loadavg()}", flush=True)
        meter = Meter(app.proc.pid, [s.proc.pid for s in switches])
        start_sample = app.ask("sample", cmd="sample")
        print(HEADER)
        print("|" + "---|" * (HEADER.count("|") - 1))
        for level in args.levels:
            share = [level // args.switches + (1 if i < level % args.switches else 0) for i in range(args.switches)]
            raised = time.monotonic()
            for s, calls in zip(switches, share):
                # New callers at 1.5 x the steady rate of that level (calls on the line / how long a call lasts), or --cps.
                cps = args.cps or max(1.0, 1.5 * calls / (call_seconds(args) * args.scale))
                s.ask("level", cmd="level", calls=calls, app=address, cps=cps)
            while time.monotonic() - raised < args.ramp_timeout:
                if app.ask("sample", cmd="sample")["active"] >= 0.95 * level:
                    break
                time.sleep(1)
            ramp = time.monotonic() - raised
            first_cpu, first = meter.read(), app.ask("sample", cmd="sample")
            meter.rss_peak = 0
            time.sleep(args.hold)
            last_cpu, last = meter.read(), app.ask("sample", cmd="sample")
            row = step_row(level, args, first, last, Meter.shares(first_cpu, last_cpu),
                           meter.rss_peak / 1024, ramp)
            row["saturated"], row["limit"] = limit_of(row, os.cpu_count() or 1, args.backend == "postgres")
            rows.append(row)
            print_row(row)
        for s in switches:  # all at once: each waits up to the timeout for its callers
            s.send(cmd="drain", timeout=args.drain_timeout)
        drained = [s.expect("drained", args.drain_timeout + 120) for s in switches]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            end = app.ask("sample", cmd="sample")
            if not end["active"] and not end["in_call"] and not end["waiting"]:
                break
            time.sleep(1)
        totals = summarise(drained, start_sample, end)
        meter.stopping.set()
    finally:
        if app is not None:
            app.close()
        for s in switches:
            s.close()
        cleanup()
    report(rows, totals, args)
    return {"rows": rows, "totals": totals, "seconds": time.monotonic() - began, "folder": str(folder)}


def summarise(drained: list[dict], start: dict, end: dict) -> dict:
    outcome: dict[str, dict[str, int]] = {}
    kinds: dict[str, int] = {}
    errors: dict[str, int] = {}
    for d in drained:
        for kind, causes in d["outcome"].items():
            for cause, n in causes.items():
                outcome.setdefault(kind, {})[cause] = outcome.setdefault(kind, {}).get(cause, 0) + n
        for kind, n in d["kinds"].items():
            kinds[kind] = kinds.get(kind, 0) + n
        for reason, n in d["script_errors"].items():
            errors[reason] = errors.get(reason, 0) + n
    ended = sum(n for causes in outcome.values() for cause, n in causes.items() if cause != "not ended")
    return {"placed": sum(d["placed"] for d in drained), "ended": ended,
            "not_ended": sum(d["not_ended"] for d in drained), "kinds": kinds, "outcome": outcome,
            "script_errors": errors, "connect_errors": sum(d["connect_errors"] for d in drained),
            "bridged": sum(d["bridged"] for d in drained),
            "complaints_done": outcome.get("complaint", {}).get("NORMAL_CLEARING by caller", 0),
            "tickets": end["tickets"] - start["tickets"], "acw_ended": end["acw_ended"],
            "cut": sum(d["cut"] for d in drained), "refused": end["refused"] - start["refused"],
            "left_in_app": {k: end[k] for k in ("active", "waiting", "in_call")}}


def report(rows: list[dict], totals: dict, args) -> None:
    carried = None
    for row in rows:
        if row["saturated"]:
            print(f"saturated at {row['level']} calls on the line ({row['equivalent']} in real time): "
                  f"{row['saturated']}; the limit: {row['limit']}")
            break
        carried = row
    if carried is not None:
        cpu = carried["cpu"]["app"]
        print(f"one app process carried {carried['level']} calls on the line (about {carried['equivalent']} at "
              f"real-time call lengths) at {cpu:.0f} % of its core; nearest its ceiling: {carried['limit']}")
    costs = [r["cpu_per_call_ms"] for r in rows if r["cpu_per_call_ms"] == r["cpu_per_call_ms"]]
    if costs:
        cost = max(costs)
        print(f"app CPU per call served: {min(costs):.0f}-{cost:.0f} ms; at the highest, 70 % of one core serves "
              f"{700 / cost:.1f} calls/s, {700 / cost * call_seconds(args):.0f} calls on the line at real call "
              f"lengths ({call_seconds(args):.0f} s on average)")
    if totals:
        print(f"calls placed {totals['placed']}: ended {totals['ended']}, not ended {totals['not_ended']} "
              f"(every call accounted for: {'yes' if totals['placed'] == totals['ended'] else 'NO'}); by kind "
              f"{totals['kinds']}; to an agent {totals['bridged']}; complaints recorded to the end "
              f"{totals['complaints_done']}, tickets created {totals['tickets']}; after-call work ended by the "
              f"agents {totals['acw_ended']}; refused at the app's door {totals['refused']}; still on the line "
              f"at the end (hung up then) {totals['cut']}; left in the app afterwards {totals['left_in_app']}")
        for kind, causes in totals["outcome"].items():
            print(f"  {kind}: {causes}")
        if totals["script_errors"] or totals["connect_errors"]:
            print(f"  callers that could not follow their script: {totals['script_errors']}; could not connect: "
                  f"{totals['connect_errors']}")
    if args.json:
        print(json.dumps({"rows": rows, "totals": totals}, default=str))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=4)
    parser.add_argument("--agents", type=int, default=5000)
    parser.add_argument("--steps", default="500,1000,2000,3000", help="calls on the line, over all switches")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg", default=os.environ.get("HOTLINE_TEST_PG", DEFAULT_PG))
    parser.add_argument("--scale", type=float, default=0.25, help="wall seconds per simulated second")
    parser.add_argument("--hold", type=float, default=60.0, help="wall seconds measured at each level")
    parser.add_argument("--ramp-timeout", type=float, default=300.0)
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--cps", type=float, default=0.0,
                        help="new calls a second per switch (default: 1.5 x the level's steady rate)")
    parser.add_argument("--talk-mean", type=float, default=180.0, help="simulated seconds")
    parser.add_argument("--acw-mean", type=float, default=30.0, help="simulated seconds")
    parser.add_argument("--person-share", type=float, default=0.75)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    args.levels = [int(s) for s in args.steps.split(",")]
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
