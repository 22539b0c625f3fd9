"""A stand-in supervisor desk used only by tests of the landing page."""
from __future__ import annotations

from flask import Blueprint

from webui.security import require_roles

bp = Blueprint("supervisor", __name__)


@bp.route("/supervisor")
@require_roles("team_lead")
def index():
    return "supervisor console"
