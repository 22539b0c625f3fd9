"""E-mail on the ticket page (P2 §2.3): a form for whoever may write to the ticket (agents, the centre, the
handling department) to e-mail the citizen; threaded, audited, sent by the e-mail channel's outbox. The mails themselves are listed in the ticket's messages panel
(webui.blueprints.messages)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, request, url_for

from caseflow import services
from caseflow.services import NotFound, TicketInputError
from caseflow.workflow import PermissionDenied
from channels import mailflow
from channels.settings import EmailSettings
from webui.i18n import error_text
from webui.security import audit, login_required

bp = Blueprint("ticket_mail", __name__)


def email_settings() -> EmailSettings:
    state = current_app.extensions["hotline"]
    lent = state.services.email_settings
    return lent if lent is not None else EmailSettings.from_config(state.config)


@bp.app_context_processor
def _ticket_mail():
    def ticket_mail(ticket) -> dict:
        """Whether this user may e-mail the citizen (the mails are in the ticket's messages panel)."""
        user = getattr(g, "user", None)
        return {"may_send": bool(ticket.citizen_email) and user is not None
                and services.may_write(user, ticket), "configured": email_settings().outbound}
    return {"ticket_mail": ticket_mail}


@bp.route("/tickets/<number>/email", methods=["POST"])
@login_required
def send(number):
    """Queue an e-mail to the ticket's citizen; refused (403) for whoever may only look at the ticket."""
    try:
        ticket = services.get_ticket_for(g.user, number)
    except (NotFound, TicketInputError):
        abort(404)
    back = url_for("tickets.detail", number=ticket.number)
    try:
        message = mailflow.send_from_ticket(ticket, request.form.get("body", ""), g.user,
                                            settings=email_settings(),
                                            clock=current_app.extensions["hotline"].services.clock)
    except PermissionDenied as error:
        abort(403, description=error_text(error))
    except NotFound:
        abort(404)
    except TicketInputError as error:
        flash(error_text(error), "error")
        return redirect(back, code=303)
    audit("email_send", "ticket", ticket.number, f"message {message.id} to {message.address}")
    flash(error_text("邮件已排队发送 / the e-mail is queued"), "info")
    return redirect(back, code=303)
