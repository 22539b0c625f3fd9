"""Login with operator number (工号) and password, logout, the current user, and the language switch.

Passwords are argon2 hashes checked by ``caseflow.accounts``. Failed logins are counted from the audit log
(so the limit holds across restarts and processes) as three separate locks, each refused with the time to
wait and what to do: one operator number from one address (5), one address for every operator number (20),
and one operator number from all addresses together (50, a spread-out guess). Failures from an attacker's
address therefore do not lock the operator out at their own desk; an administrator's unlock
(``login_unlock`` in the audit log) starts the operator's counts afresh.

Sessions carry the user's session version (``User.session_version``); logout, a password change and
disabling the user bump it, so every earlier session, a copied cookie included, is refused.
"""
from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from werkzeug.local import LocalProxy

from caseflow import accounts
from caseflow.models import User
from webui import security
from webui.i18n import best_language, normalise_language
from webui.security import ThrottlePolicy, audit, client_ip, login_required, public

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

SESSION_USER_KEY = "uid"
SESSION_LANG_KEY = "lang"
SESSION_VERSION_KEY = "sv"
MAX_OPERATOR_NO = 16
MAX_PASSWORD = 256

current_user = LocalProxy(lambda: g.get("user"))
"""The logged-in ``caseflow.models.User`` for this request, or None."""


def load_user() -> None:
    """before_request: put the session's user (if still active) and the UI language on ``g``."""
    g.user = None
    uid = session.get(SESSION_USER_KEY)
    if uid is not None:
        user = User.get_or_none((User.id == uid) & (User.active == True))  # noqa: E712 - peewee expression
        if user is not None and session.get(SESSION_VERSION_KEY) != user.session_version:
            user = None  # ended by a logout elsewhere, a password change or disabling: a revoked cookie
        if user is None:
            session.pop(SESSION_USER_KEY, None)
            session.pop(SESSION_VERSION_KEY, None)
        g.user = user
    g.lang = choose_language(g.user)


def choose_language(user) -> str:
    """The user's own language, else the one picked on the login page, else the browser's."""
    if user is not None:
        code = normalise_language(user.language)
        if code:
            return code
    code = normalise_language(session.get(SESSION_LANG_KEY))
    if code:
        return code
    return best_language(request.headers.get("Accept-Language"))


def safe_next(target: str | None) -> str | None:
    """A local path to go to after login, or None: refuses absolute and scheme-relative URLs."""
    return security.local_path(target)


LOCK_MESSAGES = {
    "operator_address": "Too many failed logins for this operator number from this address. Please try again "
                        "in %(minutes)s minutes, or ask an administrator to unlock your account.",
    "account": "Too many failed logins for this account. It is locked for %(minutes)s minutes; an administrator "
               "can unlock it sooner.",
    "address": "Too many failed logins from this address. Please try again in %(minutes)s minutes, or ask an "
               "administrator to unlock your account.",
}
"""What the login page says for each lock (catalogue keys): what happened and what to do."""


def _policies() -> dict[str, ThrottlePolicy]:
    config = current_app.config
    window = dt.timedelta(minutes=config["HOTLINE_LOGIN_WINDOW_MINUTES"])
    return {"operator_address": ThrottlePolicy(config["HOTLINE_LOGIN_LIMIT_PER_OPERATOR"], window),
            "account": ThrottlePolicy(config.get("HOTLINE_LOGIN_LIMIT_PER_ACCOUNT", 50), window),
            "address": ThrottlePolicy(config["HOTLINE_LOGIN_LIMIT_PER_IP"], window)}


def _last(action: str, condition) -> dt.datetime | None:
    from webui.models import AuditLog

    row = (AuditLog.select(AuditLog.at).where((AuditLog.action == action) & condition)
           .order_by(AuditLog.at.desc()).first())
    return row.at if row else None


def login_lock(operator_no: str, ip: str, now: dt.datetime) -> tuple[str, dt.timedelta] | None:
    """The lock that holds this operator number at this address (its LOCK_MESSAGES key) and how long it has
    left, the longest if several hold; None: may try now."""
    from webui.models import AuditLog

    policies = _policies()
    longest = max(policy.window for policy in policies.values())
    recent = list(AuditLog.select(AuditLog.at, AuditLog.operator_no, AuditLog.ip).where(
        (AuditLog.action == "login_failed") & (AuditLog.at > now - longest)
        & ((AuditLog.operator_no == operator_no) | (AuditLog.ip == ip))))
    user = User.get_or_none(User.operator_no == operator_no)
    unlocked = _last("login_unlock", (AuditLog.obj_type == "user") & (AuditLog.obj_id == str(user.id))) \
        if user is not None else None
    last_ok = _last("login", AuditLog.operator_no == operator_no)
    # A success or an unlock restarts the operator's own counts; only an unlock lifts an address's lock,
    # and only for the operator it was given to.
    since_ok = max((t for t in (last_ok, unlocked) if t is not None), default=None)
    failures = {
        "operator_address": [r.at for r in recent if r.operator_no == operator_no and r.ip == ip],
        "account": [r.at for r in recent if r.operator_no == operator_no],
        "address": [r.at for r in recent if r.ip == ip] if ip else [],
    }
    since = {"operator_address": since_ok, "account": since_ok, "address": unlocked}
    waits = [(security.retry_after(failures[kind], now, policy, since=since[kind]), kind)
             for kind, policy in policies.items()]
    held = [(wait, kind) for wait, kind in waits if wait is not None]
    if not held:
        return None
    wait, kind = max(held)
    return kind, wait


def locked_addresses(user: User, now: dt.datetime) -> list[tuple[str, str, dt.timedelta]]:
    """For the administrator's user page: the addresses from which ``user`` is locked out now, with the lock
    (LOCK_MESSAGES key) and its time left; the address "" stands for the account lock (every address)."""
    from webui.models import AuditLog

    window = max(policy.window for policy in _policies().values())
    ips = {row.ip for row in AuditLog.select(AuditLog.ip).where(
        (AuditLog.action == "login_failed") & (AuditLog.operator_no == user.operator_no)
        & (AuditLog.at > now - window)).distinct()}
    found = []
    for ip in sorted(ips):
        lock = login_lock(user.operator_no, ip, now)
        if lock is not None:
            found.append(("" if lock[0] == "account" else ip, lock[0], lock[1]))
    return sorted(set(found))



def _verify(user: User | None, password: str) -> bool:
    """Check the password; with no such user, still spend the time of a hash check (no user probing)."""
    if user is None:
        accounts.verify_password(_dummy_hash(), password)
        return False
    return accounts.verify_password(user.password_hash, password)


def _dummy_hash() -> str:
    state = current_app.extensions["hotline"]
    if state.dummy_hash is None:
        state.dummy_hash = accounts.hash_password("not-a-password-of-anyone")
    return state.dummy_hash


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    """The login form; on success the session holds the user id and the user goes to their desk."""
    if request.method == "GET":
        if g.user is not None:
            return redirect(safe_next(request.args.get("next")) or url_for("home.index"))
        return render_template("auth/login.html", next=safe_next(request.args.get("next")) or "",
                               operator_no="")
    operator_no = request.form.get("operator_no", "").strip()
    password = request.form.get("password", "")
    target = safe_next(request.form.get("next"))
    _ = current_app.extensions["hotline"].gettext

    def again(message: str, status: int, **values):
        flash(_(message, **values), "error")
        return render_template("auth/login.html", next=target or "", operator_no=operator_no[:MAX_OPERATOR_NO]), status

    if not operator_no or not password:
        return again("Please enter your operator number and password.", 400)
    if len(operator_no) > MAX_OPERATOR_NO or len(password) > MAX_PASSWORD:
        # Too long to be real: count it as a failure without hashing megabytes.
        audit("login_failed", "user", "", "oversized input", user=None, operator_no=operator_no[:32])
        return again("Wrong operator number or password.", 401)
    ip = client_ip()
    now = security.now_utc()
    lock = login_lock(operator_no, ip, now)
    if lock is not None:
        kind, wait = lock
        audit("login_throttled", "user", "", f"{kind} lock, retry after {int(wait.total_seconds())}s", user=None,
              operator_no=operator_no)
        return again(LOCK_MESSAGES[kind], 429, minutes=security.minutes_ceiling(wait))
    user = User.get_or_none(User.operator_no == operator_no)
    if not _verify(user, password):
        audit("login_failed", "user", user.id if user else "", "wrong password" if user else "unknown operator",
              user=None, operator_no=operator_no)
        return again("Wrong operator number or password.", 401)
    if not user.active:
        audit("login_failed", "user", user.id, "account disabled", user=None, operator_no=operator_no)
        return again("This account is disabled. Please contact the administrator.", 403)
    accounts.rehash_if_needed(user, password)
    # A fresh session on login: nothing from before (a planted session id, an old token) survives.
    language = session.get(SESSION_LANG_KEY)
    session.clear()
    session.permanent = True
    session[SESSION_USER_KEY] = user.id
    session[SESSION_VERSION_KEY] = user.session_version
    if language:
        session[SESSION_LANG_KEY] = language
        if normalise_language(language) and user.language != language:
            # A language picked on the login page is an explicit choice: keep it for this user.
            accounts.set_language(user, language)
    security.csrf_token()  # a new token for the new session
    g.user = user
    g.lang = choose_language(user)
    audit("login", "user", user.id, "", user=user)
    log.info("login %s from %s", user.operator_no, ip)
    flash(_("Welcome, %(name)s.", name=user.name), "info")
    return redirect(target or url_for("home.index"))


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """End the session (POST only, with the CSRF token, so a link elsewhere cannot log anyone out), and every
    other session of the user with it: a copied cookie must not outlive the logout."""
    user = g.user
    accounts.end_all_sessions(user)
    audit("logout", "user", user.id, "", user=user)
    language = session.get(SESSION_LANG_KEY) or user.language
    session.clear()
    if language:
        session[SESSION_LANG_KEY] = language
    security.csrf_token()
    g.user = None
    flash(current_app.extensions["hotline"].gettext("You have been logged out.", lang=language), "info")
    return redirect(url_for("auth.login"))


@bp.route("/language", methods=["POST"])
@public
def set_language():
    """Switch the UI language; kept on the user when logged in, in the session otherwise."""
    code = normalise_language(request.form.get("lang"))
    if code is None:
        abort(400)
    session[SESSION_LANG_KEY] = code
    if g.user is not None:
        accounts.set_language(g.user, code)
    return redirect(safe_next(request.form.get("next")) or url_for("home.index"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Let a user replace their password (demo and initial passwords must not stay in use)."""
    if request.method == "GET":
        return render_template("auth/password.html")
    _ = current_app.extensions["hotline"].gettext
    current = request.form.get("current", "")
    new = request.form.get("new", "")
    confirm = request.form.get("confirm", "")
    minimum = getattr(accounts, "MIN_PASSWORD", 8)
    error = None
    if len(current) > MAX_PASSWORD or not accounts.verify_password(g.user.password_hash, current):
        audit("password_change_failed", "user", g.user.id, "wrong current password")
        error = ("The current password is wrong.", {})
    elif len(new) < minimum or len(new) > MAX_PASSWORD:
        error = ("The new password needs %(min)s to %(max)s characters.", {"min": minimum, "max": MAX_PASSWORD})
    elif new != confirm:
        error = ("The two new passwords differ.", {})
    elif new == current:
        error = ("The new password must differ from the current one.", {})
    if error is not None:
        flash(_(error[0], **error[1]), "error")
        return render_template("auth/password.html"), 400
    accounts.set_password(g.user, new)  # ends every session of the user ...
    session[SESSION_VERSION_KEY] = g.user.session_version  # ... but this one, which proved the password
    audit("password_changed", "user", g.user.id, "")
    flash(_("Your password has been changed."), "info")
    return redirect(url_for("home.index"))
