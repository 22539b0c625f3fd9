"""A bounded wait for a condition another greenlet brings about: the tests synchronise on state, not on sleeps
(a short sleep lets a test pass or fail by the machine's load). ``poll_until`` is the same for a condition
another process brings about, looked at from plain threads (Kannel, Kamailio, a live switch); ``stream_until``
reads an event stream until the event awaited came, not for a fixed ``max_seconds``."""
from __future__ import annotations

import time

import gevent


def wait_until(predicate, timeout: float = 5.0, what: str = "condition"):
    """Yield to other greenlets until ``predicate()`` is true and return its value; AssertionError naming
    ``what`` after ``timeout`` s."""
    with gevent.Timeout(timeout, AssertionError(f"timed out waiting for {what}")):
        while True:
            value = predicate()
            if value:
                return value
            gevent.sleep(0.002)


def poll_until(predicate, timeout: float, what: str = "condition", every: float = 0.1):
    """Look at ``predicate()`` every ``every`` s (time.sleep: no hub to yield to, and each look may ask another
    process) until it is true and return its value; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stream_until(client, url: str, until, then=None, timeout: float = 10.0) -> str:
    """Read the server-sent event stream ``url`` through a Flask test client as it comes, until ``until(body)``
    holds; close it (the view's ``finally`` lets go of what it listened to) and return the body read.
    ``then()`` runs in a greenlet of its own once the stream's first lines came, when the stream listens, so
    what it sets off can neither come before the stream nor after a short ``max_seconds`` ran out on a busy
    machine. AssertionError, with the body read, when the stream ends first or after ``timeout`` s."""
    response = client.get(url, buffered=False)
    body, job = "", None
    try:
        with gevent.Timeout(timeout, False):
            for chunk in response.response:
                body += chunk.decode() if isinstance(chunk, bytes) else chunk
                if job is None and then is not None:
                    job = gevent.spawn(then)
                if until(body):
                    return body
    finally:
        response.close()
    failed = f"; then() raised {job.exception!r}" if job is not None and job.exception is not None else ""
    raise AssertionError(f"the stream {url} ended or timed out before the awaited event{failed}: {body[:3000]}")
