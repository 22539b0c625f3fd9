"""The agent's ticket list: newest first, filtered and paginated, contact details masked."""
from __future__ import annotations

import math

from flask import Blueprint, current_app, g, render_template, request

from caseflow import services
from caseflow.models import Ticket
from webui.app import NavItem, bad_request, path_exists
from webui.security import audit, require_roles

bp = Blueprint("agent_tickets", __name__, url_prefix="/agent")

LIST_ROLES = ("agent", "team_lead", "entry", "centre", "centre_leader")
NAV = [NavItem("Ticket list", "agent_tickets.index", frozenset(LIST_ROLES), order=10)]
MAX_QUERY = 32


def parse_page(raw: str | None) -> int:
    """The page number from the query string: absent means 1; anything but a whole number >= 1 is a 400."""
    if raw is None or raw == "":
        return 1
    if not raw.isdigit() or int(raw) < 1 or len(raw) > 9:
        bad_request("Page number must be a whole number of 1 or more.")
    return int(raw)


def can_see_contact(user, ticket) -> bool:
    """Whether this user sees the citizen's phone and name unmasked on this ticket.

    caseflow.privacy decides when it is there; otherwise the product rule: only the department handling
    the ticket (and the units above it) sees contact details.
    """
    try:
        from caseflow import privacy
    except ImportError:
        privacy = None
    if privacy is not None and hasattr(privacy, "can_see_contact"):
        return privacy.can_see_contact(user, ticket)
    if not user.has_role("dept", "dept_leader") or user.department_id is None or ticket.department_id is None:
        return False
    return ticket.department.is_within(user.department)


@bp.route("/tickets")
@require_roles(*LIST_ROLES)
def index():
    """Tickets newest first; q = acceptance number or phone number, mine = only those I registered."""
    query_text = request.args.get("q", "").strip()[:MAX_QUERY]
    mine = request.args.get("mine") == "1"
    page = parse_page(request.args.get("page"))
    size = current_app.config["HOTLINE_PAGE_SIZE"]

    # Only what this user may see (caseflow's one rule): a phone number finds nobody else's tickets.
    tickets = services.visible_tickets(g.user)
    if query_text:
        tickets = tickets.where((Ticket.number == query_text) | (Ticket.citizen_phone == query_text))
    if mine:
        tickets = tickets.where(Ticket.created_by == g.user.id)
    total = tickets.count()
    pages = max(1, math.ceil(total / size))
    page = min(page, pages)
    rows = list(tickets.order_by(Ticket.created_at.desc(), Ticket.id.desc()).paginate(page, size))
    detail_path = "/tickets/{}" if path_exists(current_app, "/tickets/00000000") else None
    items = [{
        "ticket": t,
        "show_contact": can_see_contact(g.user, t),
        "url": detail_path.format(t.number) if detail_path else None,
    } for t in rows]
    shown = [item["ticket"].number for item in items if item["show_contact"]]
    if shown:
        # Full contact details are personal data: record who saw whose.
        audit("view_contact", "ticket", shown[0] if len(shown) == 1 else "", "list: " + ",".join(shown))
    return render_template("agent_tickets/list.html", items=items, total=total, page=page, pages=pages,
                           q=query_text, mine=mine, filtered=bool(query_text or mine))
