"""Reading the hotline's mailbox over IMAP (imapclient): every mail in the inbox folder is handed to
``handle(raw, truncated)`` and then flagged \\Seen and moved to the done folder, so a restart never reads it
again. A crash between the two leaves the mail in the inbox; reading it again is recognised as a duplicate
(channels.mailflow) and it is only moved. A mail whose attachments cannot be stored (the disk is full:
StorageFull, whose alarm the storage raised) is left in the inbox unread, nothing of it kept, and read
again on the next pass; the other mail of the pass is read meanwhile. IDLE waits for new mail where the
server offers it, polling otherwise; every wait has a timeout. Runs in a greenlet (imapclient's sockets are
gevent-patched). ``connection`` is entered around each pass (the e-mail channel's database connection: one per
pass, not one per mail)."""
from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from typing import Callable, ContextManager, Optional

import imapclient
from imapclient.exceptions import IMAPClientError

from caseflow.attachments import StorageFull
from channels.mail import MailInputError

log = logging.getLogger(__name__)

BATCH = 50


class MailReader:
    """One IMAP connection to the configured mailbox; ``run_once()`` reads everything waiting,
    ``run(stop)`` keeps reading until ``stop`` is set, reconnecting after failures."""

    def __init__(self, settings, handle: Callable[[bytes, bool], object], timeout: float = 60.0,
                 connection: Callable[[], ContextManager] = contextlib.nullcontext):
        self.settings, self.handle, self.timeout, self.connection = settings, handle, timeout, connection
        self.client: Optional[imapclient.IMAPClient] = None
        self.failures = 0

    # -- connection
    def connect(self) -> imapclient.IMAPClient:
        s = self.settings
        context = ssl.create_default_context() if s.imap_tls != "none" else None
        client = imapclient.IMAPClient(s.imap_host, port=s.imap_port, ssl=s.imap_tls == "ssl",
                                       ssl_context=context, timeout=self.timeout)
        if s.imap_tls == "starttls":
            client.starttls(context)
        client.login(s.imap_user, s.imap_password)
        if not client.folder_exists(s.done_folder):
            client.create_folder(s.done_folder)
        client.select_folder(s.imap_folder)
        self.client = client
        return client

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.logout()
            except (IMAPClientError, OSError):
                pass
            self.client = None

    # -- reading
    def run_once(self) -> int:
        """Read and file every mail now in the inbox folder; returns how many were handled (a mail left
        for the next pass, its attachments not storable, is not counted)."""
        client = self.client or self.connect()
        client.noop()  # the server tells the selected folder's new mail on a command like this
        with self.connection():
            return self._read_all(client)

    def _read_all(self, client) -> int:
        handled = 0
        held: set[int] = set()  # left in the inbox for the next pass
        while True:
            uids = [uid for uid in client.search(["NOT", "DELETED"]) if uid not in held][:BATCH]
            if not uids:
                if held:
                    log.warning("%d mail(s) left in %s for the next pass: their attachments could not be "
                                "stored (disk full)", len(held), self.settings.imap_folder)
                return handled
            sizes = client.fetch(uids, ["RFC822.SIZE"])
            for uid in uids:
                size = sizes.get(uid, {}).get(b"RFC822.SIZE", 0)
                truncated = size > self.settings.max_message_bytes
                part = b"BODY.PEEK[HEADER]" if truncated else b"BODY.PEEK[]"
                data = client.fetch([uid], [part]).get(uid, {})
                raw = data.get(b"BODY[HEADER]" if truncated else b"BODY[]", b"") or b""
                try:
                    self.handle(raw, truncated)
                except StorageFull:
                    # Nothing of it was kept (the transaction rolled back, the files removed) and BODY.PEEK
                    # left it unread: on the server it waits for room on the disk.
                    held.add(uid)
                    continue
                except MailInputError as error:  # unreadable: filed with the rest, kept on the server
                    log.warning("mail uid %s not readable (%s): moved to %s", uid, error,
                                self.settings.done_folder)
                # Anything else (the database away) propagates: the mail stays in the inbox for the next try.
                self._file(client, uid)
                handled += 1

    def _file(self, client, uid) -> None:
        client.add_flags([uid], [imapclient.SEEN])
        if client.has_capability("MOVE"):
            client.move([uid], self.settings.done_folder)
        else:
            client.copy([uid], self.settings.done_folder)
            client.delete_messages([uid])
            client.expunge([uid]) if client.has_capability("UIDPLUS") else client.expunge()

    def wait(self, stop: threading.Event) -> None:
        """Until new mail may be there: IDLE (re-issued every poll period) or one poll period."""
        client = self.client
        if client is not None and client.has_capability("IDLE"):
            client.idle()
            try:
                client.idle_check(timeout=self.settings.poll_seconds)
            finally:
                client.idle_done()
        else:
            stop.wait(self.settings.poll_seconds)

    def run(self, stop: threading.Event) -> None:
        """Read, wait, read ... until ``stop`` is set; after a failure reconnect with a growing pause."""
        while not stop.is_set():
            try:
                self.run_once()
                self.failures = 0
                self.wait(stop)
            except (IMAPClientError, OSError, ssl.SSLError) as error:
                self.failures += 1
                log.warning("IMAP %s:%s: %s (retry in %ss)", self.settings.imap_host, self.settings.imap_port,
                            error, min(300, 5 * self.failures))
                self.close()
                stop.wait(min(300, 5 * self.failures))
            except Exception:  # noqa: BLE001 - e.g. the database away: logged, the mail waits on the server
                self.failures += 1
                log.exception("reading mail failed (retry in %ss)", min(300, 5 * self.failures))
                self.close()
                stop.wait(min(300, 5 * self.failures))
        self.close()
