"""The acceptance receipts that carry a new ticket's query PIN (SMS, e-mail), queued in the ticket's own
transaction: the PIN is stored only as its keyed hash (caseflow.pins), so the history followers that queue the
other notices later (channels.notices, channels.mailflow) cannot put it in a message any more.

``connect(config)`` (each process that files tickets: hotline.product, hotline.worker) connects ``Receipts``
to caseflow.pins; services.create_ticket calls it with the plain PIN once the ticket's rows are written.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from caseflow import pins
from caseflow.models import Ticket
from channels import templates
from channels.outbox import enqueue

log = logging.getLogger(__name__)


def receipt_values(ticket: Ticket, pin: str) -> dict:
    """The receipt template's values (templates.DEFAULTS["receipt"])."""
    return {"number": ticket.number, "pin": pin, "title": ticket.title}


def queue_sms(ticket: Ticket, pin: str, *, settings=None, clock=None):
    """The SMS receipt to the ticket's phone (one per ticket: ``receipt:<id>``); an SMS ticket's is the answer
    to the citizen's own message, which an opt-out does not stop. None when there is no mobile number."""
    if not ticket.citizen_phone:
        return None
    return enqueue(ticket.citizen_phone, "receipt", receipt_values(ticket, pin), purpose="receipt", ticket=ticket,
                   dedupe_key=f"receipt:{ticket.id}", answer=ticket.channel == "sms", settings=settings, clock=clock)


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

