"""Role codes and what each role may do (defaults here; the RolePermission table overrides them)."""
from __future__ import annotations

from typing import Iterable

ROLES: dict[str, tuple[str, str]] = {
    "agent": ("话务员", "Agent"),
    "team_lead": ("班长", "Team lead"),
    "centre": ("热线办", "Hotline centre"),
    "centre_leader": ("热线办领导", "Centre leader"),
    "dept": ("成员单位", "Department handler"),
    "dept_leader": ("单位领导", "Department leader"),
    "leader": ("领导", "Leader"),
    "admin": ("管理员", "Administrator"),
    "entry": ("录入员", "Data-entry clerk"),
}

# Permission codes with their zh / en labels (shown on the admin role page).
PERMISSIONS: dict[str, tuple[str, str]] = {
    "ticket.create": ("登记工单", "Record tickets"),
    "ticket.view_all": ("查看全部工单", "See every ticket"),
    "ticket.answer": ("当场答复/暂不能答复", "Answer on the spot / defer"),
    "ticket.dispatch": ("派单", "Dispatch"),
    "ticket.not_accept": ("不予受理", "Refuse to accept"),
    "ticket.review": ("审核答复", "Review replies"),
    "ticket.remind": ("催办", "Remind"),
    "ticket.supervise": ("督办", "Supervise"),
    "ticket.callback": ("回访", "Call back"),
    "ticket.merge": ("合并重复工单", "Merge duplicates"),
    "ticket.close": ("办结归档", "Close and archive"),
    "ticket.extension_decide": ("审批延期", "Decide extensions"),
    "ticket.reopen": ("决定重办", "Decide on reopening"),
    "ticket.disclose": ("公开发布", "Public disclosure"),
    "ticket.handle": ("签收办理", "Accept and handle"),
    "ticket.sub_dispatch": ("下派", "Sub-dispatch"),
    "ticket.return": ("退回", "Return"),
    "ticket.reply": ("答复", "Reply"),
    "ticket.extension_request": ("申请延期", "Request an extension"),
    "ticket.assign": ("指定承办人", "Assign a handler"),
    "ticket.annotate": ("补充备注和附件（任一工单）", "Add notes and files to any ticket"),
    "blacklist.edit": ("维护黑名单", "Edit the blacklist"),
    "entry.desk": ("录入台", "Data-entry desk"),
    "kb.view": ("查看知识库", "Read the knowledge base"),
    "kb.edit": ("维护知识库", "Edit the knowledge base"),
    "kb.review": ("审核知识", "Review knowledge"),
    "admin.org": ("管理部门用户", "Manage departments and users"),
    "admin.roles": ("管理角色权限", "Manage roles and permissions"),
    "admin.calendar": ("管理工作日历与时限", "Manage calendar and time limits"),
    "citizen.full_contact": ("查看完整联系方式", "See full citizen contact"),
    "stats.view": ("查看统计", "See statistics"),
    "recording.download": ("下载录音备案", "Download recordings for the archive"),
}

_CENTRE = {
    "ticket.create", "ticket.view_all", "ticket.answer", "ticket.dispatch", "ticket.not_accept",
    "ticket.review", "ticket.remind", "ticket.supervise", "ticket.callback", "ticket.merge",
    "ticket.close", "ticket.extension_decide", "ticket.disclose", "kb.view", "kb.edit",
    "citizen.full_contact", "stats.view", "entry.desk", "ticket.annotate", "blacklist.edit",
    "recording.download",
}
_DEPT = {
    "ticket.handle", "ticket.sub_dispatch", "ticket.return", "ticket.reply", "ticket.extension_request",
    "ticket.assign", "kb.view",
}

# recording.download (下载备案) goes to the team lead, the centre (_CENTRE) and department leaders; whoever
# else may hear a recording listens in the browser only (recorder.access).
DEFAULT_PERMISSIONS: dict[str, frozenset[str]] = {
    "agent": frozenset({"ticket.create", "ticket.answer", "ticket.callback", "kb.view", "ticket.view_all"}),
    "team_lead": frozenset({"ticket.create", "ticket.answer", "ticket.callback", "kb.view", "kb.edit",
                            "ticket.view_all", "stats.view", "citizen.full_contact", "recording.download"}),
    "centre": frozenset(_CENTRE),
    "centre_leader": frozenset(_CENTRE | {"ticket.reopen", "kb.review"}),
    "dept": frozenset(_DEPT),
    "dept_leader": frozenset(_DEPT | {"ticket.reopen", "stats.view", "recording.download"}),
    "leader": frozenset({"ticket.view_all", "ticket.reopen", "ticket.supervise", "stats.view", "kb.view"}),
    "admin": frozenset({"admin.org", "admin.roles", "admin.calendar", "kb.view", "kb.edit", "kb.review",
                        "stats.view", "blacklist.edit"}),
    "entry": frozenset({"ticket.create", "entry.desk", "kb.view"}),
}

CENTRE_ROLES = frozenset({"agent", "team_lead", "centre", "centre_leader", "entry"})
DEPARTMENT_ROLES = frozenset({"dept", "dept_leader"})


def role_label(code: str, lang: str = "zh") -> str:
    """The display name of a role code."""
    zh, en = ROLES.get(code, (code, code))
    return zh if lang == "zh" else en


def role_permissions(role: str) -> frozenset[str]:
    """Permissions of one role: the RolePermission table when it has rows for the role, else defaults."""
    from caseflow.models import RolePermission

    rows = [r.permission for r in RolePermission.select().where(RolePermission.role == role)]
    if rows:
        return frozenset(p for p in rows if p != "-")
    return DEFAULT_PERMISSIONS.get(role, frozenset())


_generation = [0]  # bumped when this process edits permissions, so cached answers are dropped


def permissions_of(user) -> frozenset[str]:
    """Everything ``user`` may do, the union over its roles; an inactive or missing user may do nothing.

    Cached on the user object (a web request loads its user afresh), keyed by the role string and the
    edit generation, so a list of fifty tickets does not ask the database fifty times.
    """
    if user is None or not getattr(user, "active", True):
        return frozenset()
    key = (user.roles, _generation[0])
    cached = getattr(user, "_permission_cache", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    result: set[str] = set()
    for role in user.role_set:
        result |= role_permissions(role)
    frozen = frozenset(result)
    try:
        user._permission_cache = (key, frozen)
    except AttributeError:  # a plain object without attributes: just do not cache
        pass
    return frozen


def can(user, permission: str) -> bool:
    """True if ``user`` holds ``permission``."""
    return permission in permissions_of(user)


def set_role_permissions(role: str, permissions: Iterable[str]) -> frozenset[str]:
    """Replace what ``role`` may do (admin page); an empty set is stored as a '-' marker row."""
    from caseflow.models import RolePermission

    if role not in ROLES:
        raise ValueError(f"unknown role / 未知角色: {role!r}")
    wanted = sorted(set(permissions))
    unknown = [p for p in wanted if p not in PERMISSIONS]
    if unknown:
        raise ValueError(f"unknown permission(s) / 未知权限: {', '.join(unknown)}")
    db = RolePermission._meta.database
    with db.atomic():
        RolePermission.delete().where(RolePermission.role == role).execute()
        for perm in wanted or ["-"]:
            RolePermission.create(role=role, permission=perm)
    _generation[0] += 1
    return frozenset(wanted)


def reset_role_permissions(role: str) -> None:
    """Return ``role`` to the built-in defaults."""
    from caseflow.models import RolePermission

    RolePermission.delete().where(RolePermission.role == role).execute()
    _generation[0] += 1


def is_centre_user(user) -> bool:
    """True for users working at the hotline centre (their department is level 1 or they hold a centre role)."""
    if user is None:
        return False
    return bool(user.role_set & CENTRE_ROLES) or (user.department_id is not None and user.department.level == 1
                                                   and bool(user.role_set - DEPARTMENT_ROLES))
