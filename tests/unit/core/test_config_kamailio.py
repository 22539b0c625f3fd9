"""HOTLINE_KAMAILIO* settings: off by default, derived RPC address and database, PostgreSQL required."""
from __future__ import annotations

import pytest

from core.config import ConfigError, load_config

PG = "postgresql://hotline:pw@127.0.0.1:5432/hotline"


def test_off_by_default():
    config = load_config({})
    assert config.kamailio is None and config.kamailio_rpc is None


def test_named_kamailio_derives_its_rpc_and_database():
    config = load_config({"HOTLINE_KAMAILIO": "10.0.0.9:5060", "HOTLINE_DATABASE_URL": PG})
    assert config.kamailio == ("10.0.0.9", 5060)
    assert config.kamailio_rpc == ("127.0.0.1", 5061)
    assert config.kamailio_db == PG
    assert config.kamailio_location == "kamailio.location"
    assert config.kamailio_carriers == ("127.0.0.1/32",) and config.kamailio_poll == 2.0


def test_every_setting_given():
    config = load_config({"HOTLINE_KAMAILIO": "127.0.0.1:5070", "HOTLINE_KAMAILIO_RPC": "127.0.0.1:5999",
                          "HOTLINE_KAMAILIO_DB": "postgresql://kam@db/k", "HOTLINE_KAMAILIO_LOCATION": "sip.location",
                          "HOTLINE_KAMAILIO_CARRIERS": "198.51.100.0/28, 203.0.113.7",
                          "HOTLINE_KAMAILIO_POLL": "0.5", "HOTLINE_KAMAILIO_REALM": "sip.hotline.example"})
    assert config.kamailio_realm == "sip.hotline.example"
    assert (config.kamailio_rpc, config.kamailio_db, config.kamailio_location) == (
        ("127.0.0.1", 5999), "postgresql://kam@db/k", "sip.location")
    assert config.kamailio_carriers == ("198.51.100.0/28", "203.0.113.7") and config.kamailio_poll == 0.5


@pytest.mark.parametrize("key, value, message", [
    ("HOTLINE_KAMAILIO", "nohost", "host:port"),
    ("HOTLINE_KAMAILIO", "127.0.0.1:0", "host:port"),
    ("HOTLINE_KAMAILIO_CARRIERS", "carrier.example", "not an address"),
    ("HOTLINE_KAMAILIO_POLL", "0", "more than 0"),
    ("HOTLINE_KAMAILIO_LOCATION", "Location;drop", "schema.table"),
    ("HOTLINE_KAMAILIO_REALM", 'a"b', "HOTLINE_KAMAILIO_REALM"),
    ("HOTLINE_KAMAILIO_REALM", "", "HOTLINE_KAMAILIO_REALM"),
])
def test_nonsense_refused(key, value, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"HOTLINE_KAMAILIO": "127.0.0.1:5070", "HOTLINE_DATABASE_URL": PG, key: value})


def test_kamailio_needs_postgresql():
    with pytest.raises(ConfigError, match="needs PostgreSQL"):
        load_config({"HOTLINE_KAMAILIO": "127.0.0.1:5070", "HOTLINE_DATABASE_URL": "sqlite:////tmp/x.sqlite3"})
    config = load_config({"HOTLINE_KAMAILIO": "127.0.0.1:5070", "HOTLINE_DATABASE_URL": "sqlite:////tmp/x.sqlite3",
                          "HOTLINE_KAMAILIO_DB": PG})
    assert config.kamailio_db == PG
    assert load_config({"HOTLINE_KAMAILIO": "off"}).kamailio is None
