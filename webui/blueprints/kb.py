"""Knowledge-base pages: ranked Chinese search, an item with its answers (views counted), and for
editors new items, edits, answers and review; a JSON search for the box beside ticket forms."""
from __future__ import annotations

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for

from caseflow import knowledge
from caseflow.knowledge import KnowledgeError
from caseflow.models import Category, KnowledgeAnswer, KnowledgeItem
from caseflow.roles import can
from caseflow.workflow import PermissionDenied
from webui.app import NavItem
from webui.blueprints.tickets import clock, install, own_messages
from webui.security import login_required

bp = Blueprint("kb", __name__, url_prefix="/kb")
install(bp)

NAV = [NavItem("Knowledge base", "kb.index", frozenset({"agent", "team_lead", "centre", "centre_leader", "dept",
                                                       "dept_leader", "leader", "admin", "entry"}), order=45)]
MESSAGES = own_messages({"zh": {
    "New item": "新增知识", "Edit": "编辑", "Save": "保存", "Review": "审核", "Published": "发布时间",
    "Publisher": "发布人", "Views": "浏览次数", "Last viewed": "最近浏览", "Remarks": "备注",
    "Review state": "审核状态", "Add an answer": "添加答案", "Score": "相关度", "Delete": "删除",
    "No items match.": "没有匹配的知识。", "Type words to search, e.g. 噪声 扰民": "输入关键词检索，例如：噪声 扰民",
    "Only reviewed": "仅显示已审核", "Answer": "答案",
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
    if q:
        results = knowledge.search_items(q, limit=50, approved_only=only)
    else:
        results = [(i, 0.0) for i in KnowledgeItem.select().order_by(KnowledgeItem.published_at.desc()).limit(30)]
    return render_template("kb/index.html", q=q, results=results, only=only,
                           categories=list(Category.select().order_by(Category.code)))


@bp.route("/search.json")
@login_required
def search_json():
    """[{id, title, score, url}] for a query (the search box beside ticket forms)."""
    _need("kb.view")
    q = request.args.get("q", "").strip()[:100]
    return jsonify([{"id": i.id, "title": i.title, "score": s, "url": url_for("kb.item", item_id=i.id)}
                    for i, s in knowledge.search_items(q, limit=10)])


@bp.route("/<int:item_id>")
@login_required
def item(item_id):
    """An item with all its answers; counts a view."""
    _need("kb.view")
    row = KnowledgeItem.get_or_none(KnowledgeItem.id == item_id)
    if row is None:
        abort(404)
    knowledge.record_view(row, clock())
    row = KnowledgeItem.get_by_id(item_id)
    return render_template("kb/item.html", item=row,
                           answers=list(row.answers.order_by(KnowledgeAnswer.id)),
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
        flash(str(error), "error")
        return redirect(url_for("kb.index"), code=303)
    return redirect(url_for("kb.item", item_id=row.id), code=303)


def _category():
    value = request.form.get("category", "")
    return Category.get_or_none(Category.id == int(value)) if value.isdigit() else None


def _load(item_id) -> KnowledgeItem:
    row = KnowledgeItem.get_or_none(KnowledgeItem.id == item_id)
    if row is None:
        abort(404)
    return row


@bp.route("/<int:item_id>/edit", methods=["POST"])
@login_required
def edit(item_id):
    """Change an item (it goes back to review)."""
    _need("kb.edit")
    row = _load(item_id)
    try:
        knowledge.update_item(row, g.user, title=request.form.get("title", ""),
                              content=request.form.get("content", ""), category=_category(),
                              remarks=request.form.get("remarks", ""))
    except (KnowledgeError, PermissionDenied) as error:
        flash(str(error), "error")
    return redirect(url_for("kb.item", item_id=item_id), code=303)


@bp.route("/<int:item_id>/answers", methods=["POST"])
@login_required
def add_answer(item_id):
    """Add an answer, optionally with an attachment."""
    _need("kb.edit")
    row = _load(item_id)
    attachment = None
    upload = request.files.get("file")
    try:
        if upload is not None and upload.filename:
            from flask import current_app

            from caseflow import attachments

            attachment = attachments.store_file(current_app.extensions["hotline"].config.attachments_dir,
                                                upload.stream, upload.filename, clock())
        knowledge.add_answer(row, request.form.get("content", ""), actor=g.user,
                             remarks=request.form.get("remarks", ""), attachment=attachment, clock=clock())
    except (KnowledgeError, PermissionDenied, ValueError) as error:
        flash(str(error), "error")
    return redirect(url_for("kb.item", item_id=item_id), code=303)


@bp.route("/<int:item_id>/review", methods=["POST"])
@login_required
def review(item_id):
    """Approve or reject an item or one of its answers."""
    _need("kb.review")
    row = _load(item_id)
    answer_id = request.form.get("answer", "")
    target = row
    if answer_id.isdigit():
        target = KnowledgeAnswer.get_or_none((KnowledgeAnswer.id == int(answer_id)) & (KnowledgeAnswer.item == row))
        if target is None:
            abort(404)
    try:
        knowledge.review(target, request.form.get("state", ""), g.user, request.form.get("remarks"))
    except (KnowledgeError, PermissionDenied) as error:
        flash(str(error), "error")
    return redirect(url_for("kb.item", item_id=item_id), code=303)


@bp.route("/<int:item_id>/delete", methods=["POST"])
@login_required
def delete(item_id):
    """Remove an item."""
    _need("kb.edit")
    knowledge.delete_item(_load(item_id), g.user)
    return redirect(url_for("kb.index"), code=303)
