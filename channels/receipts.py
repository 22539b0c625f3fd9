"""The acceptance receipts that carry a new ticket's query PIN (SMS, e-mail), written with the ticket: the PIN
is stored only as its keyed hash (caseflow.pins), so the history followers that queue the other notices later
(channels.notices, channels.mailflow) cannot put it in a message any more.

``connect(config)`` (each process that files tickets: hotline.product, hotline.worker) connects ``Receipts``
to caseflow.pins. services.create_ticket writes the SMS receipt's row among the ticket's own rows
(``Receipts.split`` -> ``SmsReceipt``: on PostgreSQL in the ticket's one statement) and runs the e-mail receipt
in a savepoint of the ticket's transaction.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional

import peewee

from caseflow import new_ticket, pins
from caseflow.models import Ticket
from channels import sms, templates
from channels.models import Message, MessageTemplate, OptOut
from channels.outbox import enqueue, sms_row
from core.alarms import raise_alarm
from core.statements import identifier

log = logging.getLogger(__name__)


def receipt_values(ticket: Ticket, pin: str) -> dict:
    """The receipt template's values (templates.DEFAULTS["receipt"])."""
    return {"number": ticket.number, "pin": pin, "title": ticket.title}


def queue_sms(ticket: Ticket, pin: str, *, settings=None, clock=None, texts=None):
    """The SMS receipt to the ticket's phone (one per ticket: ``receipt-no:<number>``); an SMS ticket's is the
    answer to the citizen's own message, which an opt-out does not stop. None when there is no mobile number.
    ``texts``: the texts in force read before (channels.templates.Texts), else the receipt's is read here."""
    if not ticket.citizen_phone:
        return None
    return enqueue(ticket.citizen_phone, "receipt", receipt_values(ticket, pin), purpose="receipt", ticket=ticket,
                   dedupe_key=sms_key(ticket), answer=ticket.channel == "sms", settings=settings, clock=clock,
                   texts=texts)


def sms_key(ticket: Ticket) -> str:
    """The SMS receipt's dedupe key: by the ticket's number, known before its id (the row can be built before
    the ticket's INSERT, for the same statement). Not ``receipt:<n>``: receipts queued before kept their ticket's
    id there, and an id reaching 8 digits would take a new ticket's number key."""
    return f"receipt-no:{ticket.number}"


# The receipt template's stored text (None: the default) as this process last saw it, per language: read at
# connect, then from the database only when the ticket's statement finds another text in force. A new ticket's
# receipt is rendered from it without a read; the statement writes the receipt with the ticket (atomic: a
# receipt is never lost between the two) and says whether that text is still the one in force; when it is not
# (an administrator's edit, here or in another process), the text is read, kept, and the queued receipt rendered
# again with it (SmsReceipt.rewrite): an edit costs each process one read and one UPDATE, not every ticket a read.
_seen_texts: dict[str, Optional[str]] = {}


def forget_texts() -> None:
    """Forget the receipt texts seen (tests: each starts from the default, as a new process would)."""
    _seen_texts.clear()


def see_texts(langs=("zh",)) -> None:
    """Read the receipt template's text in force now (a process's start): its first receipts then need no
    rewrite. A database not reachable yet is left to the first ticket's statement."""
    database = Message._meta.database
    opened = False
    try:
        opened = database.is_closed() and database.connect()  # a pooled process holds no connection after
        for lang in langs:
            _seen_texts[lang] = templates.stored_text("receipt", lang)
    except peewee.PeeweeException as error:
        log.info("receipt template not read at start (%s): the first receipt reads it", error)
    finally:
        if opened:
            database.close()


@dataclass(frozen=True)
class SmsReceipt:
    """The SMS receipt of a ticket still to be written (``Receipts.split``): its row, rendered from the text this
    process last saw, goes into the ticket's own rows (caseflow.new_ticket.Guarded) unless the number opted out
    (an answer to the citizen's own SMS goes all the same), and the same statement tells whether that text is
    still the one in force (its probe). The opt-out and the text are part of the ticket's statement, not reads
    before it: on PostgreSQL each read was a round trip of the creation (bench/caseflow.py create_ticket)."""

    address: str
    answer: bool
    settings: Any = None
    clock: Any = None
    lang: str = "zh"

    def row(self, draft: Ticket, pin: str) -> new_ticket.Guarded:
        """The receipt of ``draft`` (rendered for its number), guarded by the opt-out, probing the text. A text
        seen before that fails to render is read again first (it may have been mended since); one in force that
        fails gives way to the default text (the citizen's receipt goes, the alarm says why: ``rewrite``)."""
        seen = _seen_texts.get(self.lang)
        try:
            message = self._message(draft, pin, seen)
        except templates.TemplateInputError:
            if seen is None:
                raise  # the product's own text: a bug, the ticket is filed without its receipt (alarm)
            seen = _seen_texts[self.lang] = templates.stored_text("receipt", self.lang)
            try:
                message = self._message(draft, pin, seen)
            except templates.TemplateInputError:
                seen, message = None, self._message(draft, pin, None)  # the probe then says: not in force
        param = Message._meta.database.param
        opt_outs, texts = identifier(OptOut._meta.table_name), identifier(MessageTemplate._meta.table_name)
        opt_out = "" if self.answer else f'NOT EXISTS (SELECT 1 FROM {opt_outs} WHERE "address" = {param})'
        text_in_force = (f'COALESCE((SELECT "body" FROM {texts} WHERE "key" = {param} '
                         f'AND "lang" = {param}), \'\') = {param}')
        return new_ticket.Guarded(message, opt_out, () if self.answer else (self.address,), text_in_force,
                                  ("receipt", self.lang, seen or ""))  # an administrator's text is never empty

    def _message(self, draft: Ticket, pin: str, text: Optional[str]) -> Message:
        return sms_row(self.address, "receipt", receipt_values(draft, pin), purpose="receipt", ticket=draft,
                       dedupe_key=sms_key(draft), answer=self.answer, lang=self.lang, settings=self.settings,
                       clock=self.clock, texts=templates.Texts(known={("receipt", self.lang): text}))

    def rewrite(self, message: Message, ticket: Ticket, pin: str) -> None:
        """The receipt written with ``ticket`` from a text no longer in force (its probe said so): the text in
        force read and kept, the queued receipt rendered again with it (unless the gateway has it already).
        Whatever fails here leaves the receipt as written, logged: it still carries the number and the PIN, and
        the ticket is filed (its creation must not fail after it). A text in force that does not render raises
        the ``receipt_failed`` alarm: receipts go with the text before it (or the default) until it is mended."""
        try:
            stored = _seen_texts[self.lang] = templates.stored_text("receipt", self.lang)
            again = self._message(ticket, pin, stored)
            (Message.update(body=again.body, segments=again.segments)
             .where((Message.id == message.id) & (Message.status == "queued")).execute())
        except Exception as error:  # noqa: BLE001 - the receipt as written goes out; the ticket stays filed
            reason = f"{type(error).__name__}: {error}".replace(pin, "******")[:200]
            log.warning("receipt of ticket %s keeps the template text it was written with (%s)", ticket.number,
                        reason)
            if isinstance(error, templates.TemplateInputError):
                raise_alarm("receipt_failed", f"受理回执模板无法生成，工单 {ticket.number} 的回执按原文本发送 / the "
                            f"receipt template in force fails; ticket {ticket.number}'s receipt goes with the text "
                            f"before it: {reason}", subject="receipts")


def sms_receipt(phone: str, channel: str, *, settings=None, clock=None) -> Optional[SmsReceipt]:
    """The SMS receipt of a ticket still to be written to ``phone``, as queue_sms would queue it (the number
    normalised, a mobile one), or None when no receipt goes there. Nothing is read here."""
    address = sms.mobile_number(phone) if phone else None
    return None if address is None else SmsReceipt(address, channel == "sms", settings, clock)


def queue_email(ticket: Ticket, pin: str, *, settings, clock=None):
    """The e-mail receipt of a ticket to be answered by e-mail (``email-receipt:<id>``). An e-mail ticket's
    is queued by the intake (channels.mailflow), which knows whether the mail was automated."""
    from channels.mailflow import SUBJECTS, enqueue_for_ticket

    if not ticket.citizen_email or ticket.anonymous or ticket.channel == "email" or ticket.reply_by != "email":
        return None
    body = templates.render("receipt", receipt_values(ticket, pin))
    return enqueue_for_ticket(ticket, body, purpose="receipt", subject=SUBJECTS["receipt"][0].format(
        number=ticket.number), dedupe_key=f"email-receipt:{ticket.id}", settings=settings, clock=clock)


@dataclass(frozen=True)
class Receipts:
    """The receipts a process queues for each new ticket: by SMS always (the SMS round sends what its gateway
    takes, as it did the history's notices), by e-mail when the e-mail channel sends (``email_settings``)."""

    sms_settings: Any = None
    email_settings: Any = None

    def __call__(self, ticket: Ticket, pin: str, clock=None) -> None:
        queue_sms(ticket, pin, settings=self.sms_settings, clock=clock)
        if self.email_settings is not None:
            queue_email(ticket, pin, settings=self.email_settings, clock=clock)

    def split(self, phone: str, channel: str, clock=None) -> tuple[Optional[SmsReceipt], Optional[pins.Receipt]]:
        """For a ticket whose SMS receipt goes into its own rows (caseflow.services.create_ticket): that receipt
        (SmsReceipt, None when no SMS goes to ``phone``) and the rest, a writer for the ticket's transaction
        (the e-mail receipt, which needs its MailHeader), None when there is none."""
        rest = _EmailReceipt(self.email_settings) if self.email_settings is not None else None
        return sms_receipt(phone, channel, settings=self.sms_settings, clock=clock), rest


@dataclass(frozen=True)
class _EmailReceipt:
    """The e-mail receipt alone, run like any receipt writer (in a savepoint of the ticket's transaction)."""

    settings: Any

    def __call__(self, ticket: Ticket, pin: str, clock=None) -> None:
        queue_email(ticket, pin, settings=self.settings, clock=clock)


def connect(config, sms_settings=None, email_settings=None) -> Receipts:
    """Queue the receipts of every ticket this process files from now on (the settings default to the
    configuration's); returns what was connected (``caseflow.pins.disconnect_receipt`` takes it)."""
    from channels.settings import EmailSettings, SmsSettings

    sms_settings = sms_settings or SmsSettings.from_config(config)
    email_settings = email_settings or EmailSettings.from_config(config)
    receipts = Receipts(sms_settings, email_settings if email_settings.outbound else None)
    pins.disconnect_receipt()  # one set per process: a rebuilt product replaces its predecessor's
    pins.connect_receipt(receipts)
    see_texts()
    return receipts

