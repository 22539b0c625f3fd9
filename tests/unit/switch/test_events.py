"""Domain events built from the real transcripts' FreeSWITCH events."""
from __future__ import annotations

from switch.codec import FrameParser
from switch.events import (
    ChannelAnswered, ChannelBridged, ChannelCreated, ChannelHangup, DtmfReceived, ExecuteComplete, FaxResult,
    JobDone, RecordStopped, Registered, to_domain,
)
from switch.transcript import server_stream


def domain_events(lines, server="fs1:8021"):
    frames = FrameParser().feed(server_stream(lines))
    return [to_domain(f.event, server, f.event_body) for f in frames if f.event is not None]


def test_outbound_call_events(all_transcripts):
    """Should turn the outbound capture into DTMF, execute-complete, record and hangup domain events."""
    events = [e for e in domain_events(all_transcripts["outbound_socket_async_full.txt"]) if e is not None]
    digits = [e.digit for e in events if isinstance(e, DtmfReceived)]
    assert digits == ["1", "2", "3", "4", "#", "9"]
    done = [e for e in events if isinstance(e, ExecuteComplete)]
    assert done[0].application == "answer" and done[0].application_uuid == "461b1a91-ea76-41a4-8304-d7443d79ca76"
    rec = [e for e in events if isinstance(e, RecordStopped)][0]
    assert rec.path == "/srv/hotline-fs/rec/outbound-record.wav" and rec.duration_ms == 1500
    hangups = [e for e in events if isinstance(e, ChannelHangup)]
    assert [h.complete for h in hangups] == [False, True] and hangups[1].cause == "NORMAL_CLEARING"
    assert hangups[1].billsec == 8 and all(e.server == "fs1:8021" for e in events)
    assert any(isinstance(e, ChannelAnswered) for e in events)


def test_inbound_jobs_ok_and_failed(all_transcripts):
    """Should report bgapi jobs as JobDone with ok from the +OK/-ERR body."""
    jobs = [e for e in domain_events(all_transcripts["inbound_plain_and_json.txt"]) if isinstance(e, JobDone)]
    assert any(j.ok and j.job_uuid == "868d8c33-f46a-452f-94f5-1e197e80a545" and j.body == "265\n" for j in jobs)
    assert any(not j.ok and j.body.startswith("-ERR NORMAL_CLEARING") for j in jobs)
    assert any(isinstance(e, ChannelCreated) for e in domain_events(all_transcripts["inbound_plain_and_json.txt"]))


def test_registration_bridge_and_fax(all_transcripts):
    """Should see the agent register, the bridge between legs, and a successful one-page fax."""
    acd = domain_events(all_transcripts["acd_bridge_eavesdrop_record_transfer_conference.txt"])
    reg = [e for e in acd if isinstance(e, Registered)][0]
    assert (reg.user, reg.domain) == ("1000", "127.0.0.1") and "sip:1000@127.0.0.1:5070" in reg.contact
    bridge = [e for e in acd if isinstance(e, ChannelBridged)][0]
    assert bridge.uuid == "efe1c6ca-9fa5-42be-8b6a-474684eab53f"
    assert bridge.other_uuid == "3ecee8e2-ce49-4401-bae3-a7dcbc7af6b3"
    fax = [e for e in domain_events(all_transcripts["fax_spandsp_txfax_rxfax.txt"]) if isinstance(e, FaxResult)]
    rx = [f for f in fax if f.direction == "rx"][0]
    assert rx.success and rx.pages == 1 and rx.result_text == "OK" and rx.path.endswith(".tif")


def test_unknown_events_are_ignored():
    """Should return None for events the app does not use."""
    assert to_domain({"Event-Name": "HEARTBEAT"}, "s") is None
    assert to_domain({"Event-Name": "CUSTOM", "Event-Subclass": "conference::maintenance"}, "s") is None
