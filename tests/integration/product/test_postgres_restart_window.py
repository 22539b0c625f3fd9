"""A PostgreSQL restart as the app sees it (issue 16's faults list), without restarting the shared server: the
app as production runs it (run.py, monkey-patched) reaches PostgreSQL through a proxy (tests/…/pgproxy.py)
that cuts every open connection and refuses new ones for a few seconds, then accepts again. Meanwhile callers
walk the IVR and people use the web UI. Web requests fail cleanly (503 in the user's language, at once),
nothing hangs, every caller of the window has a ticket or is listed for a call-back, and afterwards the app
files tickets and serves pages again by itself, without a restart."""
from __future__ import annotations

import os
import time

import gevent
import pytest

from tests.integration.product.app_process import Browser, PgSchema, reachable_pg, ticket_numbers
from tests.integration.product.pg_fault import COMPLAINT, LONG_COMPLAINT, account_for, start_app
from tests.integration.product.pgproxy import PgProxy

PG = reachable_pg()
WINDOW = 10.0  # seconds the database refuses connections: longer than the IVR's ~7 s of retries
APP_NAME = f"hotline-pg-window-{os.getpid()}"
AWAY_ZH = "数据库暂时无法响应"
AWAY_EN = "The database is not answering"


@pytest.mark.skipif(PG is None, reason="PostgreSQL is not reachable (HOTLINE_TEST_PG)")
def test_postgres_restart_window_under_load(tmp_path, rendered_sounds):
    """Should, while every database connection is cut and new ones refused for 10 s (longer than the IVR
    tries a step again) with callers in the IVR and people on the web: answer every web request at once, 200
    or 503 with the page in the user's language (never a 500, never a hang); end every call with a ticket or
    a place on the call-back list; and afterwards, in the same process, serve the ticket list and file the
    next caller's ticket."""
    proxy = PgProxy().start()
    schema = PgSchema(PG, "pgwindow")
    try:
        fs, app, port, http = start_app(tmp_path, rendered_sounds,
                                        f"{proxy.url(schema.url)}&application_name={APP_NAME}", load_demo=True,
                                        start_timeout=180)
    except Exception:
        proxy.stop()
        schema.drop()
        raise
    base = f"http://127.0.0.1:{http}"
    t = f'"{schema.name}"'

    def tickets(callers) -> dict[str, str]:
        return ticket_numbers(schema, callers)

    try:
        address = ("127.0.0.1", port)
        agent, visitor = Browser(), Browser()
        agent.login(base, "1001", "demo1234")
        assert agent.request(f"{base}/agent/tickets")[0] == 200
        before = [fs.place_call(address, caller=f"1395556{i:04d}", script=COMPLAINT) for i in range(2)]
        for call in before:
            call.wait_ended(timeout=60)
        stored = tickets(c.caller for c in before)
        assert len(stored) == 2, app.tail()

        during = [fs.place_call(address, caller=f"1396667{i:04d}", script=LONG_COMPLAINT) for i in range(4)]
        for call in during:
            call.wait_for_app("record", timeout=30)

        answers: list[tuple[str, int, float, str]] = []   # (who, status, seconds, body)

        def browse(until: float) -> None:
            while time.monotonic() < until:
                for who, browser, path, headers in (
                        ("agent", agent, "/agent/tickets", {}),
                        ("visitor", visitor, "/login", {"Accept-Language": "en"})):
                    status, body, seconds = browser.timed_request(base + path, headers=headers)
                    answers.append((who, status, seconds, body))
                gevent.sleep(0.2)

        cut = proxy.restart_window()
        started = time.monotonic()
        browsing = gevent.spawn(browse, started + WINDOW)
        while time.monotonic() - started < WINDOW:
            # New callers keep arriving through the window, each filing a complaint.
            during.append(fs.place_call(address, caller=f"1396667{len(during):04d}", script=COMPLAINT))
            gevent.sleep(0.5)
        browsing.join()
        proxy.accept()
        reopened = time.monotonic()

        # Back by itself: the ticket list answers 200 again, no restart of the app.
        recovered = None
        while time.monotonic() - reopened < 60:
            status, _body = agent.request(f"{base}/agent/tickets")
            if status == 200:
                recovered = time.monotonic() - reopened
                break
            gevent.sleep(0.2)
        assert recovered is not None, app.tail()
        for call in during:
            call.wait_ended(timeout=120)   # nothing hangs
        after = fs.place_call(address, caller="13977771111", script=COMPLAINT)
        after.wait_ended(timeout=60)
        assert tickets(["13977771111"]), app.tail()
        assert app.proc.poll() is None  # the same process throughout
        assert tickets(c.caller for c in before) == stored

        assert cut > 0 and answers
        statuses = {status for _who, status, _s, _b in answers}
        assert statuses <= {200, 503}, [(w, s, round(d, 2)) for w, s, d, _b in answers]
        for who, status, _seconds, body in answers:
            if status == 503:
                assert (AWAY_EN if who == "visitor" else AWAY_ZH) in body, body[:2000]
        failed = [a for a in answers if a[1] == 503]
        assert failed, "no web request met the database away"

        callers = [c.caller for c in during]
        account = account_for(schema, app, during)
        filed, listed, switch_lost = account.filed, account.listed, account.switch_lost
        assert account.lost == [], (account.lost, app.tail(80))
        assert account.open_records == 0, app.tail()
        twice = schema.execute(f"SELECT citizen_phone, count(*) FROM {t}.ticket WHERE citizen_phone = ANY(%s) "
                               "GROUP BY citizen_phone HAVING count(*) > 1", (callers,))
        assert not twice, twice
        slowest = max(seconds for _w, _s, seconds, _b in answers)
        reasons = dict(schema.execute(f"SELECT reason, count(*) FROM {t}.missed_call WHERE caller = ANY(%s) "
                                      "GROUP BY reason", (callers,)) or [])
        print(f"\nFIGURE PostgreSQL restart window {WINDOW:.0f} s ({cut} connections cut, new ones refused) with "
              f"{len(during)} callers (4 recording as it began, the rest arriving): {len(filed)} tickets, "
              f"{len(listed - set(filed))} more listed for a call-back {reasons}, {len(switch_lost)} not answered by the "
              f"fake switch; web: {len(answers)} requests in the window, {len(failed)} answered 503 "
              f"(slowest answer {slowest:.2f} s), the rest 200; ticket list 200 again {recovered:.2f} s after "
              f"the database accepted again; the next caller's ticket filed, same process")
    finally:
        app.stop()
        fs.stop()
        proxy.stop()
        schema.drop()
