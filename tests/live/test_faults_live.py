"""Faults proved on the real FreeSWITCH (issue 16, "Faults, proved end to end"; docs/reliability.md, "A lost
hang-up event"): the switch killed with -9 while SIP callers are in the menu and recording their complaint,
then started again; the app (run.py) killed with -9 while callers are in the menu, then started again.

The switch killed here is a PRIVATE FreeSWITCH this module starts itself (the checkout's freeswitch-conf with a
local folder of its own: ESL 8041, SIP 5064/5084, WSS 7447, RTP 50000-56000, its own -log/-db/-run below the
test's tmp folder), so the shared instances A and B are never touched. Its ``hotline_outbound`` is the app's
port (HOTLINE_OUTBOUND in the switch's environment), so a restarted switch routes calls to the app as a
configured one would. The callers are bench/sipp/complaint_caller.xml on the carrier profile, cued by
bench.live_parts.Cues (sipp cannot hear prompts). The app runs as in production (run.py, SQLite file), read
beside it with sqlite3. Figures (time from the switch's return to every record closed) are printed, not
asserted. A third test kills the switch with one agent (a sipp phone, signed in through the web desk) talking to a
queue caller and another idle, and reads the ACD's agent_state_log. Skipped without HOTLINE_TEST_ESL (the live suite's switch), the freeswitch binary, sipp or sox.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.waiting import poll_until

ROOT = Path(__file__).resolve().parents[2]
FS_PORTS = {"esl_listen_port": "8041", "internal_sip_port": "5064", "external_sip_port": "5084",
            "internal_wss_port": "7447", "rtp_start_port": "50000", "rtp_end_port": "56000"}
ESL = ("127.0.0.1", int(FS_PORTS["esl_listen_port"]), "ClueCon")
SCENARIO = ROOT / "bench" / "sipp" / "complaint_caller.xml"
QUEUE_SCENARIO = ROOT / "tests" / "live" / "sipp" / "queue_caller.xml"  # 1, 3: convenience services
AGENTS = {"1001": "1000", "1002": "1001"}  # the demo agents (operator number: extension), both with that skill
MEDIA_PORT = 34200        # sipp's RTP: outside every switch's RTP range and the bench's 34000
SWITCH_CALLERS = 50       # the switch-killed test: two a second; the first few reach the recording first
APP_CALLERS = 40          # the app-killed test: all in the IVR

pytestmark = pytest.mark.live


def _needs() -> None:
    if not os.environ.get("HOTLINE_TEST_ESL", "").strip():
        pytest.skip("HOTLINE_TEST_ESL is not set: no real FreeSWITCH to test against (see tests/live/README.md)")
    for tool in ("freeswitch", "sipp", "sox"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if not (ROOT / "sounds" / "zh" / "welcome.wav").exists():
        pytest.skip("the prompts are not rendered (make prompts)")


class PrivateSwitch:
    """A FreeSWITCH of this test's own: started, killed with -9, started again."""

    def __init__(self, folder: Path, outbound_port: int, standby_port: int):
        self.folder = folder
        local = folder / "local"
        shutil.copytree(ROOT / "tests" / "live" / "instance-b", local)
        (local / "instance-b.xml").unlink()
        lines = [f'  <X-PRE-PROCESS cmd="set" data="{k}={v}"/>' for k, v in FS_PORTS.items()]
        lines += ['  <X-PRE-PROCESS cmd="set" data="esl_password=ClueCon"/>',
                  '  <X-PRE-PROCESS cmd="set" data="agent_password=agent-test-pw"/>',
                  '  <X-PRE-PROCESS cmd="set" data="seat_passwords=shared"/>']
        (local / "faults.xml").write_text("<include>\n" + "\n".join(lines) + "\n</include>\n")
        for sub in ("log", "db", "run"):
            (folder / sub).mkdir()
        self.env = {**os.environ, "HOTLINE_FS_LOCAL_DIR": str(local),
                    "HOTLINE_OUTBOUND": f"127.0.0.1:{outbound_port}",
                    "HOTLINE_OUTBOUND_STANDBY": f"127.0.0.1:{standby_port}"}
        self.pid = 0

    def start(self) -> float:
        """Starts it and waits until its event socket answers; returns that moment (monotonic)."""
        from tests.live.eslraw import EslClient, EslError

        command = ["freeswitch", "-nonat", "-nc", "-conf", str(ROOT / "freeswitch-conf"),
                   "-log", str(self.folder / "log"), "-db", str(self.folder / "db"), "-run", str(self.folder / "run")]
        # -nc forks and returns; close_fds keeps the live lock's descriptor from the switch.
        subprocess.run(command, env=self.env, cwd=ROOT, check=True, timeout=60, close_fds=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                client = EslClient.connect(*ESL)
                status = client.api("sofia status", timeout=10)
                client.close()
                if status.count("RUNNING") >= 2:
                    self.pid = int((self.folder / "run" / "freeswitch.pid").read_text().split()[0])
                    return time.monotonic()
            except (OSError, EslError):
                pass
            time.sleep(0.2)
        raise AssertionError("the private FreeSWITCH did not come up: " + self.log_tail())

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and Path(f"/proc/{self.pid}").exists():
            time.sleep(0.1)

    def stop(self) -> None:
        if self.pid and Path(f"/proc/{self.pid}").exists():
            subprocess.run(["freeswitch", "-stop", "-run", str(self.folder / "run")], timeout=60,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and Path(f"/proc/{self.pid}").exists():
                time.sleep(0.2)
            if Path(f"/proc/{self.pid}").exists():
                os.kill(self.pid, signal.SIGKILL)

    def log_tail(self) -> str:
        log = self.folder / "log" / "freeswitch.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.exists() else "(no log)"


class Rig:
    """The private switch, the app (run.py) on a SQLite file, the cues, the sipp callers."""

    def __init__(self, folder: Path):
        from bench.live_parts import prepare_database
        from tests.integration.product.app_process import free_port

        self.folder = folder
        self.var = folder / "var"
        self.var.mkdir()
        self.var.chmod(0o777)
        self.database = self.var / "faults.sqlite3"
        prepare_database(f"sqlite:///{self.database}", self.var)
        self.outbound, self.http = free_port(), free_port()
        (folder / "fs").mkdir()
        self.switch = PrivateSwitch(folder / "fs", self.outbound, free_port())
        self.app = None  # bench.live_parts.App
        self.app_runs = 0
        self.cues = None
        self.sipp: list[subprocess.Popen] = []
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "a-law", "-t", "raw", str(folder / "voice.alaw"),
                        "synth", "1.6", "sine", "300", "vol", "0.5", "pad", "0", "0.4"], check=True, timeout=30)

    # the app ---------------------------------------------------------------------------------------------
    def start_app(self) -> None:
        from bench.live_parts import App
        from tests.integration.product.app_process import app_env

        self.app_runs += 1
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               **app_env(f"sqlite:///{self.database}", self.var, ROOT / "sounds", esl="%s:%d:%s" % ESL,
                         outbound_port=self.outbound, http_port=self.http, node="faults",
                         HOTLINE_LOAD_DEMO="true")}
        env.pop("HOTLINE_TEST_ESL", None)
        log_path = self.folder / f"app-{self.app_runs}.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(["nice", "-n", "19", str(ROOT / ".venv" / "bin" / "python"), "run.py"],
                                    cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        self.app = App(proc, self.database, log_path, self.outbound)
        self.app.wait_log("outbound socket server on", 180)
        self.app.wait_log("connected to the event socket", 60)

    def kill_app(self) -> None:
        self.app.proc.kill()
        self.app.proc.wait(30)

    # the callers -----------------------------------------------------------------------------------------
    def start_cues(self) -> None:
        from bench.live_parts import Cues

        class WithHumanMenu(Cues):
            """The bench's cues and the human-service menu (QUEUE_SCENARIO's second key)."""

            def wanted(self, event: dict[str, str]) -> bool:
                return super().wanted(event) or (
                    event.get("Channel-Name", "").startswith("sofia/external/")
                    and event.get("Application") == "play_and_get_digits"
                    and "/human_menu.wav" in event.get("Application-Data", ""))

        self.cues = WithHumanMenu(ESL)
        self.cues.start()

    def call(self, callers: list[str], per_second: float, label: str, scenario: Path = SCENARIO) -> subprocess.Popen:
        from tests.live.sipphone import free_udp_port

        inf = self.folder / f"{label}.csv"
        inf.write_text("SEQUENTIAL\n" + "".join(f"{c};\n" for c in callers))
        command = ["nice", "-n", "19", "sipp", f"127.0.0.1:{FS_PORTS['external_sip_port']}", "-sf", str(scenario),
                   "-inf", str(inf), "-s", "12345", "-i", "127.0.0.1", "-p", str(free_udp_port()),
                   "-mp", str(MEDIA_PORT), "-r", str(max(1, round(per_second * 10))), "-rp", "10000",
                   "-l", str(len(callers)), "-m", str(len(callers)), "-recv_timeout", "120000", "-nostdin",
                   "-trace_logs", "-log_file", str(self.folder / f"{label}.log")]
        out = open(self.folder / f"{label}-sipp.out", "wb")
        proc = subprocess.Popen(command, cwd=self.folder, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        self.sipp.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.sipp:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        if self.cues is not None:
            self.cues.stop()
        if self.app is not None:
            self.app.stop()
        self.switch.stop()

    # what the app wrote ----------------------------------------------------------------------------------
    def rows(self, sql: str, params=()) -> list[tuple]:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute(sql, params).fetchall()

    def records(self, callers: list[str]) -> dict[str, list[tuple]]:
        """{caller: [(call_uuid, finalised, disposition, ended_at, id)]}."""
        found: dict[str, list[tuple]] = {}
        for row in self.rows("SELECT caller, call_uuid, finalised, disposition, ended_at, id FROM call_record "
                             f"WHERE caller IN ({','.join('?' * len(callers))})", callers):
            found.setdefault(row[0], []).append(row[1:])
        return found

    def open_records(self, callers: list[str]) -> int:
        return sum(1 for rows in self.records(callers).values() for r in rows if not r[1])

    def missed(self, callers: list[str]) -> dict[str, tuple]:
        return {r[0]: r[1:] for r in self.rows(
            f"SELECT caller, reason, call_id FROM missed_call WHERE caller IN ({','.join('?' * len(callers))})",
            callers)}

    def agent_log(self, operator_no: str, since: float = 0.0) -> list[tuple]:
        """[(at epoch s, event, to_status, to_state, call_uuid)] of the demo agent, from the ACD's state log."""
        rows = self.rows("SELECT l.at, l.event, l.to_status, l.to_state, l.call_uuid FROM agent_state_log l "
                         "JOIN agent a ON l.agent_id = a.id JOIN user u ON a.user_id = u.id "
                         "WHERE u.operator_no = ? ORDER BY l.id", (operator_no,))
        stamped = [(_epoch(at), *rest) for at, *rest in rows]
        return [row for row in stamped if row[0] >= since]

    def tickets(self, callers: list[str]) -> dict[str, int]:
        return dict(self.rows("SELECT citizen_phone, COUNT(*) FROM ticket WHERE citizen_phone IN "
                              f"({','.join('?' * len(callers))}) GROUP BY citizen_phone", callers))


@pytest.fixture
def rig(tmp_path):
    _needs()
    rig = Rig(tmp_path)
    try:
        rig.switch.start()
        rig.start_app()
        rig.start_cues()
        yield rig
    finally:
        rig.close()


def _wait(predicate, timeout: float, what: str) -> None:
    poll_until(predicate, timeout, what, every=0.25)


def _epoch(stamp: str) -> float:
    """A naive UTC timestamp as the database stores it, in seconds since the epoch."""
    import datetime as dt

    return dt.datetime.fromisoformat(str(stamp)).replace(tzinfo=dt.timezone.utc).timestamp()


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _served_new_call(rig: Rig, number: str) -> None:
    """A new caller files a complaint from start to end: the app serves calls again."""
    sipp = rig.call([number], 1, f"after-{number}")
    sipp.wait(150)
    _wait(lambda: rig.tickets([number]).get(number) == 1, 60, f"the ticket of the new caller {number}")


def _assert_cut_off_listed(rig: Rig, callers: list[str]) -> tuple[int, int, dict]:
    """Every record of ``callers`` finalised; every caller without a ticket on the missed-call list; nobody
    with two tickets. Returns (records, listed, tickets)."""
    records = rig.records(callers)
    assert sorted(records) == sorted(callers), "a caller has no call record"
    still_open = [c for c, rows in records.items() for r in rows if not r[1]]
    assert still_open == [], f"call records left open: {still_open}"
    tickets = rig.tickets(callers)
    assert all(n == 1 for n in tickets.values()), f"a ticket doubled: {tickets}"
    missed = rig.missed(callers)
    unserved = [c for c in callers if c not in tickets]
    assert [c for c in unserved if c not in missed] == [], "a caller cut off is on no list"
    for caller in unserved:
        reason, call_id = missed[caller]
        assert reason == "cut_off" and call_id is not None, (caller, missed[caller])
    return sum(len(r) for r in records.values()), len([c for c in unserved if c in missed]), tickets


def test_switch_killed_with_callers_in_the_menu_and_recording(rig):
    """Should, after FreeSWITCH is killed (-9) with callers in the menu and some recording their complaint and
    is started again, reconnect, close every call record as cut off, list every caller cut off (the ones
    recording with their recording filed "ok" with the audio that reached the disk: the hotline records
    unbuffered), lose and double no ticket, and serve a new call."""
    callers = [f"1397{9100000 + i:07d}" for i in range(SWITCH_CALLERS)]
    load_before = _loadavg()
    sipp = rig.call(callers, 2, "switch-killed")
    # The first callers reach the recording ~25 s after their call; the later ones are still in the menu.
    _wait(lambda: len(rig.cues.recording) >= 3, 150, "three callers recording their complaint")
    time.sleep(1.0)  # a second more of recording
    recording = list(rig.cues.recording)
    rig.switch.kill()
    sipp.kill()  # the callers' line is gone with the switch
    sipp.wait(10)
    answered = [c for c, rows in rig.records(callers).items() if rows]
    assert rig.open_records(callers) > 0  # no hang-up event reached the app
    back = rig.switch.start()
    rig.cues.stop()  # its event socket died with the switch
    rig.start_cues()
    _wait(lambda: rig.open_records(callers) == 0, 120, "every call record closed after the switch came back")
    took = time.monotonic() - back
    records, listed, tickets = _assert_cut_off_listed(rig, answered)
    # What reached the disk of the complaints being recorded: the dialplan sets enable_file_write_buffering=false
    # on hotline calls, so `record` writes every frame as it comes (FreeSWITCH's default holds ~64 KB, about
    # 4 s, and a kill left only the 44-byte header). The callers talk 4 s and the kill comes a second after the
    # third one started, so each caller cut off while recording has audio on disk, filed "ok" with the call
    # and linked to the caller's missed-call entry.
    on_disk = {}
    for caller in recording:
        if caller in tickets:
            continue
        rows = rig.rows("SELECT r.status, r.duration_ms, r.size FROM recording r JOIN call_record c "
                        "ON r.call_id = c.id JOIN missed_call m ON m.call_id = c.id "
                        "WHERE c.caller = ? AND r.kind = 'ivr'", (caller,))
        assert len(rows) == 1 and rows[0][0] == "ok" and rows[0][1] > 0 and rows[0][2] > 44, (caller, rows)
        on_disk[caller] = rows[0][1]
    audio = rig.rows("SELECT COUNT(*), SUM(status = 'ok'), SUM(duration_ms) FROM recording WHERE caller IN "
                     f"({','.join('?' * len(answered))})", answered)[0]
    assert rig.rows("SELECT COUNT(*) FROM recording WHERE status = 'recording'")[0][0] == 0
    _served_new_call(rig, "13979199999")
    print(f"\nswitch killed: {len(answered)} callers up ({len(recording)} recording), {records} records finalised, "
          f"{listed} listed, {len(tickets)} tickets, audio (ms) filed for those recording {on_disk}, "
          f"recordings indexed (count, ok, ms) {audio}, closed {took:.1f} s after the switch "
          f"answered again; load {load_before} -> {_loadavg()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def test_app_killed_with_callers_in_the_menu(rig):
    """Should, after the app is killed (-9) with callers in the IVR (the welcome and the first menus; the
    switch hangs them up, as its dialplan says) and started again, close their records as cut off from what the switch knows and list
    every one of them for a call-back; and serve a new call."""
    callers = [f"1397{9200000 + i:07d}" for i in range(APP_CALLERS)]
    load_before = _loadavg()
    sipp = rig.call(callers, 2, "app-killed")
    _wait(lambda: len(rig.records(callers)) == len(callers), 120, "every caller in the IVR")
    time.sleep(2.0)
    rig.kill_app()
    sipp.wait(60)  # the switch hangs them all up
    assert rig.open_records(callers) == len(callers)
    restarted = time.monotonic()
    rig.start_app()
    _wait(lambda: rig.open_records(callers) == 0, 120, "every call record closed after the app's restart")
    took = time.monotonic() - restarted
    records, listed, tickets = _assert_cut_off_listed(rig, callers)
    assert listed == len(callers) and not tickets
    _served_new_call(rig, "13979299999")
    print(f"\napp killed: {len(callers)} callers in the IVR, {records} records finalised, {listed} listed, "
          f"closed {took:.1f} s after the restart began; load {load_before} -> {_loadavg()}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def test_switch_killed_with_one_agent_talking_and_one_idle(rig):
    """Should, after FreeSWITCH is killed (-9) with one agent talking to a queue caller and another idle and is
    started again (the agents' phones register again), show the talking agent off the call (after-call work,
    then idle) and the idle one idle and available, and offer a new queued caller to an agent."""
    from tests.integration.product.app_process import Browser
    from tests.live.sipphone import AgentPhone

    base = f"http://127.0.0.1:{rig.http}"
    phones = {op: AgentPhone(shutil.which("sipp"), rig.folder, int(FS_PORTS["internal_sip_port"]), ext,
                             "agent-test-pw", calls=5, timeout_s=900, scenario="answer_rtp.xml")
              for op, ext in AGENTS.items()}
    try:
        for operator_no, phone in phones.items():
            phone.register()
            browser = Browser()
            browser.login(base, operator_no, "demo1234")
            status, page = browser.request(f"{base}/desk/")
            assert status == 200, page[:300]
            csrf = next(g for g in re.search(r'name="csrf-token" content="([^"]+)"|name="csrf_token" value="([^"]+)"',
                                             page).groups() if g)
            status, answer = browser.request(f"{base}/desk/action", {"action": "ready", "desk": "", "csrf_token": csrf})
            assert status == 200 and json.loads(answer)["ok"], answer
        _wait(lambda: all(rig.agent_log(op) and rig.agent_log(op)[-1][2:4] == ("available", "idle") for op in AGENTS),
              30, "both agents ready")
        sipp = rig.call(["13979300001"], 1, "queue-1", QUEUE_SCENARIO)
        _wait(lambda: any(r[1] == "answer" for op in AGENTS for r in rig.agent_log(op)), 120,
              "an agent answering the queue caller")
        talking = next(op for op in AGENTS if any(r[1] == "answer" for r in rig.agent_log(op)))
        idle = next(op for op in AGENTS if op != talking)
        time.sleep(2.0)  # talking
        assert rig.agent_log(talking)[-1][3] == "in_call"
        killed = time.time()
        rig.switch.kill()
        sipp.kill()
        sipp.wait(10)
        rig.switch.start()
        back_wall = time.time()
        rig.cues.stop()
        rig.start_cues()
        for phone in phones.values():
            phone.register()
        _wait(lambda: any(r[3] != "in_call" for r in rig.agent_log(talking, killed)), 120,
              "the talking agent off the call")
        off_call = next(r for r in rig.agent_log(talking, killed) if r[3] != "in_call")
        assert off_call[1] == "call_end" and off_call[2:4] == ("after_call_work", "wrap_up"), off_call
        idle_state = rig.agent_log(idle)[-1][2:4]
        assert idle_state == ("available", "idle"), rig.agent_log(idle)[-3:]
        registered_at = time.time()
        sipp = rig.call(["13979300002"], 1, "queue-2", QUEUE_SCENARIO)
        _wait(lambda: any(r[1] in ("reserve", "ring") for op in AGENTS for r in rig.agent_log(op, registered_at)),
              120, "the new queued caller offered to an agent")
        offered = [(op, r[1]) for op in AGENTS for r in rig.agent_log(op, registered_at) if r[1] in ("reserve", "ring")]
        # To the idle one (its phone registered again): the other is in its 15 s of after-call work, and the
        # queue (longest idle) would choose the idle one even after that.
        assert offered[0][0] == idle, offered
        sipp.kill()
        sipp.wait(10)
        print(f"\nswitch killed with agent {talking} talking, {idle} idle: {talking} off the call "
              f"{off_call[0] - back_wall:+.1f} s after the switch answered again ({off_call[1]} -> {off_call[2]}/"
              f"{off_call[3]}, {off_call[0] - killed:.1f} s after the kill); {idle} {'/'.join(idle_state)}; new caller offered "
              f"{offered}; load {_loadavg()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    finally:
        for phone in phones.values():
            phone.close()
