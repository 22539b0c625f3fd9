"""Recording search by day range, agent, caller and ticket; the same query the web page and the benchmark use.

Rows come newest first, a page at a time, with one extra row fetched to know whether there is a next page
(counting a million rows for every page would cost more than the search).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from core.clock import parse_day
from recorder.models import Recording

MAX_SPAN_DAYS = 366
_DIGITS = re.compile(r"^\+?[0-9]{1,32}$")
_OPERATOR = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_TICKET = re.compile(r"^[0-9]{8}$")


class SearchError(ValueError):
    """A search field that cannot be used; the message says which and why (zh / en)."""


@dataclass(frozen=True)
class RecordingQuery:
    """Validated search criteria."""

    day_from: dt.date | None = None
    day_to: dt.date | None = None
    agent_no: str = ""
    caller: str = ""
    ticket_number: str = ""

    @classmethod
    def parse(cls, args) -> "RecordingQuery":
        """From request arguments (strings); raises SearchError on bad input."""
        def day(name):
            raw = args.get(name) or ""
            try:
                return parse_day(raw)
            except ValueError:
                raise SearchError(f"日期格式应为 YYYY-MM-DD / {name} must be a date YYYY-MM-DD, "
                                  f"got {raw.strip()[:20]!r}") from None

        day_from, day_to = day("from"), day("to")
        if day_from and day_to:
            if day_to < day_from:
                raise SearchError("结束日期早于开始日期 / the end date is before the start date")
            if (day_to - day_from).days > MAX_SPAN_DAYS:
                raise SearchError(f"日期范围不能超过 {MAX_SPAN_DAYS} 天 / at most {MAX_SPAN_DAYS} days at once")
        agent = (args.get("agent") or "").strip()
        if agent and not _OPERATOR.match(agent):
            raise SearchError("工号格式不正确 / malformed operator number")
        caller = re.sub(r"[\s-]", "", args.get("caller") or "")
        if caller and not _DIGITS.match(caller):
            raise SearchError("来电号码只能包含数字 / the caller number must be digits")
        ticket = (args.get("ticket") or "").strip()
        if ticket and not _TICKET.match(ticket):
            raise SearchError("受理号应为 8 位数字 / the acceptance number has 8 digits")
        return cls(day_from, day_to, agent, caller, ticket)

    @property
    def empty(self) -> bool:
        return not (self.day_from or self.day_to or self.agent_no or self.caller or self.ticket_number)


def search_recordings(base, query: RecordingQuery, limit: int = 25, offset: int = 0) -> tuple[list[Recording], bool]:
    """(page of recordings newest first, whether more follow) within ``base`` (the user's visible set)."""
    q = base
    if query.day_from:
        q = q.where(Recording.day >= query.day_from)
    if query.day_to:
        q = q.where(Recording.day <= query.day_to)
    if query.agent_no:
        q = q.where(Recording.agent_no == query.agent_no)
    if query.caller:
        # A full number matches exactly (indexed); a shorter one is a prefix (still indexed as a range).
        q = q.where(Recording.caller == query.caller) if len(query.caller) >= 7 else \
            q.where((Recording.caller >= query.caller) & (Recording.caller < query.caller + "\uffff"))
    if query.ticket_number:
        from caseflow.models import Ticket, TicketCall

        uuids = (TicketCall.select(TicketCall.call_uuid).join(Ticket)
                 .where(Ticket.number == query.ticket_number))
        q = q.where(Recording.call_uuid.in_(uuids))
    rows = list(q.order_by(Recording.started_at.desc(), Recording.id.desc()).limit(limit + 1).offset(offset))
    return rows[:limit], len(rows) > limit
