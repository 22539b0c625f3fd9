"""SMS settings read from the configuration's HOTLINE_SMS_* values (environment, or the instance file's
lower-case keys without the prefix), checked once at start."""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass

from channels.policy import QuietHours
from channels.sms import SmsInputError
from core.config import ConfigError


def _get(config, name: str, default: str = "") -> str:
    extra = config.extra
    value = extra.get(f"HOTLINE_{name}", extra.get(name.lower(), default))
    return str(value).strip()


def _int(config, name: str, default: int, low: int = 0) -> int:
    raw = _get(config, name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"HOTLINE_{name}: {raw!r} is not a whole number") from None
    if value < low:
        raise ConfigError(f"HOTLINE_{name}: must be at least {low}, got {value}")
    return value


@dataclass(frozen=True)
class SmsSettings:
    """How the app reaches Kannel and how Kannel reaches the app."""

    gateway: str  # smsbox's sendsms URL; "" with kannel="spawn": the product starts its own Kannel
    user: str
    password: str
    secret: str  # shared secret Kannel sends with inbound messages and delivery reports
    allow: tuple  # networks Kannel may call the app from
    dlr_base: str  # the app's URL as Kannel reaches it (for dlr-url and get-url)
    daily_cap: int
    quiet: QuietHours
    max_attempts: int
    kannel: str  # "spawn" (development: Kannel + fakesmsc under var/kannel), "external", or "off"
    poll_seconds: float
    app_url_given: bool = False  # HOTLINE_SMS_APP_URL set: keep it even when the web port is chosen at start

    @classmethod
    def from_config(cls, config) -> "SmsSettings":
        secret = _get(config, "SMS_SECRET")
        if not secret:
            if config.is_production:
                raise ConfigError("production mode needs HOTLINE_SMS_SECRET (at least 16 characters) for Kannel")
            # Stable across restarts, derived from the session key, never written anywhere.
            secret = hmac.new(config.secret_key.encode(), b"sms-gateway", hashlib.sha256).hexdigest()[:32]
        if len(secret) < 16 or any(c in secret for c in "\"&#= \n"):
            raise ConfigError("HOTLINE_SMS_SECRET: at least 16 characters, without quotes, spaces, '&', '#', '='")
        allow = []
        for item in _get(config, "SMS_ALLOW", "127.0.0.1,::1").split(","):
            if item.strip():
                try:
                    allow.append(ipaddress.ip_network(item.strip(), strict=False))
                except ValueError:
                    raise ConfigError(f"HOTLINE_SMS_ALLOW: {item.strip()!r} is not an address or network") from None
        try:
            quiet = QuietHours.parse(_get(config, "SMS_QUIET_HOURS", "21:00-08:00"))
        except SmsInputError as error:
            raise ConfigError(f"HOTLINE_SMS_QUIET_HOURS: {error}") from None
        gateway = _get(config, "SMS_GATEWAY")
        # Only `make run` (development) starts its own Kannel; tests and production name theirs or none.
        kannel = _get(config, "SMS_KANNEL", "external" if gateway else ("spawn" if config.mode == "development"
                                                                          else "off"))
        if kannel not in ("spawn", "external", "off"):
            raise ConfigError(f"HOTLINE_SMS_KANNEL: spawn, external or off, got {kannel!r}")
        host, port = config.http
        return cls(gateway=gateway, user=_get(config, "SMS_USER", "hotline"), password=_get(config, "SMS_PASSWORD"),
                   secret=secret, allow=tuple(allow),
                   dlr_base=_get(config, "SMS_APP_URL", f"http://{host}:{port}").rstrip("/"),
                   daily_cap=_int(config, "SMS_DAILY_CAP", 20), quiet=quiet,
                   max_attempts=_int(config, "SMS_MAX_ATTEMPTS", 30, low=1), kannel=kannel,
                   poll_seconds=float(_int(config, "SMS_POLL_SECONDS", 2, low=1)),
                   app_url_given=bool(_get(config, "SMS_APP_URL")))

    def allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.allow)
