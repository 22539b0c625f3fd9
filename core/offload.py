"""CPU-bound work off the gevent hub: argon2, TTS rendering, audio conversion.

gevent runs every call, ESL reader and web request in one OS thread; 100 ms of argon2 there stalls all of
them. ``in_thread`` runs a function in gevent's thread pool and waits for it cooperatively (the C code
releases the GIL), so other greenlets keep running meanwhile. ``one_thread`` gives work done one at a time
a native thread of its own instead of the shared pool's.
"""
from __future__ import annotations

from typing import Callable, TypeVar

import gevent

T = TypeVar("T")


def in_thread(function: Callable[..., T], *args, **kwargs) -> T:
    """``function(*args, **kwargs)`` run in the hub's thread pool; its result, or its exception re-raised."""
    return gevent.get_hub().threadpool.apply(function, args, kwargs)


def one_thread():
    """A gevent thread pool of one native thread (started at its first task; its ``apply`` waits as in_thread
    does), for the calling thread's hub: work done one at a time anyway (a resource that is not thread-safe)
    given the hub's shared pool took all its threads in a burst, one working and the rest waiting, while
    argon2 at log-in, TTS and SQLite's checkpoints queued behind them."""
    from gevent.threadpool import ThreadPool

    return ThreadPool(1)
