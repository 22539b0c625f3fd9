"""HOTLINE_OUTBOUND_ALLOW: who may connect to the outbound socket server (default: the HOTLINE_ESL hosts)."""
from __future__ import annotations

import pytest

from core.config import ConfigError, load_config


def test_default_is_the_esl_hosts(tmp_path):
    """Should allow the hosts of HOTLINE_ESL, each once, when HOTLINE_OUTBOUND_ALLOW is not set."""
    config = load_config({"HOTLINE_ESL": "10.0.0.5:8021:pw-a,10.0.0.6:8021:pw-b,10.0.0.5:8031:pw-c",
                          "HOTLINE_VAR_DIR": str(tmp_path)})
    assert config.outbound_peers == ("10.0.0.5", "10.0.0.6")


def test_addresses_networks_and_names_are_read(tmp_path):
    """Should read addresses, networks and host names from the string and from a TOML list."""
    config = load_config({"HOTLINE_OUTBOUND_ALLOW": " 10.0.0.5, 192.168.1.0/24,fs1.example.org,::1 ",
                          "HOTLINE_VAR_DIR": str(tmp_path)})
    assert config.outbound_peers == ("10.0.0.5", "192.168.1.0/24", "fs1.example.org", "::1")
    table = load_config({"outbound_allow": ["127.0.0.1"], "var_dir": str(tmp_path)})
    assert table.outbound_peers == ("127.0.0.1",)


@pytest.mark.parametrize("value, message", [
    ("", "no address"),
    (" , ", "no address"),
    ("10.0.0.5, not an address", "'not an address'"),
    ("10.0.0.0/33", "10.0.0.0/33"),
    ("-evil.example", "-evil.example"),
])
def test_bad_entries_are_refused_with_a_reason(tmp_path, value, message):
    """Should refuse an empty list or an entry that is neither an address, a network nor a host name."""
    with pytest.raises(ConfigError, match="HOTLINE_OUTBOUND_ALLOW") as info:
        load_config({"HOTLINE_OUTBOUND_ALLOW": value, "HOTLINE_VAR_DIR": str(tmp_path)})
    assert message in str(info.value)
