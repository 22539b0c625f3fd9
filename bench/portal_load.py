"""bench/portal.py's load side: the clients (closed loop or paced by a think time), the app timed from inside, the
kept databases (``--keep``) and the web workers it can serve through (``--web-workers``).

Times inside the app travel back on each answer (the X-Bench-App-Ms header, added by ``timed_app``), so one
process and several workers are measured the same way. A worker is ``python bench/portal.py --serve-worker``:
hotline.worker.build (what ``run.py --web-worker`` runs: it waits for the schema, opens the bus, builds the app)
served by webui.server like the product's worker, wrapped in ``timed_app`` and with the picture alphabet set to
one letter so the bench knows the answer; its configuration comes as JSON in BENCH_PORTAL_CONFIG.
"""
from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import gevent

from bench.portal_trace import tracer

CONFIG_ENV = "BENCH_PORTAL_CONFIG"
NO_FREEZE = "BENCH_PORTAL_NO_FREEZE"  # set: the workers leave their start's objects to the collector (before/after)
APP_MS = "X-Bench-App-Ms"


class Browser:
    """One client: a keep-alive connection and its cookies, like one browser tab."""

    def __init__(self, port: int, timings: dict, app_timings: dict, address: str = ""):
        self.address = address  # sent as X-Forwarded-For: the app trusts one proxy (HOTLINE_TRUST_PROXY=1)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a form's head and body at once
        self.cookies: dict[str, str] = {}
        self.timings = timings
        self.app_timings = app_timings
        self.token = ""  # the session's CSRF token, read from the first form

    def request(self, kind: str, method: str, path: str, form: dict | None = None, expect=(200,), also: str = ""):
        """One call, timed under ``kind`` (and ``also``, a finer name: a row's breakdown)."""
        headers = {"X-Bench-Kind": kind}
        if self.address:
            headers["X-Forwarded-For"] = self.address
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        started = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        inside = response.getheader(APP_MS)
        names = (kind, also) if also else (kind,)
        if inside is not None:  # counted whatever the status, as the app spent it
            for name in names:
                self.app_timings.setdefault(name, []).append(float(inside))
        if response.status not in expect:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        for name in names:
            self.timings.setdefault(name, []).append(elapsed)
        return data

    def csrf(self, path: str) -> str:
        if not self.token:
            page = self.request("(form)", "GET", path).decode()
            self.token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        return self.token


# What makes this run's submissions its own: the product refuses the same text within 10 minutes (a duplicate)
# and counts an address's and a phone number's submissions; the kept databases hold the earlier runs' ones (the
# same texts and numbers from 127.0.0.1: 193 of 500 refused as duplicates in a run 7 minutes after another).
RUN = int(time.time())
ROWS_RUN = 0


def client_address(n: int) -> str:
    """Client ``n``'s address, from the benchmarking range 198.18.0.0/15 (RFC 2544): each client of each row of
    each run its own (repeating only after 131,072 clients, past the hour an address's submissions count)."""
    n = (RUN * 64 + n) % (1 << 17)
    return f"198.{18 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"


def run_row(ports: list[int], clients: int, total: int, step, think_ms: float = 0.0, seed: int = 11):
    """``total`` calls of ``step(browser, i)`` spread over ``clients`` concurrent browsers, browser k on
    ``ports[k % len(ports)]`` (round robin over the web workers). ``think_ms`` 0: a closed loop, each browser
    sends its next call as soon as the last is answered (the app's saturation throughput); otherwise each waits
    a random think time (exponential, mean ``think_ms``) after each call, as visitors read a page. Returns
    (client timings by kind, in-app timings by kind, the row's seconds, errors)."""
    timings: dict[str, list[float]] = {}
    app_timings: dict[str, list[float]] = {}
    global ROWS_RUN
    ROWS_RUN += 1
    browsers = [Browser(ports[k % len(ports)], timings, app_timings, client_address(ROWS_RUN * clients + k))
                for k in range(clients)]
    counter = iter(range(total))
    errors: list[str] = []
    pause = random.Random(seed)

    def work(browser):
        if think_ms:  # visitors arrive spread out, not all in the first millisecond
            gevent.sleep(pause.uniform(0, think_ms) / 1000)
        for i in counter:
            try:
                step(browser, i)
            except Exception as error:  # noqa: BLE001 - reported under the table, the row goes on
                errors.append(str(error)[:300])
            if think_ms:
                gevent.sleep(pause.expovariate(1000 / think_ms))

    started = time.perf_counter()
    gevent.joinall([gevent.spawn(work, b) for b in browsers])
    seconds = time.perf_counter() - started
    for browser in browsers:
        browser.conn.close()
    return timings, app_timings, seconds, errors


def chosen(rows: list, args) -> list:
    """The rows ``--rows`` names exactly (';'-separated), else those naming one of ``--only``'s words."""
    if args.rows:
        names = {name.strip() for name in args.rows.split(";") if name.strip()}
        unknown = names - {r[0] for r in rows}
        if unknown:
            raise SystemExit(f"--rows: no row named {', '.join(sorted(unknown))} (rows: "
                             f"{'; '.join(r[0] for r in rows)})")
        return [r for r in rows if r[0] in names]
    return [r for r in rows if not args.only or any(word in r[0] for word in args.only.split(","))]


def timed_app(app):
    """The WSGI app, timing each request from its arrival to its last byte and saying so in the X-Bench-App-Ms
    header. The answer goes out in one piece, as the app's own responses do (a body handed over in pieces is
    written in pieces, and the client's delayed acknowledgement then adds 40 ms that are the bench's, not the
    app's)."""
    trace = tracer()

    def wsgi(environ, start_response):
        started = time.perf_counter()
        if trace is not None:
            traced = trace.begin(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}"
                                 f"{'?' if environ.get('QUERY_STRING') else ''}{environ.get('QUERY_STRING', '')}")
        held: list = []

        def hold(status, headers, exc_info=None):
            held[:] = [status, list(headers), exc_info]
            return lambda _data: None  # the write callable: the app's responses never use it

        body = app(environ, hold)
        try:
            data = b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        status, headers, exc_info = held
        headers.append((APP_MS, f"{(time.perf_counter() - started) * 1000:.3f}"))
        if trace is not None:
            trace.end(traced)
        start_response(status, headers, exc_info)
        return [data]
    return wsgi


# ------------------------------------------------------------------------------------------ kept databases
def open_database(backend: str, args, folder: Path):
    """(database, its URL, the kept data's file or None, cleanup). With ``--keep DIR`` the seeded database is
    kept for the next run: SQLite in DIR/portal-<tickets>-<published>.sqlite3, PostgreSQL in the schema
    bench_portal_keep_<tickets>_<published>, and what the clients need (numbers, the API key) in
    DIR/portal-<backend>-<tickets>-<published>.json; when that file exists the database is reused as it is."""
    from bench.common import open_backend, open_kept_backend

    if not args.keep:
        database, cleanup = open_backend(backend, folder, args.pg, "portal")
        if backend == "sqlite":
            return database, f"sqlite:///{database.database}", None, cleanup
        schema = f"bench_portal_{os.getpid()}"
        from core.db import in_schema

        return database, in_schema(args.pg, schema), None, cleanup
    keep = Path(args.keep).resolve()
    keep.mkdir(parents=True, exist_ok=True)
    label = f"{args.tickets}-{args.published}"
    meta = keep / f"portal-{backend}-{label}.json"
    database, url = open_kept_backend(backend, keep / f"portal-{label}.sqlite3",
                                      f"bench_portal_keep_{args.tickets}_{args.published}", args.pg, meta.exists())
    return database, url, meta, lambda: None


# ------------------------------------------------------------------------------------------ web workers
def start_workers(count: int, mapping: dict) -> list[subprocess.Popen]:
    """``count`` worker processes serving ``mapping``'s database; returns them with ``.port`` set."""
    env = {**os.environ, CONFIG_ENV: json.dumps(mapping)}
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "portal.py")
    workers = []
    try:
        for _ in range(count):
            worker = subprocess.Popen([sys.executable, "-u", script, "--serve-worker"], env=env,
                                      stdout=subprocess.PIPE, text=True)
            workers.append(worker)
        for worker in workers:
            line = worker.stdout.readline()  # "port N" once it serves (it waits for the schema first)
            if not line.startswith("port "):
                raise RuntimeError(f"a web worker did not start (exit {worker.poll()}): {line!r}")
            worker.port = int(line.split()[1])
    except BaseException:
        stop_workers(workers)
        raise
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def serve_worker() -> int:
    """One web worker (``portal.py --serve-worker``): the product's worker app, timed, until SIGTERM."""
    from gevent.event import Event

    import webui.blueprints.portal as portal_bp
    from core.config import load_config
    from core.heap import freeze_startup_objects
    from hotline.worker import build
    from webui.server import HttpServer

    config = load_config(json.loads(os.environ[CONFIG_ENV]))
    app, services = build(config)
    if not os.environ.get(NO_FREEZE):
        freeze_startup_objects()  # as the product's worker (hotline.worker.main)
    portal_bp.CAPTCHA_ALPHABET = "A"  # the picture is still drawn and checked; the bench knows its answer
    server = HttpServer(("127.0.0.1", 0), timed_app(app))
    server.start()
    stopping = Event()
    gevent.signal_handler(signal.SIGTERM, stopping.set)
    print(f"port {server.server_port}", flush=True)
    stopping.wait()
    server.stop(timeout=5)
    services.bus.stop()
    if tracer() is not None:
        tracer().report()
    return 0
