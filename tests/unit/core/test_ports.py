"""core.ports: a server's start tried again only while its address was in use (retry_in_use), and who listens
on a port (listened_by: this process, another one, nobody)."""
from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys

import pytest

from core.ports import bindable, listened_by, retry_in_use


def _starts(*outcomes):
    """A start failing with each of ``outcomes`` that is an exception, in turn, and returning the others."""
    calls = []

    def start():
        outcome = outcomes[len(calls)]
        calls.append(outcome)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return start, calls


def test_a_start_is_tried_again_while_its_address_is_in_use():
    """Should call the start again after an OSError with errno EADDRINUSE and after an error whose text is a
    server's log saying "Address already in use", and return what the first start that succeeded returned."""
    in_use = OSError(errno.EADDRINUSE, "Address already in use")
    logged = RuntimeError("dovecot exited with 89: Fatal: listen(127.0.0.1, 40001) failed: Address already in use")
    start, calls = _starts(in_use, logged, "started")
    assert retry_in_use(start) == "started" and len(calls) == 3


def test_another_failure_or_the_last_is_raised():
    """Should raise at once a failure that is not an address in use, and the last of ``attempts`` in use."""
    start, calls = _starts(RuntimeError("dovecot exited with 89: unknown setting"), "started")
    with pytest.raises(RuntimeError, match="unknown setting"):
        retry_in_use(start)
    assert len(calls) == 1
    start, calls = _starts(*[OSError(errno.EADDRINUSE, "Address already in use")] * 3, "started")
    with pytest.raises(OSError):
        retry_in_use(start, attempts=3)
    assert len(calls) == 3


def test_a_listener_is_told_apart_by_its_process():
    """Should say True for a port this process listens on, None (another's) for the pid of a child that does
    not, False for a port merely bound here (no listener: it cannot be called ready), and that port not
    bindable while held."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        with socket.socket() as listener, socket.socket() as bound:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            bound.bind(("127.0.0.1", 0))
            port, bound_port = listener.getsockname()[1], bound.getsockname()[1]
            assert listened_by(os.getpid(), port) is True
            assert listened_by(child.pid, port) is None
            assert listened_by(os.getpid(), bound_port) is False and not bindable(bound_port)
        assert listened_by(os.getpid(), port) is False and bindable(port)
    finally:
        child.stdin.close()
        child.wait(timeout=10)


def test_an_ipv6_only_listener_does_not_count():
    """Should not call a port taken when the only listener on it is an IPv6-only one on '::' (a server binds
    127.0.0.1 beside it); a dual-stack '::' listener does count."""
    nobody = 2**22 + 1  # above Linux's highest pid: a process that holds no socket (the listener is not its)
    for v6only, expected in ((1, False), (0, None)):
        with socket.socket(socket.AF_INET6) as other:
            other.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
            other.bind(("::", 0))
            other.listen()
            port = other.getsockname()[1]
            assert listened_by(nobody, port) is expected, v6only
