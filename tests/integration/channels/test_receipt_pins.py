"""The receipt that carries a new ticket's query PIN (channels.receipts): queued with the ticket, since the ticket
keeps only the PIN's hash; and the message log, which never shows the PIN (issue 11)."""
from caseflow import pins, services
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
