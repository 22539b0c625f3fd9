"""Messages on screen (issue 12 item 4): the ticket page's one messages panel (SMS and e-mail, both ways,
with delivery state), the centre's message log (roles, filters, pages, masking, failed messages and the
audited retry) and the administrator's template page (preview, validation in the sandbox, save, reset)."""
from __future__ import annotations

import datetime as dt

import pytest

from caseflow.models import User
from channels import templates
from channels.models import MailHeader, Message, MessageTemplate
from webui.models import AuditLog


def _msg(ticket=None, **kw):
    now = dt.datetime(2026, 3, 4, 2, 0)
    values = dict(channel="sms", direction="out", address="13812345678", body="hi", status="sent",
                  purpose="receipt", template_key="receipt", created_at=now, updated_at=now, ticket=ticket)
    values.update(kw)
    return Message.create(**values)


@pytest.fixture
def messages(world):
    t = world.east_ticket
    receipt = _msg(t, body=f"【12345热线】您的诉求已受理，受理号{t.number}，查询码{world.east_pin}。", status="delivered",
                   sent_at=dt.datetime(2026, 3, 4, 2, 0, 5))
    incoming = _msg(t, direction="in", body="我的电话13912345678，邮箱zs@example.cn", status="received",
                    purpose="", template_key="")
    mail = _msg(t, channel="email", address="zhangsan@example.cn", body="请补充位置", purpose="agent",
                template_key="", status="failed", error="550 mailbox unavailable")
    MailHeader.create(message=mail, msgid="x@h", subject=f"[{t.number}] 补充材料")
    return {"ticket": t, "receipt": receipt, "incoming": incoming, "mail": mail}


def test_ticket_page_lists_both_channels_once(login, world, messages):
    """Should list the ticket's SMS and e-mails, both directions, in one panel with their state and the failed
    mail's error; never the query code; the full number for the centre, masked for an agent."""
    t = messages["ticket"]
    page = login(world.centre_user).get(f"/tickets/{t.number}").get_data(as_text=True)
    assert page.count('data-testid="ticket-messages"') == 1 and 'data-testid="ticket-mails"' not in page
    assert "已送达" in page and "已接收" in page and "发送失败" in page and "550 mailbox unavailable" in page
    assert f"[{t.number}] 补充材料" in page
    assert "13812345678" in page and "zhangsan@example.cn" in page
    assert world.east_pin not in page and "查询码******" in page
    agent = login(world.agent).get(f"/tickets/{t.number}").get_data(as_text=True)
    assert 'data-testid="ticket-messages"' in agent
    assert "13812345678" not in agent and "138****5678" in agent and "z*******@example.cn" in agent
    assert "13912345678" not in agent and "zs@example.cn" not in agent and t.number in agent


def test_log_roles_and_masking(app, login, world, messages):
    """Should open the log to the centre, team leads and administrators only, masking addresses and numbers
    in texts for the administrator (no citizen.full_contact), and send an anonymous visitor to log in."""
    assert login(world.agent).get("/centre/messages").status_code == 403
    assert login(world.east_user).get("/centre/messages").status_code == 403
    assert app.test_client().get("/centre/messages").status_code in (302, 303, 401)
    centre = login(world.centre_user).get("/centre/messages").get_data(as_text=True)
    assert 'data-testid="message-log"' in centre and "13812345678" in centre and "13912345678" in centre
    admin = login(world.admin).get("/centre/messages").get_data(as_text=True)
    assert "13812345678" not in admin and "138****5678" in admin and "13912345678" not in admin
    assert "zhangsan@" not in admin and AuditLog.select().where(AuditLog.action == "message_log_view").count() == 2


def test_log_filters_and_pages(login, world, messages):
    """Should filter by channel, direction, status, date and address, page through 50 at a time, and refuse an
    unknown filter value or a malformed date with a clear 400."""
    for n in range(55):
        _msg(address=f"1390000{n:04d}", body=f"批量{n}", status="queued")
    c = login(world.centre_user)

    def ids(**query):
        page = c.get("/centre/messages", query_string=query).get_data(as_text=True)
        return {m.id for m in Message.select() if f'data-testid="message-{m.id}"' in page}

    mail, incoming = messages["mail"], messages["incoming"]
    assert ids(channel="email") == {mail.id}
    assert ids(direction="in") == {incoming.id}
    assert ids(status="failed") == {mail.id}
    assert ids(address="zhangsan") == {mail.id}
    assert ids(address="+86 139 0000 0007") == {Message.get(Message.body == "批量7").id}
    assert len(ids()) == 50 and len(ids(page=2)) == 58 - 50
    assert ids(**{"from": "2026-03-04", "to": "2026-03-04"}) and not ids(**{"from": "2026-03-05"})
    for bad in ({"channel": "fax"}, {"status": "lost"}, {"from": "04/03/2026"}, {"from": "2026-03-05", "to": "2026-03-01"}):
        r = c.get("/centre/messages", query_string=bad)
        assert r.status_code == 400 and 'data-testid="log-error"' in r.get_data(as_text=True)
    assert c.get("/centre/messages?page=x").status_code == 400


def test_failed_message_retry(login, world, messages):
    """Should highlight a failed message with its error and a retry button; the retry (CSRF, the centre) queues
    it again and is audited; a team lead may look but not retry; a message that has not failed is refused."""
    mail = messages["mail"]
    c = login(world.centre_user)
    page = c.get("/centre/messages").get_data(as_text=True)
    assert f'data-testid="retry-{mail.id}"' in page and 'class="msg-failed failed"' in page
    assert f'data-testid="retry-{messages["receipt"].id}"' not in page
    assert c.post(f"/centre/messages/{mail.id}/retry").status_code in (400, 403)
    assert Message.get_by_id(mail.id).status == "failed"
    done = c.post(f"/centre/messages/{mail.id}/retry", data={"csrf_token": c.csrf_token(), "channel": "email"})
    assert done.status_code == 303 and "channel=email" in done.headers["Location"]
    again = Message.get_by_id(mail.id)
    assert (again.status, again.attempts, again.error) == ("queued", 0, "")
    assert AuditLog.get(AuditLog.action == "message_retry").obj_id == str(mail.id)
    refused = c.post(f"/centre/messages/{messages['receipt'].id}/retry", data={"csrf_token": c.csrf_token()},
                     follow_redirects=True)
    assert "只有发送失败的消息可以重发" in refused.get_data(as_text=True)
    assert c.post("/centre/messages/999999/retry", data={"csrf_token": c.csrf_token()}).status_code == 404
    lead = login(User.create(operator_no="8001", name="班长", password_hash=world.agent.password_hash,
                             roles="team_lead", department=world.centre))
    assert lead.get("/centre/messages").status_code == 200
    assert lead.post(f"/centre/messages/{mail.id}/retry", data={"csrf_token": lead.csrf_token()}).status_code == 403


def test_verification_codes_never_shown_nor_resent(login, world):
    """Should hide a verification code in the log even from the centre and refuse to resend one."""
    code = _msg(body="【12345热线】您的验证码482913，10分钟内有效。", purpose="verify", template_key="verify",
                status="failed", error="down")
    c = login(world.centre_user)
    page = c.get("/centre/messages").get_data(as_text=True)
    assert "482913" not in page and f'data-testid="retry-{code.id}"' not in page
    r = c.post(f"/centre/messages/{code.id}/retry", data={"csrf_token": c.csrf_token()}, follow_redirects=True)
    assert "验证码不重发" in r.get_data(as_text=True) and Message.get_by_id(code.id).status == "failed"


def test_templates_page(login, world):
    """Should list every template key with both texts for the administrator only, preview with sample values,
    refuse unknown variables and sandbox escapes by name, save (audited, then used) and reset (audited)."""
    assert login(world.centre_user).get("/admin/templates").status_code == 403
    a = login(world.admin)
    page = a.get("/admin/templates").get_data(as_text=True)
    for key in templates.DEFAULTS:
        assert f'data-testid="template-{key}"' in page
    assert "受理回执" in page and "Your request is registered" in page
    url = "/admin/templates/receipt/zh"
    r = a.post(url, data={"csrf_token": a.csrf_token(), "action": "preview", "body": "受理号{{ number }} 码{{ pin }}"})
    assert r.status_code == 200 and "受理号12345678 码123456" in r.get_data(as_text=True)
    for body, words in (("{{ nubmer }}", "nubmer"), ("{{ number.__class__.__mro__ }}", "模板错误"),
                        ("{% for x in %}", "模板错误"), ("{{ number | default(secret) }}", "secret")):
        r = a.post(url, data={"csrf_token": a.csrf_token(), "action": "save", "body": body})
        assert r.status_code == 400 and words in r.get_data(as_text=True), body
    assert MessageTemplate.select().count() == 0
    assert a.post(url, data={"action": "save", "body": "x{{ number }}"}).status_code in (400, 403)
    r = a.post(url, data={"csrf_token": a.csrf_token(), "action": "save", "body": "新回执{{ number }}"})
    assert r.status_code == 303 and templates.render("receipt", {"number": "1", "pin": "2", "title": ""}) == "新回执1"
    assert AuditLog.select().where(AuditLog.action == "template_save").count() == 1
    r = a.post(url, data={"csrf_token": a.csrf_token(), "action": "reset"})
    assert r.status_code == 303 and templates.stored("receipt", "zh") is None
    assert AuditLog.select().where(AuditLog.action == "template_reset").count() == 1
    assert a.get("/admin/templates/nope/zh").status_code == 404
    assert a.get("/admin/templates/receipt/fr").status_code == 404
