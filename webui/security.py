"""Access control, CSRF protection, login throttling and the audit trail for the web UI.

Default deny: every view must declare who may open it with exactly one of ``public``, ``login_required``
or ``require_roles(...)``. ``enforce_access`` (a before_request hook installed by ``create_app``) refuses
any endpoint that declares nothing, so a forgotten decorator shows up as a 403 rather than an open page.
The decorators also check at call time, so a view stays protected however it is reached.
"""
from __future__ import annotations

import datetime as dt
import functools
import hmac
import ipaddress
import logging
import secrets
from dataclasses import dataclass
from typing import Callable, Sequence
from urllib.parse import urlparse

from flask import (abort, current_app, flash, g, has_app_context, has_request_context, jsonify, redirect,
                   render_template, request, session, url_for)

log = logging.getLogger(__name__)

ACCESS_ATTR = "hotline_access"
CSRF_EXEMPT_ATTR = "hotline_csrf_exempt"
CSRF_SESSION_KEY = "csrf"
CSRF_FORM_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# ---------------------------------------------------------------------------------------------- access
@dataclass(frozen=True)
class Access:
    """What a view requires: kind is 'public', 'login' or 'roles' (with the accepted role codes)."""

    kind: str
    roles: frozenset[str] = frozenset()

    def allows(self, user) -> bool:
        """True if ``user`` (None when anonymous) may open a view with this requirement."""
        if self.kind == "public":
            return True
        if user is None:
            return False
        if self.kind == "login":
            return True
        return bool(user.role_set & self.roles)


def _declare(view: Callable, access: Access) -> Callable:
    existing = getattr(view, ACCESS_ATTR, None)
    if existing is not None and existing != access:
        raise TypeError(f"{view.__qualname__}: access declared twice ({existing} and {access})")

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        refusal = refuse(access)
        if refusal is not None:
            return refusal
        return view(*args, **kwargs)

    setattr(wrapper, ACCESS_ATTR, access)
    return wrapper


def public(view: Callable) -> Callable:
    """Open to everyone, logged in or not (login page, health check, citizen portal)."""
    return _declare(view, Access("public"))


def login_required(view: Callable) -> Callable:
    """Any logged-in user, whatever their roles (home, logout, own settings)."""
    return _declare(view, Access("login"))


def require_roles(*codes: str) -> Callable[[Callable], Callable]:
    """Only users holding at least one of the role codes (see caseflow.roles)."""
    if not codes or not all(isinstance(c, str) and c for c in codes):
        raise TypeError("require_roles needs at least one role code")
    unknown = set(codes) - set(known_role_codes())
    if unknown:
        raise ValueError(f"require_roles: unknown role codes {sorted(unknown)}")
    access = Access("roles", frozenset(codes))
    return lambda view: _declare(view, access)


def known_role_codes() -> tuple[str, ...]:
    """Role codes from caseflow.roles when it is there; the documented set otherwise."""
    try:
        from caseflow import roles
    except ImportError:
        return FALLBACK_ROLES
    codes = getattr(roles, "ALL", None) or getattr(roles, "ROLES", None)
    if codes is None:
        return FALLBACK_ROLES
    if isinstance(codes, dict):
        codes = codes.keys()
    return tuple(getattr(c, "value", getattr(c, "code", c)) for c in codes)


FALLBACK_ROLES = ("agent", "team_lead", "centre", "centre_leader", "dept", "dept_leader", "leader", "admin",
                  "entry")


def access_of(view: Callable | None) -> Access | None:
    """The access a view declared, or None."""
    return getattr(view, ACCESS_ATTR, None) if view is not None else None


def wants_json() -> bool:
    """True for API calls: paths under /api/, JSON bodies, or clients that prefer JSON to HTML."""
    if request.path.startswith("/api/") or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def refuse(access: Access | None):
    """The response refusing the current user, or None if ``access`` lets them in."""
    user = g.get("user")
    if access is not None and access.allows(user):
        return None
    if user is None and access is not None:
        if wants_json():
            return jsonify(error="login required"), 401
        target = request.full_path if request.query_string else request.path
        if request.endpoint != "home.index":
            # Someone who followed a link or whose session ran out learns why they see the login form.
            from webui.i18n import gettext

            flash(gettext("Please log in to continue."), "info")
        return redirect(url_for("auth.login", next=target))
    if access is None:
        log.error("endpoint %s declares no access rule: refused (add public/login_required/require_roles)",
                  request.endpoint)
    abort(403)


def enforce_access():
    """before_request: refuse endpoints that declare no access, and users the declaration excludes."""
    endpoint = request.endpoint
    if endpoint is None:  # 404/405: let Flask answer
        return None
    if endpoint == "static" or endpoint.endswith(".static"):
        return None
    view = current_app.view_functions.get(endpoint)
    return refuse(access_of(view))


# ----------------------------------------------------------------------------------------- input guard
def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def reject_nul():
    """before_request: refuse NUL characters in the path, query, form or JSON body with a 400.

    No field of the product may hold one, PostgreSQL refuses them outright, and a NUL reaching a query
    would turn bad input into a server error on one database and not the other.
    """
    if request.endpoint is None:
        return None
    found = _has_nul(request.view_args or {}) or any(
        _has_nul(k) or _has_nul(v) for k, v in request.args.items(multi=True))
    if not found and request.method in UNSAFE_METHODS:
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            found = any(_has_nul(k) or _has_nul(v) for k, v in request.form.items(multi=True))
        elif request.is_json:
            found = _has_nul(request.get_json(silent=True))
    if not found:
        return None
    log.warning("refused %s %s from %s: NUL character in the request", request.method, request.path, client_ip())
    if wants_json():
        return jsonify(error="bad_request", detail="NUL character in the request"), 400
    return render_template("error.html", code=400, title="Bad request",
                           message="The request contains characters that are not allowed."), 400


# ------------------------------------------------------------------------------------------------ CSRF
def csrf_exempt(view: Callable) -> Callable:
    """Exempt a view from the CSRF check: only for machine callers that do not use the session cookie
    (gateway callbacks, Open311). Such a view must authenticate its caller some other way."""
    setattr(view, CSRF_EXEMPT_ATTR, True)
    return view


def csrf_token() -> str:
    """The session's CSRF token, created on first use (forms embed it; JS sends it as X-CSRF-Token)."""
    token = session.get(CSRF_SESSION_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = token
    return token


class CsrfError(Exception):
    """A state-changing request without a valid CSRF token or from another origin."""


def check_csrf() -> None:
    """Raise CsrfError unless the request carries this session's token and comes from this origin."""
    origin = request.headers.get("Origin") or ""
    if origin and origin != "null":
        if urlparse(origin).netloc != request.host:
            raise CsrfError(f"cross-origin request from {origin!r}")
    elif origin == "null":
        raise CsrfError("opaque origin")
    expected = session.get(CSRF_SESSION_KEY)
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FORM_FIELD, "")
    if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
        raise CsrfError("missing or wrong CSRF token")


def protect_csrf():
    """before_request: check every unsafe method unless the view is exempt."""
    if request.method not in UNSAFE_METHODS or request.endpoint is None:
        return None
    view = current_app.view_functions.get(request.endpoint)
    if getattr(view, CSRF_EXEMPT_ATTR, False):
        return None
    try:
        check_csrf()
    except CsrfError as error:
        log.warning("CSRF refusal on %s %s from %s: %s", request.method, request.path, client_ip(), error)
        if wants_json():
            return jsonify(error="csrf", detail=str(error)), 400
        return render_template("error.html", code=400, title="Bad request",
                               message="The form has expired or was not sent from this site. "
                                       "Please reload the page and try again."), 400
    return None


# --------------------------------------------------------------------------------------- client and audit
def local_path(target: str | None) -> str | None:
    r"""``target`` when it is a path on this site to send the browser to (after a login or a form), else None.

    Browsers drop tabs and newlines inside a URL and read a backslash as a slash, so "/\t/evil.example"
    or "/\\evil.example" would become the scheme-relative "//evil.example": any control character, any
    backslash and a leading "//" (after the surrounding spaces browsers ignore) are refused outright."""
    target = (target or "").strip(" ")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 or ch in "\u2028\u2029" for ch in target):
        return None
    return target


def proxy_hops(value) -> int:
    """HOTLINE_TRUST_PROXY: how many reverse proxies stand in front of the app (each appends the address it
    saw to X-Forwarded-For); "true"/"yes" mean one, unset or "0" none. Anything else is a ConfigError."""
    from core.config import ConfigError

    text = str(value or "").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return 0
    if text in ("true", "yes", "on"):
        return 1
    if text.isascii() and text.isdigit() and int(text) <= 10:
        return int(text)
    raise ConfigError(f"HOTLINE_TRUST_PROXY: the number of proxies in front of the app (0-10), got {value!r}")


def trust_proxies(app) -> None:
    """Wrap ``app.wsgi_app`` in Werkzeug's ProxyFix for the HOTLINE_TRUST_PROXY hops in front of it: the
    client's address, the scheme and the host the browser used (X-Forwarded-For, -Proto, -Host, each the
    N-th entry from the right) replace the socket's, so redirects and absolute URLs (Open311) say https://
    and the browser's host, and the audit log and per-address limits see the client. 0 trusts nothing. The
    number is read from ``app.config`` at each request (a test may change it, as other settings)."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    inner, fixes = app.wsgi_app, {}

    def wsgi_app(environ, start_response):
        hops = proxy_hops(app.config.get("HOTLINE_TRUST_PROXY"))
        if not hops:
            return inner(environ, start_response)
        if hops not in fixes:
            fixes[hops] = ProxyFix(inner, x_for=hops, x_proto=hops, x_host=hops)
        return fixes[hops](environ, start_response)

    app.wsgi_app = wsgi_app


def socket_view(environ) -> dict[str, str]:
    """What this server itself saw before ProxyFix (trust_proxies) replaced it: REMOTE_ADDR, wsgi.url_scheme,
    HTTP_HOST; a web worker passes them on to the call process as its own hop (webui.forward)."""
    seen = {"REMOTE_ADDR": environ.get("REMOTE_ADDR") or "", "wsgi.url_scheme": environ.get("wsgi.url_scheme", ""),
            "HTTP_HOST": environ.get("HTTP_HOST") or ""}
    seen.update({name: value or "" for name, value in environ.get("werkzeug.proxy_fix.orig", {}).items()
                 if name in seen})
    return seen


def client_ip() -> str:
    """The caller's address: request.remote_addr, which behind N trusted proxies (HOTLINE_TRUST_PROXY,
    trust_proxies) is the N-th X-Forwarded-For entry from the right, the address the outermost proxy saw;
    entries further left are whatever the client sent and are never believed. Not an address there (a
    proxy passed on something else): the socket's."""
    address = request.remote_addr or ""
    try:
        return str(ipaddress.ip_address(address))[:64]
    except ValueError:
        return socket_view(request.environ)["REMOTE_ADDR"][:64]


def audit(action: str, obj_type: str = "", obj_id: object = "", detail: str = "", *, user=None,
          operator_no: str | None = None) -> None:
    """Record who did what to which object, from where. ``user`` defaults to the current user.

    Works outside a request too (scheduled jobs): then there is no current user and no address.
    """
    audit_row(action, obj_type, obj_id, detail, user=user, operator_no=operator_no).save(force_insert=True)


def audit_row(action: str, obj_type: str = "", obj_id: object = "", detail: str = "", *, user=None,
              operator_no: str | None = None):
    """``audit``'s row, unsaved: for a writer that inserts it with its own rows (caseflow.portal.submit puts it
    into the new ticket's statement)."""
    from webui.models import AuditLog

    in_request = has_request_context()
    actor = user if user is not None else (g.get("user") if in_request else None)
    return AuditLog(
        at=now_utc() if has_app_context() else _utcnow(),
        user=actor,
        operator_no=(operator_no if operator_no is not None else (actor.operator_no if actor else ""))[:32],
        action=action[:48],
        obj_type=obj_type[:48],
        obj_id=str(obj_id)[:64],
        detail=detail,
        ip=client_ip() if in_request else "",
    )


def audit_failures(action: str, since: dt.datetime, *, ip: str = "") -> list[dt.datetime]:
    """The times ``action`` was audited after ``since`` (from ``ip`` when given): a throttle's failures."""
    from webui.models import AuditLog

    query = AuditLog.select(AuditLog.at).where((AuditLog.action == action) & (AuditLog.at > since))
    if ip:
        query = query.where(AuditLog.ip == ip)
    return [row.at for row in query]


def failures_of_address_and_object(action: str, since: dt.datetime, ip: str, obj_type: str,
                                   obj_id: str = "") -> tuple[list[dt.datetime], list[dt.datetime]]:
    """The times ``action`` was audited after ``since`` from ``ip``, and (with ``obj_id``) against that
    object from any address: both in one statement (a throttle per address and per object)."""
    from webui.models import AuditLog

    of_address = AuditLog.ip == ip
    of_object = (AuditLog.obj_type == obj_type) & (AuditLog.obj_id == obj_id) if obj_id else None
    rows = list(AuditLog.select(AuditLog.at, AuditLog.ip, AuditLog.obj_type, AuditLog.obj_id).where(
        (AuditLog.action == action) & (AuditLog.at > since)
        & (of_address | of_object if of_object is not None else of_address)).tuples())
    by_address = [at for at, by, _kind, _id in rows if by == ip]
    by_object = [at for at, _by, kind, ident in rows if obj_id and (kind, ident) == (obj_type, obj_id)]
    return by_address, by_object


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def now_utc() -> dt.datetime:
    """Now as naive UTC (how the models store times), from the app's clock so tests can move time."""
    clock = current_app.extensions["hotline"].services.clock
    return clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None)


# ------------------------------------------------------------------------------------------- throttling
@dataclass(frozen=True)
class ThrottlePolicy:
    """At most ``limit`` failures within ``window``; then refuse until the oldest counted one expires."""

    limit: int
    window: dt.timedelta


def retry_after(failures: Sequence[dt.datetime], now: dt.datetime, policy: ThrottlePolicy,
                since: dt.datetime | None = None) -> dt.timedelta | None:
    """How long the caller must wait before trying again, or None if they may try now.

    ``failures`` are the times of failed attempts; only those inside the window and after ``since`` (the
    last successful login) count. Pure, so the rule is tested without a database or a clock.
    """
    start = now - policy.window
    if since is not None and since > start:
        start = since
    recent = sorted(t for t in failures if t > start)
    if len(recent) < policy.limit:
        return None
    # The attempt becomes possible when enough failures have aged out of the window.
    unlock = recent[-policy.limit] + policy.window
    return unlock - now if unlock > now else None


def minutes_ceiling(delta: dt.timedelta) -> int:
    """Whole minutes, rounded up, at least 1 (for 'try again in N minutes')."""
    seconds = max(0, int(delta.total_seconds()))
    return max(1, -(-seconds // 60))
