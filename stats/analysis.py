"""The road to the analysis process (stats.analysis_process) from the call process and the web workers: one
JSON line asked over a Unix socket (gevent's, patched or not), one JSON line answered, with a timeout on every
step, so a process that is down or slow costs the asker at most that timeout and never holds up the hub. Importing this module (or what
it imports) never loads jieba or scikit-learn.

Also the analysis process's command line and environment (``command``) for the product to start and keep
running (core.processes.Supervised), and the hotspot job as the product's scheduler runs it: a request to the
analysis process, the new warnings then handed to the duty leader's alarm here (``RemoteHotspotJob``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import gevent
from gevent import socket

log = logging.getLogger(__name__)

SOCKET_NAME = "analysis.sock"
SUGGEST_TIMEOUT = 1.5   # the dispatch form waits at most this long for its suggestions
HOTSPOT_TIMEOUT = 900.0  # a scan after a long backlog indexes 2,000 tickets a batch: minutes at most
READY_WAIT = 30.0       # a scheduled job waits this long for a process that is (re)starting
MAX_REPLY = 1 << 20


class AnalysisUnavailable(RuntimeError):
    """The analysis process did not answer (not running, starting, busy past the timeout, or failed)."""


def socket_path(config) -> Path:
    """Where the analysis process listens: HOTLINE_ANALYSIS_SOCKET, else ``var/run/analysis.sock``, or (a
    var directory too deep for a socket's 107 bytes) a name in the temporary directory made from it."""
    named = str(config.extra.get("HOTLINE_ANALYSIS_SOCKET", "") or "").strip()
    if named:
        return Path(named)
    path = Path(config.var_dir).resolve() / "run" / SOCKET_NAME
    if len(os.fsencode(str(path))) <= 100:
        return path
    digest = hashlib.sha256(os.fsencode(str(path))).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"hotline-analysis-{digest}.sock"


def child_env(config) -> dict[str, str]:
    """The environment a child process of the product reads its configuration from (core.config)."""
    return {**os.environ, "HOTLINE_DATABASE_URL": config.database_url, "HOTLINE_VAR_DIR": str(config.var_dir),
            "HOTLINE_MODE": config.mode, "HOTLINE_SECRET_KEY": config.secret_key,
            **{k: str(v) for k, v in config.extra.items() if k.startswith("HOTLINE_HOTSPOT_")}}


def command(config, python: str = sys.executable) -> tuple[list[str], dict[str, str]]:
    """The analysis process's command line and environment (the project root on PYTHONPATH: posix_spawn has
    no working directory of its own)."""
    from core.config import PROJECT_ROOT

    env = child_env(config)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    args = [python, "-m", "stats.analysis_process", "--socket", str(socket_path(config)), "--parent", str(os.getpid())]
    if hasattr(os, "nice"):
        args = ["nice", "-n", "5", *args]  # behind the calls for the CPU, ahead of the nightly training
    return args, env


@dataclass
class AnalysisClient:
    """Asks the analysis process listening on ``path``; every request is a connection of its own."""

    path: Path
    timeout: float = SUGGEST_TIMEOUT

    def request(self, op: str, *, timeout: float | None = None, ready_wait: float = 0.0, **args) -> dict:
        """Send ``{"op": op, **args}`` and return the answer. Raises AnalysisUnavailable when nothing answers
        within ``timeout`` seconds (retrying the connection for ``ready_wait`` seconds first: a process
        starting or restarting) or the answer says it failed."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + ready_wait
        while True:
            try:
                return self._once(op, timeout, args)
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                if time.monotonic() >= deadline:
                    raise AnalysisUnavailable(f"analysis process not running ({exc.__class__.__name__})") from None
            gevent.sleep(0.2)

    def _once(self, op: str, timeout: float, args: dict) -> dict:
        line = json.dumps({"op": op, **args}, ensure_ascii=False).encode("utf-8") + b"\n"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            started = time.monotonic()
            try:
                sock.connect(str(self.path))
                sock.sendall(line)
                sock.shutdown(socket.SHUT_WR)
                reply = bytearray()
                while not reply.endswith(b"\n"):
                    sock.settimeout(max(0.001, timeout - (time.monotonic() - started)))
                    piece = sock.recv(65536)
                    if not piece:
                        break
                    reply += piece
                    if len(reply) > MAX_REPLY:
                        raise AnalysisUnavailable("analysis process: answer too long")
            except socket.timeout:
                raise AnalysisUnavailable(f"analysis process: no answer to {op} within {timeout:g} s") from None
        try:
            answer = json.loads(bytes(reply).decode("utf-8"))
        except ValueError:
            raise AnalysisUnavailable(f"analysis process: no answer to {op} (connection closed)") from None
        if not isinstance(answer, dict) or not answer.get("ok"):
            raise AnalysisUnavailable(f"analysis process: {op} failed: {answer.get('error') if isinstance(answer, dict) else answer}")
        return answer

    def suggest(self, ticket) -> tuple[list[tuple[int, float]], int | None]:
        """The model's departments for ``ticket`` (id, probability), most likely first, and the training run
        they come from; [] when there is no model (cold or not trained yet). AnalysisUnavailable when the
        process does not answer in time."""
        answer = self.request("suggest", title=ticket.title or "", content=ticket.content or "",
                              category=ticket.category_id, region=ticket.region_id)
        return [(int(d), float(p)) for d, p in answer.get("ranked", [])], answer.get("run_id")

    def ping(self, timeout: float | None = None) -> dict:
        return self.request("ping", timeout=timeout)


@dataclass
class RemoteHotspotJob:
    """The hotspot job (stats.jobs.HotspotJob) run by the analysis process: there the index and the scan,
    here the new warnings handed to ``alarm`` (the product's one alarm path lives in this process)."""

    client: AnalysisClient
    settings: object = None
    alarm: Optional[Callable[..., object]] = None

    def run(self):
        from stats import hotspots
        from stats.models import HotspotWarning

        from core.db import database

        answer = self.client.request("hotspots", timeout=HOTSPOT_TIMEOUT, ready_wait=READY_WAIT)
        with database.connection_context():  # only now: no pooled connection held while the scan runs there
            raised = list(HotspotWarning.select().where(HotspotWarning.id.in_(answer.get("raised") or [0]))
                          .order_by(HotspotWarning.id))
        settings = self.settings or hotspots.HotspotSettings()
        for warning in raised:
            if self.alarm is not None:
                try:
                    self.alarm("hotspot", hotspots.alarm_text(warning, settings),
                               subject=hotspots.alarm_subject(warning))
                except Exception:  # noqa: BLE001 - the warning is on the page either way
                    log.exception("hotspot warning %s: could not notify", warning.id)
        return hotspots.ScanResult([], raised)


def retrain_request(client: AnalysisClient, timeout: float) -> Callable[[], int]:
    """The nightly retraining as the product's scheduler runs it: the analysis process starts the training
    child (``python -m stats.suggestions train``) and answers with its exit status."""

    def run() -> int:
        try:
            return int(client.request("train", timeout=timeout, ready_wait=READY_WAIT).get("status", -1))
        except AnalysisUnavailable as exc:
            log.error("dispatch suggestions: no retraining: %s", exc)
            return -1
    run.__name__ = "retrain"
    return run
