"""The outbox and the notices on a real database (SQLite and PostgreSQL), with a recording gateway."""
import datetime as dt

from caseflow import services
from caseflow import workflow as wf
from caseflow.models import Notification
from channels import notices, outbox
from channels.models import Message, OptOut
from channels.outbox import Outbox, enqueue
from tests.pin_check import pin_in


def _outbox(gateway, sms_settings, clock):
    return Outbox(gateway, sms_settings, clock=clock, on_sent=notices.after_sent,
                  on_failed=lambda m: notices.after_failed(m, clock))


def test_receipt_for_every_new_ticket_once(org_setup, clock, gateway, sms_settings, sms_receipts):
    """Should queue one receipt with number and query PIN with a new ticket with a mobile (in its creation: the
    history holds no PIN to send later), none for a landline, and none more when the history is read again."""
    notices.start_cursor()
    t = services.create_ticket("路灯不亮", citizen_phone="13800000001", created_by=org_setup.agent, clock=clock)
    services.create_ticket("座机来电", citizen_phone="02088880000", created_by=org_setup.agent, clock=clock)
    assert Message.select().where(Message.purpose == "receipt").count() == 1
    from channels.models import ChannelCursor
    ChannelCursor.update(position=0).execute()
    notices.scan_history(sms_settings, clock)
    assert Message.select().count() == 1
    box = _outbox(gateway, sms_settings, clock)
    assert box.run_once()["sent"] == 1
    (_id, to, text), = gateway.sent
    assert to == "13800000001" and t.number in text and pin_in(text, t) == t.plain_pin
    assert Message.get_by_id(_id).status == "sent" and Message.get_by_id(_id).ticket_id == t.id


def test_result_notice_and_satisfaction_question_on_approve(org_setup, clock, gateway, sms_settings, sms_receipts):
    """Should send the result notice on approval, and the satisfaction question when the reply is by SMS."""
    o = org_setup
    notices.start_cursor()
    t = services.create_ticket("噪音", citizen_phone="13800000002", reply_by="sms", created_by=o.agent, clock=clock)
    t = services.dispatch(t, o.centre_user, o.east, clock=clock)
    t = services.transition(t, "accept", o.east_user, clock=clock)
    t = services.transition(t, "reply", o.east_user, reply="已整改。", clock=clock)
    t = services.transition(t, "approve", o.centre_user, clock=clock)
    notices.scan_history(sms_settings, clock)
    _outbox(gateway, sms_settings, clock).run_once()
    purposes = [m.purpose for m in Message.select().where(Message.address == "13800000002").order_by(Message.id)]
    assert purposes == ["receipt", "result", "satisfaction"]
    assert "已整改" in gateway.sent[1][2] and "回复1满意" in gateway.sent[2][2]


def test_unit_alerts_go_to_the_contact_phone(org_setup, clock, gateway, sms_settings):
    """Should alert the unit's contact phone on a new dispatch and when the ticket becomes overdue."""
    o = org_setup
    o.east.contact_phone = "13900000009"
    o.east.save()
    notices.start_cursor()
    t = services.create_ticket("井盖丢失", created_by=o.agent, clock=clock)
    services.dispatch(t, o.centre_user, o.east, clock=clock)
    from caseflow import jobs
    clock.advance(days=30)
    jobs.mark_overdue(clock)
    notices.scan_history(sms_settings, clock)
    alerts = [m.template_key for m in Message.select().where(Message.address == "13900000009").order_by(Message.id)]
    assert alerts == ["dispatch_alert", "overdue_alert"]


def test_order_per_recipient_and_retry_when_the_gateway_is_down(db, clock, gateway, sms_settings):
    """Should keep messages queued while the gateway is down and send them in order, once each, when back."""
    ids = [enqueue("13800000003", "optout", {}, answer=True, settings=sms_settings, clock=clock).id for _ in range(3)]
    box = _outbox(gateway, sms_settings, clock)
    gateway.down = True
    assert box.run_once()["retry"] == 1
    assert [m.status for m in Message.select().order_by(Message.id)] == ["queued"] * 3
    clock.advance(seconds=2)
    assert box.run_once()["sent"] == 0  # backing off
    gateway.down = False
    clock.advance(seconds=10)
    assert box.run_once()["sent"] == 3
    assert [s[0] for s in gateway.sent] == ids
    assert box.run_once()["sent"] == 0 and len(gateway.sent) == 3



class SlowGateway:
    """A gateway whose every call takes a while (a gevent sleep, so calls overlap in the pool); records how
    many were in flight at once, overall and per recipient, and the order each recipient got its texts."""

    def __init__(self):
        self.in_flight, self.most, self.by_address, self.most_per_address = 0, 0, {}, 0
        self.sent: list[tuple[int, str, str]] = []

    def __call__(self, message_id, to, text):
        import gevent

        self.in_flight += 1
        self.by_address[to] = self.by_address.get(to, 0) + 1
        self.most = max(self.most, self.in_flight)
        self.most_per_address = max(self.most_per_address, self.by_address[to])
        try:
            gevent.sleep(0.02)
            self.sent.append((message_id, to, text))
            return "0: Accepted for delivery"
        finally:
            self.in_flight -= 1
            self.by_address[to] -= 1


def test_round_sends_from_a_bounded_pool_in_order_per_recipient(db, clock, sms_settings):
    """Should have at most `concurrency` gateway calls in flight (and use them), never two to one recipient
    at once, send each message once and each recipient's messages in the order they were queued."""
    import dataclasses

    settings = dataclasses.replace(sms_settings, concurrency=4, rate=0, daily_cap=0)
    gateway = SlowGateway()
    queued = [enqueue("1380000%04d" % (i % 12), "optout" if i < 12 else "status_unknown", {}, answer=True,
                      settings=settings, clock=clock) for i in range(30)]
    counts = Outbox(gateway, settings, clock=clock).run_once()
    assert counts == {"sent": 30, "retry": 0, "failed": 0, "waiting": 0}
    assert gateway.most == 4 and gateway.most_per_address == 1
    assert sorted(m_id for m_id, _to, _text in gateway.sent) == [m.id for m in queued]
    for address in {m.address for m in queued}:
        got = [m_id for m_id, to, _text in gateway.sent if to == address]
        assert got == sorted(got)
    assert {m.status for m in Message.select()} == {"sent"}


def test_dead_gateway_costs_one_call_a_round(db, clock, gateway, sms_settings):
    """Should try a dead gateway once a round (not once per pool slot), leave everything queued, and send
    everything once the gateway is back."""
    import dataclasses

    settings = dataclasses.replace(sms_settings, concurrency=8, rate=0, daily_cap=0)
    for i in range(10):
        enqueue("1390000%04d" % i, "optout", {}, answer=True, settings=settings, clock=clock)
    box = Outbox(gateway, settings, clock=clock)
    gateway.down = True
    calls = []
    real = gateway.__call__

    def counting(message_id, to, text):
        calls.append(message_id)
        return real(message_id, to, text)

    box.send = counting
    assert box.run_once() == {"sent": 0, "retry": 1, "failed": 0, "waiting": 9}
    assert len(calls) == 1 and {m.status for m in Message.select()} == {"queued"}
    gateway.down = False
    clock.advance(minutes=1)
    assert box.run_once()["sent"] == 10 and len(gateway.sent) == 10


def test_rate_limit_spaces_the_calls(db, clock, gateway, sms_settings):
    """Should hand messages to the gateway no faster than the rate after the first burst (rate 50 a second:
    a burst of 5 at once, then one every 20 ms), on the rate limit's own clock."""
    import dataclasses

    settings = dataclasses.replace(sms_settings, concurrency=8, rate=50, daily_cap=0)
    for i in range(15):
        enqueue("1370000%04d" % i, "optout", {}, answer=True, settings=settings, clock=clock)
    box = Outbox(gateway, settings, clock=clock)
    moment = [100.0]
    box.monotonic = lambda: moment[0]
    box.sleep = lambda seconds: moment.__setitem__(0, moment[0] + seconds)
    stamps = []

    def stamping(message_id, to, text):
        stamps.append(moment[0])
        return gateway(message_id, to, text)

    box.send = stamping
    assert box.run_once()["sent"] == 15
    gaps = [round(b - a, 6) for a, b in zip(stamps, stamps[1:])]
    assert gaps[:4] == [0.0] * 4 and gaps[4:] == [0.02] * 10

def test_interrupted_send_is_failed_not_resent(db, clock, gateway, sms_settings):
    """Should fail a message left in 'sending' by a stopped process and alarm the centre, never resend it."""
    from caseflow import org
    org.create_department("C", "热线中心", None, "centre")
    m = enqueue("13800000004", "optout", {}, answer=True, settings=sms_settings, clock=clock)
    Message.update(status="sending").where(Message.id == m.id).execute()
    box = _outbox(gateway, sms_settings, clock)
    assert box.recover() == 1
    box.run_once()
    assert gateway.sent == [] and Message.get_by_id(m.id).status == "failed"
    assert Notification.select().where(Notification.kind == "sms_failed").count() == 1


def test_retry_budget_then_alarm(db, clock, gateway, sms_settings):
    """Should give up after the retry budget and raise an alarm on the centre's desk."""
    from caseflow import org
    org.create_department("C", "热线中心", None, "centre")
    m = enqueue("13800000005", "optout", {}, answer=True, settings=sms_settings, clock=clock)
    box = _outbox(gateway, sms_settings, clock)
    gateway.down = True
    for _ in range(sms_settings.max_attempts):
        box.run_once()
        clock.advance(minutes=10)
    assert Message.get_by_id(m.id).status == "failed"
    assert Notification.select().where(Notification.kind == "sms_failed").count() == 1


def test_quiet_hours_and_daily_cap(db, clock, gateway, sms_settings):
    """Should hold a non-urgent notice until 08:00 and refuse past the daily cap (5 in this test)."""
    clock.set(dt.datetime(2026, 3, 4, 22, 0))
    night = enqueue("13800000006", "result", {"number": "12345678", "reply": "好"}, settings=sms_settings, clock=clock)
    box = _outbox(gateway, sms_settings, clock)
    box.run_once()
    assert Message.get_by_id(night.id).status == "queued"
    clock.set(dt.datetime(2026, 3, 5, 8, 1))
    box.run_once()
    assert Message.get_by_id(night.id).status == "sent"
    for _ in range(6):
        enqueue("13800000006", "optout", {}, answer=True, settings=sms_settings, clock=clock)
    box.run_once()
    statuses = [m.status for m in Message.select().order_by(Message.id)]
    assert statuses.count("sent") == 5 and statuses[-1] == "failed"
    assert "daily cap" in Message.select().order_by(Message.id.desc()).first().error


def test_opt_out_stops_notices_not_answers(db, clock, sms_settings):
    """Should queue no notice to a number that opted out, but still answer its own message."""
    OptOut.create(address="13800000007")
    assert enqueue("13800000007", "result", {"number": "1", "reply": "x"}, settings=sms_settings, clock=clock) is None
    assert enqueue("13800000007", "status_unknown", {}, answer=True, settings=sms_settings, clock=clock) is not None


def test_delivery_report(db, clock, sms_settings):
    """Should mark delivered on a report, keep delivered on a late 'accepted', refuse an unknown id."""
    import pytest
    m = enqueue("13800000008", "optout", {}, answer=True, settings=sms_settings, clock=clock)
    Message.update(status="sent").where(Message.id == m.id).execute()
    assert outbox.apply_report(m.id, 1, "", "abc").status == "delivered"
    assert outbox.apply_report(m.id, 8, "ACK/").status == "delivered"
    assert Message.get_by_id(m.id).provider_id == "abc"
    with pytest.raises(LookupError):
        outbox.apply_report(999999, 1)


def test_material_request_sent_for_real(org_setup, clock, gateway, sms_settings):
    """Should send an IVR material request by SMS from the reviewed knowledge answer and mark it sent only
    once the SMS left; a topic without an answer stays pending for the centre."""
    from caseflow import knowledge
    from caseflow.models import MaterialRequest
    item = knowledge.create_item("社保卡补办", "携带身份证到社保中心补办。", review_state="approved")
    assert item.id
    req = MaterialRequest.create(caller="13800000010", topic="社保卡", channel="sms")
    lost = MaterialRequest.create(caller="13800000010", topic="无此主题xyz", channel="sms")
    notices.queue_material(sms_settings, clock)
    assert MaterialRequest.get_by_id(req.id).status == "pending"
    _outbox(gateway, sms_settings, clock).run_once()
    assert MaterialRequest.get_by_id(req.id).status == "sent"
    assert MaterialRequest.get_by_id(lost.id).status == "pending"
    assert "身份证" in gateway.sent[-1][2]


def test_wf_status_known():
    """Should use the workflow's approved status for open satisfaction questions."""
    assert wf.APPROVED == "approved"


def test_no_answer_from_the_gateway_is_failed_not_resent(db, clock, gateway, sms_settings):
    """Should fail (not resend) a message whose request reached the gateway without an answer coming back,
    tell the centre, let the recipient's next message go, and take a later delivery report at its word."""
    from caseflow import org
    from channels.kannel import GatewayUnsure
    org.create_department("C", "热线中心", None, "centre")
    first, second = (enqueue("13800000011", key, {}, answer=True, settings=sms_settings, clock=clock)
                     for key in ("optout", "status_unknown"))
    box = _outbox(gateway, sms_settings, clock)

    def no_answer(message_id, to, text):
        raise GatewayUnsure("no answer from Kannel after the request (test)")

    box.send = no_answer
    assert box.run_once()["failed"] == 1
    failed = Message.get_by_id(first.id)
    assert failed.status == "failed" and "not resent" in failed.error
    assert Notification.select().where(Notification.kind == "sms_failed").count() == 1
    box.send = gateway
    clock.advance(minutes=1)
    assert box.run_once()["sent"] == 1
    assert [s[0] for s in gateway.sent] == [second.id]
    assert outbox.apply_report(first.id, 1, "", "").status == "delivered"


def test_report_before_the_failure_is_stored_keeps_its_state(db, clock, sms_settings):
    """Should keep the state a delivery report gave when the round then fails the message for want of an
    answer (Kannel took it and reported within milliseconds)."""
    from channels.kannel import GatewayUnsure
    m = enqueue("13800000012", "optout", {}, answer=True, settings=sms_settings, clock=clock)

    def reported_then_lost(message_id, to, text):
        outbox.apply_report(message_id, 1)
        raise GatewayUnsure("no answer (test)")

    Outbox(reported_then_lost, sms_settings, clock=clock).run_once()
    assert Message.get_by_id(m.id).status == "delivered"


def refuse_stores(box, times: int = 2) -> list:
    """Have the database refuse ``box``'s first ``times`` stores of sent messages (in the round and in its
    tidying up), then store as before; returns the sizes refused."""
    import peewee

    store, refusals = box._store, []

    def refusing(done):
        if done and len(refusals) < times:
            refusals.append(len(done))
            raise peewee.OperationalError("database is locked (test)")
        return store(done)

    box._store = refusing
    return refusals


def test_round_failing_midway_loses_nothing(db, clock, sms_settings):
    """Should, when the database refuses a statement in the middle of a round (twice: in the round and when
    the round tries to tidy up), still store as sent what the gateway took and queue again what it never got,
    at the next round, so every message is sent exactly once; before, they stayed 'sending' for good."""
    import dataclasses

    import peewee
    import pytest

    settings = dataclasses.replace(sms_settings, concurrency=4, rate=0, daily_cap=0)
    queued = [enqueue("1370000%04d" % i, "optout", {}, answer=True, settings=settings, clock=clock)
              for i in range(20)]
    gateway = SlowGateway()  # calls overlap: when the database refuses, some are in flight, some not begun
    box = Outbox(gateway, settings, clock=clock)
    refusals = refuse_stores(box)
    with pytest.raises(peewee.OperationalError):
        box.run_once()
    assert len(refusals) == 2 and 0 < len(gateway.sent) < 20
    assert Message.select().where(Message.status == "sending").count() > 0  # owed to the next round
    box.run_once()
    assert sorted(m_id for m_id, _to, _text in gateway.sent) == [m.id for m in queued]
    assert {m.status for m in Message.select()} == {"sent"}
