"""PostgreSQL going away under load (issue 16's faults list): the app as production runs it (run.py,
monkey-patched, a connection per greenlet) on a schema of its own, callers on the fake FreeSWITCH in this
process. Every connection the app holds is terminated by the server (pg_terminate_backend, as a restart does
to them), again and again for two seconds, while callers leave complaints and new ones keep arriving.
Requests fail cleanly for its duration, nothing hangs, the service resumes by itself, nothing stored before
is lost, and every caller of the outage has a ticket or is listed for a call-back.

Only this app's connections are terminated (they carry an application_name of their own): the PostgreSQL
server is shared with every other test run on the machine."""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import gevent
import pytest

from tests.integration.product.app_process import PgSchema, reachable_pg, ticket_numbers
from tests.integration.product.pg_fault import COMPLAINT, LONG_COMPLAINT, account_for, start_app

PG = reachable_pg()
APP_NAME = f"hotline-pg-fault-{os.getpid()}"


def _log_of(app, uuids, after: int = 25) -> list[str]:
    """The app's log lines naming ``uuids``, each with the lines after it (a traceback)."""
    lines = [line for _at, line in app.lines]
    found = []
    for i, line in enumerate(lines):
        if any(u in line for u in uuids):
            found.extend(lines[i:i + after])
    return found[:120]


def _health(port: int) -> int:
    """GET /healthz of the app from a thread (the fake switch in this process goes on meanwhile)."""
    def fetch():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=20) as response:
                json.loads(response.read())
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return 0
    return gevent.get_hub().threadpool.apply(fetch)


@pytest.mark.skipif(PG is None, reason="PostgreSQL is not reachable (HOTLINE_TEST_PG)")
def test_postgres_connections_killed_under_load(tmp_path, rendered_sounds):
    """Should, while every connection of the app is terminated for 2 s with callers recording and arriving:
    end every call (nothing hangs), answer /healthz throughout (503 while the database is away, never a
    hang), keep every ticket stored before, give every caller of the outage a ticket or a place on the
    call-back list, finalise every call record, and take complaints again afterwards without a restart."""
    schema = PgSchema(PG, "pgfault")
    try:
        fs, app, port, http = start_app(tmp_path, rendered_sounds, f"{schema.url}&application_name={APP_NAME}",
                                        load_demo=False, start_timeout=120)
    except Exception:
        schema.drop()
        raise

    def tickets(callers) -> dict[str, str]:
        return ticket_numbers(schema, callers)

    try:
        address = ("127.0.0.1", port)
        before = [fs.place_call(address, caller=f"1395555{i:04d}", script=COMPLAINT) for i in range(3)]
        for call in before:
            call.wait_ended(timeout=60)
        stored = tickets(c.caller for c in before)
        assert len(stored) == 3, app.tail()
        assert _health(http) == 200

        during = [fs.place_call(address, caller=f"1396666{i:04d}", script=LONG_COMPLAINT) for i in range(6)]
        for call in during:
            call.wait_for_app("record", timeout=30)
        killed, healths = 0, []
        started = time.monotonic()
        while time.monotonic() - started < 2.0:
            killed += schema.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                     "WHERE application_name = %s", (APP_NAME,))[0][0]
            if len(healths) < 4:
                healths.append(_health(http))
            # New callers keep arriving through the outage, each filing a complaint.
            during.append(fs.place_call(address, caller=f"1396666{len(during):04d}", script=COMPLAINT))
            gevent.sleep(0.1)
        outage = time.monotonic() - started
        for call in during:
            call.wait_ended(timeout=120)   # nothing hangs
        assert killed > 0

        after = fs.place_call(address, caller="13977770000", script=COMPLAINT)
        after.wait_ended(timeout=60)
        resumed = tickets(["13977770000"])
        assert resumed and _health(http) == 200, app.tail()
        assert tickets(c.caller for c in before) == stored   # nothing stored before is lost

        account = account_for(schema, app, during)
        lost = account.lost
        lost_uuids = [c.uuid for c in during if c.caller in lost]
        if lost:
            print("\nLOST", lost, "\n" + "\n".join(_log_of(app, lost_uuids)))
        assert lost == [], (lost, {c.caller: (c.hangup_cause, c.played[-2:]) for c in during if c.caller in lost},
                            _log_of(app, lost_uuids))
        assert account.open_records == 0, app.tail()
        print(f"\nFIGURE PostgreSQL connections killed for {outage:.1f} s ({killed} terminated) with "
              f"{len(during)} callers (6 recording as it began, the rest arriving): {len(account.filed)} tickets, "
              f"{len(account.listed - set(account.filed))} more listed for a call-back, "
              f"{len(account.switch_lost)} not answered by the fake switch, /healthz during {healths}; 3 earlier "
              f"tickets intact; the next caller's ticket {resumed}")
    finally:
        app.stop()
        fs.stop()
        schema.drop()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_terminated_connection_is_replaced_at_the_next_statement(db, db_url):
    """Should fail the statement that meets a terminated backend with an error core.db calls a lost
    connection, and run the next one on a new connection (peewee alone kept the dead one for good)."""
    import peewee
    import psycopg2

    from core.db import DatabaseTimeout, connection_lost

    pid = db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    admin = psycopg2.connect(db_url.split("?", 1)[0], connect_timeout=5)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    finally:
        admin.close()
    with pytest.raises((peewee.OperationalError, peewee.InterfaceError)) as raised:
        db.execute_sql("SELECT 1")
    assert connection_lost(raised.value)
    assert db.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid
    assert not connection_lost(DatabaseTimeout("statement timeout"))
    assert not connection_lost(peewee.IntegrityError("duplicate key"))
    assert not connection_lost(peewee.OperationalError("database is locked"))
