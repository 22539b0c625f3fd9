"""Saved ticket searches per user (P5 §3.7.7 用户自定义查询, P2 §3.2.7): the current filters kept under a
name, listed, run and deleted by their owner only; another user's search is indistinguishable from none."""
from __future__ import annotations

import json
import logging
from typing import Optional

import peewee

from caseflow import services
from caseflow.models import SavedSearch, User
from caseflow.services import NotFound, TicketInputError
from core.clock import Clock

log = logging.getLogger(__name__)

MAX_NAME = 64
MAX_VALUE = 200
MAX_PER_USER = 50


def clean_filters(filters: dict) -> dict[str, str]:
    """The non-empty filters as text, refusing keys that are not search filters and over-long values."""
    unknown = sorted(set(filters) - set(services.SEARCH_FILTERS))
    if unknown:
        raise TicketInputError(f"未知的查询条件 / unknown search filter {', '.join(unknown)[:100]!r}: "
                               f"expected {', '.join(services.SEARCH_FILTERS)}")
    out = {}
    for key in services.SEARCH_FILTERS:
        value = filters.get(key)
        value = "" if value is None else str(value).strip()
        if "\x00" in value or len(value) > MAX_VALUE:
            raise TicketInputError(f"查询条件{key}无效 / search filter {key} is malformed or longer than "
                                   f"{MAX_VALUE} characters")
        if value:
            out[key] = value
    return out


def save(actor: User, name: str, filters: dict, clock: Optional[Clock] = None) -> SavedSearch:
    """Keep ``filters`` under ``name`` for ``actor``; the filters are checked by running them once, so a
    search that cannot run (bad date, unknown status) is refused now rather than when used."""
    clock = clock or Clock()
    name = "" if name is None else str(name).strip()
    if not name or "\x00" in name:
        raise TicketInputError("请填写查询名称 / give the search a name")
    if len(name) > MAX_NAME:
        raise TicketInputError(f"查询名称超过{MAX_NAME}字 / the name is longer than {MAX_NAME} characters")
    filters = clean_filters(filters)
    if not filters:
        raise TicketInputError("没有可保存的查询条件 / there are no filters to save")
    services.search_tickets(actor, **filters, limit=1)
    if SavedSearch.select().where(SavedSearch.user == actor).count() >= MAX_PER_USER:
        raise TicketInputError(f"最多保存{MAX_PER_USER}个查询 / at most {MAX_PER_USER} saved searches: delete one")
    try:
        with SavedSearch._meta.database.atomic():
            row = SavedSearch.create(user=actor, name=name, filters=json.dumps(filters, ensure_ascii=False),
                                     created_at=services.to_db(clock.now()))
    except peewee.IntegrityError:
        raise TicketInputError(f"已有名为“{name}”的查询 / you already have a search named {name!r}") from None
    log.info("saved search %s by %s", row.id, actor.operator_no)
    return row


def list_for(actor: User) -> list[SavedSearch]:
    """The actor's own saved searches, by name."""
    return list(SavedSearch.select().where(SavedSearch.user == actor).order_by(SavedSearch.name, SavedSearch.id))


def get_for(actor: User, search_id) -> SavedSearch:
    """One of the actor's saved searches; NotFound for a missing id and for another user's alike."""
    try:
        search_id = int(search_id)
    except (TypeError, ValueError):
        raise NotFound("没有找到该查询 / no such saved search") from None
    row = SavedSearch.get_or_none((SavedSearch.id == search_id) & (SavedSearch.user == actor))
    if row is None:
        raise NotFound("没有找到该查询 / no such saved search")
    return row


def filters_of(row: SavedSearch) -> dict[str, str]:
    """The stored filters (checked again: a row edited by hand cannot smuggle a key in)."""
    try:
        data = json.loads(row.filters or "{}")
    except ValueError:
        raise TicketInputError("该查询已损坏，请删除后重新保存 / this saved search is damaged: delete it") from None
    if not isinstance(data, dict):
        raise TicketInputError("该查询已损坏，请删除后重新保存 / this saved search is damaged: delete it")
    return clean_filters(data)


def run(actor: User, search_id, limit: int = 200):
    """Run one of the actor's saved searches: (the row, its filters, the tickets the actor may see now)."""
    row = get_for(actor, search_id)
    filters = filters_of(row)
    return row, filters, services.search_tickets(actor, **filters, limit=limit)


def delete(actor: User, search_id) -> None:
    """Delete one of the actor's saved searches (NotFound for another user's)."""
    row = get_for(actor, search_id)
    row.delete_instance()
    log.info("saved search %s deleted by %s", row.id, actor.operator_no)
