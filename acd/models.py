"""ACD tables: queues, agents and their skills, queued calls, team-lead action log.

The ACD's live state (agent status/state, who is offered which call, which callers wait) is written here on
every change, so an app restart picks it up again and reconciles it with FreeSWITCH (see acd.dispatcher).
Times are naive UTC, like the rest of the schema.
"""
from __future__ import annotations

import datetime as dt

import peewee

from caseflow.models import Ticket, User
from core.db import BaseModel


def utcnow() -> dt.datetime:
    """Naive UTC now (the storage convention of every table)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


# Kinds of overflow target a queue may name (what happens after max wait).
OVERFLOW_KINDS = ("none", "voicemail", "callback", "queue", "number")


class Queue(BaseModel):
    """A call queue served by agents holding its skill."""

    name = peewee.CharField(max_length=64, unique=True)
    display_name = peewee.CharField(max_length=100, default="")
    skill = peewee.CharField(max_length=64, index=True)
    strategy = peewee.CharField(max_length=32, default="least_talk_time")
    ring_timeout = peewee.IntegerField(default=20)  # seconds an agent's phone rings
    max_wait = peewee.IntegerField(default=300)  # seconds before overflow; 0 = wait forever
    overflow_kind = peewee.CharField(max_length=16, default="callback")
    overflow_target = peewee.CharField(max_length=64, default="")  # queue name, number or mailbox
    wrap_up_seconds = peewee.IntegerField(default=15)
    announce_interval = peewee.IntegerField(default=30)  # seconds between position announcements; 0 = off
    moh = peewee.CharField(max_length=255, default="local_stream://moh")
    no_answer_break = peewee.BooleanField(default=True)  # an agent who lets an offer ring out goes on break
    callback_key = peewee.CharField(max_length=1, default="1")  # key that leaves a call-back request
    answer_target_seconds = peewee.IntegerField(default=15)  # GB/T 33358: answer within 15 s
    active = peewee.BooleanField(default=True)
    # Round-robin pointer: the agent offered last (id), so the next call starts after it.
    last_agent_id = peewee.IntegerField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)


class Agent(BaseModel):
    """A user who takes queue calls: status and state are written only through acd.state transitions."""

    user = peewee.ForeignKeyField(User, unique=True, backref="agent", on_delete="CASCADE")
    extension = peewee.CharField(max_length=16, unique=True)
    server = peewee.CharField(max_length=64, default="")  # FreeSWITCH the phone is registered on
    registered = peewee.BooleanField(default=False)
    contact = peewee.CharField(max_length=255, default="")
    status = peewee.CharField(max_length=24, default="logged_out", index=True)
    state = peewee.CharField(max_length=16, default="idle", index=True)
    since = peewee.DateTimeField(default=utcnow)  # when status or state last changed
    break_reason = peewee.CharField(max_length=64, default="")
    position = peewee.IntegerField(default=0)  # fixed-order seat number (按座席编号); 0 = operator number
    # Today's counters (reset when counters_date is not today in the configured zone).
    counters_date = peewee.DateField(null=True)
    calls_today = peewee.IntegerField(default=0)
    talk_seconds_today = peewee.IntegerField(default=0)
    missed_today = peewee.IntegerField(default=0)
    last_call_end = peewee.DateTimeField(null=True)
    idle_since = peewee.DateTimeField(null=True)
    # The call the agent holds: the caller's channel and the agent's own leg.
    call_uuid = peewee.CharField(max_length=64, default="")
    leg_uuid = peewee.CharField(max_length=64, default="")
    call_server = peewee.CharField(max_length=64, default="")
    call_number = peewee.CharField(max_length=32, default="")  # the other party's number
    call_queue = peewee.CharField(max_length=64, default="")
    call_direction = peewee.CharField(max_length=8, default="")  # inbound / outbound
    on_hold = peewee.BooleanField(default=False)
    help_requested_at = peewee.DateTimeField(null=True)
    desk_activity = peewee.CharField(max_length=255, default="")  # what the web desk shows (ticket open ...)
    guest_until = peewee.DateField(null=True)  # leaders taking calls for a day (领导上线接听)
    version = peewee.IntegerField(default=0)


class AgentSkill(BaseModel):
    """An agent's level (1-10) in a skill, plus the tier position for top-down ordering."""

    agent = peewee.ForeignKeyField(Agent, backref="skills", on_delete="CASCADE")
    skill = peewee.CharField(max_length=64, index=True)
    level = peewee.SmallIntegerField(default=5)
    position = peewee.IntegerField(default=0)

    class Meta:
        indexes = ((("agent", "skill"), True),)


class AgentStateLog(BaseModel):
    """Append-only history of every agent transition (reporting, time in state, audits)."""

    agent = peewee.ForeignKeyField(Agent, backref="state_log", on_delete="CASCADE")
    at = peewee.DateTimeField(default=utcnow, index=True)
    event = peewee.CharField(max_length=24)
    from_status = peewee.CharField(max_length=24)
    from_state = peewee.CharField(max_length=16)
    to_status = peewee.CharField(max_length=24)
    to_state = peewee.CharField(max_length=16)
    reason = peewee.CharField(max_length=128, default="")
    call_uuid = peewee.CharField(max_length=64, default="")


# Queue entry states. waiting/offering are live; the rest are final.
ENTRY_LIVE = ("waiting", "offering")
ENTRY_FINAL = ("bridged", "abandoned", "overflowed", "callback_requested")  # bridged = served


class QueueEntry(BaseModel):
    """A caller in (or once in) a queue; one row per call per queue visit."""

    call_uuid = peewee.CharField(max_length=64, index=True)
    server = peewee.CharField(max_length=64, default="")
    queue = peewee.ForeignKeyField(Queue, backref="entries", on_delete="CASCADE")
    caller_number = peewee.CharField(max_length=32, default="")
    entered_at = peewee.DateTimeField(default=utcnow, index=True)
    state = peewee.CharField(max_length=24, default="waiting", index=True)
    offered_agents = peewee.TextField(default="")  # comma-separated agent ids offered so far
    agent = peewee.ForeignKeyField(Agent, null=True, backref="entries", on_delete="SET NULL")
    agent_leg_uuid = peewee.CharField(max_length=64, default="")
    answered_at = peewee.DateTimeField(null=True)
    ended_at = peewee.DateTimeField(null=True)
    end_reason = peewee.CharField(max_length=64, default="")
    wait_seconds = peewee.FloatField(null=True)
    talk_seconds = peewee.FloatField(null=True)

    def offered_ids(self) -> list[int]:
        """Agent ids already offered this call."""
        return [int(x) for x in self.offered_agents.split(",") if x.strip().isdigit()]


# Callers to call back (call-back key, overflow into call-back, abandoned) are not kept here: the ACD
# writes them to the one missed-call list, recorder.models.MissedCall, through recorder.missed. The former
# ``callback_request`` table is moved there and dropped by migration step 0001_one_missed_call_list
# (hotline.migrations).


class SupervisorAction(BaseModel):
    """Who did what to which agent or call (team-lead actions and agent controls over ESL)."""

    actor = peewee.ForeignKeyField(User, null=True, on_delete="SET NULL")
    actor_label = peewee.CharField(max_length=64, default="")
    action = peewee.CharField(max_length=32, index=True)
    target_agent = peewee.ForeignKeyField(Agent, null=True, on_delete="SET NULL")
    call_uuid = peewee.CharField(max_length=64, default="")
    detail = peewee.CharField(max_length=255, default="")
    ok = peewee.BooleanField(default=True)
    at = peewee.DateTimeField(default=utcnow, index=True)


# ---------------------------------------------------------------------------------- online chat
# Chat queues are their own table rather than call queues of another kind: the call dispatcher, the queue
# pages and the call statistics read every Queue row, and none of a call queue's fields (ring time, music,
# overflow, call-back key) means anything for a chat. Agents and skills are shared (AgentSkill).
CHAT_STATES = ("waiting", "offered", "active", "closed")
CHAT_SENDERS = ("citizen", "agent", "system")


class ChatQueue(BaseModel):
    """A chat queue (文字交谈) on the public website, served by agents holding its skill (acd.chat)."""

    name = peewee.CharField(max_length=64, unique=True)
    display_name = peewee.CharField(max_length=100, default="")  # the topic the citizen picks
    skill = peewee.CharField(max_length=64, index=True)
    strategy = peewee.CharField(max_length=32, default="least_talk_time")
    offer_timeout = peewee.IntegerField(default=30)  # seconds an agent has to answer an offered chat
    max_wait = peewee.IntegerField(default=600)  # seconds a chat waits for an agent before it becomes a ticket
    active = peewee.BooleanField(default=True)
    last_agent_id = peewee.IntegerField(null=True)  # round-robin pointer, as Queue's
    created_at = peewee.DateTimeField(default=utcnow)


class ChatSeat(BaseModel):
    """How many chats an agent takes beside calls (set on the desk; no row = acd.chat_queue's default)."""

    agent = peewee.ForeignKeyField(Agent, unique=True, backref="chat_seat", on_delete="CASCADE")
    capacity = peewee.SmallIntegerField(default=2)
    updated_at = peewee.DateTimeField(default=utcnow)


class ChatSession(BaseModel):
    """One chat: the citizen (reached only with the token, kept hashed), the agent, its state and the ticket
    its transcript is stored with."""

    queue = peewee.ForeignKeyField(ChatQueue, backref="sessions", on_delete="CASCADE")
    token_hash = peewee.CharField(max_length=64, unique=True)
    state = peewee.CharField(max_length=16, default="waiting", index=True)
    citizen_name = peewee.CharField(max_length=40, default="")
    citizen_phone = peewee.CharField(max_length=32, default="")
    # The phone confirmed by an SMS code at the start (channels.verify, purpose "chat"): only then does the
    # desk show the citizen's profile and earlier tickets unmasked (webui/blueprints/desk_chat.py).
    phone_verified = peewee.BooleanField(default=False)
    ip = peewee.CharField(max_length=64, default="", index=True)
    agent = peewee.ForeignKeyField(Agent, null=True, backref="chats", on_delete="SET NULL")
    offered_agents = peewee.TextField(default="")  # comma-separated agent ids offered so far
    created_at = peewee.DateTimeField(default=utcnow, index=True)
    offered_at = peewee.DateTimeField(null=True)
    answered_at = peewee.DateTimeField(null=True)
    ended_at = peewee.DateTimeField(null=True)
    last_activity = peewee.DateTimeField(default=utcnow)  # last message (idle timeout)
    citizen_seen = peewee.DateTimeField(default=utcnow)  # the citizen's page last asked (left the page)
    end_reason = peewee.CharField(max_length=32, default="")
    ticket = peewee.ForeignKeyField(Ticket, null=True, backref="chats", on_delete="SET NULL")

    def offered_ids(self) -> list[int]:
        """Agent ids already offered this chat."""
        return [int(x) for x in self.offered_agents.split(",") if x.strip().isdigit()]


class ChatMessage(BaseModel):
    """One line of a chat's transcript, stored verbatim (pages and scripts show it as text)."""

    session = peewee.ForeignKeyField(ChatSession, backref="messages", on_delete="CASCADE")
    sender = peewee.CharField(max_length=8)
    author = peewee.CharField(max_length=64, default="")  # the agent's name and number, or ""
    text = peewee.TextField()
    at = peewee.DateTimeField(default=utcnow, index=True)


class SeatSecret(BaseModel):
    """A seat's (SIP extension's) own password as stored: a random salt only. The password is derived from it
    with the product's key (acd.seats), so the database alone does not give it away; a reset is a new salt."""

    extension = peewee.CharField(max_length=16, unique=True)
    salt = peewee.CharField(max_length=64)
    changed_at = peewee.DateTimeField(default=utcnow)
    changed_by = peewee.CharField(max_length=32, default="")  # operator number, "" for the product itself


MODELS = [Queue, Agent, AgentSkill, AgentStateLog, QueueEntry, SupervisorAction, ChatQueue, ChatSeat,
          ChatSession, ChatMessage, SeatSecret]
