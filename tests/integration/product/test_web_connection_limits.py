"""The web server's connection cap, idle and request-head timeouts, and the descriptors it leaves to calls
(webui.server), on the whole product with real sockets on 127.0.0.1.

The idle clients run in a child process: their sockets must not count against this process's descriptors.
"""
from __future__ import annotations

import json
import resource
import sys
import urllib.error
import urllib.request

import gevent
import gevent.event
import pytest
from gevent import subprocess

from core import fds
from tests.fakeswitch import WaitFor

# Opens `idle` connections that send nothing and `slow` ones that send half a request head, prints
# "open", then waits (at most 60 s) until the server has closed each of them and prints "closed <n>".
IDLE_CLIENTS = r"""
import selectors, socket, sys, time
host, port, idle, slow = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
socks = []
for i in range(idle + slow):
    s = socket.create_connection((host, port), timeout=10)
    if i >= idle:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    s.setblocking(False)
    socks.append(s)
print("open", flush=True)
sel = selectors.DefaultSelector()
for s in socks:
    sel.register(s, selectors.EVENT_READ)
closed, deadline = 0, time.monotonic() + 60
while closed < len(socks) and time.monotonic() < deadline:
    for key, _ in sel.select(1.0):
        try:
            data = key.fileobj.recv(4096)
        except OSError:
            data = b""
        if not data:
            sel.unregister(key.fileobj)
            key.fileobj.close()
            closed += 1
print("closed", closed, flush=True)
"""


def _idle_clients(address, idle: int, slow: int):
    """Start the child that holds the connections; returns it once every connection is open."""
    child = subprocess.Popen([sys.executable, "-c", IDLE_CLIENTS, address[0], str(address[1]), str(idle),
                              str(slow)], stdout=subprocess.PIPE, text=True)
    with gevent.Timeout(30, TimeoutError("the idle clients did not connect")):
        assert child.stdout.readline().strip() == "open"
    return child


def _closed_count(child) -> int:
    with gevent.Timeout(90, TimeoutError("the idle clients did not finish")):
        line = child.stdout.readline().split()
        child.wait()
    return int(line[1])


def _get(url: str) -> tuple[int, dict]:
    """GET in gevent's thread pool, so the product's web server (a greenlet here) keeps serving."""
    def fetch():
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, json.loads(response.read())
    return gevent.get_hub().threadpool.apply(fetch)


def _web_address(product):
    return product.config.http[0], product.parts["web"].server_port


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_idle_connections_beyond_the_cap_starve_neither_calls_nor_healthz(make_product):
    """Should, with the process 60 descriptors from its limit, 20 web connections allowed and 60 idle or
    half-sent ones held open by a client, still answer a new call's socket with connect and play the
    welcome, answer /healthz (with the descriptor and connection figures), and close every idle connection."""
    product = make_product(http_max_connections=20, http_idle_timeout=1, http_header_timeout=1,
                           http_fd_reserve=10)
    web = product.parts["web"]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    child = None
    try:
        # Started before the limit drops: starting a process needs descriptors of its own here.
        child = subprocess.Popen([sys.executable, "-c", IDLE_CLIENTS, *map(str, _web_address(product)), "45",
                                  "15"], stdout=subprocess.PIPE, text=True)
        base = fds.fds_in_use()
        resource.setrlimit(resource.RLIMIT_NOFILE, (base + 60, hard))
        with gevent.Timeout(30, TimeoutError("the idle clients did not connect")):
            assert child.stdout.readline().strip() == "open"
        # (None: not even a descriptor left to list them)
        product.fs.wait_for(lambda: (fds.fds_in_use() or base + 60) >= base + 20, 10.0,
                            "the web server to fill up")

        call = product.fs.place_call(product.parts["outbound"].address, caller="13912345678",
                                     destination="12345", script=[WaitFor("playback", "welcome")])
        call.wait_connected(timeout=10)
        call.wait_for_app("playback", timeout=10)
        call.hangup()

        status, body = _get("http://%s:%s/healthz" % _web_address(product))
        assert status == 200
        assert body["http"]["max_connections"] == 20 and 0 < body["http"]["connections"] <= 20
        assert body["fds"]["limit"] == fds.fd_limit() and 0 < body["fds"]["in_use"] <= body["fds"]["limit"]
        assert body["fds"]["reserve"] == 10

        assert _closed_count(child) == 60
        assert web.connections <= 20 and web.evicted > 0
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        if child is not None and child.poll() is None:
            child.kill()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_idle_and_half_sent_connections_are_closed_after_their_timeouts(make_product):
    """Should close connections that send nothing (idle timeout) and those whose request head never ends
    (header timeout) by themselves, below the cap (nothing evicted or refused), and still serve requests."""
    product = make_product(http_max_connections=50, http_idle_timeout=1, http_header_timeout=1)
    web = product.parts["web"]
    base = fds.fds_in_use()
    child = _idle_clients(_web_address(product), idle=10, slow=5)
    # (the child's pipe is one descriptor more)
    product.fs.wait_for(lambda: fds.fds_in_use() >= base + 16, 10.0, "the connections to be accepted")
    assert _get("http://%s:%s/healthz" % _web_address(product))[0] == 200
    assert _closed_count(child) == 15
    assert web.evicted == 0 and web.refused == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_connections_over_the_cap_are_refused_when_none_is_idle(make_product):
    """Should answer 503 at once, and close, a connection over the cap when every open one is busy in the
    application (none is waiting for a request that could make room)."""
    product = make_product(http_max_connections=2)
    web = product.parts["web"]
    release = gevent.event.Event()
    entered = []

    def stuck(environ, start_response):
        entered.append(1)
        release.wait(30)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    web.application = stuck
    address = "http://%s:%s/" % _web_address(product)

    def fetch():
        try:
            with urllib.request.urlopen(address, timeout=20) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
    pool = gevent.get_hub().threadpool
    busy = [pool.spawn(fetch) for _ in range(2)]
    product.fs.wait_for(lambda: len(entered) == 2, 10.0, "two requests in the application")
    assert pool.apply(fetch) == 503 and web.refused == 1
    release.set()
    assert [result.get(timeout=20) for result in busy] == [200, 200]
