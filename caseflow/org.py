"""Organisation maintenance: the three-level department tree, categories, regions, responsibilities
and user groups (the administrator pages call these)."""
from __future__ import annotations

import logging
import re
from typing import Iterable, Optional

from caseflow.models import Category, Department, Group, Region, Responsibility, User, UserGroup

log = logging.getLogger(__name__)

CODE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}\Z")
DEPARTMENT_KINDS = {
    "centre": ("热线中心", "Hotline centre"), "district": ("区县", "District/county"),
    "city_dept": ("市直部门", "City department"), "street": ("街道乡镇", "Town/street"),
    "district_dept": ("区直部门", "District department"), "sub_office": ("派出机构", "Bureau sub-office"),
    "enterprise": ("公共企事业单位", "Public utility"),
}


class OrgError(ValueError):
    """Bad organisation data; the message says why."""


def _code(code: str) -> str:
    code = (code or "").strip()
    if not CODE_RE.match(code):
        raise OrgError(f"编码须为1-32位字母数字 / code must be 1-32 letters, digits, _ . -: {code!r}")
    return code


def _name(name: str, limit: int = 100) -> str:
    name = (name or "").strip()
    if not name or len(name) > limit:
        raise OrgError(f"名称须为1-{limit}个字符 / name must be 1-{limit} characters")
    return name


def create_department(code: str, name: str, parent: Optional[Department] = None, kind: str = "",
                      contact_phone: str = "") -> Department:
    """Add a unit; its level is its parent's plus one (at most 3)."""
    code, name = _code(code), _name(name)
    level = 1 if parent is None else parent.level + 1
    if level > 3:
        raise OrgError("部门最多三级 / departments have at most three levels")
    if parent is None and Department.select().where(Department.level == 1).exists():
        raise OrgError("只能有一个热线中心 / there is only one level-1 centre")
    if Department.select().where(Department.code == code).exists():
        raise OrgError(f"编码已存在 / code {code} already exists")
    kind = kind or {1: "centre", 2: "district", 3: "street"}[level]
    if kind not in DEPARTMENT_KINDS:
        raise OrgError(f"未知单位类型 / unknown kind {kind!r}")
    with Department._meta.database.atomic():
        dept = Department.create(code=code, name=name, level=level, parent=parent, kind=kind,
                                 contact_phone=(contact_phone or "").strip()[:32])
        dept.path = (parent.path if parent else "/") + f"{dept.id}/"
        dept.save()
    return dept


def update_department(dept: Department, *, name: str | None = None, contact_phone: str | None = None,
                      active: bool | None = None, kind: str | None = None) -> Department:
    """Rename, change the phone, (de)activate; the tree position does not change here."""
    if name is not None:
        dept.name = _name(name)
    if contact_phone is not None:
        dept.contact_phone = contact_phone.strip()[:32]
    if kind is not None:
        if kind not in DEPARTMENT_KINDS:
            raise OrgError(f"未知单位类型 / unknown kind {kind!r}")
        dept.kind = kind
    if active is not None:
        if not active and dept.level == 1:
            raise OrgError("不能停用热线中心 / the centre cannot be deactivated")
        dept.active = bool(active)
    dept.save()
    return dept


def subtree(dept: Department):
    """Query of the department and everything below it."""
    return Department.select().where(Department.path.startswith(dept.path)).order_by(Department.path)


def tree() -> list[Department]:
    """Every department, parents before children (for indented lists)."""
    rows = list(Department.select())
    rows.sort(key=lambda d: [int(p) for p in d.path.strip("/").split("/") if p])
    return rows


def create_category(code: str, name: str, parent: Optional[Category] = None, sort: int = 0) -> Category:
    """Add a node to the matter tree."""
    code, name = _code(code), _name(name, 64)
    if Category.select().where(Category.code == code).exists():
        raise OrgError(f"编码已存在 / code {code} already exists")
    return Category.create(code=code, name=name, parent=parent, sort=sort)


def create_region(code: str, name: str, parent: Optional[Region] = None) -> Region:
    """Add a district (no parent) or a street (under a district)."""
    code, name = _code(code), _name(name, 64)
    if parent is not None and parent.level >= 2:
        raise OrgError("区域最多两级（区县、街道） / regions have two levels: district then street")
    if Region.select().where(Region.code == code).exists():
        raise OrgError(f"编码已存在 / code {code} already exists")
    return Region.create(code=code, name=name, parent=parent, level=1 if parent is None else 2)


def category_path(category: Optional[Category]) -> str:
    """城市管理 > 噪音扰民."""
    names, node, guard = [], category, 0
    while node is not None and guard < 10:
        names.append(node.name)
        node = node.parent if node.parent_id else None
        guard += 1
    return " > ".join(reversed(names))


def category_paths() -> dict[int, str]:
    """{category id: "城市管理 > 噪音扰民"} of every category, from one query (lists of many tickets)."""
    rows = {row.id: (row.name, row.parent_id) for row in Category.select(Category.id, Category.name,
                                                                          Category.parent)}
    paths = {}
    for ident in rows:
        names, node, guard = [], ident, 0
        while node in rows and guard < 10:
            names.append(rows[node][0])
            node, guard = rows[node][1], guard + 1
        paths[ident] = " > ".join(reversed(names))
    return paths


def category_tree() -> list[tuple[Category, int]]:
    """Every category as (category, depth), parents before children, siblings by sort then name (for
    indented selects)."""
    rows = list(Category.select())
    children: dict = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)
    out: list[tuple[Category, int]] = []

    def walk(parent_id, depth):
        for row in sorted(children.get(parent_id, []), key=lambda c: (c.sort, c.name, c.id)):
            out.append((row, depth))
            if depth < 10:  # a cycle cannot be made through the pages; never loop if one was stored
                walk(row.id, depth + 1)
    walk(None, 0)
    return out


def category_subtree_ids(category: Category) -> list[int]:
    """The ids of ``category`` and every category below it (a search by 城市管理 finds 噪音扰民)."""
    children: dict = {}
    for cid, parent_id in Category.select(Category.id, Category.parent).tuples():
        children.setdefault(parent_id, []).append(cid)
    found, frontier = [category.id], [category.id]
    while frontier and len(found) <= 10000:
        frontier = [c for parent in frontier for c in children.get(parent, []) if c not in found]
        found.extend(frontier)
    return found


def add_responsibility(department: Department, category: Category, region: Optional[Region] = None):
    """Declare the department responsible for a category (optionally only in one region)."""
    exists = Responsibility.select().where(
        (Responsibility.department == department) & (Responsibility.category == category)
        & (Responsibility.region.is_null() if region is None else Responsibility.region == region)).first()
    return exists or Responsibility.create(department=department, category=category, region=region)


def remove_responsibility(responsibility_id: int) -> int:
    """Remove one responsibility row; returns how many were removed (0: none had that id)."""
    return Responsibility.delete().where(Responsibility.id == responsibility_id).execute()


def create_group(code: str, name: str, description: str = "") -> Group:
    """Add a user group (班组)."""
    code, name = _code(code), _name(name, 64)
    if Group.select().where(Group.code == code).exists():
        raise OrgError(f"编码已存在 / code {code} already exists")
    return Group.create(code=code, name=name, description=(description or "")[:255])


def set_groups(user: User, groups: list[Group], leads: Iterable[Group] = ()) -> None:
    """Replace the user's group memberships; ``leads``: the groups the user leads (a lead is a member too)."""
    lead_ids = {group.id for group in leads}
    with User._meta.database.atomic():
        UserGroup.delete().where(UserGroup.user == user).execute()
        for group in {group.id: group for group in [*groups, *leads]}.values():
            UserGroup.create(user=user, group=group, lead=group.id in lead_ids)


def update_user(user: User, *, name: str, roles: list[str], extension: str | None,
                department: Optional[Department], active: bool, password: str = "",
                groups: list[Group], leads: Iterable[Group] = ()) -> User:
    """An administrator's edit of a user (checked by the caller): name, roles, extension, department,
    active, a new password when given, and the groups (those the user leads in ``leads``), in one
    transaction."""
    from caseflow import accounts

    with User._meta.database.atomic():
        user.name, user.roles, user.extension = name, ",".join(roles), extension
        user.department = department
        disabled = user.active and not active
        user.active = active
        if password:
            user.password_hash = accounts.hash_password(password)
        # Only the named columns: the session version is bumped in the database, never from a stale copy.
        user.save(only=[User.name, User.roles, User.extension, User.department, User.active, User.password_hash])
        set_groups(user, groups, leads)
        if disabled or password:
            # Disabling or a password set by the administrator ends every open session of the user.
            accounts.end_all_sessions(user)
    return user


def groups_of(user: User) -> list[Group]:
    return list(Group.select().join(UserGroup).where(UserGroup.user == user).order_by(Group.code))


def groups_led_by(user: User) -> list[Group]:
    """The groups ``user`` leads (班长)."""
    return list(Group.select().join(UserGroup).where((UserGroup.user == user) & UserGroup.lead)
                .order_by(Group.code))


def lead_scope(user: User) -> Optional[frozenset[int]]:
    """The ids of the users a team lead's console shows and acts on: the members of the groups ``user``
    leads (themselves included when they are one). None means everyone: for an administrator, and while no
    group has a lead at all (a centre that has not divided its floor keeps one console for all, as before
    leads existed). Once any group has a lead, a team lead who leads none sees nobody: a lead missing from
    the configuration must not widen what a lead sees."""
    if user.has_role("admin") or not UserGroup.select().where(UserGroup.lead).exists():
        return None
    led = UserGroup.select(UserGroup.group).where((UserGroup.user == user) & UserGroup.lead)
    return frozenset(user_id for (user_id,) in
                     UserGroup.select(UserGroup.user).where(UserGroup.group.in_(led)).distinct().tuples())


def active_categories() -> list[Category]:
    """Categories a new ticket may take (forms list them by category_path)."""
    return list(Category.select().where(Category.active).order_by(Category.id))


def active_regions() -> list[Region]:
    """Regions a new ticket may take, in code order (district before its streets)."""
    return list(Region.select().where(Region.active).order_by(Region.code))
