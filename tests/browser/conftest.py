"""Shared fixtures for browser tests: Debian's Chromium driven by Playwright against the real app.

``live_server`` serves a fresh app (its own SQLite database) with gevent's WSGIServer on 127.0.0.1:0 in a
background thread; ``page`` is a fresh browser context and page; ``login(page, server, operator_no,
password)`` logs in through the form. ``demo_accounts`` loads caseflow's demo data set into the server's
database and returns {role: (operator_no, password)}.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
from dataclasses import dataclass

import pytest

from core import db as core_db
from core.config import Config, load_config
from hotline.schema import all_models, create_schema

log = logging.getLogger(__name__)

CHROMIUM = os.environ.get("HOTLINE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--headless"]
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
UI_TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@dataclass
class LiveServer:
    """A running app: ``url`` is its base address (http://127.0.0.1:PORT)."""

    url: str
    app: object
    config: Config

    def __call__(self, path: str = "/") -> str:
        return self.url + path


class _ServerThread(threading.Thread):
    """Runs a gevent WSGIServer in its own thread (with its own hub) until stopped."""

    def __init__(self, app):
        super().__init__(name="live-server", daemon=True)
        self.app = app
        self.ready = threading.Event()
        self.port = None
        self.error = None
        self._loop = None
        self._server = None

    def run(self):
        import gevent
        from gevent.pywsgi import WSGIServer

        try:
            self._server = WSGIServer(("127.0.0.1", 0), self.app, log=None, error_log=log)
            self._server.start()
            self.port = self._server.server_port
            self._loop = gevent.get_hub().loop
        except Exception as error:  # noqa: BLE001 - reported to the test thread below
            self.error = error
            self.ready.set()
            return
        self.ready.set()
        self._server.serve_forever()

    def stop(self):
        if self._loop is not None and self._server is not None:
            # gevent objects belong to their hub's thread: ask that loop to stop the server.
            self._loop.run_callback_threadsafe(self._server.stop)
        self.join(STOP_TIMEOUT)


@pytest.fixture
def live_server(tmp_path):
    """The web app on a fresh SQLite database, served on 127.0.0.1 at a free port."""
    from webui.app import create_app

    url = f"sqlite:///{tmp_path / 'browser.sqlite3'}"
    database = core_db.bind_database(url)
    create_schema(all_models())
    config = load_config({"database_url": url, "var_dir": str(tmp_path / "var"), "mode": "test",
                          "secret_key": "browser-test-secret-" + "z" * 32, "load_demo": False})
    app = create_app(config)
    thread = _ServerThread(app)
    thread.start()
    if not thread.ready.wait(START_TIMEOUT):
        pytest.fail("live server did not start in time")
    if thread.error is not None:
        raise thread.error
    yield LiveServer(url=f"http://127.0.0.1:{thread.port}", app=app, config=config)
    thread.stop()
    database.close()


@pytest.fixture
def demo_accounts(live_server):
    """Load caseflow's demo data into the live server's database; {role: (operator_no, password)}."""
    from webui.app import load_demo_if_empty

    accounts = load_demo_if_empty(live_server.config.replace(load_demo=True))
    core_db.database.close()
    roles: dict[str, tuple[str, str]] = {}
    for operator_no, _name, role_codes, password in accounts:
        for role in role_codes.split(","):
            roles.setdefault(role, (operator_no, password))
    return roles


@pytest.fixture(scope="session")
def playwright_session():
    """One Playwright driver for the whole run: its sync API refuses a second one while the first is open, so
    every browser of the suite (the pages' Chromium, the softphone's with a fake microphone) comes from it."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_session):
    """One headless Debian Chromium for the whole run."""
    chromium = playwright_session.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser):
    """A fresh context (no cookies) and page; Chinese locale like the hotline's users."""
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def login(page, server: LiveServer | str, operator_no: str, password: str) -> None:
    """Log in through the form (``server``: a LiveServer or a base URL) and wait for the page that follows."""
    page.goto(server("/login") if callable(server) else server.rstrip("/") + "/login")
    page.fill("#operator_no", operator_no)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("button[type=submit].primary")
