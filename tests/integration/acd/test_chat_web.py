"""Online chat (issue 11 item 5) over HTTP on both databases: the citizen's side on the public website and
the agent's side on the desk, through the server-sent-event streams, with the ACD on the in-process doubles."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from acd import chat
from acd.dispatcher import Acd, AcdSettings, create_agent
from acd.models import ChatMessage, ChatSession
from caseflow import services as case_services
from caseflow.accounts import create_user
from caseflow.models import Ticket
from core.clock import FixedClock
from tests.integration.acd.doubles import Conn, Pool, World
from tests.integration.acd.test_console_stream import _events
from tests.integration.webui_caseflow.test_portal_sms_codes import last_code, sms_on  # noqa: F401 - fixture
from webui.models import AuditLog

PASSWORD = "agent-pass-123"
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def known_captcha(monkeypatch):
    """Pictures of one letter, so a test can type the answer; the real check still runs."""
    import webui.blueprints.portal as portal_bp

    monkeypatch.setattr(portal_bp, "CAPTCHA_ALPHABET", "A")


@pytest.fixture
def desk(app, prompts):
    clock = FixedClock(dt.datetime(2024, 5, 6, 10, 0, tzinfo=dt.timezone.utc))
    app.extensions["hotline"].services.clock = clock
    queue = chat.create_queue("chat", "consult", display_name="政策咨询", offer_timeout=30, max_wait=600)
    agent_user = create_user("8001", "张三", PASSWORD, roles="agent", extension="1001")
    agent = create_agent(agent_user, {"consult": 5})
    create_agent(create_user("8002", "李四", PASSWORD, roles="agent", extension="1002"), {"suggest": 5})
    acd = Acd(Pool(Conn(World())), settings=AcdSettings(reconcile_interval=3600), prompts=prompts)
    acd.start()
    app.extensions["hotline"].services.acd = acd
    yield acd, agent, queue, clock
    acd.stop()


def events(client, url: str, seconds: float = 0.5) -> list[tuple[str, dict]]:
    """The (event, data) pairs a stream sends within ``seconds``."""
    return _events(client.get(f"{url}?max_seconds={seconds}").get_data(as_text=True))


def start_chat(client, chat_queue, **fields):
    client.get("/captcha.png")
    data = {"queue": str(chat_queue.id), "name": "王小明", "phone": "13700001111", "captcha": "AAAAA"}
    data.update(fields)
    return client.post_form("/chat/", data)


def agent_client(app):
    agent = app.test_client()
    agent.login("8001", PASSWORD)
    return agent


def test_chat_from_start_to_close_both_ways(app, client, desk):
    """Should queue the citizen's chat, offer it to the ready agent with the typed phone's profile masked, carry
    messages both ways through both streams, link the ticket saved on the desk and, when the agent closes it,
    show the citizen that ticket's acceptance number; start and end are audited."""
    acd, agent, queue, clock = desk
    earlier = case_services.create_ticket("路灯坏了", citizen_phone="13700001111", citizen_name="王小明")
    reply = start_chat(client, queue)
    assert reply.status_code == 303 and reply.headers["Location"].endswith("/chat/room")
    room = client.get("/chat/room")
    assert room.status_code == 200 and "script-src 'self'" in room.headers["Content-Security-Policy"]
    states = [d for e, d in events(client, "/chat/events") if e == "state"]
    assert states[-1]["state"] == "waiting" and states[-1]["position"] == 1
    staff = agent_client(app)
    assert staff.post_form("/desk/action", {"action": "ready"}).get_json()["ok"]
    offered = [d for e, d in events(staff, "/desk/chat/events") if e == "chats"][-1]
    assert [c["state"] for c in offered] == ["offered"]
    # The phone is what the citizen typed, unverified: the desk sees that someone holds it, masked, and
    # none of their tickets (as for a number an agent dials, issue 16 item 5).
    history = offered[0]["history"]
    assert history["masked"] and history["tickets"] == [] and history["citizen"]["name"] != "王小明"
    assert earlier.number not in json.dumps(offered)
    chat_id = offered[0]["id"]
    assert staff.post_form(f"/desk/chat/{chat_id}/answer").get_json()["ok"]
    assert client.post_form("/chat/send", {"text": "请问夜间施工噪音怎么投诉？"}).get_json()["ok"]
    lines = [d for e, d in events(staff, "/desk/chat/events") if e == "message"]
    assert "请问夜间施工噪音怎么投诉？" in [m["text"] for m in lines if m["sender"] == "citizen"]
    assert staff.post_form(f"/desk/chat/{chat_id}/send", {"text": "可以登记，我们转交城管。"}).get_json()["ok"]
    seen = events(client, "/chat/events")
    assert [d["agent"] for e, d in seen if e == "state"][-1] == "8001"
    assert "可以登记，我们转交城管。" in [d["text"] for e, d in seen if e == "message" and d["sender"] == "agent"]
    saved = staff.post_form("/desk/ticket", {"content": "夜间施工噪音", "citizen_phone": "13700001111",
                                             "citizen_name": "王小明", "type": "complaint", "chat_id": str(chat_id)})
    assert saved.status_code == 303
    ticket = Ticket.select().order_by(Ticket.id.desc()).get()
    assert ticket.channel == "chat" and ChatSession.get_by_id(chat_id).ticket_id == ticket.id
    closed = staff.post_form(f"/desk/chat/{chat_id}/close").get_json()
    assert closed == {"ok": True, "ticket": ticket.number}
    ended = [d for e, d in events(client, "/chat/events") if e == "state"][-1]
    assert ended["state"] == "closed" and ended["number"] == ticket.number
    assert [m.sender for m in chat.ticket_chats(ticket)[0][1]].count("citizen") == 1
    actions = {row.action for row in AuditLog.select().where(AuditLog.obj_type == "chat")}
    assert {"chat_start", "chat_answer", "chat_ticket", "chat_end"} <= actions
    consoled = agent_client(app)
    assert client.post_form("/chat/send", {"text": "还在吗"}).status_code == 409
    del consoled


def test_citizen_who_leaves_gets_an_acceptance_number_for_what_was_written(app, client, desk):
    """Should make a chat-channel ticket from the transcript when the citizen leaves while waiting, and show
    its acceptance number; leaving twice changes nothing."""
    _acd, _agent, queue, _clock = desk
    start_chat(client, queue, name="", phone="")
    assert client.post_form("/chat/send", {"text": "小区停车难，想反映一下"}).get_json()["ok"]
    left = client.post_form("/chat/leave").get_json()
    ticket = Ticket.get(Ticket.number == left["number"])
    assert left["state"] == "closed" and ticket.channel == "chat" and "小区停车难，想反映一下" in ticket.content
    assert client.post_form("/chat/leave").get_json()["number"] == ticket.number
    assert Ticket.select().where(Ticket.channel == "chat").count() == 1


def test_time_limits_end_chats_with_a_notice_to_both_sides(app, client, desk):
    """Should close an answered chat after the idle time with a notice and a ticket, return an unanswered
    offer to the queue, and count a citizen whose page stopped asking as gone."""
    acd, agent, queue, clock = desk
    start_chat(client, queue)
    staff = agent_client(app)
    staff.post_form("/desk/action", {"action": "ready"})
    chat_id = [d for e, d in events(staff, "/desk/chat/events") if e == "chats"][-1][0]["id"]
    clock.advance(seconds=31)
    chat.sweep(clock, chat.ChatSettings(gone_after=3600))
    assert ChatSession.get_by_id(chat_id).state == "waiting"
    events(staff, "/desk/chat/events")
    assert staff.post_form(f"/desk/chat/{chat_id}/answer").get_json()["ok"]
    clock.advance(seconds=601)
    app.config["HOTLINE_CHAT_GONE_SECONDS"] = 3600
    seen = events(client, "/chat/events")
    state = [d for e, d in seen if e == "state"][-1]
    assert state["state"] == "closed" and state["reason"] == "idle" and state["number"]
    assert any("长时间无消息" in d["text"] for e, d in seen if e == "message")
    # A second chat whose page stops asking: the citizen left, and gets a ticket all the same.
    client.post_form("/chat/new")
    start_chat(client, queue)
    clock.advance(seconds=91)
    gone = chat.sweep(clock, chat.ChatSettings())
    assert [s.end_reason for s in gone] == ["left"] and gone[0].ticket.channel == "chat"


def test_bad_input_is_refused_and_stored_nowhere(app, client, desk):
    """Should refuse a 100 KB message with the size limit, an empty one, a flood, another session's token and
    a staff page without a login; script is stored verbatim and sent as JSON text, never as markup."""
    _acd, _agent, queue, _clock = desk
    start_chat(client, queue)
    big = client.post_form("/chat/send", {"text": "字" * 100_000})
    assert big.status_code == 413 and "2000" in big.get_json()["error"]
    assert client.post_form("/chat/send", {"text": "   "}).status_code == 400
    assert client.post_form("/chat/send", {"text": SCRIPT}).get_json()["ok"]
    raw = client.get("/chat/events?max_seconds=0.5").get_data(as_text=True)
    assert SCRIPT in raw and "<script>" not in client.get("/chat/room").get_data(as_text=True).split("<main")[1]
    for n in range(9):
        client.post_form("/chat/send", {"text": f"第{n}条"})
    assert client.post_form("/chat/send", {"text": "再来"}).status_code == 429
    assert ChatMessage.select().where(ChatMessage.sender == "citizen").count() == 10
    # Another browser holding this chat's id with a token of its own, or a guessed one, reaches nothing.
    mine = ChatSession.select().get()
    other = app.test_client()
    start_chat(other, queue, phone="13900002222")
    with other.session_transaction() as held:
        own = held["portal_chat"]
        held["portal_chat"] = {"id": mine.id, "token": own["token"]}
    assert other.post_form("/chat/send", {"text": "偷看"}).status_code == 404
    assert other.get("/chat/events?max_seconds=0.5").status_code == 404
    assert other.post_form("/chat/leave").status_code == 404
    assert ChatSession.get_by_id(mine.id).state == "waiting"
    # Without the CSRF token nothing is posted; staff chat pages need a login and an agent's role.
    assert client.post("/chat/send", data={"text": "x"}).status_code == 400
    anonymous = app.test_client()
    assert anonymous.get("/desk/chat/state").status_code in (302, 401, 403)
    assert anonymous.post_form(f"/desk/chat/{mine.id}/answer").status_code in (302, 401, 403)
    # An agent cannot answer or write into a chat not offered to them.
    staff = agent_client(app)
    assert staff.post_form(f"/desk/chat/{mine.id}/answer").status_code == 404
    assert staff.post_form("/desk/chat/capacity", {"capacity": "99"}).status_code == 400
    assert staff.post_form("/desk/chat/capacity", {"capacity": "0"}).get_json() == {"ok": True, "capacity": 0}
    # A wrong start: unknown topic, over-long name, malformed phone, wrong picture.
    fresh = app.test_client()
    assert start_chat(fresh, queue, queue="999").status_code == 400
    assert start_chat(fresh, queue, name="名" * 41).status_code == 400
    assert start_chat(fresh, queue, phone="abc").status_code == 400
    assert start_chat(fresh, queue, captcha="ZZZZZ").status_code == 400


def test_capacity_limits_offers_and_the_console_shows_chat_queues(app, client, desk):
    """Should offer no more chats than the agent's capacity (one here), keep the rest waiting, and show the
    team lead the chat queue's waiting count, longest wait and the agent's active chats."""
    acd, agent, queue, clock = desk
    staff = agent_client(app)
    staff.post_form("/desk/action", {"action": "ready"})
    staff.post_form("/desk/chat/capacity", {"capacity": "1"})
    first, second = app.test_client(), app.test_client()
    start_chat(first, queue)
    start_chat(second, queue, phone="13900002222")
    chats = [d for e, d in events(staff, "/desk/chat/events") if e == "chats"][-1]
    assert len(chats) == 1
    staff.post_form(f"/desk/chat/{chats[0]['id']}/answer")
    clock.advance(seconds=20)
    create_user("9001", "班长", PASSWORD, roles="team_lead", extension="1900")
    lead = app.test_client()
    lead.login("9001", PASSWORD)
    figures = lead.get("/supervisor/stats").get_json()
    assert figures["chat_queues"][0]["waiting"] == 1 and figures["chat_queues"][0]["in_chat"] == 1
    assert figures["chat_queues"][0]["longest_wait"] >= 20
    assert figures["chat_agents"] == [{"agent_id": agent.id, "operator_no": "8001", "name": "张三", "capacity": 1,
                                       "active": 1, "offered": 0}]
    assert 'data-testid="chat-queue-stats"' in lead.get("/supervisor/").get_data(as_text=True)


# ----------------------------------------------------------------------------- phone confirmed by SMS
def _code_form(client, queue, **fields):
    data = {"queue": str(queue.id), "name": "王小明", "phone": "13700001111"}
    data.update(fields)
    return client.post_form("/chat/", data)


def test_a_phone_confirmed_by_sms_code_shows_the_citizens_history_on_the_desk(app, client, desk, sms_on):
    """Should offer an SMS code on the chat form while the SMS channel is on, start the chat with the code in
    place of the picture, remember the phone as confirmed and show the agent the citizen's earlier tickets and
    unmasked profile; a chat started with the picture code alone stays masked."""
    _acd, _agent, queue, _clock = desk
    earlier = case_services.create_ticket("路灯坏了", citizen_phone="13700001111", citizen_name="王小明")
    page = client.get("/chat/").get_data(as_text=True)
    assert 'name="sms_code"' in page and 'data-testid="send-code"' in page
    sent = _code_form(client, queue, action="send_code")
    assert sent.status_code == 200 and "137****1111" in sent.get_data(as_text=True)
    assert _code_form(client, queue, sms_code=last_code()).status_code == 303
    opened = ChatSession.get()
    assert opened.phone_verified and opened.citizen_phone == "13700001111"
    assert AuditLog.select().where((AuditLog.action == "chat_start") & AuditLog.detail.contains("verified")).exists()
    staff = agent_client(app)
    staff.post_form("/desk/action", {"action": "ready"})
    offered = [d for e, d in events(staff, "/desk/chat/events") if e == "chats"][-1][0]
    assert offered["verified"] and not offered["history"]["masked"]
    assert [t["number"] for t in offered["history"]["tickets"]] == [earlier.number]
    assert offered["history"]["citizen"]["name"] == "王小明"
    # Another browser, the same number typed with the picture code: not confirmed, masked.
    other = app.test_client()
    start_chat(other, queue)
    second = ChatSession.select().order_by(ChatSession.id.desc()).get()
    assert not second.phone_verified
    from webui.blueprints.desk_chat import chat_view

    with app.test_request_context():
        view = chat_view(second)
    assert view["history"]["masked"] and view["history"]["tickets"] == [] and not view["verified"]


def test_wrong_expired_and_overtried_chat_codes_are_refused_clearly(app, client, desk, sms_on):
    """Should refuse a wrong code (the form again, the field marked, no chat), a code of another purpose, an
    expired code and a code after five wrong tries, each with a clear message, and limit the codes sent."""
    _acd, _agent, queue, clock = desk
    assert _code_form(client, queue, action="send_code").status_code == 200
    code = last_code()
    wrong = "000000" if code != "000000" else "111111"
    refused = _code_form(client, queue, sms_code=wrong)
    assert refused.status_code == 400 and 'id="sms_code" name="sms_code"' in refused.get_data(as_text=True)
    assert 'aria-invalid="true"' in refused.get_data(as_text=True) and "还可再试4次" in refused.get_data(as_text=True)
    assert _code_form(client, queue, sms_code="12ab").status_code == 400  # not six digits
    assert ChatSession.select().count() == 0
    again = _code_form(client, queue, action="send_code")  # a second code within the minute
    assert again.status_code == 429 and "秒后再试" in again.get_data(as_text=True)
    for _ in range(4):
        _code_form(client, queue, sms_code=wrong)
    over = _code_form(client, queue, sms_code=code)  # the right code after five wrong tries
    assert over.status_code == 429 and "错误次数过多" in over.get_data(as_text=True)
    clock.advance(minutes=1, seconds=1)
    assert _code_form(client, queue, action="send_code").status_code == 200
    late = last_code()
    clock.advance(minutes=10, seconds=1)
    expired = _code_form(client, queue, sms_code=late)
    assert expired.status_code == 400 and "验证码已失效" in expired.get_data(as_text=True)
    # A code sent for the write-in form does not open a chat.
    client.post_form("/write", {"phone": "13700001111", "action": "send_code", "type": "complaint", "content": "x"})
    assert _code_form(client, queue, sms_code=last_code()).status_code == 400
    assert ChatSession.select().count() == 0
    assert AuditLog.select().where(AuditLog.action == "portal_code_failed").count() >= 7


def test_migration_adds_the_confirmed_phone_to_existing_chats(app, desk):
    """Should add chat_session.phone_verified to an existing database (migration 0013), existing chats
    unconfirmed."""
    from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

    from core.db import database, is_postgres
    from core.migrations import SchemaMigration
    from hotline.schema import create_schema

    _acd, _agent, queue, clock = desk
    db = database.obj
    migrator = PostgresqlMigrator(db) if is_postgres(db) else SqliteMigrator(db)
    migrate(migrator.drop_column("chat_session", "phone_verified"))
    db.execute_sql("INSERT INTO chat_session (queue_id, token_hash, state, citizen_name, citizen_phone, ip, "
                   "offered_agents, created_at, last_activity, citizen_seen, end_reason) VALUES "
                   "(%s, 'h', 'waiting', '', '13700001111', '', '', %s, %s, %s, '')".replace(
                       "%s", "%s" if is_postgres(db) else "?"),
                   (queue.id, *[clock.now().replace(tzinfo=None)] * 3))
    step = "0013_chat_phone_verified"
    SchemaMigration.delete().where(SchemaMigration.name == step).execute()
    assert step in create_schema()
    assert [s.phone_verified for s in ChatSession.select()] == [False]
