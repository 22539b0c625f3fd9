"""The outbox: queue a message (idempotent per event), and the worker that hands due messages to the gateway
from a bounded pool of greenlets at a limited rate, in order per recipient, with retries and backoff, daily
caps and quiet hours.

A message is never sent twice: the worker claims it (queued -> sending) in one UPDATE before the gateway
call, and a message found in ``sending`` at start (the process stopped mid-call) is failed, not resent.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections import deque
from typing import Callable, Optional

import gevent
import gevent.pool
import gevent.queue
import peewee

from caseflow.services import to_db
from channels import messagelog, policy, sms, templates
from channels.kannel import GatewayDown, GatewayRefused, GatewayUnsure
from channels.models import Message, OptOut
from core.clock import Clock
from core.db import database, greenlet_local_connections

log = logging.getLogger(__name__)

BATCH = 200  # messages a round looks at
STORE_BATCH = 50  # 'sent' marks stored in one transaction at most
SALVAGE_WAIT = 30.0  # seconds a failed round waits for its calls in flight (the gateway client's timeout is less)


def opted_out(address: str) -> bool:
    return OptOut.select().where(OptOut.address == address).exists()


def enqueue(address: str, template_key: str, values: dict, *, purpose: str = "", ticket=None,
            dedupe_key: Optional[str] = None, ref: str = "", answer: bool = False, lang: str = "zh",
            settings=None, clock: Optional[Clock] = None,
            texts: Optional[templates.Texts] = None) -> Optional[Message]:
    """Queue an SMS from a template. Returns the message (the earlier one for a ``dedupe_key`` already used),
    or None when nothing is to be sent: not a mobile number, or the number opted out (``answer``: a reply to
    the citizen's own message, which an opt-out does not stop). ``texts``: the round's templates.Texts."""
    clock = clock or Clock()
    address = sms.mobile_number(address)
    if address is None:
        return None
    # A used dedupe key is found by the insert below (its unique index), not by a look-up first: nearly
    # every key is new, and a burst of receipts paid a query each for nothing.
    if not answer and opted_out(address):
        earlier = Message.get_or_none(Message.dedupe_key == dedupe_key) if dedupe_key else None
        if earlier is None:
            log.info("sms %s to %s not queued: opted out", template_key, address)
        return earlier
    message = sms_row(address, template_key, values, purpose=purpose, ticket=ticket, dedupe_key=dedupe_key,
                      ref=ref, answer=answer, lang=lang, settings=settings, clock=clock, texts=texts)
    try:
        with database.atomic():
            message.save(force_insert=True)
            return message
    except peewee.IntegrityError:
        return Message.get_or_none(Message.dedupe_key == dedupe_key)


def sms_row(address: str, template_key: str, values: dict, *, purpose: str = "", ticket=None,
            dedupe_key: Optional[str] = None, ref: str = "", answer: bool = False, lang: str = "zh",
            settings=None, clock: Optional[Clock] = None, texts: Optional[templates.Texts] = None) -> Message:
    """The unsaved queued SMS that ``enqueue`` inserts (``address`` normalised, its opt-out checked), for a
    writer that inserts it in a statement of its own (caseflow.new_ticket's, the receipt of a new ticket)."""
    clock = clock or Clock()
    default = templates.DEFAULTS[template_key]
    body = sms.fit(templates.render(template_key, values, lang, texts))
    now = clock.now()
    quiet = settings.quiet if settings is not None else policy.QuietHours()
    urgent = default.urgent or answer
    return Message(channel="sms", direction="out", address=address, body=body, template_key=template_key,
                   purpose=purpose or template_key, urgent=urgent, status="queued", segments=sms.segments(body),
                   ticket=ticket, dedupe_key=dedupe_key, ref=str(ref)[:64],
                   next_attempt_at=to_db(policy.earliest_send(now, urgent, quiet)), created_at=to_db(now),
                   updated_at=to_db(now))


class Outbox:
    """The sending side of one channel. ``send(message_id, to, text)`` is the gateway (KannelClient.send,
    SmtpClient.send); ``on_sent(message)`` and ``on_failed(message)`` are told after the state is stored.

    A round hands messages to the gateway from a bounded pool of greenlets (``settings.concurrency``
    calls at once, at most ``settings.rate`` a second; settings without them: one at a time, no limit).
    Every database read and write stays in the greenlet that runs the round; the pool's greenlets only
    wait for the gateway. Messages to one recipient form a lane that goes one message at a time, in the
    order they were queued. The round starts with one call and opens up to the pool only once the gateway
    has taken a message, so a dead gateway costs one failed call a round, not one per greenlet.
    """

    def __init__(self, send: Callable[[int, str, str], str], settings, clock: Optional[Clock] = None,
                 on_sent: Callable = lambda m: None, on_failed: Callable = lambda m: None, channel: str = "sms"):
        self.send, self.settings, self.clock = send, settings, clock or Clock()
        self.on_sent, self.on_failed, self.channel = on_sent, on_failed, channel
        self.concurrency = max(1, int(getattr(settings, "concurrency", 1) or 1))
        self.pace = policy.Pace(float(getattr(settings, "rate", 0) or 0))
        self.monotonic, self.sleep = time.monotonic, gevent.sleep  # the rate limit's time (tests replace them)
        self._owed_sent: list = []  # (message, answer): taken by the gateway in a round that failed, to store
        self._owed_back: list[int] = []  # claimed in a round that failed, never handed over: to queue again

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
        # 'sending': in flight now, or taken by the gateway and not yet marked sent (see _store)
        return Message.select().where((Message.address == address) & (Message.direction == "out")
                                      & (Message.channel == self.channel)
                                      & ((Message.status == "sending")
                                         | (Message.status.in_(("sent", "delivered")) & (Message.sent_at >= start)))
                                      ).count()

    def _lanes(self) -> list[deque]:
        """The due candidates, one lane per recipient in the order of its first message. A message still
        ``sending`` (another round's, or one interrupted) holds back the later ones to its recipient."""
        rows = (Message.select().where((Message.direction == "out") & (Message.channel == self.channel)
                                       & Message.status.in_(("queued", "sending")))
                .order_by(Message.id).limit(BATCH))
        lanes: dict[str, deque] = {}
        held: set[str] = set()
        for message in rows:
            if message.address in held:
                continue
            if message.status == "sending":
                held.add(message.address)
                continue
            lanes.setdefault(message.address, deque()).append(message)
        return list(lanes.values())

    def _next_of(self, lane: deque, now: dt.datetime, counts: dict) -> Optional[Message]:
        """The lane's next message that may go now (not claimed yet); None when the lane waits (backing
        off, quiet hours). Messages over the daily cap are failed on the way."""
        while lane:
            message = lane.popleft()
            if message.next_attempt_at and message.next_attempt_at > to_db(now):
                counts["waiting"] += 1
                break
            if not message.urgent and self.settings.quiet.contains(now):
                self._defer(message, self.settings.quiet.next_end(now))
                counts["waiting"] += 1
                break
            if self.settings.daily_cap and policy.over_cap(self._sent_today(message.address, now),
                                                           self.settings.daily_cap):  # no count without a cap
                self._finish(message, "failed", f"超过每日上限{self.settings.daily_cap}条 / over the daily cap")
                counts["failed"] += 1
                continue
            return message
        lane.clear()
        return None

    def _claim(self, ready: deque, claimed: deque, now: dt.datetime, counts: dict, most: int) -> None:
        """Claim (queued -> sending, one UPDATE) the next message of up to ``most`` lanes from ``ready``; a
        message another round claimed first drops its lane from this round."""
        picked = []
        while ready and len(picked) < most:
            lane = ready.popleft()
            message = self._next_of(lane, now, counts)
            if message is not None:
                picked.append((message, lane))
        if not picked:
            return
        got = {row.id for row in Message.update(status="sending", attempts=Message.attempts + 1,
                                                updated_at=to_db(now))
               .where(Message.id.in_([m.id for m, _lane in picked]) & (Message.status == "queued"))
               .returning(Message.id).execute()}
        for message, lane in picked:
            if message.id in got:
                message.attempts += 1
                claimed.append((message, lane))

    def _unclaim(self, claimed: deque, ready: deque) -> None:
        """Claimed messages never handed to the gateway (it went down meanwhile) go back as they were."""
        if not claimed:
            return
        Message.update(status="queued", attempts=Message.attempts - 1).where(
            Message.id.in_([m.id for m, _lane in claimed]) & (Message.status == "sending")).execute()
        ready.extendleft(deque([message, *lane]) for message, lane in reversed(claimed))
        claimed.clear()

    def _call(self, message: Message, lane: deque, results: gevent.queue.Queue) -> None:
        """In a pool greenlet: only the gateway call; the outcome goes back to the round."""
        try:
            results.put((message, lane, "sent", self.send(message.id, message.address, message.body)))
        except GatewayRefused as error:
            results.put((message, lane, "refused", error))
        except GatewayUnsure as error:
            results.put((message, lane, "unsure", error))
        except GatewayDown as error:
            results.put((message, lane, "down", error))
        except BaseException as error:  # noqa: BLE001 - handed to the round, which raises it
            results.put((message, lane, "error", error))
        finally:
            if greenlet_local_connections() and not database.is_closed():
                database.close()  # a gateway that read the database (SMTP: the mail's headers) in this greenlet

    def run_once(self) -> dict:
        """Send what is due now; returns counts {sent, retry, failed, waiting}."""
        self._settle()  # what a failed round before left, first: its messages hold their recipients' lanes
        now = self.clock.now()
        counts = {"sent": 0, "retry": 0, "failed": 0, "waiting": 0}
        ready = deque(self._lanes())  # lanes whose next message is still to claim
        claimed: deque = deque()  # (message, lane): claimed, waiting for a free greenlet or the rate limit
        done: list = []  # (message, answer): the gateway took it; stored a batch at a time
        results: gevent.queue.Queue = gevent.queue.Queue()
        pool = gevent.pool.Pool(self.concurrency)
        try:
            unexpected = self._loop(now, counts, ready, claimed, done, results, pool)
            self._store(done)
            self._unclaim(claimed, ready)
        except Exception:
            self._salvage(pool, results, done, claimed)
            raise
        if unexpected is not None:
            raise unexpected
        counts["waiting"] += sum(1 for lane in ready if lane)
        return counts

    def _loop(self, now, counts, ready, claimed, done, results, pool):
        """The round's work (run_once's loop); returns an unexpected error of a gateway call, or None."""
        in_flight, width, gateway_down, unexpected = 0, 1, False, None
        while True:
            going = not gateway_down and unexpected is None
            if going and not claimed and ready and in_flight < width:
                self._claim(ready, claimed, now, counts, most=2 * width)
            timeout = None
            if going and claimed and in_flight < width:
                pause = self.pace.wait(self.monotonic())
                if pause <= 0:
                    pool.spawn(self._call, *claimed.popleft(), results)
                    in_flight += 1
                    continue
                if not in_flight:
                    self._store(done)
                    self.sleep(pause)
                    continue
                timeout = pause
            elif not in_flight:
                break
            if results.empty():
                self._store(done)  # nothing to handle this moment: store what went out before waiting
            try:
                message, lane, outcome, answer = results.get(timeout=timeout)
            except gevent.queue.Empty:
                continue
            in_flight -= 1
            if outcome == "sent":
                width = self.concurrency
                done.append((message, answer))
                counts["sent"] += 1
                if len(done) >= STORE_BATCH:
                    self._store(done)
            elif outcome == "refused":
                self._finish(message, "failed", str(answer))
                counts["failed"] += 1
            elif outcome == "down":
                gateway_down = True  # the rest waits for the next round instead of hammering a dead gateway
                lane.clear()
                counts["failed" if self._retry_later(message, answer, now) else "retry"] += 1
            elif outcome == "unsure":  # taken or not: never sent twice (a delivery report may still tell)
                gateway_down = True  # the gateway is going away: the rest waits for the next round
                lane.clear()
                self._finish(message, "failed", f"网关可能已收下，结果未知，未重发 / outcome unknown, not resent: "
                                                f"{answer}")
                counts["failed"] += 1
            else:
                unexpected = unexpected or answer  # the message stays 'sending': recover() fails it
                lane.clear()
            if lane:
                ready.appendleft(lane)
        return unexpected

    def _salvage(self, pool, results, done: list, claimed: deque) -> None:
        """A round that failed (the database refused or timed out a statement): the messages it claimed but
        never handed to the gateway go back to the queue, and those the gateway took are stored sent; both now,
        or at the start of the next round when the database still refuses (``_settle``). Before, they stayed
        'sending' until the process restarted, which then failed them as interrupted: receipts never sent."""
        pool.join(timeout=SALVAGE_WAIT)  # the calls in flight end with the gateway's answer or its timeout
        while not results.empty():
            message, _lane, outcome, answer = results.get_nowait()
            if outcome == "sent":
                done.append((message, answer))
            elif outcome == "down":  # not taken
                claimed.append((message, None))
            # refused, unsure, error: left 'sending', failed by recover() (as before; never sent twice)
        self._owed_sent.extend(done)
        self._owed_back.extend(message.id for message, _lane in claimed)
        done.clear()
        claimed.clear()
        try:
            self._settle()
        except Exception as error:  # noqa: BLE001 - the round's own error is raised; this is tried again
            log.warning("%s: %d sent and %d claimed messages stored at the next round: %s", self.channel,
                        len(self._owed_sent), len(self._owed_back), error)

    def _settle(self) -> None:
        """Store what a failed round left (see _salvage); raises while the database still refuses."""
        if self._owed_sent:
            self._store(list(self._owed_sent))
            self._owed_sent.clear()
        if self._owed_back:
            Message.update(status="queued", attempts=Message.attempts - 1).where(
                Message.id.in_(self._owed_back) & (Message.status == "sending")).execute()
            self._owed_back.clear()

    def _store(self, done: list) -> None:
        """Mark sent what the gateway took, in one transaction, then tell ``on_sent``. A receipt's stored text
        loses its query PIN in the same UPDATE (the salvage path stores through here too)."""
        if not done:
            return
        batch, done[:] = list(done), []
        now_db = to_db(self.clock.now())
        sending = Message.status == "sending"
        by_answer: dict[str, list[int]] = {}  # Kannel answers alike ("0: Accepted for delivery"): one UPDATE each
        masked: dict[int, str] = {}  # a receipt's text without its query PIN, stored in the same UPDATE
        for message, answer in batch:
            by_answer.setdefault(str(answer)[:255], []).append(message.id)
            if messagelog.holds_pin(message):
                masked[message.id] = messagelog.without_pin(message)
        with database.atomic():
            for answer, ids in by_answer.items():
                # A delivery report may have got here first (Kannel answers the dlr-url within
                # milliseconds): it keeps its status and report, and the message still gets its sent_at.
                changes = {Message.status: peewee.Case(None, [(sending, "sent")], Message.status),
                           Message.delivery_report: peewee.Case(None, [(sending, answer)], Message.delivery_report),
                           Message.sent_at: now_db, Message.updated_at: now_db, Message.error: ""}
                receipts = [(i, masked[i]) for i in ids if i in masked]
                if receipts:
                    # The gateway has the text: a copy of the database must not open the citizen's case. A
                    # report of failure that came first keeps it whole, for a person's retry (messagelog.retry).
                    changes[Message.body] = peewee.Case(None, [(Message.status != "failed", peewee.Case(
                        Message.id, receipts, Message.body))], Message.body)
                Message.update(changes).where(Message.id.in_(ids)).execute()
        stored = {row.id: row for row in Message.select().where(Message.id.in_([m.id for m, _a in batch]))}
        for message, _answer in batch:
            self._tell(self.on_sent, stored[message.id])

    def _retry_later(self, message: Message, error: Exception, now: dt.datetime) -> bool:
        """Back to the queue with backoff after the gateway was down; True when the retry budget is spent
        and the message failed instead."""
        if message.attempts >= self.settings.max_attempts:
            self._finish(message, "failed", f"重试{message.attempts}次仍未发出 / gave up: {error}")
            return True
        Message.update(status="queued", error=str(error)[:255], updated_at=to_db(now),
                       next_attempt_at=to_db(now + policy.backoff(message.attempts))).where(
            Message.id == message.id).execute()
        return False

    def _defer(self, message: Message, until: dt.datetime) -> None:
        Message.update(next_attempt_at=to_db(until)).where(Message.id == message.id).execute()

    def _finish(self, message: Message, status: str, error: str) -> None:
        # Only a message not yet sent: a delivery report that got here first (the gateway took it after all)
        # keeps the state it gave.
        if not Message.update(status=status, error=error[:255], updated_at=to_db(self.clock.now())).where(
                (Message.id == message.id) & Message.status.in_(("queued", "sending"))).execute():
            return
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
    malformed input SmsInputError. Returns the message as stored (read once, changed in place: a report is
    two statements, the read and a compare-and-set, on the path every message takes)."""
    try:
        message_id, report_type = int(message_id), int(report_type)
    except (TypeError, ValueError):
        raise sms.SmsInputError("id and type must be numbers") from None
    report = f"{report_type}:{str(answer or '')[:200]}"[:255]
    foreign = str(foreign or "").strip()[:64]
    # Reports for one message may arrive together (with every report type asked for, Kannel sends
    # 'delivered' and 'accepted' at once): each is a compare-and-set on the status it read, tried again
    # when another report got there first.
    for _attempt in range(10):
        message = Message.get_or_none((Message.id == message_id) & (Message.direction == "out"))
        if message is None:
            raise LookupError(f"unknown message id {message_id}")
        # A message the app failed itself with no report yet (its outcome unknown: interrupted, or no answer
        # from the gateway) was taken after all if a report comes: the report says how it ended.
        current = "sent" if message.status == "failed" and not message.delivery_report else message.status
        status = sms.status_after_report(current, report_type)
        changes = {Message.status: status, Message.delivery_report: report}
        if message.status == "failed" and status != "failed" and messagelog.holds_pin(message):
            changes[Message.body] = messagelog.without_pin(message)  # taken after all: as _store would have
        if foreign and not message.provider_id and \
                not Message.select().where(Message.provider_id == foreign).exists():
            changes[Message.provider_id] = foreign
        try:
            # A savepoint inside a batch's transaction (channels.reports): on PostgreSQL the unique provider id
            # refused would otherwise abort the whole transaction, not only this statement.
            with database.atomic():
                changed = Message.update(changes).where((Message.id == message.id)
                                                        & (Message.status == message.status)).execute()
            if changed:
                message.status, message.delivery_report = status, report
                message.provider_id = changes.get(Message.provider_id, message.provider_id)
                return message
        except peewee.IntegrityError:  # the other report stored the same provider id first
            continue
    return Message.get_by_id(message_id)
