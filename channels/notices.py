"""The notices the hotline sends by SMS, read from the ticket history: caseflow records every event in
TicketHistory inside the event's own transaction, so this watcher needs no hook in caseflow, and a notice is
never lost to a crash between the event and the sending (the cursor moves only after the messages are
queued, and each notice has a dedupe key, so reading a row twice queues nothing twice).

- create (any channel, a mobile number): the acceptance receipt with number and query code;
- approve: the result notice, and the satisfaction question when the citizen asked for an SMS reply;
- dispatch, sub_dispatch, reopen, reject (back to the unit): an alert to the unit's contact phone;
- warn (the deadline job's due-soon warning, written once per ticket): an alert to the unit's contact phone;
- supervise (督办): an alert to the unit's contact phone;
- overdue: an alert to the unit's contact phone;
- material a caller asked for in the IVR (ivr MaterialRequest, channel sms): the knowledge answer's text.
"""
from __future__ import annotations

import logging
from typing import Callable, Optional

from caseflow.models import Ticket, TicketHistory
from channels import templates
from channels.models import ChannelCursor, Message
from channels.outbox import enqueue
from core.clock import Clock

log = logging.getLogger(__name__)

CURSOR = "ticket_history"
BATCH = 500
CHUNK = 50  # history rows handled between two moves of the cursor
ALERT_ACTIONS = ("dispatch", "sub_dispatch", "reopen", "reject")
# History actions that alert the holding unit with their own template (warn: due soon, once per ticket).
UNIT_ALERTS = {"overdue": "overdue_alert", "warn": "due_soon_alert", "supervise": "supervise_alert"}


def start_cursor(name: str = CURSOR) -> ChannelCursor:
    """The history cursor ``name``; on the first start it begins after the history that exists (old
    tickets get no receipts now)."""
    cursor = ChannelCursor.get_or_none(ChannelCursor.name == name)
    if cursor is None:
        last = TicketHistory.select(TicketHistory.id).order_by(TicketHistory.id.desc()).first()
        cursor = ChannelCursor.create(name=name, position=last.id if last else 0)
    return cursor


def follow_history(name: str, actions: tuple, handle: Callable[[TicketHistory], None]) -> int:
    """Hand each history row with one of ``actions`` written since the cursor ``name`` to ``handle`` (which
    queues its messages, each in a transaction of its own), and move the cursor past every CHUNK rows handled:
    a crash queues nothing twice (a row read again finds its messages' dedupe keys used) and loses nothing (the
    cursor moves only after the rows' messages are queued). Returns how many rows were read. The SMS notices
    and the e-mail notices each follow the history with their own cursor.

    No transaction around the rows: one of CHUNK rows held its pooled connection across every row's work (the
    templates, the numbers, each statement's wait for the hub), up to 59 s under the simulation's load
    (docs/performance.md), while the pool's other waiters timed out; now a connection is out only for a
    statement or a message's own transaction."""
    cursor = start_cursor(name)
    # Each row's ticket comes in the same query (every notice reads it: one query per row before).
    rows = list(TicketHistory.select(TicketHistory, Ticket).join(Ticket)
                .where((TicketHistory.id > cursor.position) & TicketHistory.action.in_(actions))
                .order_by(TicketHistory.id).limit(BATCH))
    if not rows:
        # Skip past other actions too, so the next scan starts near the end.
        last = TicketHistory.select(TicketHistory.id).order_by(TicketHistory.id.desc()).first()
        if last is not None and last.id > cursor.position:
            ChannelCursor.update(position=last.id).where(ChannelCursor.name == name).execute()
        return 0
    for at in range(0, len(rows), CHUNK):
        chunk = rows[at:at + CHUNK]
        for row in chunk:
            handle(row)
        ChannelCursor.update(position=chunk[-1].id).where(ChannelCursor.name == name).execute()
    return len(rows)


def _notices_for(row: TicketHistory, settings, clock: Clock, texts: templates.Texts) -> None:
    ticket: Ticket = row.ticket
    phone = ticket.citizen_phone
    key = f"{row.action}:{row.id}"
    # No receipt for "create": it carries the PIN, which only the ticket's creation knows (channels.receipts).
    if row.action == "approve" and phone and ticket.reply_by != "none" and not ticket.anonymous:
        enqueue(phone, "result", {"number": ticket.number, "reply": (ticket.reply or "")[:300]}, purpose="result",
                ticket=ticket, dedupe_key=key, settings=settings, clock=clock, texts=texts)
        if ticket.reply_by == "sms":
            enqueue(phone, "satisfaction", {"number": ticket.number}, purpose="satisfaction", ticket=ticket,
                    dedupe_key=f"satisfaction:{row.id}", settings=settings, clock=clock, texts=texts)
    elif row.action in ALERT_ACTIONS or row.action in UNIT_ALERTS:
        unit = ticket.department if ticket.department_id else None
        if unit is None or not unit.contact_phone:
            return
        if row.action in UNIT_ALERTS:
            values = {"number": ticket.number, "title": ticket.title}
            if row.action == "warn":
                values["deadline"] = clock.local(ticket.deadline).strftime("%m-%d %H:%M") if ticket.deadline else ""
            enqueue(unit.contact_phone, UNIT_ALERTS[row.action], values, purpose="alert", ticket=ticket,
                    dedupe_key=key, settings=settings, clock=clock, texts=texts)
        else:
            enqueue(unit.contact_phone, "dispatch_alert", {"number": ticket.number, "title": ticket.title,
                                                           "department": unit.name},
                    purpose="alert", ticket=ticket, dedupe_key=key, settings=settings, clock=clock, texts=texts)


def scan_history(settings, clock: Optional[Clock] = None) -> int:
    """Queue the notices for history rows written since the last scan; returns how many rows were read."""
    clock = clock or Clock()
    texts = templates.Texts()
    return follow_history(CURSOR, ("approve",) + ALERT_ACTIONS + tuple(UNIT_ALERTS),
                          lambda row: _notices_for(row, settings, clock, texts))


# ---- material requested in the IVR ----------------------------------------------------------------------
def material_text(topic: str) -> str:
    """The reviewed knowledge answer for ``topic`` (the first approved item found), or '' when none."""
    from caseflow import knowledge

    for item, _score in knowledge.search_items(topic, limit=5, approved_only=True):
        answers = knowledge.answers_for(item, None, approved_only=True)  # reviewed, never deleted ones
        answer = answers[0] if answers else None
        text = answer.content if answer is not None else item.content
        if text.strip():
            return text.strip()
    return ""


def material_due(channel: str):
    """The pending IVR material requests by ``channel`` ("sms", "email") with no message queued yet and a
    reviewed answer for their topic: (request, dedupe key, text) each."""
    from caseflow.models import MaterialRequest

    for request in MaterialRequest.select().where((MaterialRequest.status == "pending")
                                                  & (MaterialRequest.channel == channel)).limit(BATCH):
        key = f"material:{request.id}"
        if Message.select().where(Message.dedupe_key == key).exists():
            continue
        text = material_text(request.topic)
        if text:
            yield request, key, text


def queue_material(settings, clock: Optional[Clock] = None) -> int:
    """Queue an SMS for each pending IVR material request by SMS that has none yet (the request is marked
    sent only when the SMS is: ``material_sent``). A topic with no reviewed answer stays for the centre."""
    clock = clock or Clock()
    queued = 0
    for request, key, text in material_due("sms"):
        message = enqueue(request.address or request.caller, "material", {"topic": request.topic, "text": text},
                          purpose="material", dedupe_key=key, ref=str(request.id), answer=True,
                          settings=settings, clock=clock)
        queued += message is not None
    return queued


def after_sent(message: Message, clock: Optional[Clock] = None) -> None:
    """Follow-ups once a message has left: a material request is done."""
    if message.purpose == "material" and message.ref:
        from caseflow.services import to_db
        from caseflow.models import MaterialRequest

        MaterialRequest.update(status="sent", fulfilled_at=to_db((clock or Clock()).now())).where(
            (MaterialRequest.id == int(message.ref)) & (MaterialRequest.status == "pending")).execute()


def after_failed(message: Message, clock: Optional[Clock] = None) -> None:
    """A message given up on: the centre is told (an alarm on its desk), a material request is failed."""
    from caseflow import services
    from caseflow.models import MaterialRequest

    if message.purpose == "material" and message.ref:
        MaterialRequest.update(status="failed").where(
            (MaterialRequest.id == int(message.ref)) & (MaterialRequest.status == "pending")).execute()
    if "gave up" in message.error:  # the retry budget is spent: the duty leader hears of it
        from core.alarms import raise_alarm

        raise_alarm("sms_gave_up", f"短信重试用尽未发出 / SMS given up after {message.attempts} tries: "
                                   f"{message.error[:120]}")
    centre = services.centre_department()
    if centre is not None:
        services.notify(f"短信发送失败：{message.address[:3]}****{message.address[-4:]}（{message.error[:80]}）",
                        department=centre, ticket=message.ticket if message.ticket_id else None,
                        kind="sms_failed", clock=clock)
