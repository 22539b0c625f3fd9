"""Concurrent finalisers and the seal chain (issue 15 item 10): in a monkey-patched process (as run.py) they take
turns before their transaction (recorder.integrity.seal_turn), so none waits with a connection held on another's
uncommitted seal of the same number, and the chain still verifies."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gevent

from recorder.integrity import seal_turn

REPO = Path(__file__).resolve().parents[3]

# Finalisers spawned together on a pool of 4 connections. Printed: seal inserts that met a number another took
# (PostgreSQL: after waiting on its uncommitted row), the most finalising transactions open at once (a second
# one waits, connection held, on the first's rows: the seal, the quarter-hour counts), and the chain's check.
# argv: url, calls, "turns" or "without".
_FINALISERS = r"""
from gevent import monkey; monkey.patch_all()
import contextlib, sys
import gevent, peewee
from core import db as core_db
from recorder import finalising
from recorder.cdr import CdrRecorder
from recorder.integrity import record_key, verify_database
from recorder.models import CallRecordSeal

url, calls, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if not url.startswith("sqlite"):
    url += ("&" if "?" in url else "?") + "max_connections=4"
database = core_db.bind_database(url)
if mode == "without":
    finalising.seal_turn = lambda database: contextlib.nullcontext(False)
taken = [0]
create = CallRecordSeal.create.__func__

def counting_create(cls, **fields):
    try:
        return create(cls, **fields)
    except peewee.IntegrityError:
        taken[0] += 1
        raise

CallRecordSeal.create = classmethod(counting_create)
# Finalising transactions at once, from their first statement (the call's counts read) to their seal.
inside, most = [0], [0]
stored_count, append_seal = finalising.aggregates.stored_count, finalising.append_seal

def entering(record_id):
    inside[0] += 1
    most[0] = max(most[0], inside[0])
    return stored_count(record_id)

def sealing(*args):
    try:
        return append_seal(*args)
    finally:
        inside[0] -= 1

finalising.aggregates.stored_count, finalising.append_seal = entering, sealing
key = record_key("s" * 40)
cdr = CdrRecorder(key)

def call(n):
    cdr.call_started(f"turn-{n}", caller="13800138000", called="12345", server="fs1:8021")
    gevent.sleep(0)
    cdr.hangup(f"turn-{n}", "NORMAL_CLEARING", "recv_bye")

gevent.joinall([gevent.spawn(call, n) for n in range(calls)], timeout=60, raise_error=True)
report = verify_database(key)
seqs = [s.seq for s in CallRecordSeal.select().order_by(CallRecordSeal.day, CallRecordSeal.seq)]
print(taken[0], most[0], report.seals, len(report.problems), int(seqs == list(range(1, calls + 1))))
database.close_all()
"""


def run_finalisers(url: str, calls: int, mode: str) -> list[int]:
    done = subprocess.run([sys.executable, "-c", _FINALISERS, url, str(calls), mode], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    return [int(x) for x in done.stdout.split()]


def test_concurrent_finalisers_take_turns_and_the_chain_verifies(db, db_url):
    """Should seal 40 calls finalised at once with numbers 1..40, no insert meeting a number another took,
    one finalising transaction open at a time, and the verifier finding nothing wrong."""
    db.close()
    retries, most, seals, problems, in_order = run_finalisers(db_url, 40, "turns")
    assert (retries, most, seals, problems, in_order) == (0, 1, 40, 0, 1)


def test_a_finaliser_inside_a_transaction_does_not_wait_for_a_turn(db):
    """Should go on without a turn when its greenlet already holds a transaction (waiting would pin the
    connection), and take turns otherwise."""
    def try_turn():
        with seal_turn(db, timeout=0.05) as got:
            return got

    with seal_turn(db) as taken:
        assert taken
        assert gevent.spawn(try_turn).get(timeout=5) is False  # the turn is taken: it gave up at its timeout
        with db.atomic(), seal_turn(db) as nested:
            assert nested is False
    assert gevent.spawn(try_turn).get(timeout=5) is True


def test_a_finaliser_waits_for_its_turn_as_long_as_it_takes(db, caplog, monkeypatch):
    """Should keep waiting for the turn up to SEAL_TURN_LIMIT, saying so every SEAL_TURN_PATIENCE s, and never
    go on without it: finalisers that did after 10 s took a pooled connection each and waited on each other's
    open quarter-hour counts (bench/simulation.py on PostgreSQL: 19 at once, 18 of the pool's 20 connections)."""
    import logging

    from recorder import integrity
    from tests.waiting import wait_until

    monkeypatch.setattr(integrity, "SEAL_TURN_PATIENCE", 0.02, raising=False)

    def take_turn():
        with seal_turn(db) as got:
            return got

    caplog.set_level(logging.WARNING, logger="recorder.integrity")
    with seal_turn(db) as taken:
        assert taken
        waiting = gevent.spawn(take_turn)
        wait_until(lambda: sum("waiting for this process's turn" in r.getMessage()
                               for r in caplog.records) >= 3, what="three lines of the waiting finaliser")
        assert not waiting.ready()
    assert waiting.get(timeout=5) is True


def test_finalisers_give_up_the_turn_after_its_limit_with_one_alarm_per_stall(db, caplog, monkeypatch):
    """Should raise SealTurnTimeout in every finaliser still waiting after SEAL_TURN_LIMIT (a holder that never
    comes back stopped every record of the process), with one seal_turn_stuck alarm for them all, not one
    each, and count the waiters in one line per period; during the stall a new finaliser gives up at once; a
    turn taken again ends the stall, and the next stall raises its own alarm."""
    import logging

    import pytest

    from core import alarms as core_alarms
    from recorder import integrity

    monkeypatch.setattr(integrity, "SEAL_TURN_PATIENCE", 0.02, raising=False)
    monkeypatch.setattr(integrity, "SEAL_TURN_LIMIT", 0.2, raising=False)
    monkeypatch.setattr(integrity, "_stalled", [False], raising=False)
    raised = []

    def sink(kind, text, **_):
        raised.append(kind)

    def take_turn():
        with seal_turn(db):
            return True

    caplog.set_level(logging.WARNING, logger="recorder.integrity")
    core_alarms.connect(sink)
    try:
        with seal_turn(db):
            waiters = [gevent.spawn(take_turn) for _ in range(3)]
            gevent.joinall(waiters, timeout=10)
            for waiter in waiters:
                with pytest.raises(integrity.SealTurnTimeout):
                    waiter.get(timeout=0)
            assert raised == ["seal_turn_stuck"]
            assert any("3 finalisers waiting" in r.getMessage() for r in caplog.records)
            monkeypatch.setattr(integrity, "SEAL_TURN_LIMIT", 600.0, raising=False)
            with pytest.raises(integrity.SealTurnTimeout):  # still stuck: the next gives up at once
                gevent.spawn(take_turn).get(timeout=10)
        monkeypatch.setattr(integrity, "SEAL_TURN_LIMIT", 0.2, raising=False)
        assert take_turn() is True  # the stall is over
        with seal_turn(db):
            with pytest.raises(integrity.SealTurnTimeout):
                gevent.spawn(take_turn).get(timeout=10)
        assert raised == ["seal_turn_stuck", "seal_turn_stuck"]
    finally:
        core_alarms.disconnect(sink)


def test_a_record_whose_turn_timed_out_is_finalised_by_the_sweep_as_it_ended(cdr, db, clock, monkeypatch):
    """Should leave the record of a call whose finalisation found no turn within the limit open, its draft
    kept, and have the next reconciliation sweep write it as the call ended (its hang-up time, cause and
    disposition), not as a call the switch lost."""
    import datetime as dt

    from recorder import integrity
    from recorder.models import CallRecord
    from recorder.sweep import Sweeper

    monkeypatch.setattr(integrity, "SEAL_TURN_LIMIT", 0.1, raising=False)
    monkeypatch.setattr(integrity, "_stalled", [False], raising=False)
    cdr.call_started("stuck-1", caller="13800138000", called="12345", server="A")
    clock.advance(seconds=20)
    ended = clock.now()
    with seal_turn(db):
        cdr.hangup("stuck-1", "NORMAL_CLEARING", "recv_bye", wait=False)  # the switch event's path
        assert cdr.settle(timeout=10)
    assert not CallRecord.get(CallRecord.call_uuid == "stuck-1").finalised
    assert "stuck-1" in cdr.drafts
    clock.advance(seconds=30)
    Sweeper(cdr, servers=lambda: ["A"])("A", set())
    record = CallRecord.get(CallRecord.call_uuid == "stuck-1")
    assert record.finalised and record.hangup_cause == "NORMAL_CLEARING"
    assert record.disposition == "self_service"
    assert record.ended_at.replace(tzinfo=None) == ended.astimezone(dt.timezone.utc).replace(tzinfo=None,
                                                                                          microsecond=0)


def test_a_refinalisation_whose_turn_timed_out_is_written_by_the_sweep(cdr, db, clock, monkeypatch):
    """Should, when a finalised call's re-finalisation (its final hang-up event naming the side) finds no turn
    within the limit, keep the call for the next reconciliation sweep, which writes it with that side and
    signs it again (it was lost: the record kept as first written)."""
    from ops.models import SystemAlarm
    from recorder import integrity
    from recorder.integrity import verify_database
    from recorder.models import CallRecord, CallRecordSeal
    from recorder.sweep import Sweeper
    from switch.events import ChannelHangup

    monkeypatch.setattr(integrity, "SEAL_TURN_LIMIT", 0.1, raising=False)
    monkeypatch.setattr(integrity, "_stalled", [False], raising=False)
    cdr.call_started("late-1", caller="13800138000", called="12345", server="A")
    clock.advance(seconds=20)
    cdr.on_switch_event(ChannelHangup(server="A", uuid="late-1", cause="NORMAL_CLEARING"))
    assert cdr.settle(timeout=10)
    assert CallRecord.get(CallRecord.call_uuid == "late-1").hangup_side == ""
    with seal_turn(db):
        cdr.on_switch_event(ChannelHangup(server="A", uuid="late-1", cause="NORMAL_CLEARING",
                                          hangup_side="recv_bye", complete=True))
        assert cdr.settle(timeout=10)
    assert CallRecord.get(CallRecord.call_uuid == "late-1").hangup_side == ""
    clock.advance(seconds=30)
    Sweeper(cdr, servers=lambda: ["A"])("A", set())
    record = CallRecord.get(CallRecord.call_uuid == "late-1")
    assert record.finalised and record.hangup_side == "caller" and record.disposition == "self_service"
    assert CallRecordSeal.select().where(CallRecordSeal.call_uuid == "late-1").count() == 2
    assert verify_database(cdr.key).problems == []
    assert not SystemAlarm.select().where(SystemAlarm.kind == "calls_cut_off").exists()  # written late, not lost


def test_without_turns_the_chain_still_verifies(db, db_url):
    """Should keep the chain right through the unique index and the retry when finalisers race (another
    process, or the turn's timeout)."""
    db.close()
    _retries, _most, seals, problems, in_order = run_finalisers(db_url, 20, "without")
    assert (seals, problems, in_order) == (20, 0, 1)


def test_a_switch_event_hands_the_finalising_over_while_a_turn_is_held(cdr, db, key):
    """Should return from a hang-up event at once while another finaliser holds the seal turn (the switch's
    event greenlet carries its later events, the ACD's hang-ups among them), write the record when the turn
    is free, with the side a later event of the call brought meanwhile, and keep the chain right."""
    from recorder.integrity import verify_database
    from recorder.models import CallRecord, CallRecordSeal
    from switch.events import ChannelHangup

    cdr.call_started("held-1", caller="13800138000", called="12345")
    cdr.call_started("held-2", caller="13800138001", called="12345")
    with seal_turn(db) as taken:  # this greenlet holds the turn: an event waiting for it would wait for 10 s
        assert taken
        cdr.on_switch_event(ChannelHangup(server="fs1", uuid="held-1", cause="NORMAL_CLEARING"))
        cdr.on_switch_event(ChannelHangup(server="fs1", uuid="held-2", cause="NORMAL_CLEARING"))
        cdr.on_switch_event(ChannelHangup(server="fs1", uuid="held-1", cause="NORMAL_CLEARING",
                                          hangup_side="recv_bye", complete=True))
        assert not CallRecord.get(CallRecord.call_uuid == "held-1").finalised
        assert cdr.cut_off("held-1") is None  # being written: not closed again as lost by the sweep
        assert cdr.settle(timeout=0.05) is False  # the finaliser waits for the turn
    assert cdr.settle()
    records = {r.call_uuid: r for r in CallRecord.select()}
    assert records["held-1"].finalised and records["held-1"].hangup_side == "caller"
    assert records["held-2"].finalised and records["held-2"].disposition != "cut_off"
    assert [s.call_uuid for s in CallRecordSeal.select().order_by(CallRecordSeal.seq)] == ["held-1", "held-2",
                                                                                         "held-1"]
    assert verify_database(key).problems == []


def test_a_finaliser_writes_its_record_with_its_connections_ahead_in_the_pool(cdr, db, monkeypatch):
    """Should write the record inside core.db.ahead_in_pool: the finaliser holds the process's one seal turn,
    every record waits for it, and each of its statements queued behind hundreds of others for a pooled
    connection under load (bench/simulation.py on PostgreSQL)."""
    import contextlib

    from recorder import finalising
    from recorder.models import CallRecord
    from switch.events import ChannelHangup

    seen = []

    @contextlib.contextmanager
    def ahead():
        seen.append(("entered", CallRecord.select().where(CallRecord.finalised == True).count()))  # noqa: E712
        yield
        seen.append(("left", CallRecord.select().where(CallRecord.finalised == True).count()))  # noqa: E712

    monkeypatch.setattr(finalising, "ahead_in_pool", ahead)
    cdr.call_started("ahead-1", caller="13800138002", called="12345")
    cdr.on_switch_event(ChannelHangup(server="fs1", uuid="ahead-1", cause="NORMAL_CLEARING"))
    assert cdr.settle()
    assert seen == [("entered", 0), ("left", 1)]
