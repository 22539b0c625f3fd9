"""Behind nginx (deploy/nginx/hotline.conf), and for the call process behind a web worker too: the client's
address, scheme and host from X-Forwarded-For/-Proto/-Host for exactly HOTLINE_TRUST_PROXY hops
(webui.security.trust_proxies, Werkzeug's ProxyFix), nothing of them with 0 (issue 15)."""
from __future__ import annotations

import json

import pytest
from flask import request, url_for

from webui.forward import CallProcessForwarder
from webui.models import AuditLog
from webui.security import client_ip, public

# What a client could send itself, or nginx sends for it.
FORGED = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
NGINX = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "hotline.example"}


def _discovery_url(client, headers) -> str:
    answer = client.get("/open311/discovery.json", headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    return json.loads(answer.get_data(as_text=True))["endpoints"][0]["url"]


def test_no_trusted_hop_ignores_every_forwarded_header(make_app, db):
    """Should, with HOTLINE_TRUST_PROXY unset (0), build URLs from the request's own scheme and host and audit
    the socket's address, whatever X-Forwarded-* the client sent."""
    client = make_app().test_client()
    assert _discovery_url(client, FORGED) == "http://localhost/open311/v2"
    assert AuditLog.get(AuditLog.action == "open311_discovery").ip == "127.0.0.1"
    redirect = client.get("/stats", headers=FORGED)
    assert redirect.status_code in (301, 308) and redirect.headers["Location"] == "http://localhost/stats/"


def test_one_trusted_hop_takes_the_client_scheme_and_host_from_nginx(make_app, db):
    """Should, behind one proxy, build Open311's URLs and Werkzeug's absolute redirects with https:// and the
    browser's host, and audit the client's address; a forged entry left of nginx's is not believed."""
    client = make_app(HOTLINE_TRUST_PROXY="1").test_client()
    assert _discovery_url(client, NGINX) == "https://hotline.example/open311/v2"
    assert AuditLog.get(AuditLog.action == "open311_discovery").ip == "203.0.113.9"
    forged_left = {name: f"{FORGED[name]}, {value}" for name, value in NGINX.items()}
    assert _discovery_url(client, forged_left) == "https://hotline.example/open311/v2"
    assert {row.ip for row in AuditLog.select()} == {"203.0.113.9"}
    redirect = client.get("/stats", headers=NGINX)
    assert redirect.status_code in (301, 308)
    assert redirect.headers["Location"] == "https://hotline.example/stats/"
    # No header (a request from the node itself): the socket's view, unchanged.
    assert _discovery_url(client, {}) == "http://localhost/open311/v2"


def test_call_process_behind_a_worker_sees_the_client_nginx_saw(make_app, db):
    """Should pass the worker's own view (its socket's address, scheme and host) after nginx's entries, so
    the call process trusting two hops sees the browser's address, https and host, never a client's forgery."""
    worker = make_app(HOTLINE_TRUST_PROXY="1")
    forwarder = CallProcessForwarder((("127.0.0.1", 9),), trusted_hops=1)
    worker.add_url_rule("/_forwarded_headers", "forwarded_headers", public(lambda: forwarder._headers()))
    call_process = make_app(HOTLINE_TRUST_PROXY="2")

    @public
    def seen():
        return {"ip": client_ip(), "url": url_for("open311.discovery", fmt="json", _external=True),
                "host": request.host}
    call_process.add_url_rule("/_seen", "seen", seen)

    forged_left = {name: f"{FORGED[name]}, {value}" for name, value in NGINX.items()}
    sent = worker.test_client().get("/_forwarded_headers", headers=forged_left,
                                    environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_json()
    assert sent["X-Forwarded-For"].endswith("203.0.113.9, 127.0.0.1")
    assert sent["X-Forwarded-Proto"].endswith("https, http")
    headers = {name: value for name, value in sent.items() if name.startswith("X-")}
    seen_there = call_process.test_client().get("/_seen", headers=headers,
                                                environ_base={"REMOTE_ADDR": "10.0.0.21"}).get_json()
    assert seen_there == {"ip": "203.0.113.9", "url": "https://hotline.example/open311/discovery.json",
                          "host": "hotline.example"}


# (hops, the two wrong logins' (socket, X-Forwarded-For), the right login's, the audit log expected after)
LOGIN_CASES = {
    "0 hops: one socket, forged entries vary": (
        "0", [("10.9.9.9", "6.6.6.0, 203.0.113.10"), ("10.9.9.9", "6.6.6.1, 203.0.113.11")],
        ("10.9.9.9", "203.0.113.12"),
        [("login_failed", "10.9.9.9"), ("login_failed", "10.9.9.9"), ("login_throttled", "10.9.9.9")]),
    "0 hops: two sockets, one forged entry": (
        "0", [("10.9.9.1", "203.0.113.9"), ("10.9.9.2", "203.0.113.9")], ("10.9.9.1", "203.0.113.9"),
        [("login_failed", "10.9.9.1"), ("login_failed", "10.9.9.2"), ("login", "10.9.9.1")]),
    "1 hop: one socket, two clients": (
        "1", [("10.9.9.9", "6.6.6.0, 203.0.113.10"), ("10.9.9.9", "6.6.6.0, 203.0.113.11")],
        ("10.9.9.9", "6.6.6.6, 203.0.113.10"),
        [("login_failed", "203.0.113.10"), ("login_failed", "203.0.113.11"), ("login", "203.0.113.10")]),
    "1 hop: two sockets, one client": (
        "1", [("10.9.9.1", "6.6.6.0, 203.0.113.9"), ("10.9.9.2", "6.6.6.1, 203.0.113.9")],
        ("10.9.9.3", "203.0.113.9"),
        [("login_failed", "203.0.113.9"), ("login_failed", "203.0.113.9"), ("login_throttled", "203.0.113.9")]),
}


@pytest.mark.parametrize("case", list(LOGIN_CASES))
def test_login_limit_counts_the_fixed_address(make_app, make_user, case):
    """Should count failed logins per address as ProxyFix fixed it: the socket's with 0 hops (a forged
    X-Forwarded-For ignored: varying it does not escape the lock, sharing it locks nobody else), nginx's entry
    with 1 (two clients behind one nginx socket are counted apart, one client through two sockets together)."""
    hops, wrong, right, expected = LOGIN_CASES[case]
    make_user("3105")
    application = make_app(HOTLINE_TRUST_PROXY=hops)
    application.config["HOTLINE_LOGIN_LIMIT_PER_IP"] = 2
    client = application.test_client()
    for n, (socket, forwarded) in enumerate(wrong):
        client.login(f"41{n:02d}", "wrong-password", headers={"X-Forwarded-For": forwarded},
                     environ_base={"REMOTE_ADDR": socket})
    socket, forwarded = right
    client.login("3105", "correct-horse-1", headers={"X-Forwarded-For": forwarded},
                 environ_base={"REMOTE_ADDR": socket})
    assert [(row.action, row.ip) for row in AuditLog.select().order_by(AuditLog.id)] == expected
