"""Routine job runs stay out of the product's log; warnings and the operator's DEBUG do not; statements are
logged without their values."""
from __future__ import annotations

import logging

import pytest

from core.logsetup import configure_logging


@pytest.fixture
def scheduler_logger(statement_filters):
    """The scheduler's run logger, with the root at INFO as a started product has it (the statement logger's
    filters that configure_logging installs removed after)."""
    root, parent = logging.getLogger(), logging.getLogger("apscheduler")
    saved = root.level, parent.level
    root.setLevel(logging.INFO)
    yield logging.getLogger("apscheduler.executors.default")
    root.setLevel(saved[0])
    parent.setLevel(saved[1])


@pytest.fixture
def statement_filters():
    """The statement logger with none of its values filters, its filters as they were restored after: a later
    test in the process sees the logging it set up itself."""
    from core import logsetup

    statements = logging.getLogger(logsetup.STATEMENT_LOGGER)
    saved = list(statements.filters)
    statements.filters[:] = [f for f in saved if not isinstance(f, logsetup.StatementValues)]
    yield statements
    statements.filters[:] = saved


def test_routine_job_runs_are_not_logged_at_info(scheduler_logger):
    """Should drop APScheduler's per-run INFO lines ("Running job", "executed successfully")."""
    configure_logging("INFO")
    assert not scheduler_logger.isEnabledFor(logging.INFO)
    assert scheduler_logger.isEnabledFor(logging.WARNING)


def test_debug_level_shows_the_scheduler_too(scheduler_logger):
    """Should let an operator who asks for DEBUG see the scheduler's runs."""
    configure_logging("DEBUG")
    assert scheduler_logger.isEnabledFor(logging.INFO)


def test_statements_are_logged_without_their_values(caplog, statement_filters):
    """Should log a statement at DEBUG with its SQL but none of its values (a receipt's text holds the ticket's
    query PIN), once configured, however often configured; other DEBUG lines stay as they were."""
    from core import logsetup

    statements = statement_filters
    configure_logging("DEBUG")
    configure_logging("DEBUG")
    assert sum(isinstance(f, logsetup.StatementValues) for f in statements.filters) == 1
    with caplog.at_level(logging.DEBUG):
        statements.debug(('INSERT INTO "message" ("body") VALUES (%s)', ["查询码689605"]))
        statements.debug(("COMMIT", None))
        logging.getLogger("channels.mailflow").debug("e-mail %s", "689605")
    assert [r.getMessage() for r in caplog.records] == [
        'INSERT INTO "message" ("body") VALUES (%s) [1 values not logged]', "COMMIT [0 values not logged]",
        "e-mail 689605"]


def test_opening_a_database_hides_statement_values_too(statement_filters, tmp_path):
    """Should install the values filter where a database is opened (a process that never called
    configure_logging: a command's basicConfig, a shell), once, however often opened or configured."""
    from core import db as core_db, logsetup

    assert not any(isinstance(f, logsetup.StatementValues) for f in statement_filters.filters)
    core_db.open_database(f"sqlite:///{tmp_path / 'a.sqlite3'}")
    core_db.open_database(f"sqlite:///{tmp_path / 'b.sqlite3'}")
    configure_logging("DEBUG")
    assert sum(isinstance(f, logsetup.StatementValues) for f in statement_filters.filters) == 1
