"""Messages on screen (issue 12 item 4): the "messages" panel of the ticket page (SMS and e-mail, both
directions, with their delivery state), the centre's message log (filters, pages, masking per
caseflow.privacy, failed messages with their error and an audited retry), and the administrator's page for
the message templates (preview with sample values, checked in the sandbox, reset to the default; audited).
The logic is channels.messagelog and channels.templates; these views only call them."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for

from channels import messagelog, templates
from channels.messagelog import LogInputError
from channels.models import STATUSES
from webui.app import NavItem
from webui.blueprints.agent_tickets import parse_page
from webui.blueprints.common import own_messages
from webui.i18n import gettext, one_language
from webui.security import audit, require_roles

bp = Blueprint("messages", __name__)

LOG_ROLES = ("centre", "centre_leader", "team_lead", "admin")
RETRY_ROLES = ("centre", "centre_leader", "admin")
TEMPLATE_ROLES = ("admin",)
NAV = [NavItem("Message log", "messages.log", frozenset(LOG_ROLES), order=64),
       NavItem("Message templates", "messages.template_list", frozenset(TEMPLATE_ROLES), order=66)]
# What each template variable stands for (channels.templates.DEFAULTS name them).
VARIABLE_NAMES = {"number": "Acceptance number", "pin": "Query code", "title": "Ticket title", "reply": "Reply",
                  "rating": "Rating", "words": "Progress", "department": "Department", "topic": "Topic",
                  "text": "Text", "code": "Verification code", "minutes": "Minutes it is good for",
                  "deadline": "Deadline", "kind": "Alarm"}
MESSAGES = own_messages({"zh": {
    "Acceptance number": "受理号", "Query code": "查询码", "Ticket title": "工单标题", "Reply": "答复内容",
    "Rating": "评价结果", "Progress": "办理进度", "Department": "承办单位", "Topic": "资料主题", "Text": "正文",
    "Verification code": "验证码", "Minutes it is good for": "有效分钟数", "Deadline": "办理时限", "Alarm": "告警",
    "No variables": "无变量", "Chinese text": "中文文本", "English text": "英文文本",
    "Texts of the SMS and e-mails the hotline sends. A variable is written in double braces, as in the Variables "
    "column; only the listed ones may be used.":
        "热线发出的短信和邮件的文本。变量写在双花括号中（见“变量”一列），只能使用列出的变量。",
    "The message is queued again.": "消息已重新排队发送。", "Back to the default text.": "已恢复默认文本。",
    "The template is saved.": "模板已保存。",
}})


@bp.context_processor
def _template_words():
    def variable_name(name: str) -> str:
        return gettext(VARIABLE_NAMES.get(name, name))
    return {"variable_name": variable_name}


def _title(key: str) -> str:
    """A template's name in the page's language (channels.templates.DEFAULTS carry both)."""
    zh, en = templates.DEFAULTS[key].title
    return zh if (g.get("lang") or "zh") == "zh" else en


def _one(error) -> str:
    return one_language(str(error), g.get("lang") or "zh")


def _clock():
    return current_app.extensions["hotline"].services.clock


@bp.app_context_processor
def _ticket_messages():
    def ticket_messages(ticket) -> list[dict]:
        """The ticket's SMS and e-mails, oldest first, each with what this user may see of it."""
        user = getattr(g, "user", None)
        return [{"m": m, **messagelog.shown(user, m)} for m in messagelog.for_ticket(ticket)]
    return {"ticket_messages": ticket_messages}


@bp.route("/centre/messages")
@require_roles(*LOG_ROLES)
def log():
    """Every message, newest first, filtered by channel, direction, status, date and address."""
    page = parse_page(request.args.get("page"))
    error, status = "", 200
    try:
        log_filter = messagelog.parse_filter(request.args)
    except LogInputError as exc:
        log_filter, error, status = messagelog.LogFilter(), _one(exc), 400
    rows, total, page, pages = messagelog.search(log_filter, _clock().tz, page)
    entries = [{"m": m, **messagelog.shown(g.user, m)} for m in rows]
    audit("message_log_view", "message", "", str(log_filter.as_args())[:200])
    return render_template("messages/log.html", entries=entries, total=total, page=page, pages=pages,
                           filters=log_filter.as_args(), error=error, statuses=STATUSES,
                           channels=messagelog.CHANNELS, may_retry=g.user.has_role(*RETRY_ROLES)
                           ), status


@bp.route("/centre/messages/<int:message_id>/retry", methods=["POST"])
@require_roles(*RETRY_ROLES)
def retry(message_id):
    """Queue a failed outgoing message again; audited with who did it."""
    try:
        message = messagelog.retry(message_id, clock=_clock())
    except LookupError:
        abort(404)
    except LogInputError as exc:
        flash(_one(exc), "error")
        return redirect(url_for("messages.log", **_back_filters()), code=303)
    audit("message_retry", "message", message.id, f"{message.channel} {message.purpose}")
    flash(gettext("The message is queued again."), "info")
    return redirect(url_for("messages.log", **_back_filters()), code=303)


def _back_filters() -> dict:
    try:
        return messagelog.parse_filter(request.form).as_args()
    except LogInputError:
        return {}


@bp.route("/admin/templates")
@require_roles(*TEMPLATE_ROLES)
def template_list():
    """Each template key with its zh-CN and English text in force (changed ones marked)."""
    rows = [{"key": key, "default": default, "zh": templates.source(key, "zh"), "en": templates.source(key, "en"),
             "title": _title(key),
             "changed": {lang: templates.stored(key, lang) is not None for lang in ("zh", "en")}}
            for key, default in templates.DEFAULTS.items()]
    return render_template("messages/templates.html", rows=rows)


@bp.route("/admin/templates/<key>/<lang>", methods=["GET", "POST"])
@require_roles(*TEMPLATE_ROLES)
def template_edit(key, lang):
    """Edit one text: preview (sample values), save (checked; audited), or reset to the default (audited)."""
    if key not in templates.DEFAULTS or lang not in ("zh", "en"):
        abort(404)
    default = templates.DEFAULTS[key]
    body, preview, error, status = templates.source(key, lang), None, "", 200
    if request.method == "POST":
        action = request.form.get("action", "preview")
        body = request.form.get("body", "")
        try:
            if action == "reset":
                templates.reset(key, lang)
                audit("template_reset", "template", f"{key}/{lang}", "")
                flash(gettext("Back to the default text."), "info")
                return redirect(url_for("messages.template_edit", key=key, lang=lang), code=303)
            if action == "save":
                row = templates.save(key, lang, body, actor_label=g.user.operator_no)
                audit("template_save", "template", f"{key}/{lang}", row.body[:200])
                flash(gettext("The template is saved."), "info")
                return redirect(url_for("messages.template_edit", key=key, lang=lang), code=303)
            if action != "preview":
                abort(400)
            preview = templates.preview(key, lang, body)
        except templates.TemplateInputError as exc:
            error, status = _one(exc), 400
    return render_template("messages/template_edit.html", key=key, lang=lang, default=default, body=body,
                           title=_title(key), limit=templates.MAX_BODY,
                           preview=preview, error=error, samples=templates.sample_values(key),
                           changed=templates.stored(key, lang) is not None), status
