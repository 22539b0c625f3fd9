"""The web side of online chat shared by the citizen's and the agent's pages: the chat settings from the
app's configuration, the throttled run of acd.chat's time limits and offers from the open streams (no
background job: a stream that is open is what needs them), the audit of chats that ended on a time limit,
and the server-sent-event framing."""
from __future__ import annotations

import json
import time

import gevent
from flask import Response, current_app, stream_with_context

from acd import chat
from webui.security import audit

PUMP_EVERY = 1.0      # seconds between two runs of the time limits and offers, whoever asks
POLL_EVERY = 0.5      # seconds between two looks of a stream at its chat
KEEPALIVE = 15.0      # seconds of silence before a stream sends a comment (proxies close idle streams)
MAX_STREAM = 300.0    # seconds one stream stays open; the browser's EventSource reconnects by itself


def settings() -> chat.ChatSettings:
    """The chat limits: the HOTLINE_CHAT_* settings (core.config; create_app puts them in app.config)."""
    config = current_app.config
    return chat.ChatSettings(rate_messages=int(config["HOTLINE_CHAT_RATE_MESSAGES"]),
                             rate_window=float(config["HOTLINE_CHAT_RATE_SECONDS"]),
                             idle_timeout=float(config["HOTLINE_CHAT_IDLE_SECONDS"]),
                             gone_after=float(config["HOTLINE_CHAT_GONE_SECONDS"]),
                             starts_per_address=int(config["HOTLINE_CHAT_STARTS_PER_IP"]))


def clock():
    return current_app.extensions["hotline"].services.clock


def pump(force: bool = False) -> None:
    """Close chats past a time limit (audited as chat_end) and offer waiting chats to free agents, at most
    once a second across all streams of this app unless ``force``d (a chat started, an agent freed up)."""
    box = current_app.extensions.setdefault("hotline_chat", {"last": 0.0})
    now = time.monotonic()
    if not force and now - box["last"] < PUMP_EVERY:
        return
    box["last"] = now
    for ended in chat.sweep(clock(), settings()):
        audit("chat_end", "chat", ended.id, f"{ended.end_reason}; ticket {ended.ticket.number}", user=None)
    acd = current_app.extensions["hotline"].services.acd
    if acd is not None:
        chat.dispatch(acd.agents, clock())


def event(name: str, data, event_id: int | None = None) -> str:
    """One server-sent event (JSON data on one line; the pages insert every text with textContent)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def event_stream(look, limit: float) -> Response:
    """The server-sent event stream of a chat page (the citizen's and the agent's): ``retry``, then a look every
    POLL_EVERY seconds until ``limit``, each after running the time limits and offers (``pump``; at once the
    first time: a new stream, an agent just ready, a page reloaded). ``look()`` is a generator of one look's
    events; it returns True when the stream is over (the chat ended). A comment keeps a silent stream open
    through proxies every KEEPALIVE seconds. A deadline, not gevent.Timeout: a timeout raised inside a query
    would break the connection."""
    def stream():
        yield "retry: 2000\n\n"
        quiet, first = 0.0, True
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            pump(force=first)
            first = False
            sent = False
            events = look()
            while True:
                try:
                    item = next(events)
                except StopIteration as stop:
                    over = bool(stop.value)
                    break
                sent = True
                yield item
            if over:
                return
            quiet = 0.0 if sent else quiet + POLL_EVERY
            if quiet >= KEEPALIVE:
                quiet = 0.0
                yield ": keepalive\n\n"
            gevent.sleep(min(POLL_EVERY, max(0.0, deadline - time.monotonic())))

    return Response(stream_with_context(stream()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def stream_limit(value) -> float:
    """How long a stream stays open: ?max_seconds= within 0.5..MAX_STREAM (tests ask for short ones)."""
    try:
        return max(0.5, min(float(value), MAX_STREAM))
    except (TypeError, ValueError):
        return MAX_STREAM
