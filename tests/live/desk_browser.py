"""Headless Chromium on the agent desk against the live product (tests/live/test_softphone*_live.py): the browser
in a thread of its own (BrowserThread), the switch's secure WebSocket, demo agent 1001 signing in, and the
``browser_desk`` fixture's product-plus-browser (tests/live/conftest.py)."""
from __future__ import annotations

import os
import queue
import shutil
import threading
from dataclasses import dataclass

import pytest

from tests.live.product import in_thread, start_product, stop_product

CHROMIUM = os.environ.get("HOTLINE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--headless", "--autoplay-policy=no-user-gesture-required",
                 # a microphone that beeps, allowed without asking; the switch's development certificate
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 "--ignore-certificate-errors"]
UI_TIMEOUT_MS = 20_000


class BrowserThread(threading.Thread):
    """Chromium (Playwright's sync API) in a thread of its own: the product's gevent hub keeps this one, and a
    step handed over with ``do`` waits off the hub, so the product serves the page meanwhile."""

    def __init__(self):
        super().__init__(name="browser", daemon=True)
        self.inbox: queue.Queue = queue.Queue()

    def run(self):
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
            context.set_default_timeout(UI_TIMEOUT_MS)
            page = context.new_page()
            while True:
                item = self.inbox.get()
                if item is None:
                    break
                step, out = item
                try:
                    out.put((True, step(page)))
                except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
                    out.put((False, error))
            browser.close()

    def do(self, step, timeout: float = 90.0):
        """step(page) in the browser's thread; its result, or its exception raised here."""
        out: queue.Queue = queue.Queue()
        self.inbox.put((step, out))
        ok, value = in_thread(out.get, True, timeout)
        if not ok:
            raise value
        return value

    def close(self):
        self.inbox.put(None)
        in_thread(self.join, 30)


def wss_address(esl) -> str:
    """host:port of the internal profile's secure WebSocket, as the switch reports it."""
    status = esl.api("sofia status profile internal")
    wss = [line.split()[-1] for line in status.splitlines() if line.startswith("WSS-BIND-URL")]
    assert wss, ("the internal profile has no secure WebSocket: restart FreeSWITCH with this freeswitch-conf "
                 "after scripts/dev-cert.sh var/certs (docs/freeswitch.md, Browser phone)")
    return wss[0].split("@", 1)[1].split(";", 1)[0]          # sips:mod_sofia@127.0.0.1:7443;transport=wss


def sign_in_to_desk(page, base: str) -> None:
    """Demo agent 1001 signs in and opens the desk."""
    page.goto(base + "/login")
    page.fill("#operator_no", "1001")
    page.fill("#password", "demo1234")
    with page.expect_navigation():
        page.click("button[type=submit].primary")
    page.goto(base + "/desk/")


@dataclass
class DeskInBrowser:
    """The product with the browser phone configured, and Chromium ready to open demo agent 1001's desk."""

    product: object
    browser: BrowserThread
    acd: object
    agent_id: int     # demo agent 1001's seat 1000
    base: str         # the product's web address
    password: str     # the seats' SIP password (the switch's agent_password)


class DeskStarter:
    """``start(wss)``: the product with its browser phone on ``wss`` (host:port; the switch's own by default) and a
    browser; ``stop()`` closes what was started. Skips without Chromium."""

    def __init__(self, esl_endpoint, esl, db_url, tmp_path, sounds):
        if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
            pytest.skip(f"Chromium not found at {CHROMIUM}")
        self.esl_endpoint, self.esl, self.db_url, self.tmp_path, self.sounds = esl_endpoint, esl, db_url, tmp_path, sounds
        self.started: list = []

    def __call__(self, wss: str | None = None) -> DeskInBrowser:
        password = self.esl.api("global_getvar agent_password").strip()
        product = start_product(self.esl_endpoint, self.db_url, self.tmp_path, self.sounds,
                                settings={"softphone_wss": f"wss://{wss or wss_address(self.esl)}",
                                          "agent_sip_password": password})
        self.started.append(product)
        browser = BrowserThread()
        browser.start()
        self.started.append(browser)
        assert all(conn.wait_connected(10) for conn in product.parts["pool"].all())
        acd = product.parts["acd"]
        return DeskInBrowser(product, browser, acd, acd.by_extension["1000"],
                             f"http://127.0.0.1:{product.parts['web'].server_port}", password)

    def stop(self) -> None:
        for part in reversed(self.started):
            if isinstance(part, BrowserThread):
                part.close()
            else:
                stop_product(part)
