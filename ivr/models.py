"""IVR tables: tree versions, call traces, opinion polls, material requests and outbound IVR campaigns."""
from __future__ import annotations

import datetime as dt
import json

import peewee

from caseflow.models import User
from core.db import BaseModel


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class IvrTreeVersion(BaseModel):
    """One saved version of a menu tree (TOML source). Exactly one version per name is active."""

    name = peewee.CharField(max_length=64, default="default", index=True)
    version = peewee.IntegerField()
    source = peewee.TextField()
    comment = peewee.CharField(max_length=255, default="")
    created_by = peewee.CharField(max_length=64, default="")
    created_at = peewee.DateTimeField(default=utcnow)
    active = peewee.BooleanField(default=False, index=True)
    activated_at = peewee.DateTimeField(null=True)
    activated_by = peewee.CharField(max_length=64, default="")

    class Meta:
        indexes = ((("name", "version"), True),)


class PromptText(BaseModel):
    """An administrator's wording of a prompt, replacing the text in sounds/prompts.<lang>.toml."""

    lang = peewee.CharField(max_length=8)
    key = peewee.CharField(max_length=64)
    text = peewee.TextField()
    changed_by = peewee.CharField(max_length=64, default="")
    changed_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("lang", "key"), True),)


class IvrTrace(BaseModel):
    """The nodes one call visited, with times and keys; linked to the call by its channel UUID."""

    call_uuid = peewee.CharField(max_length=64, index=True)
    caller = peewee.CharField(max_length=32, default="", index=True)
    destination = peewee.CharField(max_length=32, default="")
    direction = peewee.CharField(max_length=8, default="inbound")  # inbound, outbound
    tree_version = peewee.ForeignKeyField(IvrTreeVersion, null=True, backref="traces", on_delete="SET NULL")
    started_at = peewee.DateTimeField(default=utcnow, index=True)
    ended_at = peewee.DateTimeField(null=True)
    outcome = peewee.CharField(max_length=32, default="")
    tickets = peewee.CharField(max_length=255, default="")  # acceptance numbers created, comma-separated
    entries = peewee.TextField(default="[]")  # JSON list of {at, node, what, keys}

    @property
    def steps(self) -> list[dict]:
        return json.loads(self.entries or "[]")


class Poll(BaseModel):
    """An opinion poll (民意调查); the one an administrator marks active is offered on the phone."""

    title = peewee.CharField(max_length=200)
    active = peewee.BooleanField(default=False, index=True)
    created_at = peewee.DateTimeField(default=utcnow)


class PollQuestion(BaseModel):
    """A question answered by one key; ``choices`` lists the keys (e.g. "123") and their meaning."""

    poll = peewee.ForeignKeyField(Poll, backref="questions", on_delete="CASCADE")
    position = peewee.IntegerField(default=0)
    text = peewee.CharField(max_length=500)  # spoken by TTS (cached)
    choices = peewee.CharField(max_length=10, default="12")
    choice_labels = peewee.CharField(max_length=500, default="")  # "满意|一般|不满意" for reports


class PollAnswer(BaseModel):
    question = peewee.ForeignKeyField(PollQuestion, backref="answers", on_delete="CASCADE")
    answer = peewee.CharField(max_length=1)
    caller = peewee.CharField(max_length=32, default="")
    call_uuid = peewee.CharField(max_length=64, default="")
    at = peewee.DateTimeField(default=utcnow)


class OutboundCampaign(BaseModel):
    """Calls the system places: result notifications with a satisfaction key-press, or group calls."""

    kind = peewee.CharField(max_length=16)  # satisfaction, group
    title = peewee.CharField(max_length=200)
    prompt_text = peewee.TextField(default="")  # group calls: the message spoken by TTS
    max_parallel = peewee.IntegerField(default=10)  # upper bound; pacing also follows the free channels
    max_attempts = peewee.IntegerField(default=3)
    status = peewee.CharField(max_length=16, default="running", index=True)  # running, paused, done
    # The centre user who started it: satisfaction ratings are applied to tickets in their name.
    created_by = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    retry_minutes = peewee.IntegerField(default=30)  # wait before calling an unanswered number again
    created_at = peewee.DateTimeField(default=utcnow)


class OutboundAttempt(BaseModel):
    """One number of a campaign with its attempts and outcome."""

    campaign = peewee.ForeignKeyField(OutboundCampaign, backref="targets", on_delete="CASCADE")
    phone = peewee.CharField(max_length=32)
    ticket_number = peewee.CharField(max_length=8, default="")
    attempts = peewee.IntegerField(default=0)
    state = peewee.CharField(max_length=16, default="pending", index=True)  # pending, calling, done, failed
    outcome = peewee.CharField(max_length=32, default="")  # answered, no_answer, busy, key:<digit>
    last_call_uuid = peewee.CharField(max_length=64, default="")
    last_attempt_at = peewee.DateTimeField(null=True)


class SatisfactionRating(BaseModel):
    """A caller's key-press rating after an agent handed them back to the IVR (人工转自动): kept for every
    call; ``ticket_number`` when it was also applied to (or noted on) the call's ticket."""

    call_uuid = peewee.CharField(max_length=64, index=True)
    caller = peewee.CharField(max_length=32, default="")
    rating = peewee.CharField(max_length=16)  # satisfied, basic, unsatisfied
    ticket_number = peewee.CharField(max_length=16, default="", index=True)
    applied = peewee.CharField(max_length=16, default="")  # call_back, note, "" (no ticket)
    created_at = peewee.DateTimeField(default=utcnow, index=True)


MODELS = [IvrTreeVersion, PromptText, IvrTrace, Poll, PollQuestion, PollAnswer, OutboundCampaign,
          OutboundAttempt, SatisfactionRating]
