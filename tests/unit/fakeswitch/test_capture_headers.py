"""The fake switch, driven with the very commands of each real capture (tests/transcripts), must send for every
command and event the frame the real switch sent: the same header names, and the same values once uuids
(compared through the pairs learned), times, counters and the host are masked. A drift fails with the list of
what differs, grouped by header, naming the frames (capture_compare.report).

Left out, each for its reason (capture_compare): variables only a real SIP stack, media engine or the
capture's demo directory set (ENDPOINT_ONLY: the application reads none of them, checked below), the fake's
own knob for a scripted caller's DTMF mode (FAKE_ONLY), and values measured off the media or the clock
(durations, file sizes, whether a digit came within a prompt: MEASURED).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fakeswitch import FakeSwitch, Press, transcript
from tests.unit.fakeswitch import capture_compare as cc

ROOT = Path(__file__).resolve().parents[3]


def _capture(name: str) -> Path:
    path = transcript.ESL_DIR / name
    if not path.exists():
        pytest.skip(f"no capture {name} under {transcript.ESL_DIR}")
    return path


def _replay(tmp_path, name: str, setup=None, **kw) -> cc.Replay:
    (tmp_path / "media").mkdir()
    (tmp_path / "rec").mkdir()
    with FakeSwitch(time_scale=0.01, record_dir=tmp_path, strict_files=False) as fs:
        if setup is not None:
            kw.update(setup(fs) or {})
        return cc.replay(fs, _capture(name), tmp_path, **kw)


def _assert_no_drift(result: cc.Replay, skip=lambda p: False, mask_body=lambda text: text, **kw) -> None:
    found = [d for conn in result.real for d in cc.drifts(result, conn, skip=skip, mask_body=mask_body, **kw)]
    order = [line for conn in result.real for line in cc.order_drifts(result, conn, skip=skip)]
    assert not found and not order, "the fake drifted from the capture:\n" + "\n".join(
        ([cc.report(found)] if found else []) + (["events in another order:"] + order if order else []))


def test_outbound_socket_frames_match_the_capture(tmp_path):
    """Should answer the outbound socket's commands (connect, myevents, linger, execute answer / playback /
    set / play_and_get_digits / record, api and bgapi on the socket, hangup) and the control connection's
    (bgapi originate into the socket, uuid_send_dtmf, uuid_broadcast) with the captured frames."""
    _assert_no_drift(_replay(tmp_path, "outbound_socket_async_full.txt", outbound_route="12345"))


def test_sip_caller_socket_frames_match_the_capture(tmp_path):
    """Should give a SIP caller's socket session (RFC 2833 digits, linger 5) the captured frames."""
    def setup(fs):
        return {"place_call": lambda address: fs.place_call(
            address, caller="1001", caller_name="SIPp Customer", context="default", script=[Press("12#")])}
    _assert_no_drift(_replay(tmp_path, "outbound_socket_sip_caller_rfc2833.txt", setup))


def test_park_and_uuid_bridge_states_match_the_capture(tmp_path):
    """Should move channels through the states a real switch reports, in its order (park_bridge_states.txt,
    recorded by tests/live/capture_states.py): uuid_park ends what a leg runs and puts it in CS_PARK
    (CHANNEL_UNPARK, EXECUTE_COMPLETE reading state 6, CHANNEL_STATE CS_PARK, CHANNEL_PARK); uuid_bridge
    gives both legs new profiles with each other's copy, and they leave park (state 8), go through
    CS_HIBERNATE, CS_RESET, CS_SOFT_EXECUTE, the originator bridging in CS_SOFT_EXECUTE, the originatee in
    CS_EXCHANGE_MEDIA; uuid_park of the originatee ends the bridge and the originator, left with nothing to
    run, hangs up; what an application leaves in current_application_response is gone when the next starts."""
    _assert_no_drift(_replay(tmp_path, "park_bridge_states.txt"))


def _conference_sound(p: cc.Parsed) -> bool:
    """mod_conference's sounds (play-file / play-file-done: alone, enter, exit, music on hold) come from the
    conference profile's settings; the capture ran FreeSWITCH's stock `default` profile, the product its own
    `hotline` one (freeswitch-conf), and the application reads no conference events: left out."""
    return p.event is not None and p.headers.get("Action", "").startswith("play-file")


def _registration_mask(text: str) -> str:
    """`show registrations`: the REGISTER's Call-ID and source port are the phone's (sipp's), not the switch's."""
    return re.sub(r"^(1000,127\.0\.0\.1,)[^,]+(,.*?,127\.0\.0\.1,)\d+,", r"\1<call-id>\2<port>,", text, flags=re.M)


def test_acd_frames_match_the_capture(tmp_path):
    """Should give a control connection driving an ACD by api (an agent's phone registering, originate of a
    loopback customer and of the agent's phone to &park, uuid_bridge, eavesdrop by a supervisor's loopback
    leg, uuid_record, uuid_broadcast to both legs, uuid_transfer of both into a conference and of one back
    to an extension, conference list / json_list / hup all, uuid_kill) the captured frames, header by
    header and in order, conference sounds aside."""
    import gevent

    def setup(fs):
        fs.add_agent("1000", registered=False, answer_delay=0.5)

        def register_once_subscribed():   # the phone registered after the capture's client subscribed
            fs.wait_for(lambda: fs.inbound_sessions and len(fs.inbound_sessions[0].commands) >= 2, 10, "subscribed")
            fs.set_registered("1000", True)
        gevent.spawn(register_once_subscribed)
    result = _replay(tmp_path, "acd_bridge_eavesdrop_record_transfer_conference.txt", setup)
    # (sofia::register's call-id, network-port and user-agent are the phone's: masked like the reply's)
    _assert_no_drift(result, skip=_conference_sound, mask_body=_registration_mask,
                     call_specific=lambda name: name in ("call-id", "network-port", "user-agent"))


def test_a_drift_is_reported_header_by_header(tmp_path):
    """Should name a missing header, an extra one and a changed value, with the frames they drifted on."""
    result = _replay(tmp_path, "outbound_socket_async_full.txt", outbound_route="12345")
    answer = next(p for p in result.fake["OUT"] if p.event and p.headers.get("Event-Name") == "CHANNEL_ANSWER")
    answer.event = [(k, "someone else" if k == "Caller-Caller-ID-Name" else v)
                    for k, v in answer.event if k != "Caller-ANI"] + [("X-Invented", "1")]
    text = cc.report([d for d in cc.drifts(result, "OUT")])
    assert "- header missing: Caller-ANI\n      on OUT CHANNEL_ANSWER loopback/12345-b" in text
    assert "- header the real switch does not send: X-Invented\n      on OUT CHANNEL_ANSWER" in text
    assert "- value of Caller-Caller-ID-Name: real 'Outbound-Test', fake 'someone else'" in text
    result.fake["OUT"].remove(answer)
    order = "\n".join(cc.order_drifts(result, "OUT"))
    assert "- loopback/12345-b: event 3 differs: real [CHANNEL_ANSWER; CHANNEL_EXECUTE_COMPLETE answer" in order


def test_what_the_comparison_leaves_out_is_nothing_the_application_reads():
    """Should never exempt a variable the application (switch/, acd/, recorder/, ivr/, hotline/) reads."""
    read = set()
    for folder in ("switch", "acd", "recorder", "ivr", "hotline"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            read.update(re.findall(r"variable_([A-Za-z0-9_]+)", text))
            read.update(re.findall(r"""(?:\.variable|variables\.get|get_var)\(\s*["']([A-Za-z0-9_]+)["']""", text))
    assert "sip_hangup_disposition" in read      # the scan finds what the app reads
    exempt = sorted(name for name in read if cc.exempt(f"variable_{name}"))
    assert not exempt, f"the drift tests leave out variables the application reads: {exempt}"


def test_loopback_a_leg_takes_the_b_legs_identity(fakeswitch):
    """Should flip the caller id of a loopback call's A leg when it is given its extension (CALL_UPDATE,
    pre_transfer_caller_id_*, ANI and the original caller id kept), and leave the B leg's as originated."""
    from tests.unit.fakeswitch.rawclient import RawClient

    c = RawClient.connect(fakeswitch.address)
    c.read_frame()
    c.command("auth ClueCon")
    c.command("event plain CALL_UPDATE CHANNEL_PARK")
    c.command("api originate {origination_caller_id_number=5551234,origination_caller_id_name=Customer}"
              "loopback/9999/default &park")
    update, _ = c.read_event("CALL_UPDATE")
    assert update["Channel-Name"] == "loopback/9999-a" and update["Direction"] == "RECV"
    assert (update["Caller-Caller-ID-Name"], update["Caller-Caller-ID-Number"]) == ("Outbound Call", "default")
    assert (update["Caller-Callee-ID-Name"], update["Caller-Callee-ID-Number"]) == ("Customer", "5551234")
    assert (update["Caller-Orig-Caller-ID-Number"], update["Caller-ANI"]) == ("5551234", "5551234")
    assert update["variable_pre_transfer_caller_id_number"] == "5551234"
    assert update["variable_channel_cid_flipped"] == "yes"
    parks = [c.read_event("CHANNEL_PARK")[0] for _ in range(2)]
    b = next(p for p in parks if p["Channel-Name"] == "loopback/9999-b")
    assert (b["Caller-Caller-ID-Name"], b["Caller-Caller-ID-Number"]) == ("Customer", "5551234")
    assert (b["Caller-Callee-ID-Name"], b["Caller-Callee-ID-Number"]) == ("Outbound Call", "default")
