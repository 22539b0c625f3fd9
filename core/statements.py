"""INSERT statements written once: peewee builds a statement's SQL text anew for every call, and for a new
ticket (four inserts) that building was most of the Python time of ``create_ticket`` (issue 15 item 7,
cProfile: ~60 % of its CPU in peewee's ``sql``). Here the text of an INSERT of a given shape (model, columns,
rows, conflict clause, database class) is built by peewee the first time and kept; later calls only convert
the values (each field's ``db_value``, as peewee does) and execute.

The first build checks that the values converted here are exactly the parameters peewee produced (same
order, same values); a shape where they differ is never kept and always goes through peewee.

``identifier`` quotes a table or column name for SQL text written by hand around them (caseflow.new_ticket's
statement, the guards channels.receipts splices into it): the one place a name's quotes are doubled.

``execute_prepared`` runs such a kept text on PostgreSQL as a statement prepared once per connection.
"""
from __future__ import annotations

import hashlib
import re
from typing import Callable, Hashable, Sequence

import peewee

from core.db import is_postgres

_kept: dict[tuple, tuple[str, list[peewee.Field]]] = {}
_refused: set[tuple] = set()


def identifier(name: str) -> str:
    """``name`` as an SQL identifier (PostgreSQL and SQLite alike): double-quoted, a quote in it doubled."""
    return '"' + name.replace('"', '""') + '"'


def _params(columns: Sequence[peewee.Field], rows: Sequence[dict]) -> list:
    return [column.db_value(row[column.name]) for row in rows for column in columns]


def execute_insert(model: type[peewee.Model], rows: Sequence[dict], shape: Hashable,
                   build: Callable[[], peewee.Insert]):
    """Execute the INSERT ``build()`` makes for ``rows`` (dicts keyed by field name, every row the same
    fields); ``shape`` names what else the statement holds (its conflict clause, RETURNING) for this caller.
    Returns the cursor."""
    return model._meta.database.execute_sql(*insert_text(model, rows, shape, build))


def insert_text(model: type[peewee.Model], rows: Sequence[dict], shape: Hashable,
                build: Callable[[], peewee.Insert]) -> tuple[str, list]:
    """The SQL text and parameters of the INSERT ``build()`` makes for ``rows`` (as ``execute_insert``), not
    executed: for a statement that holds it (caseflow.new_ticket's). A value may be a peewee node (SQL written
    into the text): ``shape`` must then say so, as the text holds it."""
    database = model._meta.database
    key = (model, type(database.obj) if isinstance(database, peewee.DatabaseProxy) else type(database),
           tuple(rows[0]), len(rows), shape)
    kept = _kept.get(key)
    if kept is not None:
        sql, columns = kept
        return sql, _params(columns, rows)
    query = build()
    sql, params = query.sql()
    if key not in _refused:
        fields = model._meta.fields
        # a value that is SQL (a peewee node: caseflow.new_ticket's profile id) is in the text, not a parameter
        columns = [fields[name] for name in sorted(rows[0], key=lambda n: fields[n]._sort_key)
                   if not isinstance(rows[0][name], peewee.Node)]
        try:
            same = _params(columns, rows) == list(params)
        except (KeyError, TypeError, ValueError):
            same = False
        if same:
            _kept[key] = (sql, columns)
        else:
            _refused.add(key)
    return sql, list(params)


def insert_returning_id(row: peewee.Model, conflict_target: peewee.Field | None = None) -> bool:
    """INSERT ``row`` (an unsaved instance, defaults filled) and set its id (RETURNING, both databases);
    with ``conflict_target``, ON CONFLICT DO NOTHING there: False when another row held that value. Any other
    constraint still raises."""
    model = type(row)
    sql, params = returning_id_text(row, conflict_target)
    inserted = model._meta.database.execute_sql(sql, params).fetchone()
    if inserted is None:
        return False
    setattr(row, model._meta.primary_key.name, inserted[0])
    row._dirty.clear()
    return True


def returning_id_text(row: peewee.Model, conflict_target: peewee.Field | None = None,
                      sql_values: dict[str, str] | None = None) -> tuple[str, list]:
    """The text and parameters of ``insert_returning_id``'s statement for ``row``, not executed;
    ``sql_values``: columns whose value is this SQL instead (by field name)."""
    model = type(row)
    data = dict(row.__data__)
    for name, sql in (sql_values or {}).items():
        data[name] = peewee.SQL(sql)

    def build():
        query = model.insert(data)
        if conflict_target is not None:
            query = query.on_conflict(action="NOTHING", conflict_target=[conflict_target])
        return query.returning(model._meta.primary_key)

    return insert_text(model, [data], ("returning", conflict_target.name if conflict_target is not None else None,
                                       tuple(sorted((sql_values or {}).items()))), build)


def select_first(model: type[peewee.Model], shape: Hashable, params: Sequence, build: Callable[[], peewee.Select]):
    """The first row (a ``model`` instance) of the SELECT ``build()`` makes, or None; ``params`` are its
    parameters in order (LIMIT's included) as peewee would give them, checked against peewee's on the first
    build. The text is built once per ``shape`` and database class; the rows come through peewee's raw
    query (its conversions), which writes no SQL."""
    database = model._meta.database
    key = (model, type(database.obj) if isinstance(database, peewee.DatabaseProxy) else type(database), shape)
    sql = _kept.get(key)
    if sql is None:
        sql, built = build().sql()
        if key not in _refused:
            if list(built) == list(params):
                _kept[key] = sql
            else:
                _refused.add(key)
        params = built
    return next(iter(model.raw(sql, *params)), None)


_PLACEHOLDER = re.compile(r"%%|%s")


class Prepared(str):
    """A kept statement's text (the str itself: what logging and core.db's checks read) that PostgreSQL runs as a
    statement prepared once per connection (core.db's _CooperativePostgres._execute_cursor): ``prepare`` is its
    PREPARE ($n for the %s placeholders), ``execute`` the EXECUTE with the values."""

    name: str
    prepare: str
    execute: str

    def __new__(cls, sql: str, count: int) -> "Prepared":
        self = super().__new__(cls, sql)
        self.name = "kept_" + hashlib.sha1(sql.encode()).hexdigest()[:24]
        numbered = iter(range(1, count + 1))
        # the PREPARE runs with no values, but through the driver's formatting all the same: a literal % stays %%
        self.prepare = f"PREPARE {self.name} AS " + _PLACEHOLDER.sub(
            lambda m: m.group() if m.group() == "%%" else f"${next(numbered)}", sql)
        self.execute = f"EXECUTE {self.name}" + (f"({', '.join(['%s'] * count)})" if count else "")
        return self


_texts: dict[str, Prepared] = {}  # by text
_named: dict[str, Prepared] = {}  # by name


def prepared_text(sql: str) -> str:
    """The text an ``EXECUTE kept_...`` of this process runs (a Prepared's), else ``sql`` itself: for whoever
    looks for a statement by its text (tests that cut a connection before a chosen statement)."""
    if sql.startswith("EXECUTE kept_"):
        text = _named.get(re.split(r"[ (]", sql, maxsplit=2)[1])
        if text is not None:
            return str(text)
    return sql


def execute_prepared(database: peewee.Database, sql: str, params: Sequence):
    """Run ``sql`` (a text kept per shape, %s placeholders) with ``params`` and return the cursor: on PostgreSQL as
    a statement prepared once per connection (PREPARE the first time a connection runs it, then EXECUTE with the
    values), on SQLite as it is.

    Why: parsing and planning a new ticket's one statement (caseflow.new_ticket, a WITH of five to eight INSERTs)
    took ~0.6 ms of the server's CPU in every creation, a third of its time there (issue 15 item 7; server-side
    p50 1.6-1.8 ms against 1.0-1.2 prepared, at 1,000,000 tickets). No pooler in transaction mode sits between
    the product and its server (core.leader says why), so a prepared statement stays with its connection."""
    if not is_postgres(database):
        return database.execute_sql(sql, params)
    text = _texts.get(sql)
    if text is None:
        text = _texts[sql] = Prepared(sql, len(params))
        _named[text.name] = text
    return database.execute_sql(text, params)
