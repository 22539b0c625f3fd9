"""Scheduled recorder work: the fax watchdog, outbound fax dispatch, failed-recording notes on tickets linked
after the failure, and the optional recording retention."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def first_connected(pool):
    """A connected inbound connection to send faxes through, or None while every switch is down."""
    for connection in pool.all():
        if getattr(connection, "connected", False):
            return connection
    return None


def register_jobs(scheduler, *, fax, store, pool, wrap=lambda func: func) -> list[str]:
    """Add the recorder's jobs to an APScheduler scheduler; ``wrap`` gives each a database connection.

    Retention runs daily at 03:30 only when HOTLINE_RECORDING_RETENTION_DAYS is set (off by default).
    Returns the job ids added.
    """
    def dispatch() -> None:
        connection = first_connected(pool)
        if connection is not None:
            fax.dispatch_due(connection)

    def retention() -> None:
        archived = store.archive_old()
        if archived:
            log.info("archived %d recordings older than %d days", len(archived), store.options.retention_days)

    def notes() -> None:
        import datetime as dt

        from recorder.tickets import sweep_recording_notes

        since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=15)
        sweep_recording_notes(since)

    notes.__name__ = "recording_notes"
    dispatch.__name__ = "fax_dispatch"
    retention.__name__ = "recording_retention"
    ids = []
    scheduler.add_job(wrap(fax.watchdog), "interval", seconds=30, id="fax_watchdog", max_instances=1,
                      coalesce=True)
    ids.append("fax_watchdog")
    scheduler.add_job(wrap(dispatch), "interval", seconds=15, id="fax_dispatch", max_instances=1, coalesce=True)
    ids.append("fax_dispatch")
    scheduler.add_job(wrap(notes), "interval", seconds=60, id="recording_notes", max_instances=1, coalesce=True)
    ids.append("recording_notes")
    if store.options.retention_days > 0:
        scheduler.add_job(wrap(retention), "cron", hour=3, minute=30, id="recording_retention", max_instances=1,
                          coalesce=True)
        ids.append("recording_retention")
    return ids
