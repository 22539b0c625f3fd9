"""Ports for tests: one nothing answers on, and free ones for servers that bind them themselves.

A port found free (bound to 0, closed) is free only at that moment: a server started on it later may find it
taken by another process (a test running beside, under -n 2). Where the test can keep the socket it does
(``refusing_port``); a server that binds its own port is started through ``retry_in_use``, which starts it again
on other free ports when its start failed with "address in use"."""
from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Callable, Iterator
from typing import TypeVar

# EADDRINUSE's text: how a server's log (Dovecot, Kannel, a child Python process) says its bind failed.
ADDRESS_IN_USE = "Address already in use"

Started = TypeVar("Started")


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections while the block runs: bound, never listening, held. A port
    bound and closed at once is free again: another process may take it and answer before the test connects."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 free a moment ago, for a server that binds it itself: start that server through
    ``retry_in_use`` (it may have been taken meanwhile)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def address_in_use(error: BaseException) -> bool:
    """Whether ``error`` says a bind found its address in use: its errno, or the text of a server's log in it."""
    return getattr(error, "errno", None) == errno.EADDRINUSE or ADDRESS_IN_USE in str(error)


def retry_in_use(start: Callable[[], Started], attempts: int = 5) -> Started:
    """``start()``, called again (``attempts`` in all) while it failed with an address in use (address_in_use):
    ``start`` takes new ports from free_port on each call and cleans up after a failed start itself; any other
    failure, and the last one, is raised."""
    for attempt in range(1, attempts + 1):
        try:
            return start()
        except Exception as error:  # noqa: BLE001 - only an address in use is tried again
            if attempt == attempts or not address_in_use(error):
                raise
    raise ValueError(f"attempts: at least 1, not {attempts}")
