"""Statistics tables: report filter sets saved per user, the assessment's indicators, appeals against a
ticket's counting, the frozen score sheets of closed months, the hotspot index (each ticket's topics) and
its warnings, the dispatch suggestion model's training runs and the suggestions shown, and the district
boundaries the command screen draws its map with."""
from __future__ import annotations

import peewee

from caseflow.models import Category, Department, Region, Ticket, User, utcnow
from core.db import BaseModel


class SavedReport(BaseModel):
    """A user's named report query: which report and its filter arguments (a query string)."""

    user = peewee.ForeignKeyField(User, backref="+", on_delete="CASCADE")
    name = peewee.CharField(max_length=64)
    report = peewee.CharField(max_length=32)
    query = peewee.CharField(max_length=500, default="")
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("user", "name"), True),)


class Indicator(BaseModel):
    """An assessment indicator (统一考核): formula over named counts, weight, kind (rate/count), which way
    is better; see stats.assessment."""

    code = peewee.CharField(max_length=32, unique=True)
    name = peewee.CharField(max_length=64)
    formula = peewee.CharField(max_length=200)
    weight = peewee.FloatField(default=0)
    kind = peewee.CharField(max_length=8, default="rate")
    better = peewee.CharField(max_length=8, default="high")
    active = peewee.BooleanField(default=True)
    sort = peewee.IntegerField(default=0)


class Appeal(BaseModel):
    """A department contests one ticket's counting in one indicator of one month; the centre decides."""

    month = peewee.CharField(max_length=7, index=True)  # 2026-03
    department = peewee.ForeignKeyField(Department, backref="+", on_delete="CASCADE")  # the assessed unit
    ticket = peewee.ForeignKeyField(Ticket, backref="+", on_delete="CASCADE")
    indicator = peewee.CharField(max_length=32)
    reason = peewee.TextField()
    state = peewee.CharField(max_length=12, default="pending", index=True)  # pending, accepted, rejected
    raised_by = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    raised_at = peewee.DateTimeField(default=utcnow)
    decided_by = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    decided_at = peewee.DateTimeField(null=True)
    decision_note = peewee.TextField(default="")

    class Meta:
        indexes = ((("month", "department", "ticket", "indicator"), True),)


class ClosedMonth(BaseModel):
    """A month whose scores are frozen: its sheet lives in ScoreSnapshot, appeals are over."""

    month = peewee.CharField(max_length=7, unique=True)
    closed_by = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    closed_at = peewee.DateTimeField(default=utcnow)


class ScoreSnapshot(BaseModel):
    """One frozen cell of a closed month: a unit's indicator value, points, counts (JSON) and the ticket ids
    behind them (JSON), or its total (indicator "")."""

    month = peewee.CharField(max_length=7, index=True)
    department = peewee.ForeignKeyField(Department, backref="+", on_delete="CASCADE")
    indicator = peewee.CharField(max_length=32, default="")
    name = peewee.CharField(max_length=64, default="")
    weight = peewee.FloatField(default=0)
    value = peewee.FloatField(null=True)
    points = peewee.FloatField(null=True)
    rank = peewee.IntegerField(default=0)
    counts = peewee.TextField(default="{}")
    evidence = peewee.TextField(default="{}")

    class Meta:
        indexes = ((("month", "department", "indicator"), True),)


class TicketTopic(BaseModel):
    """One topic (a keyword, stats.keywords) of one ticket, with the ticket's hour (naive UTC, truncated),
    place (its region and that region's district) and category copied so counts need no join."""

    ticket = peewee.ForeignKeyField(Ticket, backref="+", on_delete="CASCADE")
    topic = peewee.CharField(max_length=32)
    rank = peewee.SmallIntegerField(default=0)  # 0 = the ticket's most telling word
    hour = peewee.DateTimeField()
    region = peewee.ForeignKeyField(Region, null=True, backref="+", on_delete="SET NULL")
    district = peewee.ForeignKeyField(Region, null=True, backref="+", on_delete="SET NULL")
    category = peewee.ForeignKeyField(Category, null=True, backref="+", on_delete="SET NULL")

    class Meta:
        indexes = ((("hour", "topic"), False), (("topic", "hour"), False), (("ticket", "topic"), True))


class IndexMark(BaseModel):
    """How far a background index has read (``name`` -> the last ticket id done)."""

    name = peewee.CharField(max_length=32, unique=True)
    last_id = peewee.BigIntegerField(default=0)
    updated_at = peewee.DateTimeField(default=utcnow)


class HotspotWarning(BaseModel):
    """A topic that spiked in one street or district (stats.hotspots): what, where, the window and the
    baseline it was judged against; the centre marks it handled."""

    topic = peewee.CharField(max_length=32, index=True)
    region = peewee.ForeignKeyField(Region, null=True, backref="+", on_delete="SET NULL")
    place_name = peewee.CharField(max_length=64, default="")
    level = peewee.CharField(max_length=8, default="street")  # street, district
    window_start = peewee.DateTimeField()
    window_end = peewee.DateTimeField()
    count = peewee.IntegerField()
    baseline = peewee.FloatField()
    score = peewee.FloatField(default=0)
    raised_at = peewee.DateTimeField(default=utcnow, index=True)
    handled_at = peewee.DateTimeField(null=True, index=True)
    handled_by = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    handled_note = peewee.CharField(max_length=255, default="")


class SuggestionRun(BaseModel):
    """One training of the dispatch suggestion model (stats.suggestions): trained or cold (too little
    history, said in ``message``), on how many tickets and departments, held-out accuracy, time taken."""

    started_at = peewee.DateTimeField(default=utcnow, index=True)
    seconds = peewee.FloatField(default=0)
    state = peewee.CharField(max_length=8)  # trained, cold, failed
    samples = peewee.IntegerField(default=0)
    departments = peewee.IntegerField(default=0)
    top1 = peewee.FloatField(null=True)
    top3 = peewee.FloatField(null=True)
    message = peewee.CharField(max_length=255, default="")


class DispatchSuggestion(BaseModel):
    """The suggestion shown for a ticket on the dispatch form (the latest one per ticket), kept to measure
    how often dispatchers took it."""

    ticket = peewee.ForeignKeyField(Ticket, backref="+", on_delete="CASCADE", unique=True)
    run = peewee.ForeignKeyField(SuggestionRun, null=True, backref="+", on_delete="SET NULL")
    shown_at = peewee.DateTimeField(default=utcnow, index=True)
    first = peewee.ForeignKeyField(Department, null=True, backref="+", on_delete="SET NULL")
    second = peewee.ForeignKeyField(Department, null=True, backref="+", on_delete="SET NULL")
    third = peewee.ForeignKeyField(Department, null=True, backref="+", on_delete="SET NULL")
    confidence = peewee.FloatField(default=0)  # of the first


class RegionMap(BaseModel):
    """One uploaded version of the district boundaries (stats.boundaries): the checked GeoJSON, each feature
    naming its district by region code; who uploaded it and when. The newest ``current`` one is drawn on the
    command screen; an upload makes the earlier ones history, withdrawing leaves none current."""

    version = peewee.IntegerField(unique=True)
    geojson = peewee.TextField()
    features = peewee.IntegerField()
    codes = peewee.TextField(default="")   # the districts drawn (region codes, comma-separated)
    filename = peewee.CharField(max_length=200, default="")
    sha256 = peewee.CharField(max_length=64)
    note = peewee.CharField(max_length=200, default="")
    current = peewee.BooleanField(default=True, index=True)
    uploaded_by = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    uploaded_at = peewee.DateTimeField(default=utcnow)
    withdrawn_by = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    withdrawn_at = peewee.DateTimeField(null=True)


MODELS = [SavedReport, Indicator, Appeal, ClosedMonth, ScoreSnapshot, TicketTopic, IndexMark, HotspotWarning,
          SuggestionRun, DispatchSuggestion, RegionMap]
