"""The alerts issue 12 item 2 still lacked, on SQLite and PostgreSQL: due soon (once) and supervision (督办) to
the unit's contact phone, alarms to the duty leader through the one alarm path (ops.alarms with the channel's
``channels.alarms.DutyPhones``, HOTLINE_DUTY_PHONES),
and the satisfaction question by e-mail whose answer is the call-back rating."""
from __future__ import annotations

import dataclasses

import pytest

from caseflow import jobs, services
from caseflow import workflow as wf
from caseflow.models import Notification, Ticket
from channels import mailflow, notices
from channels.alarms import DutyPhones
from channels.models import MailHeader, Message
from channels.outbox import Outbox, enqueue
from channels.policy import QuietHours
from channels.settings import SmsSettings
from core.alarms import connect, disconnect, raise_alarm
from core.config import ConfigError, load_config
from ops.alarms import AlarmService
from ops.models import SystemAlarm
from tests.integration.channels.conftest import SECRET
from tests.integration.channels.mailservers import make_settings
from tests.integration.channels.test_mail_intake import handle, mime
from tests.pin_check import pin_in

UNIT_PHONE = "13900000009"


def _unit_alerts():
    return [m.template_key for m in Message.select().where(Message.address == UNIT_PHONE).order_by(Message.id)]


def test_due_soon_once_and_supervision_alerts(org_setup, clock, sms_settings):
    """Should text the unit's contact phone once when the deadline nears (with the deadline) and when the
    ticket is put under supervision, beside the dispatch alert; running the jobs again adds nothing."""
    o = org_setup
    o.east.contact_phone = UNIT_PHONE
    o.east.save()
    notices.start_cursor()
    t = services.dispatch(services.create_ticket("井盖丢失", created_by=o.agent, clock=clock), o.centre_user, o.east,
                          clock=clock)
    deadline = Ticket.get_by_id(t.id).deadline
    clock.set(clock.local(deadline) - (jobs.dl.WARN_BEFORE / 2))
    assert jobs.warn_due_soon(clock) == [t.number]
    notices.scan_history(sms_settings, clock)
    assert jobs.warn_due_soon(clock) == []
    notices.scan_history(sms_settings, clock)
    assert _unit_alerts() == ["dispatch_alert", "due_soon_alert"]
    due = Message.get(Message.template_key == "due_soon_alert")
    assert t.number in due.body and clock.local(deadline).strftime("%m-%d %H:%M") in due.body
    services.transition(t.id, "supervise", o.centre_user, "请优先办理", clock=clock)
    notices.scan_history(sms_settings, clock)
    notices.scan_history(sms_settings, clock)
    assert _unit_alerts() == ["dispatch_alert", "due_soon_alert", "supervise_alert"]
    assert "督办" in Message.get(Message.template_key == "supervise_alert").body


def test_duty_phones_setting(tmp_path):
    """Should read HOTLINE_DUTY_PHONES as mobiles (+86 and full-width commas accepted, duplicates dropped)
    and refuse anything else at start."""
    def settings(value):
        return SmsSettings.from_config(load_config({"mode": "test", "secret_key": "k" * 40,
                                                    "HOTLINE_SMS_SECRET": SECRET, "HOTLINE_DUTY_PHONES": value}))
    assert settings("+86 138 0013 8000，13900139000,13800138000").duty_phones == ("13800138000", "13900139000")
    assert settings("").duty_phones == ()
    for bad in ("02088886666", "13800138000,abc"):
        with pytest.raises(ConfigError, match="HOTLINE_DUTY_PHONES"):
            settings(bad)


def test_alarm_reaches_duty_phones_once_in_quiet_hours(org_setup, clock, gateway, sms_settings):
    """Should put a new alarm on the centre's desk at once and text every duty phone once (urgent, in quiet
    hours too) through the one alarm path (ops.alarms with the channel's DutyPhones hook); a repeat while the
    alarm is open is counted, not texted; once acknowledged, the next one opens a new alarm and texts again."""
    settings = dataclasses.replace(sms_settings, duty_phones=("13800000001", "13800000002"),
                                   quiet=QuietHours.parse("00:00-23:59"))
    service = AlarmService(notify=DutyPhones(settings, clock))
    connect(service.raise_alarm)
    try:
        first = raise_alarm("db_down", "数据库连接失败\n（主库）", severity="critical")
        assert first.text == "数据库连接失败 （主库）"
        assert Notification.select().where(Notification.kind == "alarm").count() == 1
        assert raise_alarm("db_down", "仍然失败").id == first.id
        assert SystemAlarm.get_by_id(first.id).count == 2
        box = Outbox(gateway, settings, clock=clock)
        assert box.run_once()["sent"] == 2
        assert sorted(to for _i, to, _t in gateway.sent) == ["13800000001", "13800000002"]
        assert all("db_down" in text and "数据库连接失败" in text for _i, _to, text in gateway.sent)
        assert box.run_once().get("sent", 0) == 0
        service.acknowledge(first.id, org_setup.centre_user)
        assert raise_alarm("db_down", "又失败了").id != first.id
        assert box.run_once()["sent"] == 2
        assert Notification.select().where(Notification.kind == "alarm").count() == 2
    finally:
        disconnect(service.raise_alarm)


def test_alarm_without_duty_phones_stays_on_the_desk(org_setup, clock, sms_settings):
    """Should keep an alarm on the centre's desk and queue no SMS when no duty phone is configured."""
    AlarmService(notify=DutyPhones(sms_settings, clock)).raise_alarm("disk_low", "录音盘剩余5%")
    assert Message.select().count() == 0 and Notification.get(Notification.kind == "alarm")


def test_sms_given_up_raises_an_alarm(org_setup, clock, gateway, sms_settings, alarms):
    """Should raise a duty alarm (besides the centre's sms_failed notice) when an SMS spends its retry budget."""
    m = enqueue("13800000005", "optout", {}, answer=True, settings=sms_settings, clock=clock)
    box = Outbox(gateway, sms_settings, clock=clock, on_failed=lambda msg: notices.after_failed(msg, clock))
    gateway.down = True
    for _ in range(sms_settings.max_attempts):
        box.run_once()
        clock.advance(minutes=10)
    assert Message.get_by_id(m.id).status == "failed"
    assert SystemAlarm.get().kind == "sms_gave_up"


def test_satisfaction_question_by_email_and_its_answer(org_setup, clock, tmp_path):
    """Should send the satisfaction question by e-mail after the result when the reply is by e-mail, record
    an answer of 1 to it as the call-back rating (once), and keep a later answer as a note."""
    from caseflow import pins
    from channels.receipts import Receipts

    settings = make_settings(tmp_path, HOTLINE_EMAIL_SMTP_HOST="127.0.0.1")
    pins.connect_receipt(Receipts(email_settings=settings))  # as a product connects them: the receipt comes first
    o = org_setup
    mailflow.scan_history(settings, clock)
    t = services.create_ticket("小区垃圾清运不及时", citizen_email="c@example.cn", reply_by="email",
                               created_by=o.agent, clock=clock)
    pin = t.plain_pin
    t = services.dispatch(t, o.centre_user, o.east, clock=clock)
    t = services.transition(t, "accept", o.east_user, clock=clock)
    t = services.transition(t, "reply", o.east_user, reply="已安排每日清运。", clock=clock)
    services.transition(t, "approve", o.centre_user, clock=clock)
    mailflow.scan_history(settings, clock)
    mailflow.scan_history(settings, clock)
    purposes = [m.purpose for m in Message.select().where(Message.address == "c@example.cn").order_by(Message.id)]
    assert purposes == ["receipt", "result", "satisfaction"]
    assert pin_in(Message.get(Message.purpose == "receipt").body, t) == pin  # the creation's PIN, by e-mail
    question = Message.get(Message.purpose == "satisfaction")
    header = MailHeader.get(MailHeader.message == question)
    assert "回复1满意" in question.body and t.number in header.subject
    answer = handle(mime(subject=f"Re: {header.subject}", body="1\n\n> 请对受理号的办理结果评价", sender="c@example.cn",
                         msgid="r1@example.cn", extra=f"In-Reply-To: <{header.msgid}>\r\n"), settings, tmp_path, clock)
    assert answer.outcome == "rating" and answer.ticket == t.number
    rated = Ticket.get_by_id(t.id)
    assert rated.satisfaction == "satisfied" and rated.status != wf.APPROVED
    again = handle(mime(subject=f"Re: {header.subject}", body="3", sender="c@example.cn", msgid="r2@example.cn",
                        extra=f"In-Reply-To: <{header.msgid}>\r\n"), settings, tmp_path, clock)
    assert again.outcome == "reply" and Ticket.get_by_id(t.id).satisfaction == "satisfied"
