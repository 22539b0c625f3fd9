"""Benchmark on a real FreeSWITCH: SIP callers through the menu to a complaint ticket (issue 15 items 10, 11;
issue 16's overload fault). Skipped, with a message, unless HOTLINE_TEST_ESL names a switch.

The app runs as in production (run.py, a subprocess, on a fresh SQLite file); the switch's global
``hotline_outbound`` is pointed at it for the run and put back afterwards. The callers are one sipp process per
step on the carrier profile (bench/sipp/complaint_caller.xml: A-law RTP from the answer on, digits as SIP INFO,
2 / 2 / 4 s of talk and # / 1, then the thanks); sipp cannot hear prompts, so this process watches the switch's
events (CHANNEL_EXECUTE of the menus, RECORD_START) and cues the caller with ``uuid_send_info``, as the live
tests do: each caller presses its key once the app listens. Read from /proc every second: the CPU of the app,
FreeSWITCH and sipp, the machine's idle time, the app's resident memory.

Modes (one per run; each prints a table and asserts nothing):

- steps (default): concurrency steps (``--steps 50,100,200,300``), each offering ``--calls-factor`` x the
  step's callers at the rate that holds that many at once; FreeSWITCH's max-sessions and sessions-per-second
  raised for the run (``fsctl``, put back after) so the machine, not the configured door, is measured. Per
  step: calls offered, completed, refused (503 / busy), cut off, tickets, set-up latency (INVITE to 200 OK,
  and to the main menu, which comes after the welcome), CPU, resident memory, and where it saturated.
- ``--overload N``: the shipped door (FreeSWITCH's configured limits, the app's admission defaults) offered
  ``N`` at once: accepted, refused, completed, tickets.
- ``--soak SECONDS --at 150``: callers held at that concurrency for that long; the app's resident memory every
  10 s. ``--tracemalloc``: the app runs with tracemalloc and dumps its top allocations to its log on SIGUSR2
  (sent at 30 % of the soak and at its end; the second dump also lists what grew since the first).

    flock /tmp/live-fs.lock env HOTLINE_TEST_ESL=127.0.0.1:8021:ClueCon .venv/bin/python bench/live_load.py
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import pct  # noqa: E402
from switch import commands  # noqa: E402
from bench.live_parts import (  # noqa: E402
    CALLER_PREFIX, Cues, Sampler, Switch, loadavg, rss_kib, start_app, tickets_of,
)
from tests.live.sipphone import free_udp_port  # noqa: E402

SCENARIO = Path(__file__).resolve().parent / "sipp" / "complaint_caller.xml"
CALL_SECONDS = 40.0        # a call when nothing is slow: welcome 11 s, complaint intro 12 s, 4 s of talk, 12 s after
MEDIA_PORT = 34000         # sipp's RTP: above the switch's range (16384-32768), below instance B's (40000-48000)


def esl_endpoint() -> tuple[str, int, str] | None:
    """HOTLINE_TEST_ESL as (host, port, password); None when unset; ValueError when malformed."""
    raw = os.environ.get("HOTLINE_TEST_ESL", "").strip()
    if not raw:
        return None
    host, _, rest = raw.partition(":")
    port, _, password = rest.partition(":")
    if host != "127.0.0.1" or not port.isdigit() or not password:
        raise ValueError(f"HOTLINE_TEST_ESL: 127.0.0.1:port:password, got {raw!r}")
    return host, int(port), password



# --- a step -------------------------------------------------------------------------------------------------

@dataclass
class StepResult:
    label: str
    target: int
    offered: int = 0
    answered: int = 0
    completed: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    cut: int = 0
    failed: int = 0
    tickets: int = 0
    peak: int = 0
    setup: list[float] = field(default_factory=list)
    menu: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    rss_peak: int = 0
    rss_end: int = 0
    load: str = ""
    seconds: float = 0.0


def parse_calls(log_path: Path) -> dict[str, dict[str, int]]:
    """{caller: {milestone: sipp clock tick in ms}} from the scenario's log lines."""
    calls: dict[str, dict[str, int]] = {}
    if not log_path.exists():
        return calls
    for line in log_path.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            calls.setdefault(parts[0], {}).setdefault(parts[1], int(parts[2]))
    return calls


def peak_concurrency(calls: dict[str, dict[str, int]]) -> int:
    """Most callers up at once: answered and not yet ended, from the milestones."""
    edges = []
    for marks in calls.values():
        if "answered" in marks:
            end = max(marks.values())
            edges += [(marks["answered"], 1), (end, -1)]
    level = peak = 0
    for _at, change in sorted(edges):
        level += change
        peak = max(peak, level)
    return peak


class Bench:
    """What the runs share: the switch, the app, the cues, the sampler, sipp's folder."""

    def __init__(self, endpoint, folder: Path, app_extra: dict[str, str], trace: bool = False):
        self.endpoint, self.folder = endpoint, folder
        self.switch = Switch(endpoint)
        if self.switch.api(commands.global_getvar("external_sip_ip")) != "127.0.0.1":
            raise RuntimeError("the switch's external profile is not on 127.0.0.1")
        self.sip_port = int(self.switch.api(commands.global_getvar("external_sip_port")))
        self.app = start_app(folder, endpoint, app_extra, trace)
        self.switch.set_global("hotline_outbound", f"127.0.0.1:{self.app.outbound}")
        self.cues = Cues(endpoint)
        self.cues.start()
        self.sampler = Sampler({"app": self.app.proc.pid, "freeswitch": self.switch.pid()})
        self.sampler.start()
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "a-law", "-t", "raw",
                        str(folder / "voice.alaw"), "synth", "1.6", "sine", "300", "vol", "0.5", "pad", "0",
                        "0.4"], check=True, timeout=30)
        self.next_caller = 0
        time.sleep(3)
        self.idle_rss = self.sampler.take().rss["app"]

    def close(self) -> None:
        self.cues.stop()
        self.sampler.stopping.set()
        self.app.stop()
        self.switch.close()

    def callers(self, count: int) -> list[str]:
        numbers = [f"{CALLER_PREFIX}{self.next_caller + i:07d}" for i in range(count)]
        self.next_caller += count
        return numbers

    def step(self, label: str, target: int, calls: int, call_seconds: float,
             watch: "callable | None" = None) -> StepResult:
        """One sipp run: ``calls`` callers at the rate that holds ``target`` at once, at most ``target`` up."""
        callers = self.callers(calls)
        name = f"step-{label}"
        inf = self.folder / f"{name}.csv"
        inf.write_text("SEQUENTIAL\n" + "".join(f"{c};\n" for c in callers))
        log_path = self.folder / f"{name}.log"
        rate_per_10s = max(1, round(target * 10 / call_seconds))
        command = ["sipp", f"127.0.0.1:{self.sip_port}", "-sf", str(SCENARIO), "-inf", str(inf), "-s", "12345",
                   "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mp", str(MEDIA_PORT), "-r", str(rate_per_10s), "-rp", "10000",
                   "-l", str(target), "-m", str(calls), "-recv_timeout", "120000",
                   "-nostdin", "-trace_logs", "-log_file", str(log_path),
                   "-trace_err", "-error_file", str(self.folder / f"{name}-errors.log")]
        result = StepResult(label, target, load=loadavg())
        began = time.monotonic()
        self.sampler.take()
        with open(self.folder / f"{name}-sipp.out", "wb") as out:
            sipp = subprocess.Popen(command, cwd=self.folder, stdout=out, stderr=subprocess.STDOUT)
            self.sampler.pids["sipp"] = sipp.pid
            limit = calls / (rate_per_10s / 10) + 8 * call_seconds + 120
            while sipp.poll() is None:
                if watch is not None:
                    watch(time.monotonic() - began)
                if time.monotonic() - began > limit:
                    sipp.kill()
                    print(f"  sipp killed after {limit:.0f} s")
                time.sleep(1)
            self.sampler.take()
        ended = time.monotonic()
        result.seconds = ended - began
        result.cpu = self.sampler.cpu(began, ended)
        window = self.sampler.between(began, ended)
        result.rss_peak = max((s.rss["app"] for s in window), default=0)
        result.rss_end = window[-1].rss["app"] if window else 0
        result.load += " -> " + loadavg()
        self.sampler.pids.pop("sipp", None)
        marks = parse_calls(log_path)
        result.offered = len(marks)
        for caller, m in marks.items():
            if "answered" in m:
                result.answered += 1
                result.setup.append((m["answered"] - m["invite"]) / 1000)
            if "menu" in m:
                result.menu.append((m["menu"] - m["invite"]) / 1000)
            if "completed" in m:
                result.completed += 1
            elif "cut" in m:
                result.cut += 1
            refusal = next((k for k in m if k.startswith("refused_")), None)
            if refusal:
                result.refused[refusal[8:]] = result.refused.get(refusal[8:], 0) + 1
        result.failed = result.offered - result.completed - result.cut - sum(result.refused.values())
        result.peak = peak_concurrency(marks)
        answered = [c for c, m in marks.items() if "answered" in m]
        result.tickets = self._settled_tickets(answered)
        return result

    def _settled_tickets(self, callers: list[str]) -> int:
        """The tickets of ``callers``, read until the count stops growing (the last are written after the BYE)."""
        count, stable_since = -1, time.monotonic()
        while time.monotonic() - stable_since < 5:
            now = tickets_of(self.app.database, callers)
            if now != count:
                count, stable_since = now, time.monotonic()
            time.sleep(1)
        return count


# --- printing -----------------------------------------------------------------------------------------------

def _ms(values: list[float], p: float) -> str:
    return f"{pct(values, p) * 1000:.0f}" if values else "-"


HEADER = ("| step | offered | peak up | completed | refused 503/busy/other | cut | failed | tickets | setup p50/p99 ms "
          "| menu p50/p99 s | CPU app / FS / sipp / machine % | app RSS peak MiB | KiB per call | load |")


def row(r: StepResult, idle_rss: int) -> str:
    refused = "/".join(str(r.refused.get(k, 0)) for k in ("503", "busy", "other"))
    per_call = f"{(r.rss_peak - idle_rss) / r.peak:.0f}" if r.peak else "-"
    cpu = " / ".join(f"{r.cpu.get(k, float('nan')):.0f}" for k in ("app", "freeswitch", "sipp", "machine"))
    menu = f"{pct(r.menu, 50):.1f} / {pct(r.menu, 99):.1f}" if r.menu else "-"
    return (f"| {r.label} | {r.offered} | {r.peak} | {r.completed} | {refused} | {r.cut} | {r.failed} | {r.tickets} "
            f"| {_ms(r.setup, 50)} / {_ms(r.setup, 99)} | {menu} | {cpu} | {r.rss_peak / 1024:.0f} | {per_call} "
            f"| {r.load} |")


def saturated(r: StepResult) -> str:
    """Why this step counts as past what the machine carries ('' when it carried it)."""
    accepted = r.offered - sum(r.refused.values())
    if accepted and r.tickets < 0.98 * accepted:
        return f"only {r.tickets} tickets for {accepted} accepted calls"
    if r.setup and pct(r.setup, 99) > 3.0:
        return f"set-up p99 {pct(r.setup, 99):.1f} s"
    if sum(r.refused.values()):
        return f"{sum(r.refused.values())} refused"
    return ""


def bottleneck(r: StepResult) -> str:
    """The process nearest its ceiling: the app's loop is one core; FreeSWITCH and sipp share the machine."""
    app, fs, machine = r.cpu.get("app", 0), r.cpu.get("freeswitch", 0), r.cpu.get("machine", 0)
    if app > 85:
        return f"the app (its one loop at {app:.0f} % of a core)"
    if machine > 90:
        return f"the machine's CPU ({machine:.0f} % busy; FreeSWITCH {fs:.0f} %, app {app:.0f} %, sipp " \
               f"{r.cpu.get('sipp', 0):.0f} % of a core)"
    return f"none at full CPU (FreeSWITCH {fs:.0f} %, app {app:.0f} %, machine {machine:.0f} %): latency-bound"


# --- modes --------------------------------------------------------------------------------------------------

def run_steps(bench: Bench, steps: list[int], factor: float) -> None:
    bench.switch.set_limit("max_sessions", 5000)
    bench.switch.set_limit("sps", 200)
    print(f"app idle RSS {bench.idle_rss / 1024:.0f} MiB; FreeSWITCH max_sessions/sps raised for the run")
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    carried = 0
    for target in steps:
        result = bench.step(str(target), target, max(target, round(target * factor)), CALL_SECONDS)
        print(row(result, bench.idle_rss), flush=True)
        why = saturated(result)
        if why:
            print(f"saturated at {target} at once ({why}); bottleneck: {bottleneck(result)}")
            break
        carried = target
        time.sleep(10)
    print(f"carried: {carried} callers at once with every ticket")


def run_overload(bench: Bench, target: int, factor: float) -> None:
    print(f"shipped door: FreeSWITCH max_sessions {bench.switch.limit('max_sessions')}, "
          f"sps {bench.switch.limit('sps')}; app idle RSS {bench.idle_rss / 1024:.0f} MiB")
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    result = bench.step(f"overload {target}", target, round(target * factor), CALL_SECONDS)
    print(row(result, bench.idle_rss))
    accepted = result.offered - sum(result.refused.values())
    print(f"offered {result.offered}: accepted {accepted}, refused {sum(result.refused.values())} "
          f"({result.refused}), completed {result.completed}, cut {result.cut}, failed {result.failed}, "
          f"tickets {result.tickets}")
    refusals = re.findall(r"overload[^\n]*", bench.app.log_path.read_text(errors="replace"))
    print(f"app's overload log lines: {len(refusals)}" + (f"; first: {refusals[0][:200]}" if refusals else ""))


def run_soak(bench: Bench, seconds: float, target: int, trace: bool) -> None:
    calls = round(target * seconds / CALL_SECONDS) + target
    print(f"soak: {calls} callers, {target} at once, about {seconds:.0f} s; app idle RSS "
          f"{bench.idle_rss / 1024:.0f} MiB")
    series: list[tuple[float, int]] = []
    last = [-10.0]

    def watch(elapsed: float) -> None:
        if elapsed - last[0] >= 10:
            last[0] = elapsed
            series.append((elapsed, rss_kib(bench.app.proc.pid)))
            if trace and abs(elapsed - seconds * 0.3) < 5.5:  # the first dump; the second after the calls
                bench.app.proc.send_signal(signal.SIGUSR2)

    result = bench.step("soak", target, calls, CALL_SECONDS, watch=watch)
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    print(row(result, bench.idle_rss))
    print("app RSS over time (s: MiB): " + ", ".join(f"{t:.0f}: {kib / 1024:.0f}" for t, kib in series))
    time.sleep(10)
    end = rss_kib(bench.app.proc.pid)
    # The call process alone; the analysis process (stats.analysis_process, jieba and the model) is its child.
    print(f"call process RSS: start {bench.idle_rss / 1024:.0f} MiB, peak {result.rss_peak / 1024:.0f} MiB at "
          f"{result.peak} calls up, 10 s after the last call {end / 1024:.0f} MiB; per concurrent call "
          f"{(result.rss_peak - bench.idle_rss) / max(result.peak, 1):.0f} KiB")
    helpers = [(pid, rss_kib(pid)) for pid in _children(bench.app.proc.pid)]
    print("its child processes: " + (", ".join(f"{_name(pid)} (pid {pid}) {kib / 1024:.0f} MiB" for pid, kib in helpers)
                                     or "none"))
    if trace:
        bench.app.proc.send_signal(signal.SIGUSR2)
        time.sleep(5)
        print(f"tracemalloc dumps in {bench.app.log_path}")


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _name(pid: int) -> str:
    try:
        args = (Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"))
    except OSError:
        return "?"
    modules = [a.decode() for a in args if a.startswith(b"stats.") or a.endswith(b".py")]
    return modules[0] if modules else args[0].decode(errors="replace")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="50,100,200,300,400")
    parser.add_argument("--calls-factor", type=float, default=1.5, help="callers offered per step, x its size")
    parser.add_argument("--overload", type=int, default=0, help="offer this many at once to the shipped door")
    parser.add_argument("--soak", type=float, default=0, help="seconds of callers held at --at")
    parser.add_argument("--at", type=int, default=150)
    parser.add_argument("--fs-max-sessions", type=int, default=0,
                        help="FreeSWITCH's max-sessions for this run (fsctl, put back after): a door to try")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (logs, database)")
    parser.add_argument("--app-env", action="append", default=[], metavar="NAME=VALUE",
                        help="more settings for the app (HOTLINE_MAX_CALLS=...)")
    args = parser.parse_args()
    try:
        endpoint = esl_endpoint()
        steps = [int(s) for s in args.steps.split(",") if s.strip()]
        extra = dict(item.split("=", 1) for item in args.app_env)
    except ValueError as error:
        parser.error(str(error))
    if endpoint is None:
        print("skipped: HOTLINE_TEST_ESL does not name a real FreeSWITCH (e.g. 127.0.0.1:8021:ClueCon)")
        return 0
    if shutil.which("sipp") is None or shutil.which("sox") is None:
        print("skipped: sipp (Debian sip-tester) and sox are needed")
        return 0
    folder = Path(tempfile.mkdtemp(prefix="live-load-"))
    print(f"run folder {folder}; load {loadavg()}; {time.strftime('%Y-%m-%d %H:%M:%S')}")
    bench = Bench(endpoint, folder, extra, trace=args.tracemalloc)
    try:
        if args.fs_max_sessions:
            bench.switch.set_limit("max_sessions", args.fs_max_sessions)
        if args.overload:
            run_overload(bench, args.overload, args.calls_factor)
        elif args.soak:
            run_soak(bench, args.soak, args.at, args.tracemalloc)
        else:
            run_steps(bench, steps, args.calls_factor)
    finally:
        bench.close()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
