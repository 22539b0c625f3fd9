"""Department users see and act only on their own subtree, enforced in the services."""
from __future__ import annotations

import pytest

from caseflow import privacy, services
from caseflow import workflow as wf
from caseflow.workflow import PermissionDenied


@pytest.fixture
def tickets(org_setup, clock):
    o = org_setup
    east = services.dispatch(services.create_ticket("东区的事", citizen_phone="13800000001", citizen_name="张三",
                                                    created_by=o.agent), o.centre_user, o.east, clock=clock)
    street = services.dispatch(services.create_ticket("街道的事", citizen_phone="13800000002",
                                                      created_by=o.agent), o.centre_user, o.east, clock=clock)
    street = services.transition(street, "sub_dispatch", o.east_user, department=o.east_street, clock=clock)
    west = services.dispatch(services.create_ticket("西区的事", citizen_phone="13800000003",
                                                    created_by=o.agent), o.centre_user, o.west, clock=clock)
    return east, street, west


def test_visibility_by_subtree(org_setup, tickets):
    """Should show a district its own and its streets' tickets, a street only its own, the centre all."""
    o = org_setup
    east, street, west = tickets
    ids = lambda user: {t.id for t in services.visible_tickets(user)}  # noqa: E731
    assert ids(o.east_user) == {east.id, street.id}
    assert ids(o.east_street_user) == {street.id}
    assert ids(o.east_street2_user) == set()
    assert ids(o.west_user) == {west.id}
    assert ids(o.centre_user) >= {east.id, street.id, west.id}
    assert ids(o.bureau_user) == set()


def test_cannot_load_other_departments_ticket(org_setup, tickets):
    """Should answer 'not found' for another department's ticket, by id and by number alike."""
    o = org_setup
    east, _street, west = tickets
    for ref in (west.id, west.number):
        with pytest.raises(services.NotFound):
            services.get_ticket_for(o.east_user, ref)
    assert services.get_ticket_for(o.east_user, east.number).id == east.id


@pytest.mark.parametrize("event,params", [
    ("accept", {}), ("return", {"reason": "x"}), ("sub_dispatch", {}), ("assign", {}),
    ("request_extension", {"reason": "x"}),
])
def test_cannot_act_outside_subtree(org_setup, tickets, clock, event, params):
    """Should refuse every department action on a ticket held outside the actor's subtree."""
    o = org_setup
    _east, _street, west = tickets
    if event == "sub_dispatch":
        params = {"department": o.west_street}
    if event == "assign":
        params = {"handler": o.west_user}
    if event == "request_extension":
        params = dict(params, until=west.deadline.replace(year=2031))
    with pytest.raises(PermissionDenied, match="not within your department"):
        services.transition(west, event, o.east_user, clock=clock, **params)
    assert services.get_ticket_for(o.centre_user, west.id).status == wf.DISPATCHED


def test_street_cannot_act_on_sibling_or_parent(org_setup, tickets, clock):
    """Should stop a street acting on its sibling's or its district's tickets."""
    o = org_setup
    east, street, _west = tickets
    with pytest.raises(PermissionDenied):
        services.transition(street, "accept", o.east_street2_user, clock=clock)
    with pytest.raises(PermissionDenied):
        services.transition(east, "accept", o.east_street_user, clock=clock)
    services.transition(street, "accept", o.east_street_user, clock=clock)


def test_department_cannot_do_centre_actions(org_setup, tickets, clock):
    """Should refuse centre actions (dispatch, review, supervise, close) to department users."""
    o = org_setup
    east, _street, _west = tickets
    fresh = services.create_ticket("新的", created_by=o.agent)
    for ticket, event, params in ((fresh, "dispatch", {"department": o.east}), (east, "supervise", {}),
                                  (east, "remind", {})):
        with pytest.raises(PermissionDenied):
            services.transition(ticket, event, o.east_leader, clock=clock, **params)


def test_department_queue_and_search_scoped(org_setup, tickets):
    """Should limit the workbench and every search to the subtree."""
    o = org_setup
    east, street, west = tickets
    assert {t.id for t in services.department_queue(o.east_user)} == {east.id, street.id}
    assert services.search_tickets(o.east_user, number=west.number) == []
    assert services.search_tickets(o.east_user, phone="13800000003") == []
    assert west.id not in [t.id for t in services.search_tickets(o.east_user, text="西区的事")]
    assert [t.id for t in services.search_tickets(o.west_user, text="西区的事")] == [west.id]
    assert [t.id for t in services.search_tickets(o.centre_user, text="西区的事")][0] == west.id
    with pytest.raises(PermissionDenied):
        services.centre_queue(o.east_user, "to_review")


def test_contact_masking(org_setup, tickets):
    """Should show the full contact to the handling department and the centre, masks to others."""
    o = org_setup
    east, _street, _west = tickets
    assert privacy.contact_view(o.east_user, east)["phone"] == "13800000001"
    assert privacy.contact_view(o.east_street_user, east)["phone"] == "138****0001"
    assert privacy.contact_view(o.west_user, east)["name"] == "张*"
    assert privacy.contact_view(o.centre_user, east)["name"] == "张三"
    assert privacy.contact_view(None, east)["masked"] is True


def test_inactive_user_can_do_nothing(org_setup, tickets, clock):
    """Should refuse a deactivated user even inside their subtree."""
    o = org_setup
    east, _street, _west = tickets
    o.east_user.active = False
    o.east_user.save()
    with pytest.raises(PermissionDenied):
        services.transition(east, "accept", o.east_user, clock=clock)
    assert list(services.visible_tickets(o.east_user)) == []


def test_role_permissions_editable(org_setup, tickets, clock):
    """Should follow the admin-edited permission table: taking ticket.handle from 'dept' stops accepting."""
    from caseflow import roles

    o = org_setup
    east, _street, _west = tickets
    roles.set_role_permissions("dept", roles.DEFAULT_PERMISSIONS["dept"] - {"ticket.handle"})
    with pytest.raises(PermissionDenied):
        services.transition(east, "accept", o.east_user, clock=clock)
    roles.reset_role_permissions("dept")
    services.transition(east, "accept", o.east_user, clock=clock)
    with pytest.raises(ValueError):
        roles.set_role_permissions("dept", ["no.such.permission"])
