"""Routine job runs stay out of the product's log; warnings and the operator's DEBUG do not."""
from __future__ import annotations

import logging

import pytest

from core.logsetup import configure_logging


@pytest.fixture
def scheduler_logger():
    """The scheduler's run logger, with the root at INFO as a started product has it."""
    root, parent = logging.getLogger(), logging.getLogger("apscheduler")
    saved = root.level, parent.level
    root.setLevel(logging.INFO)
    yield logging.getLogger("apscheduler.executors.default")
    root.setLevel(saved[0])
    parent.setLevel(saved[1])


def test_routine_job_runs_are_not_logged_at_info(scheduler_logger):
    """Should drop APScheduler's per-run INFO lines ("Running job", "executed successfully")."""
    configure_logging("INFO")
    assert not scheduler_logger.isEnabledFor(logging.INFO)
    assert scheduler_logger.isEnabledFor(logging.WARNING)


def test_debug_level_shows_the_scheduler_too(scheduler_logger):
    """Should let an operator who asks for DEBUG see the scheduler's runs."""
    configure_logging("DEBUG")
    assert scheduler_logger.isEnabledFor(logging.INFO)
