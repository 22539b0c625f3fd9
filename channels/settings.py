"""SMS settings read from the configuration's HOTLINE_SMS_* values (environment, or the instance file's
lower-case keys without the prefix), checked once at start."""
from __future__ import annotations

import datetime as dt
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


def _duty_phones(config) -> tuple:
    """HOTLINE_DUTY_PHONES: comma-separated mainland mobile numbers; anything else is refused at start."""
    from channels import sms

    phones = []
    for item in _get(config, "DUTY_PHONES").replace("，", ",").split(","):
        if not item.strip():
            continue
        number = sms.mobile_number(item)
        if number is None:
            raise ConfigError(f"HOTLINE_DUTY_PHONES: {item.strip()[:32]!r} is not a mobile number")
        if number not in phones:
            phones.append(number)
    return tuple(phones)


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
    duty_phones: tuple = ()  # HOTLINE_DUTY_PHONES: the duty leader's mobiles, where alarms go
    concurrency: int = 8  # HOTLINE_SMS_CONCURRENCY: sendsms calls to Kannel at once
    rate: float = 200.0  # HOTLINE_SMS_RATE: messages a second handed to Kannel at most (0: no limit)

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
                   app_url_given=bool(_get(config, "SMS_APP_URL")), duty_phones=_duty_phones(config),
                   concurrency=_int(config, "SMS_CONCURRENCY", 8, low=1),
                   rate=float(_int(config, "SMS_RATE", 200)))

    def allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.allow)


@dataclass(frozen=True)
class EmailSettings:
    """How the app reaches its mailbox (IMAP in) and its mail server (SMTP out), and the limits it applies.
    ``enabled`` is False when neither server is named: in development the e-mail channel is then off."""

    imap_host: str
    imap_port: int
    imap_user: str
    imap_password: str
    imap_folder: str  # where new mail arrives
    done_folder: str  # where processed mail is moved (a restart never reads it again)
    imap_tls: str  # "ssl" (IMAPS), "starttls" or "none"
    smtp_host: str
    smtp_port: int
    smtp_user: str
    smtp_password: str
    smtp_tls: str  # "ssl", "starttls" or "none"
    from_address: str
    max_message_bytes: int  # a larger mail is read by its headers only
    max_attachment_bytes: int  # a larger attachment is not stored; the ticket says so
    max_attachments: int
    flood_per_hour: int  # mails from one sender per hour before the rest is held and the centre alarmed
    poll_seconds: float  # IMAP poll when the server offers no IDLE, and the longest IDLE wait
    daily_cap: int  # e-mails to one address per day (the outbox's rule)
    max_attempts: int
    quiet: QuietHours = QuietHours(dt.time(0), dt.time(0))  # no quiet hours for e-mail
    concurrency: int = 2  # HOTLINE_EMAIL_CONCURRENCY: SMTP sessions at once
    rate: float = 10.0  # HOTLINE_EMAIL_RATE: mails a second at most (0: no limit)

    @property
    def inbound(self) -> bool:
        return bool(self.imap_host and self.imap_user)

    @property
    def outbound(self) -> bool:
        return bool(self.smtp_host and self.from_address)

    @property
    def enabled(self) -> bool:
        return self.inbound or self.outbound

    @property
    def domain(self) -> str:
        return self.from_address.rsplit("@", 1)[-1] if "@" in self.from_address else "hotline.invalid"

    @classmethod
    def from_config(cls, config) -> "EmailSettings":
        def tls(name: str, default: str) -> str:
            value = _get(config, name, default).lower()
            if value not in ("ssl", "starttls", "none"):
                raise ConfigError(f"HOTLINE_{name}: ssl, starttls or none, got {value!r}")
            return value

        imap_tls, smtp_tls = tls("EMAIL_IMAP_TLS", "ssl"), tls("EMAIL_SMTP_TLS", "starttls")
        from_address = _get(config, "EMAIL_FROM")
        if from_address and ("@" not in from_address or any(c in from_address for c in "\r\n<>, ")):
            raise ConfigError(f"HOTLINE_EMAIL_FROM: one address like 12345@example.gov.cn, got {from_address!r}")
        settings = cls(
            imap_host=_get(config, "EMAIL_IMAP_HOST"),
            imap_port=_int(config, "EMAIL_IMAP_PORT", 993 if imap_tls == "ssl" else 143, low=1),
            imap_user=_get(config, "EMAIL_IMAP_USER"), imap_password=_get(config, "EMAIL_IMAP_PASSWORD"),
            imap_folder=_get(config, "EMAIL_IMAP_FOLDER", "INBOX"),
            done_folder=_get(config, "EMAIL_DONE_FOLDER", "Processed"), imap_tls=imap_tls,
            smtp_host=_get(config, "EMAIL_SMTP_HOST"),
            smtp_port=_int(config, "EMAIL_SMTP_PORT", {"ssl": 465, "starttls": 587, "none": 25}[smtp_tls], low=1),
            smtp_user=_get(config, "EMAIL_SMTP_USER"), smtp_password=_get(config, "EMAIL_SMTP_PASSWORD"),
            smtp_tls=smtp_tls, from_address=from_address,
            max_message_bytes=_int(config, "EMAIL_MAX_MESSAGE_MB", 64, low=1) * 1024 * 1024,
            max_attachment_bytes=_int(config, "EMAIL_MAX_ATTACHMENT_MB", 20, low=1) * 1024 * 1024,
            max_attachments=_int(config, "EMAIL_MAX_ATTACHMENTS", 10),
            flood_per_hour=_int(config, "EMAIL_FLOOD_PER_HOUR", 20, low=1),
            poll_seconds=float(_int(config, "EMAIL_POLL_SECONDS", 30, low=1)),
            daily_cap=_int(config, "EMAIL_DAILY_CAP", 50), max_attempts=_int(config, "EMAIL_MAX_ATTEMPTS", 30, low=1),
            concurrency=_int(config, "EMAIL_CONCURRENCY", 2, low=1), rate=float(_int(config, "EMAIL_RATE", 10)))
        if settings.imap_host and not settings.imap_user:
            raise ConfigError("HOTLINE_EMAIL_IMAP_HOST is set: HOTLINE_EMAIL_IMAP_USER is needed too")
        if settings.smtp_host and not from_address:
            raise ConfigError("HOTLINE_EMAIL_SMTP_HOST is set: HOTLINE_EMAIL_FROM is needed too")
        return settings
