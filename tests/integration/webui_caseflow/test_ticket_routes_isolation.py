"""Every route that loads a ticket goes through caseflow's one visibility check (services.may_view /
visible_tickets / get_ticket_for): the entry desk and the agent's ticket list included (issue 16 item 4)."""
from __future__ import annotations

from caseflow import services
from caseflow.models import Ticket
from caseflow.roles import set_role_permissions


def _anonymous_recorded(world, clock):
    """A ticket another agent recorded anonymously, still waiting for dispatch, with name and address."""
    return services.create_ticket("家门口的垃圾没人清", citizen_phone="13700001111", citizen_name="王秘密",
                                  citizen_address="幸福路8号3单元", anonymous=True, created_by=world.agent,
                                  clock=clock)


def test_clerk_cannot_open_or_rewrite_a_ticket_outside_the_desk(world, login, clock):
    """Should answer 404 to the clerk for another user's ticket (recorded or dispatched) and change nothing."""
    clerk = login(world.entry)
    hidden = _anonymous_recorded(world, clock)
    for ticket in (hidden, world.east_ticket):
        assert clerk.get(f"/entry/{ticket.number}/edit").status_code == 404
        response = clerk.post_form(f"/entry/{ticket.number}/edit", {
            "title": "改了", "content": "被改写", "type": "help", "urgency": "normal", "reply_by": "phone",
            "citizen_name": "x", "citizen_address": "y", "version": str(ticket.version)})
        assert response.status_code == 404
        stored = Ticket.get_by_id(ticket.id)
        assert (stored.content, stored.citizen_name) == (ticket.content, ticket.citizen_name)


def test_clerk_edits_the_desks_own_tickets_before_dispatch_only(world, login, clock):
    """Should let the clerk correct a ticket the desk recorded and a machine-made one while recorded, and
    answer 404 once it was dispatched."""
    clerk = login(world.entry)
    own = services.create_ticket("来信：路面塌陷", channel="letter", created_by=world.entry, clock=clock)
    machine = services.create_ticket("IVR录音，请收听后补录", actor_label="ivr", clock=clock)
    for ticket in (own, machine):
        assert clerk.get(f"/entry/{ticket.number}/edit").status_code == 200
    services.dispatch(own, world.centre_user, world.east, clock=clock)
    assert clerk.get(f"/entry/{own.number}/edit").status_code == 404


def test_anonymous_ticket_shows_no_name_or_address_on_the_edit_page(world, login, clock):
    """Should mask the citizen on the entry edit page for a user without full contact rights, and keep the
    stored name and address when such a user saves the form."""
    ticket = services.create_ticket("IVR录音：匿名举报", citizen_phone="13700002222", citizen_name="赵隐名",
                                    citizen_address="和平街1号", anonymous=True, actor_label="ivr", clock=clock)
    clerk = login(world.entry)
    page = clerk.get(f"/entry/{ticket.number}/edit").get_data(as_text=True)
    assert "赵隐名" not in page and "和平街1号" not in page and "13700002222" not in page
    clerk.post_form(f"/entry/{ticket.number}/edit", {
        "title": "匿名举报", "content": "补录的内容", "type": "complaint", "urgency": "normal",
        "reply_by": "phone", "citizen_name": "", "citizen_address": "", "version": str(ticket.version)})
    stored = Ticket.get_by_id(ticket.id)
    assert (stored.content, stored.citizen_name, stored.citizen_address) == ("补录的内容", "赵隐名", "和平街1号")
    centre = login(world.centre_user)
    assert "赵隐名" in centre.get(f"/entry/{ticket.number}/edit").get_data(as_text=True)


def test_ticket_list_shows_only_what_the_user_may_see(world, login, clock):
    """Should list and search (number, phone) only the tickets the user may see: the clerk the desk's own,
    an agent without 'see every ticket' the ones they recorded."""
    own = services.create_ticket("来信：路灯", channel="letter", citizen_phone="13600000000",
                                 created_by=world.entry, clock=clock)
    clerk = login(world.entry)
    page = clerk.get("/agent/tickets").get_data(as_text=True)
    assert own.number in page and world.east_ticket.number not in page
    for q in (world.east_ticket.number, world.east_ticket.citizen_phone):
        found = clerk.get("/agent/tickets", query_string={"q": q}).get_data(as_text=True)
        assert f">{world.east_ticket.number}<" not in found and "没有符合条件的工单" in found
    agent = login(world.agent)
    assert world.west_ticket.number in agent.get("/agent/tickets").get_data(as_text=True)
    # The role's permissions decide: without ticket.view_all an agent keeps only what they recorded.
    set_role_permissions("agent", ("ticket.create", "ticket.answer", "ticket.callback", "kb.view"))
    mine = services.create_ticket("话务员自己登记的", citizen_phone="13500000000", created_by=world.agent,
                                  clock=clock)
    other = services.create_ticket("别人登记的", citizen_phone="13500000000", created_by=world.centre_user,
                                   clock=clock)
    found = agent.get("/agent/tickets", query_string={"q": "13500000000"}).get_data(as_text=True)
    assert f">{mine.number}<" in found and f">{other.number}<" not in found
