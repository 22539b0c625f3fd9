"""``/sms/inbound`` and ``/sms/dlr``: where Kannel (machine to machine: no login, no CSRF) delivers the messages
citizens text to 1063912345 and the delivery reports of ours. Guarded by the shared secret
(HOTLINE_SMS_SECRET) and the address allow list (HOTLINE_SMS_ALLOW); refusals say why in plain text."""
from __future__ import annotations

import codecs
import hmac
import logging
import weakref
from urllib.parse import unquote_to_bytes

import gevent
from flask import Blueprint, current_app, request

from channels import inbound, sms
from channels.reports import ReportBatch
from channels.settings import SmsSettings
from webui.security import client_ip, csrf_exempt, public

log = logging.getLogger(__name__)

bp = Blueprint("sms_gateway", __name__)

MAX_QUERY = 16384  # a 2,000-character text percent-encoded as UTF-8 fits


def settings() -> SmsSettings:
    """The running product's SMS settings, else read once from the app's configuration."""
    state = current_app.extensions["hotline"]
    found = state.services.sms_settings
    if found is None:
        found = current_app.extensions.get("hotline_sms_settings")
        if found is None:
            found = SmsSettings.from_config(state.config)
            current_app.extensions["hotline_sms_settings"] = found
    return found


def _reports() -> ReportBatch:
    """The delivery-report batch of this thread's gevent hub (one storing greenlet at a time, started by the
    first report). One per hub: the product serves from one; a threaded server (the tests' werkzeug) has a hub
    per thread, and a greenlet and its results belong to their hub."""
    batches = current_app.extensions.setdefault("hotline_sms_reports", weakref.WeakKeyDictionary())
    hub = gevent.get_hub()
    batch = batches.get(hub)
    if batch is None:
        batch = batches[hub] = ReportBatch()
    return batch


def _text(body: str, code: int):
    return body, code, {"Content-Type": "text/plain; charset=utf-8"}


def _params() -> dict[str, bytes]:
    """Query and form fields as bytes: the text's charset is only known from the charset field."""
    raw = request.query_string
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        raw = raw + b"&" + request.get_data(cache=True)
    if len(raw) > MAX_QUERY:
        raise sms.SmsInputError(f"request too long ({len(raw)} bytes, at most {MAX_QUERY})")
    fields = {}
    for pair in raw.split(b"&"):
        key, _, value = pair.partition(b"=")
        if key:
            fields[unquote_to_bytes(key.replace(b"+", b" ")).decode("ascii", "replace")] = \
                unquote_to_bytes(value.replace(b"+", b" "))
    return fields


def _gateway_params():
    """(the request's fields, None), or (None, a refusal response) for a malformed request or a caller that is
    not the gateway: both routes' first step."""
    try:
        params = _params()
    except sms.SmsInputError as error:
        return None, _text(f"bad request: {error}\n", 400)
    return params, _guard(params)


def _guard(params: dict[str, bytes]):
    """A refusal response, or None when the caller is the gateway."""
    config = settings()
    address = client_ip()
    if not config.allowed(address):
        log.warning("sms gateway request from %s refused: address not allowed", address)
        return _text(f"forbidden: address {address} is not allowed (HOTLINE_SMS_ALLOW)\n", 403)
    secret = params.get("secret", b"")
    if not hmac.compare_digest(secret, config.secret.encode()):
        log.warning("sms gateway request from %s refused: bad secret", address)
        return _text("forbidden: missing or wrong secret\n", 403)
    return None


def _decode(data: bytes, charset: str, coding: str) -> str:
    name = (charset or "").strip() or ("UTF-16BE" if coding == "2" else "UTF-8")
    try:
        codec = codecs.lookup(name)
    except LookupError:
        raise sms.SmsInputError(f"unknown charset {name[:20]!r}") from None
    try:
        return data.decode(codec.name)
    except UnicodeDecodeError:
        raise sms.SmsInputError(f"text is not valid {name[:20]}") from None


@bp.route("/sms/inbound", methods=["GET", "POST"])
@public
@csrf_exempt
def receive():
    """One message from a citizen (Kannel's sms-service get-url: from, to, text, charset, coding, id)."""
    params, refused = _gateway_params()
    if refused:
        return refused
    try:
        sender = params.get("from", b"").decode("ascii")
        text = _decode(params.get("text", b""), params.get("charset", b"").decode("ascii", "replace"),
                       params.get("coding", b"").decode("ascii", "replace"))
        result = inbound.handle_message(sender, text, provider_id=params.get("id", b"").decode("ascii", "replace"),
                                        settings=settings(), clock=current_app.extensions["hotline"].services.clock)
    except UnicodeDecodeError:
        return _text("bad request: malformed number\n", 400)
    except sms.SmsInputError as error:
        return _text(f"bad request: {error}\n", 400)
    # An empty body: Kannel sends no reply of its own (ours go through the outbox).
    log.debug("sms inbound -> %s", result)
    return "", 200, {"X-Hotline-Outcome": result.outcome, "X-Hotline-Ticket": result.ticket}


@bp.route("/sms/dlr", methods=["GET", "POST"])
@public
@csrf_exempt
def delivery_report():
    """A delivery report for one of our messages (dlr-url: id, type, answer, foreign)."""
    params, refused = _gateway_params()
    if refused:
        return refused
    value = {k: params.get(k, b"").decode("utf-8", "replace") for k in ("id", "type", "answer", "foreign")}
    try:
        # Stored with the other reports of the moment, in one transaction on one connection (this request
        # opens none: webui.app._open_db); answered once committed, so Kannel resends what was not stored.
        message = _reports().submit(value["id"], value["type"], value["answer"], value["foreign"])
    except sms.SmsInputError as error:
        return _text(f"bad request: {error}\n", 400)
    except LookupError as error:
        return _text(f"not found: {error}\n", 404)
    except gevent.Timeout:  # still queued, stored when its turn comes; Kannel asks again meanwhile
        return _text("busy: report not stored yet, send it again\n", 503)
    return _text(f"ok {message.status}\n", 200)
