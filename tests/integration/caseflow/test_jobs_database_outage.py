"""Scheduled jobs while the database is away (issue 16): one clear line per job per outage and one when it is
back, the tracebacks at debug level (core.jobguard.GuardedScheduler, the product's scheduler)."""
from __future__ import annotations

import logging

import peewee
import pytest

from caseflow.jobs import register_jobs
from core import db as core_db
from core.clock import Clock
from core.jobguard import GuardedScheduler, guard_job
from tests.ports import refusing_port


@pytest.fixture
def refusing_url():
    """A PostgreSQL URL whose port nothing listens on (held for the test): every connection refused, as while
    it restarts."""
    with refusing_port() as port:
        yield f"postgresql://postgres@127.0.0.1:{port}/test"


def _records(caplog, level):
    return [r for r in caplog.records if r.levelno == level and r.name == "core.jobguard"]


def test_jobs_log_one_line_per_outage_and_one_when_it_is_back(db, caplog, refusing_url):
    """Should log, for each of the case engine's jobs run three times with the database refusing connections,
    one WARNING naming the job and the cause, no ERROR and no traceback above DEBUG; then, with the database
    back, one line per job saying so; and a new outage is told again."""
    scheduler = GuardedScheduler()
    jobs = register_jobs(scheduler, Clock())
    names = {job.id for job in jobs}
    away = core_db.open_database(refusing_url)
    caplog.set_level(logging.DEBUG, logger="core.jobguard")
    try:
        core_db.database.initialize(away)
        for _ in range(3):
            for job in jobs:
                assert job.func() is None
    finally:
        core_db.database.initialize(db)
    warnings = _records(caplog, logging.WARNING)
    assert sorted(r.getMessage().split(":")[0] for r in warnings) == sorted(f"scheduled job {n}" for n in names)
    assert all("database is unavailable" in r.getMessage() and "refused" in r.getMessage() for r in warnings)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if r.exc_info and r.levelno > logging.DEBUG]
    assert len([r for r in _records(caplog, logging.DEBUG) if r.exc_info]) == 3 * len(jobs)

    caplog.clear()
    for _ in range(2):
        for job in jobs:
            job.func()
    back = _records(caplog, logging.WARNING)
    assert len(back) == len(jobs) and all("database is back" in r.getMessage() and "3 run(s) failed" in r.getMessage()
                                          for r in back)

    caplog.clear()
    core_db.database.initialize(away)
    try:
        jobs[0].func()
    finally:
        core_db.database.initialize(db)
    assert len(_records(caplog, logging.WARNING)) == 1


def test_other_failures_keep_their_traceback(caplog):
    """Should log a job's failure that is not the database's with its traceback at every run, and never raise."""
    def broken():
        raise ValueError("a bug in the job")

    def lost():
        raise peewee.OperationalError("server closed the connection unexpectedly")

    job = guard_job(broken, "broken")
    assert guard_job(job) is job  # added twice (a wrapped job given to the scheduler): wrapped once
    with caplog.at_level(logging.DEBUG, logger="core.jobguard"):
        job()
        job()
        guard_job(lost, "lost")()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all(r.exc_info and "scheduled job broken failed" in r.getMessage() for r in errors)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "scheduled job lost: the database is unavailable (OperationalError: server closed the connection "
        "unexpectedly); its runs fail until it is back (logged once, tracebacks at debug)"]


@pytest.mark.parametrize("error", [core_db.DatabaseTimeout("no free PostgreSQL connection within 10 s"),
                                   peewee.OperationalError("could not connect to server: Connection refused")])
def test_what_counts_as_the_database_away(error):
    """Should take a database timeout and a refused connection for an outage, nothing else."""
    from core.jobguard import database_unavailable

    assert database_unavailable(error)
    assert not database_unavailable(peewee.IntegrityError("duplicate key"))
    assert not database_unavailable(ValueError("Connection refused"))


def test_the_record_chain_check_leaves_an_outage_to_the_scheduler(caplog):
    """Should let the record-chain job's database outage reach the scheduler's guard (one line per outage)
    instead of logging a traceback and trying to store a chain_broken alarm at every run."""
    from ops.alarms import AlarmService
    from ops.jobs import Checks

    def verify():
        raise peewee.OperationalError("could not connect to server: Connection refused")

    job = guard_job(Checks(AlarmService(), verify_chain=verify).chain, "ops-record-chain")
    with caplog.at_level(logging.DEBUG):
        job()
        job()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
