"""``GET /healthz``: JSON for monitors and load balancers (database, FreeSWITCH links, active calls, file
descriptors and web connections)."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib import metadata

import peewee
from flask import Blueprint, current_app, jsonify

from core import fds
from core.db import database
from webui.security import public

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


def _version() -> str:
    try:
        return metadata.version("hotline12345")
    except metadata.PackageNotFoundError:
        return "unknown"


def database_ok() -> bool:
    """True if a trivial query succeeds on the bound database."""
    opened = False
    try:
        opened = database.connect(reuse_if_open=True)
        database.execute_sql("SELECT 1").fetchone()
        return True
    except (peewee.PeeweeException, OSError, AttributeError) as error:
        # AttributeError: the database proxy was never bound.
        log.warning("health check: database unavailable: %s", error)
        return False
    finally:
        if opened and not database.is_closed():
            database.close()


def switch_states() -> tuple[dict[str, str], dict[str, int], dict[str, float | None]]:
    """Each configured FreeSWITCH as "connected" or "disconnected", the events its inbound connection
    dropped (its queue was full: the ACD reconciled with it), and the seconds since its last HEARTBEAT
    (None while disconnected). The probe gives a state string or the connection's status dict per server."""
    state = current_app.extensions["hotline"]
    states = {endpoint.name: "disconnected" for endpoint in state.config.esl}
    dropped = {name: 0 for name in states}
    heartbeat: dict[str, float | None] = {name: None for name in states}
    if state.services.switch_status is not None:
        try:
            reported = dict(state.services.switch_status())
        except Exception:  # noqa: BLE001 - a broken probe must not break the health page
            log.exception("health check: switch status probe failed")
            reported = {}
        for name, value in reported.items():
            details = value if isinstance(value, Mapping) else {"state": value}
            states[str(name)] = "connected" if details.get("state") == "connected" else "disconnected"
            count = details.get("dropped_events", 0)
            dropped[str(name)] = count if isinstance(count, int) and count >= 0 else 0
            age = details.get("heartbeat_age")
            ok = isinstance(age, (int, float)) and not isinstance(age, bool) and age >= 0
            heartbeat[str(name)] = age if ok and states[str(name)] == "connected" else None
    return states, dropped, heartbeat


def active_calls() -> int:
    state = current_app.extensions["hotline"]
    if state.services.active_calls is None:
        return 0
    try:
        return int(state.services.active_calls())
    except Exception:  # noqa: BLE001 - a broken probe must not break the health page
        log.exception("health check: active calls probe failed")
        return 0


def descriptors() -> dict:
    """The process's open-file limit, descriptors in use, and the reserve the web server leaves to calls
    (None where the platform cannot tell)."""
    state = current_app.extensions["hotline"]
    return {"limit": fds.fd_limit(), "in_use": fds.fds_in_use(), "reserve": state.config.http_fd_reserve}


def http_status() -> dict | None:
    """The web server's open connections and limits (webui.server), None where no server is wired (tests
    through Flask's client)."""
    state = current_app.extensions["hotline"]
    if state.services.http_status is None:
        return None
    try:
        reported = state.services.http_status()
    except Exception:  # noqa: BLE001 - a broken probe must not break the health page
        log.exception("health check: web server probe failed")
        return None
    return dict(reported) if reported is not None else None


@bp.route("/healthz")
@public
def healthz():
    """status ok | degraded (a switch is down, or fewer free file descriptors than the reserve kept for
    calls) | error (database down, HTTP 503)."""
    db_ok = database_ok()
    switches, dropped, heartbeat = switch_states()
    all_connected = bool(switches) and all(v == "connected" for v in switches.values())
    descriptor_counts = descriptors()
    limit, in_use = descriptor_counts["limit"], descriptor_counts["in_use"]
    fds_low = limit is not None and in_use is not None and limit - in_use < descriptor_counts["reserve"]
    status = "error" if not db_ok else ("ok" if all_connected and not fds_low else "degraded")
    body = {
        "status": status,
        "db": "ok" if db_ok else "error",
        "switch": "connected" if all_connected else "disconnected",
        "switches": switches,
        "dropped_events": dropped,
        "heartbeat_age": heartbeat,
        "active_calls": active_calls(),
        "fds": descriptor_counts,
        "http": http_status(),
        "version": _version(),
    }
    response = jsonify(body)
    response.status_code = 200 if db_ok else 503
    response.headers["Cache-Control"] = "no-store"
    return response
