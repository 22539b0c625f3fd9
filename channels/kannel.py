"""Kannel, the SMS gateway: its configuration (kannel-conf/ filled in), the sendsms HTTP client, and a runner
that starts bearerbox + smsbox (+ fakesmsc for development and tests) as child processes.

Kannel has no "port 0": the runner picks free ports on 127.0.0.1 just before it starts the boxes, and calls a
box ready once it listens on them itself (another process may have taken one meanwhile: PortTaken).
"""
from __future__ import annotations

import dataclasses
import errno
import http.client
import logging
import os
import re
import secrets
import shutil
import signal
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
from core.ports import ADDRESS_IN_USE, bindable, free_port, listened_by

log = logging.getLogger(__name__)

TEMPLATE = PROJECT_ROOT / "kannel-conf" / "kannel.conf.template"
BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
SERVICE_NUMBER = "1063912345"
# DLR mask: delivered to phone (1), not delivered (2), queued on SMSC (4), accepted by SMSC (8), rejected (16).
# Only the final states (1 + 2 + 16): 'accepted' told the app nothing the sendsms answer had not ('sent'),
# and cost a second report request, and a second transaction, for every message.
DLR_MASK = 19


class GatewayDown(ConnectionError):
    """Kannel did not take the message (not reachable, or refused it): nothing was sent, try again later."""


class GatewayRefused(ValueError):
    """Kannel answered that it will never take this message (bad number, too long): do not retry."""


class PortTaken(OSError):
    """Another process holds a port Kannel's boxes were to listen on (errno EADDRINUSE): nothing was left
    running; start again on other ports (KannelSettings.free_ports, core.ports.retry_in_use)."""


class GatewayUnsure(ConnectionError):
    """The request reached Kannel but no answer came back (smsbox stopped or the connection broke while it
    handled the message): it may have taken the message, so sending it again could send it twice."""


def binaries_missing() -> list[str]:
    """The Kannel programs (Debian kannel, kannel-extras) not installed here."""
    return [path for path in (BEARERBOX, SMSBOX, FAKESMSC) if not os.access(path, os.X_OK)]


@dataclass(frozen=True)
class KannelSettings:
    """What the template needs; ``inbound_url`` is the app's /sms/inbound, ``secret`` its shared secret."""

    inbound_url: str
    secret: str
    admin_port: int = 13000
    smsbox_port: int = 13001
    sendsms_port: int = 13013
    smsc_port: int = 10000
    smsc_type: str = "fake"  # "fake" (fakesmsc connects to smsc_port) or "smpp" (bearerbox binds to it)
    smsc_host: str = "127.0.0.1"
    smsc_username: str = ""  # smpp: the operator's system id and password
    smsc_password: str = ""
    smsc_reconnect_seconds: int = 10  # smpp: wait before binding again after the link broke
    admin_password: str = dataclasses.field(default_factory=lambda: secrets.token_hex(12))
    sendsms_user: str = "hotline"
    sendsms_password: str = dataclasses.field(default_factory=lambda: secrets.token_hex(12))
    service_number: str = SERVICE_NUMBER
    max_messages: int = 10
    log_level: int = 1

    @classmethod
    def free_ports(cls, **kw) -> "KannelSettings":
        """Settings on free 127.0.0.1 ports (a port given in ``kw``, such as an SMPP server's, is kept)."""
        ports = {name: free_port() for name in ("admin_port", "smsbox_port", "sendsms_port", "smsc_port")
                 if name not in kw}
        return cls(**ports, **kw)

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"


def _safe(name: str, value: str) -> str:
    if not value or any(c in value for c in "\"\n&#= "):
        raise ValueError(f"Kannel {name}: must be non-empty without quotes, spaces, '&', '#' or '='")
    return value


def smsc_group(settings: KannelSettings) -> str:
    """The ``group = smsc`` of the configuration for ``settings.smsc_type``."""
    common = f"group = smsc\nsmsc-id = operator\nport = {int(settings.smsc_port)}\n"
    if settings.smsc_type == "fake":
        return common + "smsc = fake\nhost = 127.0.0.1\nconnect-allow-ip = 127.0.0.1\n" \
            "# 70 UCS-2 characters per part; concatenated parts carry a UDH, so 67 each.\nmax-sms-octets = 140\n"
    if settings.smsc_type == "smpp":
        # SMPP 3.4 bind_transceiver: system_id at most 15 characters, password at most 8.
        if len(settings.smsc_username) > 15 or len(settings.smsc_password) > 8:
            raise ValueError("Kannel SMPP account: the system id has at most 15 characters, the password 8")
        return (common + f"smsc = smpp\nhost = {_safe('smsc_host', settings.smsc_host)}\ntransceiver-mode = true\n"
                f"smsc-username = {_safe('smsc_username', settings.smsc_username)}\n"
                f"smsc-password = {_safe('smsc_password', settings.smsc_password)}\n"
                f"system-type = \"\"\nenquire-link-interval = 30\n"
                f"reconnect-delay = {int(settings.smsc_reconnect_seconds)}\nmax-pending-submits = 10\n")
    raise ValueError(f"Kannel smsc_type: fake or smpp, got {settings.smsc_type!r}")


def render_conf(settings: KannelSettings, directory: Path, template: Path = TEMPLATE) -> Path:
    """Fill kannel-conf/kannel.conf.template into ``directory``/kannel.conf (logs, the store spool and the
    delivery-report spool beside it: kept across restarts, so a Kannel started again in the same
    directory goes on with what the last one had in flight)."""
    directory.mkdir(parents=True, exist_ok=True)
    for sub in ("log", "store", "dlr"):
        (directory / sub).mkdir(exist_ok=True)
    values = {k: str(v) for k, v in dataclasses.asdict(settings).items()}
    for key in ("secret", "admin_password", "sendsms_password"):
        _safe(key, values[key])
    values.update(log_dir=str(directory / "log"), store_dir=str(directory / "store"),
                  dlr_dir=str(directory / "dlr"), smsc_group=smsc_group(settings))
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
            response = urllib.request.urlopen(f"{self.url}?{query}", timeout=self.timeout)
        except urllib.error.HTTPError as error:
            body = error.read(2000).decode("utf-8", "replace").strip()
            if error.code in (400, 403, 413):
                raise GatewayRefused(f"Kannel refused the message: HTTP {error.code} {body}") from None
            raise GatewayDown(f"Kannel answered HTTP {error.code} {body}") from None
        except urllib.error.URLError as error:  # connecting or writing the request failed: nothing was taken
            raise GatewayDown(f"Kannel not reachable at {self.url}: {error.reason}") from None
        except (OSError, http.client.HTTPException) as error:  # the request went out, no answer came back
            raise GatewayUnsure(f"no answer from Kannel after the request: {error!r}"[:200]) from None
        with response:
            try:
                return response.read(2000).decode("utf-8", "replace").strip()
            except OSError:  # the status line said it was taken
                return f"HTTP {response.status} (answer not read)"


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
        self._printed_before = 0

    def _spawn(self, argv: list[str], name: str, **kw) -> subprocess.Popen:
        out = kw.pop("stdout", None) or open(self.directory / "log" / f"{name}.stdout", "ab")
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kw)

    def start(self, timeout: float = 20.0) -> "KannelRunner":
        """Start the boxes and wait until each listens on its ports itself: bearerbox on the admin, smsbox and
        (the fake one's) SMSC ports, then smsbox on sendsms. Raises PortTaken at once when another process holds
        one of them, RuntimeError when a box ended or did not listen within ``timeout`` s; what was started is
        stopped again.

        Only ever looks at who listens on a port (core.ports.listened_by, from /proc), never connects to it:
        bearerbox takes any connection to the fake SMSC's port for fakesmsc and may hand it queued messages,
        lost when the probe hangs up. A listener alone is not enough: it may be another process's, the box's
        own bind having failed (smsbox then exits, bearerbox goes on without its admin port)."""
        s = self.settings
        bearerbox_ports = {"admin": s.admin_port, "smsbox": s.smsbox_port}
        if s.smsc_type == "fake":
            bearerbox_ports["fake SMSC"] = s.smsc_port
        try:
            self._start_box("bearerbox", bearerbox_ports, timeout)
            if self.fake_smsc and s.smsc_type == "fake":
                # No message on the command line: interactive mode, each line on stdin is a citizen's message.
                out = open(self.fakesmsc_out, "ab")
                self.fakesmsc = self._spawn([FAKESMSC, "-H", "127.0.0.1", "-r", str(s.smsc_port)],
                                            "fakesmsc", stdin=subprocess.PIPE, stdout=out)
            self._start_box("smsbox", {"sendsms": s.sendsms_port}, timeout)
        except BaseException:
            self.stop_boxes()
            raise
        self._printed_before = len(self.received())  # fakesmsc.out is kept across restarts
        return self

    def _start_box(self, name: str, ports: dict[str, int], timeout: float) -> None:
        """Start box ``name`` (self.bearerbox or self.smsbox) and return once it listens on every one of
        ``ports`` ({what: port}) itself; after a failure ``stop_boxes`` stops it."""
        log_path = self.directory / "log" / f"{name}.stdout"
        log_from = log_path.stat().st_size if log_path.exists() else 0
        proc = self._spawn([SMSBOX if name == "smsbox" else BEARERBOX, str(self.conf)], name)
        setattr(self, name, proc)
        deadline = time.monotonic() + timeout
        while True:
            own = {what: listened_by(proc.pid, port) for what, port in ports.items()}
            taken = [what for what, mine in own.items() if mine is None]
            if taken:
                raise PortTaken(errno.EADDRINUSE, f"Kannel's {_named(ports, taken)}: another process listens "
                                                  f"there, so {name} cannot")
            waiting = [what for what, mine in own.items() if not mine]
            if not waiting:
                return
            told = _read_from(log_path, log_from)
            if ADDRESS_IN_USE in told:  # held by a socket that does not listen: bound only, or a connection's end
                held = [what for what in waiting if not bindable(ports[what])] or waiting
                raise PortTaken(errno.EADDRINUSE, f"{name} could not bind its {_named(ports, held)}: another "
                                                  f"process holds it; its log: {_errors(told)}")
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} before listening on its "
                                   f"{_named(ports, waiting)}; its log: {_errors(told)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not listen on its {_named(ports, waiting)} within {timeout} s; "
                                   f"its log: {_errors(told)}")
            time.sleep(0.05)  # polling a port another process opens: there is no event to wait on

    def status(self) -> str:
        """bearerbox's status page (the admin interface's status.txt)."""
        return self._admin("status.txt")

    def _sms_counts(self) -> tuple[int, int]:
        """(sent to the SMSC since bearerbox started, held for the SMSC), from its status page."""
        match = re.search(r"^SMS: received [0-9]+ \([0-9]+ queued\), sent ([0-9]+) \(([0-9]+) queued\)",
                          self.status(), re.M)
        if match is None:
            raise RuntimeError("bearerbox's status page has no SMS line")
        return int(match.group(1)), int(match.group(2))

    def queued_out(self) -> int:
        """Messages bearerbox holds for the SMSC (not yet handed over), from its status page."""
        return self._sms_counts()[1]

    def _admin(self, command: str) -> str:
        """A page or command of bearerbox's admin interface (status.txt ...); its answer."""
        s = self.settings
        query = urllib.parse.urlencode({"password": s.admin_password})
        with urllib.request.urlopen(f"http://127.0.0.1:{s.admin_port}/{command}?{query}", timeout=5) as answer:
            return answer.read(100_000).decode("utf-8", "replace")

    def _drain_fake_smsc(self, timeout: float = 120.0) -> None:
        """Before bearerbox stops (smsbox already has: nothing new comes in): wait until it holds nothing for
        the fake SMSC and fakesmsc has printed every message bearerbox counted as sent to it.

        The fake SMSC counts a message sent, and makes its 'delivered' report, as soon as the line is in
        bearerbox's output buffer for fakesmsc's socket (smsc_fake.c), not when fakesmsc reads it; a bearerbox
        stopping hands everything it still holds to that buffer, tries one non-blocking write and closes the
        socket (gwlib's conn_destroy). On a loaded machine fakesmsc lags far behind, so lines were lost
        although reported delivered (6, 2 and, with bearerbox suspended, drained and resumed just before the
        signal, 15 of 10,000 in the benchmark). A real operator's SMSC acknowledges each message itself (SMPP
        submit_sm_resp), and its reports come from it. (Suspending bearerbox instead keeps its queue for the
        next start, but a suspended bearerbox ignores SIGTERM, and resumed it refills the buffer at once.)"""
        if self.fakesmsc is None or self.fakesmsc.poll() is not None or self.bearerbox.poll() is not None:
            return
        try:
            deadline, settled = time.monotonic() + timeout, None
            while time.monotonic() < deadline:
                sent, held = self._sms_counts()
                if not held and len(self.received()) - self._printed_before >= sent:
                    if settled == sent:  # the same count twice: nothing was in the router's hands
                        return
                    settled = sent
                time.sleep(0.2)  # fakesmsc is another process writing a file: nothing to wait on
            log.warning("fakesmsc had not printed everything bearerbox sent it within %g s", timeout)
        except (OSError, RuntimeError) as error:
            log.warning("could not drain fakesmsc before stopping Kannel: %s", error)

    def inject(self, sender: str, receiver: str, text: str) -> None:
        """fakesmsc sends a message from ``sender`` to ``receiver`` (UCS-2, as a phone sends Chinese)."""
        data = urllib.parse.quote_from_bytes(text.encode("utf-16-be"))
        self.fakesmsc.stdin.write(f"{sender} {receiver} ucs2 {data}\n".encode("ascii"))
        self.fakesmsc.stdin.flush()

    def stop_boxes(self) -> None:
        """Stop smsbox, then bearerbox once fakesmsc has read what bearerbox sent it (``_drain_fake_smsc``);
        fakesmsc ends with its connection to bearerbox and is stopped if it does not."""
        for attr in ("smsbox", "bearerbox", "fakesmsc"):
            proc = getattr(self, attr)
            if attr == "bearerbox" and proc is not None:
                self._drain_fake_smsc()
            if attr == "fakesmsc" and proc is not None:
                try:
                    proc.wait(timeout=10)  # it ends by itself at the end of what bearerbox wrote
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


def _named(ports: dict[str, int], whats: list[str]) -> str:
    """"admin port 127.0.0.1:N and ...", for an exception."""
    return " and ".join(f"{what} port 127.0.0.1:{ports[what]}" for what in whats)


def _read_from(path: Path, offset: int) -> str:
    """What a box wrote to its log ``path`` after ``offset`` bytes."""
    try:
        with open(path, "rb") as log_file:
            log_file.seek(offset)
            return log_file.read(1_000_000).decode("utf-8", "replace")
    except OSError:
        return ""


def _errors(told: str, most: int = 5) -> str:
    """A box's first ERROR and PANIC lines in ``told`` (not the backtrace after a PANIC), for an exception."""
    lines = [line.strip() for line in told.splitlines()
             if (" ERROR: " in line or " PANIC: " in line) and "+0x" not in line]
    return "; ".join(lines[:most]) or "nothing in its log"


def which_kannel() -> Optional[str]:
    return shutil.which("bearerbox") or (BEARERBOX if os.access(BEARERBOX, os.X_OK) else None)
