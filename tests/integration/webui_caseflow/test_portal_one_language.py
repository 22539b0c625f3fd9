"""The public website speaks one language at a time (issue 11; the rule of issue 13 item 1): every public page
with a case in every state of its life (written in, followed with its timeline, the citizen's addition and
rating, answered, published) and every form's refusal, in Chinese and in English, shows no text of the other
language and no internal code. The case's own data are digits, so any word found is the site's."""
from __future__ import annotations

import re

import pytest

from caseflow import org, services
from caseflow.models import Ticket, User
from tests.integration.webui.test_one_language import findings

from .test_portal import known_captcha, receipt, submit  # noqa: F401 (fixture)

NEUTRAL = {"content": "1357 2468 9753", "name": "", "anonymous": "1", "address": "", "phone": "", "reply_by": "web"}


@pytest.fixture
def case(app, db, clock):
    """A web case through its whole life, with digits for every name and text: (number, code, staff)."""
    centre = org.create_department("C", "100", None, "centre")
    district = org.create_department("E", "200", centre, "district")
    category = org.create_category("NOISE", "300")
    org.create_region("R1", "400")
    staff = {role: User.create(operator_no=no, name=no, password_hash="!", roles=role, department=dept)
             for no, role, dept in (("9001", "centre", centre), ("7001", "dept", district))}
    writer = app.test_client()
    number, code = receipt(submit(writer, category=str(category.id), **NEUTRAL))
    ticket = services.dispatch(Ticket.get(Ticket.number == number), staff["centre"], district, clock=clock)
    ticket = services.transition(ticket, "accept", staff["dept"], clock=clock)
    ticket = services.transition(ticket, "reply", staff["dept"], reply="8642", clock=clock)
    services.transition(ticket, "approve", staff["centre"], clock=clock)
    return number, code, staff


def _check(client, lang: str, method: str, url: str, data=None, expect=(200,)) -> list[str]:
    if method == "POST":
        response = client.post(url, data={**(data or {}), "csrf_token": client.csrf_token()})
    else:
        response = client.get(url)
    assert response.status_code in expect, (url, response.status_code)
    if response.mimetype != "text/html":
        return []
    return [f"{lang} {method} {url}: {problem}" for problem in findings(response.get_data(as_text=True), lang)]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_public_page_and_refusal_is_in_one_language(app, case, clock, lang):
    """Should show each public page and each refusal of its forms only in the browser's language."""
    number, code, staff = case
    client = app.test_client()
    client.get(f"/?lang={lang}")
    found = []
    for url in ("/", "/write", "/mailbox", "/follow", "/cases", "/figures", "/guides", "/notices", "/poll",
                "/chat/", "/cases?month=1999-13", "/cases?type=nonsense", "/no-such-page"):
        found += _check(client, lang, "GET", url, expect=(200, 400, 404))
    # The forms' refusals: a missing text, a wrong picture code, a wrong query code, a malformed number.
    client.get("/captcha.png")
    found += _check(client, lang, "POST", "/write", {**NEUTRAL, "type": "complaint", "content": "",
                                                      "captcha": "AAAAA"}, expect=(400,))
    client.get("/captcha.png")
    found += _check(client, lang, "POST", "/write", {**NEUTRAL, "type": "complaint", "captcha": "BBBBB"},
                    expect=(400,))
    found += _check(client, lang, "POST", "/follow", {"number": number, "code": "WRONG"}, expect=(404,))
    found += _check(client, lang, "POST", "/follow", {"number": "12ab", "code": code}, expect=(400,))
    # The case followed: answered, the citizen adds information (and an empty addition is refused), rates.
    assert client.post("/follow", data={"number": number, "code": code,
                                        "csrf_token": client.csrf_token()}).status_code == 303
    found += _check(client, lang, "GET", f"/follow/{number}")
    found += _check(client, lang, "POST", f"/follow/{number}/add", {"text": ""}, expect=(400,))
    found += _check(client, lang, "POST", f"/follow/{number}/add", {"text": "1122"})
    found += _check(client, lang, "POST", f"/follow/{number}/rate", {"satisfaction": "nonsense"}, expect=(400,))
    found += _check(client, lang, "POST", f"/follow/{number}/rate", {"satisfaction": "satisfied"})
    found += _check(client, lang, "POST", f"/follow/{number}/rate", {"satisfaction": "satisfied"}, expect=(409,))
    page = client.get(f"/follow/{number}").get_data(as_text=True)
    assert len(re.findall(r"<li><time>", page)) >= 5  # accepted, in progress, answered, added, rated
    # Closed and published by the centre.
    ticket = services.transition(Ticket.get(Ticket.number == number), "close", staff["centre"], clock=clock)
    services.transition(ticket, "disclose", staff["centre"], public=True, clock=clock)
    client.application.extensions["page_cache"].clear()  # published here directly, not on the ticket page (which does it)
    for url in ("/", "/cases", f"/cases/{number}", f"/follow/{number}"):
        found += _check(client, lang, "GET", url)
    assert number in client.get("/cases").get_data(as_text=True)
    assert found == [], "\n".join(found)
