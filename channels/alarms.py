"""Alarms for the duty leader (值班领导): ``alarm(kind, text)`` is the one hook any part of the product calls
when something needs a person now (a message given up on, a flood, later the hardening issue's checks). It
stores the alarm and puts a notice on the centre's desk at once; the SMS channel sends it to the phones in
HOTLINE_DUTY_PHONES as an urgent SMS (quiet hours and opt-outs do not hold it). The same kind raised again
within REPEAT_WINDOW is counted on the open alarm instead of texting the leader again."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Optional

from caseflow.services import to_db
from channels.models import Alarm
from channels.outbox import enqueue
from core.clock import Clock
from core.db import database

log = logging.getLogger(__name__)

REPEAT_WINDOW = dt.timedelta(minutes=10)
BATCH = 100


def alarm(kind: str, text: str, *, clock: Optional[Clock] = None) -> Alarm:
    """Raise an alarm of ``kind`` (a short code such as ``db_down``) with a one-line ``text``. Returns the
    stored alarm (the open one of the same kind when it was raised within the repeat window). Needs a
    database connection; it does not wait for any gateway."""
    kind = str(kind or "").strip()[:32]
    text = " ".join(str(text or "").split())[:255]
    if not kind or not text:
        raise ValueError("alarm needs a kind and a text")
    clock = clock or Clock()
    now = to_db(clock.now())
    with database.atomic():
        open_alarm = (Alarm.select().where((Alarm.kind == kind) & (Alarm.created_at > now - REPEAT_WINDOW))
                      .order_by(Alarm.id.desc()).first())
        if open_alarm is not None:
            Alarm.update(repeats=Alarm.repeats + 1, last_at=now).where(Alarm.id == open_alarm.id).execute()
            return Alarm.get_by_id(open_alarm.id)
        row = Alarm.create(kind=kind, text=text, created_at=now, last_at=now)
        _desk_notice(row, clock)
    log.warning("alarm %s: %s", kind, text)
    return row


def _desk_notice(row: Alarm, clock: Clock) -> None:
    from caseflow import services

    centre = services.centre_department()
    if centre is not None:
        services.notify(f"告警 / alarm {row.kind}: {row.text}"[:255], department=centre, kind="alarm", clock=clock)


def send_pending(settings, clock: Optional[Clock] = None) -> int:
    """Queue each alarm not yet sent to every duty phone (one SMS per alarm and phone, idempotent by its
    dedupe key); returns how many alarms were handled. Without duty phones alarms stay on the desk only."""
    clock = clock or Clock()
    phones = getattr(settings, "duty_phones", ())
    rows = list(Alarm.select().where(Alarm.sent_at.is_null()).order_by(Alarm.id).limit(BATCH))
    for row in rows:
        with database.atomic():
            for phone in phones:
                enqueue(phone, "alarm", {"kind": row.kind, "text": row.text}, purpose="alarm",
                        dedupe_key=f"alarm:{row.id}:{phone}", answer=True, settings=settings, clock=clock)
            Alarm.update(sent_at=to_db(clock.now())).where(Alarm.id == row.id).execute()
    return len(rows)
