"""The e-mail channel against real servers started by the tests: Dovecot (IMAP, Debian dovecot-imapd) as the
hotline's mailbox and aiosmtpd as the provider's SMTP server. Skipped, saying why, without Dovecot."""
from __future__ import annotations

import base64
import email
import errno
import os
import smtplib
import socket
import subprocess
import threading
from pathlib import Path

import imapclient
import pytest

from caseflow.models import Attachment, Ticket
from channels.mail import parse
from channels.models import MailHeader, Message
from channels.service import EmailChannel
from tests.integration.caseflow.conftest import clock, org_setup  # noqa: F401 - fixtures reused
from tests.integration.channels.mailservers import (PASSWORD, USER, dovecot, make_settings,  # noqa: F401
                                                    smtp_provider)
from tests.pin_check import pin_in


def citizen_mail(n: int, subject="路灯不亮", extra="", body=None) -> bytes:
    text = body or f"第{n}封：东区一街道路灯坏了"
    return (f"From: =?utf-8?B?{base64.b64encode('市民'.encode()).decode()}?= <c{n % 3}@example.cn>\r\n"
            f"To: 12345@hotline.example\r\nSubject: =?gbk?B?{base64.b64encode(subject.encode('gbk')).decode()}?=\r\n"
            f"Date: Wed, 4 Mar 2026 10:00:00 +0800\r\nMessage-ID: <n{n}@example.cn>\r\n{extra}"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=gbk\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            ).encode() + base64.encodebytes(text.encode("gbk"))


def imap(dovecot):
    client = imapclient.IMAPClient("127.0.0.1", port=dovecot.port, ssl=False, timeout=10)
    client.login(USER, PASSWORD)
    return client


def folder_count(dovecot, folder: str) -> int:
    client = imap(dovecot)
    try:
        return client.folder_status(folder, ["MESSAGES"])[b"MESSAGES"] if client.folder_exists(folder) else 0
    finally:
        client.logout()


@pytest.fixture
def channel(tmp_path, dovecot, smtp_provider, clock):
    settings = make_settings(tmp_path, dovecot=dovecot, smtp=smtp_provider, HOTLINE_EMAIL_FLOOD_PER_HOUR="50",
                             HOTLINE_EMAIL_POLL_SECONDS="2")
    return EmailChannel(settings, tmp_path / "att", clock=clock)


def test_the_mail_servers_start_on_another_port_when_theirs_was_taken(tmp_path, monkeypatch):
    """Should start Dovecot and the SMTP provider on the next free port when the first they were given was taken
    by another process before they bound it (tests.ports.retry_in_use), and answer there."""
    from tests.integration.channels import mailservers
    from tests.ports import free_port

    if mailservers.dovecot_missing():
        pytest.skip(mailservers.dovecot_missing())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = [taken.getsockname()[1], taken.getsockname()[1]]  # each server's first try: the taken port
        monkeypatch.setattr(mailservers, "free_port", lambda: ports.pop() if ports else free_port())
        server = mailservers.Dovecot(tmp_path / "dovecot").start()
        try:  # Dovecot stopped whatever the SMTP provider's start does
            provider = mailservers.SmtpProvider().start()
            try:
                assert taken.getsockname()[1] not in (server.port, provider.port) and not ports
                imap(server).logout()
                with smtplib.SMTP("127.0.0.1", provider.port, timeout=10) as client:
                    assert client.noop()[0] == 250
            finally:
                provider.stop()
        finally:
            server.stop()


def test_mail_in_dovecot_becomes_tickets_filed_once(org_setup, channel, dovecot):
    """Should turn every mail in the inbox into one ticket, flag and move it to the done folder, read
    nothing twice on the next round, and make no second ticket when a filed mail comes back."""
    for n in range(3):
        dovecot.deliver(citizen_mail(n))
    reader = channel.reader()
    assert reader.run_once() == 3
    assert Ticket.select().where(Ticket.channel == "email").count() == 3
    assert folder_count(dovecot, "INBOX") == 0 and folder_count(dovecot, "Processed") == 3
    assert reader.run_once() == 0
    client = imap(dovecot)  # the same mail again (a restart before the move, or delivered twice)
    client.append("INBOX", citizen_mail(1))
    client.select_folder("Processed")
    flags = client.get_flags(client.search())
    client.logout()
    assert all(imapclient.SEEN in f for f in flags.values())
    assert reader.run_once() == 1
    reader.close()
    assert Ticket.select().count() == 3
    titles = {t.title for t in Ticket.select()}
    assert titles == {"路灯不亮"}


def test_a_pass_reads_its_mail_on_one_database_connection(org_setup, channel, dovecot, monkeypatch):
    """Should read every mail of a pass on one database connection, not connect again for each mail (closing
    a SQLite connection cost as much as half the mail's own statements), and leave none open after it."""
    from core.db import database

    opened = []
    connect = database.obj._connect
    monkeypatch.setattr(database.obj, "_connect", lambda: opened.append(1) or connect())
    database.close()
    for n in range(5):
        dovecot.deliver(citizen_mail(n))
    reader = channel.reader()
    assert reader.run_once() == 5
    reader.close()
    assert len(opened) == 1 and database.is_closed()
    assert Ticket.select().where(Ticket.channel == "email").count() == 5


def test_idle_wakes_the_reader(org_setup, channel, dovecot):
    """Should pick up a mail delivered while the reader waits in IDLE, and stop when told."""
    handled = threading.Event()
    inner = channel.handle

    def handle(raw, truncated=False):
        result = inner(raw, truncated)
        handled.set()
        return result

    channel.handle = handle
    reader = channel.reader()
    reader.settings = channel.settings
    stop = threading.Event()
    reader.connect()
    assert reader.client.has_capability("IDLE")
    worker = threading.Thread(target=reader.run, args=(stop,), daemon=True)
    worker.start()
    client = imap(dovecot)  # delivered over IMAP by another session while the reader idles
    client.append("INBOX", citizen_mail(7, subject="井盖丢失"))
    client.logout()
    assert handled.wait(20), dovecot.log()[-2000:]
    stop.set()
    worker.join(20)
    assert not worker.is_alive()
    assert Ticket.get(Ticket.channel == "email").title == "井盖丢失"


def test_acknowledgement_sent_by_smtp_and_answer_threads_back(org_setup, channel, dovecot, smtp_provider):
    """Should send the acknowledgement through the SMTP server with the number, its Message-ID recorded,
    and thread the citizen's answer to it (through Dovecot again) to the same ticket."""
    dovecot.deliver(citizen_mail(1))
    reader = channel.reader()
    reader.run_once()
    assert channel.tick()["sent"] == 1
    ((mail_from, rcpts, data),) = smtp_provider.wait_for(1)
    ticket = Ticket.get(Ticket.channel == "email")
    sent = parse(data)
    assert rcpts == ["c1@example.cn"] and mail_from == "12345@hotline.example"
    assert ticket.number in sent.text and pin_in(sent.text, ticket) and ticket.number in sent.subject
    assert sent.in_reply_to == "n1@example.cn"
    out = Message.get((Message.direction == "out") & (Message.channel == "email"))
    assert out.status == "sent" and MailHeader.get(MailHeader.message == out).msgid == sent.message_id
    pin = pin_in(sent.text, ticket)
    assert pin not in out.body and ticket.number in out.body and "******" in out.body  # the PIN left only by mail
    answer = citizen_mail(1, subject="Re: 回执", body="补充：路灯编号A7",
                          extra=f"In-Reply-To: <{sent.message_id}>\r\nReferences: <{sent.message_id}>\r\n")
    dovecot.deliver(answer.replace(b"<n1@example.cn>", b"<n1b@example.cn>"))
    reader.run_once()
    reader.close()
    assert Ticket.select().count() == 1
    assert Message.get(Message.provider_id.contains("mail:") & (Message.id != out.id)
                       & (Message.body.contains("A7"))).ticket_id == ticket.id
    assert channel.tick() == {"sent": 0, "retry": 0, "failed": 0, "waiting": 0}  # no acknowledgement to an answer


def test_refused_and_unreachable_provider(org_setup, channel, dovecot, smtp_provider):
    """Should fail a mail the provider refuses for good (550), and keep one queued for a retry while the
    provider is down."""
    dovecot.deliver(citizen_mail(1))
    dovecot.deliver(citizen_mail(2))
    reader = channel.reader()
    reader.run_once()
    reader.close()
    smtp_provider.refuse = "550 5.1.1 mailbox unavailable"
    counts = channel.tick()
    assert counts["failed"] == 2
    assert {m.status for m in Message.select().where(Message.direction == "out")} == {"failed"}
    from channels import mailflow
    t = Ticket.get(Ticket.citizen_email == "c1@example.cn")
    smtp_provider.stop()
    message = mailflow.send_from_ticket(t, "请补充照片", org_setup.centre_user, settings=channel.settings,
                                       clock=channel.clock)
    assert channel.tick()["retry"] == 1
    assert Message.get_by_id(message.id).status == "queued" and "not reachable" in Message.get_by_id(message.id).error


def test_material_request_by_email_sent_for_real(org_setup, channel, smtp_provider):
    """Should e-mail an IVR material request from the reviewed knowledge answer and mark it sent only once
    the provider took it; a request with no usable address is failed."""
    from caseflow import knowledge
    from caseflow.models import MaterialRequest
    knowledge.create_item("社保卡补办", "携带身份证到社保中心补办。", review_state="approved")
    req = MaterialRequest.create(caller="13800000010", topic="社保卡", channel="email", address="li@example.cn")
    bad = MaterialRequest.create(caller="13800000010", topic="社保卡", channel="email", address="not-an-address")
    channel.tick()
    ((_from, rcpts, data),) = smtp_provider.wait_for(1)
    assert rcpts == ["li@example.cn"] and "身份证" in parse(data).text
    assert MaterialRequest.get_by_id(req.id).status == "sent"
    assert MaterialRequest.get_by_id(bad.id).status == "failed"
    assert email.message_from_bytes(data)["Auto-Submitted"] == "auto-generated"


def test_oversized_mail_read_by_headers_only(org_setup, tmp_path, dovecot, clock):
    """Should make a ticket from the headers of a mail over HOTLINE_EMAIL_MAX_MESSAGE_MB, saying the body
    was not read, without fetching it."""
    settings = make_settings(tmp_path, dovecot=dovecot, HOTLINE_EMAIL_MAX_MESSAGE_MB="1")
    channel = EmailChannel(settings, tmp_path / "att", clock=clock)
    dovecot.deliver(citizen_mail(1, body="很长" * 600_000))
    reader = channel.reader()
    assert reader.run_once() == 1
    reader.close()
    ticket = Ticket.get(Ticket.channel == "email")
    assert "未收取" in ticket.content and "很长很长" not in ticket.content
    assert Attachment.select().count() == 0


@pytest.fixture
def full_attachments_disk(tmp_path, monkeypatch):
    """(attachments folder on a full disk, make_room()). As root a real 2 MB tmpfs filled to its last block;
    otherwise the storage's writes get ENOSPC (injected where the attachment is written) until make_room()."""
    from tests.integration.recorder.test_disk_full import _fill

    disk = tmp_path / "small-disk"
    disk.mkdir()
    if os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                                            capture_output=True).returncode == 0:
        try:
            (disk / "att").mkdir()
            filler = _fill(disk)
            yield disk / "att", filler.unlink
        finally:
            subprocess.run(["umount", "-l", str(disk)], check=False)
        return
    real_open = Path.open
    full = {"on": True}

    def open_on_full_disk(path, mode="r", *args, **kwargs):
        if full["on"] and "w" in mode and str(path).startswith(str(disk)):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)
    monkeypatch.setattr(Path, "open", open_on_full_disk)
    yield disk / "att", lambda: full.update(on=False)


def test_mail_whose_attachment_finds_the_disk_full_waits_on_the_server(org_setup, tmp_path, dovecot, clock,
                                                                      alarms, full_attachments_disk):
    """Should, with the attachments' disk full: leave a mail with an attachment in the inbox unread (no
    ticket, no message row, nothing on the disk), raise the storage_full alarm, and still file the plain mail
    of the same pass; read it again on the next pass (still waiting while the disk is full) and file it whole
    with its attachment once there is room."""
    from ops.models import SystemAlarm

    folder, make_room = full_attachments_disk
    settings = make_settings(tmp_path, dovecot=dovecot)
    channel = EmailChannel(settings, folder, clock=clock)
    photo = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 200  # 51 KB: more than the full disk has
    with_photo = (
        "From: c1@example.cn\r\nTo: 12345@hotline.example\r\nSubject: photo\r\nMessage-ID: <photo@example.cn>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="XX"\r\n\r\n--XX\r\n'
        "Content-Type: text/plain; charset=utf-8\r\n\r\nroad lamp broken, photo attached\r\n--XX\r\n"
        "Content-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="lamp.jpg"\r\n\r\n').encode() \
        + base64.encodebytes(photo) + b"--XX--\r\n"
    dovecot.deliver(with_photo)
    dovecot.deliver(citizen_mail(2))
    reader = channel.reader()
    try:
        assert reader.run_once() == 1  # the plain mail; the other waits
        assert [t.title for t in Ticket.select()] == ["路灯不亮"]
        assert Message.select().where(Message.direction == "in").count() == 1  # nothing of the waiting one
        assert folder_count(dovecot, "INBOX") == 1 and folder_count(dovecot, "Processed") == 1
        client = imap(dovecot)
        client.select_folder("INBOX", readonly=True)
        [flags] = client.get_flags(client.search()).values()
        client.logout()
        assert imapclient.SEEN not in flags
        assert not [p for p in folder.rglob("*") if p.is_file()]
        alarm = SystemAlarm.get(SystemAlarm.kind == "storage_full")
        assert "left in the mailbox" in alarm.text and alarm.subject == "attachments"
        assert alarm.severity == "critical"
        assert reader.run_once() == 0 and folder_count(dovecot, "INBOX") == 1  # still full: still waiting
        make_room()
        assert reader.run_once() == 1
    finally:
        reader.close()
    assert folder_count(dovecot, "INBOX") == 0 and folder_count(dovecot, "Processed") == 2
    ticket = Ticket.get(Ticket.title == "photo")
    (att,) = Attachment.select().where(Attachment.ticket == ticket)
    assert att.filename == "lamp.jpg" and att.size == len(photo)
