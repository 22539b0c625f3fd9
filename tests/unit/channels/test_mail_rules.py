"""Pure e-mail rules: charsets, encodings, HTML, attachment names, forwarded mail, automated mail, threading."""
from __future__ import annotations

import base64
import quopri

import pytest

from channels import mail


def raw(headers: str, body: bytes) -> bytes:
    return headers.replace("\n", "\r\n").encode("utf-8") + b"\r\n\r\n" + body


def b64(text: str, charset: str) -> str:
    return base64.b64encode(text.encode(charset)).decode()


def test_gbk_body_base64_and_gb2312_subject():
    """Should read a GBK body in base64 and a GB2312-encoded subject."""
    body = base64.encodebytes("小区门口路灯坏了三天，镕（GBK独有字）。".encode("gbk"))
    subject = f"=?gb2312?B?{b64('路灯不亮', 'gb2312')}?="
    parsed = mail.parse(raw(f"From: =?gb2312?B?{b64('张三', 'gb2312')}?= <zhang@example.cn>\nSubject: {subject}\n"
                            "Message-ID: <a1@example.cn>\nContent-Type: text/plain; charset=gb2312\n"
                            "Content-Transfer-Encoding: base64", body))
    assert parsed.subject == "路灯不亮"
    assert parsed.sender == "zhang@example.cn" and parsed.sender_name == "张三"
    assert "镕" in parsed.text and "路灯坏了" in parsed.text  # gb2312 label read as GB18030
    assert parsed.message_id == "a1@example.cn"


def test_utf8_quoted_printable_and_gb18030():
    """Should read UTF-8 quoted-printable and GB18030 bodies."""
    qp = quopri.encodestring("噪音扰民，晚上十一点还在施工。".encode("utf-8"))
    parsed = mail.parse(raw("From: a@example.cn\nSubject: hi\nContent-Type: text/plain; charset=utf-8\n"
                            "Content-Transfer-Encoding: quoted-printable", qp))
    assert parsed.text == "噪音扰民，晚上十一点还在施工。"
    parsed = mail.parse(raw("From: a@example.cn\nSubject: hi\nContent-Type: text/plain; charset=gb18030\n"
                            "Content-Transfer-Encoding: base64", base64.encodebytes("𠀀生僻字".encode("gb18030"))))
    assert parsed.text == "𠀀生僻字"


def test_wrong_declared_charset():
    """Should read a GBK body declared as UTF-8 (and UTF-8 declared as GB2312) without mojibake or errors."""
    parsed = mail.parse(raw("From: a@example.cn\nSubject: x\nContent-Type: text/plain; charset=utf-8\n"
                            "Content-Transfer-Encoding: 8bit", "垃圾清运不及时".encode("gbk")))
    assert parsed.text == "垃圾清运不及时"
    parsed = mail.parse(raw("From: a@example.cn\nSubject: x\nContent-Type: text/plain; charset=gb2312\n"
                            "Content-Transfer-Encoding: 8bit", "ÿ垃圾清运🚮".encode("utf-8")))
    assert parsed.text == "ÿ垃圾清运🚮"
    parsed = mail.parse(raw("From: a@example.cn\nSubject: x\nContent-Type: text/plain; charset=no-such-charset\n"
                            "Content-Transfer-Encoding: 8bit", "投诉".encode("utf-8")))
    assert parsed.text == "投诉"


def test_mixed_encoding_subject():
    """Should decode a subject mixing GB2312, UTF-8 (Q) and plain words, and survive a broken word."""
    subject = (f"=?gb2312?B?{b64('关于', 'gb2312')}?= =?utf-8?Q?=E5=99=AA=E9=9F=B3?= complaint "
               f"=?gbk?B?{b64('投诉', 'gbk')}?=")
    assert mail.decode_words(subject) == "关于噪音 complaint 投诉"
    assert mail.decode_words("=?utf-8?B?!!!notbase64?= tail")  # no exception, something readable
    assert mail.decode_words("=?x-unknown?B?5YWz?=") == "关"  # unknown charset: UTF-8 tried


def test_html_only_mail_is_safe_text():
    """Should turn HTML-only mail into text with no script, style or markup left."""
    html = ("<html><head><style>p{color:red}</style><script>alert('x')</script></head><body>"
            "<p>路灯&nbsp;不亮</p><div>地址：<b>东区</b>一街道</div><img src=x onerror=alert(1)>"
            "<script type='text/javascript'>document.cookie</script><p>谢谢&lt;script&gt;</p></body></html>")
    parsed = mail.parse(raw("From: a@example.cn\nSubject: x\nContent-Type: text/html; charset=utf-8", html.encode()))
    assert "alert" not in parsed.text and "document.cookie" not in parsed.text and "color" not in parsed.text
    assert "<b>" not in parsed.text and "onerror" not in parsed.text
    assert "路灯 不亮" in parsed.text and "地址：东区一街道" in parsed.text
    assert "谢谢<script>" in parsed.text  # the citizen's literal text, escaped when shown


def test_alternative_prefers_plain():
    """Should take the text/plain part of multipart/alternative."""
    body = (b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain text\r\n"
            b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html text</p>\r\n--b--\r\n")
    parsed = mail.parse(raw('From: a@example.cn\nSubject: x\nMIME-Version: 1.0\n'
                            'Content-Type: multipart/alternative; boundary="b"', body))
    assert parsed.text == "plain text"


def test_attachment_names_rfc2231_and_rfc2047():
    """Should decode attachment names written in RFC 2231 (continuations too) and in RFC 2047 words."""
    name2047 = f"=?gb2312?B?{b64('现场照片.jpg', 'gb2312')}?="
    body = ("--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n见附件\r\n"
            "--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
            "Content-Disposition: attachment;\r\n filename*0*=utf-8''%E6%8A%95%E8%AF%89;\r\n"
            " filename*1*=%E6%9D%90%E6%96%99.pdf\r\n\r\n" + base64.b64encode(b"%PDF-1.4 x").decode() + "\r\n"
            "--b\r\nContent-Type: image/jpeg; name=\"" + name2047 + "\"\r\nContent-Transfer-Encoding: base64\r\n"
            "Content-Disposition: attachment; filename=\"" + name2047 + "\"\r\n\r\n"
            + base64.b64encode(b"\xff\xd8\xff\xe0data").decode() + "\r\n--b--\r\n")
    parsed = mail.parse(raw('From: a@example.cn\nSubject: x\nMIME-Version: 1.0\n'
                            'Content-Type: multipart/mixed; boundary="b"', body.encode()))
    assert [a.filename for a in parsed.attachments] == ["投诉材料.pdf", "现场照片.jpg"]
    assert parsed.attachments[0].data == b"%PDF-1.4 x"
    assert parsed.text == "见附件"


def test_forwarded_mail():
    """Should include a forwarded message/rfc822 part's headers, text and attachments."""
    inner = (f"From: =?utf-8?B?{b64('李四', 'utf-8')}?= <li@example.cn>\r\nSubject: =?utf-8?B?{b64('原始投诉', 'utf-8')}?=\r\n"
             "Content-Type: text/plain; charset=gbk\r\nContent-Transfer-Encoding: base64\r\n\r\n"
             + base64.b64encode("楼下饭店油烟很大".encode("gbk")).decode() + "\r\n")
    body = ("--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n请处理下面这封信\r\n"
            "--b\r\nContent-Type: message/rfc822\r\n\r\n" + inner + "--b--\r\n")
    parsed = mail.parse(raw('From: a@example.cn\nSubject: Fwd: x\nMIME-Version: 1.0\n'
                            'Content-Type: multipart/mixed; boundary="b"', body.encode()))
    assert "请处理下面这封信" in parsed.text and "楼下饭店油烟很大" in parsed.text
    assert "原始投诉" in parsed.text and "李四" in parsed.text


@pytest.mark.parametrize("headers,kind", [
    ("Return-Path: <>", "bounce"),
    ("Content-Type: multipart/report; report-type=delivery-status; boundary=x", "bounce"),
    ("Auto-Submitted: auto-replied", "auto_reply"),
    ("X-Autoreply: yes", "auto_reply"),
    ("Precedence: bulk", "list"), ("Precedence: junk", "list"), ("Precedence: list", "list"),
    ("List-Id: <news.example.cn>", "list"),
    ("Auto-Submitted: no", ""),
    ("Return-Path: <a@example.cn>", ""),
])
def test_automated_mail(headers, kind):
    """Should tell bounces, auto-replies and list mail from a person's mail."""
    parsed = mail.parse(raw(f"From: a@example.cn\nSubject: x\n{headers}", b"text"))
    assert parsed.automated == kind


def test_mailer_daemon_is_a_bounce():
    """Should treat mail from MAILER-DAEMON as a bounce."""
    assert mail.parse(raw("From: MAILER-DAEMON@mx.example.cn\nSubject: Undelivered", b"x")).automated == "bounce"


def test_a_bounce_names_the_mail_it_returns_whole():
    """Should read the Message-ID of the mail a delivery report encloses whole (message/rfc822, RFC 3464),
    which is in none of its text, and none for a person who forwards a mail the same way."""
    inner = "From: 12345@hotline.example\r\nMessage-ID: <12345.r1@hotline.example>\r\nSubject: x\r\n\r\nreceipt\r\n"
    body = ("--b\r\nContent-Type: text/plain\r\n\r\nnot delivered\r\n--b\r\nContent-Type: message/delivery-status"
            "\r\n\r\nStatus: 5.1.1\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n" + inner + "--b--\r\n")
    report = 'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"'
    bounce = mail.parse(raw(f"From: MAILER-DAEMON@mx.example.cn\nSubject: Undelivered\n{report}", body.encode()))
    assert bounce.automated == "bounce" and bounce.returned == ("12345.r1@hotline.example",)
    assert "12345.r1@hotline.example" not in bounce.text
    forwarded = mail.parse(raw('From: a@example.cn\nSubject: Fwd: x\nMIME-Version: 1.0\n'
                               'Content-Type: multipart/mixed; boundary="b"', body.encode()))
    assert forwarded.automated == "" and forwarded.returned == ()


def test_same_mail_twice_has_one_key_despite_delivery_headers():
    """Should give one dedupe key to a mail delivered twice (different Received headers), another to a
    different mail reusing the Message-ID."""
    base = "From: a@example.cn\nSubject: x\nDate: Wed, 4 Mar 2026 10:00:00 +0800\nMessage-ID: <m1@example.cn>"
    first = mail.parse(raw("Received: from a by b\n" + base, b"body"))
    second = mail.parse(raw("Received: from c by d\nReceived: from e\n" + base, b"body"))
    other = mail.parse(raw(base, b"another body"))
    assert first.dedupe_key == second.dedupe_key != other.dedupe_key
    assert len(first.dedupe_key) <= 64


def test_threading_ids_and_number():
    """Should read In-Reply-To/References and the acceptance number in a subject."""
    parsed = mail.parse(raw("From: a@example.cn\nSubject: Re: [受理号12345678] 路灯\n"
                            "In-Reply-To: <x@h>\nReferences: <r1@h> <x@h>", b"ok"))
    assert parsed.thread_ids == ("x@h", "r1@h")
    assert mail.acceptance_number(parsed.subject) == "12345678"
    assert mail.acceptance_number("电话 138001380001 和 01234567") == ""


@pytest.mark.parametrize("data", [b"", b"   \r\n", b"no header line at all"])
def test_unreadable_mail(data):
    """Should refuse empty mail and mail without headers with a clear error."""
    with pytest.raises(mail.MailInputError):
        mail.parse(data)


def test_malformed_mime():
    """Should read what it can of broken MIME (no closing boundary, bad base64, missing boundary) without
    raising, listing the defects."""
    broken = mail.parse(raw('From: a@example.cn\nSubject: x\nMIME-Version: 1.0\n'
                            'Content-Type: multipart/mixed; boundary="b"',
                            b"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"
                            b"\r\n5p2l5L+h!!!\r\n--b\r\nContent-Type: application/pdf; name=a.pdf\r\n\r\n%PDF"))
    assert broken.sender == "a@example.cn"
    no_boundary = mail.parse(raw('From: a@example.cn\nSubject: x\nContent-Type: multipart/mixed', b"just text"))
    assert no_boundary.defects
    assert "just text" in no_boundary.text


def test_empty_body():
    """Should read a mail with an empty body as empty text."""
    parsed = mail.parse(raw("From: a@example.cn\nSubject: only a subject", b""))
    assert parsed.text == "" and parsed.subject == "only a subject"


def test_compose_threads_and_marks_automatic():
    """Should compose a UTF-8 mail with Message-ID, In-Reply-To, References and Auto-Submitted, and no
    header injection through the subject."""
    data = mail.compose(sender="12345@hotline.example", to="a@example.cn",
                        subject=mail.header_text("受理回执\r\nBcc: evil@example.cn"), text="您的诉求已受理",
                        message_id="12345.1.ab@hotline.example", in_reply_to="m1@example.cn")
    parsed = mail.parse(data)
    assert parsed.text == "您的诉求已受理" and parsed.in_reply_to == "m1@example.cn"
    assert parsed.message_id == "12345.1.ab@hotline.example" and parsed.automated == "auto_reply"
    assert b"\nBcc:" not in data
    assert mail.reply_subject("回复: Re: 路灯", "12345678") == "Re: [受理号12345678] 路灯"


def test_email_settings_off_by_default_and_checked():
    """Should leave the e-mail channel off without servers, and refuse malformed settings clearly."""
    from channels.settings import EmailSettings
    from core.config import ConfigError, load_config

    def settings(**extra):
        return EmailSettings.from_config(load_config({"mode": "test", "secret_key": "k" * 40, **extra}))

    off = settings()
    assert not off.enabled and not off.inbound and not off.outbound
    on = settings(HOTLINE_EMAIL_IMAP_HOST="imap.example.cn", HOTLINE_EMAIL_IMAP_USER="12345",
                  HOTLINE_EMAIL_SMTP_HOST="smtp.example.cn", HOTLINE_EMAIL_FROM="12345@example.gov.cn")
    assert on.inbound and on.outbound and on.imap_port == 993 and on.smtp_port == 587
    assert on.domain == "example.gov.cn"
    for bad in ({"HOTLINE_EMAIL_IMAP_TLS": "maybe"}, {"HOTLINE_EMAIL_SMTP_PORT": "x"},
                {"HOTLINE_EMAIL_IMAP_HOST": "imap.example.cn"}, {"HOTLINE_EMAIL_SMTP_HOST": "smtp.example.cn"},
                {"HOTLINE_EMAIL_FROM": "a@b.cn\r\nBcc: x@y"}, {"HOTLINE_EMAIL_FLOOD_PER_HOUR": "0"}):
        with pytest.raises(ConfigError):
            settings(**bad)
