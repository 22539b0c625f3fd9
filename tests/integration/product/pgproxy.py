"""A TCP proxy in front of the shared PostgreSQL server, for fault tests: what a PostgreSQL restart looks like
from the app (every open connection cut, new ones refused for a while, then accepted again) and a connection
lost right after the server committed a transaction, without restarting a server other runs share.

Plain threads and blocking sockets, so it serves both an app in another process and a product in the test
process whose psycopg2 blocks the gevent hub (the suite is not monkey-patched)."""
from __future__ import annotations

import socket
import threading
import time

_COMMIT = b"COMMIT\x00"  # the simple-query message psycopg2 sends for connection.commit()
_ROLLBACK = b"ROLLBACK\x00"


class _Pair:
    """One proxied connection: the app's socket and ours to the server."""

    def __init__(self, client: socket.socket, server: socket.socket):
        self.client, self.server = client, server
        self.wrote_marked = False  # the open transaction sent a statement the armed cut waits for
        self.commit_sent = False
        self._closed = threading.Event()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        for sock in (self.client, self.server):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class PgProxy:
    """Listens on 127.0.0.1 (a free port, kept across a refusal window) and forwards to ``target``.

    ``cut()`` closes every open connection (the app reads "server closed the connection unexpectedly");
    ``refuse()`` closes the listening socket (new connections get ECONNREFUSED, as while PostgreSQL is down)
    until ``accept()``; ``cut_after_commit(marker)`` lets the next transaction whose statements contain
    ``marker`` commit on the server and then cuts its connection before the reply reaches the app."""

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432)):
        self.target = target
        self.port = 0
        self.accepted = 0
        self.commits_cut = 0
        self._pairs: set[_Pair] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._refusing = threading.Event()
        self._stopped = threading.Event()
        self._listening = threading.Event()
        self._commit_marker: bytes | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "PgProxy":
        self._listen()
        self._thread = threading.Thread(target=self._serve, name="pgproxy", daemon=True)
        self._thread.start()
        return self

    def url(self, base_url: str) -> str:
        """``base_url`` (postgresql://user@host:port/db?...) pointed at this proxy."""
        scheme, rest = base_url.split("://", 1)
        auth, _, tail = rest.rpartition("@")
        _hostport, slash, path = tail.partition("/")
        return f"{scheme}://{auth + '@' if auth else ''}127.0.0.1:{self.port}{slash}{path}"

    # ---- faults --------------------------------------------------------------------------------------
    def cut(self) -> int:
        """Close every open connection now; how many there were."""
        with self._lock:
            pairs = list(self._pairs)
            self._pairs.clear()
        for pair in pairs:
            pair.close()
        return len(pairs)

    def refuse(self, timeout: float = 5.0) -> None:
        """Stop listening (ECONNREFUSED) until ``accept``."""
        self._refusing.set()
        deadline = time.monotonic() + timeout
        while self._listening.is_set() and time.monotonic() < deadline:
            time.sleep(0.005)

    def accept(self, timeout: float = 5.0) -> None:
        """Listen again on the same port."""
        self._refusing.clear()
        deadline = time.monotonic() + timeout
        while not self._listening.is_set() and time.monotonic() < deadline:
            time.sleep(0.005)
        if not self._listening.is_set():
            raise RuntimeError(f"the proxy could not listen on port {self.port} again")

    def restart_window(self) -> int:
        """What the app sees at the start of a PostgreSQL restart: every connection cut, new ones refused
        (until ``accept``); how many connections were cut."""
        self.refuse()
        return self.cut()

    def cut_after_commit(self, marker: bytes) -> None:
        """Arm a one-time cut: the next COMMIT of a transaction that sent ``marker`` reaches the server and
        commits; the server's answer is dropped and the connection closed."""
        self._commit_marker = marker

    def stop(self) -> None:
        self._stopped.set()
        self._refusing.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.cut()

    # ---- serving -------------------------------------------------------------------------------------
    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)
        sock.settimeout(0.05)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._listening.set()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            if self._refusing.is_set():
                if self._listener is not None:
                    self._listener.close()
                    self._listener = None
                    self._listening.clear()
                time.sleep(0.01)
                continue
            if self._listener is None:
                try:
                    self._listen()
                except OSError:
                    time.sleep(0.05)
                continue
            try:
                client, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            client.settimeout(None)
            threading.Thread(target=self._open, args=(client,), daemon=True).start()
        if self._listener is not None:
            self._listener.close()
            self._listening.clear()

    def _open(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        pair = _Pair(client, server)
        with self._lock:
            self._pairs.add(pair)
            self.accepted += 1
        threading.Thread(target=self._pump, args=(pair, client, server, True), daemon=True).start()
        self._pump(pair, server, client, False)

    def _pump(self, pair: _Pair, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if upstream:
                    self._watch_statements(pair, data)
                elif pair.commit_sent:
                    # The server answered the COMMIT: it is stored. The app never hears so.
                    self.commits_cut += 1
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._pairs.discard(pair)
            pair.close()

    def _watch_statements(self, pair: _Pair, data: bytes) -> None:
        marker = self._commit_marker
        if marker is None:
            return
        if marker in data:
            pair.wrote_marked = True
        if _ROLLBACK in data:
            pair.wrote_marked = False
        elif _COMMIT in data and pair.wrote_marked and self._commit_marker is not None:
            self._commit_marker = None
            pair.commit_sent = True
