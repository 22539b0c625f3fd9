"""The reconciliation sweep with several switches: one switch's reconciliation never takes a conversation on
another switch for gone because that switch's channel list predates it (found by bench/simulation.py: 68 of
798 bridged conversations' recordings marked failed "file missing" while their calls went on)."""
from __future__ import annotations

from recorder.models import Recording
from recorder.recording import RecordingService
from recorder.sweep import Sweeper
from tests.integration.recorder.test_recording_service import Connection
from tests.unit.recorder.test_wavfile import write_pcm


def test_recording_on_another_switch_waits_for_that_switch_s_listing(cdr, store, clock):
    """Should leave a conversation begun on switch B since B last listed its channels recording while A
    reconciles, and close it (indexed with its audio) once B lists its channels without it."""
    service = RecordingService(store)
    sweeper = Sweeper(cdr, recordings=service, servers=lambda: ["A", "B"])
    sweeper("A", set())
    sweeper("B", set())  # B's list: before the call began
    clock.advance(seconds=5)
    cdr.call_started("b-call", caller="13800000001", server="B")
    rec = service.start_on_bridged(Connection(), "b-call")
    clock.advance(seconds=20)
    report = sweeper("A", set())  # a periodic pass: A listed now, B's list 25 s old
    assert Recording.get_by_id(rec.id).status == "recording"
    assert report["recordings_failed"] == report["recordings_closed"] == report["records_cut_off"] == 0
    sweeper("B", {"b-call"})
    assert Recording.get_by_id(rec.id).status == "recording"
    write_pcm(store.raw_path(rec), seconds=1.0)  # the call ended, its hang-up event lost: the file is whole
    clock.advance(seconds=30)
    sweeper("A", set())
    assert Recording.get_by_id(rec.id).status == "recording"  # B's list still has it
    report = sweeper("B", set())
    assert Recording.get_by_id(rec.id).status == "ok" and report["records_cut_off"] == 1


def test_unknown_switch_judged_by_every_switch_s_listing(cdr, clock):
    """Should close a call whose switch is not configured only once every switch listed its channels at
    least the grace after it began."""
    sweeper = Sweeper(cdr, servers=lambda: ["A", "B"])
    sweeper("A", set())
    sweeper("B", set())
    clock.advance(seconds=5)
    cdr.call_started("x-call", caller="13800000002", server="old-switch")
    clock.advance(seconds=20)
    assert sweeper("A", set())["records_cut_off"] == 0 and "x-call" in cdr.drafts
    assert sweeper("B", set())["records_cut_off"] == 1 and "x-call" not in cdr.drafts
