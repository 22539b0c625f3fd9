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
        conn = psycopg2.connect(pg_url, connect_timeout=3)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            cur.execute(f'CREATE SCHEMA "{schema}"')
        conn.close()
        separator = "&" if "?" in pg_url else "?"
        url = f"{pg_url}{separator}options=-csearch_path%3D{schema}"

        def cleanup():
            drop = psycopg2.connect(pg_url, connect_timeout=3)
            drop.autocommit = True
            with drop.cursor() as cur:
                cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            drop.close()
    database = core_db.bind_database(url)
    database.connect(reuse_if_open=True)
    create_schema(all_models())
    return database, cleanup


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
