"""Channel tables: every message in and out (the outbox is this table), editable templates, opt-outs, and the
position of the notice watcher in the ticket history."""
from __future__ import annotations

import datetime as dt

import peewee

from caseflow.models import Ticket, User
from core.db import BaseModel


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


# queued -> sending -> sent -> delivered | failed (outgoing); received | ignored (incoming).
STATUSES = ("queued", "sending", "sent", "delivered", "failed", "received", "ignored")


class Message(BaseModel):
    """One message (SMS or e-mail; e-mail headers in MailHeader) in or out. Outgoing rows are the outbox: the worker sends them."""

    channel = peewee.CharField(max_length=8, default="sms")  # sms, email
    direction = peewee.CharField(max_length=3)  # in, out
    address = peewee.CharField(max_length=255, index=True)  # the citizen's or unit's number or e-mail (not ours)
    body = peewee.TextField(default="")
    template_key = peewee.CharField(max_length=32, default="")
    purpose = peewee.CharField(max_length=32, default="")  # receipt, result, satisfaction, alert, material ...
    urgent = peewee.BooleanField(default=False)  # sent in quiet hours too
    status = peewee.CharField(max_length=12, index=True)
    attempts = peewee.IntegerField(default=0)
    next_attempt_at = peewee.DateTimeField(null=True, index=True)
    provider_id = peewee.CharField(max_length=64, null=True, unique=True)  # Kannel's id (inbound %I, DLR %F)
    delivery_report = peewee.CharField(max_length=255, default="")
    error = peewee.CharField(max_length=255, default="")
    segments = peewee.IntegerField(default=1)
    ticket = peewee.ForeignKeyField(Ticket, null=True, backref="messages", on_delete="SET NULL")
    # What an outgoing message answers or announces ("receipt-no:<ticket number>"): the same event never queues twice.
    dedupe_key = peewee.CharField(max_length=64, null=True, unique=True)
    ref = peewee.CharField(max_length=64, default="")  # e.g. the MaterialRequest id a message fulfils
    created_at = peewee.DateTimeField(default=utcnow, index=True)
    updated_at = peewee.DateTimeField(default=utcnow)
    sent_at = peewee.DateTimeField(null=True)


class MessageTemplate(BaseModel):
    """An administrator's text for a template key and language (the code holds the defaults)."""

    key = peewee.CharField(max_length=32)
    lang = peewee.CharField(max_length=5, default="zh")
    body = peewee.TextField()
    updated_at = peewee.DateTimeField(default=utcnow)
    updated_by = peewee.CharField(max_length=32, default="")

    class Meta:
        indexes = ((("key", "lang"), True),)


class OptOut(BaseModel):
    """A number that texted TD/退订: no notices go to it any more (answers to its own messages still do)."""

    address = peewee.CharField(max_length=255, unique=True)
    keyword = peewee.CharField(max_length=16, default="TD")
    at = peewee.DateTimeField(default=utcnow)


class ChannelCursor(BaseModel):
    """How far a watcher has read (the notice watcher: the last TicketHistory id it turned into messages)."""

    name = peewee.CharField(max_length=32, primary_key=True)
    position = peewee.BigIntegerField(default=0)


class MailHeader(BaseModel):
    """What an e-mail Message carries beyond the common columns: the headers that thread answers to their
    ticket (Message-ID, In-Reply-To, References), the subject and the full addresses."""

    message = peewee.ForeignKeyField(Message, unique=True, backref="mail", on_delete="CASCADE")
    msgid = peewee.CharField(max_length=255, index=True)  # the Message-ID header, without <>
    in_reply_to = peewee.CharField(max_length=255, default="")
    references = peewee.TextField(default="")  # space-separated ids
    subject = peewee.CharField(max_length=200, default="")
    sender = peewee.CharField(max_length=255, default="")
    recipient = peewee.CharField(max_length=255, default="")
    automated = peewee.CharField(max_length=12, default="")  # bounce, auto_reply, list or ''
    content_hash = peewee.CharField(max_length=64, default="", index=True)


class VerifyCode(BaseModel):
    """A verification code sent by SMS to confirm a phone number on the website (channels.verify): only a
    keyed hash of the code is kept; it lives 10 minutes, takes 5 tries, and is good for one use."""

    phone = peewee.CharField(max_length=32, index=True)
    purpose = peewee.CharField(max_length=16)  # write (a submission), follow (look up one's cases)
    code_hash = peewee.CharField(max_length=100)
    ip = peewee.CharField(max_length=64, default="", index=True)
    tries = peewee.IntegerField(default=0)
    created_at = peewee.DateTimeField(default=utcnow, index=True)
    expires_at = peewee.DateTimeField()
    used_at = peewee.DateTimeField(null=True)


class ApiClient(BaseModel):
    """An Open311 client an administrator issued a key to. Only the key's sha256 is kept (the key is shown
    once); ``prefix`` names it in lists and the audit log. ``mode``: realtime answers a POST with the
    service_request_id, batch with a token (GeoReport v2 service types)."""

    name = peewee.CharField(max_length=100)
    prefix = peewee.CharField(max_length=16)
    key_hash = peewee.CharField(max_length=64, unique=True)
    mode = peewee.CharField(max_length=8, default="realtime")  # realtime, batch
    created_at = peewee.DateTimeField(default=utcnow)
    created_by = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    revoked_at = peewee.DateTimeField(null=True)
    revoked_by = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    last_used_at = peewee.DateTimeField(null=True)


class Open311Request(BaseModel):
    """What an Open311 POST kept beside its ticket (channel api): the client, the token, and the location
    and reference fields GeoReport v2 defines (media_url is kept as text, never fetched)."""

    ticket = peewee.ForeignKeyField(Ticket, unique=True, backref="open311", on_delete="CASCADE")
    client = peewee.ForeignKeyField(ApiClient, backref="requests", on_delete="RESTRICT")
    token = peewee.CharField(max_length=40, unique=True)
    service_code = peewee.CharField(max_length=32)
    lat = peewee.DoubleField(null=True)
    long = peewee.DoubleField(null=True)
    address_id = peewee.CharField(max_length=64, default="")
    device_id = peewee.CharField(max_length=64, default="")
    account_id = peewee.CharField(max_length=64, default="")
    media_url = peewee.CharField(max_length=500, default="")
    attributes = peewee.TextField(default="{}")  # JSON {code: value or [values]}
    created_at = peewee.DateTimeField(default=utcnow, index=True)


MODELS = [Message, MessageTemplate, OptOut, ChannelCursor, MailHeader, VerifyCode, ApiClient, Open311Request]
