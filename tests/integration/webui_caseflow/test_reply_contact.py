"""A reply the centre could not send is refused with a clear message: by phone or SMS without a number, by
e-mail without an address (caseflow.services.check_reply_contact), in the service and the entry desk."""
from __future__ import annotations

import pytest

from caseflow import services
from caseflow.models import Ticket
from caseflow.values import TicketInputError


@pytest.mark.parametrize("fields, says", [
    ({"reply_by": "phone"}, "电话"), ({"reply_by": "sms"}, "联系电话"),
    ({"reply_by": "email"}, "邮箱"), ({"reply_by": "email", "citizen_email": "nobody"}, "邮箱"),
])
def test_reply_needs_its_contact(world, fields, says):
    """Should refuse a ticket whose chosen reply has no contact to go to, storing nothing."""
    before = Ticket.select().count()
    with pytest.raises(TicketInputError) as refused:
        services.create_ticket("路灯不亮", **fields)
    assert says in str(refused.value)
    assert Ticket.select().count() == before


def test_reply_by_defaults_to_what_can_be_reached(world):
    """Should reply by phone when a number is given, by e-mail with only an address, else not at all,
    and refuse changing a ticket without a number to a reply by phone."""
    assert services.create_ticket("路灯不亮", citizen_phone="13912345678").reply_by == "phone"
    assert services.create_ticket("路灯不亮", citizen_email="a@example.cn").reply_by == "email"
    silent = services.create_ticket("路灯不亮")
    assert silent.reply_by == "none"
    with pytest.raises(TicketInputError, match="phone number"):
        services.edit_ticket(silent, world.centre_user, reply_by="phone")
    assert Ticket.get_by_id(silent.id).reply_by == "none"


def test_entry_desk_says_a_phone_reply_needs_a_number(world, login):
    """Should answer the entry form 400 with the reason in one language, and keep what was typed."""
    clerk = login(world.entry)
    reply = clerk.post_form("/entry/", {"channel": "letter", "type": "consult", "urgency": "normal",
                                        "reply_by": "phone", "content": "噪音扰民已经三天"})
    page = reply.get_data(as_text=True)
    assert reply.status_code == 400 and "选择电话答复时须填写联系电话" in page
    assert "needs a phone number" not in page and "噪音扰民已经三天" in page
    assert not Ticket.select().where(Ticket.content == "噪音扰民已经三天").exists()
