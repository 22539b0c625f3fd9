"""Website verification codes (issue 11 item 1, issue 12 item 2): a citizen confirms a mobile number with a
6-digit code sent by SMS through the outbox (urgent: quiet hours do not hold it). Only a keyed hash of the
code is stored; a code lives 10 minutes, allows 5 tries and is good for one use; sending is limited per
number and per address. The website (webui.blueprints.portal) calls ``request_code`` and ``confirm``."""
from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from typing import Optional

from caseflow.services import to_db
from channels import sms
from channels.models import VerifyCode
from channels.outbox import enqueue
from core import secret_codes
from core.clock import Clock
from core.db import database

log = logging.getLogger(__name__)

PURPOSES = ("write", "follow", "chat")  # the write-in form, following by phone, online chat
CODE_DIGITS = 6
LIFETIME = dt.timedelta(minutes=10)
MAX_TRIES = 5


class VerifyError(ValueError):
    """A code refused or not sent; ``str()`` says why (zh / en), ``status`` is the HTTP status to answer
    with and ``retry_after`` the seconds to wait when a limit was hit."""

    def __init__(self, message: str, status: int = 400, retry_after: int = 0):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


@dataclass(frozen=True)
class SendLimits:
    """How often codes may be sent: one per number per ``gap``, ``per_phone`` per number a day,
    ``per_address`` from one address an hour."""

    gap: dt.timedelta = dt.timedelta(seconds=60)
    per_phone: int = 5
    per_address: int = 10


def enabled(sms_settings) -> bool:
    """Codes go out only when the SMS channel has a gateway (otherwise the website keeps its CAPTCHA)."""
    return sms_settings is not None and sms_settings.kannel != "off"


def mobile(raw: str) -> str:
    """The number as stored (digits, no +86), or VerifyError when it is no mobile number an SMS reaches."""
    number = sms.mobile_number(raw)
    if number is None:
        raise VerifyError("请填写正确的手机号码 / give a valid mobile number")
    return number


def _hash(key: bytes, row_salt: str, phone: str, purpose: str, code: str) -> str:
    return f"{row_salt}${secret_codes.keyed_digest(key, row_salt, phone, purpose, code)}"


def _check_limits(phone: str, ip: str, now: dt.datetime, limits: SendLimits) -> None:
    last = (VerifyCode.select(VerifyCode.created_at).where(VerifyCode.phone == phone)
            .order_by(VerifyCode.created_at.desc()).first())
    if last is not None and last.created_at > to_db(now - limits.gap):
        wait = int((last.created_at - to_db(now - limits.gap)).total_seconds()) + 1
        raise VerifyError(f"验证码已发送，请{wait}秒后再试 / a code was just sent: try again in {wait} s", 429, wait)
    day = VerifyCode.select().where((VerifyCode.phone == phone)
                                    & (VerifyCode.created_at > to_db(now - dt.timedelta(days=1)))).count()
    if day >= limits.per_phone:
        raise VerifyError("该号码今日获取验证码次数已达上限，请明天再试或拨打12345 / this number has had "
                          "today's codes: try tomorrow or call 12345", 429, 3600)
    if ip and VerifyCode.select().where((VerifyCode.ip == ip) & (VerifyCode.created_at > to_db(
            now - dt.timedelta(hours=1)))).count() >= limits.per_address:
        raise VerifyError("获取验证码过于频繁，请稍后再试 / too many codes from this address: try again later",
                          429, 3600)


def request_code(phone: str, purpose: str, *, key: bytes, ip: str = "", sms_settings=None,
                 limits: SendLimits = SendLimits(), clock: Optional[Clock] = None, lang: str = "zh") -> VerifyCode:
    """Make a code for ``phone`` and queue its SMS (urgent). Earlier unused codes for the same number and
    purpose stop working. Raises VerifyError (bad number, a limit hit)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    clock = clock or Clock()
    phone = mobile(phone)
    now = clock.now()
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    with database.atomic():
        _check_limits(phone, ip, now, limits)
        VerifyCode.update(used_at=to_db(now)).where(
            (VerifyCode.phone == phone) & (VerifyCode.purpose == purpose) & VerifyCode.used_at.is_null()).execute()
        row = VerifyCode.create(phone=phone, purpose=purpose, code_hash="-", ip=ip[:64], created_at=to_db(now),
                                expires_at=to_db(now + LIFETIME))
        VerifyCode.update(code_hash=_hash(key, f"{row.id}.{secrets.token_hex(4)}", phone, purpose, code)).where(
            VerifyCode.id == row.id).execute()
        message = enqueue(phone, "verify", {"code": code, "minutes": int(LIFETIME.total_seconds() // 60)},
                          purpose="verify", dedupe_key=f"verify:{row.id}", answer=True, lang=lang,
                          settings=sms_settings, clock=clock)
        if message is None:
            raise VerifyError("请填写正确的手机号码 / give a valid mobile number")
    log.info("verification code %s for %s**** (%s)", row.id, phone[:3], purpose)
    return VerifyCode.get_by_id(row.id)


def confirm(phone: str, purpose: str, code: str, *, key: bytes, clock: Optional[Clock] = None,
            consume: bool = True) -> VerifyCode:
    """The code row when ``code`` is the live one for ``phone``; each wrong try counts, the fifth ends the
    code. ``consume`` marks it used (a submission instead relies on its unique id). Raises VerifyError."""
    clock = clock or Clock()
    phone = mobile(phone)
    code = "".join(str(code or "").split())
    if not code.isdigit() or len(code) != CODE_DIGITS:
        raise VerifyError(f"请输入{CODE_DIGITS}位短信验证码 / type the {CODE_DIGITS}-digit code from the SMS")
    now = to_db(clock.now())
    row = (VerifyCode.select().where((VerifyCode.phone == phone) & (VerifyCode.purpose == purpose)
                                     & VerifyCode.used_at.is_null())
           .order_by(VerifyCode.id.desc()).first())
    if row is None or row.expires_at <= now:
        raise VerifyError("验证码已失效，请重新获取 / the code has expired or was used: ask for a new one")
    # A try is claimed in the database before the compare (compare-and-set), so parallel guesses cannot
    # share one: five tries at most, the right code included.
    claimed = VerifyCode.update(tries=VerifyCode.tries + 1).where(
        (VerifyCode.id == row.id) & (VerifyCode.tries < MAX_TRIES)).execute()
    if claimed != 1:
        raise VerifyError("验证码错误次数过多，请重新获取 / too many wrong codes: ask for a new one", 429)
    salt = row.code_hash.partition("$")[0]
    if not secret_codes.same(row.code_hash, _hash(key, salt, phone, purpose, code)):
        left = MAX_TRIES - row.tries - 1
        if left <= 0:
            raise VerifyError("验证码错误次数过多，请重新获取 / too many wrong codes: ask for a new one", 429)
        raise VerifyError(f"短信验证码不正确，还可再试{left}次 / wrong code: {left} tries left")
    if consume:
        done = VerifyCode.update(used_at=now).where((VerifyCode.id == row.id) & VerifyCode.used_at.is_null()
                                                    ).execute()
        if done != 1:
            raise VerifyError("验证码已失效，请重新获取 / the code has expired or was used: ask for a new one")
    return row


def consume(row_id: int, clock: Optional[Clock] = None) -> None:
    """Mark a code used (after the submission it confirmed was stored)."""
    VerifyCode.update(used_at=to_db((clock or Clock()).now())).where(
        (VerifyCode.id == row_id) & VerifyCode.used_at.is_null()).execute()
