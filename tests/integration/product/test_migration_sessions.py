"""Migration steps outside a transaction on PostgreSQL (core.migrations, review1 items 1 and 2 of issue 15):

- ``concurrently`` and ``_no_statement_timeout`` set the session's timeouts, run their statements and set the
  timeouts back. On the releasing pool each statement outside a transaction gave its connection back, so with
  another greenlet holding the oldest idle connection in between, the build ran on a connection still under
  the call's statement timeout (cancelled, an INVALID index left) and the one with no timeout went back to the
  pool. Here in a monkey-patched child (as run.py) whose pool has several idle connections.
- Two processes running create_schema at once (the admin CLI, a benchmark, the app): the second took the
  first's index, still being built, for an INVALID leftover, dropped it and built it again. Now the second
  waits for create_schema's migration lock and finds the step done.

Each test in a PostgreSQL schema of its own (dropped after it)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from core.db import in_schema
from tests.conftest import _PG_URL
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(not _PG_URL, reason="PostgreSQL's sessions, pool and advisory locks")

# An index expression that takes ``delay`` s a row: a build longer than the statement timeout the pool gives.
_SLOW_FUNCTION = ("CREATE FUNCTION slow_id(integer) RETURNS integer IMMUTABLE LANGUAGE plpgsql AS "
                  "$$ BEGIN PERFORM pg_sleep({delay}); RETURN $1; END $$")


@pytest.fixture
def schema_url():
    """A URL whose sessions work in a schema of their own, with a table of 30 rows and slow_id()."""
    base = os.environ.get("HOTLINE_TEST_PG") or _PG_URL.split("?")[0]
    schema = f"migfix_{os.getpid()}"
    conn = psycopg2.connect(base)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE; CREATE SCHEMA "{schema}"')
        cur.execute(f'SET search_path = "{schema}"')
        cur.execute(_SLOW_FUNCTION.format(delay=0.02))
        cur.execute("CREATE TABLE probe (id serial PRIMARY KEY, x integer NOT NULL)")
        cur.execute("INSERT INTO probe (x) SELECT generate_series(1, 30)")
    try:
        yield in_schema(base, schema), conn, schema
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.close()


def _child(script: str, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def _result(process: subprocess.Popen, timeout: float = 120) -> dict:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return {**json.loads(out.strip().splitlines()[-1]), "log": err}


_POOLED_CHILD = r"""
from gevent import monkey; monkey.patch_all()
import json
import sys
import gevent
import gevent.event
from core import db as core_db
from core import migrations
from tests.waiting import wait_until

url = sys.argv[1]
# 250 ms: the build (30 rows x 20 ms) outlasts it; every other statement here ends well within it.
database = core_db.open_database(url + "&max_connections=4", core_db.DbTimeouts(statement=0.25, connect=5))
main = gevent.getcurrent()
out = {}


def all_connections(sql):
    # Every connection of the pool at once (each in a transaction until all have answered): what each says.
    answered, go = [], gevent.event.Event()

    def one():
        with database.atomic():
            answered.append(database.execute_sql(sql).fetchone())
            go.wait(10)

    greenlets = [gevent.spawn(one) for _ in range(4)]
    wait_until(lambda: len(answered) == 4, timeout=10, what="every connection of the pool open")
    go.set()
    gevent.joinall(greenlets, raise_error=True)
    return answered


all_connections("SELECT 1")  # four idle connections in the pool
out["settings_before"] = sorted({tuple(row[1:]) for row in all_connections(
    "SELECT pg_backend_pid(), current_setting('statement_timeout'), current_setting('lock_timeout')")})

# The main greenlet's statements, each with the backend that ran it.
seen = []
plain_execute = database._execute_cursor


def recording_execute(sql, params, **options):
    try:
        return plain_execute(sql, params, **options)
    finally:
        if gevent.getcurrent() is main and database._state.conn is not None:
            seen.append([sql.split()[0], database._state.conn.get_backend_pid()])


database._execute_cursor = recording_execute

# Once the main greenlet's first statement has ended, another greenlet takes a connection and holds it (a
# call's transaction) until the block is over: the oldest idle one when the main greenlet gave its own back.
other_holds, block_over, others = gevent.event.Event(), gevent.event.Event(), []
plain_release = database._release_idle


def other():
    with database.atomic():
        database.execute_sql("SELECT 1")
        other_holds.set()
        block_over.wait(30)


def release_then_other_takes_one():
    plain_release()
    if gevent.getcurrent() is main and not others:
        others.append(gevent.spawn(other))
        other_holds.wait(5)


database._release_idle = release_then_other_takes_one


def block(run):
    seen.clear(), others.clear(), other_holds.clear(), block_over.clear()
    try:
        run()
        error = None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    block_over.set()
    gevent.joinall(others, raise_error=True)
    return {"backends": sorted({pid for _sql, pid in seen}), "statements": len(seen), "error": error}


out["concurrently"] = block(lambda: migrations.concurrently(
    database, "CREATE INDEX CONCURRENTLY probe_slow ON probe (slow_id(x))"))


def step():
    with migrations._no_statement_timeout(database):
        out["in_step"] = database.execute_sql("SELECT current_setting('statement_timeout')").fetchone()[0]


out["no_statement_timeout"] = block(step)
database._execute_cursor, database._release_idle = plain_execute, plain_release
out["valid"] = database.execute_sql(
    "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'probe_slow'"
).fetchall()
out["settings_after"] = sorted({tuple(row[1:]) for row in all_connections(
    "SELECT pg_backend_pid(), current_setting('statement_timeout'), current_setting('lock_timeout')")})
print(json.dumps(out))
"""


def test_a_concurrent_build_sets_runs_and_restores_on_one_pooled_connection(schema_url):
    """Should run the SET, the CREATE INDEX CONCURRENTLY and the restore on one connection while another
    greenlet holds the pool's oldest idle one (the build outlasts the pool's 250 ms statement timeout, so it
    ends only without it), leave the index valid, and every pooled connection with its timeouts as before;
    the same for a step's _no_statement_timeout block."""
    url, _conn, _schema = schema_url
    result = _result(_child(_POOLED_CHILD, url))
    for name in ("concurrently", "no_statement_timeout"):
        assert result[name]["error"] is None, result
        assert result[name]["statements"] >= 3 and len(result[name]["backends"]) == 1, result
    assert result["in_step"] == "0"
    assert result["valid"] == [[True]]
    assert result["settings_before"] == [["250ms", result["settings_before"][0][1]]]
    assert result["settings_after"] == result["settings_before"]


_MIGRATING_CHILD = r"""
import sys
if sys.argv[2] == "pooled":
    from gevent import monkey; monkey.patch_all()
import json
import logging
import peewee
from core import db as core_db
from core import migrations

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
core_db.bind_database(sys.argv[1])


class Probe(core_db.BaseModel):
    x = peewee.IntegerField()

    class Meta:
        table_name = "probe"


Probe.add_index(Probe.index(peewee.SQL("slow_id(x)"), name="probe_slow"))
step = migrations.Step("0001_probe_slow", lambda migrator, db: migrations.build_indexes_concurrently(
    db, Probe, ["probe_slow"]) and [], transaction=False, builds_indexes=("probe_slow",))
with core_db.database.connection_context():
    ran = migrations.create_schema([Probe], [step] if sys.argv[3] == "step" else [])
print(json.dumps({"ran": ran}))
"""


def test_a_second_process_waits_for_the_first_ones_migration_and_finds_it_done(schema_url):
    """Should let a second create_schema (the app's pooled process) wait while an unpooled one (the admin CLI)
    builds the step's index, then find the step recorded: it neither drops the index being built nor builds
    it again, and the index is valid."""
    url, conn, _schema = schema_url
    _result(_child(_MIGRATING_CHILD, url, "plain", "none"))  # the tables as an older version left them
    with conn.cursor() as cur:
        cur.execute("DROP INDEX probe_slow")
        cur.execute(_SLOW_FUNCTION.format(delay=0.1).replace("CREATE", "CREATE OR REPLACE"))  # a 3 s build
    first = _child(_MIGRATING_CHILD, url, "plain", "step")

    def building() -> bool:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%probe%'"
                        " AND state = 'active'")
            return cur.fetchone()[0] == 1

    wait_until(building, timeout=60, what="the first process building the index")
    second = _child(_MIGRATING_CHILD, url, "pooled", "step")
    first_result, second_result = _result(first), _result(second)
    assert first_result["ran"] == ["0001_probe_slow"], first_result["log"]
    assert second_result["ran"] == [], second_result["log"]
    assert "waiting for another process's schema change" in second_result["log"]
    assert "dropping index" not in second_result["log"] and "building index" not in second_result["log"]
    with conn.cursor() as cur:
        cur.execute("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE c.relname = 'probe_slow'")
        assert cur.fetchall() == [(True,)]


def test_create_admin_leaves_a_pending_schema_to_the_active_app(schema_url, tmp_path, monkeypatch):
    """Should refuse (status 2, no table created) to change a schema an active app holds the active lock of
    (only the active app migrates: hotline.product stand_by), and create the tables and the administrator
    once no app is active."""
    from core.db import database
    from core.leader import LOCK_CLASS
    from hotline.accounts import main as create_admin_command

    url, conn, schema = schema_url
    for name, value in {"HOTLINE_CONFIG": str(tmp_path / "none.toml"), "HOTLINE_DATABASE_URL": url,
                        "HOTLINE_VAR_DIR": str(tmp_path / "var"), "HOTLINE_ADMIN_PASSWORD": "correct horse battery",
                        "HOTLINE_ARGON2_PROFILE": "cheapest"}.items():
        monkeypatch.setenv(name, value)
    active = psycopg2.connect(url)  # an app of the version before, active on this schema
    active.autocommit = True
    bound = database.obj
    try:
        with active.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s, hashtext(current_schema()) & 2147483647)", (LOCK_CLASS,))
        assert create_admin_command(["create-admin", "A100", "张管理"]) == 2
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,))
            assert cur.fetchone()[0] == 1  # the fixture's probe only
        active.close()
        assert create_admin_command(["create-admin", "A100", "张管理"]) == 0
        with conn.cursor() as cur:
            cur.execute(f'SELECT operator_no FROM "{schema}"."user"')
            assert cur.fetchall() == [("A100",)]
    finally:
        active.close()
        database.obj.close()
        database.initialize(bound)
