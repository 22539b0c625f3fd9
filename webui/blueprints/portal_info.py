"""The public website's reading pages (issue 11 item 4, P2 §2.8): guides from the knowledge base (items the
editors marked public and that are reviewed, with the desk's Chinese search), the centre's published notices,
and the active opinion poll (民意调查) answered on the web, one answer per phone number, counted with the
phone answers. The frame (CSP, language, 404 page, picture CAPTCHA) is the portal blueprint's."""
from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request

from caseflow import knowledge, public_notices, services
from caseflow.models import Category, KnowledgeAnswer
from caseflow.search import SearchNotReady
from ivr import polls
from webui import security
from webui.blueprints import portal as frame
from webui.i18n import error_text
from webui.page_cache import cached_page
from webui.security import audit, client_ip, public

bp = Blueprint("portal_info", __name__)
bp.url_value_preprocessor(frame._limit_body)
bp.before_request(frame._language)
bp.after_request(frame._headers)
bp.register_error_handler(404, frame._not_found)
bp.register_error_handler(413, frame._too_large)

MESSAGES = {"zh": {
    "Guides": "办事指南", "Notices": "公告", "Opinion poll": "民意调查",
    "Laws, procedures, departments and city services.": "法律法规、办事指南、部门职能、城市服务指南。",
    "No guides match.": "没有匹配的指南。", "No notices.": "暂无公告。",
    "There is no poll at the moment.": "目前没有进行中的调查。",
    "One answer per phone number. Answers on the phone and on the web are counted together.":
        "每个电话号码限答一次，电话和网站的答卷合并统计。",
    "Thank you, your answers have been recorded.": "感谢参与，您的答卷已记录。",
    "Published on": "发布日期",
}}


@bp.route("/guides")
@public
def guides():
    """办事指南: public, reviewed knowledge items, searched like the desk's knowledge panel."""
    query = (request.args.get("q") or "")[:50]
    value = request.args.get("category", "")
    category = Category.get_or_none(Category.id == int(value)) if value.isdigit() else None
    error, status = None, 200
    try:
        rows = knowledge.public_items(query, category)
    except SearchNotReady as err:  # a big database just migrated: the start is building the index
        rows, error, status = [], error_text(err), 503
    if query:
        audit("portal_guide_search", "web", "", query, user=None)
    categories = [c for c in Category.select().where(Category.active).order_by(Category.code)]
    return render_template("portal/guides.html", rows=rows, q=query, category=category, categories=categories,
                           error=error), status


@bp.route("/guides/<int:item_id>")
@cached_page
@public
def guide(item_id):
    """One guide with its reviewed answers (never a file, remark or pending answer)."""
    item = knowledge.public_item(item_id)
    if item is None:
        abort(404)
    answers = [a.content for a in KnowledgeAnswer.select(KnowledgeAnswer.content).where(
        (KnowledgeAnswer.item == item) & KnowledgeAnswer.deleted_at.is_null()
        & (KnowledgeAnswer.review_state == "approved")).order_by(KnowledgeAnswer.id)]
    return render_template("portal/guide.html", item=item, answers=answers)


@bp.route("/notices")
@cached_page
@public
def notices():
    """政府公告: published notices, newest first."""
    return render_template("portal/notices.html", rows=public_notices.published())


@bp.route("/notices/<int:notice_id>")
@cached_page
@public
def notice(notice_id):
    """One published notice."""
    row = public_notices.published_one(notice_id)
    if row is None:
        abort(404)
    return render_template("portal/notice.html", notice=row)


@bp.route("/poll", methods=["GET", "POST"])
@public
def poll():
    """民意调查 on the web: the active poll, a phone number and the picture code; one answer per number."""
    active = polls.active_poll()
    questions = polls.questions_of(active) if active is not None else []
    choices = {q.id: polls.choice_names(q) for q in questions}

    def page(error=None, status=200, done=False):
        return render_template("portal/poll.html", poll=active, questions=questions, choices=choices,
                               error=error, done=done, form=request.form), status

    if request.method == "GET" or active is None:
        return page(status=200 if request.method == "GET" else 404)
    ip, now = client_ip(), security.now_utc()
    if len(security.audit_failures("portal_captcha_failed", now - frame.CAPTCHA_WINDOW, ip=ip)) >= frame._setting(
            "HOTLINE_PORTAL_CAPTCHA_FAILURES_PER_IP"):
        return page(frame._t("Too many wrong picture codes from this address. Please try again later."), 429)
    captcha_id = frame._check_captcha(request.form.get("captcha", ""))
    if captcha_id is None:
        audit("portal_captcha_failed", "web", "", "poll", user=None)
        return page(frame._t("The picture code is wrong or has expired. Please type the new one."), 400)
    try:
        phone = services.clean_phone(request.form.get("phone", ""))
    except services.TicketInputError:
        phone = None
    if not phone:
        return page(error_text("电话号码格式不正确 / the phone number is malformed"), 400)
    answers = {key[2:]: value for key, value in request.form.items() if key.startswith("q_")}
    try:
        polls.answer_on_web(active, phone, answers, f"web:{captcha_id}")
    except polls.PollError as error:
        audit("portal_refused", "poll", active.id, f"poll: {error}"[:500], user=None)
        return page(error_text(error), error.status)
    audit("portal_poll", "poll", active.id, f"{len(questions)} answer(s)", user=None)
    return page(done=True)
