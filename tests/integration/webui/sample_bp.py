"""A blueprint used only by tests: an undeclared view, a JSON API, a CSRF-exempt hook, a detail page."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from webui.security import audit, csrf_exempt, public, require_roles

bp = Blueprint("sample", __name__)


@bp.route("/sample/undeclared")
def undeclared():
    return "this should never be served"


@bp.route("/api/sample/echo", methods=["POST"])
@require_roles("agent")
def echo():
    audit("sample_echo", "sample", 1, "echo")
    return jsonify(got=request.get_json(silent=True))


@bp.route("/sample/hook", methods=["POST"])
@csrf_exempt
@public
def hook():
    return "hooked"


@bp.route("/tickets/<number>")
@require_roles("agent")
def ticket_detail(number):
    return f"ticket {number}"


@bp.route("/sample/crash")
@require_roles("agent")
def crash():
    raise RuntimeError("a bug in some page")
