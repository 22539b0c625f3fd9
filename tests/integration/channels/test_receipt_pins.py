"""The receipt that carries a new ticket's query PIN (channels.receipts): queued with the ticket, since the ticket
keeps only the PIN's hash; and the message log, which never shows the PIN (issue 11)."""
import peewee
import pytest

from caseflow import pins, services
from caseflow.models import Ticket
from channels import messagelog, notices
from channels.models import Message, MessageTemplate
from channels.receipts import Receipts
from tests.pin_check import pin_in


def test_the_receipt_is_queued_with_the_ticket(org_setup, clock, sms_settings, sms_receipts):
    """Should have the SMS receipt with the PIN queued when the ticket's creation returns (no history scan
    needed, none adding another), carrying the PIN the creation handed out, which opens the ticket."""
    t = services.create_ticket("路灯不亮", citizen_phone="13800000001", created_by=org_setup.agent, clock=clock)
    (receipt,) = Message.select().where(Message.ticket == t.id)
    assert receipt.purpose == "receipt" and receipt.address == "13800000001" and receipt.status == "queued"
    assert pin_in(receipt.body, t) == t.plain_pin and t.number in receipt.body
    notices.start_cursor()
    notices.scan_history(sms_settings, clock)
    assert Message.select().count() == 1
    assert services.status_query(t.number, t.plain_pin) is not None


def test_the_log_never_shows_the_pin(org_setup, clock, sms_settings):
    """Should mask the PIN of a receipt in the message log for everyone (the centre sees full contacts), also
    where an administrator's edited text puts it, while the acceptance number stays readable."""
    MessageTemplate.create(key="receipt", lang="zh", body="您的工单{{ number }}已登记；凭{{ pin }}可查询。{{ title }}")
    pins.connect_receipt(Receipts(sms_settings))
    t = services.create_ticket("路灯不亮", citizen_phone="13800000001", created_by=org_setup.agent, clock=clock)
    (receipt,) = Message.select().where(Message.ticket == t.id)
    assert t.plain_pin in receipt.body  # what the citizen is sent
    for user in (org_setup.centre_user, org_setup.agent):
        shown = messagelog.shown(user, receipt)["body"]
        assert t.plain_pin not in shown and "凭******可查询" in shown and t.number in shown, shown


def test_a_receipt_refused_by_the_database_still_files_the_ticket(org_setup, clock, sms_receipts, alarms,
                                                                  monkeypatch):
    """Should file the ticket without its SMS receipt when the database refuses the receipt's row (on PostgreSQL
    in the ticket's own statement, which then writes nothing: the ticket goes in again without it, and the alarm
    names the ticket filed, without the PIN); a refusal not the receipt's (the ticket's own rows) still refuses
    the ticket."""
    from channels import receipts
    from core.db import is_postgres
    from ops.models import SystemAlarm

    Message.create(channel="sms", direction="out", address="13800000009", body="x", template_key="receipt",
                   status="sent", dedupe_key="receipt:taken", created_at=clock.now(), updated_at=clock.now())
    monkeypatch.setattr(receipts, "sms_key", lambda ticket: "receipt:taken")  # the dedupe key's unique index
    t = services.create_ticket("路灯不亮", citizen_phone="13800000001", created_by=org_setup.agent, clock=clock)
    assert services.status_query(t.number, t.plain_pin)["status"] == "recorded"
    assert not Message.select().where(Message.ticket == t.id).exists()
    if is_postgres():  # enqueue takes a used key for the same event's message queued before: no alarm there
        [alarm] = SystemAlarm.select().where(SystemAlarm.kind == "receipt_failed")
        assert t.number in alarm.text and "IntegrityError" in alarm.text and t.plain_pin not in alarm.text
    with pytest.raises(peewee.IntegrityError):
        services.create_ticket("路灯不亮", citizen_phone="13800000001", created_by=org_setup.agent, clock=clock,
                               rows=lambda draft: [Message(channel="sms", direction="out", address="1", body="x",
                                                           status="queued", dedupe_key="receipt:taken",
                                                           created_at=clock.now(),
                                                           updated_at=clock.now())])
    assert Ticket.select().count() == 1


def test_a_receipt_template_that_fails_still_files_the_ticket(org_setup, clock, sms_receipts, alarms):
    """Should file the ticket and send its receipt in the default text, raising the alarm (without the PIN), when
    the receipt template in force fails to render, for the first ticket after the edit and the ones after it."""
    from ops.models import SystemAlarm

    MessageTemplate.create(key="receipt", lang="zh", body="{{ pin | no_such_filter }}")
    for content in ("路灯不亮", "井盖丢失"):
        t = services.create_ticket(content, citizen_phone="13800000001", created_by=org_setup.agent, clock=clock)
        assert services.status_query(t.number, t.plain_pin)["status"] == "recorded"
        receipt = _receipt(t)
        assert "【12345热线】" in receipt.body and pin_in(receipt.body, t) == t.plain_pin
        alarms = list(SystemAlarm.select().where(SystemAlarm.kind == "receipt_failed"))
        assert alarms and all(t.plain_pin not in alarm.text for alarm in alarms)
        assert any(t.number in alarm.text for alarm in alarms)


# ------------------------------------------------------------------ the stored text once the gateway took it
def _store_statements(box, database):
    """Wrap ``box._store``: for each batch it stored, (the distinct gateway answers, its UPDATE statements)."""
    from tests.integration.caseflow.test_create_statements import counted

    store, seen = box._store, []

    def counting(done):
        answers = {str(answer) for _message, answer in done}
        with counted(database) as statements:
            store(done)
        if answers:
            seen.append((len(answers), sum(s.lstrip().upper().startswith("UPDATE") for s in statements)))

    box._store = counting
    return seen


def _receipt(ticket):
    return Message.get((Message.ticket == ticket.id) & (Message.purpose == "receipt"))


def test_a_sent_receipt_is_stored_without_its_pin(db, org_setup, clock, gateway, sms_settings, sms_receipts):
    """Should store a receipt the gateway took without its PIN (the gateway got it whole), in the UPDATE that
    marks the batch sent (one per distinct answer, as before), and leave another message's text as it is."""
    import dataclasses

    from channels.outbox import Outbox, enqueue

    settings = dataclasses.replace(sms_settings, concurrency=4, rate=0, daily_cap=0)
    tickets = [services.create_ticket(f"路灯不亮{i}", citizen_phone=f"1380000000{i}", created_by=org_setup.agent,
                                      clock=clock) for i in range(3)]
    other = enqueue("13900000001", "result", {"number": "12345678", "reply": "已修复，设备编号 654321"}, answer=True,
                    settings=settings, clock=clock)  # not a receipt: its 6-digit run stays
    other_text = other.body
    assert "654321" in other_text

    def answering(message_id, to, text):  # two distinct answers: two UPDATEs when both are in one batch
        gateway(message_id, to, text)
        return "0: Accepted for delivery" if message_id % 2 else "3: Queued for later delivery"

    box = Outbox(answering, settings, clock=clock)
    batches = _store_statements(box, db)
    assert box.run_once()["sent"] == 4
    texts = {message_id: text for message_id, _to, text in gateway.sent}
    for t in tickets:
        stored = _receipt(t)
        assert pin_in(texts[stored.id], t) == t.plain_pin  # what the citizen got
        assert stored.status == "sent" and t.plain_pin not in stored.body and t.number in stored.body
        assert stored.body == texts[stored.id].replace(t.plain_pin, messagelog.PIN_MASK)
    assert Message.get_by_id(other.id).body == other_text == texts[other.id]
    assert batches and all(updates == answers for answers, updates in batches), batches


def test_a_receipt_reported_first_is_masked_if_delivered_kept_if_failed(org_setup, clock, gateway, sms_settings,
                                                                        sms_receipts):
    """Should mask a receipt a delivery report marked delivered before the round stored it, and keep whole one a
    report failed first, whose retry by a person sends the PIN again (then masked once taken)."""
    from channels import outbox
    from channels.outbox import Outbox

    delivered = services.create_ticket("路灯不亮", citizen_phone="13800000001", created_by=org_setup.agent,
                                       clock=clock)
    failed = services.create_ticket("井盖丢失", citizen_phone="13800000002", created_by=org_setup.agent,
                                    clock=clock)
    fail_first = {_receipt(failed).id}

    def reporting(message_id, to, text):  # Kannel answers the dlr-url before the round stores 'sent'
        gateway(message_id, to, text)
        outbox.apply_report(message_id, 2 if message_id in fail_first else 1)
        return "0: Accepted for delivery"

    assert Outbox(reporting, sms_settings, clock=clock).run_once()["sent"] == 2
    assert _receipt(delivered).status == "delivered" and delivered.plain_pin not in _receipt(delivered).body
    kept = _receipt(failed)
    assert kept.status == "failed" and pin_in(kept.body, failed) == failed.plain_pin
    assert messagelog.retry(kept.id, clock=clock).status == "queued"
    fail_first.clear()
    assert Outbox(gateway, sms_settings, clock=clock).run_once()["sent"] == 1
    assert pin_in(gateway.sent[-1][2], failed) == failed.plain_pin and gateway.sent[-1][0] == kept.id
    assert failed.plain_pin not in _receipt(failed).body


def test_a_receipt_failed_after_it_was_taken_is_not_resent_without_its_pin(org_setup, clock, gateway,
                                                                           sms_settings, sms_receipts):
    """Should refuse the retry of a receipt reported failed after the gateway took it (its text no longer holds
    the PIN: resent, it would say ******), and mask one failed for want of an answer once a report says it
    was delivered after all."""
    import pytest

    from channels import outbox
    from channels.kannel import GatewayUnsure
    from channels.outbox import Outbox

    t = services.create_ticket("路灯不亮", citizen_phone="13800000001", created_by=org_setup.agent, clock=clock)
    assert Outbox(gateway, sms_settings, clock=clock).run_once()["sent"] == 1
    assert outbox.apply_report(_receipt(t).id, 2).status == "failed"
    with pytest.raises(messagelog.LogInputError, match="no longer stored"):
        messagelog.retry(_receipt(t).id, clock=clock)
    assert _receipt(t).status == "failed"

    unsure = services.create_ticket("井盖丢失", citizen_phone="13800000002", created_by=org_setup.agent, clock=clock)

    def no_answer(message_id, to, text):
        raise GatewayUnsure("no answer (test)")

    Outbox(no_answer, sms_settings, clock=clock).run_once()
    assert _receipt(unsure).status == "failed" and pin_in(_receipt(unsure).body, unsure)
    assert outbox.apply_report(_receipt(unsure).id, 1).status == "delivered"
    assert unsure.plain_pin not in _receipt(unsure).body and messagelog.PIN_MASK in _receipt(unsure).body


def test_receipts_stored_by_the_salvage_are_masked(org_setup, clock, sms_settings, sms_receipts):
    """Should mask the receipts a round that the database failed stores afterwards (its salvage, or the next
    round), as the round itself would have."""
    import dataclasses

    import peewee
    import pytest

    from channels.outbox import Outbox
    from tests.integration.channels.test_outbox import SlowGateway, refuse_stores

    settings = dataclasses.replace(sms_settings, concurrency=4, rate=0, daily_cap=0)
    tickets = [services.create_ticket(f"路灯不亮{i}", citizen_phone="1370000%04d" % i, created_by=org_setup.agent,
                                      clock=clock) for i in range(12)]
    gateway = SlowGateway()
    box = Outbox(gateway, settings, clock=clock)
    refuse_stores(box)
    with pytest.raises(peewee.OperationalError):
        box.run_once()
    assert box._owed_sent  # taken by the gateway, stored by the next round
    box.run_once()
    texts = {message_id: text for message_id, _to, text in gateway.sent}
    for t in tickets:
        stored = _receipt(t)
        assert stored.status == "sent" and pin_in(texts[stored.id], t) and t.plain_pin not in stored.body


def test_an_opted_out_number_gets_no_receipt_unless_it_wrote_itself(org_setup, clock, sms_receipts):
    """Should queue no receipt to a number that opted out (the opt-out is a condition of the receipt's row in the
    ticket's own rows, no read before them), yet answer an SMS ticket of that number (its own message)."""
    from channels.models import OptOut

    OptOut.create(address="13800000005")
    t = services.create_ticket("路灯不亮", citizen_phone="13800000005", created_by=org_setup.agent, clock=clock)
    assert not Message.select().where(Message.ticket == t.id).exists()
    texted = services.create_ticket("噪音扰民", citizen_phone="13800000005", channel="sms", clock=clock)
    (receipt,) = Message.select().where(Message.ticket == texted.id)
    assert pin_in(receipt.body, texted) == texted.plain_pin


def _statements(database):
    """The statements ``database`` runs inside the block (a list filled as they run)."""
    from tests.integration.caseflow.test_create_statements import counted

    return counted(database)


def test_the_receipt_costs_the_ticket_no_read(db, org_setup, clock, sms_receipts):
    """Should write the SMS receipt with the ticket's own rows, its opt-out and template checked in them, not read
    before them: on PostgreSQL the creation of a returning citizen's ticket with its receipt is the same two
    statements as without one (the profile's read, the ticket's statement), no transaction."""
    from core.db import is_postgres
    from tests.integration.caseflow.test_create_statements import CREATE_STATEMENTS

    services.create_ticket("路灯不亮", citizen_phone="13800000001", created_by=org_setup.agent, clock=clock)
    with _statements(db) as seen:
        t = services.create_ticket("井盖丢失", citizen_phone="13800000001", created_by=org_setup.agent, clock=clock)
    assert pin_in(_receipt(t).body, t) == t.plain_pin
    if is_postgres():
        assert len(seen) == CREATE_STATEMENTS["postgres"][0], "\n".join(seen)


def test_a_template_edited_elsewhere_reaches_the_next_receipt(db, org_setup, clock, sms_receipts):
    """Should send the edited text from the first receipt after an administrator's edit in another process (this
    one rendered from the text it saw: the ticket's statement writes that receipt and says the text changed, and
    it is rendered again with the new text), and the receipts after it in the ticket's rows, without a read."""
    from core.db import is_postgres
    from tests.integration.caseflow.test_create_statements import CREATE_STATEMENTS

    first = services.create_ticket("路灯不亮", citizen_phone="13800000001", created_by=org_setup.agent, clock=clock)
    assert "【12345热线】" in _receipt(first).body  # the default, seen by this process
    MessageTemplate.create(key="receipt", lang="zh", body="新模板：工单{{ number }}，密码{{ pin }}")  # elsewhere
    edited = services.create_ticket("井盖丢失", citizen_phone="13800000001", created_by=org_setup.agent,
                                    clock=clock)
    assert _receipt(edited).body.startswith("新模板：工单") and pin_in(_receipt(edited).body, edited)
    with _statements(db) as seen:
        after = services.create_ticket("噪音扰民", citizen_phone="13800000001", created_by=org_setup.agent,
                                       clock=clock)
    assert _receipt(after).body.startswith("新模板：工单") and pin_in(_receipt(after).body, after)
    if is_postgres():
        assert len(seen) == CREATE_STATEMENTS["postgres"][0], "\n".join(seen)
    MessageTemplate.delete().execute()  # back to the default: the next receipt is rewritten once
    back = services.create_ticket("楼道灯坏", citizen_phone="13800000001", created_by=org_setup.agent, clock=clock)
    assert "【12345热线】" in _receipt(back).body and pin_in(_receipt(back).body, back)


def test_a_mended_template_is_read_again_before_the_receipt_fails(db, org_setup, clock, sms_receipts, alarms):
    """Should read the template again when the text this process saw fails to render (it failed, an administrator
    mended it since): the receipt goes out with the mended text and no alarm is raised."""
    from ops.models import SystemAlarm

    MessageTemplate.create(key="receipt", lang="zh", body="{{ pin | no_such_filter }}")
    broken = services.create_ticket("路灯不亮", citizen_phone="13800000001", created_by=org_setup.agent,
                                    clock=clock)
    assert "【12345热线】" in _receipt(broken).body  # the default, while the template fails
    SystemAlarm.delete().execute()
    MessageTemplate.update(body="已修好：{{ number }}/{{ pin }}").execute()
    mended = services.create_ticket("井盖丢失", citizen_phone="13800000001", created_by=org_setup.agent,
                                    clock=clock)
    assert _receipt(mended).body == f"已修好：{mended.number}/{mended.plain_pin}"
    assert not SystemAlarm.select().where(SystemAlarm.kind == "receipt_failed").exists()


def test_a_receipt_written_from_an_old_text_is_never_lost(db, org_setup, clock, sms_receipts, monkeypatch, caplog):
    """Should keep the receipt written with the ticket (the text it was rendered from, the number and the PIN)
    when rendering it again with an edited text fails for any reason, the database's included, and file the
    ticket: the receipt is part of the ticket's own rows, never a second write that could be lost after it."""
    from channels import templates

    MessageTemplate.create(key="receipt", lang="zh", body="新模板：工单{{ number }}，密码{{ pin }}")

    def unreachable(key, lang):
        raise peewee.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(templates, "stored_text", unreachable)
    t = services.create_ticket("路灯不亮", citizen_phone="13800000001", created_by=org_setup.agent, clock=clock)
    receipt = _receipt(t)
    assert "【12345热线】" in receipt.body and pin_in(receipt.body, t) == t.plain_pin and receipt.status == "queued"
    assert any("keeps the template text" in r.getMessage() for r in caplog.records)
    assert not any(t.plain_pin in r.getMessage() for r in caplog.records)


def test_a_process_reads_the_receipt_text_at_its_start(db, org_setup, clock, sms_settings, tmp_path):
    """Should read the receipt template in force when the process connects its receipts (channels.receipts.connect),
    so its first receipt after a start with an edited template needs no rewrite (the ticket's statement only)."""
    from channels import receipts
    from core.config import load_config
    from core.db import is_postgres
    from tests.integration.caseflow.test_create_statements import CREATE_STATEMENTS

    MessageTemplate.create(key="receipt", lang="zh", body="开机模板：{{ number }}/{{ pin }}")
    services.create_ticket("井盖丢失", citizen_phone="13800000001", created_by=org_setup.agent, clock=clock)
    receipts.forget_texts()  # a new process
    connected = receipts.connect(load_config({"mode": "test", "var_dir": str(tmp_path / "var")}), sms_settings)
    try:
        with _statements(db) as seen:
            t = services.create_ticket("路灯不亮", citizen_phone="13800000001", created_by=org_setup.agent,
                                       clock=clock)
    finally:
        pins.disconnect_receipt(connected)
    assert _receipt(t).body == f"开机模板：{t.number}/{t.plain_pin}"
    if is_postgres():
        assert len(seen) == CREATE_STATEMENTS["postgres"][0], "\n".join(seen)
