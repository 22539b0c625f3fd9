"""The walking skeleton's last step in a real browser: a call to 12345 through the fake FreeSWITCH leaves a
ticket, and an agent who logs in sees it at the top of the ticket list."""
from __future__ import annotations

import datetime as dt
import re

from playwright.sync_api import expect

from tests.fakeswitch import Press, Speak, WaitFor
from tests.integration.ivr.conftest import SOUNDS  # rendered_sounds comes from tests/conftest.py

from .conftest import login

PASSWORD = "agent-password-1"
CALLER = "13800138000"


def _call_12345(live_server, fakeswitch, sounds, tmp_path) -> None:
    """Serve the IVR on an outbound socket and place the complaint call of issue 2 through the fake switch."""
    from core.clock import FixedClock
    from core.config import load_config
    from core.db import database
    from ivr.prompts import prompt_keys
    from ivr.runner import run_call
    from hotline.ivr_services import HotlineIvrServices
    from ivr.store import TreeStore
    from switch.outbound import OutboundServer

    config = load_config({"var_dir": str(tmp_path / "ivr-var"), "sounds_dir": str(sounds),
                          "recordings_dir": str(tmp_path / "recordings"), "mode": "test",
                          "secret_key": live_server.config.secret_key})
    trees = TreeStore(prompt_keys=prompt_keys(SOUNDS))
    with database.connection_context():
        trees.ensure_default()
    # Office hours on a Monday, so the menu offers self-service rather than the night message.
    services = HotlineIvrServices(config=config, trees=trees, clock=FixedClock(dt.datetime(2026, 1, 5, 10, 0)))
    finished = []
    server = OutboundServer("127.0.0.1", 0, lambda session: finished.append(run_call(session, services, config)))
    server.start()
    try:
        call = fakeswitch.place_call(server.address, caller=CALLER, destination="12345",
                                     script=[Press("2"), Press("2"), Speak(3), Press("#"), Press("1"),
                                             WaitFor("playback", "ticket_thanks")])
        call.wait_ended(timeout=30)
        fakeswitch.wait_for(lambda: finished, 10.0, "the IVR handler to finish")
    finally:
        server.stop(drain_timeout=5)


def test_agent_sees_the_ticket_of_a_call(page, live_server, fakeswitch, rendered_sounds, tmp_path):
    """Should show the agent the phone complaint just recorded by the IVR, newest first, caller masked."""
    from caseflow.accounts import create_user
    from caseflow.models import Ticket
    from core.db import database

    _call_12345(live_server, fakeswitch, rendered_sounds, tmp_path)
    with database.connection_context():
        create_user("1001", "王晓燕", PASSWORD, roles=["agent"])
        ticket = Ticket.get()
    assert (ticket.channel, ticket.type, ticket.citizen_phone) == ("phone", "complaint", CALLER)

    login(page, live_server, "1001", PASSWORD)
    expect(page).to_have_url(re.compile(r"/agent/tickets$"))
    row = page.get_by_test_id("ticket-list").locator("tbody tr").first
    expect(row.locator("td.number")).to_have_text(ticket.number)
    expect(row).to_contain_text("投诉")
    expect(row).to_contain_text("电话")
    expect(row.locator("td.phone")).to_have_text("138****8000")
