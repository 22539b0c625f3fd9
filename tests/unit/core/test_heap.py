"""core.heap: the freed heap given back to the system."""
import ctypes

from core import heap


def test_release_free_heap_gives_back_freed_memory():
    """Should return a bool from glibc's malloc_trim, and never raise."""
    blocks = [ctypes.create_string_buffer(200_000) for _ in range(50)]  # malloc'd, then freed
    del blocks
    assert heap.release_free_heap() in (True, False)


def test_without_glibc_nothing_is_done(monkeypatch):
    """Should do nothing (False) where there is no malloc_trim."""
    monkeypatch.setattr(heap, "_malloc_trim", lambda: None)
    assert heap.release_free_heap() is False


def test_the_job_is_registered_on_the_scheduler():
    """Should add one interval job that trims, coalesced, at most one at a time."""
    added = []

    class Scheduler:
        def add_job(self, func, trigger, **options):
            added.append((func, trigger, options))

    heap.register_job(Scheduler(), seconds=30)
    assert added == [(heap.release_free_heap, "interval",
                      {"seconds": 30, "id": "heap-trim", "max_instances": 1, "coalesce": True})]
