"""What the two PostgreSQL fault tests (test_postgres_restart.py: connections terminated; _window.py: cut and
refused through a proxy) share: the app as production runs it beside the fake FreeSWITCH, the callers'
scripts, and the account of every caller of the fault (a ticket, a place on the call-back list, or lost)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import gevent

from tests.fakeswitch import FakeSwitch, Press, Speak, WaitFor
from tests.integration.product.app_process import (AppProcess, PgSchema, app_env, free_port, ticket_numbers,
                                                   wait_until_serving)
from tests.ports import retry_in_use

COMPLAINT = [Press("2"), Press("2"), Speak(3), Press("#"), Press("1"), WaitFor("playback", "ticket_thanks")]
# Speaking 40 simulated seconds takes 0.4 s of wall time: these callers file their complaint just after the
# fault began. (Not longer: the fake switch writes the speech in this process, and minutes of it would hold up
# its replies for seconds.)
LONG_COMPLAINT = [Press("2"), Press("2"), Speak(40), Press("#"), Press("1"), WaitFor("playback", "ticket_thanks")]


def start_app(tmp_path, rendered_sounds, database_url: str, *, load_demo: bool, start_timeout: float):
    """(fake switch, app process, outbound port, http port): run.py on ``database_url`` as node "a", alone,
    serving (wait_until_serving); started again on other free ports when one was taken before it bound it."""
    fs = FakeSwitch(password="ClueCon", record_dir=tmp_path / "fs")
    fs.start()

    def start():
        port, http = free_port(), free_port()
        env = app_env(database_url, tmp_path / "var", rendered_sounds,
                      esl=f"127.0.0.1:{fs.esl_port}:ClueCon", outbound_port=port, http_port=http, node="a",
                      HOTLINE_LOAD_DEMO="true" if load_demo else "false", HOTLINE_PAIR="off",
                      # The overload door off: the fake switch shares this process with the test and, writing
                      # the callers' speech, answers late (seconds, under this load), which the app rightly
                      # reads as a slow switch. These tests are about the database (test_overload about the door).
                      HOTLINE_OVERLOAD_REPLY_SECONDS="0", HOTLINE_OVERLOAD_LAG_SECONDS="0")
        app = AppProcess("app", ["run.py"], env, tmp_path)
        try:
            wait_until_serving(app, fs, start_timeout)  # its log's "Address already in use" is in the error
        except Exception:
            app.stop()
            raise
        return app, port, http

    try:
        app, port, http = retry_in_use(start)
    except Exception:
        fs.stop()
        raise
    return fs, app, port, http


@dataclass
class Account:
    """Where the callers of a fault ended up."""

    filed: dict[str, str]     # caller -> acceptance number
    listed: set[str]          # callers on the call-back list
    switch_lost: set[str]     # never reached the IVR: the fake switch stopped answering, not the database
    lost: list[str]           # none of the above: the app lost them
    open_records: int         # call records not finalised


def account_for(schema: PgSchema, app: AppProcess, calls, seconds: float = 45.0) -> Account:
    """The account of ``calls`` once every caller is filed or listed and every call record finalised, or after
    ``seconds``: a call whose end could not be stored keeps its record in memory, and the ACD's reconciliation
    (every 30 s) closes it as cut off and lists the caller for a call-back."""
    t = f'"{schema.name}"'
    callers = [c.caller for c in calls]

    def look() -> tuple[dict, set, list, int]:
        filed = ticket_numbers(schema, callers)
        listed = {row[0] for row in schema.execute(
            f"SELECT caller FROM {t}.missed_call WHERE caller = ANY(%s)", (callers,)) or []}
        open_records = schema.execute(f"SELECT count(*) FROM {t}.call_record WHERE NOT finalised")[0][0]
        return filed, listed, [c for c in callers if c not in filed and c not in listed], open_records

    deadline = time.monotonic() + seconds
    filed, listed, unlisted, open_records = look()
    while (unlisted or open_records) and time.monotonic() < deadline:
        gevent.sleep(0.5)
        filed, listed, unlisted, open_records = look()
    # A call the fake switch itself stopped answering (it shares the test's loop; on the busy shared machine
    # it can go quiet for 10 s) never reached the IVR: the switch lost it, not the database.
    switch_lost = {c.caller for c in calls if c.caller in unlisted and any(
        c.uuid in line and "no reply to" in line for _at, line in app.lines)}
    return Account(filed, listed, switch_lost, [c for c in unlisted if c not in switch_lost], open_records)
