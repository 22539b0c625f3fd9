"""Errors and notes in one language (issue 13 item 1): the domain errors of caseflow, acd, ivr and channels are
written "中文 / English"; what a user sees of them (a flash, a form's error line, an error page, a JSON error)
is the half in the user's language, never both.

Two checks: bad input sent to the ticket, knowledge base, entry, public website and administration pages in
Chinese and in English, with every flashed message and every error line on the answer looked at; and a scan
of the web UI's source for a flash or an error handed a raw ``str(error)`` or a "中文 / English" literal.
"""
from __future__ import annotations

import ast
import re
from html import unescape
from pathlib import Path

import pytest
from flask import message_flashed

from caseflow.models import User
from tests.integration.webui.test_one_language import ALLOWED_EN, CJK_RE, URL_RE, WORD_RE

# How a date or time is typed: a notation, not words.
FORMAT_RE = re.compile(r"(?<![A-Za-z])(?:YYYY-MM-DD(?:THH:MM)?|HH:MM)(?![A-Za-z])")
QUOTED_RE = re.compile(r"'[^']*'")  # what the user typed, quoted back to them
WEBUI = Path(__file__).resolve().parents[3] / "webui"
ERROR_LINE_RE = re.compile(r'<(p|li|div)[^>]*(?:class="[^"]*\b(?:error|alerts)\b[^"]*"|data-testid="error")'
                           r'[^>]*>(.*?)</\1>', re.S)


def mixed(text: str, lang: str) -> bool:
    """Whether ``text`` holds the other language: English words on a Chinese page, Chinese on an English one
    (proper nouns, units and addresses allowed, as test_one_language does)."""
    if lang == "en":
        return bool(CJK_RE.search(text))
    text = QUOTED_RE.sub(" ", FORMAT_RE.sub(" ", URL_RE.sub(" ", text)))
    words = [w for w in WORD_RE.findall(text) if w not in ALLOWED_EN and len(w) > 1]
    return bool(words)


@pytest.fixture
def flashed(app):
    """Every message flashed while the test runs: (category, text)."""
    seen: list[tuple[str, str]] = []

    def record(sender, message, category, **extra):
        seen.append((category, str(message)))

    message_flashed.connect(record, app)
    yield seen
    message_flashed.disconnect(record, app)


def error_lines(html: str) -> list[str]:
    return [unescape(re.sub(r"<[^>]+>", " ", body)).strip() for _tag, body in ERROR_LINE_RE.findall(html)]


@pytest.mark.parametrize("lang", ("zh", "en"))
def test_bad_input_is_answered_in_the_users_language(app, world, login, flashed, lang, monkeypatch):
    """Should answer bad input on the ticket, knowledge, entry, public website and admin pages with messages
    in the user's language only: the caseflow errors' other half never shows."""
    User.update(language=lang).execute()
    number = world.east_ticket.number
    agent, clerk, centre, admin = (login(world.agent), login(world.entry), login(world.centre_user),
                                   login(world.admin))
    dept = login(world.east_user)
    flashed.clear()  # the welcome notes name the (Chinese) users: data, not the page's words
    answers = [
        clerk.post_form("/entry/", {"channel": "letter", "content": "  "}),                  # 内容不能为空
        clerk.post_form("/entry/", {"channel": "letter", "content": "长" * 20001}),            # over the limit
        clerk.post_form("/entry/", {"channel": "letter", "content": "路灯不亮", "reply_by": "phone"}),
        dept.post_form(f"/tickets/{number}/act", {"event": "return", "version": "1"}),      # reason required
        dept.post_form(f"/tickets/{number}/attach", {}),                                      # no file chosen
        centre.post_form(f"/tickets/{number}/note", {"text": ""}),
        centre.post_form("/tickets/searches", {"name": "", "phone": "1380000"}),             # no name
        centre.get("/tickets/search?date_from=someday"),
        centre.post_form("/kb/new", {"title": "", "content": "内容"}),
        centre.post_form("/centre/blacklist", {"phone": "", "reason": ""}),
        admin.post_form("/admin/org/", {"code": "bad code!", "name": "东区二街道", "parent": str(world.east.id)}),
        admin.post_form("/admin/org/users", {"operator_no": "7201", "name": "", "password": "x"}),
        admin.post_form(f"/admin/org/users/{world.admin.id}", {"name": "", "roles": ["admin"], "active": "1"}),
        admin.post_form(f"/admin/org/users/{world.admin.id}", {"name": "管理员", "roles": ["agent"], "active": "1"}),
        admin.post_form("/admin/org/calendar", {"what": "day", "day": "someday", "kind": "holiday"}),
    ]
    import webui.blueprints.portal as portal_bp

    monkeypatch.setattr(portal_bp, "CAPTCHA_ALPHABET", "A")  # a picture the test can read; the check still runs
    site = app.test_client()
    site.get(f"/?lang={lang}")
    site.get("/captcha.png")
    answers.append(site.post("/write", data={"type": "complaint", "content": "字" * 3001, "name": "王小明",
                                             "phone": "13700001111", "reply_by": "phone", "consent": "1",
                                             "captcha": "AAAAA", "csrf_token": site.csrf_token()}))
    site.get("/captcha.png")
    answers.append(site.post("/write", data={"type": "complaint", "content": "噪音", "name": "王小明", "phone": "",
                                             "reply_by": "phone", "consent": "1", "captcha": "AAAAA",
                                             "csrf_token": site.csrf_token()}))
    shown = []
    for response in answers:
        assert response.status_code in (200, 303, 400, 403, 409), response.status_code
        if response.status_code != 303 and response.mimetype == "text/html":
            shown += error_lines(response.get_data(as_text=True))
    shown += [text for _category, text in flashed]
    assert len(shown) >= len(answers), shown  # every bad input said something
    assert [text for text in shown if mixed(text, lang)] == [], shown
    if lang == "zh":
        assert any("内容不能为空" in text for text in shown), shown  # was "内容 content不能为空"
        assert any("20000" in text and "20001" in text for text in shown), shown  # refused, never cut
        assert any("诉求内容最多3000字，现有3001字" in text for text in shown), shown  # the website's form
    else:
        assert any("content must not be empty" in text for text in shown), shown
        assert any("content may have at most 3000 characters, it has 3001" in text for text in shown), shown


def _findings(source: str, name: str) -> list[str]:
    """Places in one web UI module that hand a user a raw error or a "中文 / English" literal."""
    tree = ast.parse(source, name)
    out = []

    def raw(node) -> bool:  # str(error): the domain error with both halves
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str" \
            and len(node.args) == 1 and not isinstance(node.args[0], ast.Constant)

    def bilingual(node) -> bool:
        text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else \
            "".join(v.value for v in node.values if isinstance(v, ast.Constant)) \
            if isinstance(node, ast.JoinedStr) else ""
        return bool(CJK_RE.search(text)) and " / " in text

    where = lambda node, what: f"{name}:{node.lineno}: {what}"  # noqa: E731
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = node.func.id if isinstance(node.func, ast.Name) else \
                node.func.attr if isinstance(node.func, ast.Attribute) else ""
            if called == "flash" and node.args and (raw(node.args[0]) or bilingual(node.args[0])):
                out.append(where(node, "flash of a raw or two-language message"))
            for keyword in node.keywords:
                if keyword.arg and keyword.arg.endswith(("error", "description")) and raw(keyword.value):
                    out.append(where(node, f"{keyword.arg}=str(...)"))
            if called == "jsonify":
                for arg in node.args:
                    if isinstance(arg, ast.Dict):
                        for key, value in zip(arg.keys, arg.values):
                            if isinstance(key, ast.Constant) and key.value == "error" and (raw(value) or bilingual(value)):
                                out.append(where(node, "JSON error of a raw or two-language message"))
        elif isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)] + [
                e.id for t in node.targets if isinstance(t, ast.Tuple) for e in t.elts if isinstance(e, ast.Name)]
            values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            if any(n.endswith("error") for n in targets) and any(raw(v) for v in values):
                out.append(where(node, "error = str(...)"))
    return sorted(out, key=lambda f: int(f.split(":")[1]))


def test_no_raw_or_two_language_errors_in_the_web_ui_source():
    """Should find no flash, error argument, error variable or JSON error in webui/ made of str(error) or of a
    "中文 / English" literal: each goes through webui.i18n.error_text (or the catalogue)."""
    found = [f for path in sorted(WEBUI.rglob("*.py"))
             for f in _findings(path.read_text(encoding="utf-8"), str(path.relative_to(WEBUI.parent)))]
    assert found == [], "\n".join(found)


def test_the_scan_finds_what_it_should():
    """Should flag str(error) in a flash, a JSON error and an error variable, and a two-language literal."""
    source = ('flash(str(error), "error")\nflash("请选择文件 / choose a file")\njsonify({"error": str(exc)})\n'
              'error, status = str(exc), 400\nflash(error_text(error))\nflash(gettext("Saved."))\n'
              'abort(403, description=str(error))\n')
    found = _findings(source, "sample.py")
    assert [f.split(":")[1] for f in found] == ["1", "2", "3", "4", "7"]
