"""Web requests while the database is away (PostgreSQL restarting, its connections cut): a 503 page in the
user's language with Retry-After, at once, instead of a 500 (issue 16's faults list; the whole product through
a cut and refused connection: tests/integration/product/test_postgres_restart_window.py)."""
from __future__ import annotations

import peewee
import pytest

from caseflow import accounts


def _away(*_args, **_kwargs):
    raise peewee.OperationalError("server closed the connection unexpectedly")


def test_a_lost_database_connection_is_a_503_in_the_users_language(client, db, monkeypatch):
    """Should answer 503 with Retry-After and the page in Chinese for a logged-in agent and in English for a
    visitor whose browser asks for English, when the database connection is lost; JSON for an API client."""
    accounts.create_user("1001", "话务员", "agent-password-1", roles=("agent",))
    assert client.login("1001", "agent-password-1").status_code == 302
    monkeypatch.setattr(db, "execute_sql", _away)

    page = client.get("/agent/tickets")
    assert page.status_code == 503 and page.headers["Retry-After"]
    assert "数据库暂时无法响应" in page.get_data(as_text=True)

    visitor = client.application.test_client()
    page = visitor.get("/cases", headers={"Accept-Language": "en"})
    assert page.status_code == 503
    text = page.get_data(as_text=True)
    assert "The database is not answering" in text and "数据库" not in text

    api = visitor.get("/cases", headers={"Accept": "application/json"})
    assert api.status_code == 503 and api.get_json()["error"] == "service_unavailable"


def test_other_database_errors_stay_server_errors(client, db, monkeypatch):
    """Should not call a database error that is not a lost connection (a broken statement) a 503: it stays
    a server error for Flask (raised on in testing mode)."""
    def broken(*_args, **_kwargs):
        raise peewee.OperationalError("no such column: nonsense")

    accounts.create_user("1001", "话务员", "agent-password-1", roles=("agent",))
    assert client.login("1001", "agent-password-1").status_code == 302
    monkeypatch.setattr(db, "execute_sql", broken)
    with pytest.raises(peewee.OperationalError, match="no such column"):
        client.get("/agent/tickets")
