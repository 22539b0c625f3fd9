"""HOTLINE_CROSS_SERVER_DIAL: per-server routes that override the ones learned from the switches."""
from __future__ import annotations

import pytest

from core.config import ConfigError, load_config

TWO = "127.0.0.1:8021:s3cret-a,127.0.0.1:8031:s3cret-b"


def test_routes_parse_from_the_environment_string_and_a_toml_table(tmp_path):
    """Should read `server=template;server=off` and the TOML table form into {server: template}."""
    config = load_config({"HOTLINE_ESL": TWO, "HOTLINE_VAR_DIR": str(tmp_path),
                          "HOTLINE_CROSS_SERVER_DIAL": " 127.0.0.1:8031=sofia/gateway/fsb/{extension} ;"
                                                       "127.0.0.1:8021=off"})
    assert config.cross_server_dial == {"127.0.0.1:8031": "sofia/gateway/fsb/{extension}", "127.0.0.1:8021": "off"}
    table = load_config({"esl": TWO, "var_dir": str(tmp_path),
                         "cross_server_dial": {"127.0.0.1:8031": "sofia/internal/{extension}@10.0.0.2:5060"}})
    assert table.cross_server_dial == {"127.0.0.1:8031": "sofia/internal/{extension}@10.0.0.2:5060"}
    assert load_config({"esl": TWO, "var_dir": str(tmp_path)}).cross_server_dial == {}


@pytest.mark.parametrize("value, message", [
    ("127.0.0.1:8031", "host:port=template"),
    ("127.0.0.1:8031=sofia/gateway/fsb/1002", "{extension}"),
    ("127.0.0.1:9999=sofia/gateway/fsb/{extension}", "not a server of HOTLINE_ESL"),
    ("nohost=sofia/gateway/fsb/{extension}", "host:port"),
])
def test_bad_routes_are_refused_with_a_reason(tmp_path, value, message):
    """Should refuse a route without a server, without {extension}, or for a server the app does not drive."""
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        load_config({"HOTLINE_ESL": TWO, "HOTLINE_VAR_DIR": str(tmp_path), "HOTLINE_CROSS_SERVER_DIAL": value})


def test_production_refuses_default_secrets_and_needs_no_peer_password_of_its_own(tmp_path):
    """Should refuse ClueCon in production as before; the peer password lives only on the switches (the
    calling one expands ${peer_password}), so the app has no such setting: the ACD refuses a switch whose
    peer_password is still the placeholder instead (acd.dispatcher.learn_peer_route)."""
    key = "k" * 40
    with pytest.raises(ConfigError, match="ClueCon"):
        load_config({"HOTLINE_MODE": "production", "HOTLINE_SECRET_KEY": key,
                     "HOTLINE_ESL": "127.0.0.1:8021:ClueCon,127.0.0.1:8031:s3cret", "HOTLINE_VAR_DIR": str(tmp_path)})
    config = load_config({"HOTLINE_MODE": "production", "HOTLINE_SECRET_KEY": key, "HOTLINE_ESL": TWO,
                          "HOTLINE_RECORD_KEY": "r" * 40, "HOTLINE_VAR_DIR": str(tmp_path)})
    assert config.is_production and not hasattr(config, "peer_password")
