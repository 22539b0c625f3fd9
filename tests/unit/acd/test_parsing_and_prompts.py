"""Parsing FreeSWITCH's registration and channel lists, dial-string safety, and ACD prompt files."""
import json

import pytest

from acd.dispatcher import parse_channels, parse_show_registrations, parse_sofia_registrations
from acd.prompts import AcdPrompts, expected_wait_minutes
from switch import commands

# As captured from a real FreeSWITCH (../shared/esl/acd_bridge_eavesdrop_record_transfer_conference.txt).
SHOW_REGISTRATIONS = (
    "reg_user,realm,token,url,expires,network_ip,network_port,network_proto,hostname,metadata\n"
    "1000,127.0.0.1,1-24223@127.0.0.1,sofia/internal/sip:1000@127.0.0.1:5070;transport=udp,1795812596,"
    "127.0.0.1,5071,udp,vm,\n\n1 total.\n")

SOFIA_REG = """Registrations:
=================================================================================================
Call-ID:    \t1-24223@127.0.0.1
User:       \t1000@127.0.0.1
Contact:    \t"1000" <sip:1000@127.0.0.1:5070>
Agent:      \tsipp
Status:     \tRegistered(UDP)(unknown) EXP(2026-11-27 20:49:56) EXPSECS(639)
Ping-Status:\tReachable

Call-ID:    \tabc@127.0.0.1
User:       \t1002@127.0.0.1
Contact:    \t"1002" <sip:1002@10.0.0.9:5060>
Status:     \tRegistered(UDP)(unknown)

=================================================================================================
Total items returned: 2
"""


def test_sofia_registrations():
    """Should read every registered user and contact from `sofia status profile internal reg`."""
    regs = parse_sofia_registrations(SOFIA_REG)
    assert set(regs) == {"1000", "1002"}
    assert regs["1002"] == '"1002" <sip:1002@10.0.0.9:5060>'
    assert parse_sofia_registrations("") == {}
    assert parse_sofia_registrations("-ERR no such profile\n") == {}


def test_show_registrations_csv_from_real_capture():
    """Should read the CSV form of `show registrations` as captured from FreeSWITCH."""
    assert parse_show_registrations(SHOW_REGISTRATIONS) == {
        "1000": "sofia/internal/sip:1000@127.0.0.1:5070;transport=udp"}
    assert parse_show_registrations("0 total.\n") == {}


def test_channel_list():
    """Should collect channel uuids and refuse an unreadable reply rather than free every agent."""
    assert parse_channels(json.dumps({"row_count": 2, "rows": [{"uuid": "a"}, {"uuid": "b", "name": "x"}]})) \
        == {"a", "b"}
    assert parse_channels(json.dumps({"row_count": 0})) == set()
    for bad in ("", "-ERR no reply", "{not json", "[1, 2]"):
        with pytest.raises(ValueError, match="unreadable channel list"):
            parse_channels(bad)


def test_dial_string_values_are_sanitised():
    """Should strip characters that could end a dial-string variable or add an application (the ACD cleans
    caller ids and queue names with switch.commands.scrub)."""
    assert commands.scrub("13800138000") == "13800138000"
    assert commands.scrub("1380,origination_uuid=x}&bridge(user/1)") == "1380origination_uuidxbridgeuser1"
    assert commands.scrub("a b\nc") == "abc"
    assert len(commands.scrub("9" * 500)) == 64


def test_prompt_files_rendered_once(tmp_path):
    """Should render an announcement on first use, reuse the file after, and skip it without a renderer."""
    rendered = []

    def render(text, path):
        rendered.append(text)
        path.write_bytes(b"RIFF")

    prompts = AcdPrompts(tmp_path, render=render)
    first = prompts.operator("1001")
    assert first.endswith("zh/acd/operator_1001.wav") and rendered == ["1 0 0 1号话务员为您服务。"]
    assert prompts.operator("1001") == first and len(rendered) == 1
    assert "3位来电者" in (prompts.position(4, 2, "1") and rendered[-1])
    assert prompts.position(1, 0, "1").endswith("position_first.wav")
    assert prompts.operator("../../etc").endswith("operator_etc.wav")
    assert prompts.operator("") == ""
    assert AcdPrompts(tmp_path / "empty").operator("1002") == ""
    remote = AcdPrompts(tmp_path, render=render, switch_dir="/srv/hotline-fs/sounds/")
    assert remote.operator("1001") == "/srv/hotline-fs/sounds/zh/acd/operator_1001.wav"


def test_expected_wait():
    """Should estimate at least a minute for anyone waiting, more with fewer agents."""
    assert expected_wait_minutes(0, 120, 3) == 0
    assert expected_wait_minutes(1, 10, 10) == 1
    assert expected_wait_minutes(10, 120, 2) == 10
    assert expected_wait_minutes(10, 120, 0) == 20


def test_prepare_renders_every_operator_number_and_the_fixed_announcements_once(tmp_path):
    """Should render each agent's 自动报工号 and the fixed prompts ahead of calls, each file once, even when
    two greenlets ask for the same prompt together."""
    import gevent

    rendered = []

    def render(text, path):
        rendered.append(path.name)
        gevent.sleep(0.01)  # a renderer that yields, as a subprocess does
        path.write_bytes(b"RIFF")

    prompts = AcdPrompts(tmp_path, render=render)
    jobs = [gevent.spawn(prompts.prepare, ["8001", "8002", ""]) for _ in range(2)]
    gevent.joinall(jobs, raise_error=True)
    assert all(job.value == 6 for job in jobs)
    assert sorted(rendered) == sorted(["operator_8001.wav", "operator_8002.wav", "callback_saved.wav",
                                       "overflow_callback.wav", "all_busy.wav", "position_first.wav"])
    assert AcdPrompts(tmp_path / "none").prepare(["8001"]) == 0  # no renderer: nothing, no error


def test_call_time_renderer_makes_a_real_8k_mono_prompt(tmp_path):
    """Should speak an operator number with the espeak-ng binary and sox into an 8 kHz mono WAV."""
    import wave

    from ivr.prompts import call_time_renderer

    prompts = AcdPrompts(tmp_path, render=call_time_renderer("zh", 8000))
    path = prompts.operator("8001")
    with wave.open(path) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert wav.getnframes() > 8000 * 0.5  # "8 0 0 1号话务员为您服务" takes well over half a second
