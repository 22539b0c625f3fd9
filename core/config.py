"""Configuration: embedded defaults, then an optional TOML instance file, then HOTLINE_* environment.

Tests pass a mapping to ``load_config`` instead of touching the environment.

Long because: each setting appears three times side by side, read together when one is added: its
``Config`` field and default, its HOTLINE_* name (``_ENV_KEYS``) and its coercion and checks
(``_coerce``, the parse_* helpers of composite values).
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""


@dataclass(frozen=True)
class EslEndpoint:
    """One FreeSWITCH event socket the app connects to (inbound mode)."""

    host: str
    port: int
    password: str

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


def parse_host_port(text: str, what: str) -> tuple[str, int]:
    """Split 'host:port' and validate the port."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{what}: expected host:port, got {text!r}")
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"{what}: port {port!r} is not a number") from None
    if not 0 <= number <= 65535:
        raise ConfigError(f"{what}: port {number} out of range")
    return host, number


def parse_esl(text: str) -> tuple[EslEndpoint, ...]:
    """Parse HOTLINE_ESL: one or more comma-separated host:port:password (several FreeSWITCH servers)."""
    endpoints = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        pieces = part.split(":", 2)
        # Errors name the entry with everything after the host hidden: it may hold the password (the log
        # and the terminal show this message).
        if len(pieces) != 3:
            raise ConfigError(f"HOTLINE_ESL: expected host:port:password, got {_masked_esl(part)}")
        try:
            host, port = parse_host_port(f"{pieces[0]}:{pieces[1]}", "HOTLINE_ESL")
        except ConfigError:
            raise ConfigError(f"HOTLINE_ESL: expected host:port:password with a port from 0 to 65535, "
                              f"got {_masked_esl(part)}") from None
        endpoints.append(EslEndpoint(host, port, pieces[2]))
    if not endpoints:
        raise ConfigError("HOTLINE_ESL: no endpoint given")
    return tuple(endpoints)


def _masked_esl(part: str) -> str:
    """An HOTLINE_ESL entry for an error message: its host, the rest replaced by its length."""
    host, sep, rest = part.partition(":")
    return repr(host) + (f" followed by {len(rest) + 1} hidden characters" if sep else "")


_HOST_NAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$")


def parse_peer_allow(value) -> tuple[str, ...]:
    """HOTLINE_OUTBOUND_ALLOW: who may connect to the outbound socket server, comma-separated addresses,
    networks (``10.0.0.0/24``) or host names (resolved when the server starts); a TOML list works too."""
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    entries = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            if not _HOST_NAME_RE.match(item):
                raise ConfigError(f"HOTLINE_OUTBOUND_ALLOW: {item!r} is not an address, a network or a host name") \
                    from None
        entries.append(item)
    if not entries:
        raise ConfigError("HOTLINE_OUTBOUND_ALLOW: no address given (leave it unset for the HOTLINE_ESL hosts)")
    return tuple(entries)


_WSS_RE = re.compile(r"^wss://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$")


def parse_softphone_wss(value) -> tuple[str, ...]:
    """HOTLINE_SOFTPHONE_WSS: the browser phone's ``wss://host[:port][/path]`` addresses, comma-separated (a
    TOML list works too); empty for none. Secure WebSocket only: browsers refuse a microphone to a page that
    mixes in plain ws, and the SIP password travels on it."""
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    urls = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        match = _WSS_RE.match(item)
        if not match or (match.group(2) and not 0 < int(match.group(2)[1:]) < 65536):
            raise ConfigError(f"HOTLINE_SOFTPHONE_WSS: {item!r} is not wss://host:port (FreeSWITCH's secure "
                              "WebSocket, freeswitch-conf internal_wss_port)")
        urls.append(item)
    return tuple(urls)


# A server's entry in HOTLINE_CROSS_SERVER_DIAL that forbids offering its agents to callers elsewhere.
NO_ROUTE = "off"


def parse_cross_server_dial(value) -> dict[str, str]:
    """HOTLINE_CROSS_SERVER_DIAL: how callers on other servers reach the agents of a server, overriding the
    route the app learns from that server (its hotline_peer_uri).

    ``host:port=template;host:port=template`` (the HOTLINE_ESL name of the agents' server; ``;`` because a
    template may hold commas) or a TOML table; a template contains ``{extension}``, or is ``off``.
    """
    if isinstance(value, str):
        pairs = []
        for part in value.split(";"):
            if part.strip():
                server, sep, template = part.partition("=")
                if not sep:
                    raise ConfigError(f"HOTLINE_CROSS_SERVER_DIAL: expected host:port=template, got {part!r}")
                pairs.append((server, template))
    else:
        pairs = list(dict(value).items())
    routes = {}
    for server, template in pairs:
        host, port = parse_host_port(str(server), "HOTLINE_CROSS_SERVER_DIAL")
        template = str(template).strip()
        if template != NO_ROUTE and "{extension}" not in template:
            raise ConfigError(f"HOTLINE_CROSS_SERVER_DIAL: the route to {server} must contain {{extension}} "
                              f"or be {NO_ROUTE!r}, got {template!r}")
        routes[f"{host}:{port}"] = template
    return routes


def parse_kamailio(value, what: str = "HOTLINE_KAMAILIO") -> tuple[str, int] | None:
    """HOTLINE_KAMAILIO (and _RPC): ``host:port``, or empty / ``off`` for none."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "off", "none")):
        return None
    if not isinstance(value, str):
        return tuple(value)
    host, port = parse_host_port(value, what)
    if not 0 < port < 65536 or not re.match(r"^[A-Za-z0-9.-]{1,253}$", host):
        raise ConfigError(f"{what}: expected host:port with an address or host name and a port, got {value!r}")
    return host, port


def parse_cidrs(value, what: str) -> tuple[str, ...]:
    """Comma-separated addresses or networks (a TOML list works too)."""
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    cidrs = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"{what}: {item!r} is not an address or a network (CIDR)") from None
        cidrs.append(item)
    return tuple(cidrs)


@dataclass(frozen=True)
class Config:
    """Everything the process needs to start; immutable once loaded."""

    database_url: str = "sqlite:///" + str(PROJECT_ROOT / "var" / "hotline.sqlite3")
    esl: tuple[EslEndpoint, ...] = (EslEndpoint("127.0.0.1", 8021, "ClueCon"),)
    outbound: tuple[str, int] = ("127.0.0.1", 8084)
    # Peers the outbound socket server serves (parse_peer_allow); empty: the hosts of ``esl``.
    outbound_allow: tuple[str, ...] = ()
    http: tuple[str, int] = ("127.0.0.1", 8080)
    secret_key: str = ""
    tz: str = "Asia/Shanghai"
    # "development" allows the embedded demo secret; "production" refuses to start without real ones.
    mode: str = "development"
    var_dir: Path = PROJECT_ROOT / "var"
    sounds_dir: Path = PROJECT_ROOT / "sounds"
    recordings_dir: Path = PROJECT_ROOT / "var" / "recordings"
    fax_dir: Path = PROJECT_ROOT / "var" / "fax"
    attachments_dir: Path = PROJECT_ROOT / "var" / "attachments"
    # Storage every node sees (core.shared_files): recordings, fax, attachments and sounds default under it.
    shared_dir: Path | None = None
    # Path under which FreeSWITCH sees sounds/ and var/ (same machine by default).
    switch_sounds_dir: str = ""
    switch_recordings_dir: str = ""
    max_calls: int = 1000
    prompt_rate: int = 8000
    load_demo: bool = True
    esl_api_timeout: float = 10.0
    # No HEARTBEAT from a switch for this long (FreeSWITCH sends one every 20 s): its connection is dead
    # even with the socket open; reconnect and reconcile (switch.inbound). 0: no watch.
    esl_heartbeat_timeout: float = 65.0
    # The web server's limits (webui.server): open connections, idle keep-alive, request head, and the file
    # descriptors it leaves free for calls.
    http_max_connections: int = 512
    http_idle_timeout: float = 30.0
    http_header_timeout: float = 10.0
    http_fd_reserve: int = 256
    # Database waits (core.db): PostgreSQL connect and statement_timeout; the longest wait for a lock
    # (PostgreSQL lock_timeout, SQLite's write lock, waited for cooperatively).
    db_connect_timeout: float = 10.0
    db_statement_timeout: float = 30.0
    db_lock_timeout: float = 10.0
    # ESL server name -> dial template from the other servers (parse_cross_server_dial); the rest learned.
    cross_server_dial: Mapping[str, str] = field(default_factory=dict)
    # The public website's limits (webui.blueprints.portal): submissions per address an hour and per phone
    # number a day, wrong query codes per case and per address in 30 minutes, wrong picture codes per
    # address an hour; SMS codes (when the SMS channel has a gateway): on or off, seconds between two codes
    # to one number, codes per number a day and per address an hour.
    portal_per_address: int = 5
    portal_per_phone: int = 5
    portal_lookup_limit: int = 10
    portal_lookup_limit_per_ip: int = 10
    portal_captcha_failures_per_ip: int = 20
    portal_sms_codes: bool = True
    portal_code_gap: int = 60
    portal_codes_per_phone: int = 5
    portal_codes_per_ip: int = 10
    # Seconds the public site's read pages are kept for anonymous visitors (webui.page_cache); 0: not kept.
    portal_page_cache_seconds: int = 5
    # Online chat on the website (acd.chat.ChatSettings): messages one side may send per window of seconds,
    # silence that ends an answered chat, how long a citizen's page may be gone, chats per address an hour.
    chat_rate_messages: int = 10
    chat_rate_seconds: float = 30.0
    chat_idle_seconds: float = 600.0
    chat_gone_seconds: float = 90.0
    chat_starts_per_ip: int = 10
    # Open311 GeoReport v2 (webui.blueprints.open311): the jurisdiction_id served, calls per minute from one
    # address and with one key, requests one key may file an hour, and the discovery document's contact and
    # key_service texts.
    open311_jurisdiction: str = "12345"
    open311_per_address: int = 60
    open311_per_key: int = 120
    open311_posts_per_hour: int = 200
    open311_contact: str = "12345 政务服务便民热线：拨打 12345 / the 12345 citizen service hotline: call 12345"
    open311_key_service: str = ("API 密钥由热线办系统管理员发放 / API keys are issued by the hotline centre's "
                                "administrator")
    # The agent desk's browser phone (webui.blueprints.softphone): the secure WebSocket address(es) of
    # FreeSWITCH's internal profile as the agents' browsers reach them (freeswitch-conf wss-binding), comma-
    # separated ``wss://host:port`` tried in order; empty: no browser phone, desk phones only. The seats' SIP
    # password is freeswitch-conf's agent_password, read from the same HOTLINE_FS_AGENT_PASSWORD FreeSWITCH
    # reads, so one environment keeps both in step.
    softphone_wss: tuple[str, ...] = ()
    agent_sip_password: str = ""
    # Seats' SIP passwords (acd.seats): "product", each seat its own, made by the product and rendered into the
    # folder FreeSWITCH's directory includes (seats_dir, default var/seats; freeswitch-conf hotline_seats_dir);
    # "shared", every seat agent_sip_password (development and the live tests only: production refuses it).
    # HOTLINE_FS_SEAT_PASSWORDS and HOTLINE_FS_SEATS_DIR, the variables FreeSWITCH reads too.
    seat_passwords: str = "product"
    seats_dir: Path | None = None
    # Kamailio, the SIP front door (docs/kamailio.md): its SIP address (host:port, None: no Kamailio, phones
    # register on the switches), its JSON-RPC address (default 127.0.0.1 and the SIP port + 1), the PostgreSQL
    # database holding its location table (default: the product's own), that table (schema.table), the carriers'
    # addresses it admits, and how often the ACD reads the registrations (seconds).
    kamailio: tuple[str, int] | None = None
    kamailio_rpc: tuple[str, int] | None = None
    kamailio_db: str = ""
    kamailio_location: str = "kamailio.location"
    # The digest realm of each seat's own password at Kamailio (part of the ha1 it keeps: changing it rewrites them).
    kamailio_realm: str = "hotline"
    kamailio_carriers: tuple[str, ...] = ("127.0.0.1/32",)
    kamailio_poll: float = 2.0
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.mode == "production"

    @property
    def outbound_peers(self) -> tuple[str, ...]:
        """Who may connect to the outbound socket server: HOTLINE_OUTBOUND_ALLOW, else the FreeSWITCH hosts."""
        return self.outbound_allow or tuple(dict.fromkeys(endpoint.host for endpoint in self.esl))

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)


_ENV_KEYS = {
    "HOTLINE_DATABASE_URL": "database_url",
    "HOTLINE_ESL": "esl",
    "HOTLINE_OUTBOUND": "outbound",
    "HOTLINE_OUTBOUND_ALLOW": "outbound_allow",
    "HOTLINE_HTTP": "http",
    "HOTLINE_SECRET_KEY": "secret_key",
    "HOTLINE_TZ": "tz",
    "HOTLINE_MODE": "mode",
    "HOTLINE_VAR_DIR": "var_dir",
    "HOTLINE_SOUNDS_DIR": "sounds_dir",
    "HOTLINE_RECORDINGS_DIR": "recordings_dir",
    "HOTLINE_FAX_DIR": "fax_dir",
    "HOTLINE_ATTACHMENTS_DIR": "attachments_dir",
    "HOTLINE_SHARED_DIR": "shared_dir",
    "HOTLINE_SWITCH_SOUNDS_DIR": "switch_sounds_dir",
    "HOTLINE_SWITCH_RECORDINGS_DIR": "switch_recordings_dir",
    "HOTLINE_MAX_CALLS": "max_calls",
    "HOTLINE_PROMPT_RATE": "prompt_rate",
    "HOTLINE_LOAD_DEMO": "load_demo",
    "HOTLINE_ESL_API_TIMEOUT": "esl_api_timeout",
    "HOTLINE_ESL_HEARTBEAT_TIMEOUT": "esl_heartbeat_timeout",
    "HOTLINE_HTTP_MAX_CONNECTIONS": "http_max_connections",
    "HOTLINE_HTTP_IDLE_TIMEOUT": "http_idle_timeout",
    "HOTLINE_HTTP_HEADER_TIMEOUT": "http_header_timeout",
    "HOTLINE_HTTP_FD_RESERVE": "http_fd_reserve",
    "HOTLINE_DB_CONNECT_TIMEOUT": "db_connect_timeout",
    "HOTLINE_DB_STATEMENT_TIMEOUT": "db_statement_timeout",
    "HOTLINE_DB_LOCK_TIMEOUT": "db_lock_timeout",
    "HOTLINE_CROSS_SERVER_DIAL": "cross_server_dial",
    "HOTLINE_PORTAL_PER_ADDRESS": "portal_per_address",
    "HOTLINE_PORTAL_PER_PHONE": "portal_per_phone",
    "HOTLINE_PORTAL_LOOKUP_LIMIT": "portal_lookup_limit",
    "HOTLINE_PORTAL_LOOKUP_LIMIT_PER_IP": "portal_lookup_limit_per_ip",
    "HOTLINE_PORTAL_CAPTCHA_FAILURES_PER_IP": "portal_captcha_failures_per_ip",
    "HOTLINE_PORTAL_SMS_CODES": "portal_sms_codes",
    "HOTLINE_PORTAL_CODE_GAP": "portal_code_gap",
    "HOTLINE_PORTAL_CODES_PER_PHONE": "portal_codes_per_phone",
    "HOTLINE_PORTAL_CODES_PER_IP": "portal_codes_per_ip",
    "HOTLINE_PORTAL_PAGE_CACHE_SECONDS": "portal_page_cache_seconds",
    "HOTLINE_CHAT_RATE_MESSAGES": "chat_rate_messages",
    "HOTLINE_CHAT_RATE_SECONDS": "chat_rate_seconds",
    "HOTLINE_CHAT_IDLE_SECONDS": "chat_idle_seconds",
    "HOTLINE_CHAT_GONE_SECONDS": "chat_gone_seconds",
    "HOTLINE_CHAT_STARTS_PER_IP": "chat_starts_per_ip",
    "HOTLINE_OPEN311_JURISDICTION": "open311_jurisdiction",
    "HOTLINE_OPEN311_PER_ADDRESS": "open311_per_address",
    "HOTLINE_OPEN311_PER_KEY": "open311_per_key",
    "HOTLINE_OPEN311_POSTS_PER_HOUR": "open311_posts_per_hour",
    "HOTLINE_OPEN311_CONTACT": "open311_contact",
    "HOTLINE_OPEN311_KEY_SERVICE": "open311_key_service",
    "HOTLINE_SOFTPHONE_WSS": "softphone_wss",
    "HOTLINE_FS_AGENT_PASSWORD": "agent_sip_password",
    "HOTLINE_FS_SEAT_PASSWORDS": "seat_passwords",
    "HOTLINE_FS_SEATS_DIR": "seats_dir",
    "HOTLINE_KAMAILIO": "kamailio",
    "HOTLINE_KAMAILIO_RPC": "kamailio_rpc",
    "HOTLINE_KAMAILIO_DB": "kamailio_db",
    "HOTLINE_KAMAILIO_LOCATION": "kamailio_location",
    "HOTLINE_KAMAILIO_REALM": "kamailio_realm",
    "HOTLINE_KAMAILIO_CARRIERS": "kamailio_carriers",
    "HOTLINE_KAMAILIO_POLL": "kamailio_poll",
}
_FIELD_NAMES = {f.name for f in dataclasses.fields(Config)}


def setting_names(*prefixes: str) -> dict[str, str]:
    """{HOTLINE_* name: Config field} of the settings whose name starts with one of ``prefixes``."""
    return {name: field_name for name, field_name in _ENV_KEYS.items() if name.startswith(prefixes)}


# Limits and timeouts that must be a positive number (whole where int); 0 or less would disable the guard.
_POSITIVE_NUMBERS = {"http_max_connections": int, "http_fd_reserve": int, "http_idle_timeout": float,
                     "http_header_timeout": float, "db_connect_timeout": float, "db_statement_timeout": float,
                     "db_lock_timeout": float,
                     **{name: int for name in ("portal_per_address", "portal_per_phone", "portal_lookup_limit",
                                               "portal_lookup_limit_per_ip", "portal_captcha_failures_per_ip",
                                               "portal_code_gap", "portal_codes_per_phone", "portal_codes_per_ip",
                                               "chat_rate_messages", "chat_starts_per_ip", "open311_per_address",
                                               "open311_per_key", "open311_posts_per_hour")},
                     **{name: float for name in ("chat_rate_seconds", "chat_idle_seconds", "chat_gone_seconds")}}
# Texts that must not be empty (an API answers with them).
_TEXTS = {"open311_jurisdiction": 100, "open311_contact": 500, "open311_key_service": 500}


def _positive(name: str, value, kind):
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {value!r} is not a {'whole ' if kind is int else ''}number") from None
    if not number > 0:
        raise ConfigError(f"{name}: must be more than 0, got {value!r}")
    return number


# Kamailio's names the product's settings give (a table, the digest realm): (pattern, what it must be).
_KAMAILIO_NAMES = {
    "kamailio_location": (r"^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$",
                          "schema.table or table in lower-case letters, digits and _"),
    "kamailio_realm": (r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$", "letters, digits, . and - (up to 63), as a host name"),
}


def _coerce(name: str, value):
    """Turn a raw string/TOML value into the field's type."""
    if name == "esl":
        return parse_esl(value) if isinstance(value, str) else tuple(value)
    if name in ("outbound", "http"):
        return parse_host_port(value, name) if isinstance(value, str) else tuple(value)
    if name in ("shared_dir", "seats_dir"):
        return Path(value) if str(value).strip() else None
    if name == "seat_passwords":
        if str(value) not in SEAT_PASSWORD_MODES:
            raise ConfigError(f"HOTLINE_FS_SEAT_PASSWORDS must be product (each seat its own password) or shared "
                              f"(one for all, development only), got {value!r}")
        return str(value)
    if name.endswith("_dir") and not name.startswith("switch_"):
        return Path(value)
    if name in ("max_calls", "prompt_rate"):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: {value!r} is not a whole number") from None
    if name in _POSITIVE_NUMBERS:
        return _positive(name, value, _POSITIVE_NUMBERS[name])
    if name == "portal_page_cache_seconds":  # 0 turns the kept pages off
        try:
            seconds = int(value)
        except (TypeError, ValueError):
            seconds = -1
        if seconds < 0:
            raise ConfigError(f"HOTLINE_PORTAL_PAGE_CACHE_SECONDS: {value!r} is not a whole number of seconds "
                              "(0 turns the kept pages off)")
        return seconds
    if name == "esl_api_timeout":
        return float(value)
    if name == "esl_heartbeat_timeout":
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"HOTLINE_ESL_HEARTBEAT_TIMEOUT: {value!r} is not a number") from None
        if seconds != 0 and not seconds >= 21:
            raise ConfigError(f"HOTLINE_ESL_HEARTBEAT_TIMEOUT: {value!r} is shorter than FreeSWITCH's 20 s "
                              "heartbeat interval (give at least 21 s, 3 missed beats: 65; 0 turns the watch off)")
        return seconds
    if name == "cross_server_dial":
        return parse_cross_server_dial(value)
    if name in ("kamailio", "kamailio_rpc"):
        return parse_kamailio(value, "HOTLINE_" + name.upper())
    if name == "kamailio_carriers":
        return parse_cidrs(value, "HOTLINE_KAMAILIO_CARRIERS")
    if name == "kamailio_poll":
        return _positive("HOTLINE_KAMAILIO_POLL", value, float)
    if name in _KAMAILIO_NAMES:
        pattern, meaning = _KAMAILIO_NAMES[name]
        text = str(value).strip()
        if not re.match(pattern, text):
            raise ConfigError(f"HOTLINE_{name.upper()}: {meaning}, got {text!r}")
        return text
    if name == "softphone_wss":
        return parse_softphone_wss(value)
    if name == "agent_sip_password":
        return str(value)
    if name == "outbound_allow":
        return parse_peer_allow(value)
    if name in ("load_demo", "portal_sms_codes"):
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
    if name in _TEXTS:
        text = str(value).strip()
        if not text or len(text) > _TEXTS[name]:
            raise ConfigError(f"HOTLINE_{name.upper()}: 1 to {_TEXTS[name]} characters, got {len(text)}")
        return text
    if name == "mode" and value not in ("development", "production", "test"):
        raise ConfigError(f"HOTLINE_MODE must be development, production or test, got {value!r}")
    return value


def load_config(mapping: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Build the Config.

    With ``mapping`` (tests) only the mapping applies over the defaults: keys are either field names or
    HOTLINE_* names. Otherwise the instance file named by HOTLINE_CONFIG (default var/hotline.toml, if
    present) applies, then the environment.
    """
    values: dict[str, object] = {}
    extra: dict[str, str] = {}

    def take(key: str, value) -> None:
        name = _ENV_KEYS.get(key, key)
        if name in _FIELD_NAMES and name != "extra":
            values[name] = _coerce(name, value)
        else:
            extra[key] = value

    if mapping is not None:
        for key, value in mapping.items():
            take(key, value)
    else:
        env = os.environ if environ is None else environ
        instance = Path(env.get("HOTLINE_CONFIG", PROJECT_ROOT / "var" / "hotline.toml"))
        if instance.is_file():
            with instance.open("rb") as handle:
                for key, value in tomllib.load(handle).items():
                    take(key, value)
        for key, value in env.items():
            if key in _ENV_KEYS:
                take(key, value)
            elif key.startswith("HOTLINE_") and key != "HOTLINE_CONFIG":
                extra[key] = value
    config = Config(**values, extra=extra)
    var_dir = config.var_dir
    # Derived directories follow var_dir unless set explicitly.
    derived = {}
    # With a shared path, the files every node must see go there (sounds too: the prompts), else under var_dir.
    files_dir = config.shared_dir or var_dir
    for name, sub in (("recordings_dir", "recordings"), ("fax_dir", "fax"), ("attachments_dir", "attachments")):
        if name not in values:
            derived[name] = files_dir / sub
    if config.shared_dir is not None and "sounds_dir" not in values:
        derived["sounds_dir"] = config.shared_dir / "sounds"
    if "database_url" not in values and "var_dir" in values:
        derived["database_url"] = "sqlite:///" + str(var_dir / "hotline.sqlite3")
    if config.seats_dir is None:
        derived["seats_dir"] = files_dir / "seats"
    if derived:
        config = config.replace(**derived)
    if config.softphone_wss and config.seat_passwords == "shared" and not config.agent_sip_password:
        raise ConfigError("HOTLINE_SOFTPHONE_WSS needs HOTLINE_FS_AGENT_PASSWORD: the seats' SIP password the "
                          "browser phone registers with (freeswitch-conf agent_password)")
    if config.kamailio is not None:
        config = _kamailio_defaults(config)
    unknown = sorted(set(config.cross_server_dial) - {endpoint.name for endpoint in config.esl})
    if unknown:
        raise ConfigError(f"HOTLINE_CROSS_SERVER_DIAL names {', '.join(unknown)}, not a server of HOTLINE_ESL")
    return _check_secrets(config)


def _kamailio_defaults(config: Config) -> Config:
    """With a Kamailio: its RPC address and database derived when not given; the database must be PostgreSQL
    (Kamailio's location table, usrloc db_mode 3)."""
    changes = {}
    if config.kamailio_rpc is None:
        changes["kamailio_rpc"] = ("127.0.0.1", config.kamailio[1] + 1 if config.kamailio[1] < 65535 else 65534)
    database = config.kamailio_db or config.database_url
    if not database.startswith(("postgresql://", "postgres://")):
        raise ConfigError("HOTLINE_KAMAILIO needs PostgreSQL for Kamailio's location table: set HOTLINE_KAMAILIO_DB "
                          "(postgresql://user:password@host:port/database) or run the product on PostgreSQL")
    changes["kamailio_db"] = database
    return config.replace(**changes)


# How seats get their SIP passwords (Config.seat_passwords).
SEAT_PASSWORD_MODES = ("product", "shared")
# Passwords FreeSWITCH ships with (ClueCon) and the placeholders of freeswitch-conf/vars.xml: a switch still
# answering to one of them lets anyone on its network drive it.
PLACEHOLDER_PASSWORDS = frozenset({"ClueCon", "change-this-esl-password", "change-this-agent-password",
                                   "change-this-peer-password", "changeme"})
# Development mode serves demo accounts with a known password: only on a loopback address unless this is set.
ALLOW_REMOTE_DEV = "HOTLINE_ALLOW_REMOTE_DEV"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost"; False for 0.0.0.0, other addresses and host names."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_secrets(config: Config) -> Config:
    """Refuse default secrets in production; generate a per-process key in development, which stays on
    loopback addresses unless HOTLINE_ALLOW_REMOTE_DEV is set."""
    if config.is_production:
        if len(config.secret_key) < 32:
            raise ConfigError("production mode needs HOTLINE_SECRET_KEY of at least 32 characters")
        for endpoint in config.esl:
            if endpoint.password in PLACEHOLDER_PASSWORDS:
                raise ConfigError(f"production mode refuses the shipped ESL password of {endpoint.name} "
                                  "(ClueCon or a placeholder of freeswitch-conf/vars.xml): set your own in "
                                  "HOTLINE_ESL and HOTLINE_FS_ESL_PASSWORD")
        # One password for every seat stays possible (development, the live tests), but
        # never the shipped placeholder nor a short one.
        if config.seat_passwords == "shared" and (len(config.agent_sip_password) < 12
                                                  or config.agent_sip_password in PLACEHOLDER_PASSWORDS):
            raise ConfigError("production mode refuses one shared seat password (HOTLINE_FS_SEAT_PASSWORDS=shared) "
                              "that is the placeholder of freeswitch-conf/vars.xml or shorter than 12 characters: "
                              "leave HOTLINE_FS_SEAT_PASSWORDS at product (each seat its own password, made by the "
                              "product), or set HOTLINE_FS_AGENT_PASSWORD, the same value FreeSWITCH has")
        record_key = str(config.extra.get("HOTLINE_RECORD_KEY", ""))
        if len(record_key) < 32 or record_key == config.secret_key:
            raise ConfigError("production mode needs HOTLINE_RECORD_KEY (the call-record MAC key) of at least "
                              "32 characters, different from HOTLINE_SECRET_KEY")
        return config
    if config.mode == "development" and str(config.extra.get(ALLOW_REMOTE_DEV, "")).lower() not in (
            "1", "true", "yes", "on"):
        for name, (host, _port) in (("HOTLINE_HTTP", config.http), ("HOTLINE_OUTBOUND", config.outbound)):
            if not is_loopback(host):
                raise ConfigError(f"development mode (demo accounts, known passwords) refuses {name} on the "
                                  f"non-loopback address {host}: bind to 127.0.0.1, use HOTLINE_MODE=production, "
                                  f"or set {ALLOW_REMOTE_DEV}=1 to serve development mode on the network anyway")
    if not config.secret_key:
        config = config.replace(secret_key=_development_secret(config.var_dir))
    return config


def _development_secret(var_dir: Path) -> str:
    """A random key kept in var/ so sessions survive restarts during development."""
    path = var_dir / "secret_key"
    try:
        if path.is_file():
            text = path.read_text().strip()
            if text:
                return text
        var_dir.mkdir(parents=True, exist_ok=True)
        text = secrets.token_hex(32)
        path.write_text(text)
        path.chmod(0o600)
        return text
    except OSError:
        return secrets.token_hex(32)
