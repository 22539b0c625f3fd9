"""Real mail servers for the e-mail tests: Dovecot (Debian dovecot-imapd) on a free 127.0.0.1 port with a
generated configuration, a passwd-file user and a Maildir under the test's directory, and an aiosmtpd SMTP
server in a thread standing in for the provider (it keeps what it is handed). Both start again on another port
when theirs was taken meanwhile (tests.ports.retry_in_use)."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from tests.ports import free_port, retry_in_use

DOVECOT = "/usr/sbin/dovecot"
USER, PASSWORD = "hotline", "mail-test-secret"

CONF = """\
base_dir = {base}/run
state_dir = {base}/state
instance_name = hotline-test-{tag}
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {base}/dovecot.log
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
first_valid_uid = 1
mailbox_idle_check_interval = 1 secs
mail_location = maildir:{base}/mail/%u/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={base}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
protocol imap {{
  mail_max_userip_connections = 50
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
"""


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:  # its log says why (an address in use: started again on another port)
            raise RuntimeError(f"dovecot exited with {proc.returncode}: "
                               f"{log.read_text(errors='replace')[-2000:] if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.05)  # polling a port that is coming up: there is no event to wait on
    raise TimeoutError(f"dovecot did not answer on {port} within {timeout}s")


class Dovecot:
    """One Dovecot instance. As root, Dovecot's own unprivileged users run it (it refuses root for mail and
    login processes) and the mail directory belongs to them; otherwise everything runs as the current user."""

    def __init__(self, base: Path):
        self.base, self.port, self.proc = Path(base), 0, None
        self.own_base = False
        if os.geteuid() == 0:
            # Dovecot's users cannot enter pytest's private (0700) directories: a directory of its own.
            self.base, self.own_base = Path(tempfile.mkdtemp(prefix="hotline-dovecot-")), True
            self.base.chmod(0o755)
            self.internal, self.login = "dovecot", "dovenull"
            self.mail_user = "dovecot"
        else:
            me = pwd.getpwuid(os.geteuid()).pw_name
            self.internal = self.login = self.mail_user = me
        self.mail_uid = pwd.getpwnam(self.mail_user).pw_uid
        self.mail_gid = pwd.getpwnam(self.mail_user).pw_gid

    @property
    def maildir(self) -> Path:
        return self.base / "mail" / USER / "Maildir"

    def start(self) -> "Dovecot":
        return retry_in_use(self._start)

    def _start(self) -> "Dovecot":
        self.port = free_port()
        (self.base / "dovecot.log").unlink(missing_ok=True)  # only this try's lines tell why it failed
        for sub in ("run", "state", "mail"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        group = lambda user: __import__("grp").getgrgid(pwd.getpwnam(user).pw_gid).gr_name  # noqa: E731
        (self.base / "dovecot.conf").write_text(CONF.format(
            base=self.base, tag=uuid.uuid4().hex[:8], internal=self.internal, internal_group=group(self.internal),
            login=self.login, mail_user=self.mail_user, mail_group=group(self.mail_user), port=self.port))
        (self.base / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::\n")
        for sub in ("new", "cur", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        self._own(self.base / "mail")
        self.proc = subprocess.Popen([DOVECOT, "-c", str(self.base / "dovecot.conf"), "-F"],
                                     stdout=subprocess.DEVNULL, stderr=open(self.base / "stderr.log", "wb"))
        try:
            wait_port(self.port, self.proc, self.base / "dovecot.log")
        except BaseException:
            self.stop_process()
            raise
        return self

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            for root, dirs, files in os.walk(path):
                os.chown(root, self.mail_uid, self.mail_gid)
                for name in files:
                    os.chown(os.path.join(root, name), self.mail_uid, self.mail_gid)

    def deliver(self, raw: bytes) -> Path:
        """Put a mail into the inbox as a delivery agent does (Maildir tmp/ then new/)."""
        name = f"{time.time():.6f}.{uuid.uuid4().hex}.test"
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(raw)
        if os.geteuid() == 0:
            os.chown(tmp, self.mail_uid, self.mail_gid)
        target = self.maildir / "new" / name
        os.rename(tmp, target)
        return target

    def stop(self) -> None:
        self.stop_process()
        if self.own_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def stop_process(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log(self) -> str:
        path = self.base / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def dovecot_missing() -> str:
    if not os.access(DOVECOT, os.X_OK) or not shutil.which("doveconf"):
        return "Dovecot not installed: apt-get install dovecot-imapd (scripts/setup-system.sh does)"
    return ""


class SmtpProvider:
    """aiosmtpd in a thread: the mail provider the hotline sends through; ``received`` holds
    (envelope sender, recipients, bytes) and ``wait_for(n)`` waits for n mails. ``refuse`` answers every
    recipient with that SMTP reply instead."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.received: list[tuple[str, list[str], bytes]] = []
        self.cond = threading.Condition()
        self.refuse = ""
        provider = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if provider.refuse:
                    return provider.refuse
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                with provider.cond:
                    provider.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
                    provider.cond.notify_all()
                return "250 Message accepted for delivery"

        self._controller = lambda: Controller(Handler(), hostname="127.0.0.1", port=free_port())
        self.controller = None

    @property
    def port(self) -> int:
        return self.controller.port

    def start(self) -> "SmtpProvider":
        self.controller = retry_in_use(self._started)
        return self

    def _started(self):
        controller = self._controller()  # one a try: a controller whose start failed cannot start again
        controller.start()
        return controller

    def stop(self) -> None:
        if self.controller is not None and self.controller.loop.is_running():
            self.controller.stop()

    def wait_for(self, count: int, timeout: float = 10.0) -> list:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.received) >= count, timeout):
                raise TimeoutError(f"{len(self.received)} mails received, {count} expected")
            return list(self.received)


# ---- fixtures (imported by the e-mail test modules) ---------------------------------------------------
import pytest  # noqa: E402


@pytest.fixture
def dovecot(tmp_path):
    reason = dovecot_missing()
    if reason:
        pytest.skip(reason)
    server = Dovecot(tmp_path / "dovecot").start()
    yield server
    server.stop()


@pytest.fixture
def smtp_provider():
    provider = SmtpProvider().start()
    yield provider
    provider.stop()


def email_config(tmp_path, **extra):
    from core.config import load_config

    values = {"mode": "test", "var_dir": str(tmp_path / "var"), "secret_key": "k" * 40,
              "HOTLINE_EMAIL_FROM": "12345@hotline.example", "HOTLINE_EMAIL_FLOOD_PER_HOUR": "5"}
    values.update(extra)
    return load_config(values)


def make_settings(tmp_path, dovecot=None, smtp=None, **extra):
    from channels.settings import EmailSettings

    if dovecot is not None:
        extra.update(HOTLINE_EMAIL_IMAP_HOST="127.0.0.1", HOTLINE_EMAIL_IMAP_PORT=str(dovecot.port),
                     HOTLINE_EMAIL_IMAP_USER=USER, HOTLINE_EMAIL_IMAP_PASSWORD=PASSWORD,
                     HOTLINE_EMAIL_IMAP_TLS="none")
    if smtp is not None:
        extra.update(HOTLINE_EMAIL_SMTP_HOST="127.0.0.1", HOTLINE_EMAIL_SMTP_PORT=str(smtp.port),
                     HOTLINE_EMAIL_SMTP_TLS="none")
    return EmailSettings.from_config(email_config(tmp_path, **extra))
