"""Knowledge-base pages: ranked Chinese search, an item with its answers (views and last-viewed times
counted; readers who are not editors or reviewers see reviewed answers only), an answer's file to download,
and for editors new items, edits, answers (edit, delete, file) and review, each change audited; a JSON
search for the box beside ticket forms."""
from __future__ import annotations

from typing import Any, Callable

from flask import (Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request,
                   url_for)

from caseflow import attachments, knowledge, search
from caseflow.knowledge import KnowledgeError
from caseflow.models import Category, Department, KnowledgeAnswer, KnowledgeItem, User
from caseflow.roles import can
from caseflow.search import SearchNotReady
from caseflow.workflow import PermissionDenied
from webui.app import NavItem, localtime
from webui.blueprints.tickets import clock, install, own_messages
from webui import page_cache
from webui.i18n import error_text, gettext
from webui.security import audit, login_required
from webui.views import get_or_404, send_upload

bp = Blueprint("kb", __name__, url_prefix="/kb")
install(bp)

NAV = [NavItem("Knowledge base", "kb.index", frozenset({"agent", "team_lead", "centre", "centre_leader", "dept",
                                                       "dept_leader", "leader", "admin", "entry"}), order=45)]
MESSAGES = own_messages({"zh": {
    "New item": "新增知识", "Edit": "编辑", "Save": "保存", "Review": "审核", "Published": "发布时间",
    "Publisher": "发布人", "Views": "浏览次数", "Last viewed": "最近浏览", "Remarks": "备注",
    "Review state": "审核状态", "Add an answer": "添加答案", "Score": "相关度", "Delete": "删除",
    "No items match.": "没有匹配的知识。", "Type words to search, e.g. noise at night": "输入关键词检索，例如：噪声 扰民",
    "Only reviewed": "仅显示已审核", "Answer": "答案",
    # the desk's knowledge panel (webui/static/desk_kb.js)
    "Use in reply": "引用到答复", "No reviewed knowledge matches.": "没有匹配的已审核知识。",
    "The knowledge base did not answer.": "知识库暂时无法访问，请稍后再试。", "Back to the results": "返回检索结果",
    "Publishing department": "发布部门",
    "Edit the answer": "修改答案", "Delete the answer": "删除答案", "Reason": "理由", "Attach a file": "上传附件",
    "Download the file": "下载附件", "Changes": "修改记录", "Answer saved: it waits for review again.":
        "答案已保存，需重新审核后话务员才能看到。", "Answer deleted.": "答案已删除。",
    "File attached: the answer waits for review again.": "附件已上传，答案需重新审核。",
    "On the public website": "在门户网站公开", "Not on the public website": "不在门户网站公开",
    "Show on the public website (once reviewed)": "在门户网站公开（审核通过后显示）",
    "Take off the public website": "从门户网站撤下", "Saved.": "已保存。",
    "kbaction:edit": "修改", "kbaction:delete": "删除", "kbaction:attach": "上传附件", "kbaction:review": "审核",
}})


def _need(permission: str) -> None:
    if not can(g.user, permission):
        abort(403)


@bp.route("/")
@login_required
def index():
    """Search box and ranked results; the newest items when nothing is asked."""
    _need("kb.view")
    q = request.args.get("q", "").strip()[:100]
    only = request.args.get("approved") == "1"
    error, status = None, 200
    if q:
        try:
            results = knowledge.search_items(q, limit=50, approved_only=only)
        except SearchNotReady as err:  # a big database just migrated: the start is building the index
            results, error, status = [], error_text(err), 503
    else:
        results = [(i, 0.0) for i in KnowledgeItem.select().order_by(KnowledgeItem.published_at.desc()).limit(30)]
    return render_template("kb/index.html", q=q, results=results, only=only, error=error,
                           categories=list(Category.select().order_by(Category.code))), status


@bp.route("/search.json")
@login_required
def search_json():
    """Up to 10 ranked results for a query (the box beside ticket forms, the desk's panel): id, title, score,
    url (the page), data_url (the item as JSON), ``title_marks`` and ``snippet`` as [{text, hit}] pieces
    with the query's words marked (plain text: the page escapes it), category, department (the
    publisher's), published date and review state. ``approved=1`` keeps reviewed items only (the desk:
    what an agent reads to a citizen must have been reviewed). While the full-text index is being built:
    503 with ``{"error": the line in the user's language}`` (the desk's panel shows it)."""
    _need("kb.view")
    q = request.args.get("q", "").strip()[:100]
    try:
        results = knowledge.search_items(q, limit=10, approved_only=request.args.get("approved") == "1")
    except SearchNotReady as err:
        return jsonify({"error": error_text(err)}), 503
    departments = _publisher_departments([item for item, _score in results])
    return jsonify([{"id": i.id, "title": i.title, "score": s, "url": url_for("kb.item", item_id=i.id),
                     "data_url": url_for("kb.item_json", item_id=i.id), "title_marks": _pieces(i.title, q),
                     "snippet": _pieces(i.content, q, SNIPPET_WIDTH),
                     **_facts(i, departments)}
                    for i, s in results])


SNIPPET_WIDTH = 80


def _pieces(text: str, query: str, width: int = 0) -> list[dict]:
    return [{"text": piece, "hit": hit} for piece, hit in search.highlight(text, query, width)]


def _publisher_departments(items) -> dict[int, str]:
    """{publisher user id: department name} for ``items`` in one query."""
    ids = {i.publisher_id for i in items if i.publisher_id}
    if not ids:
        return {}
    rows = (User.select(User.id, Department.name).join(Department).where(User.id.in_(ids)).tuples())
    return dict(rows)


def _facts(item: KnowledgeItem, departments: dict[int, str]) -> dict:
    return {"category": item.category.name if item.category_id else "",
            "department": departments.get(item.publisher_id, ""),
            "published": localtime(clock(), item.published_at, "%Y-%m-%d"),
            "review_state": item.review_state}


@bp.route("/<int:item_id>.json")
@login_required
def item_json(item_id):
    """One item for reading inline (the desk's panel): its content and answers as plain text; counts a view.
    ``approved=1`` answers 404 for an unreviewed item and leaves out unreviewed answers."""
    _need("kb.view")
    approved = request.args.get("approved") == "1"
    row = _load(item_id)
    if approved and row.review_state != "approved":
        abort(404)
    answers = knowledge.answers_for(row, g.user, approved_only=approved)
    knowledge.record_view(row, clock(), answers=tuple(answers))
    return jsonify({"id": row.id, "title": row.title, "content": row.content,
                    "url": url_for("kb.item", item_id=row.id), **_facts(row, _publisher_departments([row])),
                    "answers": [{"id": a.id, "content": a.content, "review_state": a.review_state,
                                 "file_url": url_for("kb.answer_file", item_id=row.id, answer_id=a.id)
                                 if a.attachment_path else ""} for a in answers]})


@bp.route("/<int:item_id>")
@login_required
def item(item_id):
    """An item with all its answers; counts a view."""
    _need("kb.view")
    row = _load(item_id)
    shown = knowledge.answers_for(row, g.user)
    knowledge.record_view(row, clock(), answers=tuple(shown))
    row = KnowledgeItem.get_by_id(item_id)
    return render_template("kb/item.html", item=row, answers=knowledge.answers_for(row, g.user),
                           history=knowledge.history(row) if knowledge.may_see_unreviewed(g.user) else [],
                           categories=list(Category.select().order_by(Category.code)))


@bp.route("/new", methods=["POST"])
@login_required
def create():
    """Add an item (pending review)."""
    _need("kb.edit")
    try:
        row = knowledge.create_item(request.form.get("title", ""), request.form.get("content", ""),
                                    category=_category(), publisher=g.user,
                                    remarks=request.form.get("remarks", ""), clock=clock())
    except (KnowledgeError, PermissionDenied) as error:
        flash(error_text(error), "error")
        return redirect(url_for("kb.index"), code=303)
    return redirect(url_for("kb.item", item_id=row.id), code=303)


def _category():
    value = request.form.get("category", "")
    return Category.get_or_none(Category.id == int(value)) if value.isdigit() else None


def _load(item_id) -> KnowledgeItem:
    return get_or_404(KnowledgeItem, KnowledgeItem.id == item_id)


EDIT_ERRORS = (KnowledgeError, PermissionDenied)
FILE_ERRORS = (KnowledgeError, PermissionDenied, attachments.AttachmentError)


def _change(item_id, change: Callable[[], Any], audited: Callable[[Any], tuple] | None = None, done: str = "",
            errors: tuple = EDIT_ERRORS):
    """An editor's change of an item: ``change()``, whose refusal is flashed; else ``audit(*audited(result))``
    and the ``done`` message. Back to the item either way."""
    try:
        result = change()
    except errors as error:
        flash(error_text(error), "error")
    else:
        if audited is not None:
            audit(*audited(result))
        page_cache.invalidate()  # a public guide shows the change at once
        if done:
            flash(_t(done), "info")
    return redirect(url_for("kb.item", item_id=item_id), code=303)


def _not_found(error: KnowledgeError):
    """A 404 whose page says why (an answer the user may not read, a file gone)."""
    from webui.blueprints.tickets import werkzeug_not_found

    return werkzeug_not_found(error_text(error))


@bp.route("/<int:item_id>/edit", methods=["POST"])
@login_required
def edit(item_id):
    """Change an item (it goes back to review)."""
    _need("kb.edit")
    row = _load(item_id)
    return _change(item_id, lambda: knowledge.update_item(
        row, g.user, title=request.form.get("title", ""), content=request.form.get("content", ""),
        category=_category(), remarks=request.form.get("remarks", "")))


@bp.route("/<int:item_id>/public", methods=["POST"])
@login_required
def set_public(item_id):
    """Show the item on the public website (once reviewed) or take it off; audited."""
    _need("kb.edit")
    row = _load(item_id)
    public = request.form.get("public") == "1"
    return _change(item_id, lambda: knowledge.set_public(row, public, g.user),
                   lambda item: ("kb_public" if public else "kb_private", "knowledge_item", item.id, item.title[:100]),
                   "Saved.")


@bp.route("/<int:item_id>/answers", methods=["POST"])
@login_required
def add_answer(item_id):
    """Add an answer, optionally with an attachment."""
    _need("kb.edit")
    row = _load(item_id)
    upload = request.files.get("file")
    file = (_files_root(), upload.stream, upload.filename) if upload is not None and upload.filename else None
    return _change(item_id, lambda: knowledge.add_answer(row, request.form.get("content", ""), actor=g.user,
                                                         remarks=request.form.get("remarks", ""), clock=clock(),
                                                         file=file),
                   lambda answer: ("kb_answer_add", "knowledge_answer", answer.id, f"item {row.id}" + (
                       f": {answer.attachment_name} sha256 {answer.attachment_sha256}" if file else "")),
                   errors=FILE_ERRORS)


def _answer(item_id, answer_id) -> tuple[KnowledgeItem, KnowledgeAnswer]:
    """The item and one of its answers the user may read, or 404 saying so."""
    row = _load(item_id)
    try:
        return row, knowledge.answer_for(row, answer_id, g.user)
    except KnowledgeError as error:
        raise _not_found(error) from None


@bp.route("/<int:item_id>/answers/<int:answer_id>/edit", methods=["POST"])
@login_required
def edit_answer(item_id, answer_id):
    """Change an answer's text or remarks (a changed text goes back to review); audited."""
    _need("kb.edit")
    row, answer = _answer(item_id, answer_id)
    return _change(item_id, lambda: knowledge.edit_answer(answer, g.user, content=request.form.get("content"),
                                                          remarks=request.form.get("remarks"), clock=clock()),
                   lambda _done: ("kb_answer_edit", "knowledge_answer", answer.id, f"item {row.id}"),
                   "Answer saved: it waits for review again.")


@bp.route("/<int:item_id>/answers/<int:answer_id>/delete", methods=["POST"])
@login_required
def delete_answer(item_id, answer_id):
    """Delete an answer (softly: its text and file are kept in the history); audited."""
    _need("kb.edit")
    row, answer = _answer(item_id, answer_id)
    reason = request.form.get("reason", "")
    return _change(item_id, lambda: knowledge.delete_answer(answer, g.user, reason, clock=clock()),
                   lambda _done: ("kb_answer_delete", "knowledge_answer", answer.id, f"item {row.id}: {reason[:200]}"),
                   "Answer deleted.")


@bp.route("/<int:item_id>/answers/<int:answer_id>/file", methods=["POST"])
@login_required
def attach_answer_file(item_id, answer_id):
    """Give an answer a file (type read from its content; the answer goes back to review); audited."""
    _need("kb.edit")
    row, answer = _answer(item_id, answer_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(gettext("Choose a file first."), "error")
        return redirect(url_for("kb.item", item_id=item_id), code=303)
    return _change(item_id, lambda: knowledge.attach_file(answer, g.user, _files_root(), upload.stream,
                                                          upload.filename, clock()),
                   lambda done: ("kb_answer_file", "knowledge_answer", answer.id, f"item {row.id}: "
                                 f"{done.attachment_name} {done.attachment_size} B sha256 {done.attachment_sha256}"),
                   "File attached: the answer waits for review again.", FILE_ERRORS)


@bp.route("/<int:item_id>/answers/<int:answer_id>/file")
@login_required
def answer_file(item_id, answer_id):
    """Download an answer's file: only an answer the user may read (reviewed ones for agents); PDFs and
    images open in the browser, anything else is a download."""
    _need("kb.view")
    _row, answer = _answer(item_id, answer_id)
    try:
        path, kind = knowledge.answer_file(answer, _files_root(), clock())
    except KnowledgeError as error:
        raise _not_found(error) from None
    return send_upload(path, kind, answer.attachment_name)


def _files_root():
    return current_app.extensions["hotline"].config.attachments_dir


def _t(message: str) -> str:
    return current_app.extensions["hotline"].gettext(message)


@bp.route("/<int:item_id>/review", methods=["POST"])
@login_required
def review(item_id):
    """Approve or reject an item or one of its answers."""
    _need("kb.review")
    row = _load(item_id)
    answer_id = request.form.get("answer", "")
    target = row
    if answer_id.isdigit():
        target = get_or_404(KnowledgeAnswer, KnowledgeAnswer.id == int(answer_id), KnowledgeAnswer.item == row)
    state = request.form.get("state", "")
    return _change(item_id, lambda: knowledge.review(target, state, g.user, request.form.get("remarks")),
                   lambda _done: ("kb_review", "knowledge_answer" if target is not row else "knowledge_item",
                                  target.id, state))


@bp.route("/<int:item_id>/delete", methods=["POST"])
@login_required
def delete(item_id):
    """Remove an item."""
    _need("kb.edit")
    knowledge.delete_item(_load(item_id), g.user)
    return redirect(url_for("kb.index"), code=303)
