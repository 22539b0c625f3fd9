"""The department desk through the pages: passing a ticket down or naming a handler starts handling
(P5 §3.2), the sub-unit takes it from its incoming list, and two forms on one version cannot both win."""
from __future__ import annotations

from caseflow import services
from caseflow import workflow as wf
from caseflow.models import Ticket


def _post(client, number, event, version, **fields):
    return client.post_form(f"/tickets/{number}/act", {"event": event, "version": str(version), **fields},
                            follow_redirects=True)


def test_pass_down_then_sub_unit_accepts(world, login):
    """Should put a passed-down ticket in progress on the sub-unit's incoming list with an accept button,
    keep it visible to the parent without one, and move it to in progress under the sub-unit's handler."""
    t = world.east_ticket
    district, street = login(world.east_user), login(world.street_user)
    page = _post(district, t.number, "sub_dispatch", t.version, department=str(world.street.id))
    assert page.status_code == 200
    stored = Ticket.get_by_id(t.id)
    assert (stored.status, stored.department_id, stored.handler_id) == (wf.IN_PROGRESS, world.street.id, None)
    desk = street.get("/dept/").get_data(as_text=True)
    incoming = desk.split('data-testid="incoming"')[1].split("</table>")[0]
    assert t.number in incoming and f'data-testid="accept-{t.number}"' in incoming
    parent = district.get("/dept/").get_data(as_text=True)
    assert t.number in parent and f'data-testid="accept-{t.number}"' not in parent
    _post(street, t.number, "accept", stored.version)
    stored = Ticket.get_by_id(t.id)
    assert (stored.status, stored.handler_id) == (wf.IN_PROGRESS, world.street_user.id)
    timeline = street.get(f"/tickets/{t.number}").get_data(as_text=True).split('data-testid="timeline"')[1]
    assert "下派" in timeline and "东区街道" in timeline and "开始处理" in timeline
    assert login(world.west_user).get(f"/tickets/{t.number}").status_code == 404


def test_assign_starts_handling_in_english(world, login):
    """Should move a dispatched ticket to in progress when a handler is named, shown with English labels."""
    t = world.east_ticket
    client = login(world.east_user)
    client.post_form("/language", {"lang": "en"})
    _post(client, t.number, "assign", t.version, handler=str(world.street_user.id))
    stored = Ticket.get_by_id(t.id)
    assert (stored.status, stored.handler_id) == (wf.IN_PROGRESS, world.street_user.id)
    page = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert "In progress" in page and "Assign" in page


def test_sub_dispatch_racing_accept_through_forms(world, login):
    """Should let the first of two forms showing the same version win and tell the second plainly that the
    ticket changed, keeping the first one's change whole."""
    t = world.east_ticket
    seen = t.version
    leader = login(world.east_user)
    other = login(world.street_user)
    _post(leader, t.number, "sub_dispatch", seen, department=str(world.street.id))
    page = _post(login(world.east_user), t.number, "accept", seen).get_data(as_text=True)
    assert "已被他人修改" in page
    stored = Ticket.get_by_id(t.id)
    assert (stored.status, stored.department_id, stored.handler_id, stored.version) == \
        (wf.IN_PROGRESS, world.street.id, None, seen + 1)
    assert [h.action for h in services.timeline(stored)] == ["create", "dispatch", "sub_dispatch"]
    assert other.get("/dept/").status_code == 200


def test_desk_forms_need_csrf(world, login):
    """Should refuse a desk action posted without the CSRF token and change nothing."""
    t = world.east_ticket
    client = login(world.east_user)
    response = client.post(f"/tickets/{t.number}/act", data={"event": "sub_dispatch", "version": str(t.version),
                                                             "department": str(world.street.id)})
    assert response.status_code in (400, 403)
    assert Ticket.get_by_id(t.id).status == wf.DISPATCHED
