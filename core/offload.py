"""CPU-bound work off the gevent hub: argon2, TTS rendering, audio conversion.

gevent runs every call, ESL reader and web request in one OS thread; 100 ms of argon2 there stalls all of
them. ``in_thread`` runs a function in gevent's thread pool and waits for it cooperatively (the C code
releases the GIL), so other greenlets keep running meanwhile.
"""
from __future__ import annotations

from typing import Callable, TypeVar

import gevent

T = TypeVar("T")


def in_thread(function: Callable[..., T], *args, **kwargs) -> T:
    """``function(*args, **kwargs)`` run in the hub's thread pool; its result, or its exception re-raised."""
    return gevent.get_hub().threadpool.apply(function, args, kwargs)
