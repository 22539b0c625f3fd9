"""Rendered public pages kept a few seconds for anonymous visitors (issue 11: the website under load).

The public site's read pages (home, published cases, a published case, figures, guides, notices) are the same
for every anonymous visitor in one language: the first visitor's page is kept ``seconds``
(HOTLINE_PORTAL_PAGE_CACHE_SECONDS, default 5; 0 turns the cache off) under its path, query string and
language, and the next visitors get it without a database connection or a template. It is what public
government sites do in front of their content systems, kept in the process (no outside server).

Never kept or served from the cache: a signed-in user's request (staff browsing the site), any method but
GET, a ``?lang=`` switch (it sets the session's language), an answer that is not 200, that sets a cookie or that
touched the session (a form's CSRF token). Publishing or withdrawing a case, or changing a published one,
empties the cache at once in every process: ``invalidate`` announces it on the app's bus (core.pubsub:
PostgreSQL's LISTEN/NOTIFY reaches every web worker) as well as emptying this process's; the time limit
bounds what a process that missed the message shows.

Browsers get ``Cache-Control: public, max-age=<seconds>`` with ``Vary: Accept-Language, Cookie`` and an ETag
(a reload with If-None-Match gets 304), on these pages only; every other page stays ``no-store``.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict

from flask import current_app, g, request, session

log = logging.getLogger(__name__)

TOPIC = "portal_pages"
MAX_ENTRIES = 500  # pages kept per process (each some tens of kB): the most visited stay, the oldest go
KEPT_HEADERS = ("Content-Type", "Content-Language")


def cached_page(view):
    """Mark a public view whose GET answer is the same for every anonymous visitor in one language."""
    view.page_cache = True
    return view


class PageCache:
    """Kept answers by (path with query, language): (stored at, body, headers, ETag), oldest first."""

    def __init__(self, seconds: float, max_entries: int = MAX_ENTRIES, clock=time.monotonic):
        self.seconds = seconds
        self.max_entries = max_entries
        self.clock = clock
        self.lock = threading.Lock()
        self.entries: OrderedDict[tuple, tuple] = OrderedDict()
        self.generation = 0  # bumped by clear(): an answer rendered before it is not stored after it

    def get(self, key: tuple):
        with self.lock:
            held = self.entries.get(key)
            if held is None:
                return None
            if self.clock() - held[0] >= self.seconds:
                del self.entries[key]
                return None
            self.entries.move_to_end(key)
            return held

    def put(self, key: tuple, generation: int, body: bytes, headers: list) -> str:
        etag = hashlib.sha256(body).hexdigest()[:32]
        with self.lock:
            if generation == self.generation:
                self.entries[key] = (self.clock(), body, headers, etag)
                self.entries.move_to_end(key)
                while len(self.entries) > self.max_entries:
                    self.entries.popitem(last=False)
        return etag

    def clear(self, _message=None) -> None:
        with self.lock:
            self.entries.clear()
            self.generation += 1


def install(app, seconds: float, bus=None) -> None:
    """Add the cache's hooks to ``app`` (create_app calls it before it adds the hook that opens the database,
    so a kept page needs no connection): the look-up and the storing; subscribe to the bus's invalidations."""
    if seconds <= 0:
        return
    cache = PageCache(seconds)
    app.extensions["page_cache"] = cache
    if bus is not None:
        app.extensions["page_cache_subscription"] = bus.subscribe(TOPIC, cache.clear)
    app.before_request(_serve)
    app.after_request(_keep)


def invalidate() -> None:
    """A case was published, withdrawn or changed while published: every process forgets its kept pages."""
    cache = current_app.extensions.get("page_cache")
    if cache is None:
        return
    cache.clear()
    bus = current_app.extensions["hotline"].services.bus
    if bus is not None:
        try:
            bus.publish(TOPIC, {})
        except Exception as error:  # noqa: BLE001 - the other processes' pages then age out within seconds
            log.warning("page cache: could not tell the other processes: %s", error)


def _key():
    """The request's cache key, or None when this request must not use the cache."""
    from webui.auth import SESSION_USER_KEY, choose_language

    if request.method != "GET" or "lang" in request.args or SESSION_USER_KEY in session:
        return None
    view = current_app.view_functions.get(request.endpoint or "")
    if not getattr(view, "page_cache", False):
        return None
    return (request.full_path, choose_language(None))


def _serve():
    cache = current_app.extensions["page_cache"]
    key = _key()
    if key is None:
        return None
    g.page_cache = (key, cache.generation)
    held = cache.get(key)
    if held is None:
        return None
    g.page_cache_hit = True
    _stored_at, body, headers, etag = held
    response = current_app.response_class(body, status=200, headers=headers)
    response.set_etag(etag)
    return response


def _keep(response):
    held = g.pop("page_cache", None)
    if held is None:
        return response
    key, generation = held
    if not g.get("page_cache_hit"):
        if (response.status_code != 200 or response.direct_passthrough or response.is_streamed
                or "Set-Cookie" in response.headers or session.modified):
            return response
        body = response.get_data()
        etag = current_app.extensions["page_cache"].put(
            key, generation, body, [(k, v) for k, v in response.headers.items() if k in KEPT_HEADERS])
        response.set_etag(etag)
    cache = current_app.extensions["page_cache"]
    response.headers["Cache-Control"] = f"public, max-age={int(cache.seconds)}"
    response.vary.update(("Accept-Language", "Cookie"))
    return response.make_conditional(request)
