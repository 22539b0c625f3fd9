"""Every page of every area, opened by a user of each role: refused or served, never a server error."""
from __future__ import annotations

import pytest

from .conftest import PASSWORD
from .test_security import pages_for

ROLES = ("agent", "team_lead", "centre", "centre_leader", "dept", "dept_leader", "leader", "admin", "entry")


HOSTILE_QUERY = ("?page=-1&q=%3Cscript%3Ealert(1)%3C/script%3E%FF%FE&from=2026-13-45&to=x&status=%27%22%3E&type="
                 + "x" * 5000 + "&id=-1&number=abc&date=31/02/2026&limit=999999999999&sort=%27;--")


def server_errors(app, make_user, role: str, query: str = "") -> list[str]:
    """GET every page this role may open (with ``query`` appended); return those that answered 5xx."""
    operator_no = f"9{ROLES.index(role):03d}"
    make_user(operator_no, roles=(role,))
    client = app.test_client()
    client.login(operator_no, PASSWORD)
    app.testing = False  # a crash must show as a 500 here, not abort the walk
    failures = []
    for endpoint, url in pages_for(app, role):
        # Unbuffered: the view has run (errors show in the status) but an event stream is not read forever.
        response = client.get(url + query)
        if response.status_code >= 500:
            failures.append(f"{url} ({endpoint}) -> {response.status_code}")
        response.close()
    return failures


@pytest.mark.parametrize("role", ROLES)
def test_every_get_page_answers_each_role(app, make_user, role):
    """Should answer every GET page for this role with a page, a redirect, a refusal or a clear 4xx."""
    failures = server_errors(app, make_user, role)
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("role", ROLES)
def test_every_get_page_survives_hostile_query_strings(app, make_user, role):
    """Should answer malformed, oversized and hostile query parameters with a page or a clear 4xx."""
    failures = server_errors(app, make_user, role, HOSTILE_QUERY)
    assert failures == [], "\n".join(failures)


def test_the_walk_finds_a_crashing_page(make_app, make_user):
    """Should report a page that raises (so the walk above can fail)."""
    app = make_app(extra_blueprints=["tests.integration.webui.sample_bp"])
    assert server_errors(app, make_user, "agent") == ["/sample/crash (sample.crash) -> 500"]
