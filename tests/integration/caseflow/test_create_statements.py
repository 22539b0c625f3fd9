"""Ticket creation's round trips (issue 15 item 7): each statement inside its transaction is a wait for the
server (PostgreSQL) or the write lock (SQLite) while the ticket's rows are held, so their number is pinned:
a new round trip fails here and must be weighed, not slipped in. PostgreSQL writes a new ticket's rows in one
statement (caseflow.new_ticket), SQLite one each: both write the same rows."""
from __future__ import annotations

import itertools
from contextlib import contextmanager

from caseflow import new_ticket, services
from caseflow.models import Ticket, TicketDayCount, TicketHistory
from core import statements as kept_statements
from core.db import is_postgres

# The citizen's profile read, then SQLite: the ticket (number drawn, search text in its row: its triggers index
# it), its history row, its day counts (one upsert), inside BEGIN and COMMIT; PostgreSQL: those three in one
# statement (its generated column indexes the text), which needs no transaction.
CREATE_STATEMENTS = {"sqlite": 4, "postgres": 2}


@contextmanager
def counted(database):
    seen: list[str] = []
    original = type(database).execute_sql

    def execute_sql(self, sql, params=None, *args, **kwargs):
        seen.append(sql)
        return original(self, sql, params, *args, **kwargs)

    type(database).execute_sql = execute_sql
    try:
        yield seen
    finally:
        type(database).execute_sql = original


def test_create_ticket_statements(db, org_setup, clock):
    """A citizen who called before (the profile read) and the ticket's rows; first contact adds the profile's
    insert. On PostgreSQL no BEGIN or COMMIT either."""
    def create(phone):
        return services.create_ticket("楼下施工噪音 noise at night", type="complaint", citizen_phone=phone,
                                      citizen_name="市民", created_by=org_setup.agent, clock=clock,
                                      category=org_setup.noise, region=org_setup.r_east)

    create("13800000001")
    count = CREATE_STATEMENTS["postgres" if is_postgres() else "sqlite"]
    for phone, expected in (("13800000001", count), ("13800000002", count + 1)):
        with counted(db) as seen:
            ticket = create(phone)
        statements = [s for s in seen if s.strip().upper() not in ("BEGIN", "COMMIT", "ROLLBACK")]
        assert len(statements) == expected, "\n".join(seen)
        if is_postgres():
            assert len(seen) == expected, "\n".join(seen)  # no transaction around the one statement
        kept = Ticket.get_by_id(ticket.id)
        assert (kept.number, kept.citizen_phone, kept.category_id) == (ticket.number, phone, org_setup.noise.id)
        assert TicketHistory.get(TicketHistory.ticket == ticket).action == "create"
    # every statement's text was kept after its first build (peewee's parameters matched the ones made here)
    assert not kept_statements._refused


def _counts() -> dict:
    return {(str(day), dimension, value): tickets for day, dimension, value, tickets in
            TicketDayCount.select(TicketDayCount.day, TicketDayCount.dimension, TicketDayCount.value,
                                  TicketDayCount.tickets).tuples()}


def _added(before: dict, after: dict) -> dict:
    return {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}


def _rows(ticket: Ticket) -> tuple:
    """The ticket's row and its history rows without their ids, number and PIN (drawn at random)."""
    row = Ticket.select().where(Ticket.id == ticket.id).dicts().get()
    for drawn in ("id", "number", "query_pin"):
        row.pop(drawn)
    history = [dict(h, id=None, ticket=None) for h in
               TicketHistory.select().where(TicketHistory.ticket == ticket.id).order_by(TicketHistory.id).dicts()]
    return row, history


def test_one_statement_writes_the_rows_of_one_each(db, org_setup, clock, monkeypatch):
    """A ticket written by each way (PostgreSQL's one statement, the statement per row SQLite runs; on SQLite
    both run the latter) has the same row, history rows and day counts added; a taken number writes nothing
    and is drawn again."""
    def create():
        return services.create_ticket("楼下施工噪音 noise at night", type="complaint", citizen_phone="13800000003",
                                      citizen_name="市民", created_by=org_setup.agent, clock=clock,
                                      category=org_setup.noise, region=org_setup.r_east, urgency="urgent")

    taken = create().number
    drawn = itertools.chain([taken, taken], (f"7{n:07d}" for n in itertools.count()))
    monkeypatch.setattr(services, "generate_number", lambda: next(drawn))
    before = _counts()
    first = create()  # the database's own way, after two taken numbers
    middle = _counts()
    monkeypatch.setattr(new_ticket, "is_postgres", lambda: False)
    second = create()  # a statement per row
    assert (first.number, second.number) == ("70000000", "70000001")
    assert _rows(first) == _rows(second)
    assert _added(before, middle) == _added(middle, _counts()) != {}
    assert Ticket.select().count() == 3
    assert TicketHistory.select().count() == 3
