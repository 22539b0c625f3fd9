"""What a ticket's fields may hold (types, channels, urgencies, numbers, phones), the errors for bad input,
and the small cleaners and time conversions every caseflow module shares."""
from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from typing import Optional

from caseflow.models import Ticket
from caseflow.pins import PIN_LENGTH
from core.clock import Clock

log = logging.getLogger(__name__)


TICKET_TYPES: dict[str, tuple[str, str]] = {
    "consult": ("咨询", "Consultation"), "complaint": ("投诉", "Complaint"), "report": ("举报", "Report"),
    "help": ("求助", "Request for help"), "suggestion": ("建议", "Suggestion"), "praise": ("表扬", "Praise"),
    "convenience": ("便民服务", "Convenience service"), "harassment": ("骚扰", "Harassment / invalid"),
    "other": ("其他", "Other"),
}
CHANNELS: dict[str, tuple[str, str]] = {
    "phone": ("电话", "Phone"), "web": ("网站", "Web"), "sms": ("短信", "SMS"), "email": ("电子邮件", "E-mail"),
    "fax": ("传真", "Fax"), "letter": ("来信来函", "Letter"), "mailbox": ("市长信箱", "Mayor mailbox"),
    "api": ("接口", "API"), "chat": ("在线交谈", "Online chat"),
}
URGENCIES: dict[str, tuple[str, str]] = {
    "normal": ("一般", "Normal"), "urgent": ("紧急", "Urgent"), "emergency": ("特急", "Emergency"),
}


MAX_CONTENT = 20000
MAX_TITLE = 200
NUMBER_RE = re.compile(r"^[1-9][0-9]{7}\Z")
PHONE_RE = re.compile(r"^\+?[0-9][0-9\- ]{2,30}\Z")
SYSTEM = "system"


class TicketInputError(ValueError):
    """Input for a ticket is malformed; the message says which field and why."""


class NotFound(LookupError):
    """No such ticket (or not one this user may see: the two are deliberately indistinguishable)."""


# ---- small helpers --------------------------------------------------------------------------------
def to_db(moment: dt.datetime) -> dt.datetime:
    """Aware moment -> naive UTC, the form stored in the database."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def from_db(moment: Optional[dt.datetime], clock: Clock) -> Optional[dt.datetime]:
    """Stored naive UTC -> aware local time."""
    return None if moment is None else clock.local(moment)


def _db():
    return Ticket._meta.database


def parse_number(text) -> str:
    """Validate an acceptance number typed by a person or keyed on a phone: exactly 8 digits."""
    value = re.sub(r"[\s-]", "", str(text or ""))
    if not NUMBER_RE.match(value):
        raise TicketInputError(f"受理号应为8位数字 / an acceptance number is 8 digits, got {str(text)[:20]!r}")
    return value


def generate_number() -> str:
    """A random 8-digit number: neighbours tell nothing about each other (uniqueness is retried)."""
    return str(10_000_000 + secrets.randbelow(90_000_000))


def generate_pin() -> str:
    """A 6-digit PIN (caseflow.pins.PIN_LENGTH) the citizen may use instead of their phone number for status
    queries."""
    return f"{secrets.randbelow(10 ** PIN_LENGTH):0{PIN_LENGTH}d}"


# Field names the validation messages use, Chinese and English (a name may also be given as "内容 content").
FIELD_WORDS = {"type": ("类型", "type"), "channel": ("渠道", "channel"), "urgency": ("紧急程度", "urgency"),
               "reply_by": ("答复方式", "reply method"), "citizen_name": ("姓名", "name"),
               "citizen_address": ("地址", "address"), "reason": ("原因", "reason"), "reply": ("答复", "reply"),
               "status": ("状态", "status"), "call uuid": ("通话标识", "call id"), "category": ("分类", "category"),
               "region": ("区域", "region")}
_CJK = re.compile(r"[\u3400-\u9fff]")


def field_words(name: str) -> tuple[str, str]:
    """(Chinese, English) name of a field for a "中文 / English" message: "内容 content" splits at its space,
    a field key is looked up in FIELD_WORDS, anything else is both."""
    zh, sep, en = name.partition(" ")
    if sep and _CJK.search(zh) and not _CJK.search(en):
        return zh, en
    return FIELD_WORDS.get(name, (name, name))


def length_error(name: str, limit: int, length: int) -> str:
    """The message for text longer than its limit, with how long it is (never cut silently)."""
    zh, en = field_words(name)
    return f"{zh}超过{limit}字（现为{length}字） / {en} is longer than {limit} characters ({length})"


def empty_error(name: str) -> str:
    zh, en = field_words(name)
    return f"{zh}不能为空 / {en} must not be empty"


def _clean(value, name: str, limit: int, required: bool = False) -> str:
    text = "" if value is None else str(value)
    zh, en = field_words(name)
    if "\x00" in text:
        raise TicketInputError(f"{zh}含有非法字符 / {en} contains a NUL character")
    text = text.strip()
    if required and not text:
        raise TicketInputError(empty_error(name))
    if len(text) > limit:
        raise TicketInputError(length_error(name, limit, len(text)))
    return text


def _choice(value, mapping: dict, name: str) -> str:
    if value not in mapping:
        zh, en = field_words(name)
        raise TicketInputError(f"{zh}无效 / unknown {en} {value!r}: expected one of {', '.join(mapping)}")
    return value


def clean_phone(phone) -> str:
    """Normalise a phone number (digits, optional +); empty allowed; malformed raises."""
    text = _clean(phone, "电话 phone", 32)
    if not text:
        return ""
    if not PHONE_RE.match(text):
        raise TicketInputError(f"电话号码格式不正确 / malformed phone number {text!r}")
    return re.sub(r"[\s-]", "", text)


def _resolve(model, value, name):
    if value is None or value == "":
        return None
    if isinstance(value, model):
        return value
    try:
        return model.get_by_id(int(value))
    except (ValueError, TypeError, model.DoesNotExist):
        row = model.get_or_none(model.code == str(value))
        if row is None:
            zh, en = field_words(name)
            raise TicketInputError(f"未知的{zh} / unknown {en} {value!r}") from None
        return row
