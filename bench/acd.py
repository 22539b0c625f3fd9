"""ACD benchmark through the fake FreeSWITCH: many agents, a long queue, a steady arrival rate.

Default: 500 agents, 1000 callers already queued, then 30 new calls per second for --duration seconds;
agents talk --talk seconds. The fake FreeSWITCH (scripted agents and callers) runs in its own process, so
the app process (inbound ESL, outbound socket server, ACD, database) is measured on its own. Prints p50/p99
of the dispatch decision and of agent-free-to-offer (from the moment both an agent and a caller were
waiting), the rates achieved, and the number of stuck agents (reserved/ringing/in call with no channel)
after every caller has gone: it must be 0. Beside it, mod_callcenter's published trouble points.

    .venv/bin/python bench/acd.py [--agents 500] [--queued 1000] [--rate 30] [--duration 30] [--quick]
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import install_pin_key, pct  # noqa: E402

MOD_CALLCENTER = [
    ("mod_callcenter: agents stuck in Receiving/Reserved", "reported around 200 concurrent calls"),
    ("mod_callcenter: dispatch stalls / stuck members", "reported around 20 calls per second"),
]
SCALE = 0.1  # the fake's simulated seconds -> wall seconds


# ---------------------------------------------------------------------- the fake FreeSWITCH process
def fake_process(args) -> int:
    """Run the fake switch; obey one-line JSON commands on stdin, answer on stdout."""
    import gevent
    from gevent.fileobject import FileObjectThread

    from tests.fakeswitch import FakeSwitch

    tmp = Path(tempfile.mkdtemp(prefix="acd-bench-fs-"))
    fs = FakeSwitch(password="ClueCon", record_dir=tmp, time_scale=SCALE)
    fs.start()
    for i in range(args.agents):
        fs.add_agent(str(10000 + i), answer_delay=0.5, talk_seconds=args.talk / SCALE)
    calls = []
    placing = []
    out = sys.stdout

    def say(**message):
        out.write(json.dumps(message) + "\n")
        out.flush()

    def place(address, queued, rate, duration):
        for i in range(queued):
            calls.append(fs.place_call(address, caller=f"139{i:08d}", destination="12345"))
            if i % 20 == 0:
                gevent.sleep(0)
        say(event="queued", count=queued)
        started = time.monotonic()
        arrivals = int(rate * duration)
        for i in range(arrivals):
            gevent.sleep(max(0.0, started + i / rate - time.monotonic()))
            calls.append(fs.place_call(address, caller=f"138{i:08d}", destination="12345"))
        say(event="arrived", count=arrivals, seconds=time.monotonic() - started)

    def hangup_all():
        for call in calls:
            if call.hangup_cause is None:
                call.hangup()
        for phone in fs.agents.values():
            for channel in list(getattr(phone, "channels", [])):
                if not channel.hung_up:
                    fs.hangup(channel, "NORMAL_CLEARING", by="switch")
        say(event="hung_up", channels=len(fs.channels))

    say(event="ready", port=fs.esl_port)
    stdin = FileObjectThread(sys.stdin)
    for line in stdin:
        command = json.loads(line)
        if command["cmd"] == "place":
            placing.append(gevent.spawn(place, tuple(command["address"]), command["queued"], command["rate"],
                                        command["duration"]))
        elif command["cmd"] == "hangup":
            gevent.joinall(placing, timeout=600)
            hangup_all()
        elif command["cmd"] == "channels":
            say(event="channels", count=len(fs.channels))
        elif command["cmd"] == "stop":
            break
    fs.stop()
    return 0


# ---------------------------------------------------------------------- the app process
class FakeControl:
    """Talk to the fake switch process over its stdin/stdout (cooperative pipes: the app is monkey-patched)."""

    def __init__(self, args):
        import gevent
        import gevent.queue

        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--fake-server", "--agents", str(args.agents), "--talk", str(args.talk)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(ROOT))
        self.events: gevent.queue.Queue = gevent.queue.Queue()
        self.reader = gevent.spawn(self._read)

    def _read(self):
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def send(self, **command):
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def expect(self, name, timeout):
        while True:
            event = self.events.get(timeout=timeout)
            if event["event"] == name:
                return event

    def close(self):
        try:
            self.send(cmd="stop")
            self.proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


def app_process(args) -> int:
    from gevent import monkey

    monkey.patch_all()
    import gevent

    from acd.dispatcher import Acd, AcdSettings, create_agent, create_queue
    from acd.models import QueueEntry
    from caseflow.models import User
    from core import db as core_db
    from core.config import EslEndpoint
    from hotline.schema import all_models, create_schema
    from switch.errors import CallHangup
    from switch.inbound import SwitchPool
    from switch.outbound import OutboundServer

    logging.basicConfig(level=logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="acd-bench-"))
    database = core_db.bind_database(f"sqlite:///{tmp / 'bench.sqlite3'}")
    database.connect()
    install_pin_key()
    create_schema(all_models())
    create_queue("bench", "bench", ring_timeout=20, max_wait=0, wrap_up_seconds=0, announce_interval=0,
                 callback_key="")
    with database.atomic():
        for i in range(args.agents):
            ext = str(10000 + i)
            user = User.create(operator_no=str(70000 + i), name=f"agent{i}", password_hash="x", extension=ext)
            create_agent(user, {"bench": 1 + i % 10})

    fake = FakeControl(args)
    port = fake.expect("ready", timeout=120)["port"]
    pool = SwitchPool([EslEndpoint("127.0.0.1", port, "ClueCon")], max_queued_events=200000)
    pool.start()
    if not pool.all()[0].wait_connected(10):
        print("could not connect to the fake switch", file=sys.stderr)
        fake.close()
        return 1
    acd = Acd(pool, settings=AcdSettings(reconcile_interval=3600))
    acd.start()

    def handle(session):
        try:
            acd.enter_queue(session, "bench")
        except CallHangup:
            pass

    server = OutboundServer("127.0.0.1", 0, handle, max_calls=args.queued + int(args.rate * args.duration) + 100)
    server.start()
    for agent in acd.agents.values():
        acd.transition(agent.id, "login")
    started = time.monotonic()
    fake.send(cmd="place", address=list(server.address), queued=args.queued, rate=args.rate,
              duration=args.duration)
    fake.expect("queued", timeout=300)
    # Agents become ready while the queue is full: each one is offered a caller at once.
    for agent in list(acd.agents.values()):
        acd.transition(agent.id, "ready")
        gevent.sleep(0)  # agents press "ready" one by one, not in one blocking loop
    arrived = fake.expect("arrived", timeout=args.duration * 20 + 60)
    run_seconds = time.monotonic() - started
    served = QueueEntry.select().where(QueueEntry.answered_at.is_null(False)).count()
    peak_waiting = max(len(w) for w in acd.queue_waiters.values()) if acd.queue_waiters else 0
    # Everyone hangs up: every agent must come back to idle with nothing stuck.
    fake.send(cmd="hangup")
    fake.expect("hung_up", timeout=120)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(a.state != "idle" for a in acd.agents.values()):
        gevent.sleep(0.2)
    for conn in pool.all():
        acd.reconcile(conn.name)
    gevent.sleep(1)
    stuck = [a for a in acd.agents.values() if a.state != "idle"]
    for agent in stuck:
        print(f"stuck agent {agent.extension}: {agent.status}/{agent.state} since {agent.since} "
              f"leg {agent.leg_uuid} call {agent.call_uuid}", file=sys.stderr)

    decisions = [d * 1000 for d in acd.decision_times]
    free = [d * 1000 for d in acd.free_to_offer]
    rows = [
        ("agents / queued at start / arrival rate asked", f"{args.agents} / {args.queued} / {args.rate:g} per s"),
        ("arrivals achieved", f"{arrived['count']} in {arrived['seconds']:.1f} s "
                              f"= {arrived['count'] / max(arrived['seconds'], 1e-9):.1f} per s"),
        ("calls answered by agents", f"{served} in {run_seconds:.1f} s = {served / max(run_seconds, 1e-9):.1f} per s"),
        ("callers still waiting at the end of arrivals", str(peak_waiting)),
        ("dispatch decision p50 / p99 (ms)", f"{pct(decisions, 50):.3f} / {pct(decisions, 99):.3f}  (n={len(decisions)})"),
        ("agent free -> offer p50 / p99 (ms)", f"{pct(free, 50):.3f} / {pct(free, 99):.3f}  (n={len(free)})"),
        ("stuck agents at the end (must be 0)", str(len(stuck))),
    ]
    width = max(len(r[0]) for r in rows + MOD_CALLCENTER)
    print(f"\nACD benchmark: app process vs. fake FreeSWITCH in another process ({time.monotonic() - started:.1f} s)")
    print("-" * (width + 44))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("-" * (width + 44))
    print("peer (published trouble points, not measured here):")
    for name, value in MOD_CALLCENTER:
        print(f"{name:<{width}}  {value}")
    server.stop(drain_timeout=5)
    acd.stop()
    pool.stop()
    fake.close()
    return 0 if not stuck else 2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--queued", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--talk", type=float, default=10.0, help="wall seconds each agent talks")
    parser.add_argument("--quick", action="store_true", help="50 agents, 100 queued, 10 per s for 10 s")
    parser.add_argument("--fake-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.agents, args.queued, args.duration, args.rate, args.talk = 50, 100, 10.0, 10.0, 2.0
    if args.fake_server:
        return fake_process(args)
    return app_process(args)


if __name__ == "__main__":
    sys.exit(main())
