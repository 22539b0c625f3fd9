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


def test_settings_from_each_seat_its_own_password_or_the_shared_one():
    """Should configure Kamailio for each seat's own password by default (the credentials table beside the
    location table, the configured realm, no shared password), and with the shared kind read the switches'
    common password, refusing switches that differ in it."""
    from core.config import load_config
    from hotline.kamailio import settings_from

    base = {"secret_key": "k" * 40, "kamailio": "127.0.0.1:5070",
            "kamailio_db": "postgresql://kamailio@127.0.0.1:5432/k", "kamailio_realm": "hotline.example"}
    values = {"fs1": {"agent_extensions": "^(10[01][0-9])$", "agent_password": "a-long-seat-secret"},
              "fs2": {"agent_extensions": "^(10[01][0-9])$", "agent_password": "another-seat-secret"}}
    own = settings_from(load_config(base), [], values)
    assert (own.subscriber_table, own.realm, own.agent_password) == ("kamailio.subscriber", "hotline.example", "")
    with pytest.raises(kam.KamailioError, match="differ"):
        settings_from(load_config({**base, "seat_passwords": "shared"}), [], values)
    settings = settings_from(load_config({**base, "seat_passwords": "shared"}), [], {"fs1": values["fs1"]})
    assert (settings.agent_password, settings.subscriber_table) == ("a-long-seat-secret", "")


def test_render_for_each_seat_its_own_password_defines_the_table_and_realm(tmp_path):
    """Should switch kamailio.cfg to auth_db (SEAT_PASSWORDS_OWN) with the credentials table and the realm, and
    write no shared password; a bad realm or table is refused."""
    kam.render_conf(settings(agent_password="", subscriber_table="kamailio.subscriber", realm="hotline"), tmp_path)
    local = (tmp_path / "hotline-local.cfg").read_text()
    assert ('#!define SEAT_PASSWORDS_OWN\n#!define SUBSCRIBER "kamailio.subscriber"\n#!define REALM "hotline"\n'
            in local)
    assert "#!define AGENT_PASSWORD" not in local and "${" not in local
    cfg = (tmp_path / "kamailio.cfg").read_text()
    assert "www_authorize(REALM, SUBSCRIBER)" in cfg and "proxy_authorize(REALM, SUBSCRIBER)" in cfg
    for changes, message in (({"realm": 'a"b'}, "realm"), ({"realm": ""}, "realm"),
                             ({"subscriber_table": "Sub; drop"}, "subscriber table")):
        with pytest.raises(kam.KamailioError, match=message):
            kam.render_conf(settings(**{"agent_password": "", "subscriber_table": "kamailio.subscriber",
                                        "realm": "hotline", **changes}), tmp_path / "bad")


def test_seat_ha1_is_the_digest_of_user_realm_password():
    """Should be md5 of seat:realm:password, what a phone's digest answer is checked against."""
    assert kam.seat_ha1("1001", "hotline", "pw") == "ee23a3ef8837337c8a452357a1435b9f"
    assert kam.seat_ha1("1001", "other", "pw") != kam.seat_ha1("1001", "hotline", "pw")


class _Rows:
    """A DB-API connection over a list of subscriber rows (id, username, domain, ha1), reading the statements
    write_subscribers sends."""

    def __init__(self, rows):
        self.rows, self.next_id, self.commits = [list(row) for row in rows], 100, 0

    def __enter__(self):
        return self

    def __exit__(self, kind, *exc):
        self.commits += kind is None
        return False

    def cursor(self):
        rows = self

        class Cursor:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def execute(self, sql, params=()):
                rows.execute(sql, params)

            def fetchall(self):
                return rows.found

        return Cursor()

    def execute(self, sql, params=()):
        if sql.startswith("SELECT"):
            self.found = [tuple(row) for row in self.rows]
        elif sql.startswith("DELETE"):
            self.rows = [row for row in self.rows if row[0] != params[0]]
        elif sql.startswith("INSERT"):
            self.next_id += 1
            self.rows.append([self.next_id, *params])
        elif sql.startswith("UPDATE"):
            for row in self.rows:
                if row[0] == params[1]:
                    row[3] = params[0]


def test_write_subscribers_keeps_exactly_the_seats_passwords_as_ha1():
    """Should add new seats, change a reset one, delete a seat gone and a row of another realm, leave the
    unchanged alone, store ha1 only and commit once."""
    import hashlib

    def ha1(user, password, realm="hotline"):
        return hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()

    connection = _Rows([(1, "1001", "hotline", ha1("1001", "old")), (2, "1002", "hotline", ha1("1002", "same")),
                        (3, "1003", "hotline", ha1("1003", "gone")),
                        (4, "1002", "other", ha1("1002", "same", "other"))])
    changed = kam.write_subscribers(connection, "kamailio.subscriber", "hotline",
                                    {"1001": "new", "1002": "same", "1004": "added"})
    assert changed == 4 and connection.commits == 1
    assert sorted((row[1], row[2], row[3]) for row in connection.rows) == [
        ("1001", "hotline", ha1("1001", "new")), ("1002", "hotline", ha1("1002", "same")),
        ("1004", "hotline", ha1("1004", "added"))]
    assert kam.write_subscribers(connection, "kamailio.subscriber", "hotline",
                                 {"1001": "new", "1002": "same", "1004": "added"}) == 0
    with pytest.raises(kam.KamailioError, match="realm"):
        kam.write_subscribers(connection, "kamailio.subscriber", "", {})


def test_subscriber_table_sql_names_its_schema():
    sql = kam.subscriber_table_sql("kamailio.subscriber")
    assert sql.startswith("CREATE SCHEMA IF NOT EXISTS kamailio;")
    assert "CREATE TABLE IF NOT EXISTS kamailio.subscriber (" in sql and "UNIQUE (username, domain)" in sql
