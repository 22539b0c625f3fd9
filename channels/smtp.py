"""The SMTP client the e-mail outbox sends through (stdlib smtplib; STARTTLS/SSL and login as configured).
A connection or temporary (4xx) failure is GatewayDown (the message waits and is tried again), a permanent
(5xx) refusal GatewayRefused (failed, not retried) -- the same contract the Kannel client keeps."""
from __future__ import annotations

import logging
import smtplib
import socket
import ssl

from channels import mail
from channels.kannel import GatewayDown, GatewayRefused
from channels.models import MailHeader, Message
from core.clock import Clock

log = logging.getLogger(__name__)


class SmtpClient:
    """``send(message_id, to, text)`` composes the stored message (subject and thread headers from its
    MailHeader) and hands it to the server; returns the server's answer."""

    def __init__(self, settings, timeout: float = 30.0, clock: Clock | None = None):
        self.settings, self.timeout, self.clock = settings, timeout, clock or Clock()

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.smtp_tls == "ssl":
            server = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=self.timeout,
                                      context=ssl.create_default_context())
        else:
            server = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=self.timeout)
            if s.smtp_tls == "starttls":
                server.starttls(context=ssl.create_default_context())
        if s.smtp_user:
            server.login(s.smtp_user, s.smtp_password)
        return server

    def send(self, message_id: int, to: str, text: str) -> str:
        header = MailHeader.get_or_none(MailHeader.message == message_id)
        if header is None:
            raise GatewayRefused(f"message {message_id} has no mail header")
        raw = mail.compose(sender=self.settings.from_address, to=to, subject=header.subject, text=text,
                           message_id=header.msgid, in_reply_to=header.in_reply_to,
                           references=tuple(header.references.split()), date=self.clock.now())
        try:
            server = self._connect()
        except smtplib.SMTPAuthenticationError as error:
            raise GatewayDown(f"SMTP login refused: {error.smtp_code}") from None
        except (OSError, smtplib.SMTPException) as error:
            raise GatewayDown(f"SMTP server not reachable: {error}") from None
        try:
            refused = server.sendmail(self.settings.from_address, [to], raw)
        except smtplib.SMTPRecipientsRefused as error:
            code, answer = next(iter(error.recipients.values()))
            raise (GatewayRefused if 500 <= code < 600 else GatewayDown)(f"{code} {answer!r}"[:200]) from None
        except smtplib.SMTPResponseException as error:
            kind = GatewayRefused if 500 <= error.smtp_code < 600 else GatewayDown
            raise kind(f"{error.smtp_code} {error.smtp_error!r}"[:200]) from None
        except (OSError, smtplib.SMTPException, socket.timeout) as error:
            raise GatewayDown(f"SMTP: {error}") from None
        finally:
            try:
                server.quit()
            except (OSError, smtplib.SMTPException):
                server.close()
        if refused:
            raise GatewayRefused(f"refused: {refused}"[:200])
        return f"250 <{header.msgid}>"
