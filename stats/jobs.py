"""The statistics jobs: the hotspot index and spike scan every few minutes (stats.hotspots) and the nightly
retraining of the dispatch suggestions (stats.suggestions, in a child process).

The product (hotline.product) calls ``register_jobs`` with its scheduler and the duty leader's alarm.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Callable, Optional

from stats import hotspots
from stats.hotspots import HotspotSettings, HotspotWarning

log = logging.getLogger(__name__)

SCAN_MINUTES = 5
RETRAIN_AT = (2, 30)  # local time: after the day's tickets are closed, before the morning


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass
class HotspotJob:
    """One run: index the tickets not indexed yet, then scan for spikes; ``alarm(kind, text, subject)``
    takes each new warning to the duty leader (ops.alarms: consoles, centre desk, SMS)."""

    settings: HotspotSettings = field(default_factory=HotspotSettings)
    alarm: Optional[Callable[..., object]] = None
    pause: Callable[[], object] = lambda: None
    now: Callable[[], dt.datetime] = utcnow

    def notify(self, warning: HotspotWarning) -> None:
        if self.alarm is not None:
            self.alarm("hotspot", hotspots.alarm_text(warning, self.settings), subject=hotspots.alarm_subject(warning))

    def run(self) -> hotspots.ScanResult:
        now = self.now()
        while hotspots.index_tickets(now, self.settings, pause=self.pause) >= self.settings.batch:
            self.pause()  # a backlog: keep going, yielding between batches
        return hotspots.scan(now, self.settings, notify=self.notify)


def register_jobs(scheduler, job: HotspotJob, retrain: Optional[Callable[[], object]], *, tz,
                  wrap: Callable[[Callable], Callable] = lambda func: func, scan_minutes: float = SCAN_MINUTES,
                  retrain_at: tuple[int, int] = RETRAIN_AT, train_soon: bool = False) -> list[str]:
    """Add the hotspot scan (every ``scan_minutes``) and, when given, the nightly retraining; with
    ``train_soon`` (no model yet) also one training a minute after the start."""
    scheduler.add_job(wrap(job.run), "interval", minutes=scan_minutes, id="stats-hotspots", max_instances=1,
                      coalesce=True)
    ids = ["stats-hotspots"]
    if retrain is not None:
        scheduler.add_job(retrain, "cron", hour=retrain_at[0], minute=retrain_at[1], timezone=tz,
                          id="stats-suggestions-retrain", max_instances=1, coalesce=True, misfire_grace_time=3600)
        ids.append("stats-suggestions-retrain")
        if train_soon:
            scheduler.add_job(retrain, "date", run_date=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1),
                              id="stats-suggestions-first", misfire_grace_time=3600)
            ids.append("stats-suggestions-first")
    return ids
