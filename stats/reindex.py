"""Rebuild the analysis' pre-aggregations from the tables they summarise, from the command line:

    python -m stats.reindex [all|hotspots|calls|durations|daycounts] [--since YYYY-MM-DD] [--database-url URL]

``hotspots``: the hotspot index (stats.hotspots' TicketTopic rows and their mark), the tickets created since
the day given indexed again; without ``--since`` from the oldest ticket the index holds (the rule's horizon
when it is empty). After the hotline's words or the segmenter changed, or to index older history for the
hotspot page's past periods. ``calls``: the quarter-hour call counts the calls and agents reports read
(recorder.aggregates), recomputed from the call records started since that day (without ``--since``: all,
and counts where no record is are removed). ``durations``: each ticket's handling durations the speed report
reads (caseflow.durations), recomputed from the tickets and their history; ``daycounts``: the tickets per day
and status, category, region and urgency the region, category, status and urgency reports read
(caseflow.daycounts); both of every ticket (``--since`` does not apply), after tickets were written around
the workflow (an import). ``all`` (the default) does the four. The day is a local day in
HOTLINE_TZ. Progress is shown as it goes; running it again gives the same tables; the product may keep
running (its hotspot job and the recorder's finalisations wait or step aside, see the two modules).

Exit status 0 when done, 2 when it cannot run (bad date, no database).
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from typing import Callable, Iterable, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from peewee import fn

PROGRESS_SECONDS = 2.0


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def day_start_utc(text: str, tz: ZoneInfo) -> dt.datetime:
    """The start of the local day ``text`` (YYYY-MM-DD) in ``tz``, as naive UTC; ValueError when malformed."""
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since: a date as YYYY-MM-DD, got {text!r} / 日期格式应为 YYYY-MM-DD") from None
    local = dt.datetime.combine(day, dt.time(), tzinfo=tz)
    return local.astimezone(dt.timezone.utc).replace(tzinfo=None)


class Progress:
    """Prints ``label: done / total (pct), seconds`` at most every ``every`` seconds and once at the end."""

    def __init__(self, label: str, out, every: float = PROGRESS_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.label, self.out, self.every, self.clock = label, out, every, clock
        self.started = self.last = clock()
        self.shown: tuple | None = None

    def __call__(self, done: int, total: int, unit: str, final: bool = False) -> None:
        now = self.clock()
        if (not final and now - self.last < self.every) or (final and self.shown == (done, total)):
            return
        self.last, self.shown = now, (done, total)
        share = f" ({100 * done / total:.0f}%)" if total else ""
        print(f"{self.label}: {done:,} / {total:,} {unit}{share}, {now - self.started:.0f} s", file=self.out,
              flush=True)


def reindex_hotspots(since: Optional[dt.datetime], settings, out, now: Optional[dt.datetime] = None) -> int:
    """Index the tickets created since ``since`` (naive UTC; None: see the module docstring) again;
    returns how many tickets were read."""
    from caseflow.models import Ticket
    from stats import hotspots
    from stats.models import TicketTopic

    now = now or utcnow()
    if since is None:
        oldest = TicketTopic.select(fn.MIN(TicketTopic.ticket)).scalar()
        created = Ticket.select(Ticket.created_at).where(Ticket.id == oldest).scalar() if oldest else None
        since = hotspots._as_datetime(created) if created is not None else now - settings.horizon
    first = hotspots.reindex_from(since)
    total = Ticket.select().where(Ticket.id >= first).count()
    show = Progress("hotspots / 热点索引", out)
    done = 0
    show(0, total, "tickets / 件", final=True)
    while True:
        read = hotspots.index_tickets(now, settings)
        if read == 0:
            break
        done += read
        show(min(done, total), total, "tickets / 件")
    show(done, total, "tickets / 件", final=True)
    return done


def reindex_calls(since: Optional[dt.datetime], out) -> tuple[int, int]:
    """Recompute the quarter-hour call counts (recorder.aggregates) from the records since ``since``."""
    from recorder import aggregates

    show = Progress("calls / 来电计数", out)

    def progress(until: dt.datetime, first: dt.datetime, last: dt.datetime) -> None:
        show(math.ceil((until - first).total_seconds() / 86400), math.ceil((last - first).total_seconds() / 86400),
             "days / 天", final=until >= last)

    return aggregates.rebuild(since, progress=progress)


def reindex_durations(out) -> int:
    """Recompute every ticket's kept handling durations (caseflow.durations); returns the rows kept."""
    from caseflow import durations

    show = Progress("durations / 办理时长", out)
    kept = durations.rebuild(progress=lambda done, total: show(done, total, "ticket ids / 工单号",
                                                                    final=done >= total))
    return kept


def main(argv: Iterable[str] | None = None, out=None) -> int:
    from core.config import ConfigError, load_config
    from core.db import bind_database
    from stats.hotspots import HotspotError, HotspotSettings

    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="python -m stats.reindex",
                                     description="Rebuild the hotspot index and the counts the reports read.")
    parser.add_argument("what", nargs="?", choices=("all", "hotspots", "calls", "durations", "daycounts"),
                        default="all")
    parser.add_argument("--since", help="a local day, YYYY-MM-DD (default: see the module's description)")
    parser.add_argument("--database-url", help="the database (default: the configured one)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        config = load_config()
        settings = HotspotSettings.from_extra(config.extra)
        tz = ZoneInfo(config.tz)
        since = day_start_utc(args.since, tz) if args.since else None
    except (ConfigError, HotspotError, ValueError, ZoneInfoNotFoundError) as exc:
        print(f"cannot run: {exc}", file=out)
        return 2
    db = bind_database(args.database_url or config.database_url)
    with db.connection_context():
        if args.what in ("all", "calls"):
            slots, agent_slots = reindex_calls(since, out)
            print(f"calls rebuilt: {slots:,} quarter-hours x direction, {agent_slots:,} x agent / "
                  f"已重建 {slots:,} 条来电计数、{agent_slots:,} 条座席计数", file=out)
        if args.what in ("all", "durations"):
            kept = reindex_durations(out)
            print(f"durations rebuilt: {kept:,} rows / 已重建 {kept:,} 条办理时长", file=out)
        if args.what in ("all", "daycounts"):
            from caseflow import daycounts

            kept = daycounts.rebuild()
            print(f"day counts rebuilt: {kept:,} rows / 已重建 {kept:,} 条每日工单计数", file=out)
        if args.what in ("all", "hotspots"):
            done = reindex_hotspots(since, settings, out)
            print(f"hotspot index rebuilt: {done:,} tickets / 已重建热点索引 {done:,} 件", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
