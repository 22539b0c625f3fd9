"""Against a real Kannel (bearerbox + smsbox) with fakesmsc as the operator: long Chinese text, inbound to a
ticket with its receipt, delivery reports, and Kannel stopped and restarted with nothing lost or doubled;
with an SMPP SMSC (smppsmsc) whose delivery receipts come late: queued messages and pending reports kept
across a bearerbox restart."""
import socket

import pytest

from caseflow.models import Ticket
from channels import notices
from channels.kannel import KannelClient
from channels.models import Message
from channels.outbox import Outbox, enqueue
from core.clock import Clock
from tests.integration.channels.conftest import SECRET, fakesmsc_messages, wait_until
from tests.integration.channels.smppsmsc import SmppSmsc
from tests.pin_check import pin_in
from tests.ports import free_port


def test_kannel_starts_on_other_ports_when_one_was_taken(kannel_box, monkeypatch):
    """Should start Kannel again on other free ports when its admin port was taken before bearerbox bound it
    (bearerbox would go on without it: KannelRunner.start raises PortTaken, and kannel_box starts again through
    tests.ports.retry_in_use), its status page then read from its own admin port."""
    from channels import kannel

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        first = [taken.getsockname()[1]]  # the admin port's, the first KannelSettings.free_ports takes
        monkeypatch.setattr(kannel, "free_port", lambda: first.pop() if first else free_port())
        runner = kannel_box("http://127.0.0.1:9")
        assert not first and runner.settings.admin_port != taken.getsockname()[1]
        assert "SMS: received" in runner.status()


@pytest.mark.parametrize("held", ["listening", "bound"])
@pytest.mark.parametrize("port_name", ["sendsms_port", "admin_port"])
def test_a_port_held_by_another_process_fails_the_start_naming_it(kannel_installed, tmp_path, port_name, held):
    """Should not call Kannel ready while another process (this one) holds its sendsms port (smsbox's: seen
    called ready on the other's listener) or its admin port (bearerbox goes on without it), listening there or
    only bound: PortTaken naming that port, from the listener's owner or the box's log (not the timeout's
    RuntimeError), and no box left running."""
    from channels import kannel

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        if held == "listening":
            holder.listen()
        port = holder.getsockname()[1]
        settings = kannel.KannelSettings.free_ports(inbound_url="http://127.0.0.1:9/sms/inbound", secret=SECRET,
                                                    **{port_name: port})
        runner = kannel.KannelRunner(settings, tmp_path / "kannel")
        with pytest.raises(kannel.PortTaken, match=rf"127\.0\.0\.1:{port}\b"):
            runner.start()
    assert (runner.bearerbox, runner.smsbox, runner.fakesmsc) == (None, None, None)


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
    """Should turn a Chinese SMS injected at fakesmsc into an sms ticket carrying Kannel's id of the message
    and deliver its receipt back."""
    base, settings = served_app
    runner = kannel_box(base)
    runner.inject("13900139000", "1063912345", "东门路灯坏了三天了，请派人修理😀")
    ticket = wait_until(lambda: Ticket.get_or_none(Ticket.channel == "sms"), what="the ticket")
    assert ticket.content == "东门路灯坏了三天了，请派人修理😀" and ticket.citizen_phone == "13900139000"
    # Kannel's id of the message came with it: a retry of the request is recognised (no second ticket).
    incoming = Message.get((Message.direction == "in") & (Message.ticket == ticket))
    assert incoming.provider_id and len(incoming.provider_id) == 36, incoming.provider_id
    # The web app stamps the message with its own (wall) clock: the outbox reads the same time.
    assert _outbox(runner, base, settings, Clock()).run_once()["sent"] == 1
    got = wait_until(lambda: fakesmsc_messages(runner.received()), what="the receipt at fakesmsc")
    assert got[0][0] == "13900139000" and ticket.number in got[0][1] and pin_in(got[0][1], ticket)
    stored = Message.get((Message.direction == "out") & (Message.ticket == ticket)).body  # issue 11
    assert stored == got[0][1].replace(pin_in(got[0][1], ticket), "******")  # the PIN left with the SMS only


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


def test_report_waits_in_kannel_while_the_app_is_down(app, org_setup, kannel_box, clock):
    """Should mark a message delivered whose report came while the app's web server was down for longer than
    smsbox's tries used to last (3 tries 2 s apart): smsbox keeps trying (http-request-retry) until it is back."""
    import threading

    from werkzeug.serving import make_server

    from channels.settings import SmsSettings
    from core.config import load_config

    config = load_config({"mode": "test", "secret_key": "k" * 40, "HOTLINE_SMS_SECRET": SECRET})
    settings = app.extensions["hotline"].services.sms_settings = SmsSettings.from_config(config)
    port = free_port()

    def serve():
        server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    base = f"http://127.0.0.1:{port}"
    server = serve()
    runner = kannel_box(base)
    server.shutdown()
    server.server_close()  # refused from now on, as while the app restarts
    m = enqueue("13800138009", "optout", {}, answer=True, settings=settings, clock=clock)
    assert _outbox(runner, base, settings, clock).run_once()["sent"] == 1
    smsbox_log = runner.directory / "log" / "smsbox.stdout"
    wait_until(lambda: smsbox_log.read_text("utf-8", "replace").count("HTTP: Retrying request") >= 4,
               what="smsbox to try the report a fourth time")
    assert Message.get_by_id(m.id).status == "sent"
    server = serve()
    try:
        wait_until(lambda: Message.get_by_id(m.id).status == "delivered", what="the report once the app is back")
    finally:
        server.shutdown()
        server.server_close()


def test_bearerbox_restart_keeps_queued_messages_and_pending_reports(served_app, kannel_box, clock):
    """Should, across a restart of bearerbox and smsbox, (a) still match the operator's delivery receipts
    sent after the restart for messages it handed over before (the DLR spool: in memory they were gone)
    and (b) hand over once each the messages it had accepted while the operator's link was down (the store
    spool), so that all ten end delivered and the SMSC got each exactly once."""
    base, settings = served_app
    smsc = SmppSmsc().start()
    try:
        runner = kannel_box(base, smsc_type="smpp", smsc_port=smsc.port, smsc_username=smsc.system_id,
                            smsc_password=smsc.password, smsc_reconnect_seconds=1)
        wait_until(lambda: smsc.bound, what="Kannel to bind to the SMSC")
        box = _outbox(runner, base, settings, clock)
        first = [enqueue("1380000%04d" % i, "optout", {}, answer=True, settings=settings, clock=clock)
                 for i in range(5)]
        assert box.run_once()["sent"] == 5
        wait_until(lambda: smsc.held() == 5, what="the first five at the SMSC, their receipts held")
        smsc.go_offline()
        later = [enqueue("1390000%04d" % i, "status_unknown", {}, answer=True, settings=settings, clock=clock)
                 for i in range(5)]
        assert box.run_once()["sent"] == 5  # Kannel took them; the link is down, so bearerbox keeps them
        wait_until(lambda: runner.queued_out() == 5, what="bearerbox to hold the later five")
        runner.stop()
        runner.start()
        smsc.go_online()
        wait_until(lambda: len(smsc.submitted) == 10, what="the later five at the SMSC after the restart")
        wait_until(lambda: smsc.bound and smsc.held() == 10, what="the later five's receipts held too")
        assert smsc.release_receipts() == 10  # the first five's receipts come after the restart
        messages = first + later
        wait_until(lambda: all(Message.get_by_id(m.id).status == "delivered" for m in messages),
                   what="a delivery report for every message")
        assert sorted((s.destination, s.text) for s in smsc.submitted) == sorted((m.address, m.body)
                                                                                  for m in messages)
    finally:
        smsc.stop()


def test_website_code_arrives_at_fakesmsc_and_confirms_the_phone(app, served_app, kannel_box):
    """Should send the website's verification code through the real Kannel to fakesmsc as an urgent SMS (in
    quiet hours too), and accept the written-in form with the code read there (issue 12 item 2)."""
    import dataclasses
    import re

    from caseflow.models import WebCase
    from channels.policy import QuietHours

    base, settings = served_app
    runner = kannel_box(base)
    state = app.extensions["hotline"]
    state.services.sms_settings = dataclasses.replace(
        settings, kannel="external", gateway=runner.settings.sendsms_url, quiet=QuietHours.parse("00:00-23:59"))
    phone = "13712345678"
    data = {"type": "complaint", "content": "小区门口井盖丢失，夜间危险。", "name": "赵六", "phone": phone,
            "reply_by": "sms", "email": "", "address": "", "consent": "1"}
    client = app.test_client()
    sent = client.post("/write", data={**data, "action": "send_code", "csrf_token": client.csrf_token()})
    assert sent.status_code == 200, sent.get_data(as_text=True)
    box = _outbox(runner, base, state.services.sms_settings, state.services.clock)
    assert box.run_once()["sent"] == 1
    got = wait_until(lambda: fakesmsc_messages(runner.received()), what="the code at fakesmsc")
    assert got[0][0] == phone and "验证码" in got[0][1]
    code = re.search(r"(\d{6})", got[0][1]).group(1)
    # Kannel's delivery report is written by the served app's thread: let it land before this thread writes.
    wait_until(lambda: Message.get(Message.purpose == "verify").status == "delivered", what="the code's report")
    done = client.post("/write", data={**data, "sms_code": code, "csrf_token": client.csrf_token()})
    assert done.status_code == 200, done.get_data(as_text=True)
    ticket = Ticket.get(Ticket.channel == "web")
    assert ticket.citizen_phone == phone and WebCase.get(WebCase.ticket == ticket).captcha_id.startswith("sms:")
