"""Case-engine services: ticket creation and editing, notes and linked calls, routing suggestions and the
desks' queues; and, for now, the one import of the case engine's whole public surface.

caseflow.services is a facade while other work still imports from it: the rest lives by subject in
caseflow.values (field vocabularies, input errors, cleaners), caseflow.visibility (who sees and writes
which ticket), caseflow.transitions (the one writer of status, each event's effect and notices),
caseflow.notifications, caseflow.citizens (profiles, blacklist), caseflow.ticket_search and
caseflow.timeline (history, the citizen's status query); every name they had here is re-exported below.
New code imports from those modules.

Every public function that acts for a person takes ``actor`` (a User) and enforces the role
permissions and the department subtree itself, so a view cannot forget to.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from typing import Callable, Iterable, Optional, Sequence

import peewee

from caseflow import daycounts, new_ticket, pins
from caseflow import deadlines as dl
from caseflow import search
from caseflow import workflow as wf
from caseflow.models import (CENTRE_LIST_WHERE, CENTRE_ORDER, HANDLING, OVERDUE_ORDER, Attachment, Category,
                             Department, Region, Responsibility, Ticket, TicketCall, TicketCreationKey, TicketHistory,
                             User, overdue_at)
from caseflow.roles import can
from caseflow.workflow import ConcurrentChange, PermissionDenied, WorkflowError
from core.clock import Clock
from core.db import is_postgres

# Re-exported: the names that lived here before the split (see the docstring).
from caseflow.values import (CHANNELS, MAX_CONTENT, MAX_TITLE, NUMBER_RE, NotFound, PHONE_RE, SYSTEM, TICKET_TYPES,
                             TicketInputError, URGENCIES, _choice, _clean, _db, _resolve, clean_phone, from_db,
                             generate_number, generate_pin, parse_number, to_db)  # noqa: F401
from caseflow.visibility import (LIST_FIELDS, WORKBENCH_ORDER, WRITE_REFUSED, _with_department,  # noqa: F401
                                 available_events, get_ticket_for, in_department_subtree, may_view, may_write,
                                 require_write, subtree_department_ids, visible_tickets)
from caseflow.notifications import (_holder_notice, centre_department, mark_read, notifications_for, notify,
                                    users_with_role)  # noqa: F401
from caseflow.transitions import (AFTER, EFFECTS, _history, call_back, callback_deadline_for, deadline_for, dispatch,
                                  history_row, transition)  # noqa: F401
from caseflow.citizens import (blacklist, blacklist_caller, citizen_history, citizen_profile,  # noqa: F401
                               first_contact, insert_unless_taken, is_blacklisted, set_blacklist)
from caseflow.ticket_search import SEARCH_FILTERS, search_tickets  # noqa: F401
from caseflow.timeline import status_query, timeline  # noqa: F401
from caseflow.ticket_receipts import queue_receipt, receipt_failed, receipt_row, receipt_rows  # noqa: F401

log = logging.getLogger(__name__)

REPLY_BY: dict[str, tuple[str, str]] = {
    "phone": ("电话", "Phone"), "sms": ("短信", "SMS"), "email": ("电子邮件", "E-mail"),
    "letter": ("书面", "Letter"), "web": ("网站查询", "On the website"), "none": ("无需答复", "No reply"),
}


# ---- creation -------------------------------------------------------------------------------------
def create_ticket(content: str, *, type: str = "consult", channel: str = "phone", citizen_phone: str = "",
                  citizen_name: str = "", anonymous: bool = False, citizen_address: str = "",
                  citizen_email: str = "", reply_by: Optional[str] = None, title: str = "", category=None,
                  region=None, urgency: str = "normal", created_by: Optional[User] = None,
                  actor_label: str = "", call_uuid: Optional[str] = None, clock: Optional[Clock] = None,
                  note: str = "", reply: str = "", creation_key: Optional[str] = None,
                  attachments: Iterable[dict] = (), also: Optional[Callable[[Ticket], None]] = None,
                  rows: Optional[Callable[[Ticket], Sequence[peewee.Model]]] = None) -> Ticket:
    """Record a new ticket in status ``recorded`` with a fresh acceptance number and query PIN.

    The PIN is stored only as its keyed hash (caseflow.pins, under the process's installed key): the returned
    ticket carries it in ``plain_pin`` (not a column) for whoever gives it to the citizen now, and the receipt
    writers connected to caseflow.pins queue what carries it (the SMS and e-mail receipts) in the ticket's
    transaction, since nothing can read it back later. The SMS receipt's row goes in with the ticket's own rows
    (channels.receipts.Receipts.split, caseflow.ticket_receipts; on PostgreSQL in its one statement, so a ticket
    whose only receipt is that one still needs no transaction); rows refused with it go in again without it.

    ``reply``: answered on the call (直接答复): the ticket is also answered by ``created_by``, in the same
    transaction (both are kept, or neither). HTML or script in any field is stored verbatim (templates
    escape on output). ``reply_by`` unset: by phone when there is a number, else by e-mail when there is an
    address, else none; a reply by phone or SMS needs a number, by e-mail an address (TicketInputError).
    ``creation_key``: what filed it, unique (``ticket_by_creation_key`` finds it; a second ticket with the
    same key is refused with IntegrityError), for writers that may try again after a lost commit.
    ``attachments``: Attachment fields (without ``ticket``) stored in the ticket's own transaction, so a
    writer with a file (the IVR's recording) needs no transaction around this one (a savepoint each).
    ``also(ticket)``: the caller's own rows of the new ticket (the website's files), written in its transaction
    before the day counts, so the caller needs no transaction around this one and the day's shared count rows
    stay locked no longer (PostgreSQL holds them from their upsert to the commit).
    ``rows(draft)``: the caller's own unsaved rows of the new ticket (the website's case and audit row), built for
    each number drawn and written with the ticket's own rows (caseflow.new_ticket: on PostgreSQL in its
    statement, so a submission without files needs no transaction: BEGIN, two INSERTs and COMMIT were round
    trips of its own); a foreign key to the ticket takes its id.

    On SQLite the citizen profile is looked up (a first contact's made) in the ticket's transaction (before, its
    own commit was a write of the WAL and a connection taken from the pool for every first contact); on
    PostgreSQL the profile goes into the ticket's statement, made or its empty fields filled there, with no read
    before it (its own commit waited for a WAL flush: the website's submission committed three times, issue 11;
    the read was a round trip of every creation with a phone number).
    On PostgreSQL each statement inside waits for its turn on a crowded process while the connection stays
    taken from the pool (bench/ivr.py: "idle in transaction"): the ticket, its history row and (with nothing
    else to write) its day counts are one statement there (caseflow.new_ticket), without a transaction when
    they are all.
    """
    clock = clock or Clock()
    keys = pins.installed()  # before anything: no ticket without a PIN it can check
    if created_by is not None and not can(created_by, "ticket.create"):
        raise PermissionDenied("您没有登记工单的权限 / you may not record tickets")
    content = _clean(content, "内容 content", MAX_CONTENT, required=True)
    title = _clean(title, "标题 title", MAX_TITLE) or content.splitlines()[0][:40]
    type = _choice(type, TICKET_TYPES, "type")
    channel = _choice(channel, CHANNELS, "channel")
    urgency = _choice(urgency, URGENCIES, "urgency")
    phone = clean_phone(citizen_phone)
    name = _clean(citizen_name, "姓名 name", 64)
    address = _clean(citizen_address, "地址 address", 255)
    email = _clean(citizen_email, "邮箱 email", 255)
    if reply_by is None:
        reply_by = "phone" if phone else ("email" if email else "none")
    reply_by = _choice(reply_by, REPLY_BY, "reply_by")
    check_reply_contact(reply_by, phone, email)
    category = _resolve(Category, category, "category")
    region = _resolve(Region, region, "region")
    now = to_db(clock.now())
    text = search.index_text(title, content, address)
    # Nothing but the ticket's own rows: on PostgreSQL that is one statement, atomic without a transaction
    # (caseflow.new_ticket), so no BEGIN and COMMIT round trips; the day counts and a first contact's profile
    # go into it.
    receipts = pins.receipts() if (phone or email) else ()
    if (phone or email) and not receipts:
        _no_receipt_writer()
    # the SMS receipt's row goes in with the ticket's (on PostgreSQL its statement: no transaction for it alone)
    sms_receipt, receipts = receipt_rows(receipts, phone, channel, clock)
    alone = not (creation_key or call_uuid or attachments or channel == "mailbox" or also is not None
                 or reply.strip() or receipts)
    one_statement = alone and is_postgres()
    profile = (phone, "" if anonymous else name, address, email)
    citizen = newcomer = None
    if phone and is_postgres():
        # the profile goes into the ticket's statement: made on a first contact, else its empty fields filled
        # (caseflow.new_ticket), with no read before it
        newcomer = first_contact(*profile)
    pin = generate_pin()
    stored_pin = pins.hash_pin(pin, keys.current)
    with (contextlib.nullcontext() if one_statement else _db().atomic()):
        if phone and not is_postgres():
            citizen = citizen_profile(*profile)  # in the ticket's transaction, not a commit of its own
        ticket = refused = None
        for _attempt in range(30):
            draft = Ticket(number=generate_number(), type=type, channel=channel, urgency=urgency, title=title,
                           content=content, category=category, region=region, citizen=citizen,
                           citizen_name=name, citizen_phone=phone, citizen_address=address, citizen_email=email,
                           anonymous=bool(anonymous), reply_by=reply_by, query_pin=stored_pin,
                           created_by=created_by, created_at=now, updated_at=now, search_text=text)
            history = history_row(draft, created_by, "create", "", wf.RECORDED, note or CHANNELS[channel][0], now,
                                  label=actor_label or ("" if created_by else SYSTEM))
            own = list(rows(draft)) if rows is not None else []
            receipt_message = receipt_row(sms_receipt, draft, pin)
            if receipt_message is None:
                sms_receipt = None
                written = new_ticket.insert(draft, history, counted=alone, newcomer=newcomer, rows=own)
            else:
                try:
                    with (contextlib.nullcontext() if one_statement else _db().atomic()):
                        written = new_ticket.insert(draft, history, counted=alone, newcomer=newcomer,
                                                    rows=own + [receipt_message])
                except (peewee.IntegrityError, peewee.DataError) as error:
                    # Refused, nothing of the statement written: the ticket goes in again without the receipt
                    # (no ticket lost for its receipt); the receipt's fault if that one goes in (alarm below).
                    refused, sms_receipt = error, None
                    continue
            if written:
                ticket = draft
                break
            # number collision: draw again (a first contact's profile went in with it)
            if newcomer is not None and newcomer.id is not None:
                citizen, newcomer = newcomer, None
        if ticket is None:
            raise WorkflowError("无法分配受理号 / could not allocate an acceptance number", "number_space")
        if refused is not None:
            receipt_failed(ticket.number, pin, refused)
        elif receipt_message is not None and receipt_message.probed is False:
            sms_receipt.rewrite(receipt_message.row, ticket, pin)  # written from a text edited since: again
        search.reindex("ticket", ticket.id, None, text)
        if creation_key:
            TicketCreationKey.create(key=creation_key, ticket=ticket)  # a second one: IntegrityError, all undone
        if call_uuid:
            TicketCall.create(ticket=ticket, call_uuid=_clean(call_uuid, "call uuid", 64), at=now)
        for fields in attachments:
            Attachment.create(ticket=ticket, **fields)
        if channel == "mailbox":
            # 市长信箱 (IVR message or website): the centre leaders' list, beside the centre's own queue.
            for leader in users_with_role("centre_leader"):
                notify(f"市长信箱 {ticket.number}：{ticket.title}", user=leader, ticket=ticket, kind="mailbox",
                       clock=clock)
        if also is not None:
            also(ticket)
        for receipt in receipts:
            queue_receipt(receipt, ticket, pin, clock)  # the PIN's only way to a later message (caseflow.pins)
        if not alone:
            # the reports' per-day counts, last (PostgreSQL: the day's shared count rows stay locked until commit)
            daycounts.recorded(ticket)
        if reply.strip():
            ticket = transition(ticket, "answer", created_by, reply=reply.strip(), clock=clock)
    ticket.plain_pin = pin
    log.info("ticket %s created (%s/%s)", ticket.number, type, channel)
    return ticket


_warned_no_receipts = threading.Event()


def _no_receipt_writer() -> None:
    """Warn once per process that it files tickets with a phone or e-mail address and sends them no receipt:
    its start did not connect any (channels.receipts.connect), and no later scan can send one (caseflow.pins)."""
    if not _warned_no_receipts.is_set():
        _warned_no_receipts.set()
        log.warning("this process files tickets with a phone or e-mail address but has no receipt writer "
                    "connected (channels.receipts.connect): their citizens get no receipt with the query PIN")


def ticket_by_creation_key(key: str) -> Optional[Ticket]:
    """The ticket filed with ``creation_key`` ``key`` (``create_ticket``), or None."""
    if not key:
        return None
    return (Ticket.select().join(TicketCreationKey, on=(TicketCreationKey.ticket == Ticket.id))
            .where(TicketCreationKey.key == key).first())


def check_reply_contact(reply_by: str, phone: str, email: str) -> None:
    """Refuse a reply the centre could not send: by phone or SMS without a number, by e-mail without an
    address (TicketInputError naming what is missing)."""
    if reply_by in ("phone", "sms") and not phone:
        how = "电话" if reply_by == "phone" else "短信"
        raise TicketInputError(f"选择{how}答复时须填写联系电话 / a reply by {'phone' if reply_by == 'phone' else 'SMS'} "
                               "needs a phone number")
    if reply_by == "email" and "@" not in (email or "").strip("@"):
        raise TicketInputError("选择电子邮件答复时须填写有效的邮箱地址 / a reply by e-mail needs an e-mail address")


def edit_ticket(ticket: Ticket, actor: User, clock: Optional[Clock] = None, **fields) -> Ticket:
    """Correct a ticket's recorded data (centre, before it is closed); a history row lists what changed."""
    clock = clock or Clock()
    if not (can(actor, "ticket.dispatch") or (can(actor, "entry.desk") and ticket.status == wf.RECORDED)):
        raise PermissionDenied("您没有修改工单的权限 / you may not edit tickets")
    allowed = {"title", "content", "type", "urgency", "category", "region", "citizen_name", "citizen_address",
               "reply_by", "remind_at"}
    unknown = set(fields) - allowed
    if unknown:
        raise TicketInputError(f"不能修改字段 / cannot edit {', '.join(sorted(unknown))}")
    with _db().atomic():
        fresh = Ticket.get_by_id(ticket.id)
        if fresh.status in wf.FINAL_STATUSES:
            raise WorkflowError("已结束的工单不能修改 / a finished ticket cannot be edited")
        if fresh.version != ticket.version:
            raise ConcurrentChange()
        old_text = fresh.search_text
        counted = daycounts.entries(fresh)
        changed = []
        for name, value in fields.items():
            if name == "content":
                value = _clean(value, "内容 content", MAX_CONTENT, required=True)
            elif name == "title":
                value = _clean(value, "标题 title", MAX_TITLE, required=True)
            elif name == "type":
                value = _choice(value, TICKET_TYPES, "type")
            elif name == "urgency":
                value = _choice(value, URGENCIES, "urgency")
            elif name == "reply_by":
                value = _choice(value, REPLY_BY, "reply_by")
                check_reply_contact(value, fresh.citizen_phone, fresh.citizen_email)
            elif name in ("category", "region"):
                value = _resolve(Category if name == "category" else Region, value, name)
            elif name in ("citizen_name", "citizen_address"):
                value = _clean(value, name, 64 if name == "citizen_name" else 255)
            if getattr(fresh, name) != value:
                setattr(fresh, name, value)
                changed.append(name)
        if not changed:
            return fresh
        now = to_db(clock.now())
        fresh.search_text = search.index_text(fresh.title, fresh.content, fresh.citizen_address)
        fresh.updated_at = now
        rows = (Ticket.update({f: getattr(fresh, f.name) for f in fresh.dirty_fields} | {Ticket.version: fresh.version + 1})
                .where((Ticket.id == fresh.id) & (Ticket.version == fresh.version)).execute())
        if rows != 1:
            raise ConcurrentChange()
        fresh.version += 1
        daycounts.changed(fresh, counted)  # the reports' per-day counts: category, region, urgency
        if fresh.search_text != old_text:
            search.reindex("ticket", fresh.id, old_text, fresh.search_text)
        _history(fresh, actor, "edit", fresh.status, fresh.status, "修改 / changed: " + ", ".join(changed), now)
    return fresh


def add_note(ticket: Ticket, text: str, actor: Optional[User] = None, actor_label: str = "",
             clock: Optional[Clock] = None) -> TicketHistory:
    """Append a note to the ticket's timeline (no status change); only those who may write to it (may_write)."""
    clock = clock or Clock()
    text = _clean(text, "备注 note", 4000, required=True)
    if actor is not None:
        require_write(actor, ticket)
    return _history(ticket, actor, "note", ticket.status, ticket.status, text, to_db(clock.now()),
                    label=actor_label or ("" if actor else SYSTEM))


def link_call(ticket: Ticket, call_uuid: str, purpose: str = "intake", clock: Optional[Clock] = None) -> TicketCall:
    """Link a call (its FreeSWITCH uuid) to a ticket: the intake call, a call-back, a follow-up."""
    clock = clock or Clock()
    call_uuid = _clean(call_uuid, "call uuid", 64, required=True)
    now = to_db(clock.now())
    with _db().atomic():
        row = TicketCall.create(ticket=ticket, call_uuid=call_uuid, purpose=purpose[:16], at=now)
        _history(ticket, None, "link_call", ticket.status, ticket.status, f"{purpose}: {call_uuid}", now,
                 label=SYSTEM)
    return row


def suggest_departments(category=None, region=None, limit: int = 5) -> list[Department]:
    """Departments responsible for the category (or a parent category), those for the region first."""
    category = _resolve(Category, category, "category") if category is not None else None
    region = _resolve(Region, region, "region") if region is not None else None
    if category is None:
        return []
    cats, node, guard = [], category, 0
    while node is not None and guard < 10:
        cats.append(node.id)
        node = node.parent if node.parent_id else None
        guard += 1
    regions = []
    node = region
    while node is not None and len(regions) < 5:
        regions.append(node.id)
        node = node.parent if node.parent_id else None
    scored: dict[int, tuple] = {}
    query = (Responsibility.select(Responsibility, Department)
             .join(Department).where(Responsibility.category.in_(cats) & Department.active))
    for resp in query:
        cat_rank = cats.index(resp.category_id)
        if resp.region_id is None:
            reg_rank = len(regions) + 1
        elif resp.region_id in regions:
            reg_rank = regions.index(resp.region_id)
        else:
            continue  # responsible only elsewhere
        key = (reg_rank, cat_rank, -resp.department.level)
        if resp.department_id not in scored or key < scored[resp.department_id][0]:
            scored[resp.department_id] = (key, resp.department)
    return [d for _, d in sorted(scored.values(), key=lambda kv: kv[0])][:limit]


# ---- queues --------------------------------------------------------------------------------------
# At most this many (department, status) lists are merged one by one; a bigger subtree reads each status's list
# in the workbench order over every department and keeps its own (it then holds a large share of the rows).
MAX_QUEUE_STREAMS = 64


def department_queue(actor: User, statuses: Iterable[str] = (wf.DISPATCHED, wf.IN_PROGRESS), limit: int = 100,
                     where=None):
    """The department workbench: tickets held in the actor's subtree, overdue first, then by deadline (none
    last), then by id.

    A merge of ordered lists rather than one sort: each (department, status) pair of the subtree is read in
    that order from the ``ticket_workbench_held`` index and stops at ``limit`` rows, so a page costs about
    departments x statuses x limit index entries however many tickets the subtree holds (one sort over all of
    them took 230 ms at a million tickets). A large subtree reads one list per status over all departments
    (``ticket_workbench_status``), keeping its own rows as they come."""
    if not actor.department_id:
        return []
    departments = subtree_department_ids(actor.department)
    statuses = list(dict.fromkeys(statuses))
    if not departments or not statuses:
        return []
    def stream(cond):
        query = Ticket.select(Ticket.id, Ticket.overdue, Ticket.deadline)
        return query.where(cond if where is None else cond & where).order_by(*WORKBENCH_ORDER).limit(limit).sql()

    parts, params = [], []
    if len(departments) * len(statuses) <= MAX_QUEUE_STREAMS:
        # One statement written once: the pairs differ only in their first two parameters.
        sql, args = stream((Ticket.department == departments[0]) & (Ticket.status == statuses[0]))
        pairs = [(d, s) for d in departments for s in statuses]
        for department, status in pairs:
            parts.append(sql)
            params.extend([department, status, *args[2:]])
    else:
        for status in statuses:
            sql, args = stream(Ticket.department.in_(departments) & (Ticket.status == status))
            parts.append(sql)
            params.extend(args)
    merged = (" UNION ALL ".join(f"SELECT * FROM ({sql}) AS s{n}" for n, sql in enumerate(parts)))
    merged = (f'SELECT "id" FROM ({merged}) AS streams '
              f'ORDER BY "overdue" DESC, ("deadline" IS NULL), "deadline", "id" LIMIT {int(limit)}')
    rows = _with_department(Ticket.select(*LIST_FIELDS)).where(Ticket.id.in_(peewee.SQL(f"({merged})", params)))
    return sorted(rows, key=lambda t: (not t.overdue, t.deadline is None, t.deadline or dt.datetime.min, t.id))


def department_desk(actor: User) -> dict[str, list[Ticket]]:
    """The department desk's lists: ``incoming`` (dispatched, or passed down in progress with nobody on it
    yet: someone must take it), ``working`` (in progress with a handler) and ``unsatisfied``."""
    unassigned = (Ticket.status == wf.DISPATCHED) | Ticket.handler.is_null()
    return {"incoming": department_queue(actor, (wf.DISPATCHED, wf.IN_PROGRESS), where=unassigned),
            "working": department_queue(actor, (wf.IN_PROGRESS,), where=Ticket.handler.is_null(False)),
            "unsatisfied": department_queue(actor, (wf.UNSATISFIED,))}


CENTRE_QUEUES = {
    "to_dispatch": ("待派单", "To dispatch"),
    "deferred": ("暂不能答复", "Answer later"),
    "to_review": ("待审核", "To review"),
    "overdue": ("超期", "Overdue"),
    "supervised": ("督办", "Supervised"),
    "extensions": ("延期申请", "Extension requests"),
    "callback": ("待回访", "To call back"),
    "unsatisfied": ("不满意", "Unsatisfied"),
    "mailbox": ("市长信箱", "Mayor's mailbox"),
}


def _centre_list(kind: str, now: dt.datetime) -> tuple:
    """(condition, order) of one of the centre desk's lists at ``now`` (naive UTC); the six that grow with the
    table are read from an index over their own tickets, in their order (caseflow.models' CENTRE_LIST_WHERE and,
    for the overdue one, OVERDUE_INDEX over the handling tickets), stopped at the page."""
    if kind == "overdue":
        return overdue_at(now), OVERDUE_ORDER
    if kind in CENTRE_LIST_WHERE:
        return CENTRE_LIST_WHERE[kind], CENTRE_ORDER[kind]
    if kind == "deferred":
        return Ticket.status == wf.DEFERRED, (Ticket.remind_at.asc(nulls="LAST"), Ticket.id)
    if kind == "callback":
        return Ticket.status.in_([wf.APPROVED, wf.ANSWERED]), (Ticket.callback_deadline.asc(nulls="LAST"), Ticket.id)
    if kind == "unsatisfied":
        return Ticket.status == wf.UNSATISFIED, (Ticket.updated_at,)
    raise TicketInputError(f"unknown queue {kind!r}")


def _centre_only(actor: User) -> None:
    if not can(actor, "ticket.view_all"):
        raise PermissionDenied("仅限热线中心 / centre only")


def centre_queue(actor: User, kind: str, limit: int = 200, clock: Optional[Clock] = None) -> list[Ticket]:
    """One of the centre desk's lists (see CENTRE_QUEUES)."""
    _centre_only(actor)
    cond, order = _centre_list(kind, to_db((clock or Clock()).now()))
    if kind == "overdue":
        # The page's ids from the index's entries alone, then their rows: PostgreSQL otherwise weighed walking
        # ticket_deadline_set (every ticket with a deadline, the closed ones of years past first) against it and
        # took that one for a table whose handling tickets looked common (a quarter, the bench's 1,000,000).
        cond = Ticket.id.in_(Ticket.select(Ticket.id).where(cond).order_by(*order).limit(limit))
    return list(_with_department(Ticket.select(*LIST_FIELDS)).where(cond).order_by(*order).limit(limit))


QUEUE_COUNT_CAP = 1000  # a badge counts up to this many


def queue_counts(actor: User, clock: Optional[Clock] = None) -> dict[str, int]:
    """Sizes of the centre lists (for badges), each up to QUEUE_COUNT_CAP: the ids counted in no order, so an
    index's entries answer it, not the wide rows (reading a thousand of them per list took 0.3 s a list at
    1,000,000 tickets)."""
    _centre_only(actor)
    now = to_db((clock or Clock()).now())
    counts = {}
    for kind in CENTRE_QUEUES:
        cond, order = _centre_list(kind, now)
        query = Ticket.select(Ticket.id).where(cond)
        if kind in CENTRE_LIST_WHERE or kind == "overdue":  # in the list's order: SQLite then walks the list's own
            query = query.order_by(*order)  # index, not a status's (peewee's count() would drop the order)
        capped = query.limit(QUEUE_COUNT_CAP).alias("capped")
        counts[kind] = Ticket.select(peewee.fn.COUNT(capped.c.id)).from_(capped).scalar()
    return counts


def due_soon_and_overdue(actor: User, clock: Optional[Clock] = None, within: dt.timedelta = dl.WARN_BEFORE):
    """(overdue, due soon) tickets for the actor's desk, shown at once when the desk opens; overdue as the
    centre's list has it (caseflow.models.overdue_at), swept or not."""
    now = to_db((clock or Clock()).now())
    overdue = list(visible_tickets(actor).where(overdue_at(now)).order_by(*OVERDUE_ORDER).limit(100))
    return overdue, due_soon(actor, clock, within)


def due_soon(actor: User, clock: Optional[Clock] = None, within: dt.timedelta = dl.WARN_BEFORE) -> list[Ticket]:
    """The actor's handling tickets whose deadline comes within ``within``, the nearest first."""
    now = to_db((clock or Clock()).now())
    return list(visible_tickets(actor).where(HANDLING & (Ticket.deadline >= now) & (Ticket.deadline < now + within))
                .order_by(*OVERDUE_ORDER).limit(100))


