"""switch.listings: FreeSWITCH's registration and channel lists and global variables, read on their own."""
import json

import pytest

from switch.listings import parse_channels, parse_peer_uri, parse_show_registrations, parse_sofia_registrations

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


def test_peer_uri():
    """Should take a server's hotline_peer_uri as a dial template, and nothing unset, erroneous or unsafe."""
    uri = "sofia/internal/{extension}@10.0.0.2:5060"
    assert parse_peer_uri(uri + "\n") == uri
    for bad in ("", "  ", "-ERR no reply", "_undef_", "sofia/internal/1000@10.0.0.2", "a b/{extension}",
                "x/{extension},y", "[a=1]x/{extension}"):
        assert parse_peer_uri(bad) is None, bad
