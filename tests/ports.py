"""Ports for tests: one nothing answers on (``refusing_port``), and, from the product's core.ports, free ones for
servers that bind them themselves (``free_port``) started through ``retry_in_use``.

A port found free (bound to 0, closed) is free only at that moment: a server started on it later may find it
taken by another process (a test running beside, under -n 2). Where the test can keep the socket it does
(``refusing_port``); a server that binds its own port is started through ``retry_in_use``, which starts it again
on other free ports when its start failed with "address in use"."""
from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from core.ports import ADDRESS_IN_USE, address_in_use, free_port, retry_in_use  # noqa: F401 - the tests' names


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections while the block runs: bound, never listening, held. A port
    bound and closed at once is free again: another process may take it and answer before the test connects."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
