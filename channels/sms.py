"""SMS text rules (pure): numbers, segmentation, the keywords citizens text to 1063912345, and what a
delivery report's type means. No I/O here."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Optional

# UCS-2 on the wire (coding=2): 70 UTF-16 units in one message, 67 per part once concatenated (6-byte UDH).
SINGLE_UNITS = 70
PART_UNITS = 67
MAX_PARTS = 10  # sendsms-user max-messages in kannel-conf: Kannel refuses anything longer
MAX_INBOUND = 2000  # characters kept of one citizen message (Kannel reassembles at most 255 parts anyway)

_MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}\Z")
_NUMBER_RE = re.compile(r"^\+?[0-9]{3,20}\Z")


class SmsInputError(ValueError):
    """A number or text that cannot be an SMS; the message says why."""


def normalise_number(raw) -> str:
    """A sender or recipient number as digits: '+86 138-0013-8000' -> '13800138000'. Malformed raises."""
    text = re.sub(r"[\s\-()]", "", str(raw or ""))
    if not _NUMBER_RE.match(text):
        raise SmsInputError(f"号码格式不正确 / malformed number {str(raw)[:32]!r}")
    text = text.lstrip("+")
    if text.startswith("0086"):
        text = text[4:]
    elif text.startswith("86") and len(text) == 13:
        text = text[2:]
    return text


def is_mobile(number: str) -> bool:
    """True for a mainland mobile number (landlines and short codes do not receive SMS)."""
    try:
        return bool(_MOBILE_RE.match(normalise_number(number)))
    except SmsInputError:
        return False


def mobile_number(raw) -> Optional[str]:
    """``raw`` as stored (normalise_number) when it is a mainland mobile number an SMS reaches, else None."""
    try:
        number = normalise_number(raw)
    except SmsInputError:
        return None
    return number if _MOBILE_RE.match(number) else None


def utf16_units(text: str) -> int:
    """Length on the wire in UCS-2/UTF-16 units (an emoji outside the BMP takes two)."""
    return len(text.encode("utf-16-be")) // 2


def segments(text: str) -> int:
    """How many SMS parts ``text`` takes (UCS-2, concatenated when longer than one)."""
    units = utf16_units(text)
    if units <= SINGLE_UNITS:
        return 1
    return -(-units // PART_UNITS)


def fit(text: str, max_parts: int = MAX_PARTS) -> str:
    """``text`` cut (with '…') so it fits in ``max_parts`` parts; never splits a surrogate pair."""
    if segments(text) <= max_parts:
        return text
    limit = PART_UNITS * max_parts - 1
    out, used = [], 0
    for char in text:
        cost = 2 if ord(char) > 0xFFFF else 1
        if used + cost > limit:
            break
        out.append(char)
        used += cost
    return "".join(out) + "…"


def clean_inbound(text) -> str:
    """A citizen's text as stored: NULs and other control characters (but newlines) dropped, cut to
    MAX_INBOUND characters."""
    text = "".join(c for c in str(text or "") if c in "\n\t" or unicodedata.category(c) != "Cc")
    return text.strip()[:MAX_INBOUND]


# ---- keywords ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Keyword:
    """What a citizen's text asks for: ``optout``, ``query`` (arg: the acceptance number as typed),
    ``rating`` (arg: satisfied/basic/unsatisfied), or None for plain text (a new request or a reply)."""

    kind: str
    arg: str = ""


OPTOUT_WORDS = frozenset({"TD", "退订", "T", "N", "QXTD", "取消"})
RATINGS = {"1": "satisfied", "2": "basic", "3": "unsatisfied",
           "满意": "satisfied", "基本满意": "basic", "不满意": "unsatisfied"}
_QUERY_RE = re.compile(r"^(?:CX|查询)\s*[:：]?\s*([0-9][0-9\s\-]{0,20})\Z")


def parse_keyword(text: str) -> Optional[Keyword]:
    """The keyword in a citizen's text (full-width letters and digits count, case does not), or None."""
    plain = unicodedata.normalize("NFKC", str(text or "")).strip().upper().rstrip("。.!！")
    if plain in OPTOUT_WORDS:
        return Keyword("optout", plain)
    if plain in RATINGS:
        return Keyword("rating", RATINGS[plain])
    match = _QUERY_RE.match(plain)
    if match:
        return Keyword("query", re.sub(r"[\s\-]", "", match.group(1)))
    if plain in ("CX", "查询"):
        return Keyword("query", "")
    return None


# ---- delivery reports -------------------------------------------------------------------------------
# Kannel's %d: 1 delivered to the phone, 2 not delivered, 4 queued at the SMSC, 8 accepted by the SMSC,
# 16 rejected by the SMSC.
DLR_STATUS = {1: "delivered", 2: "failed", 4: "sent", 8: "sent", 16: "failed"}
# A later report never moves a message back (Kannel may report 'delivered' before 'accepted').
_RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "failed": 3}


def status_after_report(current: str, report_type: int) -> str:
    """The message's status after a delivery report of ``report_type``; unknown types raise."""
    if report_type not in DLR_STATUS:
        raise SmsInputError(f"unknown delivery report type {report_type!r}")
    target = DLR_STATUS[report_type]
    if _RANK.get(target, 0) > _RANK.get(current, 0):
        return target
    return current
