"""The outbound server's allow list and its rate-limited refusal log (pure parts)."""
from __future__ import annotations

import logging
import socket

from switch.outbound import PeerAllowList, RefusalLog


def test_addresses_and_networks_match():
    """Should allow listed addresses and members of listed networks (IPv4-mapped IPv6 too), nothing else."""
    allow = PeerAllowList.resolve(["127.0.0.1", "10.1.0.0/16", "::1"])
    assert allow.allows("127.0.0.1") and allow.allows("10.1.200.3") and allow.allows("::1")
    assert allow.allows("::ffff:10.1.0.9")
    assert not allow.allows("127.0.0.2") and not allow.allows("10.2.0.1") and not allow.allows("::2")
    assert not allow.allows("not-an-address") and not allow.allows("")


def test_host_names_are_resolved_and_a_failing_name_allows_nobody(caplog):
    """Should allow what a host name resolves to, and log a name that does not resolve."""
    def getaddrinfo(host, port, family, kind):
        if host == "fs1.example.org":
            return [(socket.AF_INET, kind, 6, "", ("10.0.0.7", 0)),
                    (socket.AF_INET6, kind, 6, "", ("fe80::7%eth0", 0, 0, 2))]
        raise socket.gaierror("Name or service not known")

    with caplog.at_level(logging.ERROR, logger="switch.outbound"):
        allow = PeerAllowList.resolve(["fs1.example.org", "gone.example.org"], getaddrinfo=getaddrinfo)
    assert allow.allows("10.0.0.7") and allow.allows("fe80::7")
    assert not allow.allows("10.0.0.8")
    assert "gone.example.org" in caplog.text


def test_refusals_are_logged_once_a_minute_per_address(caplog):
    """Should log the first refusal of an address, stay quiet for a minute, then say how many were dropped."""
    now = [100.0]
    refusals = RefusalLog(interval=60.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="switch.outbound"):
        for _ in range(5):
            refusals.refused("192.0.2.9", 40000)
        refusals.refused("192.0.2.10", 40001)
        now[0] += 61
        refusals.refused("192.0.2.9", 40002)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert "192.0.2.9:40000" in lines[0] and "192.0.2.10" in lines[1]
    assert "4 more since the last message" in lines[2]
