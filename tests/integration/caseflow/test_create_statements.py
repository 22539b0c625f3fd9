"""Ticket creation's round trips (issue 15 item 7): each statement inside its transaction is a wait for the
server (PostgreSQL) or the write lock (SQLite) while the ticket's rows are held, so their number is pinned:
a new round trip fails here and must be weighed, not slipped in."""
from __future__ import annotations

from contextlib import contextmanager

from caseflow import services
from caseflow.models import Ticket, TicketHistory
from core import statements as kept_statements

# The citizen's profile read, the ticket (number drawn, search text in its row: SQLite's triggers and
# PostgreSQL's generated column index it), its history row, its day counts (one upsert); besides the
# transaction's BEGIN and COMMIT.
CREATE_STATEMENTS = 4


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
    """A citizen who called before (the profile read), the ticket, its history row, its day counts: four.
    First contact adds the profile's insert."""
    def create(phone):
        return services.create_ticket("楼下施工噪音 noise at night", type="complaint", citizen_phone=phone,
                                      citizen_name="市民", created_by=org_setup.agent, clock=clock,
                                      category=org_setup.noise, region=org_setup.r_east)

    create("13800000001")
    for phone, expected in (("13800000001", CREATE_STATEMENTS), ("13800000002", CREATE_STATEMENTS + 1)):
        with counted(db) as seen:
            ticket = create(phone)
        statements = [s for s in seen if s.strip().upper() not in ("BEGIN", "COMMIT", "ROLLBACK")]
        assert len(statements) == expected, "\n".join(seen)
        kept = Ticket.get_by_id(ticket.id)
        assert (kept.number, kept.citizen_phone, kept.category_id) == (ticket.number, phone, org_setup.noise.id)
        assert TicketHistory.get(TicketHistory.ticket == ticket).action == "create"
    # every statement's text was kept after its first build (peewee's parameters matched the ones made here)
    assert not kept_statements._refused
