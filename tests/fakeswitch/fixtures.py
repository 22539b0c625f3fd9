"""Pytest fixtures: `fakeswitch` (a started FakeSwitch per test, recordings under tmp_path) and
`fake_call` (a factory placing scripted calls into an app's outbound socket server)."""
from __future__ import annotations

import pytest

from .server import FakeSwitch


@pytest.fixture
def fakeswitch(tmp_path):
    """A FakeSwitch listening on 127.0.0.1:<free port>, password ClueCon, stopped after the test.

    `fakeswitch.record_dir` is a fresh directory for recordings and faxes.
    """
    record_dir = tmp_path / "fs-recordings"
    record_dir.mkdir()
    fs = FakeSwitch(password="ClueCon", record_dir=record_dir)
    fs.start()
    try:
        yield fs
    finally:
        fs.stop()


@pytest.fixture
def fake_call(fakeswitch):
    """place(app_address, script=[...], caller=..., destination=...) -> FakeCall, on the `fakeswitch`."""
    def place(app_address, script=None, **kwargs):
        return fakeswitch.place_call(app_address, script=script, **kwargs)
    return place
