"""Report queries saved per user (a name, the report, its filter arguments): only the owner lists, runs or
deletes one."""
from __future__ import annotations

from stats.models import SavedReport


class SavedReportError(ValueError):
    """A refused save (message id)."""


def own(user_id: int) -> list[SavedReport]:
    return list(SavedReport.select().where(SavedReport.user == user_id).order_by(SavedReport.name))


def get_own(user_id: int, saved_id: int) -> SavedReport | None:
    """The query if ``user_id`` owns it, else None (another user's query is not there for them)."""
    saved = SavedReport.get_or_none(SavedReport.id == saved_id)
    return saved if saved is not None and saved.user_id == user_id else None


def save(user_id: int, name: str, report: str, query: str) -> SavedReport:
    name = (name or "").strip()
    if not 1 <= len(name) <= 64:
        raise SavedReportError("The name needs 1 to 64 characters.")
    if SavedReport.select().where((SavedReport.user == user_id) & (SavedReport.name == name)).exists():
        raise SavedReportError("You already have a query of that name.")
    return SavedReport.create(user=user_id, name=name, report=report, query=query[:500])


def delete(saved: SavedReport) -> None:
    saved.delete_instance()
