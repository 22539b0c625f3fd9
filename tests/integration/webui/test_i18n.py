"""Localisation: Chinese first, English on request, times in the configured zone."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from caseflow.models import User
from webui.i18n import MESSAGES, Catalogue, best_language, normalise_language

from .conftest import PASSWORD


def test_login_page_is_chinese_by_default(client, db):
    """Should show the login page in Chinese with lang zh-CN when the browser says nothing."""
    text = client.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in text and "工号" in text and "密码" in text


def test_browser_language_english(client, db):
    """Should follow an English browser before login."""
    text = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9,zh;q=0.5"}).get_data(as_text=True)
    assert '<html lang="en">' in text and "Operator number" in text and "工号" not in text


def test_switch_language_is_kept_on_the_user(client, make_user):
    """Should switch the ticket list to English and remember the choice on the user for later logins."""
    user = make_user("4001")
    client.login("4001", PASSWORD)
    assert "工单列表" in client.get("/agent/tickets").get_data(as_text=True)
    response = client.post_form("/language", {"lang": "en", "next": "/agent/tickets"})
    assert response.headers["Location"] == "/agent/tickets"
    page = client.get("/agent/tickets").get_data(as_text=True)
    assert "Ticket list" in page and "Acceptance number" in page and "工单列表" not in page
    assert User.get_by_id(user.id).language == "en"
    client.logout()
    other = client.application.test_client()
    other.login("4001", PASSWORD)
    assert "Ticket list" in other.get("/agent/tickets").get_data(as_text=True)


def test_switch_refuses_unknown_language(client, db):
    """Should answer 400 to a language that is not offered."""
    assert client.post_form("/language", {"lang": "fr"}).status_code == 400


def test_localtime_uses_configured_zone(make_app, make_user, make_ticket):
    """Should show a UTC-stored time in Asia/Shanghai by default and in another zone when configured."""
    make_user("4002")
    make_ticket(created_at=dt.datetime(2026, 1, 1, 23, 30))
    shanghai = make_app().test_client()
    shanghai.login("4002", PASSWORD)
    assert "2026-01-02 07:30" in shanghai.get("/agent/tickets").get_data(as_text=True)
    london = make_app(tz="Europe/London").test_client()
    london.login("4002", PASSWORD)
    assert "2026-01-01 23:30" in london.get("/agent/tickets").get_data(as_text=True)


def test_every_template_message_has_chinese():
    """Should have a Chinese translation for every literal _("...") in the web UI's templates.

    The catalogue is the base one plus the MESSAGES of every module under webui/ (blueprints included),
    so a page is checked as soon as its template and module exist.
    """
    import importlib
    import pkgutil

    import webui

    ids = set()
    for path in (Path(webui.__file__).parent / "templates").rglob("*.html"):
        # a literal runs to its own closing quote: "each ticket's" inside double quotes is one message
        ids |= {double or single for double, single in
                re.findall(r"""_\(\s*(?:"([^"]+)"|'([^']+)')""", path.read_text(encoding="utf-8"))}
    catalogue = Catalogue()
    for info in pkgutil.walk_packages(webui.__path__, "webui."):
        module = importlib.import_module(info.name)
        if isinstance(getattr(module, "MESSAGES", None), dict) and module.__name__ != "webui.i18n":
            catalogue.merge(module.MESSAGES, source=info.name)
    # "status:" ~ code builds an id at render time: only whole literal ids are checked here.
    ids = {i for i in ids if not i.endswith(":")}
    assert catalogue.missing("zh", ids) == []


def test_catalogue_fallbacks_and_placeholders():
    """Should fall back to the id, show the code for unknown prefixed ids, and survive bad placeholders."""
    catalogue = Catalogue()
    assert catalogue.gettext("en", "Ticket list") == "Ticket list"
    assert catalogue.gettext("zh", "status:some_new_state") == "some_new_state"
    assert catalogue.gettext("zh", "Welcome, %(name)s.", name="李雷") == "欢迎，李雷。"
    assert catalogue.gettext("zh", "Welcome, %(name)s.", other="x") == MESSAGES["zh"]["Welcome, %(name)s."]


def test_language_parsing():
    """Should map regional tags to our codes and prefer the highest quality."""
    assert normalise_language("zh-CN") == "zh" and normalise_language("EN_us") == "en"
    assert normalise_language("fr") is None and normalise_language("") is None
    assert best_language("fr;q=1, en;q=0.8, zh;q=0.9") == "zh"
    assert best_language("garbage;;;q=x") == "zh"
    assert best_language(None) == "zh"


def test_language_chosen_on_login_page_sticks(client, make_user):
    """Should keep English for a user who switched to it on the login page before logging in."""
    user = make_user("4003")
    client.get("/login")
    client.post_form("/language", {"lang": "en", "next": "/login"})
    assert "Operator number" in client.get("/login").get_data(as_text=True)
    client.login("4003", PASSWORD)
    assert "Ticket list" in client.get("/agent/tickets").get_data(as_text=True)
    assert User.get_by_id(user.id).language == "en"


def test_code_labels_follow_caseflow_and_language(app, make_user, make_ticket):
    """Should label status, type and channel codes from caseflow's tables in the page's language."""
    from caseflow.services import CHANNELS, TICKET_TYPES
    from caseflow.workflow import STATUS_LABELS

    make_ticket(type="help", channel="letter", status="recorded")
    make_user("4004", language="en")
    client = app.test_client()
    client.login("4004", PASSWORD)
    page = client.get("/agent/tickets").get_data(as_text=True)
    for label in (TICKET_TYPES["help"][1], CHANNELS["letter"][1], STATUS_LABELS["recorded"][1]):
        assert label in page
    client.post_form("/language", {"lang": "zh"})
    page = client.get("/agent/tickets").get_data(as_text=True)
    for label in (TICKET_TYPES["help"][0], CHANNELS["letter"][0], STATUS_LABELS["recorded"][0]):
        assert label in page


def test_blueprint_messages_win_on_their_own_pages():
    """Should use a blueprint's own text for an id on its pages and the shared text elsewhere."""
    catalogue = Catalogue()
    catalogue.merge({"zh": {"From": "主叫"}}, source="calls", scope="calls")
    catalogue.merge({"zh": {"From": "起始日期"}}, source="audit", scope="audit")
    assert catalogue.gettext("zh", "From", _scope="calls") == "主叫"
    assert catalogue.gettext("zh", "From", _scope="audit") == "起始日期"
    assert catalogue.gettext("zh", "From") == "起始日期"
    assert catalogue.gettext("zh", "Ticket list", _scope="calls") == "工单列表"
