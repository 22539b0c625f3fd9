"""The hotline centre's desk (热线办): to dispatch (with the suggested department), answer later, to
review, overdue, supervision, extension requests, call-back list with satisfaction entry, unsatisfied
call-backs; merge and re-dispatch happen on the same lists and the ticket page."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for

from caseflow import materials, org, services
from caseflow.services import CENTRE_QUEUES
from caseflow.workflow import PermissionDenied
from webui.app import NavItem
from webui.blueprints.tickets import act_and_return, clock, fax_service, install, own_messages
from webui.security import audit, require_roles

bp = Blueprint("centre", __name__, url_prefix="/centre")
install(bp)

ROLES = ("centre", "centre_leader")
BLACKLIST_ROLES = ("centre", "centre_leader", "admin")
NAV = [NavItem("Hotline centre", "centre.index", frozenset(ROLES), order=20),
       NavItem("Blacklist", "centre.blacklist", frozenset(BLACKLIST_ROLES), order=62)]
MESSAGES = own_messages({"zh": {
    "Centre desk": "热线办工作台", "Approve": "审核通过", "Remind": "催办", "Supervise": "督办",
    "Approve extension": "批准延期", "Rate": "回访", "Dispatch": "派单", "Open the ticket": "打开工单",
    "Nothing in this list.": "此列表为空。", "Merge into": "并入",
    "Material requests": "资料索取", "Topic": "主题", "Send to": "发送至", "Requested": "索取时间",
    "Done": "已处理", "Send by fax": "传真发送", "No knowledge answer with a PDF matches this topic.":
    "知识库中没有与该主题匹配的PDF资料。", "No open material requests.": "暂无待处理的资料索取。",
    "Blacklist": "黑名单", "Blacklisted numbers": "黑名单号码", "Add a number": "添加号码", "Reason given": "原因",
    "Remove": "移出", "No numbers are blacklisted.": "黑名单为空。", "Phone": "电话号码", "Add": "添加",
    "Blacklisted callers hear a refusal in the phone menu.": "黑名单号码来电时由语音导航拒绝接入。",
}})


@bp.route("/")
@require_roles(*ROLES)
def index():
    """One of the centre lists (?q=to_dispatch by default) with counts and the desk's notifications."""
    kind = request.args.get("q", "to_dispatch")
    if kind not in CENTRE_QUEUES:
        abort(404)
    try:
        rows = services.centre_queue(g.user, kind, clock=clock())
        counts = services.queue_counts(g.user, clock())
    except PermissionDenied:
        abort(403)
    suggestions = {}
    departments = []
    if kind == "to_dispatch":
        departments = [d for d in org.tree() if d.level >= 2 and d.active]
        for t in rows:
            suggestions[t.id] = services.suggest_departments(t.category_id, t.region_id) if t.category_id else []
    soon = services.due_soon(g.user, clock())
    requests = materials.pending(g.user)
    fax_choices = {r.id: materials.fax_answers(r.topic) for r in requests if r.channel == "fax"}
    return render_template("centre/index.html", kind=kind, rows=rows, counts=counts, queues=CENTRE_QUEUES,
                           material_requests=requests, fax_choices=fax_choices,
                           material_channels=materials.CHANNEL_LABELS,
                           suggestions=suggestions, departments=departments,
                           notices=services.notifications_for(g.user, limit=20), overdue_count=counts["overdue"],
                           soon_count=len(soon), here=url_for("centre.index", q=kind))


@bp.route("/notifications/<int:notification_id>/read", methods=["POST"])
@require_roles(*ROLES)
def read(notification_id):
    """Mark a desk notification read."""
    services.mark_read(g.user, notification_id)
    return redirect(url_for("centre.index", q=request.form.get("q", "to_dispatch")), code=303)


@bp.route("/blacklist", methods=["GET", "POST"])
@require_roles(*BLACKLIST_ROLES)
def blacklist():
    """The blacklist of harassing numbers (P5 §3.6.6): list and add with a reason (audited). The IVR's
    check reads the same Citizen flag (caseflow.services.is_blacklisted)."""
    if request.method == "GET":
        return render_template("centre/blacklist.html", rows=services.blacklist())

    def add():
        citizen = services.set_blacklist(request.form.get("phone", ""), True, request.form.get("reason", ""),
                                         actor=g.user)
        audit("blacklist_add", "citizen", citizen.phone, citizen.blacklist_reason)
        return f"{citizen.phone} 已加入黑名单 / {citizen.phone} is blacklisted"

    return act_and_return(add, url_for("centre.blacklist"))


@bp.route("/blacklist/remove", methods=["POST"])
@require_roles(*BLACKLIST_ROLES)
def blacklist_remove():
    """Take a number off the blacklist (audited)."""
    def remove():
        citizen = services.set_blacklist(request.form.get("phone", ""), False, "", actor=g.user)
        audit("blacklist_remove", "citizen", citizen.phone, "")
        return f"{citizen.phone} 已移出黑名单 / {citizen.phone} is off the blacklist"

    return act_and_return(remove, url_for("centre.blacklist"))


def _desk(anchor: str = "#materials") -> str:
    return url_for("centre.index", q=request.form.get("q", "to_dispatch")) + anchor


@bp.route("/materials/<int:request_id>/done", methods=["POST"])
@require_roles(*ROLES)
def material_done(request_id):
    """Mark a caller's material request fulfilled."""
    def done():
        materials.mark_done(request_id, g.user, clock())
        return "已标记为已处理 / marked done"

    return act_and_return(done, _desk())


@bp.route("/materials/<int:request_id>/fax", methods=["POST"])
@require_roles(*ROLES)
def material_fax(request_id):
    """Fax the chosen knowledge answer's PDF to the number the caller gave."""
    def send():
        job = materials.send_by_fax(request_id, request.form.get("answer"), g.user, fax_service(),
                                    current_app.extensions["hotline"].config.attachments_dir, clock())
        return f"传真已排队（任务 {job.id}）/ fax queued (job {job.id})"

    return act_and_return(send, _desk())
