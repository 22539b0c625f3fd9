"""The department workbench (成员单位): overdue and due-soon work first, incoming tickets to accept,
work in progress (sub-dispatch, return, reply with attachments, extension on the ticket page), and the
desk's notifications. Everything is limited to the user's own department subtree by the services."""
from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for

from caseflow import services
from webui.app import NavItem
from webui.blueprints.tickets import clock, install, own_messages
from webui.security import require_roles

bp = Blueprint("dept", __name__, url_prefix="/dept")
install(bp)

ROLES = ("dept", "dept_leader")
NAV = [NavItem("Department workbench", "dept.index", frozenset(ROLES), order=25)]
MESSAGES = own_messages({"zh": {
    "Incoming": "待签收", "In progress": "办理中", "Accept": "签收", "Due soon": "临期",
    "No incoming tickets.": "暂无待签收工单。", "Nothing in progress.": "暂无办理中工单。",
    "Unsatisfied call-backs": "回访不满意", "Work of %(name)s": "%(name)s 的工单",
}})


@bp.route("/")
@require_roles(*ROLES)
def index():
    """Overdue and due-soon first, then incoming (dispatched, or passed down and not yet taken) and
    in-progress tickets of the subtree."""
    overdue, soon = services.due_soon_and_overdue(g.user, clock())
    return render_template("dept/index.html", overdue=overdue, soon=soon, **services.department_desk(g.user),
                           notices=services.notifications_for(g.user, limit=20), here=url_for("dept.index"))


@bp.route("/notifications/<int:notification_id>/read", methods=["POST"])
@require_roles(*ROLES)
def read(notification_id):
    """Mark a desk notification read (only the user's or their department's)."""
    services.mark_read(g.user, notification_id)
    return redirect(url_for("dept.index"), code=303)
