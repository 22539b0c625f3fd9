"""SQLite's ticket full-text index merged by a thread of the call process, not inside ticket creations.

FTS5 writes each transaction's rows as a new segment and merges segments as rows are written, inline: every 64
leaf pages written (about one creation in sixty at 1,000,000 tickets) the creation that crossed the mark merges up
to 64 pages per level of the index. While a big level was being merged that was 5-15 ms of the creation's own
CPU, so in a quarter to a half of the benchmark's 2,000-creation windows the creation p99 was 7-14 ms (issue 15
item 7, docs/performance.md). While an ``FtsMerger`` lives, the index merges nothing inline (automerge 0): a
creation only writes its own small segment, and FTS5's crisis merge (``crisismerge`` one-page segments on the
lowest level, about 1.5 ms) is all it may meet; the thread merges the rest, a bounded step at a time, in
transactions of its own. A step holds the write lock a few to some tens of ms: a creation arriving then waits
for it (at most one a step; one step a round), not the creations of a whole big merge as inline.

At ``stop()`` the index gets back the settings it was made with (``caseflow.search.restore_fts_settings``: automerge
as ``FTS_MERGING``, usermerge FTS5's default) and merges inline again, as for tools and tests, which run no merger;
a process killed keeps the thread's settings until the next start, and FTS5's crisis merges bound the index meanwhile.
"""
from __future__ import annotations

import sqlite3
import time

import peewee

from caseflow import search
from core.alarms import raise_alarm
from core.db import CooperativeSqliteDatabase, SqliteThread, sqlite_busy, sqlite_file

SQLITE_BUSY_SNAPSHOT = 517

# The tables whose index the thread merges: the ones FTS_MERGING tunes (the knowledge base is edited by hand).
MERGED = tuple(search.FTS_MERGING)

# A step's output pages (500 bytes each, caseflow.search.FTS_PAGE_SIZE). At 1,000,000 tickets a step of a big level's
# merge takes 20-50 ms; a creation arriving meanwhile waits for it, but in a closed stream of creations only one a
# step does, so a few big steps are better than many small ones: 200-page steps (5-30 ms) fell behind the benchmark's
# ~500 creations a second (126 segments after 20,000, a department's text search p99 62 ms of CPU against 29), 1,000
# keep up with it, and with a busy hotline's few a second many times over.
STEP_PAGES = 1000

# Segments of a level before the thread merges them (FTS5's ``usermerge``): as many as inline merging waited for,
# so searches see the same index shape.
LEVEL_SEGMENTS = 16

# The FTS5 settings of each MERGED index while the thread lives (stop() gives them back as the index was made).
THREADED = {"automerge": 0, "usermerge": LEVEL_SEGMENTS}


class FtsMerger(SqliteThread):
    """Every ``interval`` s one merge step (``STEP_PAGES`` pages at most) of each index of ``MERGED`` that has a
    level of ``LEVEL_SEGMENTS`` segments or a merge under way, as a statement of its own.

    The write lock is taken between two writers' transactions: a step refused it is tried again after ``retry``
    s, the wait doubling up to 2 ms, until ``acquire_within`` s (SQLite's busy handler sleeps 1, 2, 5, 10 ms...:
    under a steady stream of creations it would hardly ever find the lock free); then the next round tries.
    ``watch()`` (the product's minute job) raises an alarm for a step failing otherwise or a thread that ended."""

    def __init__(self, db: CooperativeSqliteDatabase, interval: float = 1.0, step_pages: int = STEP_PAGES,
                 acquire_within: float = 1.0, retry: float = 0.0002):
        super().__init__(db, interval)
        self.step_pages, self.acquire_within, self.retry = step_pages, acquire_within, retry
        self.steps = 0  # steps that merged something
        self.refused = 0  # steps that did not get the write lock in time (tried again next round)
        self.failures = 0  # steps that failed otherwise (last_error says how)
        self._failures_told = 0  # failures the last alarm covered
        self.took_ms: list[float] = []  # how long each merging step took, the write lock held within (the last 1,000)

    # sqlite3.connect's busy timeout for the thread's connection: none, _step waits its own way
    busy_timeout = 0.0

    def start(self) -> "FtsMerger":
        for table in self._indexes():
            with self.db.atomic():
                search.write_fts_settings(self.db, table, THREADED)
        return super().start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread; the indexes merge inline again."""
        if self._result is None:
            return
        super().stop(timeout)
        self._inline()

    def _inline(self) -> None:
        for table in self._indexes():
            with self.db.atomic():
                search.restore_fts_settings(self.db, table, THREADED)

    def _indexes(self) -> list[str]:
        """The tables of ``MERGED`` whose index exists (one made later gets caseflow.search's settings; the next
        start writes the thread's)."""
        return [table for table in MERGED
                if self.db.execute_sql("SELECT 1 FROM sqlite_master WHERE name = ?", (f"{table}_fts",)).fetchone()]

    def watch(self) -> None:
        """On the hub, every minute (hotline.product): a thread that ended (its heartbeat stale) gives the indexes
        inline merging back and is started again; steps failing for another reason than the lock raise the
        ``fts_merging`` alarm too (once for each new run of failures). Without the thread nothing merges but
        FTS5's crisis merges: whole levels inside a creation, and searches slower with every segment."""
        if self.alive() and self.failures == self._failures_told:
            return
        if self.alive():
            what = f"{self.failures - self._failures_told} 次合并失败 / merge steps failed: {self.last_error}"
        else:
            # the error last: an alarm's text is kept to 255 characters (ops.alarms)
            what = ("合并线程已停止，已重启 / the merging thread had stopped (nothing but FTS5's crisis merges "
                    f"meanwhile), started again; {self.last_error or 'no error kept'}")
            self._inline()
            super().stop(timeout=1.0)  # whatever is left of it
            self.start()
        self._failures_told = self.failures
        raise_alarm("fts_merging", f"全文索引合并故障 / full-text index merging: {what}", subject="search")

    def _round(self, conn: sqlite3.Connection) -> None:
        for table in MERGED:
            self._step(conn, table)

    def _step(self, conn: sqlite3.Connection, table: str) -> None:
        """One merge statement on its own (autocommit): SQLite holds the write lock for that statement only. In
        an explicit transaction the lock stayed held while this thread waited for Python's GIL between the
        statements, behind the hub's work: 75 ms a step instead of 5 (measured under a stream of creations)."""
        deadline = time.monotonic() + self.acquire_within
        wait = self.retry
        while True:
            before = conn.total_changes
            started = time.perf_counter()
            try:
                conn.execute(f"INSERT INTO {table}_fts({table}_fts, rank) VALUES ('merge', ?)", (self.step_pages,))
                break
            except sqlite3.Error as error:
                # busy, or the snapshot its read began with went stale before its write (517): nothing done
                locked = sqlite_busy(error) or getattr(error, "sqlite_errorcode", None) == SQLITE_BUSY_SNAPSHOT
                if not locked:
                    self.failures += 1
                    self.last_error = f"{table}: {error}"
                    return
                if time.monotonic() >= deadline or not self.pause(wait):
                    self.refused += 1
                    return
                wait = min(wait * 2, 0.002)
        # FTS5's documented test for "was there work": a step that merged nothing changes fewer than 2 rows
        if conn.total_changes - before >= 2:
            self.steps += 1
            self.took_ms = self.took_ms[-999:] + [(time.perf_counter() - started) * 1000]


def start_fts_merger(db: peewee.Database) -> FtsMerger | None:
    """A started FtsMerger for an SQLite database file (None for PostgreSQL, whose GIN index's pending list is
    moved into it by the insert that overflows it, or an in-memory database)."""
    return FtsMerger(db).start() if sqlite_file(db) else None
