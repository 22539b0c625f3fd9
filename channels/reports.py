"""Delivery reports from the gateway, stored a batch at a time: each /sms/dlr request hands its report to
``ReportBatch.submit`` and is answered once the report is committed.

Every SMS comes back as a report request from Kannel (smsbox, at most ``max-pending-requests`` at once), and a
request that opened a database connection of its own for two statements spent most of its time connecting (on
SQLite setting the pragmas of a new connection was a third of the request). Here one greenlet stores what has
gathered while it stored the batch before: one connection for as long as reports keep coming and one
transaction per batch, each report in a savepoint of its own so a bad one (an unknown id) fails alone. Nothing
waits for a batch to fill: a report that comes alone is stored at once.

Nothing is lost: a request is answered 200 only after the transaction holding its report committed; when the
batch cannot be stored (the database away, a lock not granted) every request of it gets the error (503 from the
app's error pages) and Kannel sends it again (``http-request-retry``). Applying a report twice changes nothing
(``channels.outbox.apply_report`` only moves a message forward).
"""
from __future__ import annotations

import logging
from collections import deque
from typing import Callable, Optional

import gevent
import gevent.event

from channels import outbox, sms
from core.db import database

log = logging.getLogger(__name__)

MOST = 100  # reports in one transaction at most
WAIT = 20.0  # seconds a request waits for its batch (Kannel's own HTTP timeout is longer)


class ReportBatch:
    """Stores submitted delivery reports in batches from one greenlet (started when the first report comes,
    ended when none is left). ``apply(id, type, answer, foreign)`` stores one report (outbox.apply_report)."""

    def __init__(self, apply: Callable = outbox.apply_report, most: int = MOST):
        self.apply, self.most = apply, most
        self._queue: deque = deque()
        self._worker: Optional[gevent.Greenlet] = None
        self.batches = 0  # transactions committed (for tests and benchmarks)

    def submit(self, message_id: str, report_type: str, answer: str = "", foreign: str = "",
               timeout: float = WAIT):
        """Store one report; returns the message as stored. Raises LookupError (unknown id), SmsInputError
        (malformed), the database's error when its batch could not be stored, gevent.Timeout after
        ``timeout`` s (the report is still stored when its turn comes)."""
        result = gevent.event.AsyncResult()
        self._queue.append(((message_id, report_type, answer, foreign), result))
        if self._worker is None:
            self._worker = gevent.spawn(self._run)
        return result.get(timeout=timeout)

    def _run(self) -> None:
        opened = False
        try:
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(self.most, len(self._queue)))]
                try:
                    opened = database.connect(reuse_if_open=True) or opened
                    outcomes = self._store(batch)
                except Exception as error:  # noqa: BLE001 - handed to every request of the batch: Kannel retries
                    log.warning("%d delivery report(s) not stored, Kannel sends them again: %s", len(batch), error)
                    opened = self._drop(opened)
                    for _fields, result in batch:
                        result.set_exception(error)
                    continue
                for (_fields, result), (stored, value) in zip(batch, outcomes):
                    if stored:
                        result.set(value)
                    else:
                        result.set_exception(value)
        finally:
            # No yield between the empty queue and this: a report submitted later starts a new worker.
            self._worker = None
            self._drop(opened)

    def _store(self, batch: list) -> list:
        """One transaction for the batch, a savepoint per report; [(stored, message or error)] in order.

        The reports are applied in message id order, the order in which the outbox's UPDATE of a batch of
        messages takes their row locks: two transactions taking locks on the same rows in opposite orders
        deadlock on PostgreSQL, and one of them is aborted."""
        outcomes: list = [None] * len(batch)
        order = sorted(range(len(batch)), key=lambda n: _number(batch[n][0][0]))
        with database.atomic():
            for n in order:
                try:
                    with database.atomic():
                        outcomes[n] = (True, self.apply(*batch[n][0]))
                except (LookupError, sms.SmsInputError) as error:
                    outcomes[n] = (False, error)
        self.batches += 1
        return outcomes

    @staticmethod
    def _drop(opened: bool) -> bool:
        """Close the connection this worker opened (a test's connection, shared by the thread, stays)."""
        if opened and not database.is_closed():
            database.close()
        return False


def _number(message_id) -> int:
    """A report's message id as a number to sort by (a malformed one first: apply refuses it)."""
    try:
        return int(message_id)
    except (TypeError, ValueError):
        return -1
