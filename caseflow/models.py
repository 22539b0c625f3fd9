"""Case-engine tables: departments, users, citizens, tickets, their history and attachments.

Status is written only by ``caseflow.workflow`` (inside a transaction, with a history row).
"""
from __future__ import annotations

import datetime as dt

import peewee

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
    created_at = peewee.DateTimeField(default=utcnow)

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(r for r in self.roles.split(",") if r)

    def has_role(self, *codes: str) -> bool:
        return bool(self.role_set.intersection(codes))


class Citizen(BaseModel):
    """A caller/writer profile keyed by phone number, with the blacklist flag."""

    phone = peewee.CharField(max_length=32, unique=True)
    name = peewee.CharField(max_length=64, default="")
    address = peewee.CharField(max_length=255, default="")
    blacklisted = peewee.BooleanField(default=False)
    blacklist_reason = peewee.CharField(max_length=255, default="")
    created_at = peewee.DateTimeField(default=utcnow)


class Ticket(BaseModel):
    """A case (工单). ``number`` is the 8-digit acceptance number (受理号) told to the citizen."""

    number = peewee.CharField(max_length=8, unique=True)
    type = peewee.CharField(max_length=16, default="consult", index=True)
    channel = peewee.CharField(max_length=16, default="phone", index=True)
    status = peewee.CharField(max_length=24, default="recorded", index=True)
    title = peewee.CharField(max_length=200, default="")
    content = peewee.TextField(default="")
    citizen = peewee.ForeignKeyField(Citizen, null=True, backref="tickets", on_delete="SET NULL")
    citizen_name = peewee.CharField(max_length=64, default="")
    citizen_phone = peewee.CharField(max_length=32, default="", index=True)
    anonymous = peewee.BooleanField(default=False)
    department = peewee.ForeignKeyField(Department, null=True, backref="tickets", on_delete="SET NULL")
    created_by = peewee.ForeignKeyField(User, null=True, backref="created_tickets", on_delete="SET NULL")
    created_at = peewee.DateTimeField(default=utcnow, index=True)
    updated_at = peewee.DateTimeField(default=utcnow)
    deadline = peewee.DateTimeField(null=True, index=True)
    # Optimistic lock: every status change bumps it, so two handlers cannot both win.
    version = peewee.IntegerField(default=0)


class TicketHistory(BaseModel):
    """Append-only timeline of a ticket."""

    ticket = peewee.ForeignKeyField(Ticket, backref="history", on_delete="CASCADE")
    at = peewee.DateTimeField(default=utcnow)
    actor = peewee.ForeignKeyField(User, null=True, on_delete="SET NULL")
    actor_label = peewee.CharField(max_length=64, default="")  # "system", "ivr", ...
    action = peewee.CharField(max_length=32)
    from_status = peewee.CharField(max_length=24, default="")
    to_status = peewee.CharField(max_length=24, default="")
    note = peewee.TextField(default="")


class Attachment(BaseModel):
    """A stored file attached to a ticket: recording, fax, upload."""

    ticket = peewee.ForeignKeyField(Ticket, backref="attachments", on_delete="CASCADE")
    kind = peewee.CharField(max_length=16, default="file")  # recording, fax, upload, reply
    filename = peewee.CharField(max_length=255)
    path = peewee.CharField(max_length=512)  # relative to the configured storage root
    content_type = peewee.CharField(max_length=100, default="application/octet-stream")
    size = peewee.BigIntegerField(default=0)
    sha256 = peewee.CharField(max_length=64, default="")
    created_at = peewee.DateTimeField(default=utcnow)


MODELS = [Department, User, Citizen, Ticket, TicketHistory, Attachment]
