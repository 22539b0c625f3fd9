"""Administrator page for Open311 API clients (/admin/api-clients): issue a key (shown once; only its hash is
kept), list the clients with their last use, revoke a key. Every issue and revocation is audited."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for

from channels import open311
from channels.models import ApiClient, Open311Request
from webui.app import NavItem
from webui.i18n import error_text
from webui.security import audit, require_roles

bp = Blueprint("admin_api", __name__, url_prefix="/admin/api-clients")

NAV = [NavItem("Open311 API keys", "admin_api.index", frozenset({"admin"}), order=66)]
MESSAGES = {"zh": {
    "Open311 API keys": "Open311 接口密钥", "Client": "接入方", "Key prefix": "密钥前缀", "Mode": "方式",
    "Issued": "签发时间", "Last used": "最近使用", "Requests": "诉求数", "Revoked": "已吊销",
    "Revoke": "吊销", "Issue a key": "签发密钥", "Issue": "签发",
    "The new key for %(name)s: copy it now, it is not shown again.": "%(name)s 的新密钥：请立即复制，不会再次显示。",
    "Immediate: the answer carries the acceptance number; queued: a token to look it up.":
        "即时：应答即返回受理号；排队：返回令牌，凭令牌查询受理号。",
    "mode:realtime": "即时", "mode:batch": "排队",
    "The key was revoked.": "密钥已吊销。", "Endpoint": "接口地址",
}, "en": {
    "mode:realtime": "Immediate", "mode:batch": "Queued",
}}


def _clock():
    return current_app.extensions["hotline"].services.clock


@bp.route("/", methods=["GET", "POST"])
@require_roles("admin")
def index():
    """List the clients; a POST issues a key and shows it once."""
    new_key = new_name = None
    if request.method == "POST":
        try:
            client, new_key = open311.issue_key(request.form.get("name", ""), request.form.get("mode", "realtime"),
                                                by=g.user, clock=_clock())
        except ValueError as error:
            flash(error_text(error), "error")
            return redirect(url_for("admin_api.index"), code=303)
        new_name = client.name
        audit("api_key_issue", "api_client", client.id, f"{client.name} {client.prefix}… {client.mode}")
    clients = list(ApiClient.select().order_by(ApiClient.id.desc()))
    counts = {c.id: Open311Request.select().where(Open311Request.client == c).count() for c in clients}
    response = current_app.make_response(render_template(
        "admin_api/clients.html", clients=clients, counts=counts, new_key=new_key, new_name=new_name,
        modes=open311.MODES))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<int:client_id>/revoke", methods=["POST"])
@require_roles("admin")
def revoke(client_id):
    """Revoke a client's key (its requests stay)."""
    client = ApiClient.get_or_none(ApiClient.id == client_id) or abort(404)
    open311.revoke(client, by=g.user, clock=_clock())
    audit("api_key_revoke", "api_client", client.id, f"{client.name} {client.prefix}…")
    from webui.i18n import gettext

    flash(gettext("The key was revoked."), "info")
    return redirect(url_for("admin_api.index"), code=303)
