"""The acceptance receipts that carry a new ticket's query PIN (SMS, e-mail), queued in the ticket's own
transaction: the PIN is stored only as its keyed hash (caseflow.pins), so the history followers that queue the
other notices later (channels.notices, channels.mailflow) cannot put it in a message any more.

``connect(config)`` (each process that files tickets: hotline.product, hotline.worker) connects ``Receipts``
to caseflow.pins; services.create_ticket calls it with the plain PIN once the ticket's rows are written.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional

from caseflow import new_ticket, pins
from caseflow.models import Ticket
from channels import sms, templates
from channels.models import Message, MessageTemplate, OptOut
from channels.outbox import enqueue, sms_row, stored_text_and_opt_out

log = logging.getLogger(__name__)


def receipt_values(ticket: Ticket, pin: str) -> dict:
    """The receipt template's values (templates.DEFAULTS["receipt"])."""
    return {"number": ticket.number, "pin": pin, "title": ticket.title}


def queue_sms(ticket: Ticket, pin: str, *, settings=None, clock=None):
    """The SMS receipt to the ticket's phone (one per ticket: ``receipt-no:<number>``); an SMS ticket's is the
    answer to the citizen's own message, which an opt-out does not stop. None when there is no mobile number."""
    if not ticket.citizen_phone:
        return None
    return enqueue(ticket.citizen_phone, "receipt", receipt_values(ticket, pin), purpose="receipt", ticket=ticket,
                   dedupe_key=sms_key(ticket), answer=ticket.channel == "sms", settings=settings, clock=clock)


def sms_key(ticket: Ticket) -> str:
    """The SMS receipt's dedupe key: by the ticket's number, known before its id (the row can be built before
    the ticket's INSERT, for the same statement). Not ``receipt:<n>``: receipts queued before kept their ticket's
    id there, and an id reaching 8 digits would take a new ticket's number key."""
    return f"receipt-no:{ticket.number}"


# The receipt template's stored text (None: the default) as this process last saw it, per language. A new
# ticket's receipt is rendered from it without a read; the ticket's statement writes the receipt only while the
# text in force is still this one (SmsReceipt.condition), and a receipt left out for that is read and queued
# again (SmsReceipt.again): an administrator's edit costs each process one read, not every ticket one.
_seen_texts: dict[str, Optional[str]] = {}


@dataclass(frozen=True)
class SmsReceipt:
    """The SMS receipt of a ticket still to be written (``Receipts.split``): its row, rendered from the text this
    process last saw, goes into the ticket's own rows (caseflow.new_ticket) guarded by ``condition``: the number
    has not opted out (unless the receipt answers the citizen's own SMS) and the template's text is the one it
    was rendered from. The opt-out and the text are part of the ticket's statement, not reads before it: on
    PostgreSQL each read was a round trip of the creation (bench/caseflow.py create_ticket)."""

    address: str
    answer: bool
    settings: Any = None
    clock: Any = None
    lang: str = "zh"

    def row(self, draft: Ticket, pin: str) -> new_ticket.Guarded:
        """The receipt of ``draft`` (rendered for its number), written only where ``condition`` holds. A text
        seen before that fails to render is read again first (it may have been mended since)."""
        seen = _seen_texts.get(self.lang)
        try:
            message = self._message(draft, pin, seen)
        except templates.TemplateInputError:
            if seen is None:
                raise
            seen = _seen_texts[self.lang] = templates.stored_text("receipt", self.lang)
            message = self._message(draft, pin, seen)
        return new_ticket.Guarded(message, *self.condition(seen))

    def _message(self, draft: Ticket, pin: str, text: Optional[str]) -> Message:
        return sms_row(self.address, "receipt", receipt_values(draft, pin), purpose="receipt", ticket=draft,
                       dedupe_key=sms_key(draft), answer=self.answer, lang=self.lang, settings=self.settings,
                       clock=self.clock, texts=templates.Texts(known={("receipt", self.lang): text}))

    def condition(self, seen: Optional[str]) -> tuple[str, tuple]:
        """The SQL condition of the receipt's row and its parameters (the database's placeholders)."""
        param = Message._meta.database.param
        text = (f'COALESCE((SELECT "body" FROM {_table(MessageTemplate)} WHERE "key" = {param} '
                f'AND "lang" = {param}), \'\') = {param}')
        params = ("receipt", self.lang, seen or "")  # an administrator's text is never empty (templates.check)
        if self.answer:
            return text, params
        return (f'NOT EXISTS (SELECT 1 FROM {_table(OptOut)} WHERE "address" = {param}) AND {text}',
                (self.address,) + params)

    def again(self, ticket: Ticket, pin: str, clock=None) -> None:
        """The receipt the ticket's statement left out (``row``'s id None): opted out, nothing to do; or the
        template's text changed since this process saw it: kept now, and the receipt queued with it."""
        stored, opted = stored_text_and_opt_out("receipt", self.lang, self.address)
        _seen_texts[self.lang] = stored
        if opted and not self.answer:
            return
        enqueue(self.address, "receipt", receipt_values(ticket, pin), purpose="receipt", ticket=ticket,
                dedupe_key=sms_key(ticket), answer=self.answer, lang=self.lang, settings=self.settings,
                clock=clock or self.clock, texts=templates.Texts(known={("receipt", self.lang): stored}))


def _table(model) -> str:
    return '"' + model._meta.table_name.replace('"', '""') + '"'


def sms_receipt(phone: str, channel: str, *, settings=None, clock=None) -> Optional[SmsReceipt]:
    """The SMS receipt of a ticket still to be written to ``phone``, as queue_sms would queue it (the number
    normalised, a mobile one), or None when no receipt goes there. Nothing is read here."""
    if not phone:
        return None
    try:
        address = sms.normalise_number(phone)
    except sms.SmsInputError:
        return None
    if not sms.is_mobile(address):
        return None
    return SmsReceipt(address, channel == "sms", settings, clock)


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
    return receipts

