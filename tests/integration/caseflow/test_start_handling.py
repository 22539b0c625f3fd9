"""P5 §3.2: a department arranging a handler or passing the case down to a sub-unit puts it into 开始处理
(in progress), with a readable history, the subtree rules and the optimistic lock intact."""
from __future__ import annotations

import datetime as dt

import pytest

from caseflow import services
from caseflow import workflow as wf
from caseflow.models import Ticket, TicketHistory
from caseflow.workflow import ConcurrentChange, WorkflowError


@pytest.fixture
def dispatched(org_setup, clock):
    o = org_setup
    ticket = services.create_ticket("东区一街道烧烤油烟扰民", type="complaint", citizen_phone="13800000011",
                                    category=o.noise, created_by=o.agent, clock=clock)
    return services.dispatch(ticket, o.centre_user, o.east, clock=clock)


def _last(ticket) -> TicketHistory:
    return TicketHistory.select().where(TicketHistory.ticket == ticket.id).order_by(TicketHistory.id.desc()).first()


def test_assigning_a_handler_starts_handling(org_setup, dispatched, clock):
    """Should move a dispatched ticket to in progress when the department names a handler, and say who
    named whom in the history."""
    o = org_setup
    t = services.transition(dispatched, "assign", o.east_leader, handler=o.east_user, clock=clock)
    assert (t.status, t.handler_id, t.version) == (wf.IN_PROGRESS, o.east_user.id, dispatched.version + 1)
    row = _last(t)
    assert (row.action, row.from_status, row.to_status, row.actor_id) == \
        ("assign", wf.DISPATCHED, wf.IN_PROGRESS, o.east_leader.id)
    assert o.east_user.name in row.note and o.east_user.operator_no in row.note


@pytest.mark.parametrize("accept_first", [False, True])
def test_sub_dispatch_starts_handling_at_the_sub_unit(org_setup, dispatched, clock, accept_first):
    """Should put a ticket passed down (before or after the unit accepted it) into in progress at the
    sub-unit with nobody on it; the sub-unit and the parent both see it, a sibling does not."""
    o = org_setup
    t = dispatched
    if accept_first:
        t = services.transition(t, "accept", o.east_user, clock=clock)
    before = t.status
    t = services.transition(t, "sub_dispatch", o.east_user, department=o.east_street, clock=clock)
    assert (t.status, t.department_id, t.upper_department_id, t.handler_id) == \
        (wf.IN_PROGRESS, o.east_street.id, o.east.id, None)
    row = _last(t)
    assert (row.action, row.from_status, row.to_status, row.actor_id, row.department_id) == \
        ("sub_dispatch", before, wf.IN_PROGRESS, o.east_user.id, o.east_street.id)
    assert "东区" in row.note and "东区一街道" in row.note
    for user in (o.east_street_user, o.east_user):
        assert t.id in {x.id for x in services.visible_tickets(user)}
    assert t.id not in {x.id for x in services.visible_tickets(o.east_street2_user)}
    # the sub-unit's desk lists it as incoming (someone must take it), not as someone's work
    desk = services.department_desk(o.east_street_user)
    assert [x.id for x in desk["incoming"]] == [t.id] and desk["working"] == []
    assert t.id in {x.id for x in services.department_desk(o.east_user)["incoming"]}
    # and its deadline clock keeps running against the sub-unit
    within = t.deadline - t.dispatched_at + dt.timedelta(minutes=1)
    assert t.id in {x.id for x in services.due_soon_and_overdue(o.east_street_user, clock, within=within)[1]}


def test_sub_unit_accepts_a_passed_down_ticket(org_setup, dispatched, clock):
    """Should let the sub-unit's staff take the passed-down ticket (handler set, still in progress), and
    refuse the parent unit's staff and a second accept with a reason."""
    o = org_setup
    t = services.transition(dispatched, "sub_dispatch", o.east_user, department=o.east_street, clock=clock)
    with pytest.raises(WorkflowError, match="holding unit"):
        services.transition(t, "accept", o.east_user, clock=clock)
    with pytest.raises(services.PermissionDenied):
        services.transition(t, "accept", o.east_street2_user, clock=clock)
    t = services.transition(t, "accept", o.east_street_user, clock=clock)
    assert (t.status, t.handler_id) == (wf.IN_PROGRESS, o.east_street_user.id)
    assert o.east_street_user.operator_no in _last(t).note
    with pytest.raises(WorkflowError, match="already has a handler"):
        services.transition(t, "accept", o.east_street_user, clock=clock)
    desk = services.department_desk(o.east_street_user)
    assert desk["incoming"] == [] and [x.id for x in desk["working"]] == [t.id]


@pytest.mark.parametrize("first", ["accept", "sub_dispatch"])
def test_sub_dispatch_racing_an_accept(org_setup, dispatched, clock, first):
    """Should let exactly one of a sub-dispatch and an accept made on the same version win; the other gets
    a conflict naming the current status, and the winner's change is kept whole."""
    o = org_setup
    seen = dispatched.version
    requests = {
        "accept": lambda: services.transition(dispatched.id, "accept", o.east_user, expected_version=seen,
                                              clock=clock),
        "sub_dispatch": lambda: services.transition(dispatched.id, "sub_dispatch", o.east_leader,
                                                    expected_version=seen, department=o.east_street,
                                                    clock=clock),
    }
    second = "sub_dispatch" if first == "accept" else "accept"
    won = requests[first]()
    with pytest.raises(ConcurrentChange, match="changed by someone else") as info:
        requests[second]()
    assert info.value.code == "conflict"
    stored = Ticket.get_by_id(dispatched.id)
    assert (stored.status, stored.version) == (wf.IN_PROGRESS, seen + 1) == (won.status, won.version)
    if first == "accept":
        assert (stored.department_id, stored.handler_id) == (o.east.id, o.east_user.id)
    else:
        assert (stored.department_id, stored.upper_department_id, stored.handler_id) == \
            (o.east_street.id, o.east.id, None)
    actions = [h.action for h in services.timeline(stored)]
    assert actions == ["create", "dispatch", first]


def test_return_up_and_reject_go_back_to_dispatched(org_setup, dispatched, clock):
    """Should keep 分配待处理 for a ticket handed back up by the sub-unit or rejected by the centre's review:
    someone must take it up again."""
    o = org_setup
    t = services.transition(dispatched, "sub_dispatch", o.east_user, department=o.east_street, clock=clock)
    t = services.transition(t, "return_up", o.east_street_user, reason="不属本街道", clock=clock)
    assert (t.status, t.department_id, t.handler_id) == (wf.DISPATCHED, o.east.id, None)
    t = services.transition(t, "assign", o.east_leader, handler=o.east_user, clock=clock)
    t = services.transition(t, "reply", o.east_user, reply="已处理", clock=clock)
    t = services.transition(t, "reject", o.centre_user, reason="不完整", clock=clock)
    assert t.status == wf.DISPATCHED
