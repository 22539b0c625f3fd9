"""Helpers more than one blueprint uses, in a module of their own so blueprints import it and not each
other (ticket pages link IVR traces, the IVR pages reuse the catalogue helper), and the case-engine pages'
shared helpers (centre, dept, entry, kb, admin_org and the ticket pages): code labels, the template
helpers, the clock, loading a ticket, refusing with a reason, acting and going back."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, request
from werkzeug.exceptions import Forbidden

from caseflow import knowledge, org, privacy, services
from caseflow import workflow as wf
from caseflow.models import Ticket, is_overdue
from caseflow.roles import can
from caseflow.services import NotFound, TicketInputError
from caseflow.workflow import PermissionDenied
from webui.i18n import error_text
from webui.security import local_path

# Who may read an IVR call trace (the IVR pages' trace views; ticket pages link a trace for these roles).
TRACE_ROLES = ("admin", "team_lead", "centre", "centre_leader", "agent")


def own_messages(messages: dict) -> dict:
    """Drop ids the base catalogue already translates, so each id has one wording (no redefinition)."""
    try:
        from webui.i18n import MESSAGES as base
    except ImportError:  # pragma: no cover - the skeleton always has it
        return messages
    return {lang: {k: v for k, v in table.items() if k not in base.get(lang, {})}
            for lang, table in messages.items()}


def _fax_states() -> dict:
    from recorder.fax import STATE_LABELS

    return STATE_LABELS


# Labels of the case engine's codes, in the request's language (zh first).
_LABELS = {
    "status": wf.STATUS_LABELS, "event": wf.EVENT_LABELS, "type": services.TICKET_TYPES,
    "channel": services.CHANNELS, "urgency": services.URGENCIES, "satisfaction": wf.SATISFACTION,
    "reply_by": services.REPLY_BY, "queue": services.CENTRE_QUEUES, "dept_kind": org.DEPARTMENT_KINDS,
    "review": knowledge.REVIEW_STATES, "fax_state": _fax_states(),
}


def cf_label(kind: str, code) -> str:
    """The label of a case-engine code in the request's language.

    caseflow's tables (workflow.STATUS_LABELS, services.TICKET_TYPES, CHANNELS ...) are the one source of
    these labels: the base ``label`` filter (webui.app.code_label) reads the same tables, and no message
    catalogue carries a second wording."""
    if code is None or code == "":
        return ""
    return wf.label(_LABELS.get(kind, {}), str(code), g.get("lang", "zh"))


def install(blueprint: Blueprint) -> None:
    """Give a case-engine blueprint the shared template helpers."""

    @blueprint.app_context_processor
    def _caseflow_helpers():
        return {"cf_label": cf_label, "contact": _contact, "cf_can": lambda perm: can(g.get("user"), perm),
                "cf_overdue": _overdue}


def _overdue(ticket) -> bool:
    """Overdue now, swept or not (the 超期 badge; caseflow.models.overdue_at)."""
    return is_overdue(ticket, services.to_db(clock().now()))


def _contact(ticket):
    return privacy.contact_view(g.get("user"), ticket)


def clock():
    """The app's clock (tests move it)."""
    return current_app.extensions["hotline"].services.clock


def load_ticket(number: str) -> Ticket:
    """The ticket for the current user, or 404 (missing and not-yours look the same)."""
    try:
        return services.get_ticket_for(g.user, number)
    except (NotFound, TicketInputError):
        abort(404)


def refuse(message: str):
    """Answer 403 with ``message`` (zh / en) on the error page: the user sees why, not just "forbidden"."""
    error = Forbidden(message)
    error.hotline_message = message
    raise error


def act_and_return(action, back: str):
    """Run ``action()``, which returns the message to show on success; a refusal is a 403 with its reason,
    a ticket out of reach a 404, bad input a flashed error; then back to ``back`` (303)."""
    try:
        message = action()
    except PermissionDenied as error:
        refuse(error_text(error))
    except NotFound:
        abort(404)
    except TicketInputError as error:
        flash(error_text(error), "error")
    else:
        flash(error_text(message), "info")  # an action's own "中文 / English" note, in the user's language
    return redirect(back, code=303)


def safe_back(default: str) -> str:
    """Where to go after a POST: a local path from the form, else ``default``."""
    return local_path(request.form.get("next")) or default
