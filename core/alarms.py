"""The one door every floor raises an alarm through: ``raise_alarm(kind, text, subject=, severity=, event=)``.

The recorder (storage full, a fax stuck), the case engine (an attachment that did not fit on the disk), the
channels (an SMS given up on) sit below ops/, which owns the alarm store, its page and its notification
path (ops.alarms.AlarmService). They may not import it (docs/architecture.md), so they call this function
and the composition root (hotline.product) connects the service once at build: ``connect(service.raise_alarm)``.

An alarm raised inside a database transaction is stored once the outermost one has ended, committed or
rolled back (``core.db.after_transaction``): the failure it reports (a full disk under an upload, a fax, a
mail) usually rolls that very transaction back, which used to take the alarm with it. Stored after the
transaction, on its own, it also never holds SQLite's write lock or a pooled connection on a second one.

Raising an alarm never breaks the caller: the sink's failure is logged. With no sink connected (a command
line tool, a unit test of one floor) the alarm is an ERROR line in the log, which a log monitor still sees.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

from core.db import after_transaction

log = logging.getLogger(__name__)

WARNING, CRITICAL = "warning", "critical"

Sink = Callable[..., object]

_lock = threading.Lock()
_sink: Optional[Sink] = None


def connect(sink: Sink) -> None:
    """Send every alarm to ``sink(kind, text, subject=, severity=, event=)`` from now on (one sink: the last
    connected wins, so a rebuilt product replaces its predecessor)."""
    global _sink
    with _lock:
        _sink = sink


def disconnect(sink: Optional[Sink] = None) -> None:
    """Stop sending alarms to ``sink`` (to whichever is connected when None)."""
    global _sink
    with _lock:
        if sink is None or _sink == sink:
            _sink = None


def connected() -> Optional[Sink]:
    return _sink


def raise_alarm(kind: str, text: str, *, subject: str = "", severity: str = WARNING, event: bool = True):
    """Raise an alarm; returns what the sink returned (the stored alarm), or None (no sink, a failure, or
    raised inside a transaction: stored when it ends, whether it commits or rolls back).

    ``event``: a thing that happened (a recording failed, a fax gave up), over once an operator has seen it;
    False for a condition a check clears itself when it is gone (a switch down, a disk low).
    """
    sink = _sink
    if sink is None:
        log.error("alarm %s %s (no alarm service connected): %s", kind, subject, text)
        return None
    stored: list = []

    def store() -> None:
        try:
            stored.append(sink(kind, text, subject=subject, severity=severity, event=event))
        except Exception:  # noqa: BLE001 - an alarm that cannot be stored must not break what raised it
            log.exception("alarm %s %s could not be stored: %s", kind, subject, text)

    if after_transaction(store):
        log.info("alarm %s %s raised inside a transaction: stored when it ends", kind, subject)
    return stored[0] if stored else None
