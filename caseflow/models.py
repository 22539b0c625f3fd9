"""Case-engine tables: organisation (departments, users, groups, roles), citizens, tickets, their
history, attachments, calls, notifications, time limits and the knowledge base.

Status is written only by ``caseflow.services`` (inside a transaction, with a history row).

Long because: every case-engine table in one place, the ticket's indexes (partial, each with the list it serves)
declared beside its fields so that a list and its index share one condition.
"""
from __future__ import annotations

import datetime as dt

import peewee

from caseflow import workflow as wf
from core.calendar import CalendarDay
from core.db import BaseModel


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Department(BaseModel):
    """A unit in the three-level tree: 1 centre, 2 districts/city departments, 3 streets/sub-offices."""

    code = peewee.CharField(max_length=32, unique=True)
    name = peewee.CharField(max_length=100)
    level = peewee.SmallIntegerField()
    parent = peewee.ForeignKeyField("self", null=True, backref="children", on_delete="RESTRICT")
    kind = peewee.CharField(max_length=32, default="department")  # centre, district, city_dept, street, ...
    contact_phone = peewee.CharField(max_length=32, default="")
    active = peewee.BooleanField(default=True)
    # Materialised path "/1/4/9/" so subtree checks are one LIKE, not a recursive walk.
    path = peewee.CharField(max_length=255, default="/", index=True)

    def is_within(self, other: "Department") -> bool:
        """True if self is other or lies below it."""
        return self.path.startswith(other.path)


class User(BaseModel):
    """A person who logs in: identified by operator number (工号)."""

    operator_no = peewee.CharField(max_length=16, unique=True)
    name = peewee.CharField(max_length=64)
    password_hash = peewee.CharField(max_length=255)
    roles = peewee.CharField(max_length=255, default="")  # comma-separated role codes, see caseflow.roles
    department = peewee.ForeignKeyField(Department, null=True, backref="users", on_delete="SET NULL")
    extension = peewee.CharField(max_length=16, null=True, unique=True)  # SIP extension for agents
    active = peewee.BooleanField(default=True)
    language = peewee.CharField(max_length=8, default="zh")
    phone = peewee.CharField(max_length=32, default="")
    created_at = peewee.DateTimeField(default=utcnow)
    # Sessions carry the number they were opened with; bumping it (logout, password change, disabling)
    # ends every session of this user at its next request, copied cookies included.
    session_version = peewee.IntegerField(default=0)

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(r for r in self.roles.split(",") if r)

    def has_role(self, *codes: str) -> bool:
        return bool(self.role_set.intersection(codes))


class Group(BaseModel):
    """A named group of users (班组, e.g. 早班, 投诉专席) used for rosters and bulk notices."""

    code = peewee.CharField(max_length=32, unique=True)
    name = peewee.CharField(max_length=64)
    description = peewee.CharField(max_length=255, default="")


class UserGroup(BaseModel):
    """Membership of a user in a group; ``lead``: the user leads the group (班长), and a team lead's console
    shows and acts on the members of the groups they lead (caseflow.org.lead_scope)."""

    user = peewee.ForeignKeyField(User, backref="group_links", on_delete="CASCADE")
    group = peewee.ForeignKeyField(Group, backref="user_links", on_delete="CASCADE")
    lead = peewee.BooleanField(default=False)

    class Meta:
        indexes = ((("user", "group"), True),)


class RolePermission(BaseModel):
    """Which permission a role has; an administrator edits it (defaults in caseflow.roles)."""

    role = peewee.CharField(max_length=32)
    permission = peewee.CharField(max_length=48)

    class Meta:
        indexes = ((("role", "permission"), True),)


class Category(BaseModel):
    """A node in the configurable matter tree (城市管理 > 噪音扰民)."""

    code = peewee.CharField(max_length=32, unique=True)
    name = peewee.CharField(max_length=64)
    parent = peewee.ForeignKeyField("self", null=True, backref="children", on_delete="RESTRICT")
    active = peewee.BooleanField(default=True)
    sort = peewee.IntegerField(default=0)


class Region(BaseModel):
    """A node in the configurable place tree: district (level 1) then street (level 2)."""

    code = peewee.CharField(max_length=32, unique=True)
    name = peewee.CharField(max_length=64)
    parent = peewee.ForeignKeyField("self", null=True, backref="children", on_delete="RESTRICT")
    level = peewee.SmallIntegerField(default=1)
    active = peewee.BooleanField(default=True)


class Responsibility(BaseModel):
    """A department is responsible for a category, optionally only within a region (dispatch suggestion)."""

    department = peewee.ForeignKeyField(Department, backref="responsibilities", on_delete="CASCADE")
    category = peewee.ForeignKeyField(Category, backref="responsibilities", on_delete="CASCADE")
    region = peewee.ForeignKeyField(Region, null=True, backref="responsibilities", on_delete="CASCADE")


class Citizen(BaseModel):
    """A caller/writer profile keyed by phone number, with the blacklist flag."""

    phone = peewee.CharField(max_length=32, unique=True)
    name = peewee.CharField(max_length=64, default="")
    address = peewee.CharField(max_length=255, default="")
    email = peewee.CharField(max_length=255, default="")
    blacklisted = peewee.BooleanField(default=False)
    blacklist_reason = peewee.CharField(max_length=255, default="")
    notes = peewee.TextField(default="")
    created_at = peewee.DateTimeField(default=utcnow)


class Ticket(BaseModel):
    """A case (工单). ``number`` is the 8-digit acceptance number (受理号) told to the citizen."""

    number = peewee.CharField(max_length=8, unique=True)
    type = peewee.CharField(max_length=16, default="consult", index=True)
    channel = peewee.CharField(max_length=16, default="phone", index=True)
    status = peewee.CharField(max_length=24, default="recorded")  # indexed first in (status, deadline) below
    urgency = peewee.CharField(max_length=16, default="normal")  # normal, urgent, emergency
    title = peewee.CharField(max_length=200, default="")
    content = peewee.TextField(default="")
    category = peewee.ForeignKeyField(Category, null=True, backref="tickets", on_delete="SET NULL")
    region = peewee.ForeignKeyField(Region, null=True, backref="tickets", on_delete="SET NULL")
    citizen = peewee.ForeignKeyField(Citizen, null=True, backref="tickets", on_delete="SET NULL")
    citizen_name = peewee.CharField(max_length=64, default="")
    citizen_phone = peewee.CharField(max_length=32, default="", index=True)
    citizen_address = peewee.CharField(max_length=255, default="")
    citizen_email = peewee.CharField(max_length=255, default="")
    anonymous = peewee.BooleanField(default=False)
    reply_by = peewee.CharField(max_length=16, default="phone")  # phone, sms, email, letter, none
    # Second secret for status queries by phone: the IVR accepts number + caller's phone or number + PIN. Only its
    # keyed hash (caseflow.pins, p1$salt$hmac; migration 0027 widened the column from the 8 digits kept before).
    query_pin = peewee.CharField(max_length=100, default="")
    # Indexed where set (below), as upper_department, handler, master, deadline and remind_at.
    department = peewee.ForeignKeyField(Department, null=True, backref="tickets", on_delete="SET NULL", index=False)
    # The department that sub-dispatched it downwards and gets it back (逐级下派).
    upper_department = peewee.ForeignKeyField(Department, null=True, backref="+", on_delete="SET NULL", index=False)
    handler = peewee.ForeignKeyField(User, null=True, backref="handled_tickets", on_delete="SET NULL", index=False)
    created_by = peewee.ForeignKeyField(User, null=True, backref="created_tickets", on_delete="SET NULL")
    created_at = peewee.DateTimeField(default=utcnow)  # indexed first in (created_at, status, ...) below
    updated_at = peewee.DateTimeField(default=utcnow)
    dispatched_at = peewee.DateTimeField(null=True)
    deadline = peewee.DateTimeField(null=True)
    callback_deadline = peewee.DateTimeField(null=True)
    warned_at = peewee.DateTimeField(null=True)
    overdue = peewee.BooleanField(default=False)
    supervised = peewee.BooleanField(default=False)
    remind_at = peewee.DateTimeField(null=True)
    remind_count = peewee.IntegerField(default=0)
    extension_until = peewee.DateTimeField(null=True)  # a pending extension request
    extension_reason = peewee.TextField(default="")
    reply = peewee.TextField(default="")
    replied_at = peewee.DateTimeField(null=True)
    satisfaction = peewee.CharField(max_length=16, default="")  # satisfied, basic, unsatisfied
    reopen_count = peewee.IntegerField(default=0)
    master = peewee.ForeignKeyField("self", null=True, backref="duplicates", on_delete="SET NULL", index=False)
    public = peewee.BooleanField(default=False)  # may be published (masked) on the portal
    closed_at = peewee.DateTimeField(null=True)
    # Character-bigram text used by the full-text index (see caseflow.search).
    search_text = peewee.TextField(default="")
    # Optimistic lock: every status change bumps it, so two handlers cannot both win.
    version = peewee.IntegerField(default=0)

    class Meta:
        indexes = (
            (("status", "deadline"), False),  # also a status's tickets (the centre's lists), as ticket_status was
            # A period's tickets read from the index alone, never the wide rows: those created in it by status,
            # category, kind, department and channel (the figures, the statistics, Open311's requests of the last
            # 90 days); the cases closed in it (the figures) in ticket_closed_set below.
            (("created_at", "status", "category", "type", "department", "channel"), False),
        )


# The public website's published cases (caseflow.portal.published: disclosed, closed, consented): partial
# indexes over the disclosed tickets only (a fifth of a million, not the million), one led by the list's order
# and one by each filter (kind, category, region, month), each holding the other filters' columns and the
# status: a page of the list and its count up to the cap read index entries (and web_case's (ticket, consent)
# index), never the wide ticket rows, whatever the filters.
_PUBLIC_COLUMNS = (Ticket.closed_at, Ticket.status, Ticket.type, Ticket.category, Ticket.region, Ticket.created_at,
                   Ticket.public)
# The month's index holds the id too: a month's page is then read from its index entries alone (PostgreSQL,
# without it, walked the list's index, which has the id, backwards through every later case: 30-45 ms a page).
# Each holds ``public`` as well, its own condition: SQLite (3.40) reads an index alone only when it holds every
# column the query names, and without it read the wide ticket row of every entry it walked (a category with a
# region: 20,000 rows, 25 ms a count and as much a page at 1,000,000 tickets; issue 11). Migration 0021 replaced
# the ticket_public_* indexes without it. The kind's, the category's and the region's hold the id after the
# closing time (migration 0023 replaced ticket_published_type, _category and _region without it): PostgreSQL
# read a table page per match for the id the web case's join needs (type+category+region at 1,000,000 tickets:
# 480 heap pages for 146 matches), and walks a filter's entries in the list's full order (closed_at, id).
for _name, _lead in (("ticket_published_closed", (Ticket.closed_at, Ticket.id)),
                     ("ticket_published_by_type", (Ticket.type, Ticket.closed_at, Ticket.id)),
                     ("ticket_published_by_category", (Ticket.category, Ticket.closed_at, Ticket.id)),
                     ("ticket_published_by_region", (Ticket.region, Ticket.closed_at, Ticket.id)),
                     ("ticket_published_created", (Ticket.created_at, Ticket.id))):
    _columns = _lead + tuple(c for c in _PUBLIC_COLUMNS if all(c is not lead for lead in _lead))
    Ticket.add_index(Ticket.index(*_columns, where=Ticket.public, name=_name))


# The indexes a new ticket takes no entry in (migration 0024, issue 15 item 7): a creation wrote an entry in every
# index of the ticket, 22 btrees and the GIN (the published cases' are partial already), a third of its statement's
# server time on PostgreSQL. A ticket is recorded with no department, handler, deadline, closing time or reminder,
# so the indexes over those hold only the tickets where it is set: a query that compares such a column (=, IN, <,
# >=) says it is set, and both planners then read the partial index (test_ticket_indexes). It enters 12 btrees
# now. ticket_department_id and ticket_status went: the prefixes of ticket_held_status_deadline and (status,
# deadline).
# The department workbench (caseflow.services.department_queue): each (department, status) list read in the
# workbench's order and stopped at a page.
Ticket.add_index(Ticket.index(Ticket.department, Ticket.status, Ticket.overdue.desc(), Ticket.deadline.is_null(),
                              Ticket.deadline, Ticket.id, where=Ticket.department.is_null(False),
                              name="ticket_workbench_held"))
# For a large subtree, each status's list over all departments; over every ticket, new ones too: the overdue
# tickets' sweeps (caseflow.jobs) read it naming no department.
Ticket.add_index(Ticket.index(Ticket.status, Ticket.overdue.desc(), Ticket.deadline.is_null(), Ticket.deadline,
                              Ticket.id, name="ticket_workbench_status"))
# A subtree's handling tickets by deadline (services.due_soon_and_overdue, the statistics' overdue counts).
Ticket.add_index(Ticket.index(Ticket.department, Ticket.status, Ticket.deadline, where=Ticket.department.is_null(False),
                              name="ticket_held_status_deadline"))
SET_INDEXES = (("ticket_closed_set", (Ticket.closed_at, Ticket.status)),  # the cases closed in a period
               ("ticket_deadline_set", (Ticket.deadline,)),
               ("ticket_remind_at_set", (Ticket.remind_at,)),  # caseflow.jobs: the reminders due
               # The visibility rule's "handed down by the subtree", and the foreign keys' ON DELETE SET NULL.
               ("ticket_upper_department_set", (Ticket.upper_department,)),
               ("ticket_handler_set", (Ticket.handler,)),
               ("ticket_master_set", (Ticket.master,)))
for _name, _columns in SET_INDEXES:
    Ticket.add_index(Ticket.index(*_columns, where=_columns[0].is_null(False), name=_name))
# The centre desk's lists (caseflow.services.centre_queue, migration 0025, issue 15 item 7): each one's tickets,
# and an index over them alone in the list's order, so a page stops after its rows. Without them PostgreSQL read
# every ticket of the status and sorted (to dispatch, to review: 0.2-0.4 s at 1,000,000 tickets) or the whole
# table (supervised, extension requests: 140,000 pages for none). A new ticket enters the one to dispatch (and a
# mayor's-mailbox letter the mailbox's).
# The status lists written out in the SQL, not bound: SQLite uses a partial index only when the query holds its
# condition's terms as the index writes them, and ``status IN (?, ?)`` is not ``status IN ('a', 'b')`` to it.


def _statuses_in(statuses) -> peewee.Expression:
    """``status IN ('a', 'b')`` with the workflow's own status names (code constants) in sorted order."""
    assert all(status.isidentifier() for status in statuses)
    return Ticket.status.in_(peewee.SQL("(" + ", ".join(f"'{status}'" for status in sorted(statuses)) + ")"))


CENTRE_LIST_WHERE = {"to_dispatch": _statuses_in([wf.RECORDED, wf.RETURNED]),
                     "to_review": Ticket.status == wf.REPLIED,
                     "supervised": Ticket.supervised & _statuses_in(wf.OPEN_STATUSES),
                     "extensions": Ticket.extension_until.is_null(False),
                     "mailbox": (Ticket.channel == "mailbox") & _statuses_in(wf.OPEN_STATUSES)}
CENTRE_ORDER = {"to_dispatch": (Ticket.urgency.desc(), Ticket.id), "to_review": (Ticket.replied_at, Ticket.id),
                "supervised": (Ticket.deadline,), "extensions": (Ticket.deadline,),
                "mailbox": (Ticket.id,)}
CENTRE_INDEXES = tuple(f"ticket_centre_{kind}" for kind in CENTRE_LIST_WHERE)
for _kind, _where in CENTRE_LIST_WHERE.items():
    Ticket.add_index(Ticket.index(*CENTRE_ORDER[_kind], where=_where, name=f"ticket_centre_{_kind}"))

# What is overdue, the one definition (issue 15): a ticket a department handles (dispatched, in progress) whose
# deadline has passed, whether or not the minute's sweep (caseflow.jobs.mark_overdue) has run since: the centre's
# 超期 list and its count, the desks' overdue banners and the big screen's count all read it. Ticket.overdue is
# the sweep's own mark that it sent the 催办 and told the centre (the department's order and the escalation
# read it); on a database the sweep had not yet reached the centre's banner said 1 and its 超期 list 0.
HANDLING = _statuses_in(wf.HANDLING_STATUSES)


def overdue_at(now) -> peewee.Expression:
    """The tickets overdue at ``now`` (naive UTC)."""
    return HANDLING & (Ticket.deadline < now)


def is_overdue(ticket: Ticket, now) -> bool:
    """Whether ``ticket`` (read) is overdue at ``now`` (naive UTC), as overdue_at says (a list row's badge)."""
    return ticket.status in wf.HANDLING_STATUSES and ticket.deadline is not None and ticket.deadline < now


# The handling tickets by deadline (migration 0026 in place of 0025's ticket_centre_overdue, which held the swept
# ones only): the centre's overdue list is its first entries, up to ``now``, and its due-soon list the next ones.
OVERDUE_ORDER = (Ticket.deadline, Ticket.id)
OVERDUE_INDEX = "ticket_handling_deadline"
Ticket.add_index(Ticket.index(*OVERDUE_ORDER, where=HANDLING, name=OVERDUE_INDEX))


class TicketHistory(BaseModel):
    """Append-only timeline of a ticket."""

    ticket = peewee.ForeignKeyField(Ticket, backref="history", on_delete="CASCADE")
    at = peewee.DateTimeField(default=utcnow)
    actor = peewee.ForeignKeyField(User, null=True, on_delete="SET NULL")
    actor_label = peewee.CharField(max_length=64, default="")  # "system", "ivr", ...
    action = peewee.CharField(max_length=32)
    from_status = peewee.CharField(max_length=24, default="")
    to_status = peewee.CharField(max_length=24, default="")
    department = peewee.ForeignKeyField(Department, null=True, backref="+", on_delete="SET NULL")
    note = peewee.TextField(default="")

    class Meta:
        indexes = ((("action", "at"), False),)  # events of a kind in a period (ratings of a month)


class TicketDuration(BaseModel):
    """A ticket's handling duration at one stage (accept, reply, close) for one department, in hours, with the
    ticket's creation time: kept by caseflow.durations as the ticket moves, read by the handling-speed report."""

    ticket = peewee.ForeignKeyField(Ticket, backref="+", on_delete="CASCADE")
    stage = peewee.CharField(max_length=8)
    department = peewee.ForeignKeyField(Department, backref="+", on_delete="CASCADE")
    created_at = peewee.DateTimeField()
    hours = peewee.DoubleField()

    class Meta:
        table_name = "ticket_duration"
        # the others hold the figures too: a period's rows, and each department's in order (the medians), are
        # read from an index alone
        indexes = ((("ticket", "stage", "department"), True),
                   (("created_at", "stage", "department", "hours"), False),
                   (("stage", "department", "hours", "created_at"), False))


class TicketDayCount(BaseModel):
    """Tickets created on a UTC day with one value (status now, category, region, urgency; ids as text, "" for
    none): kept by caseflow.daycounts as tickets are recorded, move and are edited, read by the reports."""

    day = peewee.DateField()
    dimension = peewee.CharField(max_length=8)
    value = peewee.CharField(max_length=24)
    tickets = peewee.IntegerField(default=0)

    class Meta:
        table_name = "ticket_day_count"
        # No index holds the count: each new ticket adds to six of today's rows, and on PostgreSQL an update that
        # changes no indexed column is HOT (the new row version on the same page, no index entry, the old one
        # pruned by the next reader, no VACUUM needed). With ``tickets`` in an index, every update wrote an entry
        # in each of three indexes and left a dead row behind (a day's 70,000 tickets: 420,000 of each).
        indexes = ((("day", "dimension", "value"), True), (("dimension", "day", "value"), False))


class Attachment(BaseModel):
    """A stored file attached to a ticket: recording, fax, upload."""

    ticket = peewee.ForeignKeyField(Ticket, backref="attachments", on_delete="CASCADE")
    kind = peewee.CharField(max_length=16, default="file")  # recording, fax, upload, reply
    filename = peewee.CharField(max_length=255)
    path = peewee.CharField(max_length=512)  # relative to the configured storage root
    content_type = peewee.CharField(max_length=100, default="application/octet-stream")
    size = peewee.BigIntegerField(default=0)
    sha256 = peewee.CharField(max_length=64, default="")
    uploaded_by = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    created_at = peewee.DateTimeField(default=utcnow)


class TicketCreationKey(BaseModel):
    """What filed a ticket, for a writer that may try again without knowing whether its first try was stored
    (the IVR, "ivr:<call>:<recording>", whose commit's reply can be lost with the connection): the key is
    unique, so a second try finds the first one's ticket instead of filing another. A table of its own, not a
    ticket column: most tickets have none, and a new table reaches an existing database with create_tables
    (an index on a column added by a migration step would be built before the step adds the column)."""

    key = peewee.CharField(max_length=200, primary_key=True)
    ticket = peewee.ForeignKeyField(Ticket, backref="+", on_delete="CASCADE")


class TicketCall(BaseModel):
    """A call linked to a ticket (the call that created it, call-backs, follow-up calls)."""

    ticket = peewee.ForeignKeyField(Ticket, backref="calls", on_delete="CASCADE")
    call_uuid = peewee.CharField(max_length=64, index=True)
    purpose = peewee.CharField(max_length=16, default="intake")  # intake, callback, followup
    at = peewee.DateTimeField(default=utcnow)


class Notification(BaseModel):
    """A message shown on a desk: to one user, or to every user of a department."""

    user = peewee.ForeignKeyField(User, null=True, backref="notifications", on_delete="CASCADE")
    department = peewee.ForeignKeyField(Department, null=True, backref="notifications", on_delete="CASCADE")
    ticket = peewee.ForeignKeyField(Ticket, null=True, backref="notifications", on_delete="CASCADE")
    kind = peewee.CharField(max_length=24, default="info")  # warn, overdue, remind, supervise, unsatisfied
    text = peewee.CharField(max_length=500)
    read = peewee.BooleanField(default=False)
    created_at = peewee.DateTimeField(default=utcnow, index=True)


class TimeLimit(BaseModel):
    """How long a type of ticket at an urgency may take: N working days or N hours (editable)."""

    ticket_type = peewee.CharField(max_length=16)
    urgency = peewee.CharField(max_length=16, default="normal")
    amount = peewee.IntegerField()
    unit = peewee.CharField(max_length=8, default="workdays")  # workdays or hours

    class Meta:
        indexes = ((("ticket_type", "urgency"), True),)


class KnowledgeItem(BaseModel):
    """A knowledge-base entry agents answer from (P5 §3.7.2)."""

    category = peewee.ForeignKeyField(Category, null=True, backref="knowledge", on_delete="SET NULL")
    title = peewee.CharField(max_length=200)
    content = peewee.TextField(default="")
    published_at = peewee.DateTimeField(default=utcnow)
    publisher = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    review_state = peewee.CharField(max_length=16, default="pending")  # pending, approved, rejected
    views = peewee.IntegerField(default=0)
    last_viewed_at = peewee.DateTimeField(null=True)
    remarks = peewee.TextField(default="")
    search_text = peewee.TextField(default="")
    # Editors mark an item for the public website (办事指南 ...); it shows there once reviewed too.
    # No index: create_tables(safe=True) creates a model's indexes before the migration adds the column.
    public = peewee.BooleanField(default=False)


class KnowledgeAnswer(BaseModel):
    """One of several answers to a knowledge item."""

    item = peewee.ForeignKeyField(KnowledgeItem, backref="answers", on_delete="CASCADE")
    content = peewee.TextField()
    attachment_name = peewee.CharField(max_length=255, default="")
    attachment_path = peewee.CharField(max_length=512, default="")
    attachment_size = peewee.BigIntegerField(default=0)
    attachment_sha256 = peewee.CharField(max_length=64, default="")
    # The type read from the file's content when uploaded (caseflow.attachments.sniff), not from its name.
    attachment_type = peewee.CharField(max_length=100, default="")
    views = peewee.IntegerField(default=0)
    last_viewed_at = peewee.DateTimeField(null=True)
    review_state = peewee.CharField(max_length=16, default="pending")
    remarks = peewee.TextField(default="")
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(null=True)
    # No index on these two: create_tables would index an existing table before the migration adds them.
    updated_by = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL", index=False)
    # Deletion is soft: the text may already have gone to citizens (a reply, a fax), so it stays readable
    # in the history and the file stays on disk; nobody lists or serves a deleted answer.
    deleted_at = peewee.DateTimeField(null=True)
    deleted_by = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL", index=False)


class KnowledgeHistory(BaseModel):
    """Append-only record of changes to knowledge answers: who did what, with the text as it was before."""

    item = peewee.ForeignKeyField(KnowledgeItem, backref="history", on_delete="CASCADE")
    answer = peewee.ForeignKeyField(KnowledgeAnswer, null=True, backref="history", on_delete="CASCADE")
    actor = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    action = peewee.CharField(max_length=24)  # edit, delete, attach, review
    before = peewee.TextField(default="")
    note = peewee.TextField(default="")
    at = peewee.DateTimeField(default=utcnow)


class SavedSearch(BaseModel):
    """A ticket search a user saved under a name (P5 §3.7.7 用户自定义查询): only its owner sees it."""

    user = peewee.ForeignKeyField(User, backref="saved_searches", on_delete="CASCADE")
    name = peewee.CharField(max_length=64)
    filters = peewee.TextField(default="{}")  # JSON object: keys of services.SEARCH_FILTERS -> text
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("user", "name"), True),)


class WebCase(BaseModel):
    """What the public website (webui.blueprints.portal) keeps beside a ticket written in there: the box
    (web or 市长信箱), the citizen's consent to publication, the query code (hashed; shown once), where it
    came from (per-address limits) and a digest of the text (duplicate submissions)."""

    ticket = peewee.ForeignKeyField(Ticket, unique=True, backref="web_cases", on_delete="CASCADE")
    box = peewee.CharField(max_length=16, default="web")
    consent = peewee.BooleanField(default=False)
    code_hash = peewee.CharField(max_length=100)
    ip = peewee.CharField(max_length=64, default="", index=True)
    digest = peewee.CharField(max_length=64, index=True)
    # The CAPTCHA that let it in: unique, so one solved picture is never good for a second submission.
    captcha_id = peewee.CharField(max_length=40, unique=True)
    created_at = peewee.DateTimeField(default=utcnow, index=True)

    class Meta:
        indexes = ((("ticket", "consent"), False),)  # "published?" answered from the index (lists, counts)


class PublicNotice(BaseModel):
    """A notice the hotline centre publishes on the public website (政府公告, P2 §2.8): written as a draft,
    sent for review, published by a centre leader and withdrawn when it no longer holds
    (caseflow.public_notices)."""

    title = peewee.CharField(max_length=200)
    body = peewee.TextField(default="")
    status = peewee.CharField(max_length=12, default="draft", index=True)  # draft, review, published, withdrawn
    created_by = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
    reviewed_by = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    published_at = peewee.DateTimeField(null=True, index=True)
    withdrawn_at = peewee.DateTimeField(null=True)


class MaterialRequest(BaseModel):
    """A caller asked for consultation material by SMS, e-mail or fax (at an IVR node); the case engine
    handles it (caseflow.materials), the channels fulfil it."""

    caller = peewee.CharField(max_length=32)
    topic = peewee.CharField(max_length=200)
    channel = peewee.CharField(max_length=8)  # sms, email, fax
    address = peewee.CharField(max_length=255, default="")
    call_uuid = peewee.CharField(max_length=64, default="")
    status = peewee.CharField(max_length=16, default="pending", index=True)  # pending, sent, failed
    created_at = peewee.DateTimeField(default=utcnow)
    fulfilled_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "material_request"  # the name it had as the IVR's model: existing databases keep it


MODELS = [
    CalendarDay, Department, User, Group, UserGroup, RolePermission, Category, Region, Responsibility,
    Citizen, Ticket, TicketCreationKey, TicketHistory, TicketDuration, TicketDayCount, Attachment, TicketCall,
    Notification, TimeLimit, KnowledgeItem, KnowledgeAnswer, KnowledgeHistory, SavedSearch, WebCase, PublicNotice,
    MaterialRequest,
]
