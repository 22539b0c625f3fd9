"""Shared fixtures: `db` runs each test on SQLite and, when reachable, on PostgreSQL.

PostgreSQL is taken from HOTLINE_TEST_PG (CI sets postgresql://postgres@127.0.0.1:5432/test); when it is
unset, 127.0.0.1:5432/test is tried; when unreachable, the PostgreSQL variant is skipped.
"""
from __future__ import annotations

import atexit
import os
import shutil

import pytest

# Real argon2id, at minimal cost: the suite creates thousands of users (caseflow.accounts explains).
os.environ.setdefault("HOTLINE_ARGON2_PROFILE", "cheapest")

from core import db as core_db
from hotline.schema import all_models, create_schema

pytest_plugins = ["tests.fakeswitch.fixtures"]

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
TEST_SECRET_KEY = "test-secret-key-" + "x" * 32  # the `app` fixture's, and the key tickets' PINs are hashed under


def _postgres_url() -> str | None:
    """The PostgreSQL URL for this pytest process, or None when PostgreSQL is not reachable.

    Each pytest process works in a schema of its own (hotline_test_<pid>), so parallel runs on one
    server (developers, CI, helpers) never drop each other's tables. Schemas of dead processes are removed.
    """
    url = os.environ.get("HOTLINE_TEST_PG", DEFAULT_PG)
    if not url:
        return None
    try:
        import psycopg2

        conn = psycopg2.connect(url, connect_timeout=2)
    except Exception:  # noqa: BLE001 - any failure means "not reachable here"
        return None
    schema = f"hotline_test_{os.getpid()}"
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'hotline_test_%%'")
        for (name,) in cur.fetchall():
            pid = int(name.rsplit("_", 1)[1])
            if pid != os.getpid() and not os.path.exists(f"/proc/{pid}"):
                cur.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        cur.execute(f'CREATE SCHEMA "{schema}"')
    conn.close()
    atexit.register(_drop_pg_schema, url, schema)
    return core_db.in_schema(url, schema)


def _drop_pg_schema(url: str, schema: str, recreate: bool = False, strict: bool = False) -> None:
    """Drop the schema (and make it again, empty, with ``recreate``). Best effort at exit; with ``strict`` a
    failure raises, so a test never runs on what an earlier one left."""
    try:
        import psycopg2

        conn = psycopg2.connect(url, connect_timeout=2)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SET lock_timeout = '10s'")  # a connection a test left in a transaction: give up
                cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                if recreate:
                    cur.execute(f'CREATE SCHEMA "{schema}"')
        finally:
            conn.close()
    except Exception as exc:  # noqa: BLE001 - best effort at exit; the next run removes it
        if strict:
            raise RuntimeError(f"cannot empty the test schema {schema}: {exc}") from exc


_PG_URL = _postgres_url()
DB_BACKENDS = ["sqlite"] + (["postgres"] if _PG_URL else [])


def pytest_report_header(config):
    return f"databases: {', '.join(DB_BACKENDS)}" + ("" if _PG_URL else " (PostgreSQL not reachable)")


@pytest.fixture(params=DB_BACKENDS)
def db_url(request, tmp_path):
    """A database URL: a fresh SQLite file, or the PostgreSQL test database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    if "db" not in request.fixturenames:
        # A test using PostgreSQL without the `db` fixture (a whole product, say) starts from an empty schema,
        # whatever the test before left: emptying it behind each such test was not enough, as a `db` test whose
        # catalogue changed (the first ticket adds the full-text column and index) keeps its rows for the
        # next `db` test to rebuild, and a product test after it found them (CI: a voicemail entry of
        # test_missed_voicemail counted as a missed call, an open call record closed by the product's sweep).
        _pg_schema["baseline"] = None  # a `db` test after this one rebuilds the schema
        _drop_pg_schema(os.environ.get("HOTLINE_TEST_PG", DEFAULT_PG), f"hotline_test_{os.getpid()}",
                        recreate=True, strict=True)
    yield _PG_URL


# Building ~70 tables costs about a second on PostgreSQL and a quarter on SQLite, and the suite has
# thousands of database tests; so each process builds the schema once: SQLite tests start from a copy of
# a template file, PostgreSQL tests share one schema emptied after each test. A test that changes the
# schema itself (the migration tests) is noticed by the catalogue fingerprint and the schema rebuilt.
_sqlite_template: dict[str, str] = {}
_pg_schema: dict[str, str | None] = {"baseline": None}

_PG_FINGERPRINT = (
    "SELECT md5(string_agg(c.relname || '.' || a.attname || ':' || a.atttypid || ':' || a.atttypmod, ','"
    " ORDER BY c.relname, a.attnum)) || ':' || (SELECT count(*) FROM pg_class"
    " WHERE relnamespace = current_schema()::regnamespace)"
    " FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
    " WHERE c.relnamespace = current_schema()::regnamespace AND a.attnum > 0 AND NOT a.attisdropped")


def _sqlite_template_file(tmp_path_factory, models) -> str:
    if "path" not in _sqlite_template:
        path = tmp_path_factory.mktemp("schema") / "template.sqlite3"
        template = core_db.bind_database(f"sqlite:///{path}")
        template.connect()
        create_schema(models)
        template.close()
        _sqlite_template["path"] = str(path)
    return _sqlite_template["path"]


def _pg_fingerprint(database) -> str:
    return database.execute_sql(_PG_FINGERPRINT).fetchone()[0]


def _pg_rebuild_schema(database, models) -> None:
    """The process's schema dropped whole (tables a migration test left under other names too) and built."""
    schema = f"hotline_test_{os.getpid()}"  # as _postgres_url named it
    database.execute_sql(f'DROP SCHEMA "{schema}" CASCADE; CREATE SCHEMA "{schema}"')
    create_schema(models)


# Dropping a column leaves its attribute number used: at PostgreSQL's 1,600 per table, ADD COLUMN fails. A test
# process rebuilds the schema after this many drops of the full-text column instead.
_PG_SEARCH_DROPS_BEFORE_REBUILD = 300


def _pg_drop_search_structures(database) -> bool:
    """The full-text structures the test's first ticket or knowledge item added (caseflow.search.ensure_index;
    a product's start: ensure_all) dropped again, in a few milliseconds: the schema is then as built, which
    the fingerprint says (True), and the next test starts from it without a rebuild (a second or more for
    the ~70 tables; on a loaded machine 4-9 s, in the setup of most PostgreSQL tests that file a ticket).
    False when something else changed too, or after _PG_SEARCH_DROPS_BEFORE_REBUILD drops: rebuilt then."""
    from caseflow import search

    drops = _pg_schema.get("search_drops") or 0
    if drops >= _PG_SEARCH_DROPS_BEFORE_REBUILD:
        _pg_schema["search_drops"] = 0
        return False
    _pg_schema["search_drops"] = drops + 1
    statements = "".join(f"DROP INDEX IF EXISTS {table}_search_tsv; ALTER TABLE {table} DROP COLUMN IF EXISTS "
                         f"search_tsv;" for table in search.INDEXED)
    try:
        database.execute_sql("SET lock_timeout = '10s';" + statements + "SET lock_timeout = DEFAULT")
    except Exception:  # noqa: BLE001 - whatever stopped it, the schema is rebuilt
        database.rollback()
        return False
    search.forget(database)
    return _pg_fingerprint(database) == _pg_schema["baseline"]


def _pg_empty_tables(database, models) -> None:
    """Delete every row (foreign keys not checked meanwhile) and restart every sequence: far cheaper than
    TRUNCATE of every table, which makes new files for each table and index. The migration bookkeeping
    stays, as it was when the schema was built."""
    statements = "".join(f'DELETE FROM "{m._meta.table_name}";' for m in models)
    database.execute_sql(
        "SET session_replication_role = replica;" + statements + "SET session_replication_role = DEFAULT;"
        "SELECT setval(c.oid, 1, false) FROM pg_class c"
        " WHERE c.relkind = 'S' AND c.relnamespace = current_schema()::regnamespace")


@pytest.fixture
def db(db_url, tmp_path_factory):
    """Every table, empty, for the test: SQLite from a per-process template file; PostgreSQL in the
    process's schema, built on first use (or after a test changed it) and emptied after each test."""
    models = all_models()
    if db_url.startswith("sqlite:///"):
        path = db_url[len("sqlite:///"):]
        fresh = not os.path.exists(path)
        if fresh:
            shutil.copyfile(_sqlite_template_file(tmp_path_factory, models), path)
        database = core_db.bind_database(db_url)
        database.connect(reuse_if_open=True)
        if not fresh:
            create_schema(models)
        yield database
        database.close()
        # The file goes away with tmp_path.
        return
    database = core_db.bind_database(db_url)
    database.connect(reuse_if_open=True)
    if _pg_schema["baseline"] is None:
        _pg_rebuild_schema(database, models)
        _pg_schema["baseline"] = _pg_fingerprint(database)
    yield database
    if not database.is_closed():
        database.close()  # whatever the test left open (an aborted transaction included) goes
    database.connect()
    if _pg_fingerprint(database) == _pg_schema["baseline"] or _pg_drop_search_structures(database):
        _pg_empty_tables(database, models)
    else:
        _pg_schema["baseline"], _pg_schema["search_drops"] = None, 0  # rebuilt by the next test that needs it
    database.close()


def _test_pin_keys():
    from caseflow import pins

    pins.install(pins.PinKeys(TEST_SECRET_KEY.encode()))
    pins.disconnect_receipt()


@pytest.fixture(autouse=True)
def receipt_texts_forgotten():
    """Each test starts with no receipt template text seen, as a new process (channels.receipts keeps the last
    one it saw per process: a test's edited template would make the next test's first receipt a rewrite)."""
    from channels import receipts

    receipts.forget_texts()


@pytest.fixture(scope="session", autouse=True)
def pin_keys_for_session():
    """The tickets' PIN key (caseflow.pins) before any fixture files a ticket, as a product's start installs it."""
    _test_pin_keys()


@pytest.fixture(autouse=True)
def pin_keys(pin_keys_for_session):
    """Each test starts with the test key and no receipt writers (a product or worker a test built connects its
    own, and may install its own key): nothing of one test's wiring reaches the next."""
    _test_pin_keys()
    yield
    _test_pin_keys()


@pytest.fixture
def alarms():
    """The one alarm path connected as hotline.product connects it (ops.alarms; no SMS hook): what the
    floors below raise through core.alarms is stored as SystemAlarm rows. Yields the service."""
    from core import alarms as core_alarms
    from ops.alarms import AlarmService

    service = AlarmService()
    core_alarms.connect(service.raise_alarm)
    yield service
    core_alarms.disconnect(service.raise_alarm)


class HotlineClient:
    """Mixin for Flask's test client: log in and send the session's CSRF token like a browser would."""

    def csrf_token(self) -> str:
        """The session's CSRF token (fetched from the login page the first time)."""
        with self.session_transaction() as session:
            token = session.get("csrf")
        if not token:
            self.get("/login")
            with self.session_transaction() as session:
                token = session["csrf"]
        return token

    def post_form(self, url: str, data: dict | None = None, **kwargs):
        """POST a form with the CSRF token added."""
        return self.post(url, data={**(data or {}), "csrf_token": self.csrf_token()}, **kwargs)

    def login(self, operator_no: str, password: str, **kwargs):
        """Log in through the real login form; returns the response."""
        return self.post_form("/login", {"operator_no": operator_no, "password": password}, **kwargs)

    def logout(self):
        return self.post_form("/logout")


def app_for_tests(application):
    """``application`` (a web app from create_app) set up for tests: errors propagate (testing) and its
    test_client() is a HotlineClient."""
    from flask.testing import FlaskClient

    application.testing = True
    application.test_client_class = type("HotlineTestClient", (HotlineClient, FlaskClient), {})
    return application


@pytest.fixture
def app(db, db_url, tmp_path):
    """The web app on the `db` database, with a test configuration (no demo data, files under tmp_path)."""
    from core.config import load_config
    from webui.app import create_app

    config = load_config({"database_url": db_url, "var_dir": str(tmp_path / "var"), "mode": "test",
                          "secret_key": TEST_SECRET_KEY, "load_demo": False})
    yield app_for_tests(create_app(config))


@pytest.fixture
def client(app):
    """A test client with .login(operator_no, password), .post_form(url, data) and .csrf_token()."""
    return app.test_client()


@pytest.fixture(scope="session")
def rendered_sounds(tmp_path_factory):
    """Every prompt rendered for real (espeak-ng + sox) once per test session: the fake switch only plays
    files that exist."""
    import shutil
    from pathlib import Path

    from ivr.prompts import LANGUAGES, prompts_file, render_all

    sources = Path(__file__).resolve().parents[1] / "sounds"
    root = tmp_path_factory.mktemp("sounds")
    for lang in LANGUAGES:
        shutil.copy(prompts_file(sources, lang), root)
    render_all(root, 8000)
    return root


@pytest.fixture
def make_product(db_url, tmp_path, rendered_sounds):
    """Factory for the whole product as run.py builds it (hotline.product.Product), on a fake FreeSWITCH,
    every server on 127.0.0.1 port 0, with the demo data; stopped after the test. ``product.fs`` is the
    fake switch; the ESL connection is up when the factory returns."""
    from core.config import load_config
    from hotline.product import Product
    from tests.fakeswitch import FakeSwitch

    started = []

    def make(clock=None, secret_key: str = "k" * 40, demo_queues: bool = True, **overrides):
        fs = FakeSwitch(password="s3cret-test", record_dir=tmp_path / "fs")
        fs.start()
        config = load_config({
            "database_url": db_url, "var_dir": str(tmp_path / "var"), "sounds_dir": str(rendered_sounds),
            "esl": f"127.0.0.1:{fs.esl_port}:s3cret-test", "outbound": "127.0.0.1:0", "http": "127.0.0.1:0",
            "mode": "test", "secret_key": secret_key, "load_demo": True, **overrides,
        })
        product = Product(config, clock=clock, demo_queues=demo_queues).build()
        product.start()
        product.fs = fs
        started.append(product)
        fs.wait_for(lambda: product.parts["pool"].connected, 10.0, "the ESL connection")
        return product

    yield make
    for product in started:
        product.stop(drain_timeout=5)
        product.fs.stop()
    if core_db.database.obj is not None and not core_db.database.is_closed():
        core_db.database.close()
