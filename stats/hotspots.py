"""Hotspots and early warning (热点预警): each ticket's topics indexed once (stats.keywords over title and
content), counted per street and district, category and time window; a topic that spikes in one place
against that place's own baseline becomes a warning handed to the duty leader; the centre marks it
handled. Also the hotspot page's figures (rising topics, word cloud, drill-down) and similar open tickets
for merging.

The rule itself (``spikes``) is pure; the rest reads the case engine's tables and writes only this
package's (TicketTopic, IndexMark, HotspotWarning). The command screen may call ``open_warnings``,
``rising_topics`` and ``cloud``.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional, Sequence

from peewee import fn

from caseflow import workflow as wf
from caseflow.models import Category, Region, Ticket, User
from caseflow.services import in_department_subtree
from core.db import database
from stats.keywords import loaded as keywords_loaded, place_words, topics
from stats.models import HotspotWarning, IndexMark, TicketTopic

log = logging.getLogger(__name__)

INDEX_NAME = "hotspot-topics"
STREET, DISTRICT = "street", "district"
# Open tickets that may still be merged into another (caseflow.workflow's merge rule).
MERGEABLE = (wf.RECORDED, wf.DEFERRED, wf.DISPATCHED, wf.RETURNED)


class HotspotError(ValueError):
    """A refused hotspot request (bad setting, unknown warning)."""


@dataclass(frozen=True)
class HotspotSettings:
    """The spike rule's knobs (HOTLINE_HOTSPOT_* settings).

    A topic fires in a place when, in the last ``window_hours``, it has at least ``min_count`` tickets and
    at least ``factor`` times its baseline: the mean count per window over the ``baseline_windows``
    windows of the same length just before (default 56 x 3 h = the previous 7 days)."""

    window_hours: int = 3
    baseline_windows: int = 56
    factor: float = 3.0
    min_count: int = 5
    topics_per_ticket: int = 6
    batch: int = 2000  # tickets indexed per run of the job

    @property
    def window(self) -> dt.timedelta:
        return dt.timedelta(hours=self.window_hours)

    @property
    def horizon(self) -> dt.timedelta:
        """How far back the rule reads: the current window and the baseline windows."""
        return self.window * (self.baseline_windows + 1)

    @classmethod
    def from_extra(cls, extra: Mapping[str, str]) -> "HotspotSettings":
        """Read HOTLINE_HOTSPOT_WINDOW_HOURS, _BASELINE_WINDOWS, _FACTOR, _MIN_COUNT; a bad value raises
        HotspotError naming the setting."""
        values = {}
        for name, key, kind, low, high in (("window_hours", "WINDOW_HOURS", int, 1, 168),
                                           ("baseline_windows", "BASELINE_WINDOWS", int, 1, 1000),
                                           ("factor", "FACTOR", float, 1.0, 100.0),
                                           ("min_count", "MIN_COUNT", int, 1, 100000)):
            raw = extra.get(f"HOTLINE_HOTSPOT_{key}")
            if raw is None or str(raw).strip() == "":
                continue
            text = str(raw).strip()
            try:
                if not text.isascii():
                    raise ValueError(text)
                value = kind(text)
            except ValueError:
                raise HotspotError(f"HOTLINE_HOTSPOT_{key}: a {'whole ' if kind is int else ''}number, "
                                   f"got {raw!r}") from None
            if not (low <= value <= high) or (kind is float and not math.isfinite(value)):
                raise HotspotError(f"HOTLINE_HOTSPOT_{key}: between {low:g} and {high:g}, got {raw!r}")
            values[name] = value
        return cls(**values)


# ---------------------------------------------------------------------------------------- the rule
@dataclass(frozen=True)
class Spike:
    """A topic in one place whose current window broke the rule."""

    key: tuple
    count: int
    baseline: float
    score: float


def poisson_surprise(count: int, mean: float) -> float:
    """-log10 of P(X >= count) for X ~ Poisson(mean): how unlikely the count is by chance (for ranking)."""
    if count <= 0:
        return 0.0
    term = math.exp(-mean)
    below = 0.0
    for k in range(count):
        below += term
        term *= mean / (k + 1)
    tail = max(1.0 - below, 1e-300)
    return -math.log10(tail)


def spikes(series: Mapping[tuple, Sequence[int]], settings: HotspotSettings) -> list[Spike]:
    """Keys whose current window breaks the rule, most surprising first.

    ``series[key]`` is that key's ticket counts per window, index 0 the current window and 1.. the windows
    before it (missing ones count 0). The statistic: baseline b = the mean of the previous
    ``baseline_windows`` counts, i.e. the topic's usual rate in that place. Counts of a topic in one
    street are small and roughly Poisson, so a ratio alone is noise at small numbers (1 -> 3 is "x3") and
    a fixed count alone is noise where a topic is always frequent; the rule needs both: c >= min_count
    and c >= factor x b. A topic never seen there (b = 0) fires once it reaches min_count. The Poisson
    tail -log10 P(X >= c | mean max(b, 0.1)) only orders the warnings (most surprising first)."""
    found = []
    for key, counts in series.items():
        if not counts:
            continue
        current = int(counts[0])
        if current < settings.min_count:
            continue
        previous = [int(c) for c in counts[1:settings.baseline_windows + 1]]
        baseline = sum(previous) / settings.baseline_windows
        if current < settings.factor * baseline:
            continue
        found.append(Spike(key, current, baseline, poisson_surprise(current, max(baseline, 0.1))))
    found.sort(key=lambda s: (-s.score, -s.count, s.key))
    return found


# ----------------------------------------------------------------------------------------- the index
def hour_of(moment: dt.datetime) -> dt.datetime:
    """A stored (naive UTC) moment truncated to its hour."""
    return moment.replace(minute=0, second=0, microsecond=0, tzinfo=None)


def region_directory() -> tuple[dict[int, int | None], dict[int, str], dict[int, int]]:
    """Regions: id -> parent id, id -> name, id -> level."""
    parents, names, levels = {}, {}, {}
    for rid, parent, name, level in Region.select(Region.id, Region.parent, Region.name, Region.level).tuples():
        parents[rid], names[rid], levels[rid] = parent, name, level
    return parents, names, levels


def district_of(region_id: int | None, parents: Mapping[int, int | None], levels: Mapping[int, int]) -> int | None:
    """The level-1 region (district) a region lies in (itself for a district)."""
    node, guard = region_id, 0
    while node is not None and levels.get(node, 1) > 1 and parents.get(node) is not None and guard < 10:
        node, guard = parents[node], guard + 1
    return node


def index_tickets(now: dt.datetime, settings: HotspotSettings = HotspotSettings(), *,
                  pause: Callable[[], object] = lambda: None) -> int:
    """Index the topics of up to ``settings.batch`` tickets not indexed yet (in id order; on the very first
    run from the tickets created within the rule's horizon). ``now`` is naive UTC; ``pause()`` is called
    between tickets (the product passes gevent's yield). Returns how many tickets were read."""
    mark = IndexMark.get_or_none(IndexMark.name == INDEX_NAME)
    if mark is None:
        first = (Ticket.select(fn.MIN(Ticket.id)).where(Ticket.created_at >= now - settings.horizon).scalar())
        mark = IndexMark.create(name=INDEX_NAME, last_id=(first - 1) if first else
                                (Ticket.select(fn.MAX(Ticket.id)).scalar() or 0))
    rows = list(Ticket.select(Ticket.id, Ticket.title, Ticket.content, Ticket.created_at, Ticket.region,
                              Ticket.category)
                .where(Ticket.id > mark.last_id).order_by(Ticket.id).limit(settings.batch).tuples())
    if not rows:
        return 0
    parents, names, levels = region_directory()
    places = place_words(names.values())
    made = []
    for n, (tid, title, content, created, region, category) in enumerate(rows):
        if n and n % 20 == 0:
            pause()
        district = district_of(region, parents, levels) if region else None
        for rank, topic in enumerate(topics(title or "", content or "", limit=settings.topics_per_ticket,
                                            places=places)):
            made.append({"ticket": tid, "topic": topic[:32], "rank": rank, "hour": hour_of(created), "region": region,
                         "district": district, "category": category})
    with database.atomic():
        # Moved on only from where this run began: another indexer (the job, a reindex) that got there first
        # or started the index over leaves this run's work unwritten.
        if not IndexMark.update(last_id=rows[-1][0], updated_at=now).where(
                (IndexMark.id == mark.id) & (IndexMark.last_id == mark.last_id)).execute():
            return len(rows)
        existing = set(TicketTopic.select(TicketTopic.ticket).where(
            TicketTopic.ticket.in_([r[0] for r in rows])).distinct().tuples())
        made = [m for m in made if (m["ticket"],) not in existing]
        for start in range(0, len(made), 500):
            TicketTopic.insert_many(made[start:start + 500]).execute()
    return len(rows)


def index_all(now: dt.datetime, settings: HotspotSettings = HotspotSettings(), **kw) -> int:
    """Index until nothing is left (tools, tests, the benchmark)."""
    total = 0
    while True:
        done = index_tickets(now, settings, **kw)
        total += done
        if done == 0:
            return total


def reindex_from(first_day_utc: dt.datetime) -> int:
    """Start the index over from the tickets created since ``first_day_utc`` (a backfill of older history, or
    a rebuild after the words changed); index_tickets then indexes them again. Returns the first ticket id
    to index (none created since: after the last ticket)."""
    first = Ticket.select(fn.MIN(Ticket.id)).where(Ticket.created_at >= first_day_utc).scalar()
    if first is None:
        first = (Ticket.select(fn.MAX(Ticket.id)).scalar() or 0) + 1
    with database.atomic():
        TicketTopic.delete().where(TicketTopic.ticket >= first).execute()
        IndexMark.delete().where(IndexMark.name == INDEX_NAME).execute()
        IndexMark.create(name=INDEX_NAME, last_id=first - 1)
    return first



# ------------------------------------------------------------------------------------------ the scan
def window_series(now: dt.datetime, settings: HotspotSettings) -> dict[tuple, list[int]]:
    """Ticket counts per (level, region id, topic) and window (0 = the one ending now), over the horizon.
    Windows are whole hours: the current one holds the hour of ``now`` and the hours before it."""
    end_hour = hour_of(now) + dt.timedelta(hours=1)
    start = end_hour - settings.horizon
    series: dict[tuple, list[int]] = defaultdict(lambda: [0] * (settings.baseline_windows + 1))
    hours = settings.window_hours
    for column, level in ((TicketTopic.region, STREET), (TicketTopic.district, DISTRICT)):
        query = (TicketTopic.select(column, TicketTopic.topic, TicketTopic.hour, fn.COUNT(TicketTopic.id))
                 .where((TicketTopic.hour >= start) & (TicketTopic.hour < end_hour) & column.is_null(False))
                 .group_by(column, TicketTopic.topic, TicketTopic.hour).tuples())
        for place, topic, hour, count in query:
            hour = _as_datetime(hour)
            index = int((end_hour - hour) / dt.timedelta(hours=1) - 1) // hours
            if 0 <= index <= settings.baseline_windows:
                series[(level, place, topic)][index] += int(count)
    return series


def _as_datetime(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return dt.datetime.fromisoformat(str(value))


def _levels_apart(series: dict[tuple, list[int]], levels: Mapping[int, int]) -> dict[tuple, list[int]]:
    """A district-level tally of a street region is that street's own (the ticket named the street); keep
    street keys for streets (level >= 2) and district keys for districts."""
    kept = {}
    for key, counts in series.items():
        level, place, _topic = key
        if level == STREET and levels.get(place, 1) < 2:
            continue  # a ticket placed on the district itself: counted at the district level
        kept[key] = counts
    return kept


@dataclass
class ScanResult:
    """What one scan found: spikes that hold now and the warnings newly raised for them."""

    spikes: list[Spike]
    raised: list[HotspotWarning]


def scan(now: dt.datetime, settings: HotspotSettings = HotspotSettings(), *,
         notify: Optional[Callable[[HotspotWarning], object]] = None) -> ScanResult:
    """Apply the rule to the windows ending ``now`` (naive UTC) and raise a warning for each new spike:
    never a second one for a topic and place while one is unhandled or was raised within the window, and
    none for a district when one of its streets spikes on the same topic. ``notify(warning)`` is called
    once per new warning (the duty leader's alarm); its failure is logged, the warning stays."""
    parents, names, levels = region_directory()
    found = spikes(_levels_apart(window_series(now, settings), levels), settings)
    window_start = hour_of(now) + dt.timedelta(hours=1) - settings.window
    street_topics = {(district_of(s.key[1], parents, levels), s.key[2]) for s in found if s.key[0] == STREET}
    raised = []
    for spike in found:
        level, place, topic = spike.key
        if level == DISTRICT and (place, topic) in street_topics:
            continue
        with database.atomic():
            recent = HotspotWarning.select().where(
                (HotspotWarning.topic == topic) & (HotspotWarning.region == place)
                & (HotspotWarning.handled_at.is_null() | (HotspotWarning.raised_at > now - settings.window)))
            if recent.exists():
                continue
            warning = HotspotWarning.create(
                topic=topic, region=place, place_name=names.get(place, "")[:64], level=level,
                window_start=window_start, window_end=now, count=spike.count, baseline=round(spike.baseline, 3),
                score=round(spike.score, 2), raised_at=now)
        log.warning("hotspot: %s in %s, %d tickets in %d h (baseline %.2f)", topic, warning.place_name,
                    spike.count, settings.window_hours, spike.baseline)
        raised.append(warning)
        if notify is not None:
            try:
                notify(warning)
            except Exception:  # noqa: BLE001 - the warning is on the page either way
                log.exception("hotspot warning %s: could not notify", warning.id)
    return ScanResult(found, raised)


def alarm_text(warning: HotspotWarning, settings: HotspotSettings) -> str:
    """The one line the duty leader's SMS and the consoles carry (both languages, as other alarms do)."""
    return (f"热点预警：{warning.place_name}“{warning.topic}”{settings.window_hours}小时内 {warning.count} 件"
            f"（基线 {warning.baseline:.1f}） / hotspot: '{warning.topic}' in {warning.place_name}, "
            f"{warning.count} tickets in {settings.window_hours} h (baseline {warning.baseline:.1f})")


def alarm_subject(warning: HotspotWarning) -> str:
    """The alarm's subject: one per topic and place (ops.alarms deduplicates on it)."""
    return f"{warning.region_id}:{warning.topic}"[:64]


def mark_handled(warning_id: int, user: User, note: str, now: dt.datetime) -> HotspotWarning:
    """The centre has dealt with a warning (the caller audits it)."""
    note = " ".join(str(note or "").split())
    if len(note) > 255:
        raise HotspotError("A note may have at most 255 characters.")
    with database.atomic():
        warning = HotspotWarning.get_or_none(HotspotWarning.id == warning_id)
        if warning is None:
            raise HotspotError("No such warning.")
        if warning.handled_at is None:
            HotspotWarning.update(handled_at=now, handled_by=user, handled_note=note).where(
                HotspotWarning.id == warning_id).execute()
    return HotspotWarning.get_by_id(warning_id)


# ----------------------------------------------------------------------------------- what pages read
def _scoped(query, department):
    """Limit a TicketTopic query to tickets in ``department``'s subtree (None: the city)."""
    if department is None:
        return query
    return query.join(Ticket, on=(TicketTopic.ticket == Ticket.id)).where(in_department_subtree(department))


def _filtered(query, region: int | None, category: int | None):
    if region:
        query = query.where((TicketTopic.region == region) | (TicketTopic.district == region))
    if category:
        children = Category.select(Category.id).where((Category.id == category) | (Category.parent == category))
        query = query.where(TicketTopic.category.in_(children))
    return query


def topic_counts(start: dt.datetime, end: dt.datetime, *, department=None, region: int | None = None,
                 category: int | None = None) -> dict[str, int]:
    """Tickets per topic created in [start, end) (naive UTC, hour-aligned), in scope and filters."""
    query = TicketTopic.select(TicketTopic.topic, fn.COUNT(TicketTopic.id)).where(
        (TicketTopic.hour >= hour_of(start)) & (TicketTopic.hour < end))
    query = _filtered(_scoped(query, department), region, category)
    return {topic: int(n) for topic, n in query.group_by(TicketTopic.topic).tuples()}


@dataclass(frozen=True)
class Rising:
    """A topic this period against the equally long period before it."""

    topic: str
    count: int
    previous: int

    @property
    def change(self) -> int:
        return self.count - self.previous

    @property
    def ratio(self) -> float | None:
        return None if self.previous == 0 else self.count / self.previous


def rising_topics(start: dt.datetime, end: dt.datetime, *, department=None, region: int | None = None,
                  category: int | None = None, limit: int = 30, min_count: int = 2) -> list[Rising]:
    """Topics with at least ``min_count`` tickets in [start, end) that grew most against the period before
    (by how many more tickets, then by count)."""
    now = topic_counts(start, end, department=department, region=region, category=category)
    before = topic_counts(start - (end - start), start, department=department, region=region, category=category)
    rows = [Rising(t, n, before.get(t, 0)) for t, n in now.items() if n >= min_count]
    rows.sort(key=lambda r: (-r.change, -r.count, r.topic))
    return [r for r in rows if r.change > 0][:limit]


def cloud(counts: Mapping[str, int], limit: int = 60, steps: int = 6) -> list[tuple[str, int, int]]:
    """The word cloud: the ``limit`` most frequent topics as (topic, count, size step 1..steps), sizes on a
    logarithmic scale (one very frequent word should not shrink all others to nothing); alphabetical so
    the cloud does not read as a ranking."""
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    if not top:
        return []
    high, low = math.log(top[0][1] + 1), math.log(top[-1][1] + 1)
    spread = high - low
    made = []
    for topic, count in top:
        step = steps if spread == 0 else 1 + round((math.log(count + 1) - low) / spread * (steps - 1))
        made.append((topic, count, step))
    return sorted(made, key=lambda item: item[0])


def tickets_for(topic: str, start: dt.datetime, end: dt.datetime, *, department=None, region: int | None = None,
                category: int | None = None, limit: int = 200) -> list[Ticket]:
    """The tickets behind a topic in [start, end), newest first (the drill-down)."""
    ids = TicketTopic.select(TicketTopic.ticket).where(
        (TicketTopic.topic == topic) & (TicketTopic.hour >= hour_of(start)) & (TicketTopic.hour < end))
    ids = _filtered(ids, region, category)
    query = Ticket.select().where(Ticket.id.in_(ids))
    if department is not None:
        query = query.where(in_department_subtree(department))
    return list(query.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit))


def warning_tickets(warning: HotspotWarning, *, department=None) -> list[Ticket]:
    """The tickets a warning counted (its topic and place within its window)."""
    return tickets_for(warning.topic, warning.window_start, warning.window_end + dt.timedelta(hours=1),
                       department=department, region=warning.region_id)


def open_warnings(*, department=None, limit: int = 50) -> list[HotspotWarning]:
    """Warnings not handled yet, newest first; for a department, those with a counted ticket in its subtree."""
    rows = list(HotspotWarning.select().where(HotspotWarning.handled_at.is_null())
                .order_by(HotspotWarning.raised_at.desc()).limit(limit))
    if department is None:
        return rows
    return [w for w in rows if warning_tickets(w, department=department)]


def recent_warnings(since: dt.datetime, *, department=None, limit: int = 100) -> list[HotspotWarning]:
    """Warnings raised since ``since``, handled ones too, newest first (scoped like open_warnings)."""
    rows = list(HotspotWarning.select().where(HotspotWarning.raised_at >= since)
                .order_by(HotspotWarning.raised_at.desc()).limit(limit))
    if department is None:
        return rows
    return [w for w in rows if warning_tickets(w, department=department)]


# ---------------------------------------------------------------------------------- similar tickets
def similar_open_tickets(ticket: Ticket, *, days: int = 7, min_shared: int = 2, limit: int = 5,
                         settings: HotspotSettings = HotspotSettings()) -> list[tuple[Ticket, float]]:
    """Open tickets that may be the same matter (candidates for merging): in the same district (or both
    without a place), created within ``days`` of it, with the same most telling word or at least
    ``min_shared`` topics in common; with the Jaccard similarity of their topics, most similar first."""
    own = [t for (t,) in TicketTopic.select(TicketTopic.topic).where(TicketTopic.ticket == ticket.id)
           .order_by(TicketTopic.rank).tuples()]
    if not own and not keywords_loaded():
        return []  # not indexed yet and no segmenter in this process: the next scan indexes it
    if not own:
        _parents, names, _levels = region_directory()
        own = topics(ticket.title or "", ticket.content or "", limit=settings.topics_per_ticket,
                     places=place_words(names.values()))
    if not own:
        return []
    parents, _names, levels = region_directory()
    district = district_of(ticket.region_id, parents, levels) if ticket.region_id else None
    around = dt.timedelta(days=days)
    rows = (TicketTopic.select(TicketTopic.ticket, TicketTopic.topic, TicketTopic.rank)
            .join(Ticket, on=(TicketTopic.ticket == Ticket.id))
            .where(TicketTopic.topic.in_(own) & (TicketTopic.ticket != ticket.id)
                   & Ticket.status.in_(MERGEABLE)
                   & (Ticket.created_at >= ticket.created_at - around)
                   & (Ticket.created_at <= ticket.created_at + around)
                   & (TicketTopic.district == district if district else TicketTopic.district.is_null()))
            .limit(5000).tuples())
    shared: dict[int, int] = defaultdict(int)
    same_lead = set()
    for tid, topic, rank in rows:
        shared[tid] += 1
        if rank == 0 and topic == own[0]:
            same_lead.add(tid)
    candidates = [tid for tid, n in shared.items() if n >= min_shared or tid in same_lead]
    if not candidates:
        return []
    sizes = dict(TicketTopic.select(TicketTopic.ticket, fn.COUNT(TicketTopic.id))
                 .where(TicketTopic.ticket.in_(candidates)).group_by(TicketTopic.ticket).tuples())
    scored = {tid: shared[tid] / (len(own) + sizes.get(tid, shared[tid]) - shared[tid]) for tid in candidates}
    best = sorted(scored, key=lambda tid: (-scored[tid], tid))[:limit]
    tickets = {t.id: t for t in Ticket.select().where(Ticket.id.in_(best))}
    return [(tickets[tid], round(scored[tid], 2)) for tid in best if tid in tickets]


def place_names(ids: Iterable[int]) -> dict[int, str]:
    """Region id -> name for the given ids."""
    ids = [i for i in set(ids) if i]
    return dict(Region.select(Region.id, Region.name).where(Region.id.in_(ids)).tuples()) if ids else {}
