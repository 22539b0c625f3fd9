"""What the database benchmarks share: percentiles and one throw-away database per backend."""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def pct(values, p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


BENCH_SECRET_KEY = "bench-secret-key-" + "b" * 32  # the tickets' PIN key here (caseflow.pins)


def install_pin_key() -> None:
    """Install the tickets' PIN key (caseflow.pins) as a product's start does: a benchmark files tickets, and
    a kept database's migration 0027 hashes plain PINs, with no product."""
    from caseflow import pins

    pins.install(pins.PinKeys(BENCH_SECRET_KEY.encode()))


def open_backend(name: str, folder: Path, pg_url: str, label: str):
    """Bind the database for one backend ("sqlite" or "postgres") and create the schema.

    PostgreSQL runs in a schema of its own (bench_<label>_<pid>), dropped by the returned cleanup, so a
    benchmark never touches the test database's tables. Returns (database, cleanup).
    """
    from core import db as core_db
    from hotline.schema import all_models, create_schema

    if name == "sqlite":
        url = f"sqlite:///{folder / 'bench.sqlite3'}"
        cleanup = lambda: None  # noqa: E731 - the temporary folder goes with everything in it
    else:
        import psycopg2

        schema = f"bench_{label}_{os.getpid()}"
        fresh_schema(pg_url, schema)
        url = core_db.in_schema(pg_url, schema)

        def cleanup():
            drop = psycopg2.connect(pg_url, connect_timeout=3)
            drop.autocommit = True
            with drop.cursor() as cur:
                cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            drop.close()
    database = core_db.bind_database(url)
    database.connect(reuse_if_open=True)
    install_pin_key()
    create_schema(all_models())
    return database, cleanup


def fresh_schema(pg_url: str, schema: str) -> None:
    """Drop PostgreSQL's ``schema`` with everything in it, if there, and create it empty."""
    import psycopg2

    conn = psycopg2.connect(pg_url, connect_timeout=3)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        cur.execute(f'CREATE SCHEMA "{schema}"')
    conn.close()


def open_kept_backend(name: str, path: Path, schema: str, pg_url: str, seeded: bool):
    """Bind a kept database for one backend and bring its schema up to date: SQLite in the file ``path``,
    PostgreSQL in ``schema``, both left in place for the next run. ``seeded`` False (the caller's record of a
    finished seeding is missing) starts it empty: the file removed, the schema dropped and created again.
    Returns (database, its URL)."""
    from core import db as core_db
    from hotline.schema import all_models, create_schema

    if name == "sqlite":
        path.parent.mkdir(parents=True, exist_ok=True)
        if not seeded:
            for stale in path.parent.glob(f"{path.name}*"):
                stale.unlink()
        url = f"sqlite:///{path}"
    else:
        if not seeded:
            fresh_schema(pg_url, schema)
        url = core_db.in_schema(pg_url, schema)
    database = core_db.bind_database(url)
    database.connect(reuse_if_open=True)
    install_pin_key()
    create_schema(all_models())  # a reused database gets the migration steps added since it was seeded
    return database, url


def available_backends(pg_url: str) -> list[str]:
    """["sqlite"], and "postgres" when ``pg_url`` is given and answers (said when it does not)."""
    backends = ["sqlite"]
    if pg_url:
        try:
            import psycopg2

            psycopg2.connect(pg_url, connect_timeout=3).close()
            backends.append("postgres")
        except Exception as error:  # noqa: BLE001 - a bench without PostgreSQL still reports SQLite
            print(f"PostgreSQL not reachable ({str(error).strip()[:80] or error.__class__.__name__}): SQLite only")
    return backends


def _copy_text(value) -> str:
    """One value in PostgreSQL COPY's text format (\\N for NULL; backslash, tab and line breaks escaped)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def bulk_insert(model, names: tuple[str, ...], rows) -> int:
    """Write ``rows`` (tuples of the fields ``names``) into ``model``'s table in one go, far faster than
    peewee's insert_many: COPY on PostgreSQL, executemany on SQLite. The model's other fields (the primary key
    aside) get their defaults, as insert_many would give them. Runs in the caller's transaction; returns the
    number of rows."""
    import io

    from core.db import database, is_postgres

    fields = [model._meta.fields[name] for name in names]
    rest = [f for f in model._meta.sorted_fields if f.name not in names and not f.primary_key]
    extra = tuple(f.default() if callable(f.default) else f.default for f in rest)
    columns = [f.column_name for f in fields + rest]
    table = model._meta.table_name
    cursor = database.cursor()
    if is_postgres():
        extra_text = "".join("\t" + _copy_text(v) for v in extra)
        buffer = io.StringIO()
        count = 0
        for row in rows:
            buffer.write("\t".join(map(_copy_text, row)) + extra_text + "\n")
            count += 1
        buffer.seek(0)
        cursor.copy_expert(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN', buffer)
        return count

    def stored(value):  # as peewee stores them on SQLite: datetimes as text, booleans as 0/1
        return str(value) if hasattr(value, "isoformat") else int(value) if isinstance(value, bool) else value

    extra = tuple(stored(v) for v in extra)
    rows = [tuple(stored(v) for v in row) + extra for row in rows]
    cursor.executemany(f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})', rows)
    return len(rows)
