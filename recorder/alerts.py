"""Operator alerts raised by the recorder (storage not writable, fax stuck, conversion failed).

Each alert is a RecorderAlert row (shown on the recordings and fax pages), a notification on the centre's
desk, and an ERROR log line, so a log-based monitor sees it too.
"""
from __future__ import annotations

import logging

from recorder.models import RecorderAlert

log = logging.getLogger(__name__)


def raise_alert(kind: str, message: str, severity: str = "error") -> RecorderAlert:
    """Store and log an alert; returns the row."""
    log.log(logging.WARNING if severity == "warning" else logging.ERROR, "alert %s: %s", kind, message)
    alert = RecorderAlert.create(kind=kind, message=message, severity=severity)
    from recorder.tickets import notify_centre

    notify_centre(f"[{ALERT_LABELS.get(kind, kind)}] {message}", kind="warn")
    return alert


ALERT_LABELS = {
    "recording_storage": "录音存储告警 / recording storage",
    "recording_start": "录音启动失败 / recording not started",
    "recording_archive": "录音归档失败 / recording archive",
    "fax_timeout": "传真超时 / fax timed out",
    "fax_failed": "传真失败 / fax failed",
}


def open_alerts(limit: int = 50) -> list[RecorderAlert]:
    """Alerts nobody has acknowledged yet, newest first."""
    return list(RecorderAlert.select().where(RecorderAlert.acknowledged == False)  # noqa: E712
                .order_by(RecorderAlert.at.desc()).limit(limit))


def acknowledge(alert_id: int) -> bool:
    """Mark an alert as seen; False when there is no such alert."""
    return RecorderAlert.update(acknowledged=True).where(RecorderAlert.id == alert_id).execute() > 0
