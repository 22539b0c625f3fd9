"""Statistics tables: report filter sets saved per user, the assessment's indicators, appeals against a
ticket's counting, and the frozen score sheets of closed months."""
from __future__ import annotations

import peewee

from caseflow.models import Department, Ticket, User, utcnow
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


MODELS = [SavedReport, Indicator, Appeal, ClosedMonth, ScoreSnapshot]
