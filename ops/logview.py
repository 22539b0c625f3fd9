"""The process log as the administrator's log page reads it: the file core.logsetup writes and its rotated
copies, parsed into entries (a traceback stays with its line), filtered by time, level and text (an
operator number), newest first, a page at a time. The page never names a file: the path comes from the
configuration alone."""
from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from pathlib import Path

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Read at most this much of the newest log text per request (the rotated files hold more; the page is for
# the recent past, the files themselves for the rest).
MAX_BYTES = 32 * 1024 * 1024
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+): ?(.*)$")


@dataclass(frozen=True)
class Entry:
    at: dt.datetime  # local time of the process, as logging writes it
    level: str
    logger: str
    message: str


def _files(path: Path) -> list[Path]:
    """hotline.log, hotline.log.1, ... newest first."""
    found = [path] if path.is_file() else []
    n = 1
    while Path(f"{path}.{n}").is_file():
        found.append(Path(f"{path}.{n}"))
        n += 1
    return found


def read_entries(path: Path, max_bytes: int = MAX_BYTES) -> list[Entry]:
    """Entries of the newest ``max_bytes`` of the log, oldest first."""
    chunks, budget = [], max_bytes
    for file in _files(Path(path)):
        size = file.stat().st_size
        with file.open("rb") as handle:
            if size > budget:
                handle.seek(size - budget)
                handle.readline()  # a partial line
            data = handle.read(budget)
        chunks.append(data.decode("utf-8", errors="replace"))
        budget -= len(data)
        if budget <= 0:
            break
    entries: list[Entry] = []
    for text in reversed(chunks):
        for line in text.splitlines():
            match = LINE.match(line)
            if match:
                at = dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(
                    microsecond=int(match.group(2)) * 1000)
                entries.append(Entry(at, match.group(3), match.group(4), match.group(5)))
            elif entries and line:
                last = entries[-1]
                entries[-1] = Entry(last.at, last.level, last.logger, last.message + "\n" + line)
    return entries


def search(path: Path, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
           level: str = "", text: str = "", page: int = 1, per_page: int = 100) -> tuple[list[Entry], int]:
    """Entries at ``level`` or above, within [since, until), containing ``text``; newest first. Returns one
    page and the number matching."""
    minimum = logging.getLevelName(level) if level in LEVELS else 0
    needle = text.casefold()
    matching = [e for e in read_entries(path)
                if logging.getLevelName(e.level) >= minimum
                and (since is None or e.at >= since) and (until is None or e.at < until)
                and (not needle or needle in e.message.casefold() or needle in e.logger.casefold())]
    matching.reverse()
    start = (max(page, 1) - 1) * per_page
    return matching[start:start + per_page], len(matching)
