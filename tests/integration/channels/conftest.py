"""Fixtures for the SMS channel: the caseflow organisation, SMS settings, a recording gateway for outbox
logic, and a real Kannel (bearerbox + smsbox + fakesmsc) on free ports, skipped where it is not installed."""
from __future__ import annotations

import pytest

from channels import kannel
from channels.kannel import GatewayDown
from channels.settings import SmsSettings
from core.config import load_config
from tests.integration.caseflow.conftest import clock, org_setup  # noqa: F401 - fixtures reused

SECRET = "test-sms-secret-0123456789"


@pytest.fixture
def sms_settings(tmp_path):
    config = load_config({"mode": "test", "var_dir": str(tmp_path / "var"), "secret_key": "k" * 40,
                          "HOTLINE_SMS_SECRET": SECRET, "HOTLINE_SMS_DAILY_CAP": "5"})
    return SmsSettings.from_config(config)


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
def kannel_box(tmp_path):
    """A real Kannel with fakesmsc; the caller fills inbound_url/secret via ``start(app_url)``."""
    missing = kannel.binaries_missing()
    if missing:
        pytest.skip(f"Kannel not installed ({', '.join(missing)} missing): apt-get install kannel kannel-extras "
                    "(scripts/setup-system.sh does)")
    runners = []

    def start(app_url: str):
        settings = kannel.KannelSettings.free_ports(inbound_url=f"{app_url}/sms/inbound", secret=SECRET)
        runner = kannel.KannelRunner(settings, tmp_path / "kannel").start()
        runners.append(runner)
        return runner

    yield start
    for runner in runners:
        runner.stop()
