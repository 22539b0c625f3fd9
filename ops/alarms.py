"""The one alarm service: ``raise_alarm`` stores an alarm (deduplicated by kind and subject while open),
``clear`` marks a condition gone, ``acknowledge`` records who saw it; ``shown`` is what the team-lead
console and the centre desk display. A newly opened alarm is handed to the duty leader's phones through
the SMS platform's hook (channels.alarms.alarm), passed in as ``notify`` so the service does not depend on
how messages are sent.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from core.db import database
from ops.models import SystemAlarm, utcnow
from ops.rules import CRITICAL, KINDS, WARNING, Finding

log = logging.getLogger(__name__)

Notify = Callable[[str, str], object]


def sms_hook(kind: str, text: str) -> object:
    """The SMS platform's hook: stores the channel's alarm, notifies the centre desk, texts HOTLINE_DUTY_PHONES."""
    from channels.alarms import alarm

    return alarm(kind, text)


class AlarmError(ValueError):
    """A refused alarm operation (unknown alarm, bad input)."""


@dataclass
class AlarmService:
    """Raise, clear and acknowledge alarms; ``notify(kind, text)`` is called once per newly opened alarm."""

    notify: Optional[Notify] = sms_hook

    def raise_alarm(self, kind: str, text: str, *, subject: str = "", severity: str = WARNING) -> SystemAlarm:
        """Open an alarm, or count it on the open one of the same kind and subject (re-shown when it had
        been cleared but not acknowledged). Returns the row."""
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
                                   cleared_at=None).where(SystemAlarm.id == row.id).execute()
                return SystemAlarm.get_by_id(row.id)
            row = SystemAlarm.create(kind=kind, subject=subject, severity=severity, text=text, first_seen=now,
                                     last_seen=now)
        log.log(logging.ERROR if severity == CRITICAL else logging.WARNING, "alarm %s %s: %s", kind, subject, text)
        self._hand_over(kind, text)
        return row

    def _hand_over(self, kind: str, text: str) -> None:
        if self.notify is None:
            return
        try:
            self.notify(kind, text)
        except Exception:  # noqa: BLE001 - the alarm stays on the consoles; the SMS side logs its own failure
            log.exception("alarm %s: could not hand it to the SMS platform", kind)

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


def shown(limit: int = 50) -> list[SystemAlarm]:
    """Alarms nobody has acknowledged yet, critical first, newest first."""
    rows = list(SystemAlarm.select().where(SystemAlarm.acknowledged_at.is_null()).order_by(
        SystemAlarm.last_seen.desc()).limit(limit))
    return sorted(rows, key=lambda r: r.severity != CRITICAL)


def recent(limit: int = 200) -> list[SystemAlarm]:
    """The latest alarms, acknowledged and closed ones too (the alarm list page)."""
    return list(SystemAlarm.select().order_by(SystemAlarm.last_seen.desc()).limit(limit))


__all__ = ["AlarmService", "AlarmError", "KINDS", "shown", "recent", "sms_hook"]
