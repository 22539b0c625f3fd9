"""Kamailio, the SIP front door in front of the FreeSWITCH servers (docs/kamailio.md): its configuration
(kamailio-conf/ filled in for the configured switches) and the registrations the ACD reads from its location
table.

Kamailio is the registrar of agents' desk phones, with its contacts in PostgreSQL only (usrloc db_mode 3): they
survive a restart of Kamailio, two Kamailio servers share them, and the app reads the same table. A phone
registered there is reached from any FreeSWITCH by ``sofia/internal/<extension>@<Kamailio>`` (``dial_route``);
the ACD marks such agents with the server name ``REGISTRAR``.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
import shutil
import string
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from core.config import PROJECT_ROOT

__all__ = ["REGISTRAR", "SwitchSip", "KamailioSettings", "KamailioError", "render_conf", "kamailio_db_url",
           "location_table_sql", "read_registrations", "dial_route", "seat_regex", "KAMAILIO_BINARY",
           "subscriber_table", "subscriber_table_sql", "seat_ha1", "write_subscribers"]

CONF_DIR = PROJECT_ROOT / "kamailio-conf"
KAMAILIO_BINARY = "/usr/sbin/kamailio"
# The Agent.server of a phone registered through Kamailio (not a FreeSWITCH: reachable from every one).
REGISTRAR = "kamailio"

_TABLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$")
# Characters a password may hold in kamailio.cfg (a string that is also a pseudo-variable format: no $, no
# quote, no backslash) and in FreeSWITCH's XML.
_PASSWORD_RE = re.compile(r"^[A-Za-z0-9._~!%^&*()+=@#:,/?\[\]{}|<>-]{1,64}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
# The digest realm of each seat's own password (it is part of the stored ha1): a host-name-like word.
_REALM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$")


class KamailioError(ValueError):
    """A value Kamailio's configuration cannot carry, or a switch that does not say what it needs."""


@dataclass(frozen=True)
class SwitchSip:
    """One FreeSWITCH as Kamailio sees it: where calls for the hotline go (its external profile, which admits
    Kamailio by address like a carrier) and where it rings seats from (its internal profile)."""

    name: str
    call_host: str
    call_port: int
    ring_host: str
    ring_port: int


@dataclass(frozen=True)
class KamailioSettings:
    """What kamailio-conf/hotline-local.cfg.template and the lists need."""

    sip: tuple[str, int]
    rpc: tuple[str, int]
    db_url: str                       # Kamailio's form, postgres://user:password@host:port/database
    switches: tuple[SwitchSip, ...]
    seat_re: str                      # POSIX extended regular expression of the seats' extensions
    agent_password: str               # the one password of every seat (shared mode); "" with subscriber_table
    carriers: tuple[str, ...] = ()    # CIDRs whose calls are admitted without authentication
    location_table: str = "kamailio.location"
    auth_secret: str = ""
    ping_interval: int = 2
    fr_timer: int = 2000
    pike_density: int = 30
    max_expires: int = 300
    # Each seat its own password (HOTLINE_FS_SEAT_PASSWORDS=product): auth_db checks the ha1 the product keeps
    # in this table (write_subscribers) for the digest realm ``realm``; "" = the shared AGENT_PASSWORD.
    subscriber_table: str = ""
    realm: str = ""


def _check_host(what: str, host: str) -> str:
    if not _HOST_RE.match(host or ""):
        raise KamailioError(f"{what}: {host!r} is not an address or host name")
    return host


def _check_port(what: str, port) -> int:
    try:
        number = int(port)
    except (TypeError, ValueError):
        raise KamailioError(f"{what}: port {port!r} is not a number") from None
    if not 0 < number < 65536:
        raise KamailioError(f"{what}: port {number} out of range")
    return number


def seat_regex(agent_extensions: str) -> str:
    """FreeSWITCH's agent_extensions (PCRE) as the POSIX extended expression Kamailio's ``=~`` reads: ``\\d``
    becomes ``[0-9]``; anything else with a backslash, a quote or a ``$`` inside is refused."""
    text = (agent_extensions or "").strip().replace("\\d", "[0-9]")
    if not text:
        raise KamailioError("the seats' expression (FreeSWITCH agent_extensions) is empty")
    body = text[:-1] if text.endswith("$") else text
    if "\\" in text or '"' in text or "$" in body:
        raise KamailioError(f"the seats' expression {agent_extensions!r} uses what Kamailio's POSIX expressions "
                            "do not read (write digits as [0-9])")
    try:
        re.compile(text)
    except re.error as exc:
        raise KamailioError(f"the seats' expression {agent_extensions!r} is not a regular expression: {exc}") \
            from None
    return text


def kamailio_db_url(url: str) -> str:
    """A PostgreSQL URL (``postgresql://`` or ``postgres://``) in the form db_postgres reads; query options
    (a search_path, sslmode) are dropped: Kamailio takes none, its table is named with its schema."""
    parts = urllib.parse.urlsplit((url or "").strip())
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not parts.path.strip("/"):
        raise KamailioError("Kamailio's database must be PostgreSQL, postgresql://user:password@host:port/database "
                            "(HOTLINE_KAMAILIO_DB, or the product's own HOTLINE_DATABASE_URL)")
    netloc = parts.netloc.rsplit("@", 1)
    credentials = netloc[0] + "@" if len(netloc) == 2 else ""
    if '"' in credentials or "\\" in credentials:
        raise KamailioError("Kamailio's database URL: the user or password holds a quote or a backslash")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    port = f":{parts.port}" if parts.port else ""
    return f"postgres://{credentials}{host}{port}/{parts.path.strip('/')}"


def location_table(name: str, what: str = "location table") -> str:
    """``schema.table`` or ``table``, lower-case letters, digits and underscores."""
    if not _TABLE_RE.match(name or ""):
        raise KamailioError(f"{what} {name!r}: lower-case letters, digits and _, as schema.table or table")
    return name


def subscriber_table(name: str) -> str:
    """The seats' credentials table, named like the location table."""
    return location_table(name, "subscriber table")


def _carrier_line(cidr: str) -> str:
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        raise KamailioError(f"carrier address {cidr!r} is not an address or a network (CIDR)") from None
    address = f"[{network.network_address}]" if network.version == 6 else str(network.network_address)
    return f"1 {address} {network.prefixlen} 0"


def _values(settings: KamailioSettings, directory: Path) -> dict[str, str]:
    sip_host = _check_host("Kamailio's SIP address", settings.sip[0])
    rpc_host = _check_host("Kamailio's RPC address", settings.rpc[0])
    sip_port = _check_port("Kamailio's SIP port", settings.sip[1])
    rpc_port = _check_port("Kamailio's RPC port", settings.rpc[1])
    if (sip_host, sip_port) == (rpc_host, rpc_port):
        raise KamailioError("Kamailio's RPC port must differ from its SIP port")
    seat_auth = _seat_auth(settings)
    if not settings.switches:
        raise KamailioError("no FreeSWITCH to send calls to")
    if not settings.db_url.startswith("postgres://") or '"' in settings.db_url:
        raise KamailioError("Kamailio's database URL must be postgres://... (kamailio_db_url)")
    for name in ("ping_interval", "fr_timer", "pike_density", "max_expires"):
        if int(getattr(settings, name)) <= 0:
            raise KamailioError(f"Kamailio {name} must be more than 0")
    secret = settings.auth_secret or secrets.token_hex(16)
    if not re.match(r"^[A-Za-z0-9]{16,64}$", secret):
        raise KamailioError("Kamailio's auth secret: 16 to 64 letters and digits")
    return {
        "generated_for": ", ".join(s.name for s in settings.switches),
        "sip_ip": sip_host, "sip_port": str(sip_port), "rpc_ip": rpc_host, "rpc_port": str(rpc_port),
        "db_url": settings.db_url, "location_table": location_table(settings.location_table),
        "seat_re": seat_regex(settings.seat_re), "seat_auth": seat_auth,
        "auth_secret": secret,
        "dispatcher_list": str(directory / "dispatcher.list"), "address_file": str(directory / "address.list"),
        "ping_interval": str(int(settings.ping_interval)), "fr_timer": str(int(settings.fr_timer)),
        "pike_density": str(int(settings.pike_density)), "max_expires": str(int(settings.max_expires)),
    }


def _seat_auth(settings: KamailioSettings) -> str:
    """The #!define lines of how seats authenticate: each its own password (auth_db on the subscriber table, in
    the realm its ha1 was made for) or the one shared password."""
    if settings.subscriber_table:
        realm = check_realm(settings.realm)
        return (f'#!define SEAT_PASSWORDS_OWN\n#!define SUBSCRIBER "{subscriber_table(settings.subscriber_table)}"\n'
                f'#!define REALM "{realm}"')
    if not _PASSWORD_RE.match(settings.agent_password or ""):
        raise KamailioError("the seats' SIP password (FreeSWITCH agent_password) must be 1 to 64 letters, digits "
                            "or punctuation other than $, quotes, backslash and spaces")
    return f'#!define AGENT_PASSWORD "{settings.agent_password}"'


def check_realm(realm: str) -> str:
    """The digest realm of the seats' own passwords: letters, digits, dots and hyphens, up to 63."""
    if not _REALM_RE.match(realm or ""):
        raise KamailioError(f"Kamailio's realm {realm!r}: letters, digits, . and - (up to 63), as a host name")
    return realm


def dispatcher_list(settings: KamailioSettings) -> str:
    """Set 1: the switches' external profiles, where Kamailio sends the hotline's calls."""
    lines = ["# set destination flags priority attributes: the FreeSWITCH servers (their external profile)"]
    seen = set()
    for switch in settings.switches:
        target = (_check_host(f"{switch.name}: external_sip_ip", switch.call_host),
                  _check_port(f"{switch.name}: external_sip_port", switch.call_port))
        if target in seen:
            raise KamailioError(f"two switches share the SIP address {target[0]}:{target[1]}")
        seen.add(target)
        lines.append(f"1 sip:{target[0]}:{target[1]} 0 0 name={switch.name.replace(':', '_')}")
    return "\n".join(lines) + "\n"


def address_list(settings: KamailioSettings) -> str:
    """permissions' address file: group 1 the carriers (any port), group 2 the switches' internal profiles (by
    address and port: what rings a seat)."""
    lines = ["# group address mask port: 1 = carriers, 2 = the FreeSWITCH servers' internal profiles"]
    lines += [_carrier_line(cidr) for cidr in settings.carriers if cidr.strip()]
    for switch in settings.switches:
        host = _check_host(f"{switch.name}: hotline_sip_ip", switch.ring_host)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise KamailioError(f"{switch.name}: hotline_sip_ip {host!r} must be an address (Kamailio admits the "
                                "switch by it)") from None
        lines.append(f"2 {host} 32 {_check_port(f'{switch.name}: internal_sip_port', switch.ring_port)}")
    return "\n".join(lines) + "\n"


def render_conf(settings: KamailioSettings, directory: Path, conf_dir: Path = CONF_DIR) -> Path:
    """kamailio-conf/ filled in for ``settings`` into ``directory``: kamailio.cfg (as shipped), hotline-local.cfg
    (the site's values, mode 0600), dispatcher.list and address.list. Returns kamailio.cfg's path."""
    directory = Path(directory).resolve()
    values = _values(settings, directory)
    local = string.Template((conf_dir / "hotline-local.cfg.template").read_text(encoding="utf-8")).substitute(values)
    ds_text, address_text = dispatcher_list(settings), address_list(settings)
    directory.mkdir(parents=True, exist_ok=True)
    local_path = directory / "hotline-local.cfg"
    local_path.touch(mode=0o600)
    local_path.chmod(0o600)
    local_path.write_text(local, encoding="utf-8")
    (directory / "dispatcher.list").write_text(ds_text, encoding="utf-8")
    (directory / "address.list").write_text(address_text, encoding="utf-8")
    cfg = directory / "kamailio.cfg"
    shutil.copyfile(conf_dir / "kamailio.cfg", cfg)
    return cfg


# Debian's /usr/share/kamailio/postgres/usrloc-create.sql (location table version 9), named with its schema.
_LOCATION_SQL = """
CREATE TABLE IF NOT EXISTS {table} (
    id SERIAL PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    contact VARCHAR(512) DEFAULT '' NOT NULL,
    received VARCHAR(128) DEFAULT NULL,
    path VARCHAR(512) DEFAULT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
    q REAL DEFAULT 1.0 NOT NULL,
    callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
    cseq INTEGER DEFAULT 1 NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    cflags INTEGER DEFAULT 0 NOT NULL,
    user_agent VARCHAR(255) DEFAULT '' NOT NULL,
    socket VARCHAR(64) DEFAULT NULL,
    methods INTEGER DEFAULT NULL,
    instance VARCHAR(255) DEFAULT NULL,
    reg_id INTEGER DEFAULT 0 NOT NULL,
    server_id INTEGER DEFAULT 0 NOT NULL,
    connection_id INTEGER DEFAULT 0 NOT NULL,
    keepalive INTEGER DEFAULT 0 NOT NULL,
    partition INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT {name}_ruid_idx UNIQUE (ruid)
);
CREATE INDEX IF NOT EXISTS {name}_account_contact_idx ON {table} (username, domain, contact);
CREATE INDEX IF NOT EXISTS {name}_expires_idx ON {table} (expires);
CREATE INDEX IF NOT EXISTS {name}_connection_idx ON {table} (server_id, connection_id);
"""


def location_table_sql(table: str) -> str:
    """The statements that create Kamailio's location table (and its schema) when missing."""
    table = location_table(table)
    schema, _, name = table.rpartition(".")
    head = f"CREATE SCHEMA IF NOT EXISTS {schema};\n" if schema else ""
    return head + _LOCATION_SQL.format(table=table, name=name)


def read_registrations(connection, table: str) -> dict[str, str]:
    """{extension: contact} of the phones registered now, from Kamailio's location table over a DB-API
    ``connection`` (psycopg2). Expired rows are Kamailio's to delete (every 10 s, kamailio.cfg); a phone with
    several contacts gives its newest."""
    table = location_table(table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT username, contact FROM {table} ORDER BY last_modified, id")  # noqa: S608 - checked name
        rows = cursor.fetchall()
    return {str(username): str(contact) for username, contact in rows}


def dial_route(sip: tuple[str, int]) -> str:
    """How a FreeSWITCH rings a seat through Kamailio: its internal profile, to Kamailio's address."""
    host, port = _check_host("Kamailio's SIP address", sip[0]), _check_port("Kamailio's SIP port", sip[1])
    return f"sofia/internal/{{extension}}@{host}:{port}"


# The switch's variables (freeswitch-conf/vars.xml) Kamailio's configuration is made from.
SWITCH_VARIABLES = ("hotline_sip_ip", "internal_sip_port", "external_sip_ip", "external_sip_port", "agent_password",
                    "agent_extensions")


def read_switch(name: str, api) -> tuple[SwitchSip, dict[str, str]]:
    """Ask a running FreeSWITCH (``api(command) -> reply``, its inbound connection) for its SIP addresses and
    seats: (its SwitchSip, {variable: value}). KamailioError when it does not have one of them."""
    from switch import commands

    values = {}
    for variable in SWITCH_VARIABLES:
        reply = (api(commands.global_getvar(variable)) or "").strip()
        if not reply or reply.startswith("-ERR"):
            raise KamailioError(f"{name}: the switch has no {variable} (a configuration older than freeswitch-conf/?)")
        values[variable] = reply
    switch = SwitchSip(name, values["external_sip_ip"], _check_port(f"{name}: external_sip_port",
                                                                    values["external_sip_port"]),
                       values["hotline_sip_ip"], _check_port(f"{name}: internal_sip_port", values["internal_sip_port"]))
    return switch, values


# Debian's /usr/share/kamailio/postgres/auth_db-create.sql (subscriber version 7), named with its schema. The
# product keeps only ha1 (md5 of user:realm:password); the plaintext column stays empty.
_SUBSCRIBER_SQL = """
CREATE TABLE IF NOT EXISTS {table} (
    id SERIAL PRIMARY KEY NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT '' NOT NULL,
    password VARCHAR(64) DEFAULT '' NOT NULL,
    ha1 VARCHAR(128) DEFAULT '' NOT NULL,
    ha1b VARCHAR(128) DEFAULT '' NOT NULL,
    CONSTRAINT {name}_account_idx UNIQUE (username, domain)
);
CREATE INDEX IF NOT EXISTS {name}_username_idx ON {table} (username);
"""


def subscriber_table_sql(table: str) -> str:
    """The statements that create the seats' credentials table (and its schema) when missing."""
    table = subscriber_table(table)
    schema, _, name = table.rpartition(".")
    head = f"CREATE SCHEMA IF NOT EXISTS {schema};\n" if schema else ""
    return head + _SUBSCRIBER_SQL.format(table=table, name=name)


def seat_ha1(extension: str, realm: str, password: str) -> str:
    """HA1 of digest authentication, md5(user:realm:password), what auth_db compares (calculate_ha1 0)."""
    return hashlib.md5(f"{extension}:{realm}:{password}".encode("utf-8"), usedforsecurity=False).hexdigest()


def write_subscribers(connection, table: str, realm: str, passwords: dict[str, str]) -> int:
    """Make the credentials table hold exactly ``{extension: password}`` (as ha1 in ``realm``) over a DB-API
    ``connection`` (psycopg2), in one transaction: changed seats updated, new ones added, every other row (a
    seat gone, another realm) deleted. Returns how many rows changed."""
    table, realm = subscriber_table(table), check_realm(realm)
    wanted = {extension: seat_ha1(extension, realm, password) for extension, password in passwords.items()}
    changed = 0
    with connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT id, username, domain, ha1 FROM {table}")  # noqa: S608 - checked name
        have = {}
        for row_id, username, domain, ha1 in cursor.fetchall():
            if domain == realm and username in wanted and username not in have:
                have[username] = (row_id, ha1)
            else:
                cursor.execute(f"DELETE FROM {table} WHERE id = %s", (row_id,))  # noqa: S608 - checked name
                changed += 1
        for extension, ha1 in sorted(wanted.items()):
            if extension not in have:
                cursor.execute(f"INSERT INTO {table} (username, domain, ha1) VALUES (%s, %s, %s)",  # noqa: S608
                               (extension, realm, ha1))
                changed += 1
            elif have[extension][1] != ha1:
                cursor.execute(f"UPDATE {table} SET ha1 = %s WHERE id = %s", (ha1, have[extension][0]))  # noqa: S608
                changed += 1
    return changed
