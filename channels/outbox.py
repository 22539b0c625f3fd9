"""The outbox: queue a message (idempotent per event), and the worker that hands due messages to the gateway
one at a time, in order per recipient, with retries and backoff, daily caps and quiet hours.

A message is never sent twice: the worker claims it (queued -> sending) in one UPDATE before the gateway
call, and a message found in ``sending`` at start (the process stopped mid-call) is failed, not resent.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Callable, Optional

import peewee

from caseflow.services import to_db
from channels import policy, sms, templates
from channels.kannel import GatewayDown, GatewayRefused
from channels.models import Message, OptOut
from core.clock import Clock
from core.db import database

log = logging.getLogger(__name__)

BATCH = 200


def opted_out(address: str) -> bool:
    return OptOut.select().where(OptOut.address == address).exists()


def enqueue(address: str, template_key: str, values: dict, *, purpose: str = "", ticket=None,
            dedupe_key: Optional[str] = None, ref: str = "", answer: bool = False, lang: str = "zh",
            settings=None, clock: Optional[Clock] = None) -> Optional[Message]:
    """Queue an SMS from a template. Returns the message (the earlier one for a ``dedupe_key`` already used),
    or None when nothing is to be sent: not a mobile number, or the number opted out (``answer``: a reply to
    the citizen's own message, which an opt-out does not stop)."""
    clock = clock or Clock()
    try:
        address = sms.normalise_number(address)
    except sms.SmsInputError:
        return None
    if not sms.is_mobile(address):
        return None
    if dedupe_key:
        earlier = Message.get_or_none(Message.dedupe_key == dedupe_key)
        if earlier is not None:
            return earlier
    if not answer and opted_out(address):
        log.info("sms %s to %s not queued: opted out", template_key, address)
        return None
    default = templates.DEFAULTS[template_key]
    body = sms.fit(templates.render(template_key, values, lang))
    now = clock.now()
    quiet = settings.quiet if settings is not None else policy.QuietHours()
    urgent = default.urgent or answer
    try:
        with database.atomic():
            return Message.create(channel="sms", direction="out", address=address, body=body,
                                  template_key=template_key, purpose=purpose or template_key, urgent=urgent,
                                  status="queued", segments=sms.segments(body), ticket=ticket,
                                  dedupe_key=dedupe_key, ref=str(ref)[:64],
                                  next_attempt_at=to_db(policy.earliest_send(now, urgent, quiet)),
                                  created_at=to_db(now), updated_at=to_db(now))
    except peewee.IntegrityError:
        return Message.get_or_none(Message.dedupe_key == dedupe_key)


class Outbox:
    """The sending side of one channel. ``send(message_id, to, text)`` is the gateway (KannelClient.send,
    SmtpClient.send); ``on_sent(message)`` and ``on_failed(message)`` are told after the state is stored."""

    def __init__(self, send: Callable[[int, str, str], str], settings, clock: Optional[Clock] = None,
                 on_sent: Callable = lambda m: None, on_failed: Callable = lambda m: None, channel: str = "sms"):
        self.send, self.settings, self.clock = send, settings, clock or Clock()
        self.on_sent, self.on_failed, self.channel = on_sent, on_failed, channel

    def recover(self) -> int:
        """Fail messages left in ``sending`` by a stopped process: whether Kannel took them is unknown, and
        sending again could send twice."""
        stuck = list(Message.select().where((Message.direction == "out") & (Message.status == "sending")
                                            & (Message.channel == self.channel)))
        for message in stuck:
            self._finish(message, "failed", "发送中断，结果未知，未重发 / interrupted while sending; not resent")
        return len(stuck)

    def _sent_today(self, address: str, now: dt.datetime) -> int:
        start = to_db(now.replace(hour=0, minute=0, second=0, microsecond=0))
        return Message.select().where((Message.address == address) & (Message.direction == "out")
                                      & (Message.channel == self.channel) & Message.status.in_(("sending", "sent", "delivered"))
                                      & (Message.sent_at >= start)).count()

    def run_once(self) -> dict:
        """Send what is due now; returns counts {sent, retry, failed, waiting}."""
        now = self.clock.now()
        now_db = to_db(now)
        counts = {"sent": 0, "retry": 0, "failed": 0, "waiting": 0}
        blocked: set[str] = set()  # recipients with an earlier message not yet out: later ones wait
        rows = list(Message.select().where((Message.direction == "out") & (Message.channel == self.channel)
                                           & Message.status.in_(("queued", "sending")))
                    .order_by(Message.id).limit(BATCH))
        gateway_down = False
        for message in rows:
            if message.address in blocked or message.status == "sending":
                blocked.add(message.address)
                continue
            if gateway_down or (message.next_attempt_at and message.next_attempt_at > now_db):
                blocked.add(message.address)
                counts["waiting"] += 1
                continue
            if not message.urgent and self.settings.quiet.contains(now):
                self._defer(message, self.settings.quiet.next_end(now))
                blocked.add(message.address)
                counts["waiting"] += 1
                continue
            if self.settings.daily_cap and policy.over_cap(self._sent_today(message.address, now),
                                                           self.settings.daily_cap):  # no count without a cap
                self._finish(message, "failed", f"超过每日上限{self.settings.daily_cap}条 / over the daily cap")
                counts["failed"] += 1
                continue
            claimed = Message.update(status="sending", attempts=Message.attempts + 1, updated_at=now_db).where(
                (Message.id == message.id) & (Message.status == "queued")).execute()
            if claimed != 1:
                blocked.add(message.address)
                continue
            message.attempts += 1
            try:
                answer = self.send(message.id, message.address, message.body)
            except GatewayRefused as error:
                self._finish(message, "failed", str(error))
                counts["failed"] += 1
                continue
            except GatewayDown as error:
                blocked.add(message.address)
                gateway_down = True  # the rest waits for the next round instead of hammering a dead gateway
                if message.attempts >= self.settings.max_attempts:
                    self._finish(message, "failed", f"重试{message.attempts}次仍未发出 / gave up: {error}")
                    counts["failed"] += 1
                else:
                    Message.update(status="queued", error=str(error)[:255], updated_at=now_db,
                                   next_attempt_at=to_db(now + policy.backoff(message.attempts))).where(
                        Message.id == message.id).execute()
                    counts["retry"] += 1
                continue
            Message.update(status="sent", sent_at=now_db, updated_at=now_db, error="",
                           delivery_report=str(answer)[:255]).where(
                (Message.id == message.id) & (Message.status == "sending")).execute()
            counts["sent"] += 1
            self._tell(self.on_sent, Message.get_by_id(message.id))
        return counts

    def _defer(self, message: Message, until: dt.datetime) -> None:
        Message.update(next_attempt_at=to_db(until)).where(Message.id == message.id).execute()

    def _finish(self, message: Message, status: str, error: str) -> None:
        Message.update(status=status, error=error[:255], updated_at=to_db(self.clock.now())).where(
            Message.id == message.id).execute()
        log.warning("%s %s to %s %s: %s", self.channel, message.id, message.address, status, error)
        if status == "failed":
            self._tell(self.on_failed, Message.get_by_id(message.id))

    @staticmethod
    def _tell(callback, message) -> None:
        try:
            callback(message)
        except Exception:  # noqa: BLE001 - the message's own state is stored; a follow-up failing is logged
            log.exception("after message %s", message.id)


def apply_report(message_id, report_type, answer: str = "", foreign: str = "") -> Message:
    """A delivery report from Kannel: moves the message forward (never back). Unknown ids raise LookupError,
    malformed input SmsInputError."""
    try:
        message_id, report_type = int(message_id), int(report_type)
    except (TypeError, ValueError):
        raise sms.SmsInputError("id and type must be numbers") from None
    report = f"{report_type}:{str(answer or '')[:200]}"[:255]
    foreign = str(foreign or "").strip()[:64]
    # Reports for one message arrive together (Kannel sends 'delivered' and 'accepted' at once): each is a
    # compare-and-set on the status it read, tried again when another report got there first.
    for _attempt in range(10):
        message = Message.get_or_none((Message.id == message_id) & (Message.direction == "out"))
        if message is None:
            raise LookupError(f"unknown message id {message_id}")
        status = sms.status_after_report(message.status, report_type)
        changes = {Message.status: status, Message.delivery_report: report}
        if foreign and not message.provider_id and \
                not Message.select().where(Message.provider_id == foreign).exists():
            changes[Message.provider_id] = foreign
        try:
            if Message.update(changes).where((Message.id == message.id)
                                             & (Message.status == message.status)).execute():
                break
        except peewee.IntegrityError:  # the other report stored the same provider id first
            continue
    return Message.get_by_id(message_id)
