"""The channels as running parts hotline.product wires: SMS (settings, the Kannel client and, in development,
Kannel itself with fakesmsc under var/kannel, the outbox, the job that moves everything along) and e-mail
(the IMAP reader, the SMTP outbox round)."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Optional

from channels import kannel, mailflow, notices
from channels.outbox import Outbox
from channels.settings import SmsSettings
from core.clock import Clock
from core.db import database
from core.ports import retry_in_use

log = logging.getLogger(__name__)


class SmsChannel:
    """``tick()`` does one round: queue notices from the ticket history and IVR material requests, then send
    what is due. ``register(scheduler)`` runs it every HOTLINE_SMS_POLL_SECONDS."""

    def __init__(self, settings: SmsSettings, clock: Optional[Clock] = None, var_dir: Optional[Path] = None,
                 client: Optional[kannel.KannelClient] = None):
        self.settings, self.clock, self.var_dir = settings, clock or Clock(), var_dir
        self.runner: Optional[kannel.KannelRunner] = None
        self.client = client
        self.outbox: Optional[Outbox] = None
        self._recovered = False

    @classmethod
    def from_config(cls, config, clock: Optional[Clock] = None) -> "SmsChannel":
        return cls(SmsSettings.from_config(config), clock=clock, var_dir=Path(config.var_dir))

    def start_gateway(self, app_url: str = "") -> None:
        """Connect to the configured Kannel, or start one with fakesmsc (HOTLINE_SMS_KANNEL=spawn).
        ``app_url``: where the web server really listens (its port may be chosen at start)."""
        if app_url and not self.settings.app_url_given:
            self.settings = dataclasses.replace(self.settings, dlr_base=app_url.rstrip("/"))
        s = self.settings
        if self.client is None and s.kannel == "external":
            self.client = kannel.KannelClient(s.gateway, s.user, s.password, dlr_url=self.dlr_url)
        elif self.client is None and s.kannel == "spawn":
            missing = kannel.binaries_missing()
            if missing:
                log.warning("SMS: Kannel not installed (%s missing): messages stay queued", ", ".join(missing))
                return
            # Other free ports for each try: one found free may be another process's by the time a box binds it.
            self.runner = retry_in_use(lambda: kannel.KannelRunner(kannel.KannelSettings.free_ports(
                inbound_url=f"{s.dlr_base}/sms/inbound", secret=s.secret), self.var_dir / "kannel").start())
            ks = self.runner.settings
            self.client = kannel.KannelClient(ks.sendsms_url, ks.sendsms_user, ks.sendsms_password,
                                              dlr_url=self.dlr_url)
            log.info("SMS: development Kannel with fakesmsc on sendsms %s (log under %s)", ks.sendsms_url,
                     self.var_dir / "kannel")
        if self.client is not None:
            self.outbox = Outbox(self.client.send, s, clock=self.clock,
                                 on_sent=lambda m: notices.after_sent(m, self.clock),
                                 on_failed=lambda m: notices.after_failed(m, self.clock))

    @property
    def dlr_url(self) -> str:
        return f"{self.settings.dlr_base}/sms/dlr?secret={self.settings.secret}"

    def tick(self) -> dict:
        """One round (inside a database connection)."""
        notices.scan_history(self.settings, self.clock)
        notices.queue_material(self.settings, self.clock)
        if self.outbox is None:
            return {}
        if not self._recovered:
            self.outbox.recover()
            self._recovered = True
        return self.outbox.run_once()

    def register(self, scheduler) -> None:
        def run():
            # A failing round is logged by the scheduler (core.jobguard: once per database outage); the next
            # round tries again.
            with database.connection_context():
                self.tick()
        run.__name__ = "channels_sms"
        scheduler.add_job(run, "interval", seconds=self.settings.poll_seconds, id="channels.sms",
                          replace_existing=True, max_instances=1, coalesce=True)

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
            self.runner = None


class EmailChannel:
    """The e-mail channel: the IMAP reader (a greenlet, or a thread in tests) turning mail into tickets,
    and a round every few seconds that queues notices and sends the e-mail outbox through SMTP. Off, logged
    once, when no mail server is configured."""

    def __init__(self, settings, attachments_root: Path, clock: Optional[Clock] = None, smtp=None):
        from channels.smtp import SmtpClient

        self.settings, self.attachments_root, self.clock = settings, Path(attachments_root), clock or Clock()
        self.outbox: Optional[Outbox] = None
        if settings.outbound:
            client = smtp or SmtpClient(settings, clock=self.clock)
            self.outbox = Outbox(client.send, settings, clock=self.clock, channel="email",
                                 on_sent=lambda m: notices.after_sent(m, self.clock),
                                 on_failed=lambda m: mailflow.after_failed(m, self.clock))
        self._recovered = False
        self._stop = None
        self._reader_task = None

    @classmethod
    def from_config(cls, config, clock: Optional[Clock] = None) -> "EmailChannel":
        from channels.settings import EmailSettings

        return cls(EmailSettings.from_config(config), Path(config.attachments_dir), clock=clock)

    def handle(self, raw: bytes, truncated: bool = False):
        """One fetched mail, on the connection of the reader's pass, or on one of its own when none is open.

        A connection per mail cost more than the mail's own statements on SQLite: closing the last connection
        checkpoints the WAL (a third of the intake's time in a profile of 500 mails)."""
        if database.is_closed():
            with database.connection_context():
                return self._handle(raw, truncated)
        return self._handle(raw, truncated)

    def _handle(self, raw: bytes, truncated: bool):
        return mailflow.handle_mail(raw, settings=self.settings, attachments_root=self.attachments_root,
                                    clock=self.clock, truncated=truncated)

    def reader(self):
        """The IMAP reader, with one database connection for each pass (closed at its end, failed or not)."""
        from channels.imap import MailReader

        return MailReader(self.settings, self.handle, connection=database.connection_context)

    def tick(self) -> dict:
        """One round (inside a database connection): notices, material requests, the outbox."""
        mailflow.scan_history(self.settings, self.clock)
        if self.outbox is None:
            return {}
        mailflow.queue_material(self.settings, self.clock)
        if not self._recovered:
            self.outbox.recover()
            self._recovered = True
        return self.outbox.run_once()

    def start(self, scheduler, spawn) -> None:
        """Start reading the mailbox with ``spawn`` (gevent.spawn) and schedule the sending round."""
        s = self.settings
        if not s.enabled:
            log.info("e-mail channel off: no HOTLINE_EMAIL_IMAP_HOST / HOTLINE_EMAIL_SMTP_HOST configured")
            return
        if s.inbound:
            import threading

            self._stop = threading.Event()
            self._reader_task = spawn(self.reader().run, self._stop)
            log.info("e-mail: reading %s@%s:%s folder %s (processed mail moved to %s)", s.imap_user, s.imap_host,
                     s.imap_port, s.imap_folder, s.done_folder)
        if s.outbound:
            def run():
                with database.connection_context():  # failures: as the SMS round's
                    self.tick()
            run.__name__ = "channels_email"
            scheduler.add_job(run, "interval", seconds=2, id="channels.email", replace_existing=True,
                              max_instances=1, coalesce=True)
            log.info("e-mail: sending through %s:%s (%s) as %s", s.smtp_host, s.smtp_port, s.smtp_tls,
                     s.from_address)

    def stop(self, timeout: float = 5.0) -> None:
        if self._stop is not None:
            self._stop.set()
        task, self._reader_task = self._reader_task, None
        if task is not None and hasattr(task, "join"):
            task.join(timeout)
