"""The browser phone's settings (webui.blueprints.softphone): HOTLINE_SOFTPHONE_WSS, secure WebSocket addresses
only; the seats' SIP passwords each the seat's own (HOTLINE_FS_SEAT_PASSWORDS=product, acd.seats) or one shared
from HOTLINE_FS_AGENT_PASSWORD (the variables FreeSWITCH reads too)."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ConfigError, load_config

KEY = "k" * 40


def test_off_unless_configured():
    """Should leave the browser phone off by default (desk phones only)."""
    config = load_config({"secret_key": KEY})
    assert config.softphone_wss == () and config.agent_sip_password == ""


def test_addresses_from_the_environment_and_the_instance_file(tmp_path):
    """Should read comma-separated wss:// addresses (IPv6 and a path too) from the environment, a list from
    the instance file, and the password from HOTLINE_FS_AGENT_PASSWORD."""
    config = load_config(environ={"HOTLINE_SOFTPHONE_WSS": "wss://127.0.0.1:7443, wss://[::1]:7443/ws",
                                  "HOTLINE_FS_AGENT_PASSWORD": "seat-secret", "HOTLINE_SECRET_KEY": KEY,
                                  "HOTLINE_CONFIG": str(tmp_path / "none.toml")})
    assert config.softphone_wss == ("wss://127.0.0.1:7443", "wss://[::1]:7443/ws")
    assert config.agent_sip_password == "seat-secret"
    instance = tmp_path / "hotline.toml"
    instance.write_text('softphone_wss = ["wss://fs1.example:7443", "wss://fs2.example:7443"]\n'
                        'agent_sip_password = "from-the-file"\nsecret_key = "' + KEY + '"\n')
    config = load_config(environ={"HOTLINE_CONFIG": str(instance)})
    assert config.softphone_wss == ("wss://fs1.example:7443", "wss://fs2.example:7443")
    assert config.agent_sip_password == "from-the-file"


@pytest.mark.parametrize("url", ["ws://127.0.0.1:7443", "https://127.0.0.1:7443", "wss://", "wss://a b:7443",
                                 "wss://127.0.0.1:99999", "wss://127.0.0.1:0", "127.0.0.1:7443",
                                 "wss://127.0.0.1:7443?x=1"])
def test_refuses_what_is_not_a_secure_websocket(url):
    """Should refuse plain ws, other schemes, a missing host, a bad port or a query, naming the setting."""
    with pytest.raises(ConfigError, match="HOTLINE_SOFTPHONE_WSS"):
        load_config({"softphone_wss": url, "agent_sip_password": "x", "secret_key": KEY})


def test_each_seat_its_own_password_by_default(tmp_path):
    """Should make each seat's password the product's (no shared one needed) and write the seats under var/,
    or under the shared storage, unless HOTLINE_FS_SEATS_DIR says where."""
    config = load_config({"softphone_wss": "wss://127.0.0.1:7443", "secret_key": KEY, "var_dir": str(tmp_path)})
    assert config.seat_passwords == "product" and config.seats_dir == tmp_path / "seats"
    assert load_config({"secret_key": KEY, "shared_dir": str(tmp_path / "nfs")}).seats_dir == tmp_path / "nfs" / "seats"
    assert load_config(environ={"HOTLINE_FS_SEATS_DIR": "/srv/fs-seats", "HOTLINE_SECRET_KEY": KEY,
                                "HOTLINE_CONFIG": str(tmp_path / "none.toml")}).seats_dir == Path("/srv/fs-seats")


@pytest.mark.parametrize("mode", ["", "per-seat", "Shared"])
def test_refuses_an_unknown_seat_password_kind(mode):
    """Should name HOTLINE_FS_SEAT_PASSWORDS and its two values for anything else."""
    with pytest.raises(ConfigError, match="HOTLINE_FS_SEAT_PASSWORDS must be product .* or shared"):
        load_config({"seat_passwords": mode, "secret_key": KEY})


def test_a_shared_seat_password_must_be_given():
    """Should refuse the browser phone with one shared seat password that is not set, saying which variable
    to set."""
    with pytest.raises(ConfigError, match="HOTLINE_FS_AGENT_PASSWORD"):
        load_config({"softphone_wss": "wss://127.0.0.1:7443", "secret_key": KEY, "seat_passwords": "shared"})


@pytest.mark.parametrize("password", ["change-this-agent-password", "ClueCon", "short-pw", ""])
def test_production_refuses_a_shared_placeholder_or_short_seat_password(tmp_path, password):
    """Should refuse, in production, one shared seat password that is the vars.xml placeholder or short,
    without echoing it, browser phone or not; a long one of its own passes, and per-seat passwords need none."""
    base = {"HOTLINE_MODE": "production", "HOTLINE_SECRET_KEY": KEY, "HOTLINE_RECORD_KEY": "r" * 40,
            "HOTLINE_ESL": "127.0.0.1:8021:a-long-real-secret", "HOTLINE_VAR_DIR": str(tmp_path)}
    for extra in ({}, {"HOTLINE_SOFTPHONE_WSS": "wss://10.0.0.5:7443"}):
        with pytest.raises(ConfigError, match="HOTLINE_FS_AGENT_PASSWORD") as caught:
            load_config({**base, **extra, "HOTLINE_FS_SEAT_PASSWORDS": "shared", "HOTLINE_FS_AGENT_PASSWORD": password})
        if password:
            assert password not in str(caught.value)
    assert load_config({**base, "HOTLINE_FS_SEAT_PASSWORDS": "shared",
                        "HOTLINE_FS_AGENT_PASSWORD": "a-long-seat-secret"}).is_production
    assert load_config({**base, "HOTLINE_SOFTPHONE_WSS": "wss://10.0.0.5:7443"}).seat_passwords == "product"
