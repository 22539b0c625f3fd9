"""Demo ACD set-up for `make run`: one queue per skill the default IVR tree routes callers to, and the demo
agents (caseflow.demo's 1001, 1002 and team lead 8001) with their extensions and skills, and the chat queues
(topics) of the website's online chat (/chat), served by the same agents through the same skills.

``load_acd_demo()`` does nothing once any queue or agent exists, so an administrator's set-up is never
touched; it also skips demo users that are not there (the case demo was not loaded).
"""
from __future__ import annotations

import logging

from acd import chat
from acd.dispatcher import create_agent, create_queue
from acd.models import Agent, ChatQueue, Queue
from caseflow.models import User
from core.db import database

log = logging.getLogger(__name__)

# (name = skill of ivr/default_tree.toml's queue nodes, display name, rule, max wait, overflow kind, target)
DEMO_QUEUES = [
    ("general", "综合服务", "least_talk_time", 300, "callback", ""),
    ("consult", "政策咨询", "least_talk_time", 180, "queue", "general"),
    # Complaints go to the most experienced agent first (业务级别优先).
    ("complaint", "投诉举报", "highest_skill", 240, "callback", ""),
    ("convenience", "便民服务", "longest_idle", 180, "queue", "general"),
]

# operator number -> {skill: level}; the extension is the user's own (caseflow.demo: 1000, 1001, 1008).
DEMO_AGENTS = {
    "1001": {"general": 6, "consult": 8, "convenience": 6},
    "1002": {"general": 6, "complaint": 7, "convenience": 5},
    "8001": {"general": 9, "consult": 9, "complaint": 9, "convenience": 9},
}

# Chat queues: (name, topic, skill of a demo queue above, rule).
DEMO_CHAT_QUEUES = [
    ("chat-general", "综合咨询", "general", "least_talk_time"),
    ("chat-consult", "政策咨询", "consult", "least_talk_time"),
]


def load_acd_demo() -> list[str]:
    """Create the demo queues and agents unless the ACD is configured already; returns what was made."""
    if Queue.select().exists() or Agent.select().exists():
        log.info("ACD demo not loaded: queues or agents exist already")
        return []
    made: list[str] = []
    with database.atomic():
        for name, display, strategy, max_wait, kind, target in DEMO_QUEUES:
            create_queue(name, name, strategy, display_name=display, max_wait=max_wait, overflow_kind=kind,
                         overflow_target=target, ring_timeout=20, wrap_up_seconds=15, announce_interval=30)
            made.append(f"queue {name}")
        if not ChatQueue.select().exists():
            for name, display, skill, strategy in DEMO_CHAT_QUEUES:
                chat.create_queue(name, skill, strategy, display_name=display, offer_timeout=30, max_wait=600)
                made.append(f"chat queue {name}")
        for operator_no, skills in DEMO_AGENTS.items():
            user = User.get_or_none(User.operator_no == operator_no)
            if user is None or not user.extension:
                log.info("ACD demo: no user %s with an extension, skipped", operator_no)
                continue
            create_agent(user, skills)
            made.append(f"agent {operator_no} extension {user.extension}")
    for line in made:
        log.info("ACD demo: %s", line)
    return made
