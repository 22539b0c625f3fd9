"""A stand-in desk used only by tests of the landing page (a path no real area uses)."""
from __future__ import annotations

from flask import Blueprint

from webui.security import require_roles

bp = Blueprint("test_desk", __name__)


@bp.route("/test-only-desk")
@require_roles("team_lead")
def index():
    return "stand-in desk"
