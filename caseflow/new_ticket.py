"""A new ticket's own rows: the ticket, its history row and, when asked, its day counts (issue 15 item 7).

PostgreSQL writes them in one statement (a data-modifying WITH): each statement of a creation was a round trip
to the server, five of them with BEGIN and COMMIT, and on a loaded machine each waited for a turn of the server
process and of this one (bench/caseflow.py at 1,000,000 tickets: p50 3.6 ms, most of it waits). The ticket's
INSERT draws nothing on a taken number (ON CONFLICT DO NOTHING) and the other two read its id from it, so a
collision writes nothing of the ticket and the caller draws again. One statement is atomic by itself: a creation
that writes nothing else needs no transaction around it (services.create_ticket), and a first contact's profile
goes into it too (its own INSERT was a round trip and a commit of its own), and so do a caller's own rows of the
ticket (the website's case and audit row: ``rows``), each read from the ticket's INSERT like the history row.

A row may be ``Guarded``: written only if its condition holds when the ticket's rows are (the SMS receipt's,
unless the number opted out and while its template's text is the one it was rendered from: channels.receipts).
The condition is a part of the statement, not a read before it: each read was a round trip of the creation.

SQLite runs one statement per row (it has no data-modifying WITH, and its statements are calls into the
library, not round trips). Both write the same rows (tests/integration/caseflow/test_create_statements.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import peewee

from caseflow import daycounts
from caseflow.models import Citizen, Ticket, TicketDayCount, TicketHistory
from core.db import is_postgres
from core.statements import execute_prepared, identifier, insert_returning_id, insert_text, returning_id_text

_kept: dict[tuple, tuple[str, list[peewee.Field]]] = {}  # the WITH's text past the ticket's INSERT, per shape


@dataclass
class Guarded:
    """An unsaved row of the new ticket written only if ``condition`` holds as the ticket's rows are written
    ("": always), and ``probe``, a truth about the database read with it (PostgreSQL: in the same statement, once
    the row is written; SQLite: with the condition, in the ticket's transaction, which holds the write lock: the
    same answer), left in ``probed`` (None without a probe or when the row was not written). Both are SQL text with
    the database's placeholders (``database.param``) and their parameters in order; the text is spliced into the
    statement and kept per text, so it is built in code, never from input (values are parameters). The row's
    id is set when it was written and stays None when not."""

    row: peewee.Model
    condition: str = ""
    params: tuple = ()
    probe: str = ""
    probe_params: tuple = ()
    probed: Optional[bool] = None


Row = Union[peewee.Model, Guarded]


def insert(draft: Ticket, history: TicketHistory, counted: bool, newcomer: Citizen | None = None,
           rows: Sequence[Row] = ()) -> bool:
    """INSERT ``draft`` (unsaved, defaults filled) unless another ticket holds its number (False: nothing
    written), then ``history`` (unsaved, its ticket set here) and, when ``counted``, the ticket's day counts
    (caseflow.daycounts). Sets their ids. ``newcomer``: the unsaved profile of the ticket's number (PostgreSQL
    only), the ticket's citizen: inserted in the same statement on a first contact, or, when the number has a
    profile (recorded before or by another call meanwhile), that row, its empty fields filled from ``newcomer``,
    is the ticket's citizen (``newcomer``'s id then stays None); written even when the ticket's number was
    taken. ``rows``: unsaved rows of the caller's written with the ticket, before its
    day counts (a foreign key to the ticket set to ``draft`` takes its id), nothing of them when the number was
    taken; their ids are not read back, but a ``Guarded`` row's is (None: its condition did not hold)."""
    if is_postgres():
        return _in_one_statement(draft, history, daycounts.changes(draft, set()) if counted else [], newcomer,
                                 rows)
    if newcomer is not None:
        raise ValueError("a first contact's profile goes into the ticket's statement on PostgreSQL only")
    if not insert_returning_id(draft, Ticket.number):
        return False
    history.ticket = draft
    insert_returning_id(history)
    database = draft._meta.database
    for row in rows:
        if not isinstance(row, Guarded):
            _insert_row(row)
            continue
        # the condition and the probe in one read (the transaction holds the write lock: nothing changes between)
        holds, probed = database.execute_sql(
            f"SELECT {row.condition or '1'}, {row.probe or 'NULL'}", (*row.params, *row.probe_params)).fetchone()
        if holds:
            _insert_row(row.row)
            row.probed = None if not row.probe else bool(probed)
    if counted:
        daycounts.recorded(draft)
    return True


def _insert_row(row: peewee.Model) -> None:
    """INSERT a row of the new ticket's (SQLite) with its statement's text kept (core.statements: save() built it
    anew each time, 0.4 ms of an SMS receipt's); a foreign key to the draft takes the draft's new id, as save()'s."""
    row._populate_unsaved_relations(row.__data__)
    insert_returning_id(row)


def _in_one_statement(draft: Ticket, history: TicketHistory, counts: Sequence[tuple],
                      newcomer: Citizen | None, rows: Sequence[Row] = ()) -> bool:
    ticket_sql, params = returning_id_text(  # the INSERT that insert_unless_taken runs
        draft, Ticket.number, None if newcomer is None else {"citizen": '(SELECT "id" FROM c)'})
    names = tuple(name for name in history.__data__ if name != "ticket")
    plain = [row.row if isinstance(row, Guarded) else row for row in rows]
    row_names = tuple((type(row), tuple(n for n in row.__data__ if n != "id"),
                       (given.condition,) if isinstance(given, Guarded) else None)
                      for row, given in zip(plain, rows))
    rest, fields = _rest(names, len(counts), row_names)
    params += [field.db_value(history.__data__[field.name]) for field in fields]
    for row, given, (_model, names_of_row, _guard) in zip(plain, rows, row_names):
        params += [field.db_value(row.__data__[field.name]) for field in _fields(type(row), names_of_row)
                   if not _is_ticket(field)]
        if isinstance(given, Guarded):
            params += given.params
    params += [value for row in counts for value in row]
    guarded = [n for n, given in enumerate(rows) if isinstance(given, Guarded)]
    read_guarded = ""
    for n in guarded:  # each guarded row's id, and its probe's answer when it has one
        read_guarded += f", (SELECT {identifier(_key_column(type(plain[n])))} FROM r{n})"
        read_guarded += f", ({rows[n].probe})" if rows[n].probe else ""
    probe_params = [value for n in guarded for value in rows[n].probe_params]
    if newcomer is None:
        sql = (f'WITH t AS ({ticket_sql}), {rest} SELECT (SELECT "id" FROM t), (SELECT "id" FROM h), NULL, NULL'
               f'{read_guarded}')
    else:
        citizen_sql, citizen_params = _citizen_upsert(newcomer)
        sql = (f'WITH c AS ({citizen_sql}), t AS ({ticket_sql}), {rest} '
               'SELECT (SELECT "id" FROM t), (SELECT "id" FROM h), (SELECT "id" FROM c), (SELECT "fresh" FROM c)'
               f'{read_guarded}')
        params = citizen_params + params
    ticket_id, history_id, citizen_id, fresh, *read = execute_prepared(
        Ticket._meta.database, sql, params + probe_params).fetchone()
    if fresh:
        newcomer.id = citizen_id
        newcomer._dirty.clear()
    if ticket_id is None:
        return False
    draft.id = ticket_id
    if fresh:
        draft.citizen = newcomer
    elif citizen_id is not None:
        draft.citizen_id = citizen_id  # the other call's profile: the ticket's row has it already
    draft._dirty.clear()
    history.ticket = draft
    history.id = history_id
    history._dirty.clear()
    for n in guarded:
        given = rows[n]
        row_id = read.pop(0)
        probed = read.pop(0) if given.probe else None
        setattr(given.row, type(given.row)._meta.primary_key.name, row_id)
        if row_id is not None:
            given.row._dirty.clear()
            given.probed = None if probed is None else bool(probed)
    return True


def _key_column(model) -> str:
    """``model``'s primary key column (what a guarded row's INSERT returns)."""
    return model._meta.primary_key.column_name


def _citizen_upsert(newcomer: Citizen) -> tuple[str, list]:
    """The profile of the ticket's number: inserted on a first contact, else the row there is (recorded before,
    or by another call meanwhile) with its empty name, address and e-mail filled from this contact, as
    citizens.known_citizen does. Its id either way (DO UPDATE: RETURNING gives the existing row in this
    statement; a sub-SELECT would not see one committed meanwhile, reading the statement's snapshot) and
    ``fresh``, whether it was inserted. No read of the profile before the statement: it was a round trip of
    every creation with a phone number. With DO NOTHING the ticket was committed without its citizen and set by
    a separate UPDATE: a connection lost between the two left it with none."""
    data = dict(newcomer.__data__)
    table = identifier(Citizen._meta.table_name)

    def filled(field: peewee.Field) -> peewee.SQL:  # the row's value unless empty; literal SQL: no parameter
        column = identifier(field.column_name)
        return peewee.SQL(f"CASE WHEN {table}.{column} = '' THEN EXCLUDED.{column} ELSE {table}.{column} END")

    def build():
        return (Citizen.insert(data)
                .on_conflict(conflict_target=[Citizen.phone],
                             update={field: filled(field) for field in (Citizen.name, Citizen.address, Citizen.email)})
                .returning(Citizen.id, peewee.SQL('(xmax = 0) AS "fresh"')))

    return insert_text(Citizen, [data], ("citizen upsert, empty fields filled",), build)


def _rest(names: tuple[str, ...], count_rows: int, rows: tuple = ()) -> tuple[str, list[peewee.Field]]:
    """The history row's INSERT (its ``names`` given, the ticket's id from ``t``), the caller's ``rows`` ((model,
    field names, guard) each: an INSERT of one row read from ``t``, so nothing when the number was taken; with a
    guard, ``(condition,)``, only where the condition holds, its id returned) and the day
    counts' upsert of ``count_rows`` rows when there are any (daycounts._add's, VALUES in the order given: the
    order the rows' locks are taken in), as WITH's parts; the history fields in their parameters' order."""
    key = (names, count_rows, rows)
    if key in _kept:
        return _kept[key]
    database = Ticket._meta.database
    fields = sorted((TicketHistory._meta.fields[name] for name in names), key=lambda f: f._sort_key)
    columns = ", ".join(identifier(f.column_name) for f in fields)
    values = ", ".join(_typed(f, database) for f in fields)
    parts = [f'h AS (INSERT INTO {identifier(TicketHistory._meta.table_name)} ("ticket_id", {columns}) '
             f'SELECT t."id", {values} FROM t RETURNING "id")']
    for number, (model, row_names, guard) in enumerate(rows):
        row_fields = _fields(model, row_names)
        columns = ", ".join(identifier(f.column_name) for f in row_fields)
        values = ", ".join('t."id"' if _is_ticket(f) else _typed(f, database) for f in row_fields)
        where = ""
        if guard is not None:  # (condition,): only where it holds ("": always), its id returned
            where = (f" WHERE {guard[0]}" if guard[0] else "") + f" RETURNING {identifier(_key_column(model))}"
        parts.append(f"r{number} AS (INSERT INTO {identifier(model._meta.table_name)} ({columns}) "
                     f"SELECT {values} FROM t{where})")
    if count_rows:
        count_fields = [TicketDayCount._meta.fields[name] for name in daycounts.ROW_FIELDS]
        row = "(" + ", ".join(_typed(f, database) for f in count_fields) + ")"
        table = identifier(TicketDayCount._meta.table_name)
        names_sql = ", ".join(identifier(f.column_name) for f in count_fields)
        parts.append(f"d AS (INSERT INTO {table} ({names_sql}) SELECT * FROM (VALUES {', '.join([row] * count_rows)})"
                     f' AS v WHERE EXISTS (SELECT 1 FROM t) ON CONFLICT ("day", "dimension", "value") DO UPDATE SET '
                     f'"tickets" = {table}."tickets" + EXCLUDED."tickets")')
    _kept[key] = (", ".join(parts), fields)
    return _kept[key]


def _fields(model, names: tuple[str, ...]) -> list[peewee.Field]:
    """``model``'s fields named, in their declared order (the columns' and the parameters' order)."""
    return sorted((model._meta.fields[name] for name in names), key=lambda f: f._sort_key)


def _is_ticket(field: peewee.Field) -> bool:
    """A foreign key to the ticket: its value is the new ticket's id, read from ``t``."""
    return isinstance(field, peewee.ForeignKeyField) and field.rel_model is Ticket


def _typed(field: peewee.Field, database) -> str:
    """A parameter cast to its column's type: in a SELECT's list (and VALUES) PostgreSQL takes an untyped NULL
    or string for text, which an integer or timestamp column refuses. A string's cast has no length: an
    explicit cast to VARCHAR(n) cuts a longer value silently, where the INSERT's own assignment to the column
    refuses it ("value too long", as the statement per row does)."""
    if isinstance(field, peewee.CharField):
        return "%s::VARCHAR"
    context = database.get_sql_context()
    return "%s::" + context.sql(field.ddl_datatype(context)).query()[0]
