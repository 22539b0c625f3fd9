"""E-mail rules (pure, stdlib ``email`` only): reading a citizen's mail as the hotline needs it (Chinese
charsets, HTML-only mail as text, attachment names in RFC 2231/2047, forwarded mail), telling automated mail
from a person's, threading keys, and composing an outgoing mail. No I/O, no database here.
"""
from __future__ import annotations

import email
import email.policy
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from email.header import Header, decode_header
from email.message import EmailMessage, Message as MimeMessage
from email.utils import format_datetime, getaddresses, parseaddr
from html.parser import HTMLParser
from typing import Optional

MAX_TEXT = 20000  # characters of body text kept (caseflow's content limit)
MAX_PARTS = 200  # MIME parts read at most: a hostile nesting is not walked further
ACCEPTANCE_RE = re.compile(r"(?<![0-9])([1-9][0-9]{7})(?![0-9])")
_ADDRESS_RE = re.compile(r"^[^@\s<>\"(),;:\\\[\]]{1,64}@[A-Za-z0-9.\-]{1,190}\.[A-Za-z0-9\-]{2,63}\Z")
# Declared Chinese charsets are read as their superset: mail labelled gb2312 routinely carries GBK characters.
_SUPERSET = {"gb2312": "gb18030", "gbk": "gb18030", "cp936": "gb18030", "x-gbk": "gb18030", "euc-cn": "gb18030",
             "gb_2312-80": "gb18030", "hz-gb-2312": "hz", "ascii": "utf-8", "us-ascii": "utf-8"}


class MailInputError(ValueError):
    """Mail that cannot be read at all (no headers, not an address); the message says why."""


@dataclass(frozen=True)
class Attachment:
    """One attached file as found in the mail: its decoded name and raw bytes (never unpacked)."""

    filename: str
    data: bytes
    declared_type: str


@dataclass(frozen=True)
class ParsedMail:
    """What the hotline reads from one mail."""

    message_id: str  # without angle brackets; "" when the mail has none
    sender: str  # the address, lower-cased
    sender_name: str
    subject: str
    text: str  # body as plain text (HTML converted), forwarded mail appended
    attachments: tuple[Attachment, ...]
    in_reply_to: str
    references: tuple[str, ...]
    automated: str  # "" for a person's mail, else bounce, auto_reply or list
    content_hash: str  # sha256 of what makes the mail itself (not its delivery path)
    defects: tuple[str, ...] = field(default_factory=tuple)
    returned: tuple[str, ...] = ()  # a bounce's: the Message-IDs of the mails it encloses whole (message/rfc822)

    @property
    def dedupe_key(self) -> str:
        """One key per mail however often it is delivered: the Message-ID together with the content."""
        return "mail:" + hashlib.sha256(f"{self.message_id}\n{self.content_hash}".encode()).hexdigest()[:59]

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """The Message-IDs this mail answers, nearest first."""
        ids = ([self.in_reply_to] if self.in_reply_to else []) + list(reversed(self.references))
        return tuple(dict.fromkeys(i for i in ids if i))


# ---- headers ----------------------------------------------------------------------------------------
def decode_words(raw) -> str:
    """A header's text with RFC 2047 encoded words decoded, each in its own charset (a subject may mix
    GB2312 and UTF-8 words); undecodable bytes become U+FFFD instead of failing."""
    if raw is None:
        return ""
    if isinstance(raw, Header):  # compat32 hands raw 8-bit header bytes over as an unknown-8bit Header
        return _clean_line("".join(decode_bytes(c, None) if isinstance(c, bytes) else c
                                   for c, _charset in decode_header(raw)))
    raw = str(raw)
    if any("\udc80" <= c <= "\udcff" for c in raw):  # raw 8-bit bytes in the header (RFC 6532 or a GBK one)
        raw = decode_bytes(raw.encode("ascii", "surrogateescape"), None)
    try:
        parts = decode_header(raw)
    except Exception:  # noqa: BLE001 - a malformed encoded word: keep the raw text
        return _clean_line(raw)
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            out.append(decode_bytes(chunk, charset))
        else:
            out.append(chunk)
    # decode_header keeps the whitespace between an encoded word and plain text in the plain chunk.
    return _clean_line("".join(out))


def _clean_line(text: str) -> str:
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return re.sub(r"\s+", " ", text).strip()


def decode_bytes(data: bytes, charset: Optional[str]) -> str:
    """Text from ``data`` declared as ``charset``: the declared one (or its Chinese superset) when it fits,
    else UTF-8, else GB18030, else replacement characters; never raises."""
    declared = (charset or "").strip().strip('"').lower()
    tried = []
    # UTF-8 first whatever the label: GB18030 decodes nearly any bytes (mislabelled UTF-8 would become
    # mojibake), while Chinese text in a GB charset is practically never valid UTF-8.
    for name in ("utf-8", _SUPERSET.get(declared, declared), "gb18030"):
        if not name or name in tried:
            continue
        tried.append(name)
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", errors="replace")


def message_ids(raw) -> tuple[str, ...]:
    """The <...> ids in a Message-ID, In-Reply-To or References header, brackets removed."""
    found = re.findall(r"<([^<>\s]{1,250})>", str(raw or ""))
    if not found and str(raw or "").strip():
        found = [str(raw).strip().strip("<>")[:250]]
    return tuple(found)


def normalise_address(raw: str) -> str:
    """An address as stored: lower-cased, checked; malformed raises MailInputError."""
    address = str(raw or "").strip().lower()
    if not _ADDRESS_RE.match(address) or ".." in address:
        raise MailInputError(f"邮箱地址格式不正确 / malformed address {str(raw)[:64]!r}")
    return address


def acceptance_number(subject: str) -> str:
    """The 8-digit acceptance number written in a subject, or ''."""
    match = ACCEPTANCE_RE.search(unicodedata.normalize("NFKC", subject or ""))
    return match.group(1) if match else ""


def automated_kind(msg: MimeMessage, sender: str) -> str:
    """Why no acknowledgement may answer this mail: bounce (Return-Path <> or a delivery report),
    auto_reply (Auto-Submitted, X-Autoreply, X-Autorespond, Precedence auto_reply), list (List-Id,
    Precedence bulk/list/junk, List-Unsubscribe); '' for a person's mail."""
    return_path = str(msg.get("Return-Path", "") or "").strip()
    content_type = msg.get_content_type()
    local = sender.split("@", 1)[0]
    if return_path in ("<>", "") and "Return-Path" in msg or content_type == "multipart/report" \
            or local in ("mailer-daemon", "postmaster"):
        return "bounce"
    auto = str(msg.get("Auto-Submitted", "") or "").strip().lower()
    precedence = str(msg.get("Precedence", "") or "").strip().lower()
    if (auto and auto != "no") or msg.get("X-Autoreply") or msg.get("X-Autorespond") \
            or precedence == "auto_reply" or str(msg.get("X-Auto-Response-Suppress", "")).lower() == "all":
        return "auto_reply"
    if precedence in ("bulk", "list", "junk") or msg.get("List-Id") or msg.get("List-Unsubscribe"):
        return "list"
    return ""


# ---- HTML -------------------------------------------------------------------------------------------
class _TextExtractor(HTMLParser):
    """HTML to plain text: text nodes only, script/style/head content dropped, block elements as line
    breaks; entities decoded. Nothing of the markup survives, so the result is safe to show escaped."""

    SKIP = {"script", "style", "head", "title", "noscript", "template", "iframe", "object", "svg"}
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table",
             "hr", "section", "article", "ul", "ol"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_startendtag(self, tag, attrs):
        if tag in self.BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.out.append(data)


def html_to_text(html: str) -> str:
    """The readable text of an HTML body (no script, style or tags survive)."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: BLE001 - html.parser is lenient; anything odd keeps what was read
        pass
    lines = [re.sub(r"[ \t\u00a0\u3000]+", " ", line).strip() for line in "".join(parser.out).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def clean_text(text: str) -> str:
    """Body text as stored: control characters but newlines and tabs dropped, at most MAX_TEXT characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
    return re.sub(r"\n{3,}", "\n\n", text).strip()[:MAX_TEXT]


# ---- the whole mail ---------------------------------------------------------------------------------
def _part_text(part: MimeMessage) -> str:
    payload = part.get_payload(decode=True) or b""
    text = decode_bytes(payload, part.get_content_charset())
    if part.get_content_type() == "text/html":
        return html_to_text(text)
    return text


def _filename(part: MimeMessage) -> str:
    """The attachment's name: RFC 2231 parameters (filename*=) are joined and decoded by the library;
    RFC 2047 words in a plain filename= (what many Chinese mailers write) are decoded here."""
    name = part.get_filename() or part.get_param("name", header="content-type") or ""
    if isinstance(name, tuple):  # an RFC 2231 value the library could not decode
        name = decode_bytes(str(name[2]).encode("latin-1", "replace"), name[0])
    if "\ufffd" in str(name):  # raw 8-bit bytes in the parameter: read them from the unsanitised header
        for key, value in part.raw_items():
            if key.lower() in ("content-disposition", "content-type"):
                match = re.search(r'(?:file)?name\s*=\s*"?([^";\r\n]+)', value, re.I)
                if match:
                    name = decode_bytes(match.group(1).encode("ascii", "surrogateescape"), None)
                    break
    return decode_words(name)


def _parts(msg: MimeMessage) -> list:
    payload = msg.get_payload()
    return [p for p in payload if isinstance(p, MimeMessage)] if isinstance(payload, list) else []


def _walk(msg: MimeMessage, texts: list, htmls: list, attachments: list, counter: list, depth: int = 0):
    for part in _parts(msg) if msg.is_multipart() else [msg]:
        counter[0] += 1
        if counter[0] > MAX_PARTS or depth > 10:
            return
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        if part.is_multipart() and ctype != "message/rfc822":
            if ctype == "multipart/alternative":
                plain = [p for p in _parts(part) if p.get_content_type() == "text/plain"]
                html = [p for p in _parts(part) if p.get_content_type() == "text/html"]
                chosen = plain[:1] or html[:1]
                others = [p for p in _parts(part) if p.get_content_type() not in ("text/plain", "text/html")]
                for p in chosen:
                    texts.append(_part_text(p))
                for p in others:
                    _walk(p, texts, htmls, attachments, counter, depth + 1)
            else:
                _walk(part, texts, htmls, attachments, counter, depth + 1)
            continue
        if ctype == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, MimeMessage):
                texts.append(_forwarded_header(inner))
                _walk(inner, texts, htmls, attachments, counter, depth + 1)
            continue
        if ctype.startswith("multipart/"):  # declared multipart without a usable boundary: its text
            texts.append(decode_bytes(part.get_payload(decode=True) or b"", part.get_content_charset()))
            continue
        name = _filename(part)
        if disposition == "attachment" or (name and ctype not in ("text/plain", "text/html")) or \
                (not ctype.startswith("text/") and ctype != "message/delivery-status"):
            data = part.get_payload(decode=True) or b""
            attachments.append(Attachment(name or "attachment.bin", data, ctype))
        elif ctype == "text/html":
            htmls.append(_part_text(part))
        elif ctype.startswith("text/") or ctype == "message/delivery-status":
            texts.append(_part_text(part))


def _returned_ids(msg: MimeMessage) -> tuple[str, ...]:
    """The Message-IDs of the mails ``msg`` encloses whole (message/rfc822 parts, as a delivery report returns
    the undelivered mail: RFC 3464), at most MAX_PARTS parts looked at. A text/rfc822-headers part is text."""
    ids: list[str] = []
    for n, part in enumerate(msg.walk()):
        if n > MAX_PARTS:
            break
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, MimeMessage):
                ids.extend(message_ids(inner.get("Message-ID", ""))[:1])
    return tuple(dict.fromkeys(ids))


def _forwarded_header(inner: MimeMessage) -> str:
    lines = ["---------- 转发的邮件 / forwarded message ----------"]
    for name, label in (("From", "发件人 From"), ("Date", "日期 Date"), ("Subject", "主题 Subject")):
        if inner.get(name):
            lines.append(f"{label}: {decode_words(inner.get(name))}")
    return "\n".join(lines)


def _content_hash(raw: bytes, msg: MimeMessage) -> str:
    """The mail's own content: From, Date, Subject and the bytes after the header block (Received and other
    delivery headers differ between two deliveries of one mail; these do not)."""
    split = re.search(rb"\r?\n\r?\n", raw)
    body = raw[split.end():] if split else b""
    digest = hashlib.sha256()
    for name in ("From", "Date", "Subject"):
        digest.update(str(msg.get(name, "") or "").encode("utf-8", "replace") + b"\n")
    digest.update(body.replace(b"\r\n", b"\n"))
    return digest.hexdigest()


def parse(raw: bytes) -> ParsedMail:
    """Read one mail (bytes as the server holds it). Malformed structure is read as far as it goes (its
    defects listed); a mail without any header or sender raises MailInputError."""
    if not raw or not raw.strip():
        raise MailInputError("空邮件 / empty mail")
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    if not msg.keys():
        raise MailInputError("邮件没有信头 / no headers")
    name, address = parseaddr(str(msg.get("From", "") or ""))
    if not address:
        pairs = getaddresses([str(msg.get("Sender", "") or msg.get("Return-Path", "") or "")])
        name, address = pairs[0] if pairs else ("", "")
    try:
        sender = normalise_address(address)
    except MailInputError:
        sender = ""
    texts: list[str] = []
    htmls: list[str] = []
    attachments: list[Attachment] = []
    _walk(msg, texts, htmls, attachments, [0])
    body = "\n\n".join(t for t in texts if t.strip()) or "\n\n".join(h for h in htmls if h.strip())
    ids = message_ids(msg.get("Message-ID", ""))
    reply_ids = message_ids(msg.get("In-Reply-To", ""))
    defects = tuple(type(d).__name__ for d in msg.defects)
    automated = automated_kind(msg, sender)
    return ParsedMail(message_id=ids[0] if ids else "", sender=sender, sender_name=decode_words(name)[:64],
                      subject=decode_words(msg.get("Subject", ""))[:200], text=clean_text(body),
                      attachments=tuple(attachments), in_reply_to=reply_ids[0] if reply_ids else "",
                      references=message_ids(msg.get("References", ""))[-20:],
                      automated=automated, content_hash=_content_hash(raw, msg),
                      defects=defects, returned=_returned_ids(msg) if automated == "bounce" else ())


# ---- outgoing ---------------------------------------------------------------------------------------
def compose(*, sender: str, to: str, subject: str, text: str, message_id: str, in_reply_to: str = "",
            references: tuple[str, ...] = (), date=None) -> bytes:
    """An outgoing plain-text UTF-8 mail (base64 where needed) marked as automatically sent, so that the
    citizen's auto-responder does not answer it, and threaded to what it answers."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    refs = [r for r in references if r] + ([in_reply_to] if in_reply_to and in_reply_to not in references else [])
    if refs:
        msg["References"] = " ".join(f"<{r}>" for r in refs[-10:])
    if date is not None:
        msg["Date"] = format_datetime(date)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(text, charset="utf-8")
    return msg.as_bytes()


def reply_subject(subject: str, number: str) -> str:
    """The subject of an answer: 'Re: ' once, and the acceptance number in it so replies thread back."""
    subject = re.sub(r"^\s*((re|回复|答复|fw|fwd|转发)\s*[:：]\s*)+", "", subject or "", flags=re.I).strip()
    if number and number not in subject:
        subject = f"[受理号{number}] {subject}".strip()
    return f"Re: {subject}"[:200]


def header_text(value: str) -> str:
    """A value safe to put in a header (no line breaks: no header injection)."""
    return _clean_line(str(value or ""))[:200]


def make_message_id(token: str, domain: str) -> str:
    return f"{token}@{domain}"


def to_address(raw: str) -> str:
    """An outgoing recipient: one checked address (a list or a name is refused)."""
    return normalise_address(parseaddr(str(raw or ""))[1] or str(raw or ""))


__all__ = ["Attachment", "ParsedMail", "MailInputError", "parse", "compose", "decode_words", "decode_bytes",
           "html_to_text", "acceptance_number", "normalise_address", "reply_subject"]
