"""The agent desk's live feed, across processes: what the desk's event stream (/desk/events) shows comes
from the ACD of the call process, and the stream may be open on any web worker.

The call process subscribes ``DeskFeed.on_notice`` to its ACD: each notice is completed at once with what
only the running ACD knows about the agent at that moment (the call held, whether its number is the caller
of the agent's own queue call, the controls that apply, when the call began; for a queue notice, the
queue's skill) and published on the pub/sub bus (core.pubsub, topic ``desk``) by a greenlet of its own, so a
slow database never holds the ACD up. Every process's desk streams subscribe to that topic and keep what
concerns their agent; the screen pop itself is read from the database by the stream, in the viewer's
language. Desk claims (which window holds a desk, DeskClaims in agent_desk) travel on the same topic.

Without a bus (tests building the web UI on an ACD of their own) a stream completes the ACD's notices in
its own process, through the same ``enrich``.
"""
from __future__ import annotations

import logging
from typing import Callable

import gevent
import gevent.queue

log = logging.getLogger(__name__)

TOPIC = "desk"
CLAIM = "desk_claim"  # a window took an agent's desk (agent_desk.DeskClaims)
# Notices that carry the agent's desk state (controls, call timer).
AGENT_NOTICES = ("agent", "answered", "hold", "consult")
QUEUE_LIMIT = 10000  # notices waiting to be published; beyond, the oldest are dropped (and logged)


def enrich(acd, notice: dict, handback: Callable[[], bool]) -> dict:
    """The notice with what a desk stream needs of the running ACD, as plain JSON values."""
    from webui.blueprints.agent_desk import _call_since, caller_of_own_call, enabled_controls

    message = dict(notice)
    kind = notice.get("type")
    if kind == "queue":
        queue = acd.queues.get(notice.get("queue", ""))
        message["skill"] = queue.skill if queue is not None else None
    agent = acd.agents.get(notice.get("agent_id")) if notice.get("agent_id") is not None else None
    if agent is not None and kind in AGENT_NOTICES:
        message["desk"] = {
            "call_uuid": agent.call_uuid or "", "call_number": agent.call_number or "",
            "own_call": caller_of_own_call(agent),
            "enabled": enabled_controls(acd, agent, handback() if agent.state == "in_call" else False),
            "since": _call_since(agent),
        }
    return message


def tree_handback(trees, ttl: float = 10.0) -> Callable[[], bool]:
    """Whether the active IVR tree has a node an agent may hand a caller back to (the desk's 转自动), read
    at most every ``ttl`` seconds (it is asked on the ACD's path, at each notice of an agent in a call)."""
    import time

    cache = {"at": -ttl, "value": False}

    def handback() -> bool:
        from core.db import database
        from ivr.tree import TreeError, handback_nodes

        now = time.monotonic()
        if now - cache["at"] < ttl:
            return cache["value"]
        try:
            if database.is_closed():
                with database.connection_context():
                    _version, tree = trees.active_tree()
            else:  # the ACD's greenlet has its connection open (closing it would end its work)
                _version, tree = trees.active_tree()
            cache["value"] = bool(handback_nodes(tree))
        except (TreeError, OSError):
            cache["value"] = False
        except Exception:  # noqa: BLE001 - the database away: keep the last answer, ask again next time
            log.exception("desk feed: cannot read the active IVR tree")
            return cache["value"]
        cache["at"] = now
        return cache["value"]
    return handback


class DeskFeed:
    """Publishes the ACD's notices for the desks of every process (the module docstring says how)."""

    def __init__(self, acd, bus, handback: Callable[[], bool]):
        self.acd = acd
        self.bus = bus
        self.handback = handback
        self._queue: gevent.queue.Queue = gevent.queue.Queue()
        self._greenlet: gevent.Greenlet | None = None
        self.published = 0
        self.dropped = 0

    def on_notice(self, notice: dict) -> None:
        """The ACD's listener: complete now (the agent as it is now), publish later."""
        try:
            message = enrich(self.acd, notice, self.handback)
        except Exception:  # noqa: BLE001 - a desk notice must never stop the ACD
            log.exception("desk feed: cannot complete notice %s", notice.get("type"))
            return
        if self._queue.qsize() >= QUEUE_LIMIT:
            self._queue.get_nowait()
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.error("desk feed: the bus is not keeping up; %d notices dropped so far", self.dropped)
        self._queue.put(message)

    def start(self) -> "DeskFeed":
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)
        return self

    def _run(self) -> None:
        while True:
            message = self._queue.get()
            try:
                self.bus.publish(TOPIC, message)
                self.published += 1
            except Exception:  # noqa: BLE001 - logged; the next notice is tried again
                log.exception("desk feed: publishing a %s notice failed", message.get("type"))

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None
