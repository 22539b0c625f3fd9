"""TCP ports on 127.0.0.1 for child servers that bind their own (Kannel's boxes; in tests nginx, Dovecot, the
app): one free a moment ago, starting again on others when it was taken meanwhile, and who listens on a port.

A port found free (bound to 0, closed) is free only at that moment: a server started on it later may find it
taken by another process. So a start through ``retry_in_use`` picks new ports on each try, and a child is
ready only once a listener on its port is the child's own socket (``listened_by``), not merely any listener.
"""
from __future__ import annotations

import errno
import ipaddress
import os
import socket
import sys
from collections.abc import Callable
from typing import TypeVar

# EADDRINUSE's text: how a server's log (Kannel, Dovecot, nginx, a child Python process) says its bind failed.
ADDRESS_IN_USE = "Address already in use"

Started = TypeVar("Started")


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


def bindable(port: int) -> bool:
    """Whether a server could bind ``port`` on 127.0.0.1 now (SO_REUSEADDR, as servers set it: a closed
    connection's TIME_WAIT does not count); the probe never listens, so no client can reach it."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            return False
    return True


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as /proc/net/tcp{,6} writes it: hex of 32-bit words, each in the host's byte order."""
    raw = bytes.fromhex(hex_address)
    if sys.byteorder == "little":
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(raw)


def listeners(port: int) -> dict[int, ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """{socket inode: local address} of every TCP socket listening on ``port`` on this host (any process),
    read from /proc/net/tcp and tcp6: no connection is made (a probe would be a client to the server)."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as rows:
                next(rows, None)
                for row in rows:
                    fields = row.split()  # sl local_address rem_address st ... uid timeout inode
                    if len(fields) > 9 and fields[3] == "0A":  # 0A: LISTEN
                        address, _, hex_port = fields[1].partition(":")
                        if int(hex_port, 16) == port:
                            found[int(fields[9])] = _address(address)
        except OSError:  # no IPv6 here
            continue
    return found


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process ``pid`` has open (its /proc/<pid>/fd links "socket:[N]"); empty once it
    has ended."""
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def blocks_loopback(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a listener on ``address`` keeps a server from binding the same port on 127.0.0.1: the address
    itself, or a wildcard (0.0.0.0, ::)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_unspecified or address == ipaddress.IPv4Address("127.0.0.1")


def listened_by(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` listens on ``port``: True, False while nothing blocks it from binding 127.0.0.1
    there, None when another process's listener does (see blocks_loopback)."""
    found = listeners(port)
    own = socket_inodes(pid)  # read after the listeners: a socket listening then was already among its fds
    if found.keys() & own:
        return True
    blocking = [address for address in found.values() if blocks_loopback(address)]
    if blocking and all(address == ipaddress.IPv6Address("::") for address in blocking):
        # a "::" listener blocks 127.0.0.1 unless it is IPv6-only (IPV6_V6ONLY, invisible in /proc): ask the
        # kernel, which alone knows
        return False if bindable(port) else None
    return None if blocking else False
