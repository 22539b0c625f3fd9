"""The Flask app factory: explicit blueprint list, per-request database connection, security hooks,
i18n, template filters and the ``Services`` the web UI gets from run.py.

Long because: the factory and what it installs on the app (blueprints, the per-request connection,
security headers, error pages, the template filters and labels the base templates use) read in order as
one; the demo loader at the end is 25 lines.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

import peewee
from flask import Flask, current_app, g, has_request_context, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import RequestRedirect

from caseflow import pins
from caseflow.privacy import mask_name, mask_phone
from core.clock import Clock
from core.config import Config, ConfigError, setting_names
from core.db import DatabaseTimeout, connection_lost, database
from webui import page_cache

if TYPE_CHECKING:  # annotations only: the web UI is handed these parts, it does not build them
    from acd.dispatcher import Acd
    from acd.seats import SeatPasswords
    from channels.settings import EmailSettings, SmsSettings
    from ivr.live import LiveCalls
    from ivr.store import TreeStore
    from recorder.fax import FaxService

log = logging.getLogger(__name__)

# Every blueprint of the web UI, in registration order: "module" (exposing ``bp``, optionally ``MESSAGES``
# and ``NAV``). Helpers adding an area append their module here; nothing registers itself.
BLUEPRINTS: list[str] = [
    "webui.blueprints.health",
    "webui.auth",
    "webui.blueprints.home",
    "webui.blueprints.portal",
    "webui.blueprints.portal_info",
    "webui.blueprints.portal_chat",
    "webui.blueprints.agent_tickets",
    "webui.blueprints.audit",
    "webui.blueprints.recordings",
    "webui.blueprints.calls",
    "webui.blueprints.agent_desk",
    "webui.blueprints.softphone",
    "webui.blueprints.desk_chat",
    "webui.blueprints.supervisor",
    "webui.blueprints.ivr_admin",
    "webui.blueprints.tickets",
    "webui.blueprints.centre",
    "webui.blueprints.dept",
    "webui.blueprints.kb",
    "webui.blueprints.entry",
    "webui.blueprints.admin_org",
    "webui.blueprints.admin_regions",
    "webui.blueprints.admin_acd",
    "webui.blueprints.admin_seats",
    "webui.blueprints.stats",
    "webui.blueprints.stats_reports",
    "webui.blueprints.stats_hotspots",
    "webui.blueprints.stats_screen",
    "webui.blueprints.vendor",
    "webui.blueprints.sms_gateway",
    "webui.blueprints.ticket_mail",
    "webui.blueprints.messages",
    "webui.blueprints.open311",
    "webui.blueprints.admin_api",
    "webui.blueprints.admin_dialout",
    "webui.blueprints.centre_notices",
    "webui.blueprints.ops",
]


@dataclass
class Services:
    """What the running process lends the web UI (run.py builds it; tests pass their own).

    switch_status() -> {server name: "connected" | "disconnected" | ..., or the inbound connection's
    status dict with "state" and "dropped_events"} for every FreeSWITCH;
    active_calls() -> calls in progress on the outbound server; http_status() -> the web server's
    connections and limits (webui.server.HttpServer.status), None before it started. Missing callables
    mean "no switch wired": every configured server reports disconnected and active calls are 0.

    The running parts below are None when the process runs none (tests, tools): each page says so or
    builds what it needs from the config. An area that needs another part adds a typed field here and
    hotline.product fills it; nothing is looked up by a string.
    """

    switch_status: Callable[[], Mapping[str, str | Mapping[str, Any]]] | None = None
    active_calls: Callable[[], int] | None = None
    http_status: Callable[[], Mapping[str, Any] | None] | None = None
    clock: Clock | None = None
    acd: Acd | None = None  # the ACD dispatcher: desk, console, queue administration, chat
    fax: FaxService | None = None  # faxes typed on a ticket; without it one is built from the config
    trees: TreeStore | None = None  # IVR tree versions; the IVR pages make one when absent
    ivr_live: LiveCalls | None = None  # where the callers in the IVR are now (HotlineIvrServices.live)
    sms_settings: SmsSettings | None = None  # the SMS channel's settings (/sms/*, portal codes)
    email_settings: EmailSettings | None = None  # the e-mail channel's settings (a ticket's mail)
    seats: SeatPasswords | None = None  # the seats' own SIP passwords and FreeSWITCH's directory of them
    # originate(user, number) -> call uuid for the missed-call list's call-back; without it the ACD dials.
    originate_callback: Callable[[Any, str], str] | None = None
    # The pub/sub bus between the app's processes (core.pubsub): the desk's event stream listens on it.
    bus: Any = None
    # A web worker's road to the call process (webui.forward.CallProcessForwarder): the pages that drive the
    # running ACD are passed on to it. None in the call process itself.
    forward: Callable[[], Any] | None = None
    # The analysis process (stats.analysis.AnalysisClient): the dispatch form's suggestions. Without it the
    # page makes a client for the configured socket.
    analysis: Any = None


@dataclass(frozen=True)
class NavItem:
    """A navigation entry: shown to users holding one of ``roles`` when ``endpoint`` exists."""

    label: str
    endpoint: str
    roles: frozenset[str]
    order: int = 100


@dataclass
class HotlineState:
    """Per-app state reachable as ``current_app.extensions["hotline"]``."""

    config: Config
    services: Services
    catalogue: Any
    nav: list[NavItem]
    dummy_hash: str | None = None

    def gettext(self, message: str, lang: str | None = None, **values) -> str:
        """Translate into ``lang`` (default: the request's language)."""
        scope = request.blueprint if has_request_context() else None
        return self.catalogue.gettext(lang or g.get("lang") or "zh", message, _scope=scope, **values)


# Each role's desk: the path another area serves. A user with several roles lands on the first that exists,
# so supervising roles come before the desks they supervise.
DESKS: list[tuple[str, str, str]] = [
    ("team_lead", "/supervisor", "Supervisor console"),
    ("centre_leader", "/centre", "Hotline centre"),
    ("centre", "/centre", "Hotline centre"),
    ("dept_leader", "/dept", "Department workbench"),
    ("dept", "/dept", "Department workbench"),
    ("leader", "/stats", "Statistics"),
    ("agent", "/agent/tickets", "Ticket list"),
    ("entry", "/entry", "Data entry"),
    ("admin", "/admin", "Administration"),
    ("admin", "/admin/org/", "Administration"),
    ("admin", "/admin/audit", "Audit log"),
]


def create_app(config: Config, services: Services | None = None, blueprints: list[str] | None = None) -> Flask:
    """Build the web app. The caller has bound the database (``core.db.bind_database``) already."""
    from webui import security
    from webui.auth import load_user
    from webui.i18n import Catalogue, HTML_LANG, LANGUAGE_NAMES, LANGUAGES, format_duration, one_language

    if not config.secret_key:
        raise ValueError("create_app needs config.secret_key (load_config provides one)")
    try:
        max_upload_mb = int(config.extra.get("HOTLINE_MAX_UPLOAD_MB", 32))
    except (TypeError, ValueError):
        raise ConfigError(f"HOTLINE_MAX_UPLOAD_MB must be a whole number of megabytes, got "
                          f"{config.extra.get('HOTLINE_MAX_UPLOAD_MB')!r}") from None
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config.update(
        SECRET_KEY=config.secret_key,
        SESSION_COOKIE_NAME="hotline_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.is_production,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=12),
        MAX_CONTENT_LENGTH=max_upload_mb * 1024 * 1024,
        TEMPLATES_AUTO_RELOAD=not config.is_production,
        HOTLINE_TRUST_PROXY=security.proxy_hops(config.extra.get("HOTLINE_TRUST_PROXY", "")),
        HOTLINE_LOGIN_LIMIT_PER_OPERATOR=5,
        HOTLINE_LOGIN_LIMIT_PER_IP=20,
        HOTLINE_LOGIN_LIMIT_PER_ACCOUNT=50,
        HOTLINE_LOGIN_WINDOW_MINUTES=15,
        HOTLINE_PAGE_SIZE=25,
        # The public website's, online chat's and Open311's settings (core.config: environment, instance file),
        # under their HOTLINE_* names; a test may change one here.
        **{name: getattr(config, field) for name, field in PUBLIC_SETTINGS.items()},
        # Scripts only from our own files: ticket text can never run as script even if escaping failed.
        HOTLINE_CSP=("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                     "img-src 'self' data:; media-src 'self'; object-src 'none'; base-uri 'self'; "
                     "form-action 'self'; frame-ancestors 'none'"),
    )
    # Autoescape for every template, not only *.html, so no page can forget it.
    app.jinja_env.autoescape = True
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    # The tickets' PINs are hashed and checked under the same key in every process (caseflow.pins): the
    # product's, whose build installed it already, and each web worker's.
    pins.install(pins.PinKeys.from_config(config))
    services = services or Services()
    if services.clock is None:
        services = dataclasses.replace(services, clock=Clock(config.tz))
    catalogue = Catalogue()
    state = HotlineState(config=config, services=services, catalogue=catalogue, nav=[])
    app.extensions["hotline"] = state

    for module_name in BLUEPRINTS if blueprints is None else blueprints:
        module = importlib.import_module(module_name)
        app.register_blueprint(module.bp)
        if getattr(module, "MESSAGES", None):
            catalogue.merge(module.MESSAGES, source=module_name, scope=module.bp.name)
        state.nav.extend(getattr(module, "NAV", ()))
    state.nav.sort(key=lambda item: item.order)

    if services.forward is not None:
        # First: a web worker passes the call process's pages on untouched (body unread; it checks them).
        app.before_request(services.forward)
    # Then the public pages kept for anonymous visitors: a kept page needs no database connection.
    page_cache.install(app, config.portal_page_cache_seconds, services.bus)
    app.before_request(_open_db)
    app.before_request(load_user)
    app.before_request(security.enforce_access)
    app.before_request(security.reject_nul)
    app.before_request(security.protect_csrf)
    app.teardown_request(_close_db)
    app.after_request(_security_headers)
    # Behind nginx (and, for the call process, a web worker): the client's address, scheme and host.
    security.trust_proxies(app)

    def translate(message: str, **values) -> str:
        return state.gettext(message, **values)

    app.jinja_env.globals.update(
        _=translate,
        csrf_token=security.csrf_token,
        url_if=lambda endpoint, **values: url_if(app, endpoint, **values),
        nav_items=lambda: nav_for(app, g.get("user")),
        LANGUAGES=LANGUAGES,
        LANGUAGE_NAMES=LANGUAGE_NAMES,
    )
    app.jinja_env.filters.update(
        localtime=lambda value, fmt="%Y-%m-%d %H:%M": localtime(services.clock, value, fmt),
        mask_phone=mask_phone,
        mask_name=mask_name,
        label=lambda code, kind: code_label(code, kind, g.get("lang") or "zh", translate),
        duration=lambda seconds: format_duration(seconds, g.get("lang") or "zh"),
        one_language=lambda message: one_language(str(message), g.get("lang") or "zh"),  # "中文 / English" errors
    )

    @app.context_processor
    def _frame():
        user = g.get("user")
        lang = g.get("lang", "zh")
        return {"current_user": user, "lang": lang, "html_lang": HTML_LANG.get(lang, lang),
                "role_labels": [code_label(r, "role", lang, translate) for r in sorted(user.role_set)]
                if user else []}

    _install_error_pages(app, state)
    return app


# ------------------------------------------------------------------------------------------ database
# Requests that open no connection here: the health check opens its own so it can report a dead database;
# Kannel's delivery reports are stored a batch at a time on the batch's connection (channels.reports).
OWN_CONNECTION = ("health.healthz", "static", "sms_gateway.delivery_report")


def _open_db():
    """One connection per request, but for the endpoints in OWN_CONNECTION."""
    if request.endpoint in OWN_CONNECTION:
        return
    g.db_opened = database.connect(reuse_if_open=True)


def _close_db(_exc):
    # Close only what this request opened: a test or a job sharing the thread keeps its connection.
    if g.pop("db_opened", False) and not database.is_closed():
        database.close()


# ------------------------------------------------------------------------------------ headers, errors
def _security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Content-Security-Policy", current_app.config["HOTLINE_CSP"])
    if response.mimetype == "text/html":
        # Pages may show personal data: do not leave them in shared caches or the back-button cache.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


# Settings the public website, online chat and Open311 read from app.config under their HOTLINE_* names.
PUBLIC_SETTINGS = setting_names("HOTLINE_PORTAL_", "HOTLINE_CHAT_", "HOTLINE_OPEN311_")

_ERROR_TEXT = {
    400: ("Bad request", ""),
    403: ("Forbidden", "You do not have permission to open this page."),
    404: ("Not found", "The page you asked for does not exist."),
    405: ("Method not allowed", ""),
    413: ("Request too large", ""),
    500: ("Server error", "Something went wrong on our side. It has been logged."),
    503: ("Service unavailable", "The database is not answering at the moment. Please try again in a minute."),
}
# Seconds a browser or client is told to wait before trying again while the database is away.
DATABASE_RETRY_AFTER = 10


def _install_error_pages(app: Flask, state: HotlineState) -> None:
    from webui.i18n import one_language
    from webui.security import wants_json

    def render_error(error: HTTPException):
        if isinstance(error, RequestRedirect):
            return error
        code = error.code or 500
        title, message = _ERROR_TEXT.get(code, (error.name, ""))
        description = getattr(error, "hotline_message", "") or message
        if wants_json():
            return jsonify(error=error.name.lower().replace(" ", "_"), detail=error.description), code
        response = app.make_response((render_template("error.html", code=code, title=title,
                                                      message=one_language(str(description or ""),
                                                                           g.get("lang") or "zh")), code))
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    app.register_error_handler(HTTPException, render_error)

    def database_away(error: Exception):
        """The database is not answering (PostgreSQL restarting, its connections cut, a connect or statement
        timeout): 503 with Retry-After in the user's language, as soon as the driver gives up, instead of a
        500 page. Any other database error is a server error as before (raised on to Flask)."""
        if not (connection_lost(error) or isinstance(error, DatabaseTimeout)):
            raise error
        log.warning("database away during %s %s: %s", request.method, request.path, str(error).strip()[:200])
        if not g.get("lang"):
            from webui.auth import choose_language

            g.lang = choose_language(None)  # the user could not be read: the session's or browser's language
        g.user = None  # the page frame must not read the user's roles from the database
        if wants_json():
            response = jsonify(error="service_unavailable", detail="the database is not answering"), 503
            response = app.make_response(response)
        else:
            title, message = _ERROR_TEXT[503]
            response = app.make_response((render_template("error.html", code=503, title=title, message=message),
                                          503))
        response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
        return response

    app.register_error_handler(peewee.OperationalError, database_away)
    app.register_error_handler(peewee.InterfaceError, database_away)

    # Unhandled exceptions reach the handler above as InternalServerError (Flask logs them first); in
    # testing mode they propagate so a test shows the real traceback.


def bad_request(message_id: str):
    """Abort with a 400 whose page shows ``message_id`` (translated)."""
    from werkzeug.exceptions import BadRequest

    error = BadRequest(message_id)
    error.hotline_message = message_id
    raise error


# ------------------------------------------------------------------------------------ links and desks
def endpoint_exists(app: Flask, endpoint: str) -> bool:
    """True if a view is registered under ``endpoint`` (pages of other areas may not exist yet)."""
    return endpoint in app.view_functions


def url_if(app: Flask, endpoint: str, **values) -> str | None:
    """``url_for`` when the endpoint exists, None otherwise (templates link only to what is there)."""
    from flask import url_for

    return url_for(endpoint, **values) if endpoint_exists(app, endpoint) else None


def path_exists(app: Flask, path: str, method: str = "GET") -> bool:
    """True if some view answers ``method path`` (used for desks served by other areas)."""
    adapter = app.url_map.bind("localhost")
    try:
        adapter.match(path, method=method)
    except RequestRedirect:
        return True
    except HTTPException:
        return False
    return True


def desks_for(app: Flask, user) -> list[tuple[str, str]]:
    """[(label id, path)] of the desks this user's roles lead to and that exist, first one preferred."""
    if user is None:
        return []
    seen, desks = set(), []
    for role, path, label in DESKS:
        if role in user.role_set and path not in seen and path_exists(app, path):
            seen.add(path)
            desks.append((label, path))
    return desks


def nav_for(app: Flask, user) -> list[tuple[str, str]]:
    """[(label, url)] of the navigation entries the user may see: desks, then blueprint NAV items."""
    from flask import url_for

    if user is None:
        return []
    state = app.extensions["hotline"]
    items = [(state.gettext(label), path) for label, path in desks_for(app, user)]
    # "/centre" (a desk) and "/centre/" (a blueprint's index) are one page: compare without the slash.
    seen = {path.rstrip("/") for _, path in items}
    for item in state.nav:
        if user.role_set & item.roles and endpoint_exists(app, item.endpoint):
            url = url_for(item.endpoint)
            if url.rstrip("/") not in seen:
                seen.add(url.rstrip("/"))
                items.append((state.gettext(item.label), url))
    return items


# -------------------------------------------------------------------------------------- filters
def localtime(clock: Clock, value, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored time (naive UTC or aware) shown in the configured zone; dates as they are; None as ''."""
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        return clock.local(value).strftime(fmt)
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d")
    return str(value)


def code_label(code, kind: str, lang: str, translate: Callable[[str], str]) -> str:
    """The display name of a status, type, channel or role code.

    caseflow's own tables are the source for ticket codes and roles; other kinds (and codes caseflow does
    not know) come from the message catalogue as ``kind:code``.
    """
    if code is None or code == "":
        return ""
    pair = _caseflow_labels(kind).get(str(code))
    if pair is not None:
        return pair[0] if lang == "zh" else pair[1]
    return translate(f"{kind}:{code}")


def _caseflow_labels(kind: str) -> Mapping[str, tuple[str, str]]:
    try:
        if kind == "status":
            from caseflow.workflow import STATUS_LABELS as labels
        elif kind == "type":
            from caseflow.services import TICKET_TYPES as labels
        elif kind == "channel":
            from caseflow.services import CHANNELS as labels
        elif kind == "role":
            from caseflow.roles import ROLES as labels
        else:
            return {}
    except ImportError:
        return {}
    return labels


# ----------------------------------------------------------------------------------------- demo data
def load_demo_if_empty(config: Config, clock: Clock | None = None) -> list[tuple[str, str, str, str]]:
    """Load the demo data set (``caseflow.demo``) when ``config.load_demo`` and the database has no user.

    Called by run.py after the schema exists. Returns the demo accounts as
    [(operator_no, name, roles, password)] for run.py to print, or [] when nothing was loaded.
    """
    from caseflow.models import User

    if not config.load_demo:
        return []
    if config.is_production:
        # Demo accounts share one published password: never in production. The first administrator comes
        # from `python -m hotline.accounts create-admin <operator_no> <name>`.
        log.warning("production mode: no demo data is loaded (HOTLINE_LOAD_DEMO ignored)")
        return []
    with database.connection_context():
        if User.select().exists():
            return []
        from caseflow import demo
        from stats.boundaries import load_demo_map

        log.info("empty database: loading the demo data set")
        accounts = demo.load_demo(clock or Clock(config.tz))
        if accounts:
            load_demo_map()  # generated district shapes for the command screen's map (not real borders)
        return accounts
