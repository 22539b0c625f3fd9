"""Ticket pages: the ticket with its full history timeline, attachments (playable recordings), the
actions the user may take (one form per workflow event, posted to one endpoint), notes, uploads, and
search by number, phone, text, dates, status, department and category, and saved searches per user.

Views only parse forms and call caseflow.services, which enforce roles and department subtrees.
The helpers the other case-engine blueprints (centre, dept, entry, kb, admin_org) share with these pages are
in webui/blueprints/common.py; they import them from here too, as before.
"""
from __future__ import annotations

import datetime as dt
import logging

from flask import (Blueprint, abort, current_app, flash, g, redirect, render_template, request,
                   url_for)
from werkzeug.exceptions import NotFound as NotFoundPage

from acd import chat
from caseflow import attachments, faxout, knowledge, org, privacy, saved_searches, services
from caseflow import workflow as wf
from caseflow.models import Attachment, Department, Ticket, TicketCall, User
from caseflow.roles import can
from caseflow.search import SearchNotReady
from caseflow.services import NotFound, TicketInputError
from caseflow.workflow import ConcurrentChange, PermissionDenied, WorkflowError
from webui.app import NavItem
from webui.blueprints.common import (  # noqa: F401 the other case-engine pages import these from here
    TRACE_ROLES, act_and_return, cf_label, clock, install, load_ticket, own_messages, refuse, safe_back)
from webui import page_cache
from webui.i18n import error_text, gettext
from webui.security import audit, login_required
from webui.views import send_upload

log = logging.getLogger(__name__)

bp = Blueprint("tickets", __name__)

ALL_ROLES = frozenset({"agent", "team_lead", "centre", "centre_leader", "dept", "dept_leader", "leader", "entry"})
NAV = [NavItem("Ticket search", "tickets.search", ALL_ROLES, order=40)]

# Fields each event's form asks for (the act endpoint reads the same names).
EVENT_FIELDS = {
    "dispatch": ("department", "deadline"), "answer": ("reply",), "answer_later": ("reply",), "defer": ("at",),
    "not_accept": ("reason",), "merge": ("master",), "accept": (), "return": ("reason",),
    "sub_dispatch": ("subdepartment",), "return_up": ("reason",), "reply_up": ("reply",), "assign": ("handler",),
    "reply": ("reply",), "approve": (), "reject": ("reason",), "request_extension": ("until", "reason"),
    "approve_extension": (), "refuse_extension": ("reason",), "remind": (), "set_reminder": ("at",),
    "supervise": (), "call_back": ("satisfaction",), "call_back_unsatisfied": ("satisfaction",),
    "reopen": ("reason",), "keep_closed": ("reason",), "close": ("reason_optional",), "archive": (),
    "disclose": ("public",),
}
# Which action is the main one on a page (shown first, highlighted).
PRIMARY = ("dispatch", "accept", "reply", "approve", "call_back", "close", "answer")

MESSAGES = {"zh": {
    "Ticket search": "工单查询", "Ticket %(number)s": "工单 %(number)s", "History": "办理过程",
    "Actions": "办理操作", "Attachments": "附件", "Linked calls": "关联通话", "Duplicates": "重复工单",
    "Master ticket": "主工单", "Content": "诉求内容", "Reply": "答复内容", "Reason given": "理由", "Note": "备注",
    "Department": "承办单位", "Upper department": "下派单位", "Handler": "承办人", "Deadline": "办理期限",
    "Call-back deadline": "回访期限", "Urgency": "紧急程度", "Category": "诉求分类", "Region": "所属区域",
    "Address": "地址", "Reply by": "答复方式", "Satisfaction": "满意度", "Reopened": "重办次数",
    "Reminders": "催办次数", "Supervised": "督办", "Overdue": "超期", "Public": "公开",
    "Remind at": "提醒时间", "Extension requested until": "申请延期至", "Created by": "登记人",
    "Submit": "提交", "Upload": "上传", "File": "文件", "Download": "下载", "Size": "大小",
    "Actor": "操作人",
    "New deadline (optional)": "指定期限（可选）", "Until": "延期至", "Sub-unit": "下级单位",
    "Master ticket number": "主工单受理号", "Make public": "允许公开", "Suggested": "推荐",
    "Choose…": "请选择…", "Search the knowledge base": "检索知识库", "Knowledge base": "知识库",
    "Text": "关键词", "Date from": "起始日期", "Date to": "截止日期", "Any": "全部",
    "results": "条结果", "No attachments.": "暂无附件。", "Add a note": "添加备注", "Add": "添加",
    "Done.": "操作成功。", "Anonymous": "匿名", "Masked": "已脱敏", "System": "系统",
    "Overdue and due soon": "超期与临期工单", "Notifications": "消息提醒", "Mark read": "标为已读",
    "No notifications.": "暂无消息。", "Open ticket": "打开", "Sub-dispatch": "下派",
    "Citizen PIN": "查询密码", "Channel": "渠道", "Type": "类型", "Status": "状态",
    "Title": "标题", "Citizen": "诉求人", "Phone": "来电号码", "Created": "登记时间", "Search": "查询",
    "Acceptance number or phone": "受理号或电话", "No tickets match.": "没有符合条件的工单。",
    "Acceptance number": "受理号", "Audio not supported": "浏览器不支持播放",
    "Knowledge search beside the form: type words and press Search.": "可在此检索知识库：输入关键词后点查询。",
    "views": "次浏览", "Answers": "答案",
    "Call recordings": "通话录音", "Recording": "录音", "All recordings of this ticket": "本工单的全部录音",
    "Fax a PDF": "传真PDF附件", "The reply (as a PDF)": "答复内容（生成PDF）", "Fax number": "传真号码", "Send fax": "发送传真", "Faxes": "传真",
    "Direction": "方向", "Pages": "页数", "Sent": "发出", "Received": "收到", "Fax log": "传真记录",
    "Call record": "通话记录", "IVR trace": "语音导航轨迹", "Blacklist": "黑名单",
    "This number is on the blacklist.": "该号码已在黑名单中。", "Blacklist the caller": "将来电号码加入黑名单",
    "Saved searches": "我的查询", "Save this search as": "保存当前查询为", "Search name": "查询名称",
    "Run": "执行", "Delete": "删除", "No saved searches yet.": "暂无保存的查询。", "Search saved.": "查询已保存。",
    "Show all": "展开全部", "Show less": "收起",
}}


MESSAGES = own_messages(MESSAGES)


install(bp)


def parse_date_end(text: str) -> dt.datetime | None:
    """A YYYY-MM-DD form value as the end of that local day (aware), or None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise TicketInputError(f"日期格式应为YYYY-MM-DD / dates are YYYY-MM-DD, got {text[:20]!r}") from None
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=clock().tz)


def parse_local_datetime(text: str) -> dt.datetime | None:
    """A datetime-local form value (YYYY-MM-DDTHH:MM) in the configured zone, or None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise TicketInputError(f"时间格式不正确 / bad date-time {text[:20]!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=clock().tz)


def params_from_form(event: str, form) -> dict:
    """Turn an action form into keyword arguments for services.transition."""
    p: dict = {}
    fields = EVENT_FIELDS.get(event, ())
    if "department" in fields:
        p["department"] = form.get("department") or None
        if form.get("deadline"):
            p["deadline"] = parse_date_end(form.get("deadline"))
    if "subdepartment" in fields:
        p["department"] = form.get("department") or None
    if "reply" in fields:
        p["reply"] = form.get("reply", "")
    if "reason" in fields or "reason_optional" in fields:
        p["reason"] = form.get("reason", "")
    if "master" in fields:
        p["master"] = (form.get("master") or "").strip() or None
    if "handler" in fields:
        p["handler"] = form.get("handler") or None
    if "until" in fields:
        p["until"] = parse_date_end(form.get("until", ""))
    if "at" in fields:
        p["at"] = parse_local_datetime(form.get("at", ""))
    if "satisfaction" in fields:
        p["satisfaction"] = form.get("satisfaction", "")
    if "public" in fields:
        p["public"] = form.get("public") == "1"
    if event == "reopen" and form.get("department"):
        p["department"] = form.get("department")
    return p


def perform(ticket_ref, event: str, form) -> Ticket | None:
    """Run one action from a form; flashes the outcome. Returns the ticket, or None when refused."""
    if event == "call_back" and form.get("satisfaction") == "unsatisfied":
        event = "call_back_unsatisfied"
    version = form.get("version", "")
    try:
        params = params_from_form(event, form)
        ticket = services.transition(ticket_ref, event, g.user, form.get("note", ""),
                                     expected_version=int(version) if version.isdigit() else None,
                                     clock=clock(), **params)
    except PermissionDenied as error:
        log.info("refused %s on %s for %s: %s", event, ticket_ref, g.user.operator_no, error)
        abort(403)
    except NotFound:
        abort(404)
    except (WorkflowError, TicketInputError) as error:
        flash(error_text(error), "error")
        return None
    if event == "disclose":
        # Publication on the public website (with the citizen's consent there): audited as well as in the
        # ticket's history.
        audit("publish" if ticket.public else "withdraw", "ticket", ticket.number, "")
    if event == "disclose" or ticket.public:
        page_cache.invalidate()  # the public site's kept pages show the case (or its absence) at once
    flash(f"{cf_label('event', event)}：{services_label_done()}", "info")
    return ticket


def services_label_done() -> str:
    return current_app.extensions["hotline"].gettext("Done.")


def action_context(ticket: Ticket) -> dict:
    """What the action forms need: available events and the choices for their selects."""
    user = g.user
    events = services.available_events(user, ticket)
    if "call_back_unsatisfied" in events and "call_back" not in events:
        events.append("call_back")
    events = [e for e in events if e != "call_back_unsatisfied"]
    events.sort(key=lambda e: (e not in PRIMARY, PRIMARY.index(e) if e in PRIMARY else 0, e))
    ctx = {"events": events, "fields": EVENT_FIELDS}
    if "dispatch" in events or "reopen" in events:
        suggested = services.suggest_departments(ticket.category_id, ticket.region_id) if ticket.category_id else []
        ctx["suggested"] = suggested
        ctx["departments"] = [d for d in org.tree() if d.level >= 2 and d.active]
    if "dispatch" in events and _view_exists("stats_hotspots.suggestion_runs"):
        # The model learned from past dispatches (stats.suggestions): shown beside the form, never chosen for
        # the dispatcher.
        from webui.blueprints.stats_hotspots import learned_suggestion

        ctx["learned"] = learned_suggestion(ticket)
    if "merge" in events and _view_exists("stats_hotspots.hotspots"):
        # Open tickets on the same matter nearby (stats.hotspots), offered as the master to merge into.
        from webui.blueprints.stats_hotspots import similar_tickets

        ctx["similar"] = similar_tickets(ticket)
    if "sub_dispatch" in events and ticket.department_id:
        ctx["subdepartments"] = [d for d in org.subtree(ticket.department) if d.id != ticket.department_id
                                 and d.active]
    if "assign" in events and ticket.department_id:
        sub = Department.select(Department.id).where(Department.path.startswith(ticket.department.path))
        ctx["handlers"] = list(User.select().where(User.department.in_(sub) & User.active).order_by(User.operator_no))
    return ctx


def _view_exists(endpoint: str) -> bool:
    return endpoint in current_app.view_functions


def media_context(ticket: Ticket, files: list[Attachment]) -> dict:
    """Recordings, calls and faxes of the ticket as this user may reach them.

    Recordings play through the recorder's /recordings/<id>/audio (its department rule, Range requests and
    the listen log), never from the ticket's own file route; each linked call links to its call record and
    to its IVR trace when those pages exist and the user's role may open them.
    """
    from recorder import access
    from recorder.models import CallRecord, FaxJob
    from recorder.storage import recording_for_attachment, recordings_of_ticket

    user = g.user
    playable = _view_exists("recordings.audio")
    players, attached = {}, set()
    for row in files:
        rec = recording_for_attachment(row.path)
        if rec is None:
            continue
        attached.add(rec.id)
        if playable and rec.status == "ok" and access.may_listen(user, rec):
            players[row.id] = rec
    others = [r for r in recordings_of_ticket(ticket) if r.id not in attached and r.status == "ok"
              and playable and access.may_listen(user, r)]
    calls = list(TicketCall.select().where(TicketCall.ticket == ticket).order_by(TicketCall.id))
    uuids = [c.call_uuid for c in calls]
    records = {}
    if uuids and _view_exists("calls.detail"):
        records = {r.call_uuid: r for r in access.visible_call_records(user).where(CallRecord.call_uuid.in_(uuids))}
    traces = set()
    if uuids and _view_exists("ivr_admin.trace"):
        from ivr.models import IvrTrace

        if user.has_role(*TRACE_ROLES):
            traces = {t.call_uuid for t in IvrTrace.select(IvrTrace.call_uuid).where(IvrTrace.call_uuid.in_(uuids))}
    fax_jobs = list(FaxJob.select().where(FaxJob.ticket == ticket).order_by(FaxJob.id.desc()))
    fax_log = None
    if _view_exists("calls.fax"):
        from webui.blueprints.calls import FAX_ROLES

        fax_log = url_for("calls.fax") if user.has_role(*FAX_ROLES) else None
    # The download link (下载备案) only for whoever may download; the others get the player alone.
    downloadable = {r.id for r in [*players.values(), *others] if _view_exists("recordings.download")
                    and access.may_download(user, r)}
    return {"players": players, "other_recordings": others, "downloadable": downloadable,
            "calls": calls, "call_records": records,
            "traces": traces, "fax_jobs": fax_jobs, "fax_log": fax_log,
            "recordings_page": url_for("recordings.for_ticket", number=ticket.number)
            if _view_exists("recordings.for_ticket") and user.has_role(*access.LISTEN_ROLES) else None}


@bp.route("/tickets/<number>")
@login_required
def detail(number):
    """The ticket with its timeline, attachments, calls, duplicates and the user's actions."""
    ticket = load_ticket(number)
    kb_query = request.args.get("kbq", "").strip()[:100]
    kb_results, kb_error = [], None
    try:
        kb_results = knowledge.search_items(kb_query, limit=8) if kb_query else []
    except SearchNotReady as err:  # the knowledge box says so; the ticket itself is shown as ever
        kb_error = error_text(err)
    files = list(ticket.attachments.order_by(Attachment.id))
    writable = services.may_write(g.user, ticket)
    return render_template(
        "tickets/detail.html", t=ticket, content=chat.shown_content(ticket, privacy.may_see_contact(g.user, ticket)),
        history=services.timeline(ticket), files=files,
        duplicates=list(ticket.duplicates), actions=action_context(ticket),
        category_path=org.category_path(ticket.category if ticket.category_id else None),
        kb_query=kb_query, kb_results=kb_results, kb_error=kb_error, may_write=writable, media=media_context(ticket, files),
        fax_files=[f for f in files if faxout.is_pdf_attachment(f)] if writable else [],
        may_fax=writable and (bool(ticket.reply) or any(faxout.is_pdf_attachment(f) for f in files)),
        may_blacklist=ticket.type == "harassment" and bool(ticket.citizen_phone) and can(g.user, "blacklist.edit"),
        blacklisted=services.is_blacklisted(ticket.citizen_phone) if ticket.citizen_phone else False)


@bp.route("/tickets/<number>/act", methods=["POST"])
@login_required
def act(number):
    """Perform one workflow action posted from a form (event, version, and the event's fields)."""
    ticket = load_ticket(number)
    event = request.form.get("event", "")
    perform(ticket.id, event, request.form)
    return redirect(safe_back(url_for("tickets.detail", number=ticket.number)), code=303)


@bp.route("/tickets/<number>/note", methods=["POST"])
@login_required
def note(number):
    """Append a note to the timeline."""
    ticket = load_ticket(number)

    def add():
        services.add_note(ticket, request.form.get("note", ""), actor=g.user, clock=clock())
        return services_label_done()

    return act_and_return(add, url_for("tickets.detail", number=ticket.number))


@bp.route("/tickets/<number>/attach", methods=["POST"])
@login_required
def attach(number):
    """Upload a file to the ticket (a department's reply letter, photos, scans)."""
    ticket = load_ticket(number)
    if not services.may_write(g.user, ticket):
        refuse(services.WRITE_REFUSED)  # before reading the upload: nothing is stored
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(gettext("Choose a file first."), "error")
    else:
        kind = "reply" if g.user.has_role("dept", "dept_leader") else "upload"
        try:
            attachments.add_attachment(ticket, current_app.extensions["hotline"].config.attachments_dir,
                                       upload.stream, upload.filename, actor=g.user, kind=kind, clock=clock())
            flash(services_label_done(), "info")
        except PermissionDenied as error:
            refuse(error_text(error))
        except attachments.AttachmentError as error:
            flash(error_text(error), "error")
    return redirect(safe_back(url_for("tickets.detail", number=ticket.number)), code=303)


def fax_service():
    """The running FaxService (run.py lends it as services.fax), else one built from the config:
    a queued job is in the database either way, where the scheduler's dispatcher finds it."""
    from recorder.fax import FaxService

    state = current_app.extensions["hotline"]
    lent = state.services.fax
    return lent if lent is not None else FaxService.from_config(state.config, clock=clock())


@bp.route("/tickets/<number>/fax", methods=["POST"])
@login_required
def send_fax(number):
    """Fax the ticket's reply (rendered as a PDF) or one of its PDF attachments to a number."""
    ticket = load_ticket(number)
    config = current_app.extensions["hotline"].config

    def send():
        if request.form.get("attachment") == "reply":
            job = faxout.send_reply(ticket, request.form.get("number", ""), g.user, fax_service(),
                                    config.attachments_dir, font=(config.extra or {}).get("HOTLINE_FAX_FONT", ""),
                                    clock=clock())
        else:
            job = faxout.send_attachment(ticket, request.form.get("attachment"), request.form.get("number", ""),
                                         g.user, fax_service(), config.attachments_dir, clock=clock())
        return f"传真已排队（任务 {job.id}）/ fax queued (job {job.id})"

    return act_and_return(send, url_for("tickets.detail", number=ticket.number))


@bp.route("/tickets/<number>/blacklist", methods=["POST"])
@login_required
def blacklist_caller(number):
    """Blacklist the caller of a harassment ticket (centre roles)."""
    ticket = load_ticket(number)

    def add():
        citizen = services.blacklist_caller(ticket, g.user, request.form.get("reason", ""), clock=clock())
        audit("blacklist_add", "citizen", citizen.phone, f"ticket {ticket.number}: {citizen.blacklist_reason}")
        return "已加入黑名单 / the number is blacklisted"

    return act_and_return(add, url_for("tickets.detail", number=ticket.number))


@bp.route("/tickets/<number>/files/<int:file_id>")
@login_required
def file(number, file_id):
    """Play or download an attachment of a ticket the user may see.

    A call recording is not served from here: it goes to the recorder's /recordings/<id>/audio, which
    applies the recording rules and logs the listen.
    """
    ticket = load_ticket(number)
    row = Attachment.get_or_none((Attachment.id == file_id) & (Attachment.ticket == ticket))
    if row is None:
        abort(404)
    if row.path.startswith("recordings/"):
        from recorder.storage import recording_for_attachment

        rec = recording_for_attachment(row.path)
        if rec is None or not _view_exists("recordings.audio"):
            abort(404)
        return redirect(url_for("recordings.audio", rec_id=rec.id), code=302)
    try:
        path = attachments.resolve(current_app.extensions["hotline"].config.attachments_dir, row)
    except attachments.AttachmentError:
        abort(404)
    if not path.is_file():
        abort(404)
    return send_upload(path, row.content_type, row.filename)


@bp.route("/tickets/search")
@login_required
def search():
    """Search by number, phone, text, dates, status, type, department and category (with the categories
    below it), within what the user may see; the user's saved searches beside the form."""
    args = request.args
    criteria = {k: args.get(k, "").strip()[:200] for k in services.SEARCH_FILTERS}
    results, error = [], None
    if any(criteria.values()):
        try:
            results = services.search_tickets(g.user, **criteria, limit=200)
        except (TicketInputError, ValueError, SearchNotReady) as exc:
            error = error_text(exc)
    return _search_page(criteria, results, error)


def _search_page(criteria: dict, results: list, error, status: int = 200):
    departments = [d for d in org.tree() if services.may_view(g.user, Ticket(department=d))] \
        if not can(g.user, "ticket.view_all") else org.tree()
    return render_template("tickets/search.html", c=criteria, results=results, error=error,
                           searched=any(criteria.values()), departments=departments,
                           categories=org.category_tree(), saved=saved_searches.list_for(g.user),
                           statuses=wf.STATUSES, types=services.TICKET_TYPES), status


@bp.route("/tickets/searches", methods=["POST"])
@login_required
def save_search():
    """Save the search's filters (every other posted field but the name) under a name, for this user."""
    filters = {k: v for k, v in request.form.items() if k not in ("csrf_token", "name")}
    try:
        row = saved_searches.save(g.user, request.form.get("name", ""), filters, clock=clock())
    except TicketInputError as error:
        flash(error_text(error), "error")
        known = {k: v for k, v in filters.items() if k in services.SEARCH_FILTERS}
        return redirect(url_for("tickets.search", **known), code=303)
    flash(current_app.extensions["hotline"].gettext("Search saved."), "info")
    return redirect(url_for("tickets.run_search", search_id=row.id), code=303)


@bp.route("/tickets/searches/<int:search_id>")
@login_required
def run_search(search_id):
    """Run one of the user's saved searches (another user's answers 404, as a missing one does)."""
    try:
        _row, filters, results = saved_searches.run(g.user, search_id)
    except NotFound as error:
        error_page = werkzeug_not_found(error_text(error))
        raise error_page from None
    except TicketInputError as error:
        return _search_page({k: "" for k in services.SEARCH_FILTERS}, [], error_text(error), 400)
    return _search_page({k: filters.get(k, "") for k in services.SEARCH_FILTERS}, results, None)


@bp.route("/tickets/searches/<int:search_id>/delete", methods=["POST"])
@login_required
def delete_search(search_id):
    """Delete one of the user's saved searches."""
    try:
        saved_searches.delete(g.user, search_id)
    except NotFound as error:
        raise werkzeug_not_found(error_text(error)) from None
    flash(services_label_done(), "info")
    return redirect(url_for("tickets.search"), code=303)


def werkzeug_not_found(message: str) -> NotFoundPage:
    """A 404 whose page says ``message`` (zh / en)."""
    error = NotFoundPage(message)
    error.hotline_message = message
    return error
