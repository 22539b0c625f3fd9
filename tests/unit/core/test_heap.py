"""core.heap: the freed heap given back to the system."""
import ctypes
import platform

import pytest

from core import heap


@pytest.fixture
def fresh_lookup():
    """The cached libc look-up forgotten before and after the test (it is per process)."""
    heap._malloc_trim.cache_clear()
    yield
    heap._malloc_trim.cache_clear()


def test_malloc_trim_is_called_with_zero_and_its_answer_returned(monkeypatch, fresh_lookup):
    """Should call libc's malloc_trim with 0 (every arena, not only the heap's top) and return True exactly
    when it says memory was given back."""
    calls = []

    class FakeLibc:
        def __init__(self, answer):
            self.answer = answer

        def malloc_trim(self, pad):
            calls.append(pad)
            return self.answer

    opened = []

    def cdll(name):
        opened.append(name)
        return FakeLibc(answer)

    monkeypatch.setattr(ctypes, "CDLL", cdll)
    answer = 1
    assert heap.release_free_heap() is True
    heap._malloc_trim.cache_clear()
    answer = 0
    assert heap.release_free_heap() is False
    assert calls == [0, 0]
    assert opened == ["libc.so.6", "libc.so.6"]


def test_the_library_is_looked_up_once(monkeypatch, fresh_lookup):
    """Should open libc once per process, not at every trim."""
    opened = []

    class FakeLibc:
        @staticmethod
        def malloc_trim(pad):
            return 0

    def cdll(name):
        opened.append(name)
        return FakeLibc()

    monkeypatch.setattr(ctypes, "CDLL", cdll)
    for _ in range(3):
        heap.release_free_heap()
    assert opened == ["libc.so.6"]


@pytest.mark.parametrize("missing", [OSError("libc.so.6: cannot open shared object file"),
                                     AttributeError("malloc_trim")])
def test_without_glibc_nothing_is_done(monkeypatch, fresh_lookup, missing):
    """Should return False without an error where there is no libc.so.6 (macOS) or it has no malloc_trim
    (musl)."""
    def cdll(name):
        if isinstance(missing, OSError):
            raise missing

        class NoTrim:
            def __getattr__(self, attribute):
                raise missing
        return NoTrim()

    monkeypatch.setattr(ctypes, "CDLL", cdll)
    assert heap._malloc_trim() is None
    assert heap.release_free_heap() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_on_glibc_the_real_trim_is_found_and_runs(fresh_lookup):
    """Should find the real malloc_trim on glibc and answer a bool after freed blocks."""
    assert heap._malloc_trim() is not None
    blocks = [ctypes.create_string_buffer(200_000) for _ in range(50)]  # malloc'd, then freed
    del blocks
    assert isinstance(heap.release_free_heap(), bool)


def test_the_job_is_registered_on_the_scheduler():
    """Should add one interval job that trims, coalesced, at most one at a time."""
    added = []

    class Scheduler:
        def add_job(self, func, trigger, **options):
            added.append((func, trigger, options))

    heap.register_job(Scheduler(), seconds=30)
    assert added == [(heap.release_free_heap, "interval",
                      {"seconds": 30, "id": "heap-trim", "max_instances": 1, "coalesce": True})]


def test_freeze_startup_objects_collects_then_freezes():
    """Should collect the garbage there is (a reference cycle no one holds) and freeze every object left, so the
    collector's full passes no longer walk the start's objects; the count frozen returned."""
    import gc
    import weakref

    class Node:
        pass

    kept = Node()
    cycle = Node()
    cycle.me = cycle
    gone = weakref.ref(cycle)
    del cycle
    try:
        frozen = heap.freeze_startup_objects()
        assert gone() is None  # collected, not frozen for ever
        assert frozen == gc.get_freeze_count() > 0
        assert not any(obj is kept for obj in gc.get_objects())  # frozen: outside the collector's generations
    finally:
        gc.unfreeze()
