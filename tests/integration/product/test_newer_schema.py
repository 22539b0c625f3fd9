"""An older release on a database a newer one upgraded (docs/deploy.md, "Upgrade"): refused, saying why, before
it changes anything (its create_tables would build again the indexes a newer step replaced)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.migrations import SchemaMigration
from hotline.schema import NewerSchema, create_schema, pending

FUTURE = "9999_from_a_newer_release"
ROOT = Path(__file__).resolve().parents[3]


def test_create_schema_and_pending_refuse_a_newer_database(db):
    """Should raise NewerSchema naming the unknown step from create_schema (the app's start, the admin CLI)
    and from pending (a standby's and a web worker's wait), and build nothing meanwhile."""
    SchemaMigration.create(name=FUTURE)
    db.execute_sql('DROP INDEX "ticket_day_count_dimension_day_value"')
    try:
        with pytest.raises(NewerSchema, match=FUTURE):
            create_schema()
        with pytest.raises(NewerSchema, match=FUTURE):
            pending()
        assert "ticket_day_count_dimension_day_value" not in {i.name for i in db.get_indexes("ticket_day_count")}
    finally:
        SchemaMigration.delete().where(SchemaMigration.name == FUTURE).execute()
        create_schema()
    assert "ticket_day_count_dimension_day_value" in {i.name for i in db.get_indexes("ticket_day_count")}


SETUP = """
import sys
from core import db as core_db
from core.migrations import SchemaMigration
from hotline.schema import create_schema
core_db.bind_database(sys.argv[1])
with core_db.database.connection_context():
    create_schema()
    SchemaMigration.create(name=sys.argv[2])
"""


def test_run_py_exits_with_the_reason(tmp_path):
    """Should end run.py at its start with status 2 and one line saying a newer release upgraded the database
    (no traceback), on an SQLite file a newer release's step is recorded in."""
    url = f"sqlite:///{tmp_path / 'hotline.sqlite3'}"
    env = {**os.environ, "HOTLINE_DATABASE_URL": url, "HOTLINE_VAR_DIR": str(tmp_path / "var"),
           "HOTLINE_HTTP": "127.0.0.1:0", "HOTLINE_ESL": "127.0.0.1:1:ClueCon", "HOTLINE_MODE": "test",
           "HOTLINE_CONFIG": str(tmp_path / "none.toml"), "PYTHONUNBUFFERED": "1"}
    env.pop("HOTLINE_TEST_PG", None)
    subprocess.run([sys.executable, "-c", SETUP, url, FUTURE], cwd=ROOT, env=env, check=True, timeout=120)
    done = subprocess.run([sys.executable, "run.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert f"upgraded by a newer release (migration {FUTURE}" in output and "Traceback" not in output, output
