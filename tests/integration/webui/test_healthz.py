"""GET /healthz: database, FreeSWITCH links and active calls as JSON, without login."""
from __future__ import annotations

import peewee

from webui.app import Services
from webui.blueprints import health


def test_defaults_without_services(client, db):
    """Should report the database ok and every configured switch disconnected when nothing is wired."""
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["db"] == "ok"
    assert body["switch"] == "disconnected"
    assert body["switches"] == {"127.0.0.1:8021": "disconnected"}
    assert body["active_calls"] == 0
    assert body["status"] == "degraded"
    assert body["version"]


def test_connected_switches_and_calls(make_app):
    """Should report ok, connected per server and the active call count from the services."""
    services = Services(switch_status=lambda: {"fs1:8021": "connected", "fs2:8021": "connected"},
                        active_calls=lambda: 7)
    body = make_app(services=services, esl="fs1:8021:pw,fs2:8021:pw").test_client().get("/healthz").get_json()
    assert body["status"] == "ok" and body["switch"] == "connected" and body["active_calls"] == 7
    assert body["switches"] == {"fs1:8021": "connected", "fs2:8021": "connected"}


def test_dropped_events_per_switch_from_status_dicts(make_app):
    """Should read the inbound connections' status dicts: state per server and the events each dropped
    (0 for a server the probe does not know, and for a nonsense count)."""
    services = Services(switch_status=lambda: {"fs1:8021": {"state": "connected", "dropped_events": 12},
                                               "fs2:8021": {"state": "connected", "dropped_events": "x"}})
    body = make_app(services=services, esl="fs1:8021:pw,fs2:8021:pw,fs3:8021:pw").test_client().get(
        "/healthz").get_json()
    assert body["switches"] == {"fs1:8021": "connected", "fs2:8021": "connected", "fs3:8021": "disconnected"}
    assert body["dropped_events"] == {"fs1:8021": 12, "fs2:8021": 0, "fs3:8021": 0}


def test_one_switch_down_is_degraded(make_app):
    """Should say degraded and name the server that is down (connecting counts as down)."""
    services = Services(switch_status=lambda: {"fs1:8021": "connected", "fs2:8021": "connecting"})
    body = make_app(services=services, esl="fs1:8021:pw,fs2:8021:pw").test_client().get("/healthz").get_json()
    assert body["status"] == "degraded" and body["switch"] == "disconnected"
    assert body["switches"]["fs2:8021"] == "disconnected"


def test_broken_probes_do_not_break_the_check(make_app):
    """Should answer even when the status probes raise."""
    def broken():
        raise RuntimeError("probe exploded")

    body = make_app(services=Services(switch_status=broken, active_calls=broken)).test_client().get("/healthz").get_json()
    assert body["switch"] == "disconnected" and body["active_calls"] == 0 and body["db"] == "ok"


def test_database_down_is_503(client, db, monkeypatch, tmp_path):
    """Should answer 503 with db error when the database cannot be reached, still as JSON."""
    monkeypatch.setattr(health, "database", peewee.SqliteDatabase(str(tmp_path / "missing" / "dir" / "x.db")))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["db"] == "error" and response.get_json()["status"] == "error"


def test_public_and_uncached(client, db):
    """Should need no login and tell caches not to keep the answer."""
    response = client.get("/healthz")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/json"


def test_heartbeat_age_per_switch(make_app):
    """Should show the seconds since each switch's last HEARTBEAT, None for one disconnected, unknown or
    reporting nonsense."""
    services = Services(switch_status=lambda: {
        "fs1:8021": {"state": "connected", "heartbeat_age": 12.5},
        "fs2:8021": {"state": "disconnected", "heartbeat_age": 3.0},
        "fs3:8021": {"state": "connected", "heartbeat_age": "x"}})
    body = make_app(services=services, esl="fs1:8021:pw,fs2:8021:pw,fs3:8021:pw,fs4:8021:pw").test_client().get(
        "/healthz").get_json()
    assert body["heartbeat_age"] == {"fs1:8021": 12.5, "fs2:8021": None, "fs3:8021": None, "fs4:8021": None}
