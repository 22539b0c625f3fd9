"""The analysis process: keyword extraction, the hotspot index and scan, and the dispatch suggestions
(prediction here, training in its nightly child) run here, never in the call process.

Why a process of its own: jieba's dictionary and IDF table (about 220 MiB resident) and scikit-learn with the
model (about 60 MiB more) were loaded into the call process by the first hotspot scan or dispatch form and
kept for its life: its resident memory went from about 110 to 300 MiB under 100 calls (docs/performance.md),
and a second of the dictionary's loading or a model's prediction on the hub held up every call. The product
(hotline.product) starts this process with posix_spawn (core.processes.Supervised: started again when it
dies, stopped with the product); the call process's scheduler still decides when the scan and the training
run and asks here (stats.analysis.RemoteHotspotJob), the new warnings going to the duty leader's alarm
there; the dispatch form asks for its suggestions with a short timeout and shows none, saying so, when this
process is down or slow.

Why not in the web workers: with SQLite there are none (the one app process serves the web), each of N
workers would hold the 300 MiB again, and the scan must run once, not once per worker. Web workers on the
same machine ask this process over the same socket (HOTLINE_ANALYSIS_SOCKET or var/run/analysis.sock);
a worker on another machine cannot reach it and its dispatch form says that suggestions are unavailable.

    python -m stats.analysis_process --socket PATH [--parent PID]   (configuration as run.py reads it)

One JSON line per connection each way (stats.analysis): ``ping``; ``suggest`` (title, content, category,
region) -> the departments ranked with their probability and the model's run id; ``hotspots`` -> the ids of
the warnings raised; ``train`` -> the training child's exit status. A thread per connection: a suggestion is
answered while a scan or a training runs. Ends when its parent (the call process) is gone.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from core.db import database
from stats import hotspots, suggestions
from stats.jobs import HotspotJob

log = logging.getLogger(__name__)

MAX_REQUEST = 64 * 1024
READ_TIMEOUT = 10.0
PLACES_SECONDS = 60.0  # category and region parents read again at most this often
RANKED = 20


class AnalysisService:
    """What the analysis process answers, without the socket: ``handle(request) -> answer``."""

    def __init__(self, model_path: Path, settings: hotspots.HotspotSettings | None = None,
                 train: Optional[Callable[[], int]] = None):
        self.store = suggestions.SuggestionStore(model_path)
        self.settings = settings or hotspots.HotspotSettings()
        self.train = train
        self._scan_lock = threading.Lock()
        self._train_lock = threading.Lock()
        self._places: tuple[float, suggestions.Places] | None = None

    def handle(self, request: dict) -> dict:
        op = request.get("op")
        handler = {"ping": self.ping, "suggest": self.suggest, "hotspots": self.hotspots,
                   "train": self.run_training}.get(op)
        if handler is None:
            return {"ok": False, "error": f"unknown request {str(op)[:40]!r}"}
        try:
            with database.connection_context():
                return {"ok": True, **handler(request)}
        except Exception as exc:  # noqa: BLE001 - the asker gets the reason; the process goes on
            log.exception("analysis: %s failed", op)
            return {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"[:300]}

    def ping(self, _request: dict) -> dict:
        return {"pid": os.getpid()}

    def places(self) -> suggestions.Places:
        cached = self._places
        if cached is None or time.monotonic() - cached[0] > PLACES_SECONDS:
            cached = self._places = (time.monotonic(), suggestions.Places.load())
        return cached[1]

    def suggest(self, request: dict) -> dict:
        if self.store.current() is None:
            return {"ranked": [], "run_id": None}
        ranked, run_id = self.store.ranked(str(request.get("title") or ""), str(request.get("content") or ""),
                                           _int_or_none(request.get("category")), _int_or_none(request.get("region")),
                                           self.places(), limit=RANKED)
        return {"ranked": [list(pair) for pair in ranked], "run_id": run_id}

    def hotspots(self, _request: dict) -> dict:
        with self._scan_lock:
            result = HotspotJob(self.settings, alarm=None, now=_utcnow).run()
        return {"raised": [w.id for w in result.raised], "spikes": len(result.spikes)}

    def run_training(self, _request: dict) -> dict:
        if self.train is None:
            return {"status": -1}
        with self._train_lock:
            status = self.train()
        self.load_model()  # before answering: the first form after a training must not wait for the loading
        return {"status": status}

    def load_model(self) -> None:
        """Read the model file (when changed) and predict once: unpickling and scikit-learn's first call take
        longer than a form waits."""
        if self.store.current() is not None:
            self.store.ranked("", "", None, None, self.places(), limit=1)

    def warm_up(self) -> None:
        """Load the segmenter and the model before the first form asks (a second of CPU, longer than the
        form waits)."""
        from stats.keywords import idf_table, tokenizer

        started = time.monotonic()
        tokenizer()
        idf_table()
        with database.connection_context():
            self.load_model()
        log.info("analysis: segmenter and model loaded in %.1f s", time.monotonic() - started)


def _utcnow():
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _int_or_none(value) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class AnalysisServer:
    """The Unix socket (owner-only) and a thread per connection, each answered by ``service.handle``."""

    def __init__(self, path: Path, service: AnalysisService):
        self.path = Path(path)
        self.service = service
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.path.unlink()  # left by a killed process: nothing listens on it any more
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.sock.bind(str(self.path))
        finally:
            os.umask(old)
        self.sock.listen(64)
        self._closed = False

    def serve_forever(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                if self._closed:
                    return
                raise
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(READ_TIMEOUT)
                data = bytearray()
                while b"\n" not in data and len(data) <= MAX_REQUEST:
                    piece = conn.recv(65536)
                    if not piece:
                        break
                    data += piece
                try:
                    request = json.loads(bytes(data.split(b"\n", 1)[0]).decode("utf-8"))
                    if not isinstance(request, dict):
                        raise ValueError("not an object")
                except ValueError as exc:
                    answer = {"ok": False, "error": f"bad request: {exc}"[:200]}
                else:
                    answer = self.service.handle(request)
                conn.sendall(json.dumps(answer, ensure_ascii=False).encode("utf-8") + b"\n")
            except OSError as exc:  # the asker gave up (its timeout) or went away
                log.info("analysis: a connection ended early: %s", exc)

    def close(self) -> None:
        self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def _watch_parent(parent: int, server: AnalysisServer) -> None:
    """End when the call process is gone (killed -9 it cannot stop us): re-parented, or the pid gone."""
    while True:
        time.sleep(2.0)
        if os.getppid() != parent:
            log.warning("analysis: the product (pid %d) is gone; stopping", parent)
            server.close()
            os._exit(0)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stats.analysis_process")
    parser.add_argument("--socket", required=True, help="the Unix socket to listen on")
    parser.add_argument("--parent", type=int, default=0, help="end when this process is gone")
    args = parser.parse_args(argv)
    from core.config import load_config
    from core.db import bind_database
    from core.logsetup import configure_logging

    configure_logging()
    config = load_config()
    bind_database(config.database_url)
    service = AnalysisService(suggestions.model_path(config.var_dir),
                              hotspots.HotspotSettings.from_extra(config.extra),
                              train=suggestions.retrain_runner(config))
    server = AnalysisServer(Path(args.socket), service)
    signal.signal(signal.SIGTERM, lambda *_: server.close())
    signal.signal(signal.SIGINT, lambda *_: server.close())
    if args.parent:
        threading.Thread(target=_watch_parent, args=(args.parent, server), daemon=True).start()
    threading.Thread(target=service.warm_up, daemon=True).start()
    log.info("analysis process listening on %s (pid %d)", args.socket, os.getpid())
    server.serve_forever()
    log.info("analysis process stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
