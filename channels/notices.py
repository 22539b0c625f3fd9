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

A history row committed late is not skipped (``follow_history``). On PostgreSQL an id comes from the sequence
when the INSERT runs, but transactions commit in any order: the row with id 100 may become visible after the
row with id 101 was read and the cursor moved past both. So the scan follows the history as log-followers
follow a log with gaps: the cursor still moves to the last id read (notices after a gap wait for nothing), and
each id missing below it is remembered as a gap (a ChannelCursor row "<cursor>#<id>" holding when the scan first
missed it, written in the cursor's own move, so a crash forgets none); each scan reads its gaps' rows again
and hands over those now committed, once (their messages' dedupe keys keep a gap read twice from queueing
twice). An id burned by a rolled-back transaction never shows up: its gap is dropped once GAP_WAIT (60 s) has
passed and no transaction holding a write lock on the history table began before the gap was first missed (the
one that took the id did, and may still commit it), and after GAP_LIMIT (1 hour) in any case, with a warning.
Every one of these times is the database server's clock (clock_timestamp() when the gap is written, and
pg_locks with pg_stat_activity's xact_start when it is aged), never the scan's: an application clock that is
stepped, fixed or sped up (a test's, bench/sim_app's) cannot drop a gap whose transaction is still open. Only
this schema's history table counts (its relation in pg_locks), so another application's or another test run's
long transaction on the same server keeps no gap; a writer whose start this role may not see (another role
without pg_read_all_stats, a prepared transaction) counts as older than every gap. A permanent gap so costs
one row per cursor and three reads per scan for about a minute; it holds up no notice. A run of more than
GAP_RUN missing ids (more history rows than any transaction of the product writes) is the sequence moved on
(setval, a restore) and is not waited for, with a warning. Chosen over a safety margin (every notice would wait
it) and over the rows' transaction ids (xmin is a 32-bit counter that wraps around; an xid8 column would be a
schema change of TicketHistory). SQLite has one writer, whose transaction holds the write lock from its INSERT
to its commit, and reuses a rolled-back rowid: ids are visible in order there, no gap is tracked and the scan is
the ids' range read and the rows' read.

SQLite (the table has no AUTOINCREMENT) would also give a new row the id of the newest row deleted, at or below a
cursor that moved past it: that row's notice would never be sent. No product path deletes a history row or a
ticket (its history goes with it, ON DELETE CASCADE): the history is append-only, and
tests/unit/channels/test_history_ids.py fails if code that deletes either is added (only tests do, on a database
of their own). VACUUM keeps the ids (an INTEGER PRIMARY KEY). An operator's purge of tickets stops the product
and then sets this cursor (ChannelCursor "ticket_history") to the highest history id left; code that deletes
them gives the table AUTOINCREMENT first (a table rebuild on SQLite: a hotline.migrations step of its own).
"""
from __future__ import annotations

import logging
from typing import Callable, Optional

import peewee

from caseflow.models import Ticket, TicketHistory
from channels import templates
from channels.models import ChannelCursor, Message
from channels.outbox import enqueue
from core import db as core_db
from core.clock import Clock

log = logging.getLogger(__name__)

CURSOR = "ticket_history"
BATCH = 500
CHUNK = 50  # history rows handled between two moves of the cursor
SPAN = 5000  # history ids (of any action) a scan looks at for its rows and its gaps
GAP_WAIT = 60  # seconds (the server's) a missing id is waited for (PostgreSQL), and while an older writer is open:
GAP_LIMIT = 3600  # ... but no longer than this
# A longer run of missing ids is no transaction in flight but a sequence moved on (setval, a restore): the
# product's transactions write a ticket's few history rows each (the deadline jobs one per ticket; only a bulk load
# of sample data, stats.sample_tickets, writes more in one).
GAP_RUN = SPAN
# When a gap is first missed, as the server's clock says (rounded up: never before the read that missed it).
FIRST_MISSED = "CAST(CEIL(EXTRACT(EPOCH FROM clock_timestamp())) AS bigint)"
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
    cursor moves only after the rows' messages are queued). On PostgreSQL the rows of the cursor's gaps
    committed since are handed over first, and the ids the cursor moves past unseen become gaps (the module
    docstring: aged on the server's clock). Returns how many rows were handed over. The SMS notices and the e-mail
    notices each follow the history with their own cursor.

    No transaction around the rows: one of CHUNK rows held its pooled connection across every row's work (the
    templates, the numbers, each statement's wait for the hub), up to 59 s under the simulation's load
    (docs/performance.md), while the pool's other waiters timed out; now a connection is out only for a
    statement or a message's own transaction (or the cursor's move with its new gaps)."""
    position = start_cursor(name).position
    late = core_db.is_postgres()  # commits out of id order: gaps are tracked
    read = _late_rows(name, actions, handle) if late else 0
    ids = [i for (i,) in TicketHistory.select(TicketHistory.id).where(TicketHistory.id > position)
           .order_by(TicketHistory.id).limit(SPAN).tuples()]
    if not ids:
        return read
    upper = ids[-1]
    # Each row's ticket comes in the same query (every notice reads it: one query per row before).
    rows = list(TicketHistory.select(TicketHistory, Ticket).join(Ticket)
                .where((TicketHistory.id > position) & (TicketHistory.id <= upper)
                       & TicketHistory.action.in_(actions))
                .order_by(TicketHistory.id).limit(BATCH))
    if len(rows) == BATCH:
        upper = rows[-1].id
    # A row committed between the two reads is in the second only: not a gap.
    missing = _missing(name, position, sorted({i for i in ids if i <= upper} | {row.id for row in rows})) \
        if late else []
    chunks = [rows[at:at + CHUNK] for at in range(0, len(rows), CHUNK)]
    if not chunks or chunks[-1][-1].id < upper:
        chunks.append([])  # past the other actions too, so the next scan starts near the end
    for chunk in chunks:
        for row in chunk:
            handle(row)
        end = chunk[-1].id if chunk else upper
        _advance(name, end, [gap for gap in missing if position < gap < end])
        position = end
    return read + len(rows)


def _gap_name(name: str, gap: int) -> str:
    return f"{name}#{gap}"


def _missing(name: str, position: int, ids: list[int]) -> list[int]:
    """The ids absent between ``position`` and the last of ``ids`` (ascending): the gaps to remember."""
    missing, before = [], position
    for at in ids:
        if at - before - 1 > GAP_RUN:
            log.warning("history cursor %s: %d ids missing after %d not waited for (the sequence moved on)", name,
                        at - before - 1, before)
        else:
            missing.extend(range(before + 1, at))
        before = at
    return missing


def _advance(name: str, position: int, gaps: list[int]) -> None:
    """Move the cursor ``name`` to ``position``, with the ``gaps`` it moves past in the same transaction (each
    holding when it was first missed, FIRST_MISSED)."""
    move = ChannelCursor.update(position=position).where(ChannelCursor.name == name)
    if not gaps:
        move.execute()
        return
    seen = peewee.SQL(FIRST_MISSED)
    with core_db.database.atomic():
        ChannelCursor.insert_many([{"name": _gap_name(name, gap), "position": seen} for gap in gaps]) \
            .on_conflict_ignore().execute()
        move.execute()


def _late_rows(name: str, actions: tuple, handle: Callable[[TicketHistory], None]) -> int:
    """Hand over the rows of the cursor ``name``'s gaps committed since, and forget those and the gaps given up
    on (the module docstring). Returns how many rows were handed over."""
    prefix = f"{name}#"
    gaps = {int(key[len(prefix):]): seen for key, seen in
            ChannelCursor.select(ChannelCursor.name, ChannelCursor.position)
            .where(peewee.fn.SUBSTR(ChannelCursor.name, 1, len(prefix)) == prefix).tuples()}
    if not gaps:
        return 0
    rows = list(TicketHistory.select(TicketHistory, Ticket).join(Ticket)
                .where(TicketHistory.id.in_(list(gaps))).order_by(TicketHistory.id))
    handed = [row for row in rows if row.action in actions]
    for row in handed:
        handle(row)
    done = [row.id for row in rows]
    if len(done) < len(gaps):
        now, oldest = _server_times()
        for gap, seen in gaps.items():
            if gap in done or now - seen < GAP_WAIT:
                continue
            # The transaction that took the id began before the gap was first missed: if no writer of the
            # history that old is open now, the id is burned.
            if oldest is None or oldest > seen:
                done.append(gap)
            elif now - seen >= GAP_LIMIT:
                log.warning("history cursor %s: id %d given up after %.0f s, a transaction open for %.0f s may "
                            "still commit it", name, gap, now - seen, now - oldest)
                done.append(gap)
    if done:
        ChannelCursor.delete().where(ChannelCursor.name.in_([_gap_name(name, gap) for gap in done])).execute()
    return len(handed)


def _server_times() -> tuple[float, Optional[float]]:
    """The server's clock now and when the oldest other transaction holding a write lock on this schema's
    history table began (None: none is open; -inf: one whose start this role may not see), in epoch seconds.
    An INSERT takes the lock before it draws its id and holds it until its transaction ends."""
    now, oldest, unseen = core_db.database.execute_sql(
        "SELECT EXTRACT(EPOCH FROM clock_timestamp()), EXTRACT(EPOCH FROM min(a.xact_start)), "
        "count(*) - count(a.xact_start) FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'relation' AND l.relation = CAST(%s AS regclass) AND l.mode = 'RowExclusiveLock' "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND l.pid IS DISTINCT FROM pg_backend_pid()", (TicketHistory._meta.table_name,)).fetchone()
    if unseen:
        return float(now), float("-inf")
    return float(now), None if oldest is None else float(oldest)


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
