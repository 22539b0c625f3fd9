"""Unsafe defaults refused at start (issue 16 items 7 and 14): shipped passwords and a missing call-record
key in production, a malformed HOTLINE_ESL echoed with its password, development mode on the network."""
from __future__ import annotations

import pytest

from core.config import ConfigError, load_config

KEY = "k" * 40
RECORD_KEY = "r" * 40


def production(tmp_path, **values):
    base = {"HOTLINE_MODE": "production", "HOTLINE_SECRET_KEY": KEY, "HOTLINE_RECORD_KEY": RECORD_KEY,
            "HOTLINE_ESL": "127.0.0.1:8021:a-long-real-secret", "HOTLINE_VAR_DIR": str(tmp_path)}
    base.update(values)
    return load_config(base)


@pytest.mark.parametrize("password", ["ClueCon", "change-this-esl-password", "change-this-agent-password",
                                      "change-this-peer-password", "changeme"])
def test_production_refuses_every_shipped_esl_password(tmp_path, password):
    """Should refuse ClueCon and each placeholder of freeswitch-conf/vars.xml as an ESL password, on any
    server of HOTLINE_ESL, naming the server but not the password."""
    with pytest.raises(ConfigError, match="127.0.0.1:8031") as caught:
        production(tmp_path, HOTLINE_ESL=f"127.0.0.1:8021:a-long-real-secret,127.0.0.1:8031:{password}")
    assert "shipped ESL password" in str(caught.value)
    assert production(tmp_path).is_production


@pytest.mark.parametrize("record_key", [None, "short", KEY])
def test_production_needs_a_record_key_of_its_own(tmp_path, record_key):
    """Should refuse production without HOTLINE_RECORD_KEY, with a short one, or with the session key."""
    values = {"HOTLINE_RECORD_KEY": record_key} if record_key is not None else {}
    base = {"HOTLINE_MODE": "production", "HOTLINE_SECRET_KEY": KEY,
            "HOTLINE_ESL": "127.0.0.1:8021:a-long-real-secret", "HOTLINE_VAR_DIR": str(tmp_path), **values}
    with pytest.raises(ConfigError, match="HOTLINE_RECORD_KEY"):
        load_config(base)


@pytest.mark.parametrize("value", ["fs1:s3cr3t-pass", "fs1:notaport:s3cr3t-pass", "fs1:99999:s3cr3t-pass",
                                   "fs1:8021:ok,fs2:s3cr3t-pass"])
def test_malformed_esl_is_reported_without_its_password(tmp_path, value):
    """Should say which entry of HOTLINE_ESL is malformed without echoing what follows its host."""
    with pytest.raises(ConfigError) as caught:
        load_config({"HOTLINE_ESL": value, "HOTLINE_VAR_DIR": str(tmp_path)})
    message = str(caught.value)
    assert "HOTLINE_ESL" in message and "s3cr3t" not in message and "notaport" not in message
    assert "fs" in message and "hidden" in message


@pytest.mark.parametrize("setting", ["HOTLINE_HTTP", "HOTLINE_OUTBOUND"])
@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "hotline.example.org"])
def test_development_refuses_a_non_loopback_address_without_the_flag(tmp_path, setting, host):
    """Should refuse development mode (demo accounts) bound to a network address unless
    HOTLINE_ALLOW_REMOTE_DEV is set; loopback addresses need no flag."""
    address = f"[{host}]:8080" if ":" in host else f"{host}:8080"
    values = {"HOTLINE_MODE": "development", "HOTLINE_VAR_DIR": str(tmp_path), setting: address}
    with pytest.raises(ConfigError, match="HOTLINE_ALLOW_REMOTE_DEV") as caught:
        load_config(values)
    assert setting in str(caught.value)
    assert load_config({**values, "HOTLINE_ALLOW_REMOTE_DEV": "1"}).mode == "development"
    for loopback in ("127.0.0.1:8080", "localhost:8080", "[::1]:8080", "127.0.0.2:8080"):
        assert load_config({**values, setting: loopback}).mode == "development"


def test_heartbeat_timeout_setting(tmp_path):
    """Should default to 65 s (three missed 20 s beats), accept 0 (no watch), and refuse a value shorter
    than FreeSWITCH's heartbeat interval or not a number."""
    base = {"HOTLINE_VAR_DIR": str(tmp_path)}
    assert load_config(base).esl_heartbeat_timeout == 65.0
    assert load_config({**base, "HOTLINE_ESL_HEARTBEAT_TIMEOUT": "0"}).esl_heartbeat_timeout == 0
    assert load_config({**base, "HOTLINE_ESL_HEARTBEAT_TIMEOUT": "90"}).esl_heartbeat_timeout == 90
    for bad in ("5", "-1", "soon"):
        with pytest.raises(ConfigError, match="HOTLINE_ESL_HEARTBEAT_TIMEOUT"):
            load_config({**base, "HOTLINE_ESL_HEARTBEAT_TIMEOUT": bad})
