"""Web UI tables: the audit log of who read or changed what."""
from __future__ import annotations

import peewee

from caseflow.models import User, utcnow
from core.db import BaseModel


class AuditLog(BaseModel):
    """One audited action: a login, a failed login, a read of personal data, a change.

    ``operator_no`` is kept beside ``user`` because a failed login may name no existing user, and because
    the row must still say who it was after the user is deleted.
    """

    at = peewee.DateTimeField(default=utcnow, index=True)
    user = peewee.ForeignKeyField(User, null=True, backref="audit_entries", on_delete="SET NULL")
    operator_no = peewee.CharField(max_length=32, default="", index=True)
    action = peewee.CharField(max_length=48, index=True)
    obj_type = peewee.CharField(max_length=48, default="")
    obj_id = peewee.CharField(max_length=64, default="")
    detail = peewee.TextField(default="")
    ip = peewee.CharField(max_length=64, default="", index=True)

    class Meta:
        # The throttles count a window's rows (failed logins, website look-ups, Open311 calls) per address and
        # per object: (ip, at) and (obj_type, obj_id, at) read only the window, not all the rows ever logged.
        indexes = ((("obj_type", "obj_id"), False), (("ip", "at"), False), (("obj_type", "obj_id", "at"), False))


MODELS = [AuditLog]
