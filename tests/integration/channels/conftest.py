"""Fixtures for the SMS channel: the caseflow organisation, SMS settings, a recording gateway for outbox
logic, and a real Kannel (bearerbox + smsbox + fakesmsc) on free ports (others when one was taken before a box
bound it), skipped where it is not installed."""
from __future__ import annotations

import pytest

from channels import kannel
from channels.kannel import GatewayDown
from channels.settings import SmsSettings
from core.config import load_config
from tests.integration.caseflow.conftest import clock, org_setup  # noqa: F401 - fixtures reused
from tests.ports import retry_in_use

SECRET = "test-sms-secret-0123456789"


@pytest.fixture
def sms_settings(tmp_path):
    config = load_config({"mode": "test", "var_dir": str(tmp_path / "var"), "secret_key": "k" * 40,
                          "HOTLINE_SMS_SECRET": SECRET, "HOTLINE_SMS_DAILY_CAP": "5"})
    return SmsSettings.from_config(config)


@pytest.fixture
def sms_receipts(sms_settings):
    """The SMS receipts connected as a product connects them (channels.receipts): queued with each new ticket."""
    from caseflow import pins
    from channels.receipts import Receipts

    receipts = Receipts(sms_settings)
    pins.connect_receipt(receipts)
    yield receipts
    pins.disconnect_receipt(receipts)


class RecordingGateway:
    """Stands in for Kannel in outbox logic tests: records what it is handed, or is down."""

    def __init__(self):
        self.sent: list[tuple[int, str, str]] = []
        self.down = False

    def __call__(self, message_id, to, text):
        if self.down:
            raise GatewayDown("connection refused (test)")
        self.sent.append((message_id, to, text))
        return "0: Accepted for delivery"


@pytest.fixture
def gateway():
    return RecordingGateway()


@pytest.fixture
def kannel_installed():
    """Skips the test where Kannel's programs are not installed."""
    missing = kannel.binaries_missing()
    if missing:
        pytest.skip(f"Kannel not installed ({', '.join(missing)} missing): apt-get install kannel kannel-extras "
                    "(scripts/setup-system.sh does)")


@pytest.fixture
def kannel_box(tmp_path, kannel_installed):
    """A real Kannel with fakesmsc; the caller fills inbound_url/secret via ``start(app_url)`` (more
    KannelSettings as keywords: ``smsc_type="smpp"`` and the SMSC's port and account for smppsmsc)."""
    runners = []

    def started(app_url: str, **kw):
        settings = kannel.KannelSettings.free_ports(inbound_url=f"{app_url}/sms/inbound", secret=SECRET, **kw)
        runner = kannel.KannelRunner(settings, tmp_path / "kannel")
        runners.append(runner)
        return runner.start()  # stops its boxes again when it fails (kannel.PortTaken: a port taken meanwhile)

    def start(app_url: str, **kw):
        return retry_in_use(lambda: started(app_url, **kw))

    yield start
    for runner in runners:
        runner.stop()


def fakesmsc_messages(lines: list[str]) -> list[tuple[str, str]]:
    """(recipient, text) for every message fakesmsc got, concatenated parts joined (by UDH reference)."""
    import re
    from urllib.parse import unquote_to_bytes as _unquote

    def unquote_to_bytes(text: str) -> bytes:  # fakesmsc writes a space byte as '+', form-style
        return _unquote(text.replace("+", " "))

    whole, parts = [], {}
    for line in lines:
        match = re.search(r"Got message \d+: <(\S+) (\S+) (\S+) (.*)>$", line)
        if not match:
            continue
        _sender, to, kind, rest = match.groups()
        if kind == "udh":
            udh_text, _, data = rest.partition(" data ")
            udh = unquote_to_bytes(udh_text)
            ref, total, seq = udh[3], udh[4], udh[5]
            parts.setdefault((to, ref), {})[seq] = unquote_to_bytes(data)
            if len(parts[(to, ref)]) == total:
                chunks = parts.pop((to, ref))
                whole.append((to, b"".join(chunks[i] for i in sorted(chunks)).decode("utf-16-be")))
        elif kind == "ucs-2":
            whole.append((to, unquote_to_bytes(rest).decode("utf-16-be")))
        else:
            whole.append((to, unquote_to_bytes(rest.split(" ", 1)[-1]).decode("latin-1")))
    return whole


def wait_until(condition, timeout: float = 20.0, what: str = "condition"):
    """Poll ``condition`` (a Kannel box is another process: no event reaches us) until true or time out."""
    from tests.waiting import poll_until

    return poll_until(condition, timeout, what, every=0.1)


@pytest.fixture
def served_app(app, org_setup):
    """The web app on a real HTTP port (Kannel calls it), with the test's SMS settings."""
    import threading

    from werkzeug.serving import make_server

    from core.config import load_config

    config = load_config({"mode": "test", "secret_key": "k" * 40, "HOTLINE_SMS_SECRET": SECRET,
                          "HOTLINE_SMS_DAILY_CAP": "0"})
    app.extensions["hotline"].services.sms_settings = SmsSettings.from_config(config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app.extensions["hotline"].services.sms_settings
    server.shutdown()
