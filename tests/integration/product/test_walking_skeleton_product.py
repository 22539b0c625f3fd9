"""The walking skeleton through the whole product as run.py builds it (hotline.product.Product): a call to
12345 on the fake FreeSWITCH becomes a ticket, and an agent who logs in sees it in the web UI."""
from __future__ import annotations

import json
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

import gevent
import pytest

from core.db import database
from tests.fakeswitch import Press, Speak, WaitFor

@pytest.fixture
def product(make_product):
    """The whole product on a fake FreeSWITCH with the demo data."""
    return make_product()


class _Browser:
    """A cookie-keeping HTTP client whose blocking reads run in gevent's thread pool, so the product's
    web server (a greenlet in this same process) keeps serving while the test waits."""

    def __init__(self):
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def get(self, url: str, data: bytes | None = None) -> str:
        def fetch():
            with self.opener.open(url, data=data, timeout=20) as response:
                return response.read().decode()
        return gevent.get_hub().threadpool.apply(fetch)


def agents_ticket_list(product) -> str:
    """The product's /healthz says database and switch are up; then demo agent 1001 logs in through the form
    and this is their ticket list page (the live walking skeleton, tests/live/test_product_live, checks the
    same)."""
    base = f"http://{product.config.http[0]}:{product.parts['web'].server_port}"
    browser = _Browser()
    health = json.loads(browser.get(f"{base}/healthz"))
    assert health["db"] == "ok" and health["switch"] == "connected"
    login_page = browser.get(f"{base}/login")
    token = login_page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    body = urlencode({"operator_no": "1001", "password": "demo1234", "csrf_token": token}).encode()
    browser.get(f"{base}/login", data=body)
    return browser.get(f"{base}/agent/tickets")


def test_call_becomes_ticket_that_agent_sees(product):
    """Should welcome the caller, record a complaint (2, 2, speech, #, 1), read back the acceptance number,
    store a ticket with the caller's number, channel phone and recording, and show it to a logged-in agent."""
    fs = product.fs
    fs.wait_for(lambda: product.parts["pool"].connected, 10.0, "the ESL connection")
    call = fs.place_call(product.parts["outbound"].address, caller="13912345678", destination="12345",
                         script=[Press("2"), Press("2"), Speak(3), Press("#"), Press("1"),
                                 WaitFor("playback", "ticket_thanks")])
    call.wait_ended(timeout=30)
    sounds = product.config.sounds_dir
    assert call.played[0] == f"{sounds}/zh/welcome.wav"
    i = call.played.index(f"{sounds}/zh/acceptance_number.wav")
    digits = [Path(p).stem.removeprefix("digit_") for p in call.played[i + 1:i + 9]]
    number = "".join(digits)
    assert len(number) == 8 and number.isdigit()

    from caseflow.models import Attachment, Ticket

    with database.connection_context():
        ticket = Ticket.get(Ticket.number == number)
        assert (ticket.citizen_phone, ticket.channel) == ("13912345678", "phone")
        assert Attachment.select().where(Attachment.ticket == ticket).count() >= 1

    listing = agents_ticket_list(product)
    assert number in listing
    assert "13912345678" not in listing  # an agent's list shows the number masked
