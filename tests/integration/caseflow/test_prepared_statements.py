"""core.statements.execute_prepared: a new ticket's one statement runs on PostgreSQL as a statement prepared once
per connection (its parsing and planning were a third of the server's time of a creation, issue 15 item 7), with
the same rows and answers as the text; a connection that lost it (a session reset) prepares it again; SQLite runs
the text as it is."""
from __future__ import annotations

import pytest

from caseflow import services
from caseflow.models import Ticket
from core.db import is_postgres
from core.statements import execute_prepared


def _prepared(db) -> dict:
    """The kept statements prepared on this connection: name -> when."""
    return dict(db.execute_sql("SELECT name, prepare_time FROM pg_prepared_statements WHERE name LIKE 'kept%%'"))


def _file(agent, phone: str = "13800138000") -> Ticket:
    return services.create_ticket("路灯不亮", type="complaint", citizen_phone=phone, created_by=agent)


def test_a_new_tickets_statement_is_prepared_once_per_connection(db, org_setup):
    """Should PREPARE the statement the first time a connection runs it and only EXECUTE it after (one name on
    the server, prepared once), the tickets written as before."""
    if not is_postgres():
        pytest.skip("PostgreSQL's prepared statements")
    with db.atomic():  # one connection throughout (it may hold other shapes' statements from earlier tests)
        before = _prepared(db)
        first = _file(org_setup.agent)
        after = _prepared(db)
        assert after and len(set(after) - set(before)) <= 1 and set(before) <= set(after)
        second = _file(org_setup.agent, "13900139000")
        assert _prepared(db) == after  # nothing prepared again
    assert {t.citizen_phone for t in Ticket.select()} == {"13800138000", "13900139000"}
    assert first.id != second.id and Ticket.get_by_id(second.id).citizen.phone == "13900139000"


def test_a_connection_that_lost_it_prepares_it_again(db, org_setup):
    """Should run the statement on a connection whose session forgot it (DEALLOCATE ALL, as a reset does): the
    EXECUTE refused, nothing of it ran, prepared again and run, on every connection of the pool."""
    if not is_postgres():
        pytest.skip("PostgreSQL's prepared statements")
    with db.atomic():
        _file(org_setup.agent)
        db.execute_sql("DEALLOCATE ALL")
    phones = [f"1370000{n:04d}" for n in range(8)]  # more than the connections the pool hands round
    for phone in phones:
        _file(org_setup.agent, phone)
    assert Ticket.select().where(Ticket.citizen_phone.in_(phones)).count() == len(phones)


def test_the_values_arrive_as_in_the_text(db):
    """Should give a statement with values (and on PostgreSQL a literal %) the same answer prepared as run as
    text, and run a statement PostgreSQL will not prepare (a parameter of no type it can infer) as text."""
    p = db.param
    percent, answer = ("'a%%'", "a%") if is_postgres() else ("'a%'", "a%")
    row = execute_prepared(db, f"SELECT {p} || {percent}, {p} + 1", ("x", 41)).fetchone()
    assert tuple(row) == ("x" + answer, 42)
    row = execute_prepared(db, f"SELECT {p} || {percent}, {p} + 1", ("y", 1)).fetchone()
    assert tuple(row) == ("y" + answer, 2)
    assert execute_prepared(db, f"SELECT {p} IS NULL", (None,)).fetchone()[0] in (True, 1)
    with db.atomic():  # refused inside a transaction: the transaction goes on
        assert execute_prepared(db, f"SELECT {p} IS NULL, 1", ("x",)).fetchone()[0] in (False, 0)
        assert db.execute_sql("SELECT 2").fetchone()[0] == 2
