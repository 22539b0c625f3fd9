"""Login, logout, throttling and session handling of the web UI."""
from __future__ import annotations

from caseflow.models import User
from webui.app import Services
from webui.models import AuditLog

from .conftest import PASSWORD


def audit_actions(operator_no: str) -> list[str]:
    return [row.action for row in AuditLog.select().where(AuditLog.operator_no == operator_no).order_by(AuditLog.id)]


def test_login_success_goes_to_desk_and_is_audited(client, make_user):
    """Should log an agent in, send them to the ticket list and audit the login with the address."""
    user = make_user("1001")
    response = client.login("1001", PASSWORD, environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff"
    assert client.get("/staff").headers["Location"] == "/agent/tickets"
    with client.session_transaction() as session:
        assert session["uid"] == user.id
    row = AuditLog.get(AuditLog.action == "login")
    assert row.user_id == user.id and row.ip == "10.0.0.7" and row.operator_no == "1001"


def test_wrong_password_is_refused_with_a_clear_message(client, make_user):
    """Should refuse a wrong password with 401, say so in Chinese, and audit the failure."""
    make_user("1002")
    response = client.login("1002", "not-the-password")
    assert response.status_code == 401
    assert "工号或密码错误" in response.get_data(as_text=True)
    assert audit_actions("1002") == ["login_failed"]
    with client.session_transaction() as session:
        assert "uid" not in session


def test_unknown_operator_gets_the_same_message(client, db):
    """Should not reveal whether an operator number exists."""
    response = client.login("9999", "whatever-password")
    assert response.status_code == 401
    assert "工号或密码错误" in response.get_data(as_text=True)
    assert audit_actions("9999") == ["login_failed"]


def test_empty_and_oversized_input(client, make_user):
    """Should answer empty fields with 400 and absurdly long ones with a plain refusal, never a crash."""
    make_user("1003")
    assert client.login("", "").status_code == 400
    assert client.login("1003", "").status_code == 400
    assert client.login("1" * 5000, PASSWORD).status_code == 401
    assert client.login("1003", "x" * 100_000).status_code == 401
    assert client.login("1003", PASSWORD).status_code == 302


def test_disabled_account_cannot_log_in(client, make_user):
    """Should refuse an inactive account even with the right password."""
    make_user("1004", active=False)
    response = client.login("1004", PASSWORD)
    assert response.status_code == 403
    assert "已停用" in response.get_data(as_text=True)


def test_deactivated_user_loses_the_session(client, make_user):
    """Should treat a user deactivated after logging in as logged out on the next request."""
    user = make_user("1005")
    client.login("1005", PASSWORD)
    assert client.get("/agent/tickets").status_code == 200
    User.update(active=False).where(User.id == user.id).execute()
    response = client.get("/agent/tickets")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_rate_limit_per_operator_number(make_app, make_user, clock):
    """Should lock an operator number after 5 failures, even for the right password, until the window passes."""
    app = make_app(services=Services(clock=clock))
    client = app.test_client()
    make_user("1006")
    for _ in range(5):
        assert client.login("1006", "wrong-password").status_code == 401
    response = client.login("1006", PASSWORD)
    assert response.status_code == 429
    text = response.get_data(as_text=True)
    assert "登录失败次数过多" in text and "15 分钟" in text
    assert audit_actions("1006")[-1] == "login_throttled"
    clock.advance(minutes=10)
    response = client.login("1006", PASSWORD)
    assert response.status_code == 429 and "5 分钟" in response.get_data(as_text=True)
    clock.advance(minutes=5, seconds=1)
    assert client.login("1006", PASSWORD).status_code == 302


def test_rate_limit_counts_only_failures_after_last_success(make_app, make_user, clock):
    """Should start counting afresh after a successful login."""
    app = make_app(services=Services(clock=clock))
    client = app.test_client()
    make_user("1007")
    for _ in range(4):
        client.login("1007", "wrong-password")
        clock.advance(seconds=1)
    assert client.login("1007", PASSWORD).status_code == 302
    client.logout()
    clock.advance(seconds=1)
    for _ in range(4):
        assert client.login("1007", "wrong-password").status_code == 401
        clock.advance(seconds=1)
    assert client.login("1007", PASSWORD).status_code == 302


def test_rate_limit_per_address(make_app, make_user, clock):
    """Should lock an address that tries many operator numbers, while other addresses still get in."""
    app = make_app(services=Services(clock=clock))
    client = app.test_client()
    make_user("1008")
    attacker = {"REMOTE_ADDR": "192.0.2.9"}
    for n in range(20):
        assert client.login(f"20{n:02d}", "guess-password", environ_base=attacker).status_code == 401
    assert client.login("1008", PASSWORD, environ_base=attacker).status_code == 429
    other = app.test_client()
    assert other.login("1008", PASSWORD, environ_base={"REMOTE_ADDR": "192.0.2.10"}).status_code == 302


def test_logout_is_post_only_and_audited(client, make_user):
    """Should log out on POST with the CSRF token, refuse GET, and audit the logout."""
    make_user("1009")
    client.login("1009", PASSWORD)
    assert client.get("/logout").status_code == 405
    response = client.logout()
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/agent/tickets").status_code == 302
    assert audit_actions("1009") == ["login", "logout"]
    assert "您已退出登录" in client.get("/login").get_data(as_text=True)


def test_next_goes_back_but_never_off_site(client, make_user):
    """Should return to the page asked for, and ignore absolute or scheme-relative targets."""
    make_user("1010")
    first = client.get("/agent/tickets?page=1")
    assert first.headers["Location"] == "/login?next=/agent/tickets?page%3D1"
    token = client.csrf_token()
    response = client.post("/login", data={"operator_no": "1010", "password": PASSWORD, "csrf_token": token,
                                           "next": "/agent/tickets?page=1"})
    assert response.headers["Location"] == "/agent/tickets?page=1"
    client.logout()
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        response = client.post("/login", data={"operator_no": "1010", "password": PASSWORD,
                                               "csrf_token": client.csrf_token(), "next": target})
        assert response.headers["Location"] == "/staff", target
        client.logout()


def test_session_is_renewed_on_login(client, make_user):
    """Should give a new CSRF token after login so a token planted before login is useless."""
    make_user("1011")
    before = client.csrf_token()
    client.login("1011", PASSWORD)
    assert client.csrf_token() != before


def test_session_cookie_flags(make_app, make_user):
    """Should set HttpOnly and SameSite=Lax on the session cookie, and Secure in production."""
    make_user("1012")
    client = make_app().test_client()
    response = client.login("1012", PASSWORD)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    prod = make_app(mode="production", secret_key="p" * 40, esl="127.0.0.1:8021:s3cret",
                    HOTLINE_RECORD_KEY="r" * 40)
    assert prod.config["SESSION_COOKIE_SECURE"] is True
    assert prod.config["SESSION_COOKIE_HTTPONLY"] is True


def test_password_hash_upgraded_after_login(client, make_user):
    """Should rehash a password stored with weaker argon2 parameters at the next good login."""
    from argon2 import PasswordHasher

    user = make_user("1013")
    weak = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    User.update(password_hash=weak).where(User.id == user.id).execute()
    assert client.login("1013", PASSWORD).status_code == 302
    assert User.get_by_id(user.id).password_hash != weak


def test_change_password(client, make_user):
    """Should change the password after checking the current one, refuse bad new ones clearly, and audit."""
    make_user("1014")
    client.login("1014", PASSWORD)
    page = client.get("/account/password")
    assert page.status_code == 200 and "修改密码" in page.get_data(as_text=True)
    cases = [
        ({"current": "wrong-one", "new": "brand-new-pass", "confirm": "brand-new-pass"}, "当前密码不正确"),
        ({"current": PASSWORD, "new": "short", "confirm": "short"}, "新密码长度"),
        ({"current": PASSWORD, "new": "brand-new-pass", "confirm": "brand-new-pasS"}, "不一致"),
        ({"current": PASSWORD, "new": PASSWORD, "confirm": PASSWORD}, "不能与当前密码相同"),
        ({"current": PASSWORD, "new": "x" * 300, "confirm": "x" * 300}, "新密码长度"),
    ]
    for form, message in cases:
        response = client.post_form("/account/password", form)
        assert response.status_code == 400 and message in response.get_data(as_text=True), form
    assert client.post("/account/password", data=cases[0][0]).status_code == 400  # no CSRF token
    response = client.post_form("/account/password",
                                {"current": PASSWORD, "new": "brand-new-pass", "confirm": "brand-new-pass"})
    assert response.status_code == 302
    client.logout()
    assert client.login("1014", PASSWORD).status_code == 401
    assert client.login("1014", "brand-new-pass").status_code == 302
    assert "password_changed" in audit_actions("1014") and "password_change_failed" in audit_actions("1014")


def test_expired_session_says_why(client, db):
    """Should tell a visitor sent to the login form from a desk page that they need to log in."""
    response = client.get("/agent/tickets", follow_redirects=True)
    assert "请先登录" in response.get_data(as_text=True)
    assert "请先登录" not in client.get("/staff", follow_redirects=True).get_data(as_text=True)


def copy_session(source, app):
    """A second client holding a copy of ``source``'s session cookie (a stolen or copied cookie)."""
    name = app.config["SESSION_COOKIE_NAME"]
    thief = app.test_client()
    thief.set_cookie(name, source.get_cookie(name).value)
    return thief


def test_copied_cookie_dies_with_the_logout(app, client, make_user):
    """Should refuse a copy of the session cookie once its owner logged out (every session of the user ends)."""
    make_user("1015")
    client.login("1015", PASSWORD)
    thief = copy_session(client, app)
    other_desk = app.test_client()
    other_desk.login("1015", PASSWORD)
    assert thief.get("/agent/tickets").status_code == 200
    client.logout()
    response = thief.get("/agent/tickets")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert other_desk.get("/agent/tickets").status_code == 302  # logout everywhere
    assert client.login("1015", PASSWORD).status_code == 302
    assert client.get("/agent/tickets").status_code == 200


def test_copied_cookie_dies_with_a_password_change(app, client, make_user):
    """Should end every other session at a password change, and keep the session that made it."""
    make_user("1016")
    client.login("1016", PASSWORD)
    thief = copy_session(client, app)
    response = client.post_form("/account/password",
                                {"current": PASSWORD, "new": "brand-new-pass", "confirm": "brand-new-pass"})
    assert response.status_code == 302
    assert client.get("/agent/tickets").status_code == 200
    assert thief.get("/agent/tickets").status_code == 302


def test_disabling_a_user_ends_their_sessions_for_good(app, client, make_user):
    """Should keep a session ended by disabling dead after the administrator enables the user again, and
    end the sessions when the administrator sets a new password."""
    user = make_user("1017")
    make_user("1099", roles=("admin",))
    client.login("1017", PASSWORD)
    admin = app.test_client()
    admin.login("1099", PASSWORD)
    form = {"name": user.name, "roles": "agent", "active": "1"}
    assert admin.post_form(f"/admin/org/users/{user.id}", {**form, "active": ""}).status_code == 303
    assert admin.post_form(f"/admin/org/users/{user.id}", form).status_code == 303
    assert User.get_by_id(user.id).active
    assert client.get("/agent/tickets").status_code == 302
    client.login("1017", PASSWORD)
    assert admin.post_form(f"/admin/org/users/{user.id}", form).status_code == 303  # a plain edit: stays
    assert client.get("/agent/tickets").status_code == 200
    assert admin.post_form(f"/admin/org/users/{user.id}", {**form, "password": "set-by-admin-1"}).status_code == 303
    assert client.get("/agent/tickets").status_code == 302


def test_session_version_step_adds_the_column(db):
    """Should add users' session version to a database made before it, keeping the users."""
    from core.migrations import SchemaMigration
    from hotline.schema import all_models, create_schema

    from caseflow.accounts import create_user

    create_user("1018", "老用户", PASSWORD)
    db.execute_sql('ALTER TABLE "user" DROP COLUMN "session_version"')
    SchemaMigration.delete().where(SchemaMigration.name == "0006_user_session_version").execute()
    assert "0006_user_session_version" in create_schema(all_models())
    assert User.get(User.operator_no == "1018").session_version == 0


def test_failures_elsewhere_do_not_lock_the_operator_at_their_desk(make_app, make_user, clock):
    """Should lock an operator number only at the address that failed (5 there), say what to do, and lock
    the account everywhere only after many failures from all addresses together."""
    app = make_app(services=Services(clock=clock))
    make_user("1019", roles=("admin",))
    attacker, desk = app.test_client(), app.test_client()
    for _ in range(5):
        assert attacker.login("1019", "wrong-password", environ_base={"REMOTE_ADDR": "192.0.2.66"}).status_code == 401
    response = attacker.login("1019", PASSWORD, environ_base={"REMOTE_ADDR": "192.0.2.66"})
    assert response.status_code == 429
    assert "该工号在本地址登录失败次数过多" in response.get_data(as_text=True)
    assert "请管理员为您解锁" in response.get_data(as_text=True)
    assert desk.login("1019", PASSWORD, environ_base={"REMOTE_ADDR": "10.0.0.5"}).status_code == 302
    desk.logout()
    clock.advance(seconds=1)
    for n in range(50):  # spread over many addresses
        attacker.login("1019", "wrong-password", environ_base={"REMOTE_ADDR": f"198.51.100.{n}"})
    response = desk.login("1019", PASSWORD, environ_base={"REMOTE_ADDR": "10.0.0.5"})
    assert response.status_code == 429 and "该账号登录失败次数过多" in response.get_data(as_text=True)


def test_administrator_unlocks_a_locked_operator(make_app, make_user, clock):
    """Should show an operator's locks on the administrator's user page and lift them with an audited,
    CSRF-protected unlock; the lock message is in English for an English browser."""
    app = make_app(services=Services(clock=clock))
    user = make_user("1020")
    make_user("1098", roles=("admin",))
    locked = app.test_client()
    for _ in range(5):
        locked.login("1020", "wrong-password")
    response = locked.login("1020", PASSWORD, headers={"Accept-Language": "en"})
    assert response.status_code == 429
    assert "ask an administrator to unlock your account" in response.get_data(as_text=True)
    admin = app.test_client()
    admin.login("1098", PASSWORD, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    page = admin.get(f"/admin/org/users/{user.id}").get_data(as_text=True)
    assert "该工号在此地址失败过多" in page and "127.0.0.1" in page
    assert admin.post(f"/admin/org/users/{user.id}/unlock").status_code == 400  # no CSRF token
    assert locked.login("1020", PASSWORD).status_code == 429
    assert admin.post_form(f"/admin/org/users/{user.id}/unlock").status_code == 303
    row = AuditLog.get(AuditLog.action == "login_unlock")
    assert row.operator_no == "1098" and row.obj_id == str(user.id)
    assert "该用户当前没有登录锁定" in admin.get(f"/admin/org/users/{user.id}").get_data(as_text=True)
    assert locked.login("1020", PASSWORD).status_code == 302
    agent = app.test_client()
    agent.login("1020", PASSWORD)
    assert agent.post_form(f"/admin/org/users/{user.id}/unlock").status_code == 403
