"""Fax reception from the menu and on a fax tone; the satisfaction key-press an agent hands a caller to."""
from __future__ import annotations

import pytest

from caseflow import accounts
from caseflow import services as cs
from caseflow.models import Ticket
from ivr.handback import HandBackError, active_targets, hand_back, targets
from ivr.models import IvrTrace, SatisfactionRating
from ivr.tree import load_tree
from recorder.models import CallRecord, FaxJob
from tests.fakeswitch import Press, SendFax
from tests.integration.ivr.test_phone_paths import played


def test_fax_from_the_self_service_menu(phone):
    """Should receive a fax after 2 (self-service) then 6, file it as a ticket and hang up."""
    call = phone.call([SendFax(pages=2), Press("2"), Press("6")])
    heard = played(phone, call)
    assert heard[-1] == "fax_start"
    job = FaxJob.get(FaxJob.call_uuid == call.uuid)
    assert job.state == "done" and job.pages == 2 and job.ticket_id
    trace = IvrTrace.get(IvrTrace.call_uuid == call.uuid)
    assert trace.outcome == "fax" and trace.tickets == job.ticket.number
    assert call.faxes and call.hangup_by == "app"


def test_fax_tone_goes_straight_to_the_fax_node(phone):
    """Should skip the welcome and menus when the dialplan's detector already heard a fax tone."""
    call = phone.fs.place_call(phone.server.address, script=[SendFax(pages=1)],
                               variables={"fax_tone_detected": "true"})
    phone.finish(call)
    assert played(phone, call) == ["fax_start"]
    assert FaxJob.get(FaxJob.call_uuid == call.uuid).state == "done"


def test_fax_machine_on_the_main_number_is_received_by_default(phone):
    """Should, with the shipped configuration (fax detection on), hear a fax machine calling 12345 during
    the welcome and receive its fax as a ticket instead of offering it the menu or an agent."""
    call = phone.call([SendFax(pages=1)])
    heard = played(phone, call)
    assert heard[-1] == "fax_start" and "main_menu" not in heard
    job = FaxJob.get(FaxJob.call_uuid == call.uuid)
    assert job.state == "done" and job.ticket_id
    assert IvrTrace.get(IvrTrace.call_uuid == call.uuid).outcome == "fax"


def test_fax_machine_reaches_the_menu_when_detection_is_off(phone):
    """Should leave a fax machine in the menus when hotline_fax_detect is false (no detector runs)."""
    call = phone.fs.place_call(phone.server.address, script=[SendFax(pages=1)],
                               variables={"hotline_fax_detect": "false"})
    phone.finish(call)
    assert "main_menu" in played(phone, call) and "fax_start" not in played(phone, call)


def test_fax_that_never_comes_ends_politely(phone):
    """Should say the fax failed and say goodbye when nothing was received."""
    call = phone.call([Press("2"), Press("6")], timeout=60)
    heard = played(phone, call)
    assert heard[-3:] == ["fax_start", "fax_failed", "goodbye"]
    assert FaxJob.get(FaxJob.call_uuid == call.uuid).state == "failed"


def test_satisfaction_after_hand_back_without_ticket(phone):
    """Should store the key-press with the call when the call has no ticket, then thank and hang up."""
    call = phone.sent_back([Press("2")], "hotline_ivr_node", "satisfaction")
    phone.finish(call)
    assert played(phone, call) == ["satisfaction_ask", "satisfaction_thanks"]
    rating = SatisfactionRating.get(SatisfactionRating.call_uuid == call.uuid)
    assert (rating.rating, rating.ticket_number, rating.applied) == ("basic", "", "")
    assert IvrTrace.get(IvrTrace.call_uuid == call.uuid).outcome == "satisfaction:basic"


def test_satisfaction_bad_keys_then_goodbye(phone):
    """Should refuse keys other than 1-3 and end politely after the retry limit, storing nothing."""
    call = phone.sent_back([Press("9"), Press("#"), Press("0")], "hotline_ivr_node", "satisfaction")
    phone.finish(call)
    heard = played(phone, call)
    assert heard[0] == "satisfaction_ask" and heard[-1] == "goodbye" and "invalid_key" in heard
    assert not SatisfactionRating.select().where(SatisfactionRating.call_uuid == call.uuid).exists()


def test_satisfaction_noted_on_the_call_ticket(ivr_services):
    """Should note the rating on the ticket linked to the call when it is not in a state for a call-back."""
    ticket = cs.create_ticket("路灯不亮", type="complaint", citizen_phone="13800138000")
    cs.link_call(ticket, "call-sat-1", "intake")
    ivr_services.save_satisfaction("13800138000", "unsatisfied", "call-sat-1")
    rating = SatisfactionRating.get(SatisfactionRating.call_uuid == "call-sat-1")
    assert (rating.ticket_number, rating.applied) == (ticket.number, "note")
    assert Ticket.get_by_id(ticket.id).status == "recorded"
    assert any("unsatisfied" in (h.note or "") for h in Ticket.get_by_id(ticket.id).history)


def test_satisfaction_is_a_call_back_on_an_answered_ticket(ivr_services):
    """Should record the rating as the call-back of an answered ticket, in the name of the call's agent."""
    agent = accounts.create_user("2001", "坐席", "agent-password-1", roles=("agent",), extension="2001")
    ticket = cs.create_ticket("咨询社保", type="consult", citizen_phone="13800138000", created_by=agent)
    cs.transition(ticket, "answer", agent, "已当场答复", reply="已当场答复")
    cs.link_call(ticket, "call-sat-2", "intake")
    CallRecord.create(call_uuid="call-sat-2", caller="13800138000", agent=agent, agent_no="2001")
    ivr_services.save_satisfaction("13800138000", "satisfied", "call-sat-2")
    rating = SatisfactionRating.get(SatisfactionRating.call_uuid == "call-sat-2")
    assert rating.applied == "call_back"
    ticket = Ticket.get_by_id(ticket.id)
    assert ticket.status == "called_back" and ticket.satisfaction == "satisfied"


def test_hand_back_targets(db, trees):
    """Should list the nodes agents may hand callers to, and refuse others."""
    trees.ensure_default()
    listed = [(t.node, t.label_zh) for t in active_targets(trees)]
    assert ("satisfaction", "满意度评价") in listed and ("status_query", "工单查询") in listed
    assert "main" not in [t.node for t in targets(load_tree())]

    class Conn:
        def api(self, command):
            return "+OK\n"

    with pytest.raises(HandBackError, match="does not take callers"):
        hand_back(Conn(), "6f1c2a9e-1d3b-4c55-9a7e-2b1f0c9d8e7a", "main", load_tree())
