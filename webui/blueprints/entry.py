"""The data-entry desk (录入台, P2 §3.2.4): letters, faxes, e-mails, mailbox messages and IVR recordings
become tickets, with scans and files attached; machine-made tickets (IVR, fax, e-mail) waiting to be
completed are listed and can be corrected before dispatch."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for

from caseflow import attachments, org, privacy, services
from caseflow import workflow as wf
from caseflow.models import Category, Region, Ticket
from caseflow.roles import can
from caseflow.services import NotFound, TicketInputError
from caseflow.workflow import ConcurrentChange, PermissionDenied, WorkflowError
from webui.i18n import error_text
from webui.app import NavItem
from webui.blueprints.tickets import clock, install, own_messages
from webui.security import require_roles

bp = Blueprint("entry", __name__, url_prefix="/entry")
install(bp)

ROLES = ("entry", "centre", "centre_leader")
NAV = [NavItem("Data entry", "entry.index", frozenset(ROLES), order=15)]
ENTRY_CHANNELS = ("letter", "fax", "email", "mailbox", "phone", "web", "sms")
ATTACHMENT_KIND = {"letter": "letter", "fax": "fax", "email": "email"}
MESSAGES = own_messages({"zh": {
    "Record a ticket": "登记工单", "Citizen name": "姓名", "E-mail": "电子邮箱", "Files (scans, faxes, recordings)":
    "附件（扫描件、传真、录音）", "Waiting to be completed": "待补录的工单", "Correct": "补录修改",
    "Ticket %(number)s recorded, citizen PIN %(pin)s.": "工单 %(number)s 已登记，查询密码 %(pin)s。",
    "Search in a new tab": "在新窗口检索", "Correct ticket %(number)s": "补录工单 %(number)s",
    "Back": "返回", "Nothing waiting.": "没有待补录的工单。",
}})


def _choices():
    return {"channels": ENTRY_CHANNELS, "types": services.TICKET_TYPES, "urgencies": services.URGENCIES,
            "reply_by": services.REPLY_BY, "categories": list(Category.select().where(Category.active)),
            "regions": list(Region.select().where(Region.active).order_by(Region.code)),
            "category_path": org.category_path}


@bp.route("/")
@require_roles(*ROLES)
def index():
    """The entry form, a knowledge search beside it, and machine-made tickets waiting to be completed."""
    waiting = list(Ticket.select().where((Ticket.status == wf.RECORDED) & Ticket.created_by.is_null())
                   .order_by(Ticket.created_at.desc()).limit(50))
    return render_template("entry/index.html", waiting=waiting, form={}, **_choices())


@bp.route("/", methods=["POST"])
@require_roles(*ROLES)
def create():
    """Record a ticket from the form with its files; shows the number and PIN to give the citizen."""
    form = request.form
    try:
        ticket = services.create_ticket(
            form.get("content", ""), type=form.get("type", "consult"), channel=form.get("channel", "letter"),
            citizen_phone=form.get("citizen_phone", ""), citizen_name=form.get("citizen_name", ""),
            anonymous=form.get("anonymous") == "1", citizen_address=form.get("citizen_address", ""),
            citizen_email=form.get("citizen_email", ""), reply_by=form.get("reply_by", "phone"),
            title=form.get("title", ""), category=form.get("category") or None,
            region=form.get("region") or None, urgency=form.get("urgency", "normal"), created_by=g.user,
            clock=clock())
    except (TicketInputError, PermissionDenied) as error:
        flash(error_text(error), "error")
        return render_template("entry/index.html", waiting=[], form=form, **_choices()), 400
    root = current_app.extensions["hotline"].config.attachments_dir
    for upload in request.files.getlist("files"):
        if upload and upload.filename:
            try:
                attachments.add_attachment(ticket, root, upload.stream, upload.filename, actor=g.user,
                                           kind=ATTACHMENT_KIND.get(ticket.channel, "upload"), clock=clock())
            except attachments.AttachmentError as error:
                flash(f"{upload.filename}: {error_text(error)}", "error")
    state = current_app.extensions["hotline"]
    flash(state.gettext("Ticket %(number)s recorded, citizen PIN %(pin)s.", number=ticket.number,
                        pin=ticket.plain_pin), "info")  # shown once: stored only hashed
    return redirect(url_for("entry.index"), code=303)


@bp.route("/<number>/edit", methods=["GET", "POST"])
@require_roles(*ROLES)
def edit(number):
    """Complete a recorded ticket (e.g. transcribe an IVR recording) before it is dispatched."""
    try:
        # The one visibility check (the desk's own and machine-made tickets for a clerk), as every page.
        ticket = services.get_ticket_for(g.user, number)
    except (NotFound, TicketInputError):
        abort(404)
    if ticket.status != wf.RECORDED and not can(g.user, "ticket.dispatch"):
        abort(404)
    contact = privacy.contact_view(g.user, ticket)
    if request.method == "POST":
        form = request.form
        editable = ("title", "content", "type", "urgency", "reply_by")
        if not contact["masked"]:
            # Who sees the citizen masked cannot have seen the name and address: they stay as stored.
            editable += ("citizen_name", "citizen_address")
        fields = {k: form.get(k, "") for k in editable}
        fields["category"] = form.get("category") or None
        fields["region"] = form.get("region") or None
        version = form.get("version", "")
        if version.isdigit():
            ticket.version = int(version)
        try:
            services.edit_ticket(ticket, g.user, clock=clock(), **fields)
            flash(current_app.extensions["hotline"].gettext("Done."), "info")
            return redirect(url_for("tickets.detail", number=ticket.number), code=303)
        except PermissionDenied:
            abort(403)
        except (TicketInputError, WorkflowError, ConcurrentChange) as error:
            flash(error_text(error), "error")
    return render_template("entry/edit.html", t=ticket, contact=contact, **_choices())
