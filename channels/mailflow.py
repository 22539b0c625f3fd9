"""What an e-mail to the hotline becomes, and which e-mails the hotline queues (the outbox is channels'
Message table, channel "email"; the Outbox worker sends them through channels.smtp).

One inbound mail is, in this order:
1. the same mail seen before (its Message-ID together with its content): nothing new (``duplicate``);
2. a bounce or an auto-reply: stored as ``ignored``, no ticket, no answer (a bounce of one of our mails
   fails that mail); its text is stored with every 6-digit run masked, since it may quote our receipt and
   the receipt's query PIN must not come back into the message log, nor into a logged statement; any other
   mail threaded to a ticket (a citizen's reply or forward quoting the acknowledgement, list mail) is stored,
   and noted on the ticket, with each 6-digit run that is that ticket's PIN masked (its other numbers kept);
3. more than HOTLINE_EMAIL_FLOOD_PER_HOUR mails from that sender this hour: stored as ``ignored``
   (``throttled``), logged, the centre alarmed once an hour;
4. an answer to a ticket (its In-Reply-To/References name a mail of that ticket, or its subject carries the
   ticket's acceptance number and it comes from the ticket's address): a note and attachments on it;
5. anything else: a new ticket (channel email, reply by e-mail) with its attachments, and the
   acknowledgement with the number and query code, unless it came from a mailing list.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import peewee

from caseflow import attachments as files
from caseflow import services
from caseflow.models import Ticket, TicketHistory
from caseflow import workflow as wf
from channels import mail, messagelog, notices, sms, templates
from channels.mail import MailInputError, ParsedMail
from channels.models import ChannelCursor, MailHeader, Message, OptOut
from channels.receipts import receipt_values
from core.alarms import CRITICAL, raise_alarm
from core.clock import Clock
from core.db import database

log = logging.getLogger(__name__)

CURSOR = "ticket_history_email"
BATCH = 500
MAX_ADDRESS = 255  # Message.address (migration 0004)
QUOTING = ("bounce", "auto_reply")  # machine answers that may quote the mail answered: our receipt, its PIN
SUBJECTS = {  # (zh, en) subject per purpose; the number threads answers back
    "receipt": ("【12345热线】您的诉求已受理（受理号{number}）", "[12345] Your request is registered ({number})"),
    "result": ("【12345热线】办理结果（受理号{number}）", "[12345] The answer to your request ({number})"),
    "material": ("【12345热线】您索取的资料：{topic}", "[12345] The material you asked for: {topic}"),
    "satisfaction": ("【12345热线】请评价办理结果（受理号{number}）", "[12345] Please rate the answer ({number})"),
}


@dataclass(frozen=True)
class MailResult:
    """What became of an inbound mail: ``outcome`` is ticket, reply, duplicate, bounce, auto_reply,
    throttled; ``ticket`` the number involved; ``acknowledged`` whether an acknowledgement was queued."""

    outcome: str
    message_id: int
    ticket: str = ""
    acknowledged: bool = False
    notes: tuple[str, ...] = ()


# ---- outgoing ---------------------------------------------------------------------------------------
def enqueue_email(address: str, body: str, subject: str, *, purpose: str, ticket: Optional[Ticket] = None,
                  dedupe_key: Optional[str] = None, ref: str = "", in_reply_to: str = "", references=(),
                  settings, clock: Optional[Clock] = None) -> Optional[Message]:
    """Queue one e-mail. Returns it (the earlier one for a ``dedupe_key`` already used), or None when the
    address is not one we can write to. Its Message-ID is fixed now, so an answer threads back."""
    clock = clock or Clock()
    try:
        address = mail.to_address(address)
    except MailInputError:
        return None
    if len(address) > MAX_ADDRESS:
        log.warning("e-mail to an address longer than %d characters not queued", MAX_ADDRESS)
        return None
    if dedupe_key:
        earlier = Message.get_or_none(Message.dedupe_key == dedupe_key)
        if earlier is not None:
            return earlier
    now = services.to_db(clock.now())
    try:
        with database.atomic():
            message = Message.create(channel="email", direction="out", address=address, body=body[:mail.MAX_TEXT],
                                     purpose=purpose, template_key=purpose if purpose in templates.DEFAULTS else "",
                                     urgent=True, status="queued", ticket=ticket, dedupe_key=dedupe_key,
                                     ref=str(ref)[:64], next_attempt_at=now, created_at=now, updated_at=now)
            MailHeader.create(message=message, msgid=f"12345.{message.id}.{secrets.token_hex(6)}@"
                                                          f"{settings.domain}",
                              in_reply_to=in_reply_to[:255], references=" ".join(references)[:4000],
                              subject=mail.header_text(subject), sender=settings.from_address, recipient=address)
        return message
    except peewee.IntegrityError:
        return Message.get_or_none(Message.dedupe_key == dedupe_key)


def _subject(purpose: str, lang: str = "zh", **values) -> str:
    zh, en = SUBJECTS[purpose]
    return (en if lang == "en" else zh).format(**values)


def _last_citizen_mail(ticket: Ticket) -> Optional[MailHeader]:
    return (MailHeader.select().join(Message).where((Message.ticket == ticket) & (Message.direction == "in"))
            .order_by(Message.id.desc()).first())


def enqueue_for_ticket(ticket: Ticket, body: str, *, purpose: str, subject: str = "", dedupe_key=None,
                       settings, clock=None) -> Optional[Message]:
    """An e-mail to the ticket's citizen, threaded to the last mail they sent about it (if any)."""
    last = _last_citizen_mail(ticket)
    if not subject:
        subject = mail.reply_subject(last.subject if last else ticket.title, ticket.number)
    return enqueue_email(ticket.citizen_email, body, subject, purpose=purpose, ticket=ticket,
                         dedupe_key=dedupe_key, in_reply_to=last.msgid if last else "",
                         references=tuple(last.references.split()) if last and last.references else (),
                         settings=settings, clock=clock)


def send_from_ticket(ticket: Ticket, body: str, actor, *, settings, clock=None) -> Message:
    """An agent's or the centre's own e-mail from the ticket page (P2 §2.3): the actor must be allowed to
    write to the ticket; recorded in the ticket's history. Raises TicketInputError for bad input."""
    services.require_write(actor, ticket)
    body = str(body or "").replace("\r\n", "\n").strip()
    if not body or len(body) > 5000 or "\x00" in body:
        raise services.TicketInputError("邮件正文为1-5000字 / the e-mail text is 1-5000 characters")
    if not ticket.citizen_email:
        raise services.TicketInputError("该工单没有市民邮箱 / the ticket has no e-mail address")
    clock = clock or Clock()
    with database.atomic():
        message = enqueue_for_ticket(ticket, body, purpose="agent", settings=settings, clock=clock)
        if message is None:
            raise services.TicketInputError("市民邮箱地址无效 / the citizen's e-mail address is not valid")
        services.add_note(ticket, f"发送邮件 / e-mail sent to the citizen: {body[:500]}", actor=actor)
    return message


# ---- inbound ----------------------------------------------------------------------------------------
def _thread(parsed: ParsedMail) -> Optional[Ticket]:
    """The ticket this mail answers, by its Message-ID references or by the number in its subject."""
    if parsed.thread_ids:
        header = (MailHeader.select().join(Message).where(MailHeader.msgid.in_(list(parsed.thread_ids))
                                                          & Message.ticket.is_null(False))
                  .order_by(Message.id.desc()).first())
        if header is not None:
            return header.message.ticket
    number = mail.acceptance_number(parsed.subject)
    if number and parsed.sender:
        # Only from the address the ticket is registered with: a stranger's mail is a new request.
        return Ticket.get_or_none((Ticket.number == number) & (Ticket.citizen_email == parsed.sender))
    return None


def _flooding(sender: str, now: dt.datetime, settings) -> bool:
    since = services.to_db(now - dt.timedelta(hours=1))
    count = Message.select().where((Message.channel == "email") & (Message.direction == "in")
                                   & (Message.address == sender[:MAX_ADDRESS]) & (Message.created_at >= since)
                                   & (Message.status == "received")).count()
    return count > settings.flood_per_hour  # this mail is among them


def _alarm_flood(sender: str, now, clock) -> None:
    # A marker row per sender and hour (ChannelCursor's 32-character name): the centre is told once.
    key = f"flood:{hashlib.sha1(sender.encode()).hexdigest()[:12]}:{now:%Y%m%d%H}"
    log.warning("e-mail flood from %s: further mail this hour held", sender)
    centre = services.centre_department()
    if centre is None or ChannelCursor.get_or_none(ChannelCursor.name == key) is not None:
        return
    ChannelCursor.create(name=key, position=0)
    services.notify(f"邮件轰炸：{sender} 一小时内来信过多，已暂停受理 / e-mail flood from {sender}",
                    department=centre, kind="mail_flood", clock=clock)


def _store_files(parsed: ParsedMail, root: Path, settings, clock) -> tuple[list[dict], list[str]]:
    """Store the attachments within the limits (type read from the content, never unpacked); the rest is
    named in notes for the ticket."""
    stored, notes = [], []
    for index, item in enumerate(parsed.attachments):
        name = files.safe_name(item.filename)
        if index >= settings.max_attachments:
            notes.append(f"附件过多，未保存：{name} / too many attachments, not stored: {name}")
            continue
        if len(item.data) > settings.max_attachment_bytes:
            notes.append(f"附件过大（{len(item.data) // (1024 * 1024)}MB），未保存：{name} / attachment too large, "
                         f"not stored: {name} ({len(item.data)} bytes)")
            continue
        if not item.data:
            notes.append(f"空附件：{name} / empty attachment: {name}")
            continue
        info = files.store_file(root, item.data, name, clock, settings.max_attachment_bytes)
        info["content_type"] = files.sniff(item.data[:files.SNIFF_BYTES])  # the content decides, not the mail
        stored.append(info)
    return stored, notes


def handle_mail(raw: bytes, *, settings, attachments_root: Path, clock: Optional[Clock] = None,
                truncated: bool = False) -> MailResult:
    """Store and act on one inbound mail (the bytes as fetched). ``truncated``: only the headers were
    fetched because the mail is over the size limit. Raises MailInputError for mail that cannot be read."""
    clock = clock or Clock()
    parsed = mail.parse(raw)
    if not parsed.sender:
        raise MailInputError("发件人地址无法识别 / no readable sender address")
    now = clock.now()
    now_db = services.to_db(now)
    earlier = Message.get_or_none(Message.provider_id == parsed.dedupe_key)
    if earlier is not None:
        return MailResult("duplicate", earlier.id, earlier.ticket.number if earlier.ticket_id else "")
    text = parsed.text
    if truncated:
        text = (text + "\n\n" if text else "") + (f"（邮件超过{settings.max_message_bytes // (1024 * 1024)}MB，正文与附件"
                                                  f"未收取 / mail over the size limit: body and attachments not read）")
    if parsed.automated in QUOTING:  # never stored (nor in a statement logged) with a receipt's PIN quoted
        text = messagelog.mask_pins(text)
    stored: list[dict] = []
    notes: list[str] = []
    # the receipt's texts (its wording in a quote, the answer) read before the write transaction (on SQLite BEGIN
    # IMMEDIATE: every read inside holds the write lock), for each mail: an administrator's edit applies to the next
    texts = templates.read(("receipt",))
    try:
        with database.atomic():
            thread = _thread(parsed)
            if parsed.automated not in QUOTING:  # a receipt quoted (a reply, a forward, an .eml): its PIN masked
                text = messagelog.mask_quoted_pins(text, thread, texts)
            try:
                with database.atomic():
                    message = Message.create(channel="email", direction="in", address=parsed.sender[:MAX_ADDRESS],
                                             body=text, status="received", provider_id=parsed.dedupe_key,
                                             created_at=now_db, updated_at=now_db)
            except peewee.IntegrityError:
                earlier = Message.get(Message.provider_id == parsed.dedupe_key)
                return MailResult("duplicate", earlier.id, earlier.ticket.number if earlier.ticket_id else "")
            MailHeader.create(message=message, msgid=(parsed.message_id or parsed.dedupe_key)[:255],
                              in_reply_to=parsed.in_reply_to[:255], references=" ".join(parsed.references)[:4000],
                              subject=parsed.subject, sender=parsed.sender, recipient=settings.from_address,
                              automated=parsed.automated, content_hash=parsed.content_hash)
            result = _act(message, parsed, text, thread, settings, attachments_root, clock, now, stored, notes,
                          texts)
    except files.StorageFull:
        files.discard(attachments_root, stored)
        # The storage's own storage_full alarm outlives the rollback (core.alarms stores it once the
        # transaction has ended); this one says what happens to the mail (left on the server: channels.imap).
        raise_alarm("storage_full", "附件存储已满，带附件的邮件留在邮箱，有空间后再收取 / attachments disk full: "
                                    "mail with attachments left in the mailbox, read again once there is room",
                    subject="attachments", severity=CRITICAL)
        raise
    except BaseException:
        files.discard(attachments_root, stored)  # nothing half-stored when the transaction did not commit
        raise
    log.info("e-mail from %s: %s %s", parsed.sender, result.outcome, result.ticket)
    return result


def _ignore(message: Message, reason: str) -> None:
    Message.update(status="ignored", error=reason[:255]).where(Message.id == message.id).execute()


def _act(message, parsed: ParsedMail, text, thread: Optional[Ticket], settings, root, clock, now, stored,
         notes, texts: templates.Texts) -> MailResult:
    if parsed.automated in QUOTING:
        _ignore(message, {"bounce": "退信 / bounce", "auto_reply": "自动回复 / auto-reply"}[parsed.automated])
        if parsed.automated == "bounce":
            _fail_bounced(parsed, clock)
        if thread is not None:  # kept with the ticket it concerns, without a note or an answer
            Message.update(ticket=thread).where(Message.id == message.id).execute()
        return MailResult(parsed.automated, message.id, thread.number if thread else "")
    if _flooding(parsed.sender, now, settings):
        _ignore(message, "来信过多，已暂停 / throttled (flood)")
        _alarm_flood(parsed.sender, now, clock)
        return MailResult("throttled", message.id)
    stored[:], notes[:] = _store_files(parsed, root, settings, clock)
    ticket = thread
    if ticket is not None and _rating(parsed, ticket, text, message, clock):
        outcome = "rating"
    elif ticket is not None:
        note = f"市民邮件 / citizen e-mail: {parsed.subject}\n{text}".strip()
        services.add_note(ticket, note[:services.MAX_CONTENT], actor=None, actor_label="email")
        outcome = "reply"
    else:
        content = text or parsed.subject or "（空邮件 / empty e-mail）"
        ticket = services.create_ticket(content[:services.MAX_CONTENT], title=parsed.subject[:services.MAX_TITLE],
                                        channel="email", citizen_email=parsed.sender,
                                        citizen_name=parsed.sender_name, reply_by="email", actor_label="email",
                                        clock=clock, note="电子邮件受理 / e-mail")
        outcome = "ticket"
    for info in stored:
        files.attach_stored(ticket, info, kind="email", clock=clock, actor_label="email")
    for note in notes:
        services.add_note(ticket, note, actor=None, actor_label="email")
    Message.update(ticket=ticket).where(Message.id == message.id).execute()
    acknowledged = False
    if outcome == "ticket" and not parsed.automated and not opted_out(parsed.sender):
        body = templates.render("receipt", receipt_values(ticket, ticket.plain_pin), texts=texts)
        acknowledged = enqueue_email(parsed.sender, body, _subject("receipt", number=ticket.number), purpose="receipt",
                                     ticket=ticket, dedupe_key=f"email-receipt:{ticket.id}",
                                     in_reply_to=parsed.message_id, references=parsed.references,
                                     settings=settings, clock=clock) is not None
    return MailResult(outcome, message.id, ticket.number, acknowledged, tuple(notes))


def _rating(parsed: ParsedMail, ticket: Ticket, text: str, message: Message, clock) -> bool:
    """An answer to our satisfaction mail whose first own line is 1/2/3 (or 满意/基本满意/不满意): recorded
    as the call-back rating, once, like a rating by SMS. False leaves the mail to be kept as a note."""
    if not parsed.thread_ids or ticket.status != wf.APPROVED or ticket.satisfaction:
        return False
    asked = MailHeader.select().join(Message).where(
        MailHeader.msgid.in_(list(parsed.thread_ids)) & (Message.ticket == ticket)
        & (Message.purpose == "satisfaction") & (Message.direction == "out")).exists()
    if not asked:
        return False
    first = next((line.strip() for line in (text or "").splitlines() if line.strip()
                  and not line.lstrip().startswith(">")), "")
    keyword = sms.parse_keyword(first)
    if keyword is None or keyword.kind != "rating":
        return False
    note = f"邮件满意度评价 / satisfaction by e-mail (message {message.id})"
    try:
        with database.atomic():
            services.call_back(ticket, None, keyword.arg, note, system=True, clock=clock)
    except (wf.WorkflowError, services.TicketInputError) as exc:
        log.info("e-mail rating %s for %s kept as a note: %s", keyword.arg, ticket.number, exc)
        return False
    return True


def opted_out(address: str) -> bool:
    return OptOut.select().where(OptOut.address == address[:MAX_ADDRESS]).exists()


def _fail_bounced(parsed: ParsedMail, clock) -> None:
    """A bounce naming one of our mails (its references, the returned mail enclosed whole, or its Message-ID
    quoted in the text): that mail was not delivered."""
    ids = set(parsed.thread_ids) | set(parsed.returned) | {i for i in mail.message_ids(parsed.text)
                                                           if i.startswith("12345.")}
    if not ids:
        return
    ours = [h.message_id for h in MailHeader.select().join(Message).where(
        MailHeader.msgid.in_(list(ids)) & (Message.direction == "out"))]
    if ours:
        Message.update(status="failed", error="退信 / bounced", updated_at=services.to_db(clock.now())).where(
            Message.id.in_(ours)).execute()


# ---- notices from the ticket history ----------------------------------------------------------------
def _notices_for(row: TicketHistory, settings, clock) -> None:
    ticket: Ticket = row.ticket
    if not ticket.citizen_email or ticket.anonymous:
        return
    # No receipt for "create": it carries the PIN, which only the ticket's creation knows (channels.receipts;
    # e-mail tickets are acknowledged by the intake, which knows whether the mail was automated).
    if row.action == "approve" and ticket.reply_by == "email":
        body = templates.render("result", {"number": ticket.number, "reply": ticket.reply or ""})
        enqueue_for_ticket(ticket, body, purpose="result", dedupe_key=f"email-approve:{row.id}",
                           settings=settings, clock=clock)
        # The satisfaction question (as by SMS): an answer starting with 1/2/3 is the call-back rating.
        enqueue_for_ticket(ticket, templates.render("satisfaction", {"number": ticket.number}),
                           purpose="satisfaction", subject=_subject("satisfaction", number=ticket.number),
                           dedupe_key=f"email-satisfaction:{row.id}", settings=settings, clock=clock)


def scan_history(settings, clock: Optional[Clock] = None) -> int:
    """Queue e-mail notices for history rows written since the last scan (its own cursor, like the SMS
    watcher's, with its own gaps: reading a row twice queues nothing twice)."""
    clock = clock or Clock()
    return notices.follow_history(CURSOR, ("approve",), lambda row: _notices_for(row, settings, clock))


def queue_material(settings, clock: Optional[Clock] = None) -> int:
    """Queue an e-mail for each pending IVR material request by e-mail (marked sent only once it has left)."""
    from caseflow.models import MaterialRequest

    queued = 0
    for request, key, text in notices.material_due("email"):
        body = templates.render("material", {"topic": request.topic, "text": text})
        message = enqueue_email(request.address, body, _subject("material", topic=request.topic),
                                purpose="material", dedupe_key=key, ref=str(request.id), settings=settings,
                                clock=clock)
        if message is None:
            MaterialRequest.update(status="failed").where((MaterialRequest.id == request.id)
                                                          & (MaterialRequest.status == "pending")).execute()
            log.warning("material request %s: %r is not an e-mail address", request.id, request.address[:64])
        queued += message is not None
    return queued


def after_failed(message: Message, clock: Optional[Clock] = None) -> None:
    """An e-mail given up on: a material request is failed, the centre is told."""
    from caseflow.models import MaterialRequest

    if message.purpose == "material" and message.ref:
        MaterialRequest.update(status="failed").where(
            (MaterialRequest.id == int(message.ref)) & (MaterialRequest.status == "pending")).execute()
    centre = services.centre_department()
    if centre is not None:
        services.notify(f"邮件发送失败：{message.address}（{message.error[:80]}）", department=centre,
                        ticket=message.ticket if message.ticket_id else None, kind="mail_failed", clock=clock)
