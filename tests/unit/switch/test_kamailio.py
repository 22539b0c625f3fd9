"""switch.kamailio: kamailio-conf/ rendered for the configured switches, and the values it refuses."""
from __future__ import annotations

import stat

import pytest

from switch import kamailio as kam


def settings(**changes) -> kam.KamailioSettings:
    base = dict(sip=("127.0.0.1", 5070), rpc=("127.0.0.1", 5071), db_url="postgres://kam:pw@127.0.0.1:5432/hotline",
                switches=(kam.SwitchSip("127.0.0.1:8021", "127.0.0.1", 5080, "127.0.0.1", 5060),
                          kam.SwitchSip("127.0.0.1:8031", "127.0.0.1", 5082, "127.0.0.1", 5062)),
                seat_re=r"^(10[01]\d)$", agent_password="seat-secret", carriers=("198.51.100.0/28", "127.0.0.1"),
                auth_secret="0123456789abcdef")
    base.update(changes)
    return kam.KamailioSettings(**base)


def test_render_writes_the_cfg_the_site_values_and_both_lists(tmp_path):
    """Should copy kamailio.cfg as shipped, fill hotline-local.cfg (0600: it holds passwords) and list the
    switches for the dispatcher and the carriers and switches for the permissions module."""
    cfg = kam.render_conf(settings(), tmp_path)
    assert cfg.read_text() == (kam.CONF_DIR / "kamailio.cfg").read_text()
    local = (tmp_path / "hotline-local.cfg").read_text()
    assert "listen=udp:127.0.0.1:5070\nlisten=tcp:127.0.0.1:5070\nlisten=tcp:127.0.0.1:5071\n" in local
    assert '#!define DBURL "postgres://kam:pw@127.0.0.1:5432/hotline"' in local
    assert '#!define SEAT_RE "^(10[01][0-9])$"' in local            # \d in POSIX form
    assert '#!define AGENT_PASSWORD "seat-secret"' in local
    assert '#!define LOCATION "kamailio.location"' in local
    assert f'#!define DISPATCHER_LIST "{tmp_path / "dispatcher.list"}"' in local
    assert "${" not in local
    assert stat.S_IMODE((tmp_path / "hotline-local.cfg").stat().st_mode) == 0o600
    assert (tmp_path / "dispatcher.list").read_text().splitlines()[1:] == [
        "1 sip:127.0.0.1:5080 0 0 name=127.0.0.1_8021", "1 sip:127.0.0.1:5082 0 0 name=127.0.0.1_8031"]
    assert (tmp_path / "address.list").read_text().splitlines()[1:] == [
        "1 198.51.100.0 28 0", "1 127.0.0.1 32 0", "2 127.0.0.1 32 5060", "2 127.0.0.1 32 5062"]


def test_a_new_auth_secret_each_render_unless_given(tmp_path):
    kam.render_conf(settings(auth_secret=""), tmp_path / "a")
    kam.render_conf(settings(auth_secret=""), tmp_path / "b")
    secrets = [[line for line in (tmp_path / name / "hotline-local.cfg").read_text().splitlines()
                if line.startswith("#!define AUTH_SECRET")] for name in ("a", "b")]
    assert len(secrets[0]) == 1 and secrets[0] != secrets[1]


@pytest.mark.parametrize("changes, message", [
    ({"agent_password": "has$dollar"}, "password"),
    ({"agent_password": 'quote"d'}, "password"),
    ({"agent_password": ""}, "password"),
    ({"seat_re": r"^(10\w\w)$"}, "POSIX"),
    ({"seat_re": "^(10[$"}, "regular expression"),
    ({"seat_re": ""}, "empty"),
    ({"switches": ()}, "no FreeSWITCH"),
    ({"carriers": ("not-a-network",)}, "not an address"),
    ({"location_table": "Location; drop"}, "location table"),
    ({"rpc": ("127.0.0.1", 5070)}, "differ"),
    ({"sip": ("127.0.0.1", 70000)}, "out of range"),
    ({"db_url": "sqlite:///x"}, "postgres"),
    ({"switches": (kam.SwitchSip("a", "127.0.0.1", 5080, "fs.example", 5060),)}, "must be an address"),
    ({"switches": (kam.SwitchSip("a", "127.0.0.1", 5080, "127.0.0.1", 5060),
                   kam.SwitchSip("b", "127.0.0.1", 5080, "127.0.0.1", 5062))}, "share"),
])
def test_values_kamailio_cannot_carry_are_refused_with_a_clear_error(tmp_path, changes, message):
    with pytest.raises(kam.KamailioError, match=message):
        kam.render_conf(settings(**changes), tmp_path)
    assert not (tmp_path / "hotline-local.cfg").exists()


def test_database_url_in_kamailio_form():
    assert kam.kamailio_db_url("postgresql://hotline:pw@db.example:5433/hotline?options=-csearch_path%3Dx") == \
        "postgres://hotline:pw@db.example:5433/hotline"
    assert kam.kamailio_db_url("postgres://postgres@127.0.0.1/test") == "postgres://postgres@127.0.0.1/test"
    for bad in ("sqlite:///var/hotline.sqlite3", "postgresql://host-only", ""):
        with pytest.raises(kam.KamailioError, match="PostgreSQL"):
            kam.kamailio_db_url(bad)


def test_location_table_sql_names_its_schema():
    sql = kam.location_table_sql("kamailio.location")
    assert sql.startswith("CREATE SCHEMA IF NOT EXISTS kamailio;")
    assert "CREATE TABLE IF NOT EXISTS kamailio.location (" in sql
    assert "CREATE SCHEMA" not in kam.location_table_sql("location")


def test_read_registrations_newest_contact_per_seat():
    class Cursor:
        def __init__(self):
            self.sql = ""

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def execute(self, sql):
            self.sql = sql

        def fetchall(self):
            return [("1001", "sip:1001@10.0.0.5:5060"), ("1002", "sip:1002@10.0.0.6:5060"),
                    ("1001", "sip:1001@10.0.0.9:5060")]

    cursor = Cursor()
    connection = type("Connection", (), {"cursor": lambda self: cursor})()
    assert kam.read_registrations(connection, "kamailio.location") == {
        "1001": "sip:1001@10.0.0.9:5060", "1002": "sip:1002@10.0.0.6:5060"}
    assert "FROM kamailio.location ORDER BY last_modified" in cursor.sql


def test_read_switch_asks_for_each_variable_and_names_a_missing_one():
    answers = {"hotline_sip_ip": "10.0.0.2", "internal_sip_port": "5060", "external_sip_ip": "10.0.0.2",
               "external_sip_port": "5080", "agent_password": "pw", "agent_extensions": "^(10[01][0-9])$"}
    switch, values = kam.read_switch("10.0.0.2:8021", lambda command: answers[command.split()[-1]])
    assert switch == kam.SwitchSip("10.0.0.2:8021", "10.0.0.2", 5080, "10.0.0.2", 5060)
    assert values["agent_password"] == "pw"
    with pytest.raises(kam.KamailioError, match="no agent_extensions"):
        kam.read_switch("x", lambda command: "-ERR no reply" if command.endswith("agent_extensions")
                        else answers[command.split()[-1]])


def test_dial_route():
    assert kam.dial_route(("10.0.0.9", 5060)) == "sofia/internal/{extension}@10.0.0.9:5060"


def test_kamailio_needs_one_shared_seat_password():
    """Should refuse to configure Kamailio while each seat has its own password (its configuration checks one for
    all), naming what to set; with the shared kind it reads the switches' common one."""
    from core.config import load_config
    from hotline.kamailio import settings_from

    base = {"secret_key": "k" * 40, "kamailio": "127.0.0.1:5070",
            "kamailio_db": "postgresql://kamailio@127.0.0.1:5432/k"}
    values = {"fs1": {"agent_extensions": "^(10[01][0-9])$", "agent_password": "a-long-seat-secret"}}
    with pytest.raises(kam.KamailioError, match="HOTLINE_FS_SEAT_PASSWORDS=shared"):
        settings_from(load_config(base), [], values)
    settings = settings_from(load_config({**base, "seat_passwords": "shared"}), [], values)
    assert settings.agent_password == "a-long-seat-secret"
