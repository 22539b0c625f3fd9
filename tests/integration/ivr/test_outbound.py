"""Outbound IVR through the fake FreeSWITCH: the dialer's originates paced and retried, answered calls
running the campaign's tree, the satisfaction key applied to the ticket."""
from __future__ import annotations

import datetime as dt
import uuid as uuidlib

import pytest

from caseflow import accounts
from caseflow import services as cs
from caseflow.models import Ticket, TicketHistory
from core.config import EslEndpoint
from ivr.campaigns import create_group_campaign, create_satisfaction_campaign
from ivr.dialer import Dialer
from ivr.models import IvrTrace, OutboundAttempt, OutboundCampaign
from switch.inbound import InboundConnection
from tests.fakeswitch import Press


def _approved_ticket(phone="13800138000"):
    ticket = cs.create_ticket("路灯不亮", type="complaint", citizen_phone=phone)
    # The review steps belong to caseflow's own tests; here the ticket only needs to await its call-back.
    Ticket.update(status="approved", reply="已修复路灯").where(Ticket.id == ticket.id).execute()
    return Ticket.get_by_id(ticket.id)


def _dialled(attempt: OutboundAttempt) -> str:
    """What Dialer.tick does before its originate: the attempt is calling, on a uuid the app chose."""
    call_uuid = str(uuidlib.uuid4())
    OutboundAttempt.update(state="calling", attempts=OutboundAttempt.attempts + 1, last_call_uuid=call_uuid) \
        .where(OutboundAttempt.id == attempt.id).execute()
    return call_uuid


def test_satisfaction_call_rates_the_ticket(phone, inbound):
    """Should dial the citizen, tell the result and turn key 1 into the call-back rating 'satisfied'."""
    owner = accounts.create_user("C001", "中心回访员", "centre-password-1", roles=("centre",))
    ticket = _approved_ticket()
    campaign = create_satisfaction_campaign([ticket], owner)
    citizen = phone.fs.add_agent("13800138000", answer=True, answer_delay=0.1, script=[Press("1")])
    # The dialer's originate: once the citizen answers, the switch runs `socket` into the app.
    assert Dialer(inbound, phone.config.replace(outbound=phone.server.address)).tick() == 1
    attempt = OutboundAttempt.get()
    phone.fs.wait_for(lambda: citizen.socket_calls, 10, "the answered call to enter the socket")
    call = citizen.socket_calls[0]
    assert call.uuid == attempt.last_call_uuid
    phone.finish(call)
    heard = [p.rsplit("/", 1)[-1] for p in call.played]
    assert heard[0] == "satisfaction_intro.wav" and "satisfaction_thanks.wav" in heard
    assert any("/.cache/zh/" in p for p in call.played)  # the reply spoken by call-time TTS
    ticket = Ticket.get_by_id(ticket.id)
    assert (ticket.status, ticket.satisfaction) == ("called_back", "satisfied")
    attempt = OutboundAttempt.get_by_id(attempt.id)
    assert (attempt.state, attempt.outcome) == ("done", "key:1")
    assert OutboundCampaign.get_by_id(campaign.id).status == "done"
    assert IvrTrace.get(IvrTrace.call_uuid == call.uuid).direction == "outbound"


@pytest.mark.parametrize("state", ["pending", "calling", "done"])
def test_forged_campaign_call_changes_nothing(phone, state, caplog):
    """Should treat a call claiming a campaign attempt the dialer is not calling on that uuid (pending, calling
    on another uuid, done) as an ordinary inbound call: the ticket stays approved, the attempt as it was,
    and the claim is logged."""
    owner = accounts.create_user("C001", "中心回访员", "centre-password-1", roles=("centre",))
    ticket = _approved_ticket()
    create_satisfaction_campaign([ticket], owner)
    attempt = OutboundAttempt.get()
    if state != "pending":
        _dialled(attempt)
        OutboundAttempt.update(state=state).where(OutboundAttempt.id == attempt.id).execute()
    before = OutboundAttempt.get_by_id(attempt.id)
    call = phone.fs.place_call(phone.server.address, caller="9001", destination="12345",
                               script=[Press("1")], variables={"hotline_attempt": str(attempt.id)})
    phone.finish(call)
    ticket = Ticket.get_by_id(ticket.id)
    assert ticket.status == "approved" and not ticket.satisfaction
    after = OutboundAttempt.get_by_id(attempt.id)
    assert (after.state, after.outcome, after.last_call_uuid) == (before.state, before.outcome,
                                                                  before.last_call_uuid)
    assert not TicketHistory.select().where((TicketHistory.ticket == ticket.id)
                                            & TicketHistory.note.contains(call.uuid)).exists()
    assert IvrTrace.get(IvrTrace.call_uuid == call.uuid).direction == "inbound"
    assert f"call {call.uuid} claims campaign attempt" in caplog.text


def test_unsatisfied_without_rights_becomes_a_note(phone):
    """Should keep the rating as a note when the campaign owner may not rate (nothing is lost)."""
    owner = accounts.create_user("D001", "部门人员", "dept-password-1", roles=("dept",))
    ticket = _approved_ticket()
    create_satisfaction_campaign([ticket], owner)
    attempt = OutboundAttempt.get()
    call = phone.fs.place_call(phone.server.address, caller="12345", destination="13800138000",
                               script=[Press("3")], variables={"hotline_attempt": str(attempt.id)},
                               uuid=_dialled(attempt))
    phone.finish(call)
    assert Ticket.get_by_id(ticket.id).status == "approved"
    assert TicketHistory.select().where(TicketHistory.note.contains("unsatisfied")).exists()


def test_group_call_and_no_answer(phone):
    """Should speak the group message and record 'no_key' when the citizen presses nothing."""
    create_group_campaign("停水通知", "明天上午停水，请提前储水。", ["13800138000"])
    attempt = OutboundAttempt.get()
    call = phone.fs.place_call(phone.server.address, caller="12345", destination="13800138000", script=[],
                               variables={"hotline_attempt": str(attempt.id)}, uuid=_dialled(attempt))
    phone.finish(call)
    assert OutboundAttempt.get_by_id(attempt.id).outcome == "no_key"
    assert "group_intro.wav" in [p.rsplit("/", 1)[-1] for p in call.played]


@pytest.fixture
def inbound(fakeswitch):
    conn = InboundConnection(EslEndpoint("127.0.0.1", fakeswitch.esl_port, "ClueCon"))
    conn.start()
    assert conn.wait_connected(5)
    yield conn
    conn.stop()


def test_dialer_paces_and_retries(phone, inbound):
    """Should start no more calls than the campaign allows, and retry numbers that were not reached."""
    phone.fs.add_agent("1000", answer=True, answer_delay=0.1)
    campaign = create_group_campaign("演练", "消防演练通知。", ["1000", "1001", "1002"], max_parallel=2,
                                     max_attempts=2)
    dialer = Dialer(inbound, phone.config)
    assert dialer.tick() == 2
    assert OutboundAttempt.select().where(OutboundAttempt.state == "calling").count() == 2
    assert dialer.tick() == 0  # both lines of the campaign are busy
    phone.fs.wait_for(lambda: OutboundAttempt.select().where(OutboundAttempt.state == "calling").count() <= 1,
                      10, "the unreachable number to fail")
    failed = OutboundAttempt.get(OutboundAttempt.phone == "1001")
    assert (failed.state, failed.attempts) == ("pending", 1) and failed.outcome
    originates = [c for c in phone.fs.api_log if "originate" in c]
    assert any("hotline_attempt=" in c and "&socket(" in c for c in originates)
    # Not again before the retry interval ...
    assert dialer.tick() <= 1
    later = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(minutes=campaign.retry_minutes + 1)
    OutboundAttempt.update(state="done").where(OutboundAttempt.phone == "1000").execute()
    dialer.tick(now=later)
    phone.fs.wait_for(lambda: OutboundAttempt.get(OutboundAttempt.phone == "1001").state == "failed", 10,
                      "the second failure")
    assert OutboundAttempt.get(OutboundAttempt.phone == "1001").attempts == 2


def test_dialer_respects_free_channels(phone, inbound):
    """Should place nothing when the switch has no channels to spare."""
    create_group_campaign("演练", "通知。", ["1000"], max_parallel=5)
    assert Dialer(inbound, phone.config, max_calls=1).tick() == 0


def test_dialer_refuses_an_international_number(phone, inbound):
    """Should fail a campaign attempt to an international number at once, with no originate sent, and log
    the refusal (shipped dial-out policy; issue 16 item 6)."""
    from recorder.models import DialOutLog

    create_group_campaign("演练", "通知。", ["+12025550100"], max_parallel=5, max_attempts=3)
    Dialer(inbound, phone.config).tick()
    phone.fs.wait_for(lambda: OutboundAttempt.get().state == "failed", 10, "the refused attempt")
    assert OutboundAttempt.get().outcome == "DIALOUT_REFUSED"
    assert not any("originate" in c and "2025550100" in c for c in phone.fs.api_log)
    assert (DialOutLog.get().purpose, DialOutLog.get().number_class) == ("campaign", "international")
