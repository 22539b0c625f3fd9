"""Logging setup for the process (library modules only call logging.getLogger(__name__))."""
from __future__ import annotations

import logging
import os

# Libraries whose INFO lines are routine chatter: APScheduler logs "Running job ..." and "... executed
# successfully" for every run of every interval job (two lines every 5 s from the dialer alone, about
# 2,800 lines in 3 idle minutes). Their warnings (missed runs, job errors) still reach the log.
QUIET_LIBRARIES = ("apscheduler",)


def configure_logging(level: str | None = None) -> None:
    """Log to stderr with time, level and module; HOTLINE_LOG_LEVEL overrides the level."""
    level_name = (level or os.environ.get("HOTLINE_LOG_LEVEL", "INFO")).upper()
    root_level = getattr(logging, level_name, logging.INFO)
    logging.basicConfig(level=root_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LIBRARIES:
        # At DEBUG the operator asked for everything, the libraries' chatter included.
        logging.getLogger(name).setLevel(max(root_level, logging.WARNING) if root_level > logging.DEBUG
                                         else logging.DEBUG)
