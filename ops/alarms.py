"""The one alarm service: ``raise_alarm`` stores an alarm (deduplicated by kind and subject while open),
``clear`` marks a condition gone, ``acknowledge`` records who saw it; ``shown`` is what the team-lead
console, the centre desk and the alarm page display.

Every alarm of the product lands here: the periodic checks (ops.jobs) call the service; the floors below ops
(the recorder, the case engine, the channels) call ``core.alarms.raise_alarm``, which the composition root
connects to ``AlarmService.raise_alarm``. A newly opened alarm is noticed on the centre's desk and handed to
``notify(row)`` once (the composition root passes the SMS channel's duty-phone hook,
``channels.alarms.DutyPhones``), so the service does not depend on how messages are sent.

Two sorts: a condition (a switch down, a disk low) that the check raising it clears when it is gone, and an
event (``event=True``: a recording failed, a fax gave up) that is over when it happened; an event is counted
on its open alarm until someone acknowledges it, and the next one opens (and notifies) a new alarm.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from core.db import database
from ops.models import SystemAlarm, utcnow
from ops.rules import CRITICAL, KINDS, WARNING, Finding

log = logging.getLogger(__name__)

Notify = Callable[[SystemAlarm], object]


class AlarmError(ValueError):
    """A refused alarm operation (unknown alarm, bad input)."""


@dataclass
class AlarmService:
    """Raise, clear and acknowledge alarms; a newly opened alarm is put on the centre's desk (``desk``) and
    handed to ``notify(row)`` once."""

    notify: Optional[Notify] = None
    desk: bool = True

    def raise_alarm(self, kind: str, text: str, *, subject: str = "", severity: str = WARNING,
                    event: bool = False) -> SystemAlarm:
        """Open an alarm, or count it on the open one of the same kind and subject (a condition is re-shown
        when it had been cleared but not acknowledged; an ``event`` is over as it happens, so it is stored
        cleared and acknowledging it closes it). Returns the row."""
        kind, subject = str(kind or "").strip()[:32], str(subject or "").strip()[:64]
        text = " ".join(str(text or "").split())[:255]
        if not kind or not text:
            raise AlarmError("an alarm needs a kind and a text")
        if severity not in (WARNING, CRITICAL):
            raise AlarmError(f"unknown severity {severity!r}")
        now = utcnow()
        with database.atomic():
            row = (SystemAlarm.select().where((SystemAlarm.kind == kind) & (SystemAlarm.subject == subject)
                                              & (SystemAlarm.closed == False))  # noqa: E712
                   .order_by(SystemAlarm.id.desc()).first())
            if row is not None:
                SystemAlarm.update(count=SystemAlarm.count + 1, last_seen=now, text=text, severity=severity,
                                   cleared_at=now if event else None).where(SystemAlarm.id == row.id).execute()
                return SystemAlarm.get_by_id(row.id)
            row = SystemAlarm.create(kind=kind, subject=subject, severity=severity, text=text, first_seen=now,
                                     last_seen=now, cleared_at=now if event else None)
        log.log(logging.ERROR if severity == CRITICAL else logging.WARNING, "alarm %s %s: %s", kind, subject, text)
        self._hand_over(row)
        return row

    def _hand_over(self, row: SystemAlarm) -> None:
        """The one notification path of a new alarm: the centre's desk, then the SMS hook."""
        if self.desk:
            try:
                desk_notice(row)
            except Exception:  # noqa: BLE001 - the alarm is stored and on the consoles either way
                log.exception("alarm %s: could not put it on the centre's desk", row.kind)
        if self.notify is None:
            return
        try:
            self.notify(row)
        except Exception:  # noqa: BLE001 - the alarm stays on the consoles; the SMS side logs its own failure
            log.exception("alarm %s: could not hand it to the SMS platform", row.kind)

    def clear(self, kind: str, subject: str = "") -> int:
        """The condition is gone: mark open alarms of ``kind``/``subject`` cleared (closed when already
        acknowledged). Returns how many."""
        now = utcnow()
        base = ((SystemAlarm.kind == kind) & (SystemAlarm.subject == subject) & (SystemAlarm.closed == False)  # noqa: E712
                & SystemAlarm.cleared_at.is_null())
        with database.atomic():
            closed = SystemAlarm.update(cleared_at=now, closed=True).where(
                base & SystemAlarm.acknowledged_at.is_null(False)).execute()
            kept = SystemAlarm.update(cleared_at=now).where(base).execute()
        if closed or kept:
            log.info("alarm %s %s cleared", kind, subject)
        return closed + kept

    def reconcile(self, findings: Iterable[Finding], kinds: Iterable[str]) -> None:
        """Raise every finding; clear the open alarms of ``kinds`` no finding names any more."""
        findings = list(findings)
        holding = {(f.kind, f.subject) for f in findings}
        for finding in findings:
            self.raise_alarm(finding.kind, finding.text, subject=finding.subject, severity=finding.severity)
        kinds = tuple(kinds)
        stale = (SystemAlarm.select(SystemAlarm.kind, SystemAlarm.subject)
                 .where(SystemAlarm.kind.in_(kinds) & (SystemAlarm.closed == False)  # noqa: E712
                        & SystemAlarm.cleared_at.is_null()))
        for row in list(stale):
            if (row.kind, row.subject) not in holding:
                self.clear(row.kind, row.subject)

    def acknowledge(self, alarm_id: int, user) -> SystemAlarm:
        """``user`` has seen the alarm: it leaves the consoles (closed when its condition already cleared).
        The caller audits it."""
        now = utcnow()
        with database.atomic():
            row = SystemAlarm.get_or_none(SystemAlarm.id == alarm_id)
            if row is None:
                raise AlarmError(f"no alarm {alarm_id}")
            if row.acknowledged_at is None:
                SystemAlarm.update(acknowledged_at=now, acknowledged_by=user,
                                   closed=row.cleared_at is not None).where(SystemAlarm.id == row.id).execute()
        return SystemAlarm.get_by_id(alarm_id)


def desk_notice(row: SystemAlarm) -> None:
    """A notice on the hotline centre's desk (its notification list), once per opened alarm."""
    from caseflow.notifications import centre_department, notify

    centre = centre_department()
    if centre is not None:
        notify(f"告警 / alarm {row.kind}{' ' + row.subject if row.subject else ''}: {row.text}"[:255],
               department=centre, kind="alarm")


def shown(limit: int = 50, kinds: Optional[Iterable[str]] = None) -> list[SystemAlarm]:
    """Alarms nobody has acknowledged yet (of ``kinds`` when given), critical first, newest first."""
    query = SystemAlarm.select().where(SystemAlarm.acknowledged_at.is_null() & (SystemAlarm.closed == False))  # noqa: E712
    if kinds is not None:
        query = query.where(SystemAlarm.kind.in_(tuple(kinds)))
    rows = list(query.order_by(SystemAlarm.last_seen.desc()).limit(limit))
    return sorted(rows, key=lambda r: r.severity != CRITICAL)


def recent(limit: int = 200) -> list[SystemAlarm]:
    """The latest alarms, acknowledged and closed ones too (the alarm list page)."""
    return list(SystemAlarm.select().order_by(SystemAlarm.last_seen.desc()).limit(limit))


__all__ = ["AlarmService", "AlarmError", "KINDS", "desk_notice", "shown", "recent"]
