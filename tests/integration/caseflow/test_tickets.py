"""Ticket creation and its bad input, acceptance numbers, citizens, status queries, attachments, demo."""
from __future__ import annotations

import hashlib

import pytest

from caseflow import attachments, demo, services
from caseflow import workflow as wf
from caseflow.models import Attachment, Citizen, Department, Ticket, TicketCall, TicketHistory, User
from caseflow.services import TicketInputError
from caseflow.workflow import PermissionDenied


def test_numbers_unique_random_and_retried(db, monkeypatch):
    """Should give 8-digit numbers that are not sequential and retry on a collision."""
    numbers = [services.create_ticket(f"内容{i}").number for i in range(30)]
    assert all(len(n) == 8 and n.isdigit() and n[0] != "0" for n in numbers)
    assert len(set(numbers)) == 30
    diffs = {int(b) - int(a) for a, b in zip(numbers, numbers[1:])}
    assert len(diffs) > 25  # not a fixed step
    draws = iter([numbers[0], numbers[0], "12345678"])
    monkeypatch.setattr(services, "generate_number", lambda: next(draws))
    assert services.create_ticket("碰撞").number == "12345678"


@pytest.mark.parametrize("kwargs,message", [
    ({"content": ""}, "empty"), ({"content": "   \n "}, "empty"),
    ({"content": "长" * (services.MAX_CONTENT + 1)}, "longer"), ({"content": "a\x00b"}, "NUL"),
    ({"content": "x", "type": "weird"}, "type"), ({"content": "x", "channel": "pigeon"}, "channel"),
    ({"content": "x", "citizen_phone": "call me"}, "phone"), ({"content": "x", "urgency": "asap"}, "urgency"),
    ({"content": "x", "citizen_name": "名" * 65}, "longer"), ({"content": "x", "category": "nope"}, "category"),
])
def test_bad_input_refused(db, kwargs, message):
    """Should refuse malformed ticket input with a clear error and store nothing."""
    kwargs = dict(kwargs)
    content = kwargs.pop("content")
    with pytest.raises(TicketInputError, match=message):
        services.create_ticket(content, **kwargs)
    assert Ticket.select().count() == 0


def test_html_stored_verbatim(db):
    """Should store script and HTML exactly as typed (escaping is the template's job)."""
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    t = services.create_ticket(hostile, citizen_name="<b>张</b>", citizen_address="'; DROP TABLE ticket; --")
    stored = Ticket.get_by_id(t.id)
    assert stored.content == hostile and stored.citizen_name == "<b>张</b>"
    assert stored.citizen_address.startswith("'; DROP")


@pytest.mark.parametrize("bad", ["", "1234567", "123456789", "abcdefgh", "01234567", "1234 567x", None,
                                 "１２３４５６７８"])
def test_invalid_acceptance_numbers(db, bad):
    """Should refuse anything but 8 digits (leading digit non-zero) as an acceptance number."""
    with pytest.raises(TicketInputError):
        services.parse_number(bad)


def test_status_query_needs_phone_or_pin(db):
    """Should tell the status only with the number plus the caller's phone or the PIN, and reveal
    nothing (the same None) for a wrong pair or an unknown number."""
    t = services.create_ticket("内容", citizen_phone="13800000001")
    assert services.status_query(t.number, "13800000001")["label"] == "已受理"
    assert services.status_query(t.number, t.plain_pin)["status"] == wf.RECORDED
    assert services.status_query(t.number, "13800000002") is None
    assert services.status_query(t.number, "") is None
    other = "12345678" if t.number != "12345678" else "87654321"
    assert services.status_query(other, "13800000001") is None
    assert services.status_query("garbage", "13800000001") is None


def test_citizen_profile_and_blacklist(db, org_setup):
    """Should keep one profile per phone with history, and a blacklist flag the admin sets."""
    o = org_setup
    services.create_ticket("一", citizen_phone="138-0000-0009", citizen_name="李四")
    services.create_ticket("二", citizen_phone="13800000009")
    assert Citizen.select().count() == 1 and Citizen.get().name == "李四"
    assert [t.content for t in services.citizen_history("13800000009")] == ["二", "一"]
    with pytest.raises(PermissionDenied):
        services.set_blacklist("13800000009", True, "骚扰", actor=o.east_user)
    services.set_blacklist("13800000009", True, "反复骚扰", actor=o.admin)
    assert services.is_blacklisted("13800000009") and not services.is_blacklisted("13900000000")
    assert not services.is_blacklisted("not a number")


def test_anonymous_ticket_keeps_no_profile_name(db):
    """Should not copy an anonymous caller's name into the citizen profile."""
    services.create_ticket("匿名举报", type="report", citizen_phone="13800000010", citizen_name="王五", anonymous=True)
    assert Citizen.get(Citizen.phone == "13800000010").name == ""


def test_linked_calls_and_notes(db, org_setup):
    """Should link the intake call at creation and later calls, and append notes to the timeline."""
    o = org_setup
    t = services.create_ticket("来电", call_uuid="uuid-1", created_by=o.agent)
    services.link_call(t, "uuid-2", "callback")
    assert [c.call_uuid for c in TicketCall.select().where(TicketCall.ticket == t).order_by(TicketCall.id)] == \
        ["uuid-1", "uuid-2"]
    services.add_note(t, "补充材料已收到", actor=o.centre_user)
    with pytest.raises(services.NotFound):
        services.add_note(t, "x", actor=o.east_user)
    assert [h.action for h in services.timeline(t)] == ["create", "link_call", "note"]


def test_edit_ticket_reindexes_and_records(db, org_setup):
    """Should let the centre correct content, record what changed, and search the new text."""
    o = org_setup
    t = services.create_ticket("路灯不亮", created_by=o.agent)
    t = services.edit_ticket(t, o.centre_user, title="井盖缺失", content="人行道井盖缺失", type="help")
    assert services.search_tickets(o.centre_user, text="井盖")[0].id == t.id
    assert services.search_tickets(o.centre_user, text="路灯") == []
    assert "content" in services.timeline(t)[-1].note
    with pytest.raises(PermissionDenied):
        services.edit_ticket(t, o.east_user, content="x")


def test_attachments(db, org_setup, tmp_path):
    """Should store a file with size and sha256, refuse empty and oversized ones, and keep names safe."""
    o = org_setup
    t = services.dispatch(services.create_ticket("附件", created_by=o.agent), o.centre_user, o.east)
    data = "回复函".encode() * 100
    row = attachments.add_attachment(t, tmp_path, data, "../../etc/passwd<script>.pdf", actor=o.east_user)
    assert row.size == len(data) and row.sha256 == hashlib.sha256(data).hexdigest()
    assert "/" not in row.filename and ".." not in row.path
    assert attachments.resolve(tmp_path, row).read_bytes() == data
    with pytest.raises(attachments.AttachmentError, match="empty"):
        attachments.add_attachment(t, tmp_path, b"", "a.txt", actor=o.east_user)
    with pytest.raises(attachments.AttachmentError):
        attachments.add_attachment(t, tmp_path, b"x" * 11, "a.txt", actor=o.east_user, max_size=10)
    with pytest.raises(services.NotFound):
        attachments.add_attachment(t, tmp_path, b"x", "a.txt", actor=o.west_user)
    assert Attachment.select().count() == 1
    assert not list(tmp_path.rglob("*.part"))
    row.path = "../../outside"
    with pytest.raises(attachments.AttachmentError):
        attachments.resolve(tmp_path, row)


def test_search_by_phone_date_status(db, org_setup, clock):
    """Should combine number, phone, status, department and date filters."""
    o = org_setup
    a = services.create_ticket("甲", citizen_phone="13800000021", created_by=o.agent, clock=clock)
    b = services.dispatch(services.create_ticket("乙", citizen_phone="13800000021", created_by=o.agent, clock=clock),
                          o.centre_user, o.east, clock=clock)
    u = o.centre_user
    assert {t.id for t in services.search_tickets(u, phone="13800000021")} == {a.id, b.id}
    assert [t.id for t in services.search_tickets(u, phone="13800000021", status="dispatched")] == [b.id]
    assert [t.id for t in services.search_tickets(u, department=o.east.id)] == [b.id]
    assert [t.id for t in services.search_tickets(u, number=a.number)] == [a.id]
    assert len(services.search_tickets(u, date_from="2026-03-04", date_to="2026-03-04")) == 2
    assert services.search_tickets(u, date_from="2026-03-05") == []
    with pytest.raises(TicketInputError):
        services.search_tickets(u, date_from="yesterday")
    with pytest.raises(TicketInputError):
        services.search_tickets(u, status="nonsense")


def test_demo_loads_once(db):
    """Should create the demo organisation, users for every role and tickets, and not load twice."""
    accounts = demo.load_demo()
    assert {"0001", "1001", "8001", "9001", "7001"} <= {a[0] for a in accounts}
    assert Department.select().where(Department.level == 3).count() >= 3
    assert User.get(User.operator_no == "1001").extension == "1000"
    from caseflow.accounts import verify_password
    assert verify_password(User.get(User.operator_no == "9001").password_hash, demo.DEMO_PASSWORD)
    statuses = {t.status for t in Ticket.select()}
    assert {wf.RECORDED, wf.DISPATCHED, wf.IN_PROGRESS, wf.REPLIED, wf.CLOSED, wf.RETURNED} <= statuses
    assert TicketHistory.select().count() > Ticket.select().count()
    assert demo.load_demo() == []


def test_index_follows_direct_writes(db, org_setup):
    """Should index tickets written without the services (bulk loads, other packages) and forget deleted ones."""
    from caseflow import search

    o = org_setup
    services.create_ticket("先建一张，索引就位", created_by=o.agent)
    direct = Ticket.create(number="87654321", content="自来水管爆裂", search_text=search.index_text("自来水管爆裂"))
    assert [t.id for t in services.search_tickets(o.centre_user, text="水管爆裂")] == [direct.id]
    Ticket.update(search_text=search.index_text("燃气泄漏")).where(Ticket.id == direct.id).execute()
    assert services.search_tickets(o.centre_user, text="水管爆裂") == []
    direct.delete_instance()
    assert services.search_tickets(o.centre_user, text="燃气泄漏") == []
    assert len(services.search_tickets(o.centre_user, text="索引就位")) == 1


def test_ticket_answered_on_the_call_keeps_both_or_neither(org_setup, clock):
    """Should record and answer a ticket in one step when the agent replies on the call (直接答复), and keep
    nothing when the reply is refused (the ticket is not left recorded without its answer)."""
    ticket = services.create_ticket("路灯不亮", citizen_phone="13800001111", created_by=org_setup.agent,
                                    call_uuid="call-1", clock=clock, reply="已告知市民报修电话")
    assert ticket.status == wf.ANSWERED and ticket.reply == "已告知市民报修电话"
    assert [h.action for h in TicketHistory.select().where(TicketHistory.ticket == ticket)
            .order_by(TicketHistory.id)] == ["create", "answer"]
    before = Ticket.select().count()
    with pytest.raises(TicketInputError):
        services.create_ticket("路灯不亮", citizen_phone="13800001111", created_by=org_setup.agent, clock=clock,
                               reply="长" * (services.MAX_CONTENT + 1))
    assert Ticket.select().count() == before
