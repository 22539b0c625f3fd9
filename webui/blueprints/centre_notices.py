"""The centre's page for public notices (/centre/notices): write a draft, send it for review; a centre leader
publishes it, sends it back or withdraws it. Every change is audited; caseflow.public_notices holds the rules."""
from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from caseflow import public_notices
from caseflow.models import PublicNotice
from webui.app import NavItem
from webui.blueprints.tickets import clock
from webui import page_cache
from webui.i18n import error_text
from webui.security import audit, require_roles

bp = Blueprint("centre_notices", __name__, url_prefix="/centre/notices")

NAV = [NavItem("Public notices", "centre_notices.index", frozenset({"centre", "centre_leader"}), order=32)]
MESSAGES = {"zh": {
    "Public notices": "门户公告", "New notice": "新建公告", "Title": "标题", "Text": "正文", "Save": "保存",
    "noticestatus:draft": "草稿", "noticestatus:review": "待审核", "noticestatus:published": "已发布",
    "noticestatus:withdrawn": "已撤回", "noticemove:submit": "提交审核", "noticemove:publish": "发布",
    "noticemove:send_back": "退回修改", "noticemove:withdraw": "撤回", "Saved.": "已保存。",
    "Updated": "更新时间",
}}
ROLES = ("centre", "centre_leader")


def _load(notice_id) -> PublicNotice:
    return PublicNotice.get_or_none(PublicNotice.id == notice_id) or abort(404)


def _moves(notice: PublicNotice) -> list[str]:
    return [move for (status, move), (_target, roles) in public_notices.MOVES.items()
            if status == notice.status and g.user.role_set & roles]


@bp.route("/", methods=["GET", "POST"])
@require_roles(*ROLES)
def index():
    """Every notice with its state; a POST writes a new draft."""
    if request.method == "POST":
        try:
            row = public_notices.create(request.form.get("title"), request.form.get("body"), g.user, clock())
        except public_notices.NoticeError as error:
            flash(error_text(error), "error")
            return redirect(url_for("centre_notices.index"), code=303)
        audit("notice_create", "public_notice", row.id, row.title[:100])
        return redirect(url_for("centre_notices.edit", notice_id=row.id), code=303)
    rows = list(PublicNotice.select().order_by(PublicNotice.updated_at.desc(), PublicNotice.id.desc()))
    return render_template("centre_notices/list.html", rows=rows)


@bp.route("/<int:notice_id>", methods=["GET", "POST"])
@require_roles(*ROLES)
def edit(notice_id):
    """One notice: change it while a draft (or withdrawn), and the moves the user's roles allow."""
    row = _load(notice_id)
    if request.method == "POST":
        try:
            public_notices.edit(row, request.form.get("title"), request.form.get("body"), g.user, clock())
        except public_notices.NoticeError as error:
            flash(error_text(error), "error")
        else:
            audit("notice_edit", "public_notice", row.id, row.title[:100])
            from webui.i18n import gettext

            flash(gettext("Saved."), "info")
        return redirect(url_for("centre_notices.edit", notice_id=row.id), code=303)
    return render_template("centre_notices/edit.html", notice=row, moves=_moves(row),
                           editable=row.status in public_notices.EDITABLE)


@bp.route("/<int:notice_id>/move", methods=["POST"])
@require_roles(*ROLES)
def move(notice_id):
    """submit / publish / send_back / withdraw."""
    row = _load(notice_id)
    action = request.form.get("move", "")
    try:
        public_notices.move(row, action, g.user, clock())
    except public_notices.NoticeError as error:
        flash(error_text(error), "error")
        return redirect(url_for("centre_notices.edit", notice_id=row.id), code=303)
    audit(f"notice_{action}", "public_notice", row.id, row.title[:100])
    page_cache.invalidate()  # a published or withdrawn notice shows on the public site at once
    return redirect(url_for("centre_notices.edit", notice_id=row.id), code=303)
