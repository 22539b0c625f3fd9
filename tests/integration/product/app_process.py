"""The app as separate processes (run.py, python -m webui.worker) on a PostgreSQL schema of their own, for
the tests and benchmark of the active/standby pair and the web workers: what runs in production, started,
watched through its log and killed like it would be.

The test process keeps the fake FreeSWITCH (gevent, not monkey-patched): every wait here sleeps in gevent so
the fake goes on serving meanwhile.
"""
from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

import gevent
from gevent import subprocess  # gevent's child watcher reaps children: its Popen gets their exit codes

from core.db import in_schema
from core.leader import LOCK_CLASS
from tests.ports import free_port  # noqa: F401 - the product tests and bench/ take it from here

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


class PgSchema:
    """A schema of its own on the test server (``pair_<label>_<pid>``), dropped by ``drop``; ``url`` points
    the app at it (search_path), ``admin`` runs statements (pg_terminate_backend, NOTIFY...)."""

    def __init__(self, base_url: str, label: str):
        import psycopg2

        self.base_url = base_url
        self.name = f"pair_{label}_{os.getpid()}"
        self.admin = psycopg2.connect(base_url, connect_timeout=3)
        self.admin.autocommit = True
        self.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')
        self.execute(f'CREATE SCHEMA "{self.name}"')
        self.url = in_schema(base_url, self.name)

    def execute(self, sql: str, params=()):
        with self.admin.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None

    def lock_backends(self) -> list[tuple[int, str]]:
        """(pid, application_name) of the connections holding this schema's active lock (core.leader): the
        lock's key names the schema, so pairs of other test processes on the same server are left out."""
        return [(pid, name) for pid, name in self.execute(
            "SELECT a.pid, a.application_name FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid"
            " WHERE a.application_name LIKE 'hotline active lock%%' AND a.datname = current_database()"
            " AND l.locktype = 'advisory' AND l.granted AND l.classid = %s"
            " AND l.objid = (hashtext(%s) & 2147483647)::oid", (LOCK_CLASS, self.name))]

    def drop(self) -> None:
        try:
            self.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')
        finally:
            self.admin.close()


def reachable_pg(url: str | None = None) -> str | None:
    url = url or os.environ.get("HOTLINE_TEST_PG", DEFAULT_PG)
    try:
        import psycopg2

        psycopg2.connect(url, connect_timeout=2).close()
    except Exception:  # noqa: BLE001 - not reachable here
        return None
    return url


class AppProcess:
    """One app process; its log (stdout and stderr together) kept in ``lines`` with the moment each came."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.lines: list[tuple[float, str]] = []
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        for key in ("HOTLINE_TEST_PG", "HOTLINE_TEST_ESL"):
            full_env.pop(key, None)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._reader = gevent.spawn(self._read)

    def _read(self) -> None:
        from gevent.socket import wait_read

        buffer = b""
        fd = self.proc.stdout.fileno()
        while True:
            try:
                wait_read(fd, timeout=0.5)
            except Exception:  # noqa: BLE001 - timeout: look again
                if self.proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                break
            self._log.write(chunk)
            self._log.flush()
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            now = time.monotonic()
            self.lines.extend((now, line.decode(errors="replace")) for line in complete)

    def wait_log(self, pattern: str, timeout: float = 60.0, after: float = 0.0) -> float:
        """The moment (monotonic) the first log line matching ``pattern`` came after ``after``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, line in list(self.lines):
                if at >= after and regex.search(line):
                    return at
            if self.proc.poll() is not None and self._reader.dead:
                break
            gevent.sleep(0.02)
        raise AssertionError(f"{self.name}: no log line matching {pattern!r} within {timeout} s "
                             f"(exit code {self.proc.poll()}); last lines:\n" + self.tail())

    def tail(self, count: int = 40) -> str:
        return "\n".join(line for _, line in self.lines[-count:])

    def exited(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                return code
            gevent.sleep(0.02)
        return None

    def kill(self) -> float:
        """kill -9; the moment it was sent."""
        at = time.monotonic()
        self.proc.send_signal(signal.SIGKILL)
        return at

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.exited(timeout) is None:
                self.proc.kill()
                self.exited(5)
        self._reader.join(timeout=2)
        self._log.close()


class Browser:
    """A cookie-keeping client whose blocking reads run in gevent's thread pool (the call process is a
    greenlet of this same process and must go on serving)."""

    def __init__(self):
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, url: str, data: dict | None = None, headers: dict | None = None) -> tuple[int, str]:
        status, body, _seconds = self.timed_request(url, data, headers)
        return status, body

    def timed_request(self, url: str, data: dict | None = None,
                      headers: dict | None = None) -> tuple[int, str, float]:
        """(status, body, seconds the server took to answer), timed in the thread: a gevent hub busy
        elsewhere in this process (the fake switch) does not count. Status 0: no answer within 30 s."""
        def fetch():
            body = urlencode(data).encode() if data is not None else None
            began = time.monotonic()
            try:
                with self.opener.open(urllib.request.Request(url, data=body, headers=headers or {}),
                                      timeout=30) as response:
                    return response.status, response.read().decode(), time.monotonic() - began
            except urllib.error.HTTPError as error:
                return error.code, error.read().decode(), time.monotonic() - began
            except OSError as error:  # refused, reset, timed out: no answer
                return 0, repr(error), time.monotonic() - began
        return gevent.get_hub().threadpool.apply(fetch)

    def login(self, base: str, operator_no: str, password: str) -> None:
        _status, page = self.request(f"{base}/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        status, _ = self.request(f"{base}/login", {"operator_no": operator_no, "password": password,
                                                   "csrf_token": token})
        assert status == 200

    def stream(self, url: str, lines: list, stop: threading.Event) -> None:
        """Read a server-sent event stream line by line into ``lines`` (in a thread of its own)."""
        def read():
            try:
                with self.opener.open(urllib.request.Request(url, headers={"Accept": "text/event-stream"}),
                                      timeout=60) as response:
                    for raw in response:
                        lines.append(raw.decode().rstrip("\n"))
                        if stop.is_set():
                            return
            except Exception as exc:  # noqa: BLE001 - reported through the lines
                lines.append(f"!error {exc!r}")
        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread


def app_env(schema_url: str, var_dir: Path, sounds_dir: Path, *, esl: str, outbound_port: int, http_port: int,
            node: str, **extra: str) -> dict[str, str]:
    """The environment of one app process of the pair."""
    return {
        "HOTLINE_DATABASE_URL": schema_url, "HOTLINE_ESL": esl, "HOTLINE_OUTBOUND": f"127.0.0.1:{outbound_port}",
        "HOTLINE_HTTP": f"127.0.0.1:{http_port}", "HOTLINE_VAR_DIR": str(var_dir),
        "HOTLINE_SOUNDS_DIR": str(sounds_dir), "HOTLINE_MODE": "test", "HOTLINE_SECRET_KEY": "p" * 40,
        "HOTLINE_RECORD_KEY": "r" * 40, "HOTLINE_NODE": node, "HOTLINE_CONFIG": str(var_dir / "none.toml"),
        **extra,
    }


def ticket_numbers(schema: "PgSchema", callers) -> dict[str, str]:
    """{citizen phone: acceptance number} of the tickets of ``callers`` in ``schema``."""
    rows = schema.execute(f'SELECT citizen_phone, number FROM "{schema.name}".ticket WHERE citizen_phone = ANY(%s)',
                          (list(callers),))
    return dict(rows or [])


def wait_until_serving(app: "AppProcess", fs, start_timeout: float) -> None:
    """The app's outbound socket server is up and its ESL connection logged in to the fake switch ``fs``."""
    app.wait_log("outbound socket server on", start_timeout)
    fs.wait_for(lambda: any(s.authed and not s.closed for s in fs.inbound_sessions), 30, "the app's ESL")
