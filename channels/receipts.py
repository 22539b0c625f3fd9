"""The acceptance receipts that carry a new ticket's query PIN (SMS, e-mail), queued in the ticket's own
transaction: the PIN is stored only as its keyed hash (caseflow.pins), so the history followers that queue the
other notices later (channels.notices, channels.mailflow) cannot put it in a message any more.

``connect(config)`` (each process that files tickets: hotline.product, hotline.worker) connects ``Receipts``
to caseflow.pins; services.create_ticket calls it with the plain PIN once the ticket's rows are written.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional

from caseflow import pins
from caseflow.models import Ticket
from channels import sms, templates
from channels.models import Message
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


def sms_builder(phone: str, channel: str, *, settings=None, clock=None) -> Optional[Callable[[Ticket, str], Message]]:
    """What builds the SMS receipt of a ticket still to be inserted (``draft, pin`` -> its unsaved row, the ticket
    set to the draft, rendered for the draft's number), as queue_sms would queue it: the number checked, its
    opt-out and the template's text read now, once for every number drawn. None when no receipt goes there."""
    if not phone:
        return None
    try:
        address = sms.normalise_number(phone)
    except sms.SmsInputError:
        return None
    answer = channel == "sms"
    if not sms.is_mobile(address):
        return None
    stored, opted = stored_text_and_opt_out("receipt", "zh", address)
    if opted and not answer:
        return None
    texts = templates.Texts(known={("receipt", "zh"): stored})

    def build(draft: Ticket, pin: str) -> Message:
        return sms_row(address, "receipt", receipt_values(draft, pin), purpose="receipt", ticket=draft,
                       dedupe_key=sms_key(draft), answer=answer, settings=settings, clock=clock, texts=texts)

    return build


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

    def split(self, phone: str, channel: str, clock=None) -> tuple[Optional[Callable], Optional[pins.Receipt]]:
        """For a ticket written in one statement (caseflow.services.create_ticket on PostgreSQL): the SMS
        receipt's row builder (sms_builder) and the rest, a writer for the ticket's transaction (the e-mail
        receipt, which needs its MailHeader), None when there is none."""
        rest = _EmailReceipt(self.email_settings) if self.email_settings is not None else None
        return sms_builder(phone, channel, settings=self.sms_settings, clock=clock), rest


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

