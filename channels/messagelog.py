"""The message log: every SMS and e-mail in and out, filtered for the centre's log page and listed per ticket,
as each viewer may see it (addresses and contact details inside texts masked per caseflow.privacy; codes
never shown), and the retry of a failed outgoing message."""
from __future__ import annotations

import datetime as dt
import functools
import math
import re
from dataclasses import dataclass
from typing import Optional

from caseflow import pins, privacy
from caseflow.roles import can
from caseflow.services import to_db
from channels.models import STATUSES, MailHeader, Message
from channels.templates import DEFAULTS, LANGS, Texts
from core.clock import Clock

PAGE_SIZE = 50
CHANNELS = ("sms", "email")
DIRECTIONS = ("in", "out")
# Purposes whose text holds a secret the log never shows (the code itself is only for the citizen).
SECRET_PURPOSES = ("verify",)
_CODE = re.compile(r"(?<![0-9])[0-9]{4,8}(?![0-9])")
# The receipt's query PIN (6 digits, caseflow.values.generate_pin), wherever an edited template puts it: the
# ticket holds only its hash, so the log cannot look it up to mask it. The 8-digit acceptance number stays.
# The outbox stores a receipt's text this way too once the gateway took it (channels.outbox, issue 11).
PIN_PURPOSES = ("receipt",)
_PIN = re.compile(r"(?<![0-9])[0-9]{6}(?![0-9])")
PIN_MASK = "******"


class LogInputError(ValueError):
    """A filter or retry the log refuses; the message says why (zh / en)."""


@dataclass(frozen=True)
class LogFilter:
    channel: str = ""
    direction: str = ""
    status: str = ""
    since: Optional[dt.date] = None
    until: Optional[dt.date] = None
    address: str = ""

    def as_args(self) -> dict:
        """The filter as query-string values (for pagination links); empty ones left out."""
        values = {"channel": self.channel, "direction": self.direction, "status": self.status,
                  "from": self.since.isoformat() if self.since else "",
                  "to": self.until.isoformat() if self.until else "", "address": self.address}
        return {k: v for k, v in values.items() if v}


def _day(raw: str, name: str) -> Optional[dt.date]:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw[:10])
    except ValueError:
        raise LogInputError(f"{name}: 日期格式应为 2026-03-01 / dates look like 2026-03-01") from None


def parse_filter(args) -> LogFilter:
    """A LogFilter from query arguments; unknown values are refused, not ignored."""
    def choice(name: str, allowed) -> str:
        value = (args.get(name) or "").strip()
        if value and value not in allowed:
            raise LogInputError(f"{name}: {value[:20]!r} 不是可选值 / is not one of {', '.join(allowed)}")
        return value

    address = (args.get("address") or "").strip()
    if len(address) > 255 or any(c in address for c in "\x00\r\n"):
        raise LogInputError("地址过长或含控制字符 / the address filter is too long or has control characters")
    log_filter = LogFilter(channel=choice("channel", CHANNELS), direction=choice("direction", DIRECTIONS),
                           status=choice("status", STATUSES), since=_day(args.get("from"), "from"),
                           until=_day(args.get("to"), "to"), address=address)
    if log_filter.since and log_filter.until and log_filter.since > log_filter.until:
        raise LogInputError("起始日期晚于截止日期 / the start date is after the end date")
    return log_filter


def _local_midnight(day: dt.date, tz) -> dt.datetime:
    return to_db(dt.datetime.combine(day, dt.time(0), tzinfo=tz))


def search(log_filter: LogFilter, tz, page: int = 1, page_size: int = PAGE_SIZE) -> tuple[list, int, int, int]:
    """Newest first: (rows, total, page, pages); the page is clamped to the last one."""
    query = Message.select()
    f = log_filter
    if f.channel:
        query = query.where(Message.channel == f.channel)
    if f.direction:
        query = query.where(Message.direction == f.direction)
    if f.status:
        query = query.where(Message.status == f.status)
    if f.since:
        query = query.where(Message.created_at >= _local_midnight(f.since, tz))
    if f.until:
        query = query.where(Message.created_at < _local_midnight(f.until + dt.timedelta(days=1), tz))
    if f.address:
        # A whole number as typed (13800138000, +86 138 ...) or part of an e-mail address.
        address = f.address
        if "@" not in address:
            digits = re.sub(r"[\s\-+]", "", address)
            address = digits[2:] if digits.startswith("86") and len(digits) == 13 else digits
        query = query.where(Message.address.contains(address))
    total = query.count()
    pages = max(1, math.ceil(total / page_size))
    page = min(max(1, page), pages)
    rows = list(query.order_by(Message.id.desc()).paginate(page, page_size))
    return rows, total, page, pages


def for_ticket(ticket) -> list[Message]:
    """The ticket's messages, both channels, oldest first (e-mails with their subject in ``subject``)."""
    rows = list(Message.select().where(Message.ticket == ticket).order_by(Message.id))
    subjects = {h.message_id: h.subject for h in MailHeader.select(MailHeader.message, MailHeader.subject)
                .where(MailHeader.message.in_([m.id for m in rows if m.channel == "email"]))} if rows else {}
    for m in rows:
        m.subject = subjects.get(m.id, "")
    return rows


def may_see_address(user, message: Message) -> bool:
    """The full address for those privacy allows: citizen.full_contact, or the contact rule of its ticket."""
    if can(user, "citizen.full_contact"):
        return True
    return bool(message.ticket_id) and privacy.may_see_contact(user, message.ticket)


def holds_pin(message: Message) -> bool:
    """An outgoing receipt: its text carries a ticket's query PIN."""
    return message.direction == "out" and (message.purpose in PIN_PURPOSES or message.template_key in PIN_PURPOSES)


def mask_pins(text: str) -> str:
    """``text`` with every 6-digit run masked (PIN_MASK): wherever a receipt's query PIN may stand in it."""
    return _PIN.sub(PIN_MASK, text or "")


def mask_ticket_pin(text: str, ticket) -> str:
    """``text`` with each 6-digit run that is ``ticket``'s query PIN masked (PIN_MASK): a citizen's reply or
    forward quoting the receipt, threaded to that ticket. The citizen's other numbers stay: each distinct run
    is checked once against the stored hash (caseflow.pins.match: one keyed hash per key, nothing written). No
    ticket or no PIN: ``text`` as it is; no key installed to check a hashed PIN with: every run masked."""
    if not text or ticket is None or not ticket.query_pin:
        return text or ""
    try:
        keys = pins.installed()
    except pins.PinKeyError:
        return mask_pins(text)
    opening = {run for run in set(_PIN.findall(text)) if pins.match(ticket.query_pin, run, keys)}
    return _PIN.sub(lambda found: PIN_MASK if found.group() in opening else found.group(), text) if opening else text


def mask_quoted_pins(text: str, ticket, texts: Texts) -> str:
    """``text`` of a citizen's mail or SMS as it is stored (and becomes a ticket or note): each 6-digit run that
    follows a receipt's wording masked, whatever ticket it belongs to (a stranger's forward, an .eml attachment
    carrying a receipt: threaded to none), and, threaded to ``ticket``, each run that is its PIN
    (mask_ticket_pin). Digits after any other words stay: they are the citizen's. ``texts``: the receipt's
    texts in force (channels.templates.read, before the message's write transaction)."""
    return mask_ticket_pin(_receipt_pins(_receipt_texts(texts)).sub(_masked_pin, text or ""), ticket)


def _receipt_texts(texts: Texts) -> tuple[str, ...]:
    """The receipt's wordings: the product's (zh, en) and those in force (an administrator's, else the same)."""
    return (DEFAULTS["receipt"].zh, DEFAULTS["receipt"].en, *(texts.source("receipt", lang) for lang in LANGS))


_GAP = r"[\s>]+"  # a space in a wording, as quoted mail may break it: line breaks, "> " quote marks
_SEPARATOR = r"[\s>:：=＝]*"  # between a wording and its PIN
_TAG = re.compile(r"\{\{-?\s*(\w+)[^}]*\}\}|\{%[^}]*%\}")  # a template's variables and statements
_CLAUSE = re.compile(r"[，。,;；.!！?？、（）()【】\[\]\n]")  # where a wording before the PIN starts


@functools.lru_cache(maxsize=16)
def _receipt_pins(texts: tuple[str, ...]) -> re.Pattern:
    """A pattern of a PIN quoted after a receipt's wording (its group ``pin``): for each ``{{ pin }}`` of the
    texts, the words of its clause just before it ("查询码", "query code"); where fewer than 2 letters stand there
    (``{{ number }}/{{ pin }}``), the acceptance number and what stands between. A text from which neither can
    be read adds nothing (the product's wordings still count)."""
    wordings = set()
    for text in texts:
        tags = list(_TAG.finditer(text))
        for n, tag in enumerate(tags):
            if tag.group(1) != "pin":
                continue
            previous = tags[n - 1] if n else None
            before = text[previous.end() if previous else 0:tag.start()]
            words = _CLAUSE.split(before.rstrip(" \t:：=＝"))[-1].split()
            if len(re.findall(r"\w", "".join(words))) >= 2:
                wordings.add(_GAP.join(map(re.escape, words)) + _SEPARATOR)
            elif before.strip() and previous is not None and previous.group(1) == "number":
                wordings.add(r"(?<![0-9])[0-9]{8}" + _GAP.join(map(re.escape, before.split())) + _SEPARATOR)
    if not wordings:
        return re.compile(r"(?!)")
    return re.compile("(?:" + "|".join(sorted(wordings)) + r")(?<![0-9])(?P<pin>[0-9]{6})(?![0-9])", re.I)


def _masked_pin(found: re.Match) -> str:
    start = found.start("pin") - found.start()
    return found.group()[:start] + PIN_MASK


def without_pin(message: Message) -> str:
    """The message's text with a receipt's query PIN masked (other messages' texts as they are)."""
    body = message.body or ""
    return mask_pins(body) if holds_pin(message) else body


def pin_masked(message: Message) -> bool:
    """A receipt whose stored text no longer carries its PIN (masked once the gateway took it)."""
    body = message.body or ""
    return holds_pin(message) and PIN_MASK in body and not _PIN.search(body)


def shown(user, message: Message) -> dict:
    """The message's address and text as ``user`` may see them. A verification code and a ticket's query
    code are never shown (they are the citizen's keys); without full contact, the address and any phone
    number or e-mail address inside the text are masked (the ticket's acceptance number stays)."""
    full = may_see_address(user, message)
    body = without_pin(message)
    ticket = message.ticket if message.ticket_id else None
    if message.purpose in SECRET_PURPOSES:
        body = _CODE.sub("******", body)
    if not full:
        body = privacy.mask_contacts(body)
        if ticket is not None:
            body = body.replace(privacy.mask_phone(ticket.number), ticket.number)
    return {"address": message.address if full else privacy.mask_address(message.address), "body": body,
            "masked": not full}


def retry(message_id: int, clock: Optional[Clock] = None) -> Message:
    """Queue a failed outgoing message again (a person decided to; the caller audits it): attempts start
    over and it may leave at once. Verification codes are not resent (the citizen asks for a new one)."""
    clock = clock or Clock()
    message = Message.get_or_none(Message.id == message_id)
    if message is None:
        raise LookupError(f"没有该消息 / no message {message_id}")
    if message.direction != "out" or message.status != "failed":
        raise LogInputError("只有发送失败的消息可以重发 / only a failed outgoing message can be retried")
    if message.purpose in SECRET_PURPOSES:
        raise LogInputError("验证码不重发，请市民重新获取 / codes are not resent: the citizen asks for a new one")
    if pin_masked(message):  # the gateway took it once, then it failed (a report, a bounce): the PIN is gone
        raise LogInputError("该回执的查询密码已不保存，无法重发 / the receipt's query PIN is no longer stored: "
                            "not resent")
    now = to_db(clock.now())
    changed = Message.update(status="queued", attempts=0, error="", next_attempt_at=now, updated_at=now).where(
        (Message.id == message.id) & (Message.status == "failed")).execute()
    if changed != 1:
        raise LogInputError("该消息已被处理 / the message changed meanwhile")
    return Message.get_by_id(message.id)
