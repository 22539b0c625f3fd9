"""argon2 off the gevent hub and the per-address login limit behind proxies (issue 16 item 10)."""
from __future__ import annotations

import pytest

from caseflow import accounts
from tests.ticks import ticks_during
from webui.models import AuditLog

from .conftest import PASSWORD


@pytest.fixture
def real_argon2(monkeypatch):
    """argon2id at the library's recommended cost (the suite runs the cheapest profile)."""
    monkeypatch.delenv("HOTLINE_ARGON2_PROFILE", raising=False)
    accounts._password_hasher.cache_clear()
    yield
    accounts._password_hasher.cache_clear()


def test_login_lets_other_greenlets_run(client, make_user, real_argon2):
    """Should hash and check passwords in the thread pool: a ticker greenlet keeps ticking while a login
    (a good one, a wrong password, an unknown operator) runs argon2 at full cost."""
    make_user("3101")
    user = make_user("3102")
    user.password_hash = accounts.hash_password(PASSWORD)  # at full cost, as production stores it
    user.save()
    for operator_no, password in (("3102", PASSWORD), ("3102", "wrong-password"), ("9999", "whatever-1")):
        ticks, response = ticks_during(lambda: client.login(operator_no, password))
        assert response.status_code in (200, 302, 401)
        assert ticks >= 3, (operator_no, password, ticks)
    # The same without any database query in between (a cooperative driver yields on its own).
    ticks, digest = ticks_during(lambda: accounts.hash_password("another-password"))
    assert ticks >= 3
    ticks, matched = ticks_during(lambda: accounts.verify_password(digest, "another-password"))
    assert ticks >= 3 and matched
    ticks, matched = ticks_during(lambda: accounts.verify_password(digest, "not-it"))
    assert ticks >= 3 and not matched


@pytest.mark.parametrize("hops, forwarded, expected", [
    ("1", "6.6.6.6, 203.0.113.9", "203.0.113.9"),          # a forged left-most entry is not believed
    ("1", "203.0.113.9", "203.0.113.9"),
    ("2", "6.6.6.6, 203.0.113.9, 10.0.0.2", "203.0.113.9"),  # two proxies: the second from the right
    ("2", "203.0.113.9", "10.9.9.9"),                       # fewer entries than hops: the socket's
    ("true", "6.6.6.6, 203.0.113.9", "203.0.113.9"),        # the old boolean means one proxy
    ("1", "", "10.9.9.9"),
    ("1", "not-an-address", "10.9.9.9"),
])
def test_forwarded_for_trusts_only_the_configured_proxy_hops(make_app, make_user, hops, forwarded, expected):
    """Should take the address the nearest trusted proxy saw (right-most N of X-Forwarded-For), never a
    client-supplied left-most entry, and fall back to the socket address when the header is short or bad."""
    make_user("3103")
    client = make_app(HOTLINE_TRUST_PROXY=hops).test_client()
    client.login("3103", PASSWORD, headers={"X-Forwarded-For": forwarded} if forwarded else {},
                 environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert AuditLog.get(AuditLog.action == "login").ip == expected


def test_forged_forwarded_for_does_not_escape_the_address_limit(make_app, make_user):
    """Should count failed logins per real client behind the proxy however the left-most entry varies."""
    make_user("3104")
    application = make_app(HOTLINE_TRUST_PROXY="1")
    application.config["HOTLINE_LOGIN_LIMIT_PER_IP"] = 3
    client = application.test_client()
    for n in range(3):
        client.login(f"40{n:02d}", "wrong-password", headers={"X-Forwarded-For": f"6.6.6.{n}, 203.0.113.9"})
    response = client.login("3104", PASSWORD, headers={"X-Forwarded-For": "6.6.6.99, 203.0.113.9"})
    assert not any(row.action == "login" for row in AuditLog.select()), response.status_code
