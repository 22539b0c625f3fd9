"""ACD benchmark through the fake FreeSWITCH: many agents, a long queue, a steady arrival rate.

Default: 500 agents, 1000 callers already queued, then 30 new calls per second for --duration seconds;
agents talk long enough that the queue never empties, so every agent that frees up is offered the next
caller at once. Prints p50/p99 of the dispatch decision and of agent-free-to-offer, calls served, and the
number of stuck agents (reserved/ringing/in call with no channel) after every caller has gone: it must be 0.
Beside it, mod_callcenter's published trouble points.

    .venv/bin/python bench/acd.py [--agents 500] [--queued 1000] [--rate 30] [--duration 20] [--quick]
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gevent  # noqa: E402

from acd.dispatcher import Acd, AcdSettings, create_agent, create_queue  # noqa: E402
from caseflow.models import User  # noqa: E402
from core import db as core_db  # noqa: E402
from core.config import EslEndpoint  # noqa: E402
from core.migrations import create_schema  # noqa: E402
from core.schema import all_models  # noqa: E402
from switch.errors import CallHangup  # noqa: E402
from switch.inbound import SwitchPool  # noqa: E402
from switch.outbound import OutboundServer  # noqa: E402
from tests.fakeswitch import FakeSwitch  # noqa: E402

MOD_CALLCENTER = [
    ("mod_callcenter: agents stuck in Receiving/Reserved", "reported around 200 concurrent calls"),
    ("mod_callcenter: dispatch stalls / stuck members", "reported around 20 calls per second"),
]


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100.0 * (len(values) - 1))))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--queued", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--talk", type=float, default=10.0, help="wall seconds each agent talks")
    parser.add_argument("--quick", action="store_true", help="50 agents, 100 queued, 10 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.agents, args.queued, args.duration, args.rate, args.talk = 50, 100, 10.0, 10.0, 2.0
    logging.basicConfig(level=logging.ERROR)

    tmp = Path(tempfile.mkdtemp(prefix="acd-bench-"))
    database = core_db.bind_database(f"sqlite:///{tmp / 'bench.sqlite3'}")
    database.connect()
    create_schema(all_models())

    scale = 0.1  # the fake's simulated seconds -> wall seconds
    fs = FakeSwitch(password="ClueCon", record_dir=tmp / "fs", time_scale=scale)
    fs.start()
    create_queue("bench", "bench", ring_timeout=20, max_wait=0, wrap_up_seconds=0, announce_interval=0,
                 callback_key="")
    for i in range(args.agents):
        ext = str(10000 + i)
        user = User.create(operator_no=str(70000 + i), name=f"agent{i}", password_hash="x", extension=ext)
        create_agent(user, {"bench": 1 + i % 10})
        fs.add_agent(ext, answer_delay=0.5 / scale * 0.1, talk_seconds=args.talk / scale)

    pool = SwitchPool([EslEndpoint("127.0.0.1", fs.esl_port, "ClueCon")], max_queued_events=200000)
    pool.start()
    if not pool.all()[0].wait_connected(10):
        print("could not connect to the fake switch", file=sys.stderr)
        return 1
    acd = Acd(pool, settings=AcdSettings(reconcile_interval=3600))
    acd.start()
    outcomes: dict[str, str] = {}

    def handle(session):
        try:
            outcome = acd.enter_queue(session, "bench")
            outcomes[session.uuid] = outcome.outcome
        except CallHangup:
            outcomes[session.uuid] = "gone"

    server = OutboundServer("127.0.0.1", 0, handle, max_calls=args.queued + int(args.rate * args.duration) + 100)
    server.start()
    for agent in acd.agents.values():
        acd.transition(agent.id, "login")
    calls = []
    started = time.monotonic()
    for i in range(args.queued):
        calls.append(fs.place_call(server.address, caller=f"139{i:08d}", destination="12345"))
        if i % 50 == 0:
            gevent.sleep(0)
    # Agents become ready while the queue is full: each one is offered a caller at once.
    for agent in list(acd.agents.values()):
        acd.transition(agent.id, "ready")
        gevent.sleep(0)  # agents press "ready" one by one, not in one blocking loop
    queued_at = time.monotonic()
    arrivals = int(args.rate * args.duration)
    for i in range(arrivals):
        target = queued_at + i / args.rate
        gevent.sleep(max(0.0, target - time.monotonic()))
        calls.append(fs.place_call(server.address, caller=f"138{i:08d}", destination="12345"))
    arrival_seconds = time.monotonic() - queued_at
    gevent.sleep(max(0.0, started + args.duration - time.monotonic()))
    run_seconds = time.monotonic() - started
    from acd.models import QueueEntry

    served_in_run = QueueEntry.select().where(QueueEntry.answered_at.is_null(False)).count()
    # Everyone hangs up: every agent must come back to idle with nothing stuck.
    for call in calls:
        try:
            call.hangup()
        except Exception:  # noqa: BLE001 - a call that already ended
            pass
    for agent_phone in fs.agents.values():
        for channel in list(getattr(agent_phone, "channels", [])):
            if not channel.hung_up:
                fs.hangup(channel, "NORMAL_CLEARING", by="switch")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(a.state != "idle" for a in acd.agents.values()):
        gevent.sleep(0.2)
    for conn in pool.all():
        acd.reconcile(conn.name)
    gevent.sleep(1)
    stuck = [a.id for a in acd.agents.values() if a.state != "idle"]
    for agent_id in stuck:
        a = acd.agents[agent_id]
        live = a.leg_uuid in fs.channels
        waiter = acd.waiters.get(a.call_uuid)
        print(f"stuck agent {a.extension}: {a.status}/{a.state} since {a.since} leg live={live} "
              f"waiter={waiter.step if waiter else 'no'} hung_up={waiter.session.hung_up if waiter else '-'} caller live={a.call_uuid in fs.channels} call={a.call_uuid}", file=sys.stderr)

    decisions = [d * 1000 for d in acd.decision_times]
    free = [d * 1000 for d in acd.free_to_offer]
    rows = [
        ("agents / queued at start / arrival rate", f"{args.agents} / {args.queued} / {args.rate:g} per s"),
        ("calls placed", f"{len(calls)} ({arrivals} arrivals in {arrival_seconds:.1f} s = "
                         f"{arrivals / max(arrival_seconds, 1e-9):.1f} per s achieved)"),
        ("calls answered by agents during the run", f"{served_in_run} in {run_seconds:.1f} s "
                                                     f"({served_in_run / max(run_seconds, 1e-9):.1f} per s)"),
        ("dispatch decision p50 / p99 (ms)", f"{pct(decisions, 50):.3f} / {pct(decisions, 99):.3f}"
                                              f"  (n={len(decisions)})"),
        ("agent free -> offer p50 / p99 (ms)", f"{pct(free, 50):.3f} / {pct(free, 99):.3f}  (n={len(free)})"),
        ("stuck agents at the end (must be 0)", str(len(stuck))),
    ]
    width = max(len(r[0]) for r in rows + MOD_CALLCENTER)
    print(f"\nACD benchmark through the fake FreeSWITCH ({time.monotonic() - started:.1f} s wall; the fake, "
          f"every call socket and the app share one Python process)")
    print("-" * (width + 40))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("-" * (width + 40))
    print("peer (published trouble points, not measured here):")
    for name, value in MOD_CALLCENTER:
        print(f"{name:<{width}}  {value}")
    server.stop(drain_timeout=5)
    acd.stop()
    pool.stop()
    fs.stop()
    if decisions:
        logging.getLogger(__name__).info("mean decision %.3f ms", statistics.mean(decisions))
    return 0 if not stuck else 2


if __name__ == "__main__":
    sys.exit(main())
