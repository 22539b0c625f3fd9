"""The staff landing page (/staff): sends each user to their role's desk, or lists the desks they can open.
The product's root / is the public website (webui.blueprints.portal)."""
from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template

from webui.app import NavItem, desks_for
from webui.security import login_required

bp = Blueprint("home", __name__)

NAV = [NavItem("Home", "home.overview", frozenset({"agent", "team_lead", "centre", "centre_leader", "dept",
                                                   "dept_leader", "leader", "admin", "entry"}), order=0)]


@bp.route("/staff")
@login_required
def index():
    """Straight to the first desk of the user's roles; the overview when none exists yet."""
    desks = desks_for(current_app, g.user)
    if desks:
        return redirect(desks[0][1])
    return overview()


@bp.route("/home")
@login_required
def overview():
    """Every desk the user's roles open, with the ones not built yet named but not linked."""
    return render_template("home/index.html", desks=desks_for(current_app, g.user))
