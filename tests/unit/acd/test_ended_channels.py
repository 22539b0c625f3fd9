"""The ACD's memory of channels that ended (acd.dispatcher): kept for late events, then forgotten, so the call
process does not grow with every call it ever saw (issue 15 item 11)."""
from __future__ import annotations

from acd.dispatcher import ENDED_KEEP, Acd
from switch.events import ChannelCreated, ChannelHangup


def test_ended_channels_are_forgotten_after_a_while():
    """Should keep an ended channel's server and its end for ENDED_KEEP seconds, then drop both, while a
    channel still up keeps its server whatever its age."""
    acd = Acd(pool=None)
    now = [1000.0]
    acd.monotonic = lambda: now[0]
    acd.on_event(ChannelCreated(server="fs1", uuid="long-call"))
    for i in range(3000):
        acd.on_event(ChannelCreated(server="fs1", uuid=f"c{i}"))
        acd.on_event(ChannelHangup(server="fs1", uuid=f"c{i}", cause="NORMAL_CLEARING"))
        now[0] += 0.5  # 3,000 calls over 25 minutes
    kept = int(ENDED_KEEP / 0.5) + 1
    assert len(acd.ended_legs) <= kept and len(acd.channel_server) <= kept + 1
    assert "c2999" in acd.ended_legs and "c0" not in acd.ended_legs and "c0" not in acd.channel_server
    assert acd.channel_server["long-call"] == "fs1"  # still up: never forgotten by age
    assert len(acd._ended_at) <= kept
