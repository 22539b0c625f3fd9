"""What inbound e-mail becomes, on a real database (SQLite and PostgreSQL): tickets with attachments,
threading, duplicates, automated mail, floods, limits and hostile input. The IMAP/SMTP servers themselves
are exercised in test_mail_servers.py."""
from __future__ import annotations

import base64
import io
import zipfile

import pytest

from caseflow import services
from caseflow import workflow as wf
from caseflow.models import Attachment, Notification, Ticket, TicketHistory
from channels import mailflow
from channels.mail import MailInputError
from channels.models import MailHeader, Message
from tests.integration.caseflow.conftest import clock, org_setup  # noqa: F401 - fixtures reused
from tests.integration.channels.mailservers import make_settings
from tests.pin_check import pin_in


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, HOTLINE_EMAIL_SMTP_HOST="127.0.0.1")


def mime(subject="路灯不亮", body="东区一街道路灯坏了", sender="citizen@example.cn", msgid="m1@example.cn",
         extra="", parts=None, charset="utf-8") -> bytes:
    head = (f"From: {sender}\r\nTo: 12345@hotline.example\r\nSubject: {subject}\r\n"
            f"Date: Wed, 4 Mar 2026 10:00:00 +0800\r\n" + (f"Message-ID: <{msgid}>\r\n" if msgid else "") + extra)
    if parts is None:
        return (head + f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset={charset}\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n").encode() + base64.encodebytes(body.encode(charset))
    out = head + 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    out += ("--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(body.encode()).decode())
    chunks = [out.encode()]
    for name, ctype, data in parts:
        chunks.append((f"--XX\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: base64\r\n"
                       f"Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n").encode())
        chunks.append(base64.encodebytes(data))
    chunks.append(b"--XX--\r\n")
    return b"".join(chunks)


def handle(raw, settings, tmp_path, clock, **kw):
    return mailflow.handle_mail(raw, settings=settings, attachments_root=tmp_path / "att", clock=clock, **kw)


def test_new_mail_becomes_email_ticket_with_attachments_and_receipt(org_setup, clock, settings, tmp_path):
    """Should make a ticket (channel email, reply by e-mail) with the attachment stored (sha256, type from
    the content) and queue one acknowledgement with number and query code, threaded to the mail."""
    pdf = b"%PDF-1.4\n" + b"x" * 2000
    result = handle(mime(parts=[("材料.jpg", "image/jpeg", pdf)]), settings, tmp_path, clock)
    assert result.outcome == "ticket" and result.acknowledged
    ticket = Ticket.get(Ticket.number == result.ticket)
    assert ticket.channel == "email" and ticket.reply_by == "email" and ticket.citizen_email == "citizen@example.cn"
    assert ticket.title == "路灯不亮" and "路灯坏了" in ticket.content
    (att,) = Attachment.select().where(Attachment.ticket == ticket)
    assert att.kind == "email" and att.filename == "材料.jpg" and att.size == len(pdf)
    assert att.content_type == "application/pdf"  # the content decides, not the declared type or name
    import hashlib
    assert att.sha256 == hashlib.sha256(pdf).hexdigest()
    assert (tmp_path / "att" / att.path).read_bytes() == pdf
    (ack,) = Message.select().where((Message.direction == "out") & (Message.channel == "email"))
    assert ticket.number in ack.body and pin_in(ack.body, ticket) and ack.address == "citizen@example.cn"
    header = MailHeader.get(MailHeader.message == ack)
    assert header.in_reply_to == "m1@example.cn" and ticket.number in header.subject


def test_same_mail_twice_one_ticket(org_setup, clock, settings, tmp_path):
    """Should make one ticket and one acknowledgement when the same mail arrives twice (other Received)."""
    first = handle(b"Received: from a\r\n" + mime(), settings, tmp_path, clock)
    second = handle(b"Received: from b\r\nReceived: from c\r\n" + mime(), settings, tmp_path, clock)
    assert second.outcome == "duplicate" and second.ticket == first.ticket
    assert Ticket.select().count() == 1
    assert Message.select().where(Message.direction == "out").count() == 1


def test_reply_threads_by_message_id_and_by_number(org_setup, clock, settings, tmp_path):
    """Should add a citizen's answer to its ticket by In-Reply-To (our acknowledgement's Message-ID) and by
    the acceptance number in the subject from the ticket's address, but not from a stranger."""
    first = handle(mime(), settings, tmp_path, clock)
    ack = MailHeader.select().join(Message).where(Message.direction == "out").get()
    answer = handle(mime(subject="Re: 受理回执", body="补充：灯杆编号A12", msgid="m2@example.cn",
                         extra=f"In-Reply-To: <{ack.msgid}>\r\n"), settings, tmp_path, clock)
    assert answer.outcome == "reply" and answer.ticket == first.ticket and not answer.acknowledged
    by_number = handle(mime(subject=f"关于{first.ticket}的补充", body="还没修", msgid="m3@example.cn"),
                       settings, tmp_path, clock)
    assert by_number.outcome == "reply" and by_number.ticket == first.ticket
    stranger = handle(mime(subject=f"关于{first.ticket}", body="别人", msgid="m4@example.cn",
                           sender="other@example.cn"), settings, tmp_path, clock)
    assert stranger.outcome == "ticket" and stranger.ticket != first.ticket
    notes = [h.note for h in TicketHistory.select().where(TicketHistory.ticket == Ticket.get(
        Ticket.number == first.ticket))]
    assert any("灯杆编号A12" in n for n in notes) and any("还没修" in n for n in notes)


@pytest.mark.parametrize("extra,outcome,ticket_made", [
    ("Auto-Submitted: auto-replied\r\n", "auto_reply", False),
    ("X-Autoreply: yes\r\n", "auto_reply", False),
    ("Return-Path: <>\r\n", "bounce", False),
    ("Precedence: bulk\r\n", "ticket", True),
    ("List-Id: <news.example.cn>\r\n", "ticket", True),
    ("Precedence: junk\r\n", "ticket", True),
])
def test_automated_mail_never_acknowledged(org_setup, clock, settings, tmp_path, extra, outcome, ticket_made):
    """Should answer no auto-reply, bounce or list mail; bounces and auto-replies make no ticket."""
    result = handle(mime(extra=extra), settings, tmp_path, clock)
    assert result.outcome == outcome and not result.acknowledged
    assert Ticket.select().count() == (1 if ticket_made else 0)
    assert Message.select().where(Message.direction == "out").count() == 0


def test_bounce_fails_our_mail(org_setup, clock, settings, tmp_path):
    """Should fail our outgoing mail that a bounce refers to, and make no ticket of the bounce."""
    handle(mime(), settings, tmp_path, clock)
    ack = MailHeader.select().join(Message).where(Message.direction == "out").get()
    bounce = mime(sender="MAILER-DAEMON@mx.example.cn", subject="Undelivered Mail Returned to Sender",
                  body=f"The original message was:\nMessage-ID: <{ack.msgid}>", msgid="b1@mx.example.cn",
                  extra="Return-Path: <>\r\n")
    assert handle(bounce, settings, tmp_path, clock).outcome == "bounce"
    assert Message.get_by_id(ack.message_id).status == "failed"
    assert Ticket.select().count() == 1


def report_of(returned: str, ack_msgid: str, msgid="b2@mx.example.cn") -> bytes:
    """A delivery report (RFC 3464, as Postfix sends one) returning our mail ``returned`` (its text)."""
    quoted = base64.encodebytes(returned.encode()).decode()
    return (f"From: MAILER-DAEMON@mx.example.cn\r\nTo: 12345@hotline.example\r\nReturn-Path: <>\r\n"
            f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <{msgid}>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="RR"\r\n\r\n'
            "--RR\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nYour message could not be delivered.\r\n"
            "--RR\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.cn\r\n\r\n"
            "Final-Recipient: rfc822; citizen@example.cn\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
            "--RR\r\nContent-Type: message/rfc822\r\n\r\n"
            f"From: 12345@hotline.example\r\nTo: citizen@example.cn\r\nMessage-ID: <{ack_msgid}>\r\n"
            "Subject: receipt\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{quoted}\r\n--RR--\r\n").encode()


@pytest.fixture
def statement_values_shown():
    """The database's statements logged with their values (the statement logger without the filter that
    core.db.open_database and configure_logging install), its filters restored after."""
    import logging

    from core import logsetup

    statements = logging.getLogger(logsetup.STATEMENT_LOGGER)
    saved = list(statements.filters)
    statements.filters[:] = [f for f in saved if not isinstance(f, logsetup.StatementValues)]
    yield
    statements.filters[:] = saved


def test_a_bounce_quoting_a_receipt_never_logs_or_stores_its_pin(org_setup, clock, settings, tmp_path, caplog,
                                                                  statement_values_shown):
    """Should handle a bounce that returns our receipt (its query PIN quoted) without the PIN reaching any log
    line, even at DEBUG where every statement is logged with its values, nor the stored bounce (the message
    log): its 6-digit runs are masked, the acceptance number stays, and the receipt it returns (enclosed whole
    as RFC 3464 has it, its Message-ID in none of the text) is failed."""
    import logging

    first = handle(mime(), settings, tmp_path, clock)
    ticket = Ticket.get(Ticket.number == first.ticket)
    ack = MailHeader.select().join(Message).where(Message.direction == "out").get()
    pin = pin_in(Message.get_by_id(ack.message_id).body, ticket)
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    bounced = handle(report_of(Message.get_by_id(ack.message_id).body, ack.msgid), settings, tmp_path, clock)
    assert bounced.outcome == "bounce"
    assert Message.get_by_id(ack.message_id).status == "failed"  # read from the mail it returns whole
    logged = [record.getMessage() for record in caplog.records]
    # The statements were logged with their values: the bounce's INSERT with its sender, nothing filtered.
    assert any('INSERT INTO "message"' in line and "mailer-daemon@mx.example.cn" in line for line in logged)
    assert not [line for line in logged if "values not logged" in line]
    assert not [line for line in logged if pin in line] and pin not in caplog.text
    body = Message.get_by_id(bounced.message_id).body
    assert pin not in body and f"受理号{ticket.number}，查询码******" in body and "could not be delivered" in body


@pytest.fixture
def statement_values_hidden():
    """The database's statements logged without their values, as a product's configure_logging has them."""
    import logging

    from core import logsetup

    statements = logging.getLogger(logsetup.STATEMENT_LOGGER)
    saved = list(statements.filters)
    logsetup.hide_statement_values()
    yield
    statements.filters[:] = saved


def test_no_receipt_pin_reaches_a_log_line_even_at_debug(org_setup, clock, settings, tmp_path, caplog,
                                                         sms_receipts, statement_values_hidden):
    """Should log no line holding a receipt's query PIN at DEBUG, with the statements logged as a product
    logs them: an e-mail ticket with its acknowledgement, an SMS receipt written with a ticket, a bounce of
    the acknowledgement."""
    with caplog.at_level("DEBUG"):
        first = handle(mime(), settings, tmp_path, clock)
        texted = services.create_ticket("路灯不亮", citizen_phone="13800000001", clock=clock)
        ack = MailHeader.select().join(Message).where((Message.direction == "out") & (Message.channel == "email")).get()
        handle(report_of(Message.get_by_id(ack.message_id).body, ack.msgid), settings, tmp_path, clock)
    ticket = Ticket.get(Ticket.number == first.ticket)
    pins = [pin_in(Message.get_by_id(ack.message_id).body, ticket),
            pin_in(Message.get((Message.ticket == texted.id) & (Message.channel == "sms")).body, texted)]
    assert any("values not logged" in r.getMessage() for r in caplog.records)
    assert not [r.getMessage() for r in caplog.records if any(pin in r.getMessage() for pin in pins)]


def test_an_auto_reply_quoting_a_receipt_is_stored_without_its_pin(org_setup, clock, settings, tmp_path, caplog):
    """Should store an auto-reply that quotes our receipt with its PIN masked (and log no line with it), while
    a citizen's own mail keeps its 6-digit numbers."""
    first = handle(mime(body="灯杆编号123456"), settings, tmp_path, clock)
    ticket = Ticket.get(Ticket.number == first.ticket)
    assert "灯杆编号123456" in ticket.content
    receipt = Message.get((Message.direction == "out") & (Message.ticket == ticket)).body
    pin = pin_in(receipt, ticket)
    with caplog.at_level("DEBUG"):
        away = handle(mime(subject="自动回复: 受理回执", body=f"我休假至下周。\n\n> {receipt}", msgid="a1@example.cn",
                           extra="Auto-Submitted: auto-replied\r\n"), settings, tmp_path, clock)
    assert away.outcome == "auto_reply" and pin not in caplog.text
    assert Message.get_by_id(away.message_id).body == f"我休假至下周。\n\n> {receipt.replace(pin, '******')}"


def test_a_reply_quoting_the_acknowledgement_is_kept_without_its_pin(org_setup, clock, settings, tmp_path):
    """Should store a citizen's reply that quotes the acknowledgement, and the note it becomes on the ticket,
    with that ticket's query PIN masked and the citizen's other 6-digit numbers kept; a list mail threaded to
    the ticket (its number in the subject, from the citizen's address) likewise."""
    from caseflow import pins

    first = handle(mime(), settings, tmp_path, clock)
    ticket = Ticket.get(Ticket.number == first.ticket)
    ack = MailHeader.select().join(Message).where(Message.direction == "out").get()
    receipt = Message.get_by_id(ack.message_id).body
    pin = pin_in(receipt, ticket)
    other = f"{(int(pin) + 1) % 10 ** 6:06d}"  # a number of the citizen's own, never the PIN
    quoted = "\n".join(f"> {line}" for line in receipt.splitlines())
    reply = handle(mime(subject="Re: 受理回执", body=f"灯杆编号{other}，还没修。\n\n{quoted}", msgid="m2@example.cn",
                        extra=f"In-Reply-To: <{ack.msgid}>\r\n"), settings, tmp_path, clock)
    listed = handle(mime(subject=f"Fwd: {ticket.number}", body=f"转发 {other}：\n{receipt}", msgid="m3@example.cn",
                         extra="List-Id: <news.example.cn>\r\n"), settings, tmp_path, clock)
    assert (reply.outcome, reply.ticket, listed.outcome, listed.ticket) == ("reply", ticket.number, "reply",
                                                                            ticket.number)
    for result in (reply, listed):
        body = Message.get_by_id(result.message_id).body
        assert pin not in body and other in body and f"受理号{ticket.number}，查询码******" in body
    notes = [h.note for h in TicketHistory.select().where(TicketHistory.ticket == ticket)]
    assert not [note for note in notes if pin in note]
    assert len([note for note in notes if other in note and "查询码******" in note]) == 2
    assert pins.verify(Ticket.get_by_id(ticket.id), pin)  # the PIN still opens the ticket


def test_a_receipt_quoted_in_mail_not_threaded_to_its_ticket_is_stored_without_its_pin(org_setup, clock, settings,
                                                                                       tmp_path, caplog):
    """Should store mail that is threaded to no ticket but quotes a receipt (a stranger's forward, an .eml
    attachment carrying one, a receipt in an administrator's own wording), and the ticket it becomes, with each
    6-digit run that follows the receipt's wording masked, and no log line holding it; the writer's other
    6-digit numbers, and a number after words no receipt uses, are kept."""
    from channels.models import MessageTemplate

    first = handle(mime(), settings, tmp_path, clock)
    ticket = Ticket.get(Ticket.number == first.ticket)
    receipt = Message.get((Message.direction == "out") & (Message.ticket == ticket)).body
    pin = pin_in(receipt, ticket)
    other = f"{(int(pin) + 1) % 10 ** 6:06d}"  # a number of the writer's own, never the PIN
    english = (f"[12345] Your request is registered: number {ticket.number}, Query\n> code {pin}. "
               f"Text CX{ticket.number} for its status.")
    inner = (f"From: friend@example.org\r\nSubject: receipt\r\nMIME-Version: 1.0\r\n"
             f"Content-Type: text/plain; charset=utf-8\r\n\r\n> {english}\r\n")
    eml = (f"From: stranger2@example.org\r\nTo: 12345@hotline.example\r\nSubject: 附件是回执\r\n"
           f"Message-ID: <s2@example.org>\r\nMIME-Version: 1.0\r\n"
           f'Content-Type: multipart/mixed; boundary="YY"\r\n\r\n--YY\r\n'
           f"Content-Type: text/plain; charset=utf-8\r\n\r\n门牌号{other}的路灯也坏了\r\n--YY\r\n"
           f"Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"receipt.eml\"\r\n\r\n"
           f"{inner}\r\n--YY--\r\n").encode()
    MessageTemplate.create(key="receipt", lang="zh", body="【12345】受理号{{ number }}，查询密码：{{ pin }}。")
    with caplog.at_level("DEBUG"):
        forward = handle(mime(subject="转发一条短信", body=f"灯杆编号{other}坏了。朋友收到的：\n{receipt}",
                              sender="stranger@example.org", msgid="s1@example.org"), settings, tmp_path, clock)
        attached = handle(eml, settings, tmp_path, clock)
        edited = handle(mime(subject="问一下", body=f"受理号{ticket.number}，查询密码： {pin}。编号 {other}",
                             sender="stranger3@example.org", msgid="s3@example.org"), settings, tmp_path, clock)
    assert [r.outcome for r in (forward, attached, edited)] == ["ticket"] * 3
    assert ticket.number not in {forward.ticket, attached.ticket, edited.ticket}
    for result in (forward, attached, edited):
        body = Message.get_by_id(result.message_id).body
        content = Ticket.get(Ticket.number == result.ticket).content
        assert pin not in body and pin not in content and other in body and "******" in body, body
    assert "查询码******" in Message.get_by_id(forward.message_id).body
    assert f"Query\n> code ******" in Message.get_by_id(attached.message_id).body
    assert "查询密码： ******" in Message.get_by_id(edited.message_id).body
    assert pin not in caplog.text


def test_the_receipt_is_read_before_the_write_transaction_and_an_edit_applies_to_the_next_mail(org_setup, clock,
                                                                                                settings, tmp_path, db):
    """Should read the receipt's texts a mail uses (a quoted receipt's wording, the acknowledgement) before its
    write transaction (on SQLite BEGIN IMMEDIATE: a read inside holds the write lock), never inside it, and for
    each mail: a receipt edited in the web UI (channels.templates.save) acknowledges the very next mail, and its
    wording quoted there has the PIN after it masked."""
    from channels import templates
    from channels.models import MessageTemplate
    from tests.integration.webui_caseflow.test_portal_round_trips import commits_counted

    table = f'"{MessageTemplate._meta.table_name}"'
    with commits_counted(db) as (seen, _):
        handle(mime(), settings, tmp_path, clock)
    assert [inside for sql, inside in seen if table in sql] == [False]  # one read, outside the transaction
    templates.save("receipt", "zh", "【12345】受理号{{ number }}，查询密码：{{ pin }}。", "admin")
    result = handle(mime(body="朋友的回执：查询密码：123456。我家也停水", sender="next@example.cn",
                         msgid="m9@example.cn"), settings, tmp_path, clock)
    ticket = Ticket.get(Ticket.number == result.ticket)
    ack = Message.get((Message.direction == "out") & (Message.ticket == ticket))
    assert ack.body.startswith(f"【12345】受理号{ticket.number}，查询密码：") and pin_in(ack.body, ticket)
    assert Message.get_by_id(result.message_id).body == "朋友的回执：查询密码：******。我家也停水"


def test_flood_is_throttled_and_alarmed_once(org_setup, clock, settings, tmp_path):
    """Should take at most HOTLINE_EMAIL_FLOOD_PER_HOUR mails from one sender an hour, hold the rest,
    and alarm the centre once."""
    outcomes = [handle(mime(msgid=f"f{i}@example.cn", body=f"第{i}封"), settings, tmp_path, clock).outcome
                for i in range(8)]
    assert outcomes == ["ticket"] * 5 + ["throttled"] * 3
    assert Ticket.select().count() == 5
    assert Notification.select().where(Notification.kind == "mail_flood").count() == 1
    assert handle(mime(sender="someone@example.cn", msgid="x@e"), settings, tmp_path, clock).outcome == "ticket"


def test_30mb_attachment_is_noted_not_stored(org_setup, clock, settings, tmp_path):
    """Should keep the ticket and a note naming a 30 MB attachment, and store nothing of it."""
    big = b"\x00" * (30 * 1024 * 1024)
    result = handle(mime(parts=[("video.mp4", "video/mp4", big), ("ok.png", "image/png", b"\x89PNG\r\n\x1a\nxx")]),
                    settings, tmp_path, clock)
    ticket = Ticket.get(Ticket.number == result.ticket)
    assert [a.filename for a in Attachment.select().where(Attachment.ticket == ticket)] == ["ok.png"]
    assert any("video.mp4" in n and "过大" in n for n in result.notes)
    assert any("video.mp4" in h.note for h in TicketHistory.select().where(TicketHistory.ticket == ticket))
    assert sum(f.stat().st_size for f in (tmp_path / "att").rglob("*") if f.is_file()) < 1024


def test_zip_bomb_is_stored_never_expanded(org_setup, clock, settings, tmp_path):
    """Should store a zip bomb as the small zip it is (never unpacked)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.bin", b"\x00" * (200 * 1024 * 1024))
    data = buffer.getvalue()
    assert len(data) < 1024 * 1024
    result = handle(mime(parts=[("材料.zip", "application/zip", data)]), settings, tmp_path, clock)
    (att,) = Attachment.select().where(Attachment.ticket == Ticket.get(Ticket.number == result.ticket))
    assert att.size == len(data) and att.content_type == "application/zip"
    files = [f for f in (tmp_path / "att").rglob("*") if f.is_file()]
    assert len(files) == 1 and files[0].stat().st_size == len(data)


def test_html_with_script_is_stored_as_text(org_setup, clock, settings, tmp_path):
    """Should store an HTML-only mail's text without script."""
    raw = (b"From: c@example.cn\r\nSubject: =?utf-8?B?" + base64.b64encode("投诉".encode()) + b"?=\r\n"
           b"Message-ID: <h1@example.cn>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           + "<p>井盖丢了</p><script>fetch('/admin')</script><img src=x onerror=alert(1)>".encode())
    ticket = Ticket.get(Ticket.number == handle(raw, settings, tmp_path, clock).ticket)
    assert "井盖丢了" in ticket.content and "script" not in ticket.content and "fetch" not in ticket.content
    assert "onerror" not in ticket.content


def test_gbk_body_with_wrong_declared_charset(org_setup, clock, settings, tmp_path):
    """Should read a GBK body labelled UTF-8 correctly."""
    raw = (b"From: c@example.cn\r\nSubject: test\r\nMessage-ID: <g1@example.cn>\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           + "小区垃圾三天没人清运".encode("gbk"))
    ticket = Ticket.get(Ticket.number == handle(raw, settings, tmp_path, clock).ticket)
    assert ticket.content == "小区垃圾三天没人清运"


def test_mixed_encoding_subject_and_empty_body(org_setup, clock, settings, tmp_path):
    """Should title a ticket from a subject in mixed encodings and accept an empty body (subject as text)."""
    subject = ("=?gb2312?B?" + base64.b64encode("关于".encode("gb2312")).decode() + "?= "
               "=?utf-8?Q?=E5=99=AA=E9=9F=B3?= noise")
    raw = (f"From: c@example.cn\r\nSubject: {subject}\r\nMessage-ID: <e1@example.cn>\r\n\r\n").encode()
    ticket = Ticket.get(Ticket.number == handle(raw, settings, tmp_path, clock).ticket)
    assert ticket.title == "关于噪音 noise" and ticket.content == "关于噪音 noise"


def test_malformed_mime_still_a_ticket_and_unreadable_refused(org_setup, clock, settings, tmp_path):
    """Should make a ticket of what can be read of broken MIME, and refuse mail with no sender clearly,
    storing nothing."""
    broken = (b'From: c@example.cn\r\nSubject: x\r\nMessage-ID: <b@e>\r\nContent-Type: multipart/mixed; '
              b'boundary="q"\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\n\xe8\xb7\xaf\xe7\x81\xaf\r\n--q\r\n'
              b'Content-Type: application/octet-stream; name=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@')
    assert handle(broken, settings, tmp_path, clock).outcome == "ticket"
    for bad in (b"", b"Subject: no sender\r\n\r\ntext", b"From: not an address\r\n\r\nx"):
        with pytest.raises(MailInputError):
            handle(bad, settings, tmp_path, clock)
    assert Ticket.select().count() == 1 and Message.select().where(Message.direction == "in").count() == 1


def test_result_mail_on_approve_and_agent_mail(org_setup, clock, settings, tmp_path):
    """Should e-mail the approved reply to a citizen who asked for an e-mail answer (threaded to their mail),
    and let an agent send an e-mail from the ticket, recorded in its history; a department user who may
    not write to the ticket is refused."""
    o = org_setup
    mailflow.scan_history(settings, clock)  # cursor at the end
    result = handle(mime(), settings, tmp_path, clock)
    t = Ticket.get(Ticket.number == result.ticket)
    message = mailflow.send_from_ticket(t, "请提供具体位置", o.centre_user, settings=settings, clock=clock)
    assert MailHeader.get(MailHeader.message == message).in_reply_to == "m1@example.cn"
    assert any("请提供具体位置" in h.note for h in TicketHistory.select().where(TicketHistory.ticket == t))
    with pytest.raises(services.TicketInputError):
        mailflow.send_from_ticket(t, "", o.centre_user, settings=settings, clock=clock)
    with pytest.raises((wf.PermissionDenied, services.NotFound)):
        mailflow.send_from_ticket(t, "hi", o.west_user, settings=settings, clock=clock)
    t = services.dispatch(t, o.centre_user, o.east, clock=clock)
    t = services.transition(t, "accept", o.east_user, clock=clock)
    t = services.transition(t, "reply", o.east_user, reply="路灯已修复", clock=clock)
    t = services.transition(t, "approve", o.centre_user, clock=clock)
    assert t.status == wf.APPROVED
    mailflow.scan_history(settings, clock)
    mailflow.scan_history(settings, clock)
    results = list(Message.select().where((Message.purpose == "result") & (Message.channel == "email")))
    assert len(results) == 1 and "路灯已修复" in results[0].body
    assert MailHeader.get(MailHeader.message == results[0]).subject.startswith("Re: [受理号")
