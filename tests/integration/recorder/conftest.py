"""Fixtures for recorder integration tests: a signing key, a CDR recorder and a recording store on tmp_path."""
from __future__ import annotations

import datetime as dt

import pytest

from core.clock import FixedClock
from recorder.cdr import CdrRecorder
from recorder.integrity import record_key
from recorder.storage import RecordingStore

SECRET = "test-secret-key-0123456789abcdef0123456789"


@pytest.fixture
def clock():
    return FixedClock(dt.datetime(2026, 11, 27, 9, 30, 0))


@pytest.fixture
def key():
    return record_key(SECRET)


@pytest.fixture
def cdr(db, key, clock):
    return CdrRecorder(key, clock=clock)


@pytest.fixture
def store(db, tmp_path, clock):
    return RecordingStore(tmp_path / "recordings", tz="Asia/Shanghai", clock=clock)
