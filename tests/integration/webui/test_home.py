"""The landing page per role, the navigation, and demo data loading."""
from __future__ import annotations

from core.config import load_config
from webui.app import load_demo_if_empty

from .conftest import PASSWORD


def login(app, make_user, operator_no, roles):
    make_user(operator_no, roles=roles)
    client = app.test_client()
    client.login(operator_no, PASSWORD)
    return client


def test_anonymous_staff_landing_goes_to_login(client, db):
    """Should send an anonymous visitor of the staff landing page to the login page (/ is the public site)."""
    response = client.get("/staff")
    assert response.status_code == 302 and response.headers["Location"] == "/login?next=/staff"


def test_agent_lands_on_ticket_list(app, make_user):
    """Should send an agent straight to the ticket list."""
    assert login(app, make_user, "6001", ("agent",)).get("/staff").headers["Location"] == "/agent/tickets"


def test_desk_not_built_yet_is_named_not_linked(app, make_user, monkeypatch):
    """Should show the overview, without a dead link, when the role's desk does not exist yet."""
    import webui.app

    monkeypatch.setattr(webui.app, "DESKS", [("leader", "/no-such-desk", "Statistics")])
    client = login(app, make_user, "6002", ("leader",))
    response = client.get("/staff")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "尚未开通" in page and 'href="/no-such-desk"' not in page


def test_admin_lands_on_an_existing_admin_page(app, make_user):
    """Should send an administrator to an administration page that exists."""
    client = login(app, make_user, "6005", ("admin",))
    target = client.get("/staff").headers["Location"]
    assert target.startswith("/admin")
    assert client.get(target, follow_redirects=True).status_code == 200


def test_several_roles_list_every_existing_desk(make_app, make_user, monkeypatch):
    """Should send a team lead who is also an agent to the supervising desk, list each existing desk once,
    and show role names in the header."""
    import webui.app

    desks = [("team_lead", "/test-only-desk", "Supervisor console") if d[0] == "team_lead" else d
             for d in webui.app.DESKS]
    monkeypatch.setattr(webui.app, "DESKS", desks)
    app = make_app(extra_blueprints=["tests.integration.webui.desk_bp"])
    client = login(app, make_user, "6003", ("agent", "team_lead"))
    assert client.get("/staff").headers["Location"] == "/test-only-desk"
    page = client.get("/home").get_data(as_text=True)
    assert page.count('class="desk" href="/agent/tickets"') == 1
    assert 'class="desk" href="/test-only-desk"' in page
    assert "班长" in page and "话务员" in page
    nav = page.split('<nav class="mainnav"', 1)[1].split("</nav>", 1)[0]
    assert 'href="/test-only-desk"' in nav and 'href="/agent/tickets"' in nav and 'href="/admin"' not in nav


def test_header_shows_user_and_logout(app, make_user):
    """Should show the user's name and operator number and a logout button on every page."""
    client = login(app, make_user, "6004", ("agent",))
    page = client.get("/agent/tickets").get_data(as_text=True)
    assert "测试用户（6004）" in page and 'action="/logout"' in page and 'action="/language"' in page


def test_demo_loaded_only_into_an_empty_database(db, db_url, tmp_path):
    """Should load the demo set once when asked, never over existing users, and never when disabled."""
    from caseflow.models import Ticket, User

    config = load_config({"database_url": db_url, "var_dir": str(tmp_path), "load_demo": False})
    assert load_demo_if_empty(config) == []
    assert User.select().count() == 0
    config = config.replace(load_demo=True)
    accounts = load_demo_if_empty(config)
    assert any(roles == "agent" for _no, _name, roles, _pw in accounts)
    users = User.select().count()
    assert users == len(accounts) and Ticket.select().count() > 0
    assert load_demo_if_empty(config) == []
    assert User.select().count() == users


def test_demo_agent_sees_demo_tickets(app, db, tmp_path, db_url):
    """Should let the demo agent log in with the printed password and see the demo tickets."""
    from caseflow.models import Ticket

    config = load_config({"database_url": db_url, "var_dir": str(tmp_path), "load_demo": True})
    accounts = load_demo_if_empty(config)
    operator_no, _name, _roles, password = next(a for a in accounts if a[2] == "agent")
    client = app.test_client()
    assert client.login(operator_no, password).status_code == 302
    page = client.get("/agent/tickets").get_data(as_text=True)
    newest = Ticket.select().order_by(Ticket.created_at.desc()).first()
    assert newest.number in page
