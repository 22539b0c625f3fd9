"""The parts of bench/live_load.py that are not the benchmark's own logic: /proc sampling (CPU, resident
memory, the machine's idle time), the live switch (its API, the callers' cues), and the app started as run.py
on a fresh SQLite file (optionally under tracemalloc)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from switch import commands

ROOT = Path(__file__).resolve().parent.parent
HZ = os.sysconf("SC_CLK_TCK")
MENU_CUES = ("/main_menu.wav", "/self_menu.wav", "/record_confirm.wav")
CALLER_PREFIX = "1397"


# --- /proc --------------------------------------------------------------------------------------------------

def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, its threads included (clock ticks); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def machine_ticks() -> tuple[int, int]:
    """(all, idle) clock ticks of every core since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values), values[3] + values[4]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Sample:
    at: float
    ticks: dict[str, int]
    rss: dict[str, int]
    machine: tuple[int, int]


class Sampler(threading.Thread):
    """Reads the CPU and resident memory of the named processes every ``interval`` seconds."""

    def __init__(self, pids: dict[str, int], interval: float = 1.0):
        super().__init__(daemon=True)
        self.pids, self.interval = dict(pids), interval
        self.samples: list[Sample] = []
        self.stopping = threading.Event()

    def take(self) -> Sample:
        pids = dict(self.pids)
        sample = Sample(time.monotonic(), {n: cpu_ticks(p) for n, p in pids.items()},
                        {n: rss_kib(p) for n, p in pids.items()}, machine_ticks())
        self.samples.append(sample)
        return sample

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            self.take()

    def between(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.at <= end]

    def cpu(self, start: float, end: float) -> dict[str, float]:
        """Per process, the share of one core it used between the two moments (100 = one core); "machine":
        the share of all cores busy (100 = all)."""
        window = self.between(start, end)
        if len(window) < 2:
            return {}
        first, last = window[0], window[-1]
        shares = {}
        for name in {n for s in window for n in s.ticks}:
            # A process that ended (sipp) reads 0 afterwards: its last sample alive counts.
            alive = [s for s in window if s.ticks.get(name)]
            if alive:
                shares[name] = 100.0 * (alive[-1].ticks[name] - first.ticks.get(name, 0)) / HZ / (
                    last.at - first.at)
        total, idle = last.machine[0] - first.machine[0], last.machine[1] - first.machine[1]
        shares["machine"] = 100.0 * (total - idle) / total if total else float("nan")
        return shares


# --- FreeSWITCH ---------------------------------------------------------------------------------------------

class Switch:
    """The raw event-socket client of the live tests, for the bench's few API commands."""

    def __init__(self, endpoint: tuple[str, int, str]):
        from tests.live.eslraw import EslClient

        self.endpoint = endpoint
        self.client = EslClient.connect(*endpoint)
        self.restore: list[str] = []

    def api(self, command: str) -> str:
        return self.client.api(command, timeout=30).strip()

    def set_global(self, name: str, value: str) -> None:
        before = self.api(commands.global_getvar(name))
        self.restore.append(f"global_setvar {name}={before}")
        if not self.api(f"global_setvar {name}={value}").startswith("+OK"):
            raise RuntimeError(f"global_setvar {name} refused")

    def limit(self, name: str) -> int:
        """fsctl max_sessions / sps without a value prints the current one."""
        found = re.search(r"(\d+)", self.api(f"fsctl {name}"))
        return int(found.group(1)) if found else 0

    def set_limit(self, name: str, value: int) -> None:
        self.restore.append(f"fsctl {name} {self.limit(name)}")
        self.api(f"fsctl {name} {value}")

    def pid(self) -> int:
        run_dir = self.api(commands.global_getvar("run_dir"))
        return int(Path(run_dir, "freeswitch.pid").read_text().split()[0])

    def close(self) -> None:
        for command in reversed(self.restore):
            try:
                self.api(command)
            except Exception as error:  # noqa: BLE001 - say what was not put back
                print(f"could not put back the switch's setting ({command}): {error}")
        self.client.close()


class Cues(threading.Thread):
    """Tells each bench caller (sipp) to press its next key when the app starts a menu or the recording on
    its carrier leg: ``uuid_send_info`` (as bgapi, nothing waited for) on the leg's CHANNEL_EXECUTE of
    play_and_get_digits with one of MENU_CUES, or its RECORD_START."""

    def __init__(self, endpoint: tuple[str, int, str]):
        super().__init__(daemon=True)
        from tests.live.eslraw import EslClient

        self.client = EslClient.connect(*endpoint)
        for command in ("event plain CHANNEL_EXECUTE RECORD_START", "filter Event-Name RECORD_START",
                        "filter Application play_and_get_digits"):
            reply = self.client.command(command)
            if not reply.headers.get("Reply-Text", "").startswith("+OK"):
                raise RuntimeError(f"{command}: {reply.headers.get('Reply-Text')}")
        self.stopping = threading.Event()
        self.sent = 0
        self.recording: list[str] = []  # the callers whose recording started, in order

    def wanted(self, event: dict[str, str]) -> bool:
        if not event.get("Channel-Name", "").startswith("sofia/external/"):
            return False
        if not event.get("Caller-Caller-ID-Number", "").startswith(CALLER_PREFIX):
            return False
        if event.get("Event-Name") == "RECORD_START":
            return True
        return (event.get("Application") == "play_and_get_digits"
                and any(cue in event.get("Application-Data", "") for cue in MENU_CUES))

    def run(self) -> None:
        from tests.live.eslraw import EslError, EslTimeout

        while not self.stopping.is_set():
            try:
                frame = self.client.read_frame(timeout=1.0)
            except EslTimeout:
                continue
            except EslError as error:
                print(f"cue connection lost: {error}")
                return
            event = frame.event()
            if event is not None and self.wanted(event):
                self.client.bgapi_nowait(commands.uuid_send_info(event["Unique-ID"], "cue"))
                self.sent += 1
                if event.get("Event-Name") == "RECORD_START":
                    self.recording.append(event.get("Caller-Caller-ID-Number", ""))

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)
        self.client.close()


# --- the app ------------------------------------------------------------------------------------------------

TRACEMALLOC_BOOT = """
import runpy, signal, sys, tracemalloc, logging
tracemalloc.start(8)
first = []
def dump(signum, frame):
    snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    log = logging.getLogger("tracemalloc")
    total = sum(s.size for s in snap.statistics("filename"))
    log.warning("tracemalloc: %.1f MiB traced", total / 2**20)
    for stat in snap.statistics("traceback")[:25]:
        log.warning("tracemalloc: %.1f KiB in %d blocks\\n%s", stat.size / 1024, stat.count,
                    "\\n".join(stat.traceback.format()[-8:]))
    if first:  # what grew since the first dump
        for stat in snap.compare_to(first[0], "traceback")[:25]:
            log.warning("tracemalloc grew: %+.1f KiB in %+d blocks\\n%s", stat.size_diff / 1024, stat.count_diff,
                        "\\n".join(stat.traceback.format()[-8:]))
    else:
        first.append(snap)
signal.signal(signal.SIGUSR2, dump)
sys.argv = ["run.py"]
runpy.run_path("run.py", run_name="__main__")
"""


PREPARE = """
import sys
from caseflow import pins
from core.config import load_config
from core.db import bind_database, database
from hotline.schema import all_models, create_schema
from webui.app import load_demo_if_empty
from acd.demo import load_acd_demo
from caseflow.search import ensure_all
config = load_config({"database_url": sys.argv[1], "var_dir": sys.argv[2], "mode": "test", "secret_key": "p" * 40})
pins.install(pins.PinKeys.from_config(config))  # the demo tickets' PINs, as a product's start
bind_database(config.database_url)
with database.connection_context():
    create_schema(all_models())
    ensure_all()
load_demo_if_empty(config)
with database.connection_context():
    load_acd_demo()
"""


def prepare_database(url: str, var: Path) -> None:
    """The demo data set (accounts, tree, queues) without run.py's months of demo history, which take
    minutes to write on a busy machine: run.py finds users and loads nothing more."""
    subprocess.run([sys.executable, "-c", PREPARE, url, str(var)], cwd=ROOT, check=True, timeout=600,
                   stdout=subprocess.DEVNULL)


@dataclass
class App:
    proc: subprocess.Popen
    database: Path
    log_path: Path
    outbound: int

    def wait_log(self, pattern: str, timeout: float) -> None:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if regex.search(self.log_path.read_text(errors="replace")):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"the app did not log {pattern!r} (exit {self.proc.poll()}):\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def sounds_dir(folder: Path) -> Path:
    """The checkout's rendered prompts when there (make prompts), else rendered into ``folder``."""
    sounds = ROOT / "sounds"
    if (sounds / "zh" / "welcome.wav").exists():
        return sounds
    from ivr.prompts import LANGUAGES, prompts_file, render_all

    target = folder / "sounds"
    target.mkdir()
    for lang in LANGUAGES:
        shutil.copy(prompts_file(sounds, lang), target)
    render_all(target, 8000)
    return target


def start_app(folder: Path, endpoint: tuple[str, int, str], extra: dict[str, str], trace: bool) -> App:
    from tests.integration.product.app_process import app_env, free_port

    var = folder / "var"
    var.mkdir()
    var.chmod(0o777)  # FreeSWITCH may run as its own user and writes the recordings below
    database = var / "load.sqlite3"
    prepare_database(f"sqlite:///{database}", var)
    outbound = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           **app_env(f"sqlite:///{database}", var, sounds_dir(folder), esl="%s:%d:%s" % endpoint,
                     outbound_port=outbound, http_port=free_port(), node="load", HOTLINE_LOAD_DEMO="true",
                     **extra)}
    env.pop("HOTLINE_TEST_ESL", None)
    log_path = folder / "app.log"
    args = ["-c", TRACEMALLOC_BOOT] if trace else ["run.py"]
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=log_file,
                                stderr=subprocess.STDOUT)
    app = App(proc, database, log_path, outbound)
    app.wait_log(r"outbound socket server on", 180)
    app.wait_log(r"connected to the event socket", 60)
    return app


def tickets_of(database: Path, callers: list[str]) -> int:
    """How many of ``callers`` have a ticket (the app's SQLite file, read beside it)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as conn:
        found = set()
        for start in range(0, len(callers), 500):
            chunk = callers[start:start + 500]
            rows = conn.execute("SELECT DISTINCT citizen_phone FROM ticket WHERE citizen_phone IN (%s)"
                                % ",".join("?" * len(chunk)), chunk).fetchall()
            found.update(r[0] for r in rows)
    return len(found)
