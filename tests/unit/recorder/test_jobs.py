"""The recorder's scheduled jobs."""
from __future__ import annotations

from types import SimpleNamespace

from recorder.jobs import first_connected, register_jobs
from recorder.storage import RecordingOptions


class Scheduler:
    def __init__(self):
        self.jobs = {}

    def add_job(self, func, trigger, **kw):
        self.jobs[kw["id"]] = (func, trigger, kw)


class Fax:
    def __init__(self):
        self.dispatched = []

    def watchdog(self):
        return []

    def dispatch_due(self, connection):
        self.dispatched.append(connection)


def test_retention_off_by_default_and_fax_jobs_always():
    """Should always watch and dispatch faxes, and archive recordings only when a retention age is set."""
    pool = SimpleNamespace(all=lambda: [SimpleNamespace(connected=False), SimpleNamespace(connected=True, name="b")])
    scheduler, fax = Scheduler(), Fax()
    store = SimpleNamespace(options=RecordingOptions())
    assert register_jobs(scheduler, fax=fax, store=store, pool=pool) == ["fax_watchdog", "fax_dispatch",
                                                                         "recording_notes"]
    scheduler.jobs["fax_dispatch"][0]()
    assert [c.name for c in fax.dispatched] == ["b"]
    kept = Scheduler()
    store = SimpleNamespace(options=RecordingOptions(retention_days=365), archive_old=lambda: [])
    assert "recording_retention" in register_jobs(kept, fax=fax, store=store, pool=pool)
    assert kept.jobs["recording_retention"][1] == "cron"


def test_no_connection_no_dispatch():
    """Should not try to send while every switch is down."""
    assert first_connected(SimpleNamespace(all=lambda: [SimpleNamespace(connected=False)])) is None
