"""The public site's kept pages (webui.page_cache, issue 11's benchmark): the same page for anonymous visitors
for a few seconds, a publication at once, never a signed-in user's page, each language apart; on both
databases."""
from __future__ import annotations

from caseflow.models import Ticket
from tests.integration.webui_caseflow.test_portal import _closed_web_case, known_captcha  # noqa: F401 - fixture


def test_a_page_is_kept_for_anonymous_visitors_with_cache_headers(app, client, world, clock):
    """Should answer a second visitor with the kept page (a change made behind the site's back is not seen
    yet), tell browsers it may be kept briefly (public, max-age, Vary, ETag) and answer 304 to a matching
    If-None-Match."""
    ticket, _ = _closed_web_case(client, world, clock, content="第一件公开的诉求")
    first = app.test_client().get("/cases")
    assert ticket.number in first.get_data(as_text=True)
    assert first.headers["Cache-Control"] == f"public, max-age={app.config['HOTLINE_PORTAL_PAGE_CACHE_SECONDS']}"
    assert {"Accept-Language", "Cookie"} <= set(first.vary) and first.headers["ETag"]
    assert "Set-Cookie" not in first.headers
    Ticket.update(public=False).where(Ticket.id == ticket.id).execute()  # not through the ticket page
    assert ticket.number in app.test_client().get("/cases").get_data(as_text=True)
    again = app.test_client().get("/cases", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""
    app.extensions["page_cache"].clear()
    assert ticket.number not in app.test_client().get("/cases").get_data(as_text=True)


def test_a_publication_shows_at_once(app, client, world, clock, login):
    """Should show a case on the kept list and its page as soon as the centre publishes it on the ticket page,
    and take it off as soon as the centre withdraws it."""
    ticket, _ = _closed_web_case(client, world, clock, publish=False, content="刚刚公开的诉求")
    visitor = app.test_client()
    assert ticket.number not in visitor.get("/cases").get_data(as_text=True)
    assert visitor.get(f"/cases/{ticket.number}").status_code == 404
    assert ticket.number not in visitor.get("/").get_data(as_text=True)
    centre = login(world.centre_user)
    assert centre.post_form(f"/tickets/{ticket.number}/act", {"event": "disclose", "public": "1"}).status_code == 303
    assert ticket.number in visitor.get("/cases").get_data(as_text=True)
    assert ticket.number in visitor.get("/").get_data(as_text=True)
    assert visitor.get(f"/cases/{ticket.number}").status_code == 200
    centre.post_form(f"/tickets/{ticket.number}/act", {"event": "disclose"})
    assert ticket.number not in visitor.get("/cases").get_data(as_text=True)
    assert visitor.get(f"/cases/{ticket.number}").status_code == 404


def test_a_signed_in_user_never_gets_or_leaves_a_kept_page(app, client, world, clock, login):
    """Should render every public page afresh for a signed-in user (no-store, no ETag), neither serving them
    the anonymous visitors' kept page nor keeping theirs for the visitors."""
    ticket, _ = _closed_web_case(client, world, clock, content="登录用户看到的诉求")
    staff = login(world.centre_user)
    page = staff.get("/cases")
    assert page.headers["Cache-Control"] == "no-store" and "ETag" not in page.headers
    Ticket.update(public=False).where(Ticket.id == ticket.id).execute()
    assert ticket.number not in app.test_client().get("/cases").get_data(as_text=True)  # staff's was not kept
    Ticket.update(public=True).where(Ticket.id == ticket.id).execute()
    app.extensions["page_cache"].clear()
    assert ticket.number in app.test_client().get("/cases").get_data(as_text=True)  # now kept for visitors
    Ticket.update(public=False).where(Ticket.id == ticket.id).execute()
    assert ticket.number not in staff.get("/cases").get_data(as_text=True)  # staff see it afresh


def test_each_language_is_kept_apart(app, client, world, clock):
    """Should keep the Chinese and the English page apart (browser language or the ?lang= choice) and never
    keep the answer that switches the language (it sets the session's cookie)."""
    assert "我要写信" in app.test_client().get("/").get_data(as_text=True)
    english = app.test_client().get("/", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert "Write to us" in english.get_data(as_text=True)
    assert "我要写信" in app.test_client().get("/").get_data(as_text=True)
    chooser = app.test_client()
    switched = chooser.get("/?lang=en")
    assert "Write to us" in switched.get_data(as_text=True) and switched.headers["Cache-Control"] == "no-store"
    assert "Write to us" in chooser.get("/").get_data(as_text=True)  # the session's language, its own entry
    assert "我要写信" in app.test_client().get("/").get_data(as_text=True)


def test_forms_and_followed_cases_are_never_kept(app, client, world, clock):
    """Should never keep a page carrying a form's token, nor a refusal."""
    for url in ("/write", "/mailbox", "/follow"):
        assert client.get(url).headers["Cache-Control"] == "no-store", url
    assert not any(key[0].startswith(("/write", "/mailbox", "/follow"))
                   for key in app.extensions["page_cache"].entries)
    assert client.get("/cases/99999999").status_code == 404  # an answer other than 200
    assert not any(key[0].startswith("/cases/") for key in app.extensions["page_cache"].entries)


def test_a_publication_in_one_process_empties_the_others_kept_pages(app, client, world, clock):
    """Should tell every app on the bus (web workers: PostgreSQL's LISTEN/NOTIFY) to forget its kept pages when
    one of them publishes, and not fail the publication when the bus cannot carry the message."""
    from core.pubsub import LocalBus
    from webui import page_cache
    from webui.app import Services, create_app

    bus = LocalBus().start()
    config = app.extensions["hotline"].config
    one, other = (create_app(config, Services(clock=clock, bus=bus)) for _ in range(2))
    _closed_web_case(client, world, clock, content="两个进程")
    assert other.test_client().get("/cases").status_code == 200
    assert other.extensions["page_cache"].entries
    with one.test_request_context("/tickets/1/act", method="POST"):
        page_cache.invalidate()
    assert not other.extensions["page_cache"].entries

    class Broken:
        def publish(self, topic, message):
            raise OSError("bus away")

    one.extensions["hotline"].services.bus = Broken()
    other.test_client().get("/cases")
    with one.test_request_context("/tickets/1/act", method="POST"):
        page_cache.invalidate()  # logged, the other process's pages age out
    assert not one.extensions["page_cache"].entries
    bus.stop()
