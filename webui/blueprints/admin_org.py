"""Administrator pages for the organisation: departments (three levels), users with operator numbers,
roles, groups and extensions, what each role may do, categories, regions and responsibilities, the
working-day calendar and the time limits."""
from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from caseflow import accounts, deadlines, org, roles
from caseflow.models import Category, Department, Group, Region, Responsibility, TimeLimit, User
from caseflow.roles import can
from core import calendar
from webui import auth, security
from webui.app import NavItem
from webui.blueprints.portal import trees_changed as portal_trees_changed
from webui.blueprints.tickets import install, own_messages
from webui.i18n import error_text
from webui.security import audit, require_roles
from webui.views import get_or_404

bp = Blueprint("admin_org", __name__, url_prefix="/admin/org")
install(bp)

NAV = [NavItem("Organisation", "admin_org.index", frozenset({"admin"}), order=60)]
MESSAGES = own_messages({"zh": {
    "Organisation": "组织机构", "Departments": "部门", "Users": "用户", "Groups": "班组",
    "Leads (team lead's console scope)": "担任班长的班组（班长席只显示这些班组的话务员）", "lead": "班长",
    "Roles and permissions": "角色权限", "Categories and regions": "分类与区域", "Calendar and time limits":
    "工作日历与办理时限", "Code": "编码", "Unit name": "名称", "Level": "级别", "Kind": "类型", "Parent": "上级",
    "Contact phone": "联系电话", "Active": "启用", "Create": "新建", "Save": "保存", "Extension": "分机号",
    "Password": "密码", "New password (leave empty to keep)": "新密码（留空不改）", "Permission": "权限",
    "Reset to defaults": "恢复默认", "Responsible for": "负责分类",
    "Day": "日期", "Holiday": "节假日", "Make-up working day": "调休上班", "Remove": "删除",
    "Amount": "时限", "Unit": "单位", "working days": "工作日", "hours": "小时", "All types": "全部类型",
    "Urgency": "紧急程度", "Type": "类型", "Edit user %(no)s": "编辑用户 %(no)s",
    "Roles": "角色", "Description": "说明", "Members": "成员", "Add responsibility": "添加职责",
    "Year": "年份", "Saved.": "已保存。", "Default": "默认",
    "Login locks": "登录锁定", "No login lock holds this user.": "该用户当前没有登录锁定。",
    "every address": "所有地址", "Address": "地址", "Time left": "剩余时间", "%(minutes)s min": "%(minutes)s 分钟",
    "lock:operator_address": "该工号在此地址失败过多", "lock:account": "该账号失败过多",
    "lock:address": "此地址失败过多", "Unlock login": "解除登录锁定",
    "Login unlocked for %(no)s.": "已解除 %(no)s 的登录锁定。",
}})


def _need(permission: str) -> None:
    if not can(g.user, permission):
        abort(403)


def _ok():
    from webui.i18n import gettext

    flash(gettext("Saved."), "info")


def _dept(value):
    return Department.get_or_none(Department.id == int(value)) if str(value or "").isdigit() else None


@bp.route("/", methods=["GET", "POST"])
@require_roles("admin")
def index():
    """The department tree; create a unit or change one."""
    _need("admin.org")
    if request.method == "POST":
        form = request.form
        try:
            if form.get("id", "").isdigit():
                dept = get_or_404(Department, Department.id == int(form["id"]))
                org.update_department(dept, name=form.get("name"), contact_phone=form.get("contact_phone", ""),
                                      active=form.get("active") == "1", kind=form.get("kind") or None)
                audit("department_update", "department", dept.id, dept.name)
            else:
                dept = org.create_department(form.get("code", ""), form.get("name", ""), _dept(form.get("parent")),
                                             form.get("kind", ""), form.get("contact_phone", ""))
                audit("department_create", "department", dept.id, dept.name)
            _ok()
        except org.OrgError as error:
            flash(error_text(error), "error")
        return redirect(url_for("admin_org.index"), code=303)
    departments = org.tree()
    return render_template("admin_org/departments.html", departments=departments, kinds=org.DEPARTMENT_KINDS,
                           responsibilities=_responsibilities())


def _responsibilities():
    result: dict[int, list[str]] = {}
    for r in Responsibility.select(Responsibility, Category).join(Category):
        label = r.category.name + (f"（{r.region.name}）" if r.region_id else "")
        result.setdefault(r.department_id, []).append(label)
    return result


@bp.route("/users", methods=["GET", "POST"])
@require_roles("admin")
def users():
    """Users with operator numbers, roles, department and extension; create one."""
    _need("admin.org")
    if request.method == "POST":
        form = request.form
        try:
            user = accounts.create_user(form.get("operator_no", ""), form.get("name", ""), form.get("password", ""),
                                        roles=form.getlist("roles"), department=_dept(form.get("department")),
                                        extension=form.get("extension") or None, phone=form.get("phone", ""))
            audit("user_create", "user", user.id, user.operator_no)
            _ok()
        except accounts.AccountError as error:
            flash(error_text(error), "error")
        return redirect(url_for("admin_org.users"), code=303)
    return render_template("admin_org/users.html", users=list(User.select().order_by(User.operator_no)),
                           departments=org.tree(), roles=roles.ROLES)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@require_roles("admin")
def user(user_id):
    """Change a user's roles, department, extension, groups, active flag or password."""
    _need("admin.org")
    row = get_or_404(User, User.id == user_id)
    if request.method == "POST":
        form = request.form
        chosen = [r for r in form.getlist("roles") if r in roles.ROLES]
        extension = (form.get("extension") or "").strip() or None
        if extension and User.select().where((User.extension == extension) & (User.id != row.id)).exists():
            flash(error_text(f"分机号已被使用 / extension {extension} already in use"), "error")
            return redirect(url_for("admin_org.user", user_id=row.id), code=303)
        name = (form.get("name") or "").strip()
        if not name or len(name) > 64:
            flash(error_text("姓名长度须为1-64个字符 / name must be 1-64 characters"), "error")
            return redirect(url_for("admin_org.user", user_id=row.id), code=303)
        password = form.get("password", "")
        if password and len(password) < accounts.MIN_PASSWORD:
            flash(error_text(f"密码至少{accounts.MIN_PASSWORD}位 / password needs {accounts.MIN_PASSWORD} characters"),
                  "error")
            return redirect(url_for("admin_org.user", user_id=row.id), code=303)
        if row.id == g.user.id and ("admin" not in chosen or form.get("active") != "1"):
            flash(error_text("不能取消自己的管理员权限或停用自己 / you cannot remove your own admin role or "
                             "deactivate yourself"), "error")
            return redirect(url_for("admin_org.user", user_id=row.id), code=303)
        org.update_user(row, name=name, roles=chosen, extension=extension, department=_dept(form.get("department")),
                        active=form.get("active") == "1", password=password,
                        groups=[grp for grp in Group.select() if str(grp.id) in form.getlist("groups")],
                        leads=[grp for grp in Group.select() if str(grp.id) in form.getlist("leads")])
        led = ",".join(grp.code for grp in org.groups_led_by(row))
        audit("user_update", "user", row.id, f"roles={row.roles} active={row.active} leads={led}")
        _ok()
        return redirect(url_for("admin_org.user", user_id=row.id), code=303)
    return render_template("admin_org/user.html", u=row, departments=org.tree(), roles=roles.ROLES,
                           groups=list(Group.select().order_by(Group.code)),
                           member_of={grp.id for grp in org.groups_of(row)},
                           leads={grp.id for grp in org.groups_led_by(row)},
                           locks=auth.locked_addresses(row, security.now_utc()),
                           minutes_ceiling=security.minutes_ceiling)


@bp.route("/users/<int:user_id>/unlock", methods=["POST"])
@require_roles("admin")
def unlock(user_id):
    """Lift the failed-login locks on a user (their account, their number at any address, and for them the
    locks of addresses they failed from): the audited ``login_unlock`` restarts their counts."""
    from webui.i18n import gettext

    _need("admin.org")
    row = get_or_404(User, User.id == user_id)
    audit("login_unlock", "user", row.id, row.operator_no)
    flash(gettext("Login unlocked for %(no)s.", no=row.operator_no), "info")
    return redirect(url_for("admin_org.user", user_id=row.id), code=303)


@bp.route("/groups", methods=["GET", "POST"])
@require_roles("admin")
def groups():
    """User groups (班组) and their members."""
    _need("admin.org")
    if request.method == "POST":
        try:
            org.create_group(request.form.get("code", ""), request.form.get("name", ""),
                             request.form.get("description", ""))
            _ok()
        except org.OrgError as error:
            flash(error_text(error), "error")
        return redirect(url_for("admin_org.groups"), code=303)
    rows = list(Group.select().order_by(Group.code))
    members = {grp.id: [(link.user, link.lead) for link in grp.user_links] for grp in rows}
    return render_template("admin_org/groups.html", groups=rows, members=members)


@bp.route("/roles", methods=["GET", "POST"])
@require_roles("admin")
def role_matrix():
    """What each role may do: a matrix of checkboxes, saved per role."""
    _need("admin.roles")
    if request.method == "POST":
        role = request.form.get("role", "")
        try:
            if request.form.get("reset") == "1":
                roles.reset_role_permissions(role)
            else:
                roles.set_role_permissions(role, request.form.getlist("permissions"))
            audit("role_permissions", "role", role, ",".join(request.form.getlist("permissions")))
            _ok()
        except ValueError as error:
            flash(error_text(error), "error")
        return redirect(url_for("admin_org.role_matrix"), code=303)
    matrix = {role: roles.role_permissions(role) for role in roles.ROLES}
    return render_template("admin_org/roles.html", roles=roles.ROLES, permissions=roles.PERMISSIONS,
                           matrix=matrix)


def _row(model, value):
    """The row of ``model`` whose id is the form value, or None (empty or not a number)."""
    return model.get_or_none(model.id == int(value)) if str(value or "").isdigit() else None


def _form_action(actions: dict, errors: tuple, area: str, key_fields: tuple[str, ...]) -> None:
    """Run the form's ``what`` action from ``actions``, audit it, and flash the outcome."""
    form = request.form
    what = form.get("what", "")
    try:
        action = actions.get(what)
        if action is None:
            raise ValueError(f"未知操作 / unknown action {what!r}")
        action(form)
        key = next((form.get(name) for name in key_fields if form.get(name)), "")
        audit(f"{area}_{what}", area, key, "")
        _ok()
    except errors as error:
        flash(error_text(error), "error")


def _add_responsibility(form) -> None:
    dept, cat = _dept(form.get("department")), _row(Category, form.get("category"))
    if dept is None or cat is None:
        raise org.OrgError("请选择部门和分类 / choose a department and a category")
    org.add_responsibility(dept, cat, _row(Region, form.get("region")))


CATEGORY_ACTIONS = {
    "category": lambda f: org.create_category(f.get("code", ""), f.get("name", ""), _row(Category, f.get("parent"))),
    "region": lambda f: org.create_region(f.get("code", ""), f.get("name", ""), _row(Region, f.get("parent"))),
    "responsibility": _add_responsibility,
    "remove_responsibility": lambda f: org.remove_responsibility(int(f.get("id") or 0)),
}

CALENDAR_ACTIONS = {
    "day": lambda f: calendar.set_day(f.get("day", ""), f.get("kind", ""), f.get("name", "")),
    "clear_day": lambda f: calendar.clear_day(f.get("day", "")),
    "limit": lambda f: deadlines.set_limit(f.get("ticket_type", ""), f.get("urgency", ""), f.get("amount"),
                                           f.get("unit", "")),
    "clear_limit": lambda f: deadlines.clear_limit(int(f.get("id") or 0)),
}


@bp.route("/categories", methods=["GET", "POST"])
@require_roles("admin")
def categories():
    """The category tree, the region tree, and which department is responsible for what."""
    _need("admin.org")
    if request.method == "POST":
        _form_action(CATEGORY_ACTIONS, (org.OrgError, ValueError), "org",
                     ("code", "department", "id"))
        portal_trees_changed()  # the public site's pickers and names show the change at once
        return redirect(url_for("admin_org.categories"), code=303)
    cats = list(Category.select())
    return render_template("admin_org/categories.html", categories=cats, category_path=org.category_path,
                           regions=list(Region.select().order_by(Region.code)), departments=org.tree(),
                           responsibilities=list(Responsibility.select().order_by(Responsibility.department)))


@bp.route("/calendar", methods=["GET", "POST"])
@require_roles("admin")
def work_calendar():
    """Holidays and make-up working days, and the time limits per type and urgency."""
    _need("admin.calendar")
    if request.method == "POST":
        _form_action(CALENDAR_ACTIONS, (calendar.CalendarError, deadlines.DeadlineError, ValueError),
                     "calendar", ("day", "ticket_type", "id"))
        return redirect(url_for("admin_org.work_calendar", year=request.form.get("year") or None), code=303)
    year = request.args.get("year", "")
    year = int(year) if year.isdigit() and 2000 <= int(year) <= 2100 else None
    from caseflow.services import TICKET_TYPES, URGENCIES

    return render_template("admin_org/calendar.html", days=calendar.list_days(year), year=year,
                           limits=deadlines.load_limits(), stored=list(TimeLimit.select()),
                           types=TICKET_TYPES, urgencies=URGENCIES)
