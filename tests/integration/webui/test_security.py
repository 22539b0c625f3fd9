"""Default-deny access checks, CSRF, audit and response headers."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from webui import security
from webui.models import AuditLog
from webui.security import ThrottlePolicy, require_roles, retry_after

from .conftest import PASSWORD

SAMPLE = ["tests.integration.webui.sample_bp"]
EXPECTED_PUBLIC = {"static", "health.healthz", "auth.login", "auth.set_language"}


def concrete_urls(app):
    """(endpoint, method, url) for every rule, with placeholder values for its arguments."""
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        values = {}
        for name in rule.arguments:
            converter = rule._converters[name]
            values[name] = 1 if type(converter).__name__ in ("IntegerConverter", "FloatConverter") else "12345678"
        url = adapter.build(rule.endpoint, values)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, url


def pages_for(app, role: str):
    """(endpoint, url) of every GET page of the url map (not static files) a user with ``role`` may open."""
    for endpoint, method, url in concrete_urls(app):
        if method != "GET" or endpoint == "static" or endpoint.endswith(".static"):
            continue
        access = security.access_of(app.view_functions[endpoint])
        if access is not None and access.kind == "roles" and role not in access.roles:
            continue
        yield endpoint, url


def refused(response) -> bool:
    if response.status_code == 302:
        return response.headers["Location"].startswith("/login")
    return response.status_code in (401, 403)


def test_every_non_public_endpoint_refuses_anonymous_users(app, db):
    """Should refuse an anonymous user on every endpoint of the url map except the declared public ones."""
    client = app.test_client()
    public = set()
    for endpoint, method, url in concrete_urls(app):
        view = app.view_functions[endpoint]
        access = security.access_of(view)
        if endpoint == "static" or (access is not None and access.kind == "public"):
            public.add(endpoint)
            continue
        response = client.open(url, method=method)
        assert refused(response), f"{method} {url} ({endpoint}) answered {response.status_code} to anonymous"
    assert public <= EXPECTED_PUBLIC | {e for e in public if e.endswith(".static")} | _other_public(app), public


def _other_public(app):
    # Areas added later (citizen portal, Open311) declare their own public pages; they are listed here by
    # whoever adds them so that opening a page to the public is always a reviewed change.
    # sms_gateway: Kannel's get-url and delivery-report url, machine to machine behind a shared secret and
    # an address allow list (tests/integration/channels check both).
    # portal_info: the website's guides, notices and poll (the portal's frame and CAPTCHA).
    # portal_chat: online chat (a citizen reaches only their own chat, by the token in their session).
    # vendor.asset: the npm front-end libraries named in webui.blueprints.vendor.ASSETS (nothing of ours).
    return {e for e in app.view_functions if e.startswith(("portal.", "portal_info.", "portal_chat.", "open311."))} | {
        "sms_gateway.receive", "sms_gateway.delivery_report", "vendor.asset"}


def test_every_endpoint_declares_access(app):
    """Should have an explicit access rule on every view, so nothing is open by omission."""
    missing = [e for e, view in app.view_functions.items()
               if e != "static" and not e.endswith(".static") and security.access_of(view) is None]
    assert missing == []


def test_user_without_roles_reaches_only_login_pages(app, make_user):
    """Should refuse a logged-in user with no role on every role-restricted endpoint."""
    make_user("3001", roles=())
    client = app.test_client()
    client.login("3001", PASSWORD)
    for endpoint, method, url in concrete_urls(app):
        access = security.access_of(app.view_functions[endpoint])
        if access is None or access.kind != "roles":
            continue
        response = client.open(url, method=method, data={"csrf_token": client.csrf_token()})
        assert response.status_code == 403, f"{method} {url} answered {response.status_code}"
    home = client.get("/staff", follow_redirects=True)
    assert home.status_code == 200 and "尚未分配角色" in home.get_data(as_text=True)


def test_roles_decide_who_sees_the_ticket_list(logged_in):
    """Should show the ticket list to an agent and refuse a department handler with 403."""
    agent, dept = logged_in("3002", roles=("agent",)), logged_in("3003", roles=("dept",))
    assert agent.get("/agent/tickets").status_code == 200
    response = dept.get("/agent/tickets")
    assert response.status_code == 403 and "无权访问" in response.get_data(as_text=True)


def test_undeclared_view_is_refused_even_when_logged_in(make_app, make_user, caplog):
    """Should refuse a view that forgot its access decorator, and log which one."""
    app = make_app(extra_blueprints=SAMPLE)
    make_user("3004", roles=("agent", "admin"))
    client = app.test_client()
    assert client.get("/sample/undeclared").status_code == 403
    client.login("3004", PASSWORD)
    assert client.get("/sample/undeclared").status_code == 403
    assert "sample.undeclared declares no access rule" in caplog.text


def test_require_roles_refuses_unknown_codes():
    """Should refuse a role code that does not exist (a typo would otherwise lock everyone out)."""
    with pytest.raises(ValueError, match="agnet"):
        require_roles("agnet")
    with pytest.raises(TypeError):
        require_roles()


def test_post_without_csrf_token_is_refused(client, make_user):
    """Should refuse a form post without the session's token, or with another one, and change nothing."""
    make_user("3005")
    client.get("/login")
    response = client.post("/login", data={"operator_no": "3005", "password": PASSWORD})
    assert response.status_code == 400
    assert "表单已过期" in response.get_data(as_text=True)
    response = client.post("/login", data={"operator_no": "3005", "password": PASSWORD, "csrf_token": "forged"})
    assert response.status_code == 400
    with client.session_transaction() as session:
        assert "uid" not in session
    assert AuditLog.select().count() == 0


def test_cross_origin_post_is_refused_even_with_token(client, make_user):
    """Should refuse a post whose Origin is another site, and accept our own origin."""
    make_user("3006")
    token = client.csrf_token()
    data = {"operator_no": "3006", "password": PASSWORD, "csrf_token": token}
    assert client.post("/login", data=data, headers={"Origin": "https://evil.example"}).status_code == 400
    assert client.post("/login", data=data, headers={"Origin": "null"}).status_code == 400
    assert client.post("/login", data=data, headers={"Origin": "http://localhost"}).status_code == 302


def test_logout_needs_csrf(client, make_user):
    """Should not log out on a forged cross-site post."""
    make_user("3007")
    client.login("3007", PASSWORD)
    assert client.post("/logout").status_code == 400
    assert client.get("/agent/tickets").status_code == 200


def test_json_api_needs_header_token(make_app, make_user):
    """Should refuse a JSON post without X-CSRF-Token with a JSON error, accept it with the token, and audit."""
    app = make_app(extra_blueprints=SAMPLE)
    user = make_user("3008")
    client = app.test_client()
    assert client.post("/api/sample/echo", json={"a": 1}).status_code == 401
    client.login("3008", PASSWORD)
    refused_response = client.post("/api/sample/echo", json={"a": 1})
    assert refused_response.status_code == 400 and refused_response.get_json()["error"] == "csrf"
    ok = client.post("/api/sample/echo", json={"a": 1}, headers={"X-CSRF-Token": client.csrf_token()},
                     environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert ok.status_code == 200 and ok.get_json() == {"got": {"a": 1}}
    row = AuditLog.get(AuditLog.action == "sample_echo")
    assert (row.user_id, row.operator_no, row.obj_type, row.obj_id, row.ip) == (user.id, "3008", "sample", "1",
                                                                                  "10.1.2.3")


def test_csrf_exempt_hook(make_app):
    """Should let an explicitly exempted machine endpoint take posts without a token."""
    client = make_app(extra_blueprints=SAMPLE).test_client()
    assert client.post("/sample/hook").get_data(as_text=True) == "hooked"


def test_security_headers(client, db):
    """Should send nosniff, frame denial, a script-src 'self' policy and no-store on pages."""
    response = client.get("/login")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_forwarded_for_ignored_unless_behind_a_proxy(client, make_user):
    """Should audit the socket address, not a client-supplied X-Forwarded-For, by default."""
    make_user("3009")
    client.login("3009", PASSWORD, headers={"X-Forwarded-For": "1.2.3.4"},
                 environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert AuditLog.get(AuditLog.action == "login").ip == "10.9.9.9"


def test_not_found_page_is_localised(client, db):
    """Should answer an unknown path with a Chinese 404 page, and JSON under /api/."""
    response = client.get("/no/such/page")
    assert response.status_code == 404 and "页面不存在" in response.get_data(as_text=True)
    assert client.get("/api/nothing").get_json()["error"] == "not_found"


# ------------------------------------------------------------------------------------ pure throttle rule
T0 = dt.datetime(2026, 1, 1, 12, 0)
POLICY = ThrottlePolicy(limit=3, window=dt.timedelta(minutes=15))


def test_retry_after_below_limit():
    """Should let a caller try while failures in the window are under the limit."""
    assert retry_after([T0, T0], T0, POLICY) is None


def test_retry_after_at_limit_waits_for_oldest_to_expire():
    """Should make the caller wait until the oldest counted failure leaves the window."""
    failures = [T0, T0 + dt.timedelta(minutes=1), T0 + dt.timedelta(minutes=2)]
    assert retry_after(failures, T0 + dt.timedelta(minutes=2), POLICY) == dt.timedelta(minutes=13)
    assert retry_after(failures, T0 + dt.timedelta(minutes=15, seconds=1), POLICY) is None


def test_retry_after_ignores_failures_before_success():
    """Should not count failures older than the last successful login."""
    failures = [T0, T0 + dt.timedelta(minutes=1), T0 + dt.timedelta(minutes=2)]
    assert retry_after(failures, T0 + dt.timedelta(minutes=3), POLICY, since=T0 + dt.timedelta(minutes=1, seconds=30)) is None


def test_minutes_ceiling():
    """Should round waits up to whole minutes, never showing 0."""
    assert security.minutes_ceiling(dt.timedelta(seconds=1)) == 1
    assert security.minutes_ceiling(dt.timedelta(seconds=61)) == 2
    assert security.minutes_ceiling(dt.timedelta(0)) == 1


def test_templates_never_disable_escaping():
    """Should find no |safe or autoescape false in the UI's own templates (ticket text must stay inert)."""
    from pathlib import Path

    import webui

    root = Path(webui.__file__).parent / "templates"
    for path in root.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\|\s*safe\b|autoescape\s+false|Markup\(", text), path


def test_audit_outside_a_request(db):
    """Should write an audit row from a scheduled job, with no user and no address."""
    from webui.security import audit

    audit("reminder_sent", "ticket", 42, "overdue notice")
    row = AuditLog.get(AuditLog.action == "reminder_sent")
    assert (row.user_id, row.ip, row.obj_id, row.detail) == (None, "", "42", "overdue notice")


def test_bad_upload_limit_is_a_clear_config_error(make_app):
    """Should refuse to build the app with a malformed HOTLINE_MAX_UPLOAD_MB, naming the setting."""
    from core.config import ConfigError

    with pytest.raises(ConfigError, match="HOTLINE_MAX_UPLOAD_MB"):
        make_app(HOTLINE_MAX_UPLOAD_MB="lots")
    assert make_app(HOTLINE_MAX_UPLOAD_MB="5").config["MAX_CONTENT_LENGTH"] == 5 * 1024 * 1024


def test_oversized_post_is_refused(make_app, make_user):
    """Should answer a body over the upload limit with 413 and a page, not a crash."""
    client = make_app(HOTLINE_MAX_UPLOAD_MB="1").test_client()
    response = client.post("/login", data={"operator_no": "1", "password": "x" * (2 * 1024 * 1024),
                                           "csrf_token": client.csrf_token()})
    assert response.status_code == 413


def test_nul_characters_are_refused_everywhere(client, make_user):
    """Should refuse NUL characters in query strings and forms with 400 (PostgreSQL cannot store them)."""
    make_user("3010")
    client.login("3010", PASSWORD)
    response = client.get("/agent/tickets?q=1234%005678")
    assert response.status_code == 400
    assert client.post_form("/language", {"lang": "en\x00"}).status_code == 400
    assert client.post_form("/account/password", {"current": "a\x00", "new": "b" * 9, "confirm": "b" * 9}).status_code == 400
    assert client.get("/agent/tickets?q=12345678").status_code == 200


def test_nul_in_json_and_path(make_app, make_user):
    """Should refuse NUL in a JSON body and in a path argument with a JSON 400 / page 400."""
    foundation = ["webui.blueprints.health", "webui.auth", "webui.blueprints.home", "webui.blueprints.agent_tickets"]
    app = make_app(only_blueprints=foundation, extra_blueprints=SAMPLE)
    make_user("3011")
    client = app.test_client()
    client.login("3011", PASSWORD)
    response = client.post("/api/sample/echo", json={"a": ["ok", "b\x00"]},
                           headers={"X-CSRF-Token": client.csrf_token()})
    assert response.status_code == 400 and response.get_json()["error"] == "bad_request"
    assert client.get("/tickets/12345678").get_data(as_text=True) == "ticket 12345678"
    response = client.get("/tickets/1234%005678")
    assert response.status_code == 400 and "不允许的字符" in response.get_data(as_text=True)
