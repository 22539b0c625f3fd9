"""The app process of bench/simulation.py: the product's composition (hotline.product.Product, what run.py
starts) on the configuration in its environment, with a probe and counters beside it, driven over stdin/stdout.

Beside the product, in the same hub: a probe greenlet (sleeps 50 ms and records how late it wakes: the hub's
latency, what every call and web request waits on top of its own work), a counter of the events every inbound
ESL connection hands on, and the desks' side of the agents: each seat is logged in and made ready through
acd.agent_controls (what the desk's /desk/action calls), and when an agent enters wrap-up (after-call work) it
ends it after a drawn time, as the agent pressing 就绪 on the desk. The queues' own wrap-up time is set longer,
so it is the agents' drawn time that counts.

Commands (one JSON line each on stdin; answers on stdout): ``sign_in`` (every seat: login, ready), ``sample``
(counters since the last sample), ``stop``. The product's log goes to stderr. With ``SIM_PROFILE=<file>``
in its environment a real thread samples the hub's stack every 5 ms from the seats' sign-in to the stop (every
greenlet: the calls, the ACD, the desks' feed; well under 1 % of a core, where cProfile doubled the cost it
measured) and writes the functions most often on top and anywhere on the stack there. With ``SIM_DUMP=<file>``
a SIGUSR1 appends to that file the ACD's state (the dispatch pass running or not, the waiting callers by what
they wait for, the agents by state) and every greenlet's stack: what a stalled ACD is waiting on. With
``SIM_POOLTRACE=<file>`` every pooled connection's wait and hold is recorded by caller and written at the stop
(PoolTrace).
"""
from gevent import monkey; monkey.patch_all()  # noqa: E702,I001 - as run.py: before anything imports socket

import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROBE_INTERVAL = 0.05
# Seconds between counts of the database connections: read from /proc, every 0.5 s they took 11 % of the hub's
# wall-clock samples at 1,000 calls on PostgreSQL (its sockets among thousands of the calls').
CONNECTIONS_EVERY = 5.0


def db_connections(database_url: str, sqlite_path: str) -> int:
    """The database connections this process holds now: sockets to PostgreSQL's port, or descriptors open
    on the SQLite file."""
    if database_url.startswith("postgres"):
        from bench.ivr import _server_connections

        return _server_connections()
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            if os.readlink(fd) == sqlite_path:
                count += 1
        except OSError:
            continue
    return count


class Probe:
    """Counters the orchestrator samples: hub lag, ESL events, offers, connections."""

    def __init__(self, product, config):
        self.product, self.config = product, config
        self.lags: list[float] = []
        self.events = 0
        self.acd = product.parts["acd"]
        self.offer_seen = 0
        self.decision_seen = 0
        self.peak_connections = 0
        self.peak_active = 0
        self.tickets = 0
        self.pool_timeouts = 0  # samples whose ticket count found no free database connection in time
        self.served = 0  # calls the outbound server handed to the product (not refused at its door)
        self.sqlite_path = config.database_url.removeprefix("sqlite:///") if config.database_url.startswith(
            "sqlite") else ""

    def count_event(self, _event) -> None:
        self.events += 1

    def counting(self, handler):
        def handle(session):
            self.served += 1
            return handler(session)
        return handle

    def run_lag(self) -> None:
        while True:
            began = time.perf_counter()
            gevent.sleep(PROBE_INTERVAL)
            self.lags.append(time.perf_counter() - began - PROBE_INTERVAL)

    def run_connections(self) -> None:
        counted = 0.0
        while True:
            if time.monotonic() - counted >= CONNECTIONS_EVERY:
                counted = time.monotonic()
                self.peak_connections = max(self.peak_connections,
                                            db_connections(self.config.database_url, self.sqlite_path))
            self.peak_active = max(self.peak_active, self.product.parts["outbound"].active_calls)
            gevent.sleep(0.5)

    def sample(self) -> dict:
        from caseflow.models import Ticket
        from core.db import database

        offers = list(self.acd.free_to_offer)[self.offer_seen:] if len(self.acd.free_to_offer) < \
            self.acd.free_to_offer.maxlen else list(self.acd.free_to_offer)[-1000:]
        self.offer_seen = len(self.acd.free_to_offer)
        decisions = list(self.acd.decision_times)[self.decision_seen:]
        self.decision_seen = len(self.acd.decision_times)
        lags, self.lags = self.lags, []
        try:
            with database.connection_context():
                tickets = Ticket.select().count()
            self.tickets = tickets
        except Exception:  # noqa: BLE001 - the pool exhausted (a finding, not the bench's end): the last count
            tickets = self.tickets
            self.pool_timeouts += 1
        agents = list(self.acd.agents.values())
        report = {
            "at": time.monotonic(), "events": self.events, "lags": lags, "offers": offers,
            "decisions": decisions, "tickets": tickets, "connections": self.peak_connections,
            "active": self.product.parts["outbound"].active_calls, "peak_active": self.peak_active,
            "waiting": sum(len(w) for w in self.acd.queue_waiters.values()),
            "in_call": sum(1 for a in agents if a.state == "in_call"),
            "wrap_up": sum(1 for a in agents if a.state == "wrap_up"),
            "available": sum(1 for a in agents if a.status == "available" and a.state == "idle"),
            "registered": sum(1 for a in agents if a.registered),
            "refused": self.product.parts["outbound"].calls_rejected, "served": self.served,
            "pool_timeouts": self.pool_timeouts,
        }
        self.peak_connections = 0
        self.peak_active = 0
        return report


class Desks:
    """The agents' side: sign in every seat, end each wrap-up after a drawn after-call work time."""

    def __init__(self, acd, scale: float, acw_mean: float, seed: int):
        from acd.agent_controls import AgentControls

        self.acd, self.scale = acd, scale
        self.controls = AgentControls(acd)
        self.rng = random.Random(seed)
        self.acw_mean = acw_mean
        self.pending: set[int] = set()
        self.ended = 0

    def sign_in(self, prefix: str) -> int:
        signed = 0
        for agent in list(self.acd.agents.values()):
            if not agent.extension.startswith(prefix):
                continue
            self.controls.login(agent.id)
            self.controls.ready(agent.id)
            signed += 1
            if signed % 50 == 0:
                gevent.sleep(0)
        return signed

    def on_notice(self, notice: dict) -> None:
        if notice.get("type") == "agent" and notice.get("state") == "wrap_up":
            agent_id = notice.get("agent_id")
            if agent_id is not None and agent_id not in self.pending:
                self.pending.add(agent_id)
                sigma = 0.7
                seconds = min(600.0, self.rng.lognormvariate(math.log(self.acw_mean) - sigma * sigma / 2, sigma))
                gevent.spawn_later(seconds * self.scale, self._end, agent_id)

    def _end(self, agent_id: int) -> None:
        from core.db import database

        self.pending.discard(agent_id)
        try:
            with database.connection_context():
                self.controls.end_wrap_up(agent_id)
            self.ended += 1
        except Exception:  # noqa: BLE001 - the queue's own wrap-up ended it first, or the agent moved on
            pass


class StackSampler:
    """Where the hub's CPU goes: a real thread reads the main thread's stack (the running greenlet's) every
    ``interval`` s and counts each function on top (self) and once per sample anywhere on the stack (total)."""

    def __init__(self, interval: float = 0.005):
        import collections

        from gevent import monkey

        self.interval, self.samples = interval, 0
        self.top: collections.Counter = collections.Counter()
        self.total: collections.Counter = collections.Counter()
        self.main = monkey.get_original("_thread", "get_ident")()  # the OS thread (patched: a greenlet id)
        # The unpatched primitives: a patched Thread would be a greenlet, sampling only itself.
        self._sleep = monkey.get_original("time", "sleep")
        self._start_thread = monkey.get_original("_thread", "start_new_thread")
        self._done = monkey.get_original("_thread", "allocate_lock")()
        self._running = False

    def start(self) -> None:
        self._running = True
        self._done.acquire()
        self._start_thread(self._run, ())

    def _run(self) -> None:
        try:
            while self._running:
                self._sleep(self.interval)
                self._sample(sys._current_frames().get(self.main))
        finally:
            self._done.release()

    def _sample(self, frame) -> None:
        if frame is None:
            return
        self.samples += 1
        seen = set()
        self.top[self._name(frame)] += 1
        while frame is not None:
            name = self._name(frame)
            if name not in seen:
                seen.add(name)
                self.total[name] += 1
            frame = frame.f_back

    @staticmethod
    def _name(frame) -> str:
        code = frame.f_code
        path = code.co_filename.replace(str(ROOT) + "/", "").replace(sys.prefix, "<venv>")
        return f"{path}:{code.co_firstlineno} {code.co_name}"

    def stop(self, path: str, most: int = 60) -> None:
        self._running = False
        if self._done.acquire(timeout=5):
            self._done.release()
        n = max(1, self.samples)
        with open(path, "w") as out:
            out.write(f"{self.samples} samples every {self.interval * 1000:g} ms\n\n% on top (self)\n")
            for name, count in self.top.most_common(most):
                out.write(f"{100 * count / n:6.2f} {name}\n")
            out.write("\n% on the stack (total)\n")
            for name, count in self.total.most_common(most * 2):
                out.write(f"{100 * count / n:6.2f} {name}\n")


class PoolTrace:
    """Who holds the pooled database's connections and for how long (``SIM_POOLTRACE=<file>``): every checkout's
    wait for a place and its hold, by caller (the innermost two frames of the app's own code that took it) and by
    whether it went ahead in the pool; the timed-out waits by caller; and every 2 s the connections out and the
    waiters queued, ahead or not. Written at the stop, the callers holding longest in total first."""

    EVERY = 2.0

    def __init__(self, db):
        import collections

        from core import db as core_db

        self.db, self.core_db = db, core_db
        self.holds: dict = collections.defaultdict(list)  # (caller, ahead) -> [hold s]
        self.waits: dict = collections.defaultdict(list)  # (caller, ahead) -> [wait s]
        self.timeouts: collections.Counter = collections.Counter()
        self.samples: list = []
        self.out: dict = {}  # connection key -> (caller, ahead, taken at)
        checkout, close = db._checkout, db._close

        def traced_checkout(reuse_if_open=False):
            if not db._state.closed:
                return checkout(reuse_if_open)
            caller = self.caller(sys._getframe(1))
            ahead = bool(getattr(db._state, "ahead", False))
            began = time.monotonic()
            try:
                opened = checkout(reuse_if_open)
            except core_db.DatabaseTimeout:
                self.timeouts[(caller, ahead)] += 1
                raise
            now = time.monotonic()
            self.waits[(caller, ahead)].append(now - began)
            self.out[db.conn_key(db._state.conn)] = (caller, ahead, now)
            return opened

        def traced_close(conn, close_conn=False):
            taken = self.out.pop(db.conn_key(conn), None)
            if taken is not None:
                self.holds[taken[:2]].append(time.monotonic() - taken[2])
            return close(conn, close_conn)

        db._checkout, db._close = traced_checkout, traced_close

    def caller(self, frame) -> str:
        frames = self.core_db._app_frames(frame, 2)[1:]
        return " < ".join(f"{Path(f.filename).stem}.{f.name}" for f in frames) or "?"

    def run(self, path: str) -> None:
        """Samples every EVERY s; the file written every 30 s too (a run cut short still leaves it)."""
        written = time.monotonic()
        while True:
            gevent.sleep(self.EVERY)
            queue = self.db._pool_available._queue
            ahead = sum(1 for w in queue if w.ahead)
            self.samples.append((len(self.db._in_use), ahead, len(queue) - ahead))
            if time.monotonic() - written > 30:
                written = time.monotonic()
                self.write(path)

    def write(self, path: str, most: int = 40) -> None:
        def pct(values, p):
            values = sorted(values)
            return values[min(len(values) - 1, int(p * len(values)))] * 1000 if values else 0.0

        keys = sorted(set(self.holds) | set(self.waits) | set(self.timeouts),
                      key=lambda k: -sum(self.holds.get(k, ())))
        total = sum(sum(v) for v in self.holds.values()) or 1.0
        with open(path, "w") as out:
            out.write("caller | ahead | checkouts | hold s total (%) | hold p50 / p99 / max ms | wait p50 / p99 ms"
                      " | timed out\n")
            for key in keys[:most]:
                holds, waits = self.holds.get(key, []), self.waits.get(key, [])
                out.write(f"{key[0]} | {'ahead' if key[1] else '-'} | {len(holds)} | {sum(holds):.1f} "
                          f"({100 * sum(holds) / total:.1f} %) | {pct(holds, .5):.0f} / {pct(holds, .99):.0f} / "
                          f"{max(holds, default=0) * 1000:.0f} | {pct(waits, .5):.0f} / {pct(waits, .99):.0f} | "
                          f"{self.timeouts.get(key, 0)}\n")
            out.write(f"\ntimed out by caller: {dict(self.timeouts.most_common(most))}\n")
            out.write("\nevery 2 s: connections out, waiters ahead, waiters not ahead\n")
            out.write(" ".join(f"{a}/{b}/{c}" for a, b, c in self.samples) + "\n")


def acd_state(acd) -> dict:
    """The ACD's dispatch state in counts: what a caller waits for, where the agents are."""
    import collections

    now = time.monotonic()
    waiters = collections.Counter()
    for queue_waiters in acd.queue_waiters.values():
        for w in queue_waiters.values():
            waiters["offer in flight" if w.offer is not None else "retry later" if w.retry_after > now else
                    "done" if w.done else f"reason {w.reason}" if w.reason else "waiting"] += 1
            waiters[f"step {w.step}"] += 1
    agents = collections.Counter(f"{a.status}/{a.state}{'' if a.registered else ' unregistered'}"
                                 for a in acd.agents.values())
    return {"dispatching": acd._dispatching, "dispatch_scheduled": acd._dispatch_scheduled,
            "waiters": dict(waiters), "agents": dict(agents), "free_at": len(acd.free_at),
            "legs": len(acd.legs)}


def dump_state(path: str, acd) -> None:
    """SIGUSR1: the ACD's state and every greenlet's stack, appended to ``path``."""
    from gevent.util import format_run_info

    with open(path, "a") as out:
        out.write(f"=== {time.strftime('%H:%M:%S')} {json.dumps(acd_state(acd))}\n")
        out.write("\n".join(format_run_info(thread_stacks=False, greenlet_stacks=True)) + "\n")


def main() -> int:
    from gevent.fileobject import FileObjectThread

    from core.config import load_config
    from core.db import database
    from core.logsetup import configure_logging
    from hotline.product import Product

    configure_logging(os.environ.get("SIM_LOG_LEVEL", "WARNING"))
    scale = float(os.environ["SIM_SCALE"])
    config = load_config()
    product = Product(config).build()
    acd = product.parts["acd"]
    if acd.prompts is not None:
        # The 5,000 operator-number prompts are rendered once in production and kept; rendering them here
        # would measure espeak-ng, not the hotline: the ACD skips a prompt it has no file for.
        acd.prompts.render = None
    probe = Probe(product, config)
    desks = Desks(acd, scale, float(os.environ["SIM_ACW_MEAN"]), int(os.environ.get("SIM_SEED", "1")))
    acd.subscribe(desks.on_notice)
    product.parts["outbound"].handler = probe.counting(product.parts["outbound"].handler)
    for conn in product.parts["pool"].all():
        conn.subscribe(probe.count_event)
    product.start()
    gevent.spawn(probe.run_lag)
    gevent.spawn(probe.run_connections)
    out = sys.stdout

    def say(**message) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    if os.environ.get("SIM_DUMP"):
        import signal

        gevent.signal_handler(signal.SIGUSR1, lambda: gevent.spawn(dump_state, os.environ["SIM_DUMP"], acd))
    profiler = StackSampler() if os.environ.get("SIM_PROFILE") else None
    pool_trace = PoolTrace(database.obj) if os.environ.get("SIM_POOLTRACE") else None
    if pool_trace is not None:
        gevent.spawn(pool_trace.run, os.environ["SIM_POOLTRACE"])
    say(event="ready", outbound=list(product.parts["outbound"].address), switches=len(config.esl))
    for line in FileObjectThread(sys.stdin):
        command = json.loads(line)
        if command["cmd"] == "sign_in":
            with database.connection_context():
                signed = desks.sign_in(command["prefix"])
            say(event="signed_in", count=signed,
                registered=sum(1 for a in acd.agents.values() if a.registered))
            if profiler is not None:
                profiler.start()
        elif command["cmd"] == "sample":
            say(event="sample", **probe.sample(), acw_ended=desks.ended)
        elif command["cmd"] == "stop":
            break
    if profiler is not None:
        profiler.stop(os.environ["SIM_PROFILE"])
    if pool_trace is not None:
        pool_trace.write(os.environ["SIM_POOLTRACE"])
    product.stop(drain_timeout=5)
    say(event="stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
