"""caseflow.search_merging: SQLite's ticket full-text index merged by a thread, not inside ticket creations
(issue 15 item 7): while the merger lives a creation merges nothing inline, the thread merges the segments the
creations leave, a step refused the write lock is tried again later, and at its stop the index merges inline
again. The searches find the same tickets throughout."""
from __future__ import annotations

import sqlite3
import threading
import time

import peewee
import pytest

from caseflow import search, services
from caseflow.search_merging import LEVEL_SEGMENTS, THREADED, FtsMerger, start_fts_merger
from core.db import CooperativeSqliteDatabase, is_postgres
from tests.waiting import wait_until


@pytest.fixture
def sqlite_db(db):
    if is_postgres():
        pytest.skip("SQLite's FTS5 index (PostgreSQL's GIN has no merging thread: docs/reliability.md)")
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
        # one segment to start from: 55 more stay under FTS5's crisis merge of the lowest level (64)
        sqlite_db.execute_sql("INSERT INTO ticket_fts(ticket_fts) VALUES ('optimize')")
        before = _segments(sqlite_db)
        _file(55, org_setup.agent)
        assert _segments(sqlite_db) == before + 55  # no creation merged any
        assert _found(org_setup, "路灯") == 100  # the search's limit: 125 match
        con = sqlite3.connect(sqlite_db.database, isolation_level=None)
        try:
            merger._step(con, "ticket")  # the thread's step, run here to see its effect now
        finally:
            con.close()
        assert merger.steps == 1 and merger.took_ms and merger.failures == 0
        assert _segments(sqlite_db) < LEVEL_SEGMENTS
        assert len(services.search_tickets(org_setup.centre_user, text="路灯", limit=200)) == 125
    finally:
        merger.stop()
    assert _config(sqlite_db)["automerge"] == search.FTS_MERGING["ticket"]["automerge"]


def _all_config(db) -> dict:
    return dict(db.execute_sql("SELECT k, v FROM ticket_fts_config"))


def _merges(db) -> bool:
    # a step of at most 100 pages on this connection: FTS5 merges a level of at least usermerge segments only
    before = db.execute_sql("SELECT total_changes()").fetchone()[0]
    db.execute_sql("INSERT INTO ticket_fts(ticket_fts, rank) VALUES ('merge', 100)")
    return db.execute_sql("SELECT total_changes()").fetchone()[0] - before >= 2


def test_stop_gives_back_the_settings_the_index_was_made_with(sqlite_db, org_setup):
    """Should leave the index's FTS5 settings (its whole %_config table) at stop() as they were before start(),
    usermerge too (no row: FTS5's default), also after a process killed left the thread's behind; and the
    connection that wrote them merges by FTS5's default usermerge again (4 segments of a level, not 16)."""
    made = _all_config(sqlite_db)
    assert "usermerge" not in made and made["automerge"] == search.FTS_MERGING["ticket"]["automerge"]
    merger = FtsMerger(sqlite_db, interval=3600).start()
    assert _all_config(sqlite_db) == {**made, **THREADED}
    merger.stop()
    assert _all_config(sqlite_db) == made
    search.write_fts_settings(sqlite_db, "ticket", THREADED)  # a process killed with its thread living
    merger = FtsMerger(sqlite_db, interval=3600).start()
    merger.stop()
    assert _all_config(sqlite_db) == made
    sqlite_db.execute_sql("INSERT INTO ticket_fts(ticket_fts) VALUES ('optimize')")  # one segment
    _file(search.FTS5_DEFAULTS["usermerge"], org_setup.agent)  # 4 on the lowest level (that one is above)
    assert _merges(sqlite_db)


def _lock_for(db, seconds: float) -> threading.Thread:
    """Another writer holding the write lock for ``seconds`` (from a thread of its own), once it is held."""
    held = threading.Event()

    def hold():
        con = sqlite3.connect(db.database, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
            held.set()
            time.sleep(seconds)
            con.execute("ROLLBACK")
        finally:
            con.close()

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(10)
    return thread


def test_a_step_waits_for_the_lock_a_while_then_gives_up(sqlite_db, org_setup):
    """Should take the write lock once another writer lets it go within ``acquire_within`` (tried again, not
    refused at once: no busy handler), give up a step whose lock stays held past it (nothing merged, counted as
    refused, not as a failure), and merge at the next step."""
    merger = FtsMerger(sqlite_db, interval=3600, acquire_within=0.5)
    search.write_fts_settings(sqlite_db, "ticket", THREADED)  # the thread's, without its thread
    _file(LEVEL_SEGMENTS + 1, org_setup.agent, "井盖丢失，行人危险")
    segments = _segments(sqlite_db)
    step = sqlite3.connect(sqlite_db.database, isolation_level=None, timeout=merger.busy_timeout)
    try:
        holder = _lock_for(sqlite_db, 2.0)
        merger._step(step, "ticket")  # held past its 0.5 s
        holder.join()
        assert (merger.steps, merger.refused, merger.failures) == (0, 1, 0) and _segments(sqlite_db) == segments
        holder = _lock_for(sqlite_db, 0.1)
        merger._step(step, "ticket")  # let go after 0.1 s: taken then
        holder.join()
        assert (merger.steps, merger.refused, merger.failures) == (1, 1, 0) and _segments(sqlite_db) < segments
    finally:
        step.close()
    assert _found(org_setup, "井盖") == LEVEL_SEGMENTS + 1


def test_the_thread_merges_by_itself(sqlite_db, org_setup):
    """Should merge, in its own thread's rounds, the segments creations left while it lived."""
    merger = FtsMerger(sqlite_db, interval=3600).start()
    try:
        wait_until(lambda: merger.rounds >= 1, 10, "the thread's first round")
        _file(LEVEL_SEGMENTS + 4, org_setup.agent)
        before = _segments(sqlite_db)
        merger.interval = 0.05
        merger._wake.set()  # out of its hour's wait: the next rounds every 0.05 s
        wait_until(lambda: merger.steps >= 1, 10, "a step of the thread's")
        assert _segments(sqlite_db) < before
    finally:
        merger.stop()


def test_watch_restarts_a_thread_that_ended_and_alarms_failures(sqlite_db, org_setup, monkeypatch):
    """Should, from the minute job, start again a merger whose thread ended (heartbeat stale) with an alarm, raise
    one alarm for steps that failed otherwise than on the lock, and none while all is well."""
    import caseflow.search_merging as merging

    alarms = []
    monkeypatch.setattr(merging, "raise_alarm", lambda kind, text, **kw: alarms.append((kind, text)))
    merger = FtsMerger(sqlite_db, interval=3600).start()
    try:
        wait_until(lambda: merger.rounds >= 1, 10, "the thread's first round")
        merger.watch()
        assert alarms == []
        merger.beat = time.monotonic() - 10 ** 6  # as if its thread had died long ago
        merger.watch()
        assert [kind for kind, _ in alarms] == ["fts_merging"] and "started again" in alarms[0][1]
        assert merger.alive() and _config(sqlite_db)["automerge"] == 0
        con = sqlite3.connect(sqlite_db.database, isolation_level=None)
        try:
            merger._step(con, "no_such")  # a step failing: no such table
        finally:
            con.close()
        merger.watch()
        merger.watch()  # the same failure: told once
        assert [kind for kind, _ in alarms] == ["fts_merging"] * 2 and "no_such" in alarms[1][1]
    finally:
        merger.stop()


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
    assert (merger.steps, merger.refused, merger.failures) == (0, 0, 0)


def test_only_a_file_database_gets_a_merger(db):
    """Should start a merger for an SQLite file only: none for PostgreSQL or an in-memory database."""
    assert start_fts_merger(CooperativeSqliteDatabase(":memory:")) is None
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


def test_the_products_stop_checkpoints_the_wal_whatever_the_mergers_stop_raised():
    """Should stop the WAL checkpointer (its last TRUNCATE checkpoint) at the product's stop even when the merger's
    stop raised (its settings not written: the file locked by another process), and let that error be seen."""
    from hotline.product import Product

    class Failing:
        def stop(self):
            raise peewee.OperationalError("database is locked")

    class Checkpointer:
        stopped = False

        def stop(self):
            Checkpointer.stopped = True

    product = Product.__new__(Product)
    product.parts = {"fts_merger": Failing(), "wal_checkpointer": Checkpointer()}
    with pytest.raises(peewee.OperationalError):
        product.stop()
    assert Checkpointer.stopped and product.parts == {}
