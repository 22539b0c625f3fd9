"""caseflow.search_merging: SQLite's ticket full-text index merged by a thread, not inside ticket creations
(issue 15 item 7): while the merger lives a creation merges nothing inline, the thread merges the segments the
creations leave, a step refused the write lock is tried again later, and at its stop the index merges inline
again. The searches find the same tickets throughout."""
from __future__ import annotations

import sqlite3

import pytest

from caseflow import search, services
from caseflow.search_merging import LEVEL_SEGMENTS, FtsMerger, start_fts_merger
from core.db import is_postgres
from tests.waiting import wait_until


@pytest.fixture
def sqlite_db(db):
    if is_postgres():
        pytest.skip("SQLite's FTS5 index (PostgreSQL's GIN merges its pending list in the background already)")
    search.ensure_all()
    return db


def _segments(db) -> int:
    # the index's segments: %_idx holds each segment's first terms by segment id (FTS5's own shadow table)
    return db.execute_sql("SELECT count(DISTINCT segid) FROM ticket_fts_idx").fetchone()[0]


def _config(db) -> dict:
    return dict(db.execute_sql("SELECT k, v FROM ticket_fts_config WHERE k IN ('automerge', 'usermerge')"))


def _found(org_setup, text: str) -> int:
    return len(services.search_tickets(org_setup.centre_user, text=text, limit=100))


def _file(count: int, agent, text: str = "路灯不亮，晚上一片漆黑") -> None:
    for _ in range(count):
        services.create_ticket(text, type="complaint", created_by=agent)


def test_creations_leave_the_merging_to_the_thread(sqlite_db, org_setup):
    """Should merge inline without a merger (70 one-page segments cross FTS5's 64-page mark), merge nothing
    inline while the merger lives (55 creations, 55 more segments), merge those in the thread's step (fewer
    segments, every ticket still found), and at its stop give the index inline merging back."""
    before = _segments(sqlite_db)
    _file(70, org_setup.agent)
    assert _segments(sqlite_db) < before + 70  # inline: some creation merged
    merger = FtsMerger(sqlite_db, interval=3600).start()  # its first round at once, the next in an hour
    try:
        wait_until(lambda: merger.rounds >= 1, 10, "the thread's first round")
        assert _config(sqlite_db) == {"automerge": 0, "usermerge": LEVEL_SEGMENTS}
        before = _segments(sqlite_db)
        _file(55, org_setup.agent)
        assert _segments(sqlite_db) == before + 55  # no creation merged any
        assert _found(org_setup, "路灯") == 100  # the search's limit: 125 match
        con = sqlite3.connect(sqlite_db.database, isolation_level=None)
        try:
            merger._step(con, "ticket")  # the thread's step, run here to see its effect now
        finally:
            con.close()
        assert merger.steps == 1 and merger.took_ms and merger.last_error == ""
        assert _segments(sqlite_db) < LEVEL_SEGMENTS
        assert len(services.search_tickets(org_setup.centre_user, text="路灯", limit=200)) == 125
    finally:
        merger.stop()
    assert _config(sqlite_db)["automerge"] == search.FTS_MERGING["ticket"]["automerge"]


def test_a_step_refused_the_lock_gives_up_and_the_next_one_merges(sqlite_db, org_setup):
    """Should give up a step whose write lock another writer holds past ``acquire_within`` (nothing merged, the
    reason kept, no wait in SQLite's busy handler), and merge at the next step once the lock is free."""
    merger = FtsMerger(sqlite_db, interval=3600, acquire_within=0.2)
    merger._settings("ticket", {"automerge": 0, "usermerge": LEVEL_SEGMENTS})
    _file(LEVEL_SEGMENTS + 1, org_setup.agent, "井盖丢失，行人危险")
    segments = _segments(sqlite_db)
    holder = sqlite3.connect(sqlite_db.database, isolation_level=None)
    step = sqlite3.connect(sqlite_db.database, isolation_level=None, timeout=merger.busy_timeout)
    try:
        holder.execute("BEGIN IMMEDIATE")
        merger._step(step, "ticket")
        assert merger.steps == 0 and "locked" in merger.last_error
        holder.execute("ROLLBACK")
        merger._step(step, "ticket")
        assert merger.steps == 1 and _segments(sqlite_db) < segments
    finally:
        holder.close()
        step.close()
    assert _found(org_setup, "井盖") == LEVEL_SEGMENTS + 1


def test_a_step_with_nothing_to_merge_counts_none(sqlite_db, org_setup):
    """Should tell a step that merged nothing (fewer than LEVEL_SEGMENTS segments on every level) from one that
    did: FTS5's own sign, the rows it changed."""
    merger = FtsMerger(sqlite_db, interval=3600)
    services.create_ticket("噪声扰民", type="complaint", created_by=org_setup.agent)
    con = sqlite3.connect(sqlite_db.database, isolation_level=None)
    try:
        merger._step(con, "ticket")
    finally:
        con.close()
    assert merger.steps == 0 and merger.last_error == ""


def test_only_a_file_database_gets_a_merger(db):
    """Should start a merger for an SQLite file only: none for PostgreSQL or an in-memory database."""
    if is_postgres():
        assert start_fts_merger(db) is None
        return
    search.ensure_all()
    merger = start_fts_merger(db)
    try:
        assert isinstance(merger, FtsMerger)
        wait_until(merger.alive, 10, "the merger's heartbeat")
    finally:
        merger.stop()
