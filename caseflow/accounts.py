"""Passwords (argon2 via argon2-cffi, hashed and checked in gevent's thread pool: ~100 ms each would
otherwise stall every call) and user creation with role and department checks."""
from __future__ import annotations

import functools
import logging
import os
import re

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.offload import in_thread

log = logging.getLogger(__name__)



@functools.cache
def _password_hasher() -> PasswordHasher:
    """argon2id with the library's recommended parameters.

    The test suite sets HOTLINE_ARGON2_PROFILE=cheapest (still real argon2id, minimal cost) because it
    creates thousands of users; nothing else should set it, and production mode ignores it.
    """
    if os.environ.get("HOTLINE_ARGON2_PROFILE") == "cheapest" and os.environ.get("HOTLINE_MODE") != "production":
        log.warning("argon2 at its cheapest parameters (HOTLINE_ARGON2_PROFILE=cheapest): for tests only")
        return PasswordHasher.from_parameters(profiles.CHEAPEST)
    return PasswordHasher()

OPERATOR_NO_RE = re.compile(r"^[0-9A-Za-z]{2,16}\Z")
MIN_PASSWORD = 8


class AccountError(ValueError):
    """A user could not be created or changed; the message says why."""


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` for User.password_hash."""
    if not isinstance(password, str) or not password:
        raise AccountError("密码不能为空 / password must not be empty")
    return in_thread(_password_hasher().hash, password)


def verify_password(password_hash: str, password: str) -> bool:
    """True if ``password`` matches ``password_hash``; False for a wrong password or a broken hash."""
    if not password_hash or not isinstance(password, str):
        return False
    return in_thread(_verify, password_hash, password)


def _verify(password_hash: str, password: str) -> bool:
    """The check itself (in a pool thread: a mismatch is an answer, not an error for the hub to print)."""
    try:
        return _password_hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's (rehash after a good login)."""
    try:
        return _password_hasher().check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def set_password(user, password: str, *, end_sessions: bool = True) -> None:
    """Store a new argon2id hash of ``password`` for ``user`` (the caller checked length and confirmation).

    A changed password ends every session of the user (a copied cookie dies with the old password);
    ``end_sessions=False`` is for the rehash after a login, which changes only the hash's parameters."""
    from caseflow.models import User

    User.update(password_hash=hash_password(password)).where(User.id == user.id).execute()
    if end_sessions:
        end_all_sessions(user)


def end_all_sessions(user) -> int:
    """Bump the user's session version: every session opened before is refused at its next request.
    Returns the new version (the caller's own session may carry it on)."""
    from caseflow.models import User

    User.update(session_version=User.session_version + 1).where(User.id == user.id).execute()
    user.session_version = User.get_by_id(user.id).session_version
    return user.session_version


def rehash_if_needed(user, password: str) -> None:
    """Upgrade a hash made with older argon2 parameters while the clear password is at hand (after a login)."""
    if needs_rehash(user.password_hash):
        set_password(user, password, end_sessions=False)


def set_language(user, code: str) -> None:
    """Keep ``code`` (a UI language the caller normalised) as the user's language."""
    from caseflow.models import User

    if user.language != code:
        User.update(language=code).where(User.id == user.id).execute()
        user.language = code


def create_user(operator_no: str, name: str, password: str, roles=(), department=None,
                extension: str | None = None, phone: str = ""):
    """Create a user after validating operator number, password length and role codes."""
    from caseflow.models import User
    from caseflow.roles import ROLES

    operator_no = (operator_no or "").strip()
    if not OPERATOR_NO_RE.match(operator_no):
        raise AccountError(f"工号须为2-16位字母或数字：{operator_no!r} / operator number must be 2-16 letters or "
                           f"digits: {operator_no!r}")
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise AccountError("姓名长度须为1-64个字符 / name must be 1-64 characters")
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"密码至少{MIN_PASSWORD}位 / password needs at least {MIN_PASSWORD} characters")
    role_list = [r.strip() for r in (roles.split(",") if isinstance(roles, str) else roles) if r.strip()]
    unknown = [r for r in role_list if r not in ROLES]
    if unknown:
        raise AccountError(f"未知角色：{', '.join(unknown)} / unknown role(s): {', '.join(unknown)}")
    if User.select().where(User.operator_no == operator_no).exists():
        raise AccountError(f"工号 {operator_no} 已存在 / operator number {operator_no} already exists")
    if extension and User.select().where(User.extension == extension).exists():
        raise AccountError(f"分机号 {extension} 已被使用 / extension {extension} already in use")
    user = User.create(operator_no=operator_no, name=name, password_hash=hash_password(password),
                       roles=",".join(role_list), department=department, extension=extension or None,
                       phone=phone or "")
    log.info("user %s created with roles %s", operator_no, user.roles)
    return user
