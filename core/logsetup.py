"""Logging setup for the process (library modules only call logging.getLogger(__name__))."""
from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

# Libraries whose INFO lines are routine chatter: APScheduler logs "Running job ..." and "... executed
# successfully" for every run of every interval job (two lines every 5 s from the dialer alone, about
# 2,800 lines in 3 idle minutes). Their warnings (missed runs, job errors) still reach the log.
QUIET_LIBRARIES = ("apscheduler",)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FILE = "hotline.log"
STATEMENT_LOGGER = "peewee"  # logs each statement at DEBUG as the tuple (sql, values)


class StatementValues(logging.Filter):
    """Keeps a logged statement's SQL and drops its values: they are citizens' data (a receipt's text with the
    ticket's query PIN, which the database itself never holds past the gateway, a bounce quoting it, phone
    numbers, what was written in), and an operator's HOTLINE_LOG_LEVEL=DEBUG must not put them in the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, tuple) and len(record.msg) == 2 and not record.args:
            sql, values = record.msg
            record.msg = f"{sql} [{len(values or ())} values not logged]"
        return True


def hide_statement_values() -> None:
    """Log the database's statements (at DEBUG) without their values, from now on in this process (once).
    configure_logging calls it, and so does core.db.open_database: a process that sets its logging up in any
    other way (a command's basicConfig, a shell, a script at DEBUG) opens its database there all the same."""
    logger = logging.getLogger(STATEMENT_LOGGER)
    if not any(isinstance(f, StatementValues) for f in logger.filters):
        logger.addFilter(StatementValues())


def configure_logging(level: str | None = None) -> None:
    """Log to stderr with time, level and module; HOTLINE_LOG_LEVEL overrides the level."""
    level_name = (level or os.environ.get("HOTLINE_LOG_LEVEL", "INFO")).upper()
    root_level = getattr(logging, level_name, logging.INFO)
    logging.basicConfig(level=root_level, format=LOG_FORMAT)
    hide_statement_values()
    for name in QUIET_LIBRARIES:
        # At DEBUG the operator asked for everything, the libraries' chatter included.
        logging.getLogger(name).setLevel(max(root_level, logging.WARNING) if root_level > logging.DEBUG
                                         else logging.DEBUG)


def log_file(config) -> Path:
    """The process log file: HOTLINE_LOG_DIR (default var/log) / hotline.log; the administrator's log page
    reads it and its rotated copies (hotline.log.1 ...)."""
    return Path(config.extra.get("HOTLINE_LOG_DIR") or Path(config.var_dir) / "log") / LOG_FILE


def add_file_sink(path: Path, max_mb: int = 20, files: int = 10) -> logging.Handler:
    """Also write the log to ``path``, rotated at ``max_mb`` with ``files`` old copies (stderr stays). Added
    once per path: a second call returns the handler already there."""
    path = Path(path)
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.handlers.RotatingFileHandler) and Path(handler.baseFilename) == path.resolve():
            return handler
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_mb * 1024 * 1024, backupCount=files,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    return handler
