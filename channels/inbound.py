"""Messages citizens text to 1063912345 (Kannel's get-url) and Kannel's delivery reports.

One inbound message is, in this order: from a blacklisted number (kept, counted, answered with nothing);
TD/退订 (opt-out recorded and confirmed); CX <number> (the citizen status words, only to the phone the
ticket was registered with); a rating 1/2/3 while a satisfaction question is open (a call-back rating, as
on the phone); other text while a question is open a note on that ticket; anything else a new ticket
(channel sms) with the acceptance receipt.

While a question is open the message is threaded to its ticket, and a message that quotes the ticket's receipt
(its query PIN pasted back) is stored, and noted, with each 6-digit run that is that PIN masked (the citizen's
other numbers kept); a receipt pasted into any message (a neighbour's, in a new ticket's text) has the PIN
after its wording masked too (channels.messagelog.mask_quoted_pins).

The receipt of a ticket filed here is written by the ticket's creation itself when the composition root
connected the receipt writers (caseflow.pins.connect_receipt: a product always does): this intake then queues
none of its own, and a receipt the creation could not write (a template that fails to render, a refused
statement) is not queued again here (the PIN is kept only as its hash): the ticket is filed, and the
``receipt_failed`` alarm leaves the retry to a person at the centre. Only a process with no writer connected
queues the receipt here, after the creation, with the PIN the creation returned.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Optional

import peewee

from caseflow import pins, services
from caseflow import workflow as wf
from caseflow.models import Ticket
from channels import messagelog, receipts, sms, templates
from channels.models import Message, OptOut
from channels.outbox import enqueue
from core.clock import Clock
from core.db import database

log = logging.getLogger(__name__)

# How long a satisfaction question stays open for a reply.
RATING_WINDOW = dt.timedelta(days=7)

# The texts a message may need: a pasted receipt's wording, and the answers. Read before its write transaction
# (on SQLite BEGIN IMMEDIATE: every read inside holds the write lock) and for each message, so an administrator's
# edit applies to the next one.
TEXTS = ("receipt", "optout", "status", "status_unknown", "thanks")


@dataclass(frozen=True)
class InboundResult:
    """What became of an inbound message: ``outcome`` is ticket, rating, query, optout, blacklisted,
    duplicate or rating_refused; ``ticket`` the ticket number involved."""

    outcome: str
    message_id: int
    ticket: str = ""


def _open_question(address: str, now: dt.datetime) -> Optional[Ticket]:
    """The ticket whose satisfaction question this number was sent most recently, if still unanswered."""
    question = (Message.select().where((Message.address == address) & (Message.direction == "out")
                                       & (Message.purpose == "satisfaction")
                                       & Message.status.in_(("sent", "delivered"))
                                       & (Message.sent_at >= services.to_db(now - RATING_WINDOW)))
                .order_by(Message.id.desc()).first())
    if question is None or not question.ticket_id:
        return None
    ticket = question.ticket
    if ticket.status != wf.APPROVED or ticket.satisfaction:
        return None
    return ticket


def handle_message(sender: str, text: str, *, provider_id: str = "", settings=None,
                   clock: Optional[Clock] = None) -> InboundResult:
    """Store and act on one citizen message. Raises sms.SmsInputError for a malformed number or empty text."""
    clock = clock or Clock()
    address = sms.normalise_number(sender)
    body = sms.clean_inbound(text)
    if not body:
        raise sms.SmsInputError("短信内容为空 / empty message")
    provider_id = str(provider_id or "").strip()[:64] or None
    now = clock.now()
    now_db = services.to_db(now)
    if provider_id:
        earlier = Message.get_or_none(Message.provider_id == provider_id)
        if earlier is not None:  # Kannel retried a request we already answered
            return InboundResult("duplicate", earlier.id, earlier.ticket.number if earlier.ticket_id else "")
    texts = templates.read(TEXTS)
    with database.atomic():
        question = _open_question(address, now)  # a reply now is threaded to its ticket
        kept = messagelog.mask_quoted_pins(body, question, texts)  # a pasted receipt's PIN: never stored, nor filed
        try:
            with database.atomic():
                message = Message.create(channel="sms", direction="in", address=address, body=kept,
                                         status="received", provider_id=provider_id, created_at=now_db,
                                         updated_at=now_db, segments=sms.segments(body))
        except peewee.IntegrityError:
            earlier = Message.get(Message.provider_id == provider_id)
            return InboundResult("duplicate", earlier.id)
        result = _act(message, address, kept, question, settings, clock, now, texts)
        if result.ticket:
            Message.update(ticket=Ticket.get(Ticket.number == result.ticket)).where(
                Message.id == message.id).execute()
    log.info("sms from %s****: %s %s", address[:3], result.outcome, result.ticket)
    return result


def _reply(address, key, values, settings, clock, texts, ticket=None, purpose="answer"):
    return enqueue(address, key, values, purpose=purpose, ticket=ticket, answer=True, settings=settings,
                   clock=clock, texts=texts)


def _act(message: Message, address: str, body: str, ticket: Optional[Ticket], settings, clock: Clock,
         now, texts: templates.Texts) -> InboundResult:
    if services.is_blacklisted(address):
        Message.update(status="ignored", error="黑名单号码 / blacklisted").where(Message.id == message.id).execute()
        return InboundResult("blacklisted", message.id)
    keyword = sms.parse_keyword(body)
    if keyword is not None and keyword.kind == "optout":
        OptOut.get_or_create(address=address, defaults={"keyword": keyword.arg[:16], "at": services.to_db(now)})
        _reply(address, "optout", {}, settings, clock, texts, purpose="optout")
        return InboundResult("optout", message.id)
    if keyword is not None and keyword.kind == "query":
        found = services.status_query(keyword.arg, address) if keyword.arg else None
        if found is None:
            _reply(address, "status_unknown", {}, settings, clock, texts)
            return InboundResult("query", message.id)
        ticket = Ticket.get(Ticket.number == found["number"])
        _reply(address, "status", {"number": found["number"], "words": found["label"]}, settings, clock,
               texts, ticket=ticket)
        return InboundResult("query", message.id, found["number"])
    if ticket is not None and keyword is not None and keyword.kind == "rating":
        note = f"短信满意度评价 / satisfaction by SMS (message {message.id})"
        try:
            with database.atomic():
                services.call_back(ticket, None, keyword.arg, note, system=True, clock=clock)
        except (wf.WorkflowError, services.TicketInputError) as exc:
            log.info("sms rating %s for %s kept as a note: %s", keyword.arg, ticket.number, exc)
            services.add_note(ticket, f"{note}: {keyword.arg}", actor=None, actor_label="sms")
            return InboundResult("rating_refused", message.id, ticket.number)
        _reply(address, "thanks", {"number": ticket.number, "rating": wf.label(wf.SATISFACTION, keyword.arg)},
               settings, clock, texts, ticket=ticket)
        return InboundResult("rating", message.id, ticket.number)
    if ticket is not None:
        # Free text while a question is open: threaded to that ticket, not a new one.
        services.add_note(ticket, f"市民短信 / citizen SMS: {message.body}", actor=None, actor_label="sms")
        return InboundResult("reply", message.id, ticket.number)
    ticket = services.create_ticket(body, channel="sms", citizen_phone=address, reply_by="sms",
                                    actor_label="sms", clock=clock, note="短信受理 / SMS 1063912345")
    if not pins.receipts():
        # A process with no receipt writer connected (a product connects them: the creation wrote the receipt
        # then): queued now with the PIN only the creation knows, the answer to the citizen's own message.
        receipts.queue_sms(ticket, ticket.plain_pin, settings=settings, clock=clock, texts=texts)
    return InboundResult("ticket", message.id, ticket.number)
