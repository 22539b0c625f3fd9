"""Logging setup for the process (library modules only call logging.getLogger(__name__))."""
from __future__ import annotations

import logging
import os


def configure_logging(level: str | None = None) -> None:
    """Log to stderr with time, level and module; HOTLINE_LOG_LEVEL overrides the level."""
    level_name = (level or os.environ.get("HOTLINE_LOG_LEVEL", "INFO")).upper()
    logging.basicConfig(
        level=getattr(logging, level_name, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
