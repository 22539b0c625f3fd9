"""Schema steps of the operations tables for databases created before a change (listed in hotline.migrations).

New databases get the models' tables as they are and skip these steps.
"""
from __future__ import annotations

import logging

import peewee

from ops.models import SystemAlarm

log = logging.getLogger(__name__)

# The tables the one alarm store replaced: the SMS channel's duty alarms and the recorder's alerts.
OLD_TABLES = ("alarm", "recorder_alert")


def one_alarm_store(migrator, db: peewee.Database) -> list:
    """0008: one alarm store. The channels' ``alarm`` rows (already on the desk and texted when raised) come
    over closed, kept for the alarm page; the recorder's ``recorder_alert`` rows come over as events, still
    shown until acknowledged when nobody had acknowledged them. Both old tables are dropped."""
    rows = []
    if db.table_exists("alarm"):
        for kind, text, repeats, created_at, last_at in db.execute_sql(
                'SELECT kind, text, repeats, created_at, last_at FROM "alarm" ORDER BY id').fetchall():
            rows.append(dict(kind=kind[:32], subject="", severity="warning", text=(text or kind)[:255],
                             first_seen=created_at, last_seen=last_at or created_at, count=(repeats or 0) + 1,
                             cleared_at=last_at or created_at, acknowledged_at=None, closed=True))
    if db.table_exists("recorder_alert"):
        for kind, severity, message, at, acknowledged in db.execute_sql(
                'SELECT kind, severity, message, at, acknowledged FROM "recorder_alert" ORDER BY id').fetchall():
            rows.append(dict(kind=kind[:32], subject="recordings" if kind.startswith("recording") else "",
                             severity="warning" if severity == "warning" else "critical",
                             text=" ".join(str(message or kind).split())[:255], first_seen=at, last_seen=at,
                             count=1, cleared_at=at, acknowledged_at=at if acknowledged else None,
                             closed=bool(acknowledged)))
    # Every row names the same columns: insert_many takes them from the first.
    for start in range(0, len(rows), 500):
        SystemAlarm.insert_many(rows[start:start + 500]).execute()
    for table in OLD_TABLES:
        if db.table_exists(table):
            db.execute_sql(f'DROP TABLE "{table}"')
    if rows:
        log.info("alarms: %d rows of the old alarm tables moved to system_alarm", len(rows))
    return []
