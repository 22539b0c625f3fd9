"""E-mail from the ticket page (P2 §2.3): the form for whoever may write to the ticket, CSRF, refusal for a
viewer, the audit entry, the queued mail threaded to the citizen's, and the mails listed on the page."""
from __future__ import annotations

from caseflow import services
from channels.models import MailHeader, Message
from webui.models import AuditLog

from .conftest import PASSWORD  # noqa: F401 - the users' password, used by login


def _settings(app, tmp_path):
    from tests.integration.channels.mailservers import make_settings

    settings = make_settings(tmp_path, HOTLINE_EMAIL_SMTP_HOST="127.0.0.1")
    app.extensions["hotline"].services.email_settings = settings
    return settings


def test_send_email_from_ticket_page(app, world, login, clock, tmp_path):
    """Should show the e-mail form to the centre on a ticket with an e-mail address, queue the mail with a
    CSRF token (refused without one), audit it, list it, and refuse (403) an agent who may only look."""
    _settings(app, tmp_path)
    t = services.create_ticket("邮件来信：路灯不亮", channel="email", citizen_email="c@example.cn",
                               reply_by="email", clock=clock)
    centre = login(world.centre_user)
    page = centre.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert 'data-testid="email-form"' in page and "c@example.cn" in page
    assert centre.post(f"/tickets/{t.number}/email", data={"body": "无令牌"}).status_code in (400, 403)
    assert Message.select().count() == 0
    done = centre.post(f"/tickets/{t.number}/email", data={"body": "<b>请补充</b>具体位置",
                                                          "csrf_token": centre.csrf_token()}, follow_redirects=True)
    text = done.get_data(as_text=True)
    assert done.status_code == 200 and "邮件已排队发送" in text
    (message,) = Message.select()
    assert (message.channel, message.direction, message.address, message.status) == \
        ("email", "out", "c@example.cn", "queued")
    assert t.number in MailHeader.get(MailHeader.message == message).subject
    assert 'data-testid="ticket-messages"' in text and "<b>请补充</b>" not in text  # escaped in the timeline
    assert AuditLog.select().where(AuditLog.action == "email_send").count() == 1
    empty = centre.post(f"/tickets/{t.number}/email", data={"body": " ", "csrf_token": centre.csrf_token()},
                        follow_redirects=True)
    assert "邮件正文为1-5000字" in empty.get_data(as_text=True)
    viewer = login(world.agent)
    assert 'data-testid="email-form"' not in viewer.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert viewer.post(f"/tickets/{t.number}/email", data={"body": "hi", "csrf_token": viewer.csrf_token()}
                       ).status_code == 403
    outsider = login(world.west_user)
    assert outsider.post(f"/tickets/{t.number}/email", data={"body": "hi", "csrf_token": outsider.csrf_token()}
                         ).status_code == 404
    assert Message.select().count() == 1
