"""Trace pages: numbers a caller typed are masked for agents and shown to the administrator."""
from __future__ import annotations

import datetime as dt
import json

from ivr.models import IvrTrace
from ivr.privacy import mask_digits
from tests.integration.ivr.test_admin import admin_client  # noqa: F401 - the fixture

STEPS = [{"at": "2026-01-05T10:00:00.000+08:00", "node": "status_query", "what": "number entered",
          "keys": "20260417"},
         {"at": "2026-01-05T10:00:05.000+08:00", "node": "status_query", "what": "pin entered", "keys": "******"},
         {"at": "2026-01-05T10:00:09.000+08:00", "node": "main", "what": "key", "keys": "2"}]


def _trace():
    now = dt.datetime(2026, 1, 5, 2, 0)
    IvrTrace.create(call_uuid="priv-1", caller="13800138000", started_at=now, ended_at=now, outcome="completed",
                    entries=json.dumps(STEPS))


def test_agent_sees_typed_numbers_masked(admin_client):  # noqa: F811
    """Should show an agent ******17 instead of the acceptance number typed, single keys as they are."""
    _trace()
    admin_client.logout()
    admin_client.login("1001", "agent-password-1")
    page = admin_client.get("/admin/ivr/traces/priv-1").get_data(as_text=True)
    assert "20260417" not in page and "******17" in page
    assert "<td>2</td>" in page


def test_admin_sees_typed_numbers(admin_client):  # noqa: F811
    """Should show the administrator the keys as typed (PINs were never stored)."""
    _trace()
    page = admin_client.get("/admin/ivr/traces/priv-1").get_data(as_text=True)
    assert "20260417" in page and "******" in page


def test_mask_digits():
    """Should mask runs of 5+ digits but their last two, leave short keys and text alone."""
    assert mask_digits("13800138000") == "*********00"
    assert mask_digits("1234") == "1234"
    assert mask_digits("ab 12345 c 9") == "ab ***45 c 9"
    assert mask_digits("") == ""
