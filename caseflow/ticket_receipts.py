"""How a new ticket's creation runs the receipt writers caseflow.pins connects (the messages that carry its query
PIN), so that no receipt ever costs the citizen's ticket: the SMS receipt's row split off to be written with the
ticket's own rows (caseflow.new_ticket: on PostgreSQL in its one statement), every other writer run in a
savepoint of the ticket's transaction, and each failure logged and raised as the ``receipt_failed`` alarm
without the PIN. Called by services.create_ticket only; the writers themselves are channels.receipts'."""
from __future__ import annotations

import logging
from typing import Sequence

from caseflow import pins
from caseflow.models import Ticket
from caseflow.values import _db
from core.alarms import raise_alarm
from core.clock import Clock

log = logging.getLogger("caseflow.services")  # logged as the creation it is part of (services.create_ticket)


def queue_receipt(receipt: pins.Receipt, ticket: Ticket, pin: str, clock: Clock) -> bool:
    """Run one receipt writer in a savepoint of its own inside the ticket's transaction; True if it queued.
    A receipt that cannot be queued (the outbox refused its row, an edited template that fails to render) is
    rolled back alone, logged and raised as an alarm (``receipt_failed``): the citizen's ticket is filed all
    the same, since nothing the citizen gave may be lost for a message about it. The PIN is kept out of both."""
    try:
        with _db().atomic():
            receipt(ticket, pin, clock)
        return True
    except Exception as error:  # noqa: BLE001 - whatever a writer raises, the ticket stays
        receipt_failed(ticket.number, pin, error)
        return False


def receipt_failed(number: str, pin: str, error: BaseException) -> None:
    """Log a receipt not queued for ticket ``number`` and raise the ``receipt_failed`` alarm, without the PIN."""
    reason = f"{type(error).__name__}: {error}".replace(pin, "******")[:200]
    log.warning("receipt of ticket %s not queued (%s)", number, reason)
    raise_alarm("receipt_failed", f"工单 {number} 的受理回执未能排队发送 / the receipt of ticket {number} was "
                f"not queued: {reason}", subject="receipts")


def receipt_rows(receipts: Sequence[pins.Receipt], phone: str, channel: str, clock: Clock):
    """The SMS receipt for the ticket's own rows (``.row(draft, pin)`` -> a new_ticket.Guarded row, ``.rewrite(
    row, ticket, pin)`` when its probe found the text it was rendered from no longer in force; None when no writer
    offers one: a writer with ``split``, channels.receipts.Receipts) and the writers left to run in the ticket's
    transaction (the e-mail receipt, writers without ``split``). At most one SMS receipt: the first."""
    builder, rest = None, []
    for receipt in receipts:
        split = getattr(receipt, "split", None)
        if builder is not None or split is None:
            rest.append(receipt)
            continue
        builder, remainder = split(phone, channel, clock)
        if remainder is not None:
            rest.append(remainder)
    return builder, tuple(rest)


def receipt_row(receipt, draft: Ticket, pin: str):
    """The SMS receipt's guarded row for ``draft`` (rendered for its number), None without a receipt or when
    rendering fails (an edited template): then logged and raised as ``receipt_failed``, the ticket filed."""
    if receipt is None:
        return None
    try:
        return receipt.row(draft, pin)
    except Exception as error:  # noqa: BLE001 - whatever the template does, the ticket stays
        receipt_failed(draft.number, pin, error)
        return None
