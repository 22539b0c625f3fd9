"""Scheduled jobs while the database is away: one clear line per job per outage, one when it is back.

Every job of the product (the case engine's reminders, the SMS and e-mail rounds, the fax dispatcher, the
alarm checks, the dialer...) runs on one APScheduler scheduler, and nearly every one begins by taking a
database connection. With PostgreSQL restarting, each of them used to log its full traceback at every run
(the e-mail round every 2 s, the dialer every 5 s): pages of identical tracebacks hiding what happened.
``GuardedScheduler`` wraps every job added to it in ``guard_job``: a run failing because the database is
unavailable (``core.db.connection_lost``, or a ``DatabaseTimeout``: no connection within the timeout) logs
one WARNING line for that job when the outage begins and one when a run succeeds again (with how long and
how many runs it missed); the traceback of each failed run is kept at DEBUG. Any other failure is logged
with its traceback as before (APScheduler's own executor did that), and the next run tries again.
"""
from __future__ import annotations

import functools
import logging
import time

from apscheduler.schedulers.gevent import GeventScheduler

from core.db import DatabaseTimeout, connection_lost

log = logging.getLogger(__name__)


def database_unavailable(error: BaseException) -> bool:
    """True when ``error`` says the database could not be reached or did not answer in time (not a bug of
    the job): what the next run, once it is back, does again by itself."""
    return isinstance(error, DatabaseTimeout) or connection_lost(error)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def guard_job(func, name: str = ""):
    """``func`` as a scheduled job: never raises; database outages logged once per outage (module docstring)."""
    if getattr(func, "hotline_guarded", False):
        return func
    name = name or getattr(func, "__name__", "job")
    outage: dict = {}  # since (monotonic), runs: the outage this job is in, empty while the database answers

    @functools.wraps(func)
    def run(*args, **kwargs):
        try:
            result = func(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - a job's failure is logged here; the next run tries again
            if not database_unavailable(error):
                log.exception("scheduled job %s failed", name)
                return None
            if not outage:
                outage.update(since=time.monotonic(), runs=0)
                log.warning("scheduled job %s: the database is unavailable (%s); its runs fail until it is back "
                            "(logged once, tracebacks at debug)", name, _first_line(error))
            outage["runs"] += 1
            log.debug("scheduled job %s: run failed, database unavailable", name, exc_info=True)
            return None
        if outage:
            log.warning("scheduled job %s: the database is back, the job runs again (%d run(s) failed over %.0f s)",
                        name, outage["runs"], time.monotonic() - outage["since"])
            outage.clear()
        return result

    run.hotline_guarded = True
    return run


class GuardedScheduler(GeventScheduler):
    """The product's scheduler: every job added goes through ``guard_job`` (named by its id)."""

    def add_job(self, func, *args, **kwargs):
        return super().add_job(guard_job(func, kwargs.get("id") or ""), *args, **kwargs)


__all__ = ["GuardedScheduler", "database_unavailable", "guard_job"]
