"""Open311 GeoReport v2 at /open311/v2 (issue 11 item 6): Service Discovery (/open311/discovery.xml and
.json), services, service definitions, POST and GET of service requests and tokens, in XML and JSON as the
specification writes them (channels.open311 owns the shapes and the tickets). Machine to machine: no session,
no CSRF token; a POST needs an API key an administrator issued (webui.blueprints.admin_api). Every call is
audited with the address and the client, and limited per address and per key (counted from the audit log, like
failed logins).
"""
from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, current_app, make_response, request, url_for

from channels import open311
from webui.security import audit, client_ip, csrf_exempt, now_utc, public

log = logging.getLogger(__name__)

bp = Blueprint("open311", __name__, url_prefix="/open311")
VERSION = "/v2"  # the GeoReport v2 endpoint; discovery sits above it, at /open311/discovery.<format>

FORMATS = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
MAX_BODY = 64 * 1024  # a POST is a form of short fields (description: 4,000 characters)
CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Audited administrator actions that change the service definitions (categories, regions).
DEFINITION_ACTIONS = ("org_category", "org_region")
ACTIONS = ("open311_discovery", "open311_services", "open311_service", "open311_post", "open311_requests",
           "open311_request", "open311_token", "open311_refused")


@bp.url_value_preprocessor
def _limit_body(_endpoint, _values):
    request.max_content_length = MAX_BODY


@bp.after_request
def _headers(response):
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.errorhandler(413)
def _too_large(_error):
    fmt = "json" if request.path.endswith(".json") else "xml"
    return _refuse(fmt, open311.Open311Error(413, (413, f"the request is larger than {MAX_BODY} bytes")), "body")


def _setting(name: str):
    """A HOTLINE_OPEN311_* setting (core.config: environment or instance file; create_app puts it in
    app.config)."""
    return current_app.config[name]


def _clock():
    return current_app.extensions["hotline"].services.clock


def _respond(fmt: str, root: str, value, status: int = 200):
    fmt = fmt if fmt in FORMATS else "xml"  # XML is the format every server must speak
    body = open311.to_json(value) if fmt == "json" else open311.to_xml(root, value)
    response = make_response(body, status)
    response.headers["Content-Type"] = FORMATS[fmt]
    return response


def _refuse(fmt: str, error: open311.Open311Error, action: str, client=None):
    audit("open311_refused", "api_client", client.id if client else "",
          f"{request.method} {request.path} {action}: {error.status} {error}"[:500], user=None)
    response = _respond(fmt, "errors", open311.errors_body(error), error.status)
    if error.status == 429:
        response.headers["Retry-After"] = "60"
    return response


def _check_jurisdiction() -> None:
    """One jurisdiction is served: jurisdiction_id is optional, and any other value is not found."""
    given = request.values.get("jurisdiction_id", "")
    expected = str(_setting("HOTLINE_OPEN311_JURISDICTION"))
    if given and given != expected:
        raise open311.not_found(f"jurisdiction_id {given[:60]!r} not found")


def _client(required: bool):
    """The client of the api_key sent (403 when a key is wrong, or missing where one is required)."""
    key = request.values.get("api_key", "")
    if not key:
        if required:
            raise open311.Open311Error(403, (403, "api_key was not provided -- can't proceed with create_request."))
        return None
    client = open311.client_for(key)
    if client is None:
        raise open311.Open311Error(403, (403, "Invalid api_key received -- can't proceed."))
    return client


def _throttle(client, posting: bool) -> None:
    """Calls per address and per key per minute, and POSTs per key per hour."""
    from webui.models import AuditLog

    now = now_utc()
    minute = now - dt.timedelta(minutes=1)
    recent = AuditLog.select().where(AuditLog.action.in_(ACTIONS) & (AuditLog.at > minute))
    if recent.where(AuditLog.ip == client_ip()).count() >= int(_setting("HOTLINE_OPEN311_PER_ADDRESS")):
        raise open311.Open311Error(429, (429, "too many calls from this address: try again in a minute"))
    if client is None:
        return
    mine = recent.where((AuditLog.obj_type == "api_client") & (AuditLog.obj_id == str(client.id)))
    if mine.count() >= int(_setting("HOTLINE_OPEN311_PER_KEY")):
        raise open311.Open311Error(429, (429, "too many calls with this api_key: try again in a minute"))
    if posting:
        posts = AuditLog.select().where((AuditLog.action == "open311_post") & (AuditLog.obj_type == "api_client")
                                        & (AuditLog.obj_id == str(client.id))
                                        & (AuditLog.at > now - dt.timedelta(hours=1))).count()
        if posts >= int(_setting("HOTLINE_OPEN311_POSTS_PER_HOUR")):
            raise open311.Open311Error(429, (429, "too many requests created with this api_key this hour"))


def _call(fmt: str, action: str, work, *, key_required: bool = False, posting: bool = False):
    """The frame of every call: format, jurisdiction, key, limits, the work, the audit row."""
    client = None
    try:
        if fmt not in FORMATS:
            raise open311.not_found(f"format {fmt[:10]!r} is not served: use xml or json")
        _check_jurisdiction()
        client = _client(key_required)
        _throttle(client, posting)
        root, value, detail = work(client)
    except open311.Open311Error as error:
        return _refuse(fmt, error, action, client)
    audit(action, "api_client" if client else "open311", client.id if client else "",
          f"{request.method} {request.path} {detail}"[:500], user=None)
    return _respond(fmt, root, value)


@bp.route("/discovery.<fmt>")
@public
def discovery(fmt):
    """Service Discovery: where the GeoReport v2 endpoint is, its formats, whom to contact, how to get a key;
    its changeset moves when an administrator changes the categories or regions the services come from."""
    from webui.models import AuditLog

    def work(_client):
        last = (AuditLog.select(AuditLog.at).where(AuditLog.action.in_(DEFINITION_ACTIONS))
                .order_by(AuditLog.at.desc()).first())
        changed = last.at if last is not None else None
        document = open311.discovery(
            url_for("open311.services_list", fmt="xml", _external=True).rsplit("/", 1)[0],
            production=current_app.extensions["hotline"].config.is_production,
            contact=_setting("HOTLINE_OPEN311_CONTACT"), key_service=_setting("HOTLINE_OPEN311_KEY_SERVICE"),
            definitions_changed=_clock().local(changed).strftime("%Y-%m-%d %H:%M") if changed else "")
        return "discovery", document, document["changeset"]
    return _call(fmt, "open311_discovery", work)


@bp.route(VERSION + "/services.<fmt>")
@public
def services_list(fmt):
    """GET Service List."""
    def work(client):
        rows = open311.service_list(client.mode if client else "realtime")
        return "services", rows, f"{len(rows)} services"
    return _call(fmt, "open311_services", work)


@bp.route(VERSION + "/services/<code>.<fmt>")
@public
def service_definition(code, fmt):
    """GET Service Definition."""
    return _call(fmt, "open311_service", lambda client: ("service_definition", open311.service_definition(code),
                                                         code[:32]))


@bp.route(VERSION + "/requests.<fmt>", methods=["GET", "POST"])
@public
@csrf_exempt
def requests_(fmt):
    """POST Service Request (API key) or GET Service Requests."""
    if request.method == "POST":
        def create(client):
            new = open311.parse_post(request.form, request.form.items(multi=True))
            ticket, row = open311.create_request(new, client, _clock())
            return "service_requests", open311.post_response(ticket, row, client), f"ticket {ticket.number}"
        return _call(fmt, "open311_post", create, key_required=True, posting=True)

    def query(client):
        rows = open311.find_requests(request.args, client, now_utc())
        return ("service_requests", open311.request_views(rows, client, _clock()),
                f"{len(rows)} requests")
    return _call(fmt, "open311_requests", query)


@bp.route(VERSION + "/requests/<number>.<fmt>")
@public
def request_one(number, fmt):
    """GET Service Request."""
    def work(client):
        ticket = open311.find_request(number, client)
        return "service_requests", [open311.request_view(ticket, client, _clock())], number[:8]
    return _call(fmt, "open311_request", work)


@bp.route(VERSION + "/tokens/<token>.<fmt>")
@public
def token(token, fmt):
    """GET service_request_id from a token."""
    return _call(fmt, "open311_token", lambda client: ("service_requests", open311.token_lookup(token), token[:24]))


@bp.route("/<path:rest>", methods=["GET", "POST"])
@public
@csrf_exempt
def unknown(rest):
    """Any other path under the endpoint: the specification's 404 array (JSON when .json was asked)."""
    fmt = "json" if rest.endswith(".json") else "xml"
    return _refuse(fmt, open311.not_found(f"no such resource: {rest[:60]}"), "unknown")
