"""/sms/inbound and /sms/dlr through Flask: the guards, bad input, and what each message becomes."""
import pytest

from caseflow import services
from caseflow.models import Ticket, TicketHistory
from channels.models import Message, OptOut
from tests.integration.channels.conftest import SECRET
from tests.pin_check import pin_in


@pytest.fixture
def client(app, org_setup):
    from channels.settings import SmsSettings
    from core.config import load_config
    config = load_config({"mode": "test", "secret_key": "k" * 40, "HOTLINE_SMS_SECRET": SECRET})
    app.extensions["hotline"].services.sms_settings = SmsSettings.from_config(config)
    return app.test_client()


def inbound(client, text, sender="13800138000", secret=SECRET, addr="127.0.0.1", **extra):
    params = {"secret": secret, "from": sender, "to": "1063912345", "text": text, "charset": "UTF-8",
              "coding": "0", **extra}
    return client.get("/sms/inbound", query_string=params, environ_base={"REMOTE_ADDR": addr})


def test_guards(client):
    """Should refuse a wrong or missing secret and an address off the allow list with 403 and a clear body."""
    r = inbound(client, "hello", secret="wrong")
    assert r.status_code == 403 and b"secret" in r.data
    r = client.get("/sms/inbound", query_string={"from": "13800138000", "text": "x"})
    assert r.status_code == 403
    r = inbound(client, "hello", addr="10.1.2.3")
    assert r.status_code == 403 and b"10.1.2.3" in r.data
    assert Message.select().count() == 0


@pytest.mark.parametrize("sender", ["", "abc", "138001380001234567890123", "13800<x>"])
def test_malformed_number(client, sender):
    """Should answer 400 for a malformed sender and store nothing."""
    r = inbound(client, "路灯坏了", sender=sender)
    assert r.status_code == 400 and b"number" in r.data
    assert Message.select().count() == 0 and Ticket.select().count() == 0


@pytest.mark.parametrize("connected", [False, True], ids=["no receipt writer", "receipts connected"])
def test_new_message_becomes_ticket_with_receipt(client, request, connected):
    """Should make a 1,000-character message with emoji a ticket (channel sms) and queue one receipt, whether the
    process's receipt writers wrote it with the ticket (a product connects them) or the intake queues it (none
    connected), also to a number that opted out (it answers the citizen's own message)."""
    OptOut.create(address="13800138000")
    if connected:
        request.getfixturevalue("sms_receipts")
    text = ("楼下烧烤油烟扰民😡" * 120)[:1000]
    r = inbound(client, text, id="kannel-1")
    assert r.status_code == 200 and r.headers["X-Hotline-Outcome"] == "ticket"
    ticket = Ticket.get(Ticket.number == r.headers["X-Hotline-Ticket"])
    assert ticket.channel == "sms" and ticket.content == text and ticket.citizen_phone == "13800138000"
    (receipt,) = Message.select().where((Message.direction == "out") & (Message.purpose == "receipt"))
    assert ticket.number in receipt.body and pin_in(receipt.body, ticket)
    again = inbound(client, text, id="kannel-1")
    assert again.headers["X-Hotline-Outcome"] == "duplicate" and Ticket.select().count() == 1


def test_ucs2_and_bad_charset(client):
    """Should decode UCS-2 text sent raw (coding 2) and refuse bytes that are not the named charset."""
    raw = "井盖丢失".encode("utf-16-be")
    r = client.get("/sms/inbound?secret=%s&from=13800138001&coding=2&charset=UTF-16BE&text=%s"
                   % (SECRET, "".join(f"%{b:02X}" for b in raw)))
    assert r.status_code == 200
    assert Ticket.get(Ticket.number == r.headers["X-Hotline-Ticket"]).content == "井盖丢失"
    r = client.get("/sms/inbound?secret=%s&from=13800138001&charset=UTF-8&text=%%FF%%FE" % SECRET)
    assert r.status_code == 400 and b"UTF-8" in r.data


def test_query_only_from_the_registered_phone(client, org_setup):
    """Should answer CX with the citizen status words to the ticket's phone, and 'not found' to another."""
    t = services.create_ticket("噪音", citizen_phone="13800138002", created_by=org_setup.agent)
    r = inbound(client, f"CX {t.number}", sender="13800138002")
    assert r.headers["X-Hotline-Outcome"] == "query"
    answer = Message.select().where(Message.template_key == "status").get()
    assert answer.address == "13800138002" and t.number in answer.body
    inbound(client, f"CX{t.number}", sender="13800138003")
    other = Message.get((Message.address == "13800138003") & (Message.direction == "out"))
    assert other.template_key == "status_unknown" and t.number not in other.body


def test_opt_out_recorded(client):
    """Should record TD and confirm it."""
    inbound(client, "TD")
    assert OptOut.get(OptOut.address == "13800138000").keyword == "TD"
    assert Message.get(Message.direction == "out").template_key == "optout"


def test_blacklisted_number_gets_nothing(client):
    """Should keep a blacklisted number's message as ignored, make no ticket and send nothing."""
    services.set_blacklist("13800138009", True, "骚扰")
    r = inbound(client, "骚扰内容", sender="13800138009")
    assert r.headers["X-Hotline-Outcome"] == "blacklisted"
    assert Ticket.select().count() == 0 and Message.select().where(Message.direction == "out").count() == 0
    assert Message.select().where(Message.status == "ignored").count() == 1


def asked(o, phone: str):
    """An approved ticket of ``phone`` with its satisfaction question sent (open for a reply), and its PIN."""
    import datetime as dt

    from channels.outbox import enqueue

    t = services.create_ticket("噪音", citizen_phone=phone, reply_by="sms", created_by=o.agent)
    pin = t.plain_pin
    t = services.dispatch(t, o.centre_user, o.east)
    t = services.transition(t, "accept", o.east_user)
    t = services.transition(t, "reply", o.east_user, reply="已处理")
    t = services.transition(t, "approve", o.centre_user)
    q = enqueue(phone, "satisfaction", {"number": t.number}, purpose="satisfaction", ticket=t)
    Message.update(status="sent", sent_at=dt.datetime.utcnow()).where(Message.id == q.id).execute()
    return t, pin


def test_rating_reply_is_a_call_back(client, org_setup, clock):
    """Should count a '1' replying to an open satisfaction question as the call-back rating of that ticket."""
    t, _pin = asked(org_setup, "13800138004")
    r = inbound(client, "1", sender="13800138004")
    assert r.headers["X-Hotline-Outcome"] == "rating"
    t = Ticket.get_by_id(t.id)
    assert t.satisfaction == "satisfied" and t.status == "called_back"
    assert TicketHistory.select().where((TicketHistory.ticket == t) & (TicketHistory.action == "call_back")).exists()


def test_a_reply_quoting_the_receipt_is_kept_without_its_pin(client, org_setup):
    """Should store a citizen's text to an open satisfaction question, and the note it becomes on that ticket,
    with the ticket's query PIN masked where the citizen pasted the receipt back, their other numbers kept."""
    from caseflow import pins

    t, pin = asked(org_setup, "13800138005")
    other = f"{(int(pin) + 1) % 10 ** 6:06d}"  # a number of the citizen's own, never the PIN
    r = inbound(client, f"还没修好，灯杆{other}。受理号{t.number}，查询码{pin}", sender="13800138005")
    assert r.headers["X-Hotline-Outcome"] == "reply"
    body = Message.get((Message.direction == "in") & (Message.address == "13800138005")).body
    assert body == f"还没修好，灯杆{other}。受理号{t.number}，查询码******"
    notes = [h.note for h in TicketHistory.select().where(TicketHistory.ticket == t)]
    assert not [note for note in notes if pin in note] and any(body in note for note in notes)
    assert pins.verify(Ticket.get_by_id(t.id), pin)


def test_a_receipt_pasted_into_a_new_text_is_kept_without_its_pin(client, org_setup):
    """Should store a text threaded to no ticket that pastes a receipt (a neighbour forwarding theirs), and the
    ticket it becomes, with the PIN after the receipt's wording masked and the writer's other numbers kept."""
    t, pin = asked(org_setup, "13800138005")
    other = f"{(int(pin) + 1) % 10 ** 6:06d}"
    r = inbound(client, f"邻居的回执：受理号{t.number}，查询码{pin}。我家门牌{other}也停电", sender="13800138006")
    assert r.headers["X-Hotline-Outcome"] == "ticket"
    body = Message.get((Message.direction == "in") & (Message.address == "13800138006")).body
    assert body == f"邻居的回执：受理号{t.number}，查询码******。我家门牌{other}也停电"
    made = Ticket.get(Ticket.number == r.headers["X-Hotline-Ticket"])
    assert pin not in made.content and other in made.content


def test_the_texts_are_read_before_the_write_transaction_and_an_edit_applies_to_the_next_message(client, db):
    """Should read the templates an inbound SMS uses (a pasted receipt's wording, the answer) before its write
    transaction (on SQLite BEGIN IMMEDIATE: a read inside holds the write lock), never inside it, and for each
    message: an answer and a receipt's wording edited in the web UI (channels.templates.save) apply to the very
    next message."""
    from channels import templates
    from channels.models import MessageTemplate
    from tests.integration.webui_caseflow.test_portal_round_trips import commits_counted

    table = f'"{MessageTemplate._meta.table_name}"'
    with commits_counted(db) as (seen, _):
        inbound(client, "CX12345678", sender="13800138007")
    assert [inside for sql, inside in seen if table in sql] == [False]  # one read, outside the transaction
    templates.save("status_unknown", "zh", "【12345】查无此号（已改）", "admin")
    templates.save("receipt", "zh", "【12345】受理号{{ number }}，查询密码：{{ pin }}。", "admin")
    inbound(client, "CX12345678", sender="13800138007")
    answers = Message.select().where((Message.address == "13800138007") & (Message.direction == "out")).order_by(
        Message.id)
    assert [m.template_key for m in answers] == ["status_unknown"] * 2 and answers[-1].body == "【12345】查无此号（已改）"
    r = inbound(client, "朋友的回执：查询密码：123456。我这边也停水", sender="13800138008")
    pasted = Message.get((Message.address == "13800138008") & (Message.direction == "in"))
    assert r.headers["X-Hotline-Outcome"] == "ticket" and pasted.body == "朋友的回执：查询密码：******。我这边也停水"


def test_delivery_report_endpoint(client):
    """Should apply a report, 404 an unknown id, 400 a malformed one, 403 without the secret."""
    from channels.outbox import enqueue
    m = enqueue("13800138005", "optout", {}, answer=True)
    Message.update(status="sent").where(Message.id == m.id).execute()
    env = {"REMOTE_ADDR": "127.0.0.1"}
    r = client.get("/sms/dlr", query_string={"secret": SECRET, "id": m.id, "type": 1}, environ_base=env)
    assert r.status_code == 200 and Message.get_by_id(m.id).status == "delivered"
    r = client.get("/sms/dlr", query_string={"secret": SECRET, "id": 987654, "type": 1}, environ_base=env)
    assert r.status_code == 404 and b"unknown message id" in r.data
    r = client.get("/sms/dlr", query_string={"secret": SECRET, "id": "x", "type": 1}, environ_base=env)
    assert r.status_code == 400
    r = client.get("/sms/dlr", query_string={"id": m.id, "type": 2}, environ_base=env)
    assert r.status_code == 403 and Message.get_by_id(m.id).status == "delivered"
