"""The operations tables: one row per alarm condition while it lasts (ops.alarms writes them)."""
from __future__ import annotations

import datetime as dt

import peewee

from caseflow.models import User
from core.db import BaseModel


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class SystemAlarm(BaseModel):
    """An alarm: ``kind`` (switch_down, agent_stuck, backup_failed ...) about ``subject`` (a server, a queue,
    an agent, a storage area; empty for the whole centre). Raised again while open it counts up; the check
    that raised it sets ``cleared_at`` when the condition is gone; it leaves the consoles once acknowledged
    and is closed when both happened."""

    kind = peewee.CharField(max_length=32, index=True)
    subject = peewee.CharField(max_length=64, default="")
    severity = peewee.CharField(max_length=16, default="warning")  # warning, critical
    text = peewee.CharField(max_length=255)
    first_seen = peewee.DateTimeField(default=utcnow, index=True)
    last_seen = peewee.DateTimeField(default=utcnow)
    count = peewee.IntegerField(default=1)
    cleared_at = peewee.DateTimeField(null=True)
    acknowledged_at = peewee.DateTimeField(null=True, index=True)
    acknowledged_by = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    closed = peewee.BooleanField(default=False, index=True)


MODELS = [SystemAlarm]
