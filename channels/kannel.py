"""Kannel, the SMS gateway: its configuration (kannel-conf/ filled in), the sendsms HTTP client, and a runner
that starts bearerbox + smsbox (+ fakesmsc for development and tests) as child processes.

Kannel has no "port 0": the runner picks free ports on 127.0.0.1 just before it starts the boxes.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from core.config import PROJECT_ROOT

log = logging.getLogger(__name__)

TEMPLATE = PROJECT_ROOT / "kannel-conf" / "kannel.conf.template"
BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
SERVICE_NUMBER = "1063912345"
# DLR mask: delivered to phone (1), not delivered (2), queued on SMSC (4), accepted by SMSC (8), rejected (16).
DLR_MASK = 31


class GatewayDown(ConnectionError):
    """Kannel did not take the message (not reachable, or refused it): nothing was sent, try again later."""


class GatewayRefused(ValueError):
    """Kannel answered that it will never take this message (bad number, too long): do not retry."""


def binaries_missing() -> list[str]:
    """The Kannel programs (Debian kannel, kannel-extras) not installed here."""
    return [path for path in (BEARERBOX, SMSBOX, FAKESMSC) if not os.access(path, os.X_OK)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class KannelSettings:
    """What the template needs; ``inbound_url`` is the app's /sms/inbound, ``secret`` its shared secret."""

    inbound_url: str
    secret: str
    admin_port: int = 13000
    smsbox_port: int = 13001
    sendsms_port: int = 13013
    smsc_port: int = 10000
    smsc_type: str = "fake"
    admin_password: str = dataclasses.field(default_factory=lambda: secrets.token_hex(12))
    sendsms_user: str = "hotline"
    sendsms_password: str = dataclasses.field(default_factory=lambda: secrets.token_hex(12))
    service_number: str = SERVICE_NUMBER
    max_messages: int = 10
    log_level: int = 1

    @classmethod
    def free_ports(cls, **kw) -> "KannelSettings":
        return cls(admin_port=free_port(), smsbox_port=free_port(), sendsms_port=free_port(),
                   smsc_port=free_port(), **kw)

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"


def render_conf(settings: KannelSettings, directory: Path, template: Path = TEMPLATE) -> Path:
    """Fill kannel-conf/kannel.conf.template into ``directory``/kannel.conf (logs and store beside it)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "log").mkdir(exist_ok=True)
    (directory / "store").mkdir(exist_ok=True)
    values = {k: str(v) for k, v in dataclasses.asdict(settings).items()}
    for key in ("secret", "admin_password", "sendsms_password"):
        if not values[key] or any(c in values[key] for c in "\"\n&#= "):
            raise ValueError(f"Kannel {key}: must be non-empty without quotes, spaces, '&', '#' or '='")
    values.update(log_dir=str(directory / "log"), store_dir=str(directory / "store"))
    text = string.Template(template.read_text(encoding="utf-8")).substitute(values)
    path = directory / "kannel.conf"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


class KannelClient:
    """smsbox's sendsms interface: one HTTP GET per message (charset UTF-8 in, UCS-2 on the wire)."""

    def __init__(self, url: str, user: str, password: str, dlr_url: str = "", timeout: float = 10.0):
        self.url, self.user, self.password, self.dlr_url, self.timeout = url, user, password, dlr_url, timeout

    def send(self, message_id: int, to: str, text: str, sender: str = SERVICE_NUMBER) -> str:
        """Hand one message to Kannel; returns Kannel's answer. Raises GatewayDown or GatewayRefused."""
        params = {"username": self.user, "password": self.password, "from": sender, "to": to,
                  "text": text.encode("utf-8"), "charset": "UTF-8", "coding": "2"}
        if self.dlr_url:
            params["dlr-mask"] = str(DLR_MASK)
            # Kannel fills %d (report type), %A (SMSC's answer), %F (SMSC's message id).
            params["dlr-url"] = f"{self.dlr_url}{'&' if '?' in self.dlr_url else '?'}id={message_id}&type=%d" \
                                "&answer=%A&foreign=%F"
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}?{query}", timeout=self.timeout) as response:
                return response.read(2000).decode("utf-8", "replace").strip()
        except urllib.error.HTTPError as error:
            body = error.read(2000).decode("utf-8", "replace").strip()
            if error.code in (400, 403, 413):
                raise GatewayRefused(f"Kannel refused the message: HTTP {error.code} {body}") from None
            raise GatewayDown(f"Kannel answered HTTP {error.code} {body}") from None
        except (OSError, urllib.error.URLError) as error:
            raise GatewayDown(f"Kannel not reachable at {self.url}: {error}") from None


class KannelRunner:
    """bearerbox + smsbox (+ fakesmsc when the SMSC is the fake one) as child processes of this one.

    fakesmsc prints every message it receives on stdout (its log, ``fakesmsc.out``) and sends a message from
    a citizen for each line written to ``inject``.
    """

    def __init__(self, settings: KannelSettings, directory: Path, fake_smsc: bool = True):
        self.settings, self.directory, self.fake_smsc = settings, Path(directory), fake_smsc
        self.conf = render_conf(settings, self.directory)
        self.bearerbox: Optional[subprocess.Popen] = None
        self.smsbox: Optional[subprocess.Popen] = None
        self.fakesmsc: Optional[subprocess.Popen] = None
        self.fakesmsc_out = self.directory / "fakesmsc.out"

    def _spawn(self, argv: list[str], name: str, **kw) -> subprocess.Popen:
        out = kw.pop("stdout", None) or open(self.directory / "log" / f"{name}.stdout", "ab")
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kw)

    def start(self, timeout: float = 20.0) -> "KannelRunner":
        """Start the boxes and wait until smsbox's sendsms port and the fake SMSC answer."""
        self.bearerbox = self._spawn([BEARERBOX, str(self.conf)], "bearerbox")
        _wait_port(self.settings.smsc_port, timeout, self.bearerbox, "bearerbox")
        if self.fake_smsc:
            # No message on the command line: interactive mode, each line on stdin is a citizen's message.
            out = open(self.fakesmsc_out, "ab")
            self.fakesmsc = self._spawn([FAKESMSC, "-H", "127.0.0.1", "-r", str(self.settings.smsc_port)],
                                        "fakesmsc", stdin=subprocess.PIPE, stdout=out)
        self.smsbox = self._spawn([SMSBOX, str(self.conf)], "smsbox")
        _wait_port(self.settings.sendsms_port, timeout, self.smsbox, "smsbox")
        return self

    def inject(self, sender: str, receiver: str, text: str) -> None:
        """fakesmsc sends a message from ``sender`` to ``receiver`` (UCS-2, as a phone sends Chinese)."""
        data = urllib.parse.quote_from_bytes(text.encode("utf-16-be"))
        self.fakesmsc.stdin.write(f"{sender} {receiver} ucs2 {data}\n".encode("ascii"))
        self.fakesmsc.stdin.flush()

    def stop_boxes(self) -> None:
        """Stop smsbox and bearerbox; fakesmsc ends with its connection to bearerbox. It is given a moment
        to read what bearerbox already wrote to it before it is stopped too: bearerbox counts a message
        written to the fake SMSC as delivered, so killing fakesmsc at once loses messages "delivered" to it."""
        for attr in ("smsbox", "bearerbox", "fakesmsc"):
            proc = getattr(self, attr)
            if attr == "fakesmsc" and proc is not None:
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            setattr(self, attr, None)

    stop = stop_boxes

    def received(self) -> list[str]:
        """The lines fakesmsc printed for messages it got from Kannel ("Got message N: ...")."""
        if not self.fakesmsc_out.exists():
            return []
        lines = self.fakesmsc_out.read_text("utf-8", "replace").splitlines()
        return [line for line in lines if "Got message" in line]


def _wait_port(port: int, timeout: float, proc: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # polling a port another process opens: there is no event to wait on
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within {timeout} s")


def which_kannel() -> Optional[str]:
    return shutil.which("bearerbox") or (BEARERBOX if os.access(BEARERBOX, os.X_OK) else None)
