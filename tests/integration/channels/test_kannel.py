"""Against a real Kannel (bearerbox + smsbox) with fakesmsc as the operator: long Chinese text, inbound to a
ticket with its receipt, delivery reports, and Kannel stopped and restarted with nothing lost or doubled."""
from caseflow.models import Ticket
from channels import notices
from channels.kannel import KannelClient
from channels.models import Message
from channels.outbox import Outbox, enqueue
from core.clock import Clock
from tests.integration.channels.conftest import SECRET, fakesmsc_messages, wait_until


def _outbox(runner, base, settings, clock):
    s = runner.settings
    client = KannelClient(s.sendsms_url, s.sendsms_user, s.sendsms_password,
                          dlr_url=f"{base}/sms/dlr?secret={SECRET}", timeout=5)
    return Outbox(client.send, settings, clock=clock, on_sent=notices.after_sent)


def test_long_chinese_text_arrives_whole_and_is_reported_delivered(served_app, kannel_box, clock):
    """Should send a 3-part Chinese message (UCS-2, concatenated) that fakesmsc receives whole, and mark it
    delivered from Kannel's delivery report."""
    base, settings = served_app
    runner = kannel_box(base)
    text = "【12345热线】您反映的小区路灯不亮问题已转市政部门办理，请保持电话畅通。" * 4
    m = enqueue("13800138000", "material", {"topic": "路灯", "text": text}, answer=True, settings=settings, clock=clock)
    assert m.segments >= 3
    assert _outbox(runner, base, settings, clock).run_once()["sent"] == 1
    got = wait_until(lambda: fakesmsc_messages(runner.received()), what="fakesmsc to receive the message")
    assert got == [("13800138000", m.body)]
    wait_until(lambda: Message.get_by_id(m.id).status == "delivered", what="the delivery report")


def test_inbound_message_becomes_ticket_and_receipt_arrives(served_app, kannel_box, clock):
    """Should turn a Chinese SMS injected at fakesmsc into an sms ticket and deliver its receipt back."""
    base, settings = served_app
    runner = kannel_box(base)
    runner.inject("13900139000", "1063912345", "东门路灯坏了三天了，请派人修理😀")
    ticket = wait_until(lambda: Ticket.get_or_none(Ticket.channel == "sms"), what="the ticket")
    assert ticket.content == "东门路灯坏了三天了，请派人修理😀" and ticket.citizen_phone == "13900139000"
    # The web app stamps the message with its own (wall) clock: the outbox reads the same time.
    assert _outbox(runner, base, settings, Clock()).run_once()["sent"] == 1
    got = wait_until(lambda: fakesmsc_messages(runner.received()), what="the receipt at fakesmsc")
    assert got[0][0] == "13900139000" and ticket.number in got[0][1] and ticket.query_pin in got[0][1]


def test_kannel_down_then_back_nothing_lost_nothing_doubled(served_app, kannel_box, clock):
    """Should keep messages queued while Kannel is stopped and send each exactly once, in order, when it
    is back."""
    base, settings = served_app
    runner = kannel_box(base)
    box = _outbox(runner, base, settings, clock)
    first = [enqueue("13800000%03d" % i, "optout", {}, answer=True, settings=settings, clock=clock) for i in range(5)]
    assert box.run_once()["sent"] == 5
    wait_until(lambda: len(fakesmsc_messages(runner.received())) == 5, what="the first five")
    runner.stop()
    later = [enqueue("13800000%03d" % i, "status_unknown", {}, answer=True, settings=settings, clock=clock)
             for i in range(5)]
    counts = box.run_once()
    assert counts["sent"] == 0 and counts["retry"] == 1
    assert {Message.get_by_id(m.id).status for m in later} == {"queued"}
    runner.start()
    clock.advance(minutes=1)
    assert box.run_once()["sent"] == 5
    got = wait_until(lambda: (lambda g: g if len(g) == 10 else None)(fakesmsc_messages(runner.received())),
                     what="all ten at fakesmsc")
    assert sorted(got) == sorted({(m.address, m.body) for m in first + later})
    assert len(set(got)) == 10
    assert box.run_once()["sent"] == 0
