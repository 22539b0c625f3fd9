"""Parsing FreeSWITCH's registration and channel lists, dial-string safety, and ACD prompt files."""
import json

import pytest

from acd.dispatcher import _safe, parse_channels, parse_show_registrations, parse_sofia_registrations
from acd.prompts import AcdPrompts, expected_wait_minutes

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
    """Should strip characters that could end a dial-string variable or add an application."""
    assert _safe("13800138000") == "13800138000"
    assert _safe("1380,origination_uuid=x}&bridge(user/1)") == "1380origination_uuidxbridgeuser1"
    assert _safe("a b\nc") == "abc"
    assert len(_safe("9" * 500)) == 64


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
