"""The call process's freed heap given back to the system now and then (glibc's malloc_trim).

glibc keeps what the process freed for its next allocations: after a burst of calls (ESL event text, SQL
rows and pages, greenlet stacks) the call process stayed at its high-water mark although Python had freed the
objects (issue 15 item 11: 3-6 MiB given back by one malloc_trim(0) at the end of a run). Trimming once a
minute returns the free pages of every arena; it costs a few milliseconds of the loop and nothing when
there is little to give back. Without glibc (musl, macOS) it does nothing.

Also the objects a process builds at its start kept out of the garbage collector's full passes
(``freeze_startup_objects``, a web worker's, issue 11).
"""
from __future__ import annotations

import ctypes
import functools
import gc
import logging

log = logging.getLogger(__name__)

TRIM_SECONDS = 60


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_heap() -> bool:
    """glibc's malloc_trim(0): the free pages of every arena returned to the system (not only the heap's
    top). True when some memory was given back; False when none was or without glibc."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


def register_job(scheduler, seconds: float = TRIM_SECONDS) -> None:
    """Trim every ``seconds`` on ``scheduler`` (the call process's)."""
    scheduler.add_job(release_free_heap, "interval", seconds=seconds, id="heap-trim", max_instances=1,
                      coalesce=True)


def freeze_startup_objects() -> int:
    """The objects built so far (modules, the app, its templates and tables: some 70,000 in a web worker) kept out
    of the garbage collector's full passes: garbage collected once, the rest frozen (gc.freeze). Each full pass
    walked them all and stopped every request of the process meanwhile: about 30 ms of CPU, 140-220 ms on a busy
    machine, about once a minute in each web worker under bench/portal.py (issue 11's p99 on PostgreSQL).
    Returns how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
