"""The waiting loop: a caller held in a queue by its own greenlet until answered, call-back, overflow or hang-up.

Part of the ACD (acd.dispatcher.Acd is composed of this mixin): its methods work on the Acd's state (legs,
waiters, queue_waiters, queues, settings...). A caller's channel is the Waiter's in the one leg registry
(acd.legs) from entering the queue to leaving it. The caller's greenlet holds music (``_hold``) and is woken
(``Waiter.wake``) by an offer (acd.offers), the call-back key, the hang-up or a timer; it then bridges
(``_connect``), announces its position, overflows or leaves for call-back.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

import gevent
import gevent.event

from recorder.dialout import DialRefused
from acd.errors import AcdError
from acd.models import Queue, QueueEntry, utcnow
from acd.offers import Offer, _failure_cause, _variable
from acd.prompts import expected_wait_minutes
from recorder import missed as missed_calls
from switch import commands
from switch import events as sw
from switch.errors import CallHangup, SwitchError, SwitchTimeout

log = logging.getLogger(__name__)

# Why a caller left a queue for call-back (the ACD's words) -> the missed-call list's reason.
MISSED_REASON = {"key": "callback_request", "overflow": "callback_request", "abandoned": "abandoned",
                 "cut_off": "cut_off"}  # cut_off: the switch lost the caller (a restart, a lost event)


def record_missed(number: str, reason: str, call_uuid: str, queue: str, wait_seconds) -> bool:
    """List a caller who left a queue unserved for call-back, once per call (the call record reports the
    same call later and is not counted again). Returns False when there is nobody to call back."""
    if not number:
        return False
    missed_calls.add_missed(number, MISSED_REASON[reason], call_uuid=call_uuid, queue=queue,
                            wait_seconds=wait_seconds or 0, source="acd")
    return True


@dataclass(frozen=True)
class QueueOutcome:
    """How a caller left the queue: answered, callback, busy (overflow to voicemail), transfer, abandoned."""

    outcome: str
    queue: str = ""
    agent_id: int | None = None
    target: str = ""


@dataclass(eq=False)
class Waiter:
    """A caller waiting in a queue, driven by the caller's own greenlet."""

    session: object
    queue: Queue
    entry: QueueEntry
    entered: float  # monotonic
    entered_perf: float = field(default_factory=time.perf_counter)
    event: gevent.event.Event = field(default_factory=gevent.event.Event)
    reason: str | None = None
    offer: Offer | None = None
    holding: bool = False
    hold_gen: int = 0
    offered: set[int] = field(default_factory=set)
    done: bool = False
    step: str = "entering"  # what the caller's greenlet is doing (console, diagnostics)
    # Offers that failed at once (wrong peer password, a phone answering busy...): how many in a row, and
    # the moment before which this caller is not offered again, so a failing route cannot spin.
    fast_failures: int = 0
    retry_after: float = 0.0
    deadline: float | None = None  # monotonic end of the queue's maximum wait

    @property
    def uuid(self) -> str:
        return self.session.uuid

    @property
    def offer_written(self) -> bool:
        """An offer stands and is written: the caller may bridge (an offer is made in memory first)."""
        return self.offer is not None and self.offer.written

    def wake(self, reason: str) -> None:
        """Record why the caller's greenlet should act; a stronger reason is never replaced by a weaker one."""
        if self.reason is None or _PRIORITY.get(reason, 0) > _PRIORITY.get(self.reason, 0):
            self.reason = reason
        self.event.set()


_PRIORITY = {"timer": 1, "offer": 2, "key": 3, "hangup": 4}


class WaitingMixin:
    """The waiting loop of acd.dispatcher.Acd."""

    def enter_queue(self, session, skill: str | None, queue_name: str | None = None,
                    waited: float = 0.0) -> QueueOutcome:
        """Hold the caller in the queue until answered, call-back, overflow or hang-up (runs in its greenlet).

        ``waited``: seconds the caller has already waited for a person (the IVR's "connecting" prompt after
        they asked for one): the queue entry starts that much earlier, so the wait, the maximum wait and the
        15-second answer rate count from the request (GB/T 33358), not from the end of the prompt."""
        queue = self.queue_for(skill, queue_name)
        if session.hung_up or session.uuid in self.ended_legs:
            # Already gone (the hang-up event may have been read before this greenlet got here).
            return QueueOutcome("abandoned", queue.name)
        server = self.server_of(session)
        first_entered = self.requeued.pop(session.uuid, None)
        if first_entered is not None:
            # Sent back in after a takeover (acd.reconcile): the wait goes on from the first entry.
            waited = max(float(waited or 0.0), (utcnow() - first_entered).total_seconds())
        waited = min(max(float(waited or 0.0), 0.0), 3600.0)
        entry = QueueEntry.create(call_uuid=session.uuid, server=server, queue=queue,
                                  caller_number=(session.caller or "")[:32],
                                  entered_at=utcnow() - dt.timedelta(seconds=waited))
        waiter = Waiter(session=session, queue=queue, entry=entry, entered=time.monotonic() - waited)
        handed_back = self.waiters.get(session.uuid)
        if handed_back is not None:
            # Transferred into a queue by its agent: the caller is back through the socket while the greenlet
            # that bridged it still waits for the channel's end (its Waiter served). The new Waiter takes over.
            self.legs.release(session.uuid, handed_back)
        self.legs.claim(session.uuid, waiter)
        self.queue_waiters[queue.name][session.uuid] = waiter
        session.on_event(lambda event, waiter=waiter: self._on_caller_event(waiter, event))
        self.notify("queue", queue=queue.name, waiting=len(self.queue_waiters[queue.name]))
        try:
            return self._serve(waiter)
        except CallHangup:
            if waiter.entry.state == "bridged":
                # The caller (or a force release) ended a call an agent had answered: served, not abandoned.
                return QueueOutcome("answered", queue.name, agent_id=waiter.entry.agent_id)
            self._abandon(waiter)
            return QueueOutcome("abandoned", queue.name)
        finally:
            waiter.done = True
            self.legs.release(session.uuid, waiter)
            self.queue_waiters[queue.name].pop(session.uuid, None)
            if waiter.offer is not None:
                self._offer_over(waiter, waiter.offer, "ORIGINATOR_CANCEL")
            self.notify("queue", queue=queue.name, waiting=len(self.queue_waiters[queue.name]))

    def _caller_gone(self, waiter: Waiter) -> None:
        """The caller's channel is gone: free the agents offered to it, whatever its greenlet is doing."""
        self._wake(waiter, "hangup")
        if waiter.offer is not None:
            self._offer_over(waiter, waiter.offer, "ORIGINATOR_CANCEL", caller_gone=True)
        self._abandon(waiter)
        waiter.done = True
        self.legs.release(waiter.uuid, waiter)
        self.queue_waiters[waiter.queue.name].pop(waiter.uuid, None)
        self.notify("queue", queue=waiter.queue.name, waiting=len(self.queue_waiters[waiter.queue.name]))

    def _on_caller_event(self, waiter: Waiter, event) -> None:
        if isinstance(event, sw.DtmfReceived) and event.digit and event.digit == waiter.queue.callback_key:
            self._wake(waiter, "key")
        elif isinstance(event, sw.ChannelHangup):
            self._wake(waiter, "hangup")

    def _wake(self, waiter: Waiter, reason: str) -> None:
        waiter.wake(reason)
        if waiter.holding:
            gevent.spawn(self._break_hold, waiter, waiter.hold_gen)

    def _break_hold(self, waiter: Waiter, generation: int) -> None:
        """Stop the caller's music so its greenlet can act.

        The break can reach FreeSWITCH before the music has started (the playback command is still on its
        way), in which case it does nothing: resend until the hold is over, backing off to once a second.
        """
        delay = 0.1
        for _attempt in range(self.settings.break_retries):
            if not waiter.holding or waiter.hold_gen != generation or waiter.done:
                return
            try:
                self.conn_for(waiter.entry.server).channel(waiter.uuid, timeout=5.0).stop_playback()
            except (SwitchError, AcdError, commands.CommandError) as exc:
                log.warning("uuid_break %s failed: %s", waiter.uuid, exc)
            gevent.sleep(delay)
            delay = min(1.0, delay * 2)
        log.warning("caller %s did not leave music on hold after %d breaks", waiter.uuid,
                    self.settings.break_retries)

    def _serve(self, waiter: Waiter) -> QueueOutcome:
        queue, session = waiter.queue, waiter.session
        if queue.callback_key:
            session.set("playback_terminators", queue.callback_key)
        deadline = waiter.deadline = waiter.entered + queue.max_wait if queue.max_wait > 0 else None
        interval = queue.announce_interval if queue.announce_interval > 0 else None
        next_announce = waiter.entered + interval if interval else None
        self.dispatch()
        while True:
            if waiter.reason is None and not waiter.offer_written:
                until = min(t for t in (deadline, next_announce, time.monotonic() + 3600) if t is not None)
                self._hold(waiter, until)
            reason, waiter.reason = waiter.reason, None
            waiter.event.clear()
            if session.hung_up or reason == "hangup":
                raise CallHangup(uuid=waiter.uuid)
            if waiter.offer_written:
                outcome = self._connect(waiter)
                if outcome is not None:
                    return outcome
                continue
            if reason == "key":
                return self._leave_callback(waiter, "key")
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return self._overflow(waiter)
            if next_announce is not None and now >= next_announce:
                self._announce(waiter)
                next_announce = time.monotonic() + interval

    def _hold(self, waiter: Waiter, until: float) -> None:
        """Music on hold until woken (offer, key, hang-up) or ``until``."""
        remaining = until - time.monotonic()
        if remaining <= 0:
            return
        if waiter.offer is not None and not waiter.offer.written:
            # Offered as it came in, the offer's write under way (acd.offers): no music, which its write's
            # end would have to break before the bridge. Woken by that end, or by the offer undone.
            waiter.step = "offer being written"
            waiter.event.wait(timeout=remaining)
            return
        waiter.hold_gen += 1
        waiter.holding = True
        waiter.step = "music"
        timer = gevent.spawn_later(remaining, self._wake, waiter, "timer")
        try:
            if waiter.reason is None and not waiter.offer_written:
                try:
                    result = waiter.session.execute("playback", waiter.queue.moh, timeout=remaining + 10)
                    if _variable(result, "playback_terminator_used") == waiter.queue.callback_key:
                        waiter.wake("key")
                except SwitchTimeout:
                    pass
            self._take_key(waiter)
            if waiter.reason is None and not waiter.offer_written:
                # The music ended by itself (a short file): keep waiting, silently, until something happens.
                waiter.step = "silent wait"
                waiter.event.wait(timeout=max(0.0, until - time.monotonic()))
        finally:
            waiter.holding = False
            timer.kill(block=False)

    def _take_key(self, waiter: Waiter) -> None:
        dtmf = getattr(waiter.session, "dtmf", None)
        key = waiter.queue.callback_key
        while dtmf:
            if dtmf.popleft() == key and key:
                waiter.wake("key")

    def _announce(self, waiter: Waiter) -> None:
        if self.prompts is None:
            return
        position = self.position_of(waiter)
        serving = sum(1 for a in self._skilled_agents(waiter.queue.skill) if a.status != "logged_out")
        minutes = expected_wait_minutes(position, self._average_handle_seconds(waiter.queue), serving)
        path = self.prompts.position(position, minutes, waiter.queue.callback_key)
        if path:
            waiter.session.playback(path, timeout=120.0)

    def position_of(self, waiter: Waiter) -> int:
        """1-based position among the callers of the same queue not yet offered."""
        position = 1
        for other in self.queue_waiters[waiter.queue.name].values():
            if other is waiter:
                return position
            if other.offer is None:
                position += 1
        return position

    def _leave_callback(self, waiter: Waiter, reason: str) -> QueueOutcome:
        self._finish(waiter, "callback_requested", reason)
        self._callback_request(waiter, reason)
        if self.prompts is not None:
            path = self.prompts.fixed("callback_saved")
            if path:
                waiter.session.playback(path, timeout=60.0)
        return QueueOutcome("callback", waiter.queue.name)

    def _overflow(self, waiter: Waiter) -> QueueOutcome:
        queue = waiter.queue
        kind, target = queue.overflow_kind, queue.overflow_target
        log.info("caller %s overflows queue %s to %s %s", waiter.uuid, queue.name, kind, target)
        if kind == "queue" and target in self.queues and target != queue.name:
            self._finish(waiter, "overflowed", f"queue:{target}")
            self.queue_waiters[queue.name].pop(waiter.uuid, None)
            return self.enter_queue_again(waiter, target)
        if kind == "callback":
            self._finish(waiter, "overflowed", "callback")
            self._callback_request(waiter, "overflow")
            if self.prompts is not None:
                path = self.prompts.fixed("overflow_callback")
                if path:
                    waiter.session.playback(path, timeout=60.0)
            return QueueOutcome("callback", queue.name)
        self._finish(waiter, "overflowed", f"{kind}:{target}")
        if kind == "number" and target:
            # Send the caller on (duty phone, another hotline): a seat through the dialplan, any other number
            # through the dial-out policy to the carrier (the default context would hang it up).
            try:
                decision = self.dialout.authorise(target, "overflow", detail=f"queue {queue.name}")
                data = (commands.transfer_data(decision.number) if decision.number_class == "internal" else
                        commands.inline("bridge", self.dialout.dial_string(decision)) + " inline")
            except (DialRefused, commands.CommandError) as exc:
                log.error("queue %s: overflow to %s refused: %s", queue.name, target, exc)
                return QueueOutcome("busy", queue.name, target=target)
            try:
                waiter.session.execute("transfer", data, timeout=10.0)
            except (CallHangup, SwitchTimeout):
                pass  # the socket application lost the channel, as it should
            self.wait_channel_gone(waiter.uuid, self.settings.bridge_timeout)
            return QueueOutcome("transferred", queue.name, target=target)
        return QueueOutcome("busy", queue.name, target=target)

    def enter_queue_again(self, waiter: Waiter, queue_name: str) -> QueueOutcome:
        """Overflow into another queue: the same caller, a new queue entry."""
        self.legs.release(waiter.uuid, waiter)
        return self.enter_queue(waiter.session, None, queue_name=queue_name)

    def _callback_request(self, waiter: Waiter, reason: str) -> None:
        """Put the caller on the one missed-call list (recorder.missed): key, overflow or abandoned."""
        entry = waiter.entry
        if record_missed(entry.caller_number, reason, entry.call_uuid, waiter.queue.name, entry.wait_seconds):
            self.notify("callback", queue=waiter.queue.name, number=entry.caller_number, reason=reason)

    def _abandon(self, waiter: Waiter) -> None:
        if waiter.entry.state in ("waiting", "offering"):
            self._finish(waiter, "abandoned", "caller hung up")
            self._callback_request(waiter, "abandoned")

    def _finish(self, waiter: Waiter, state: str, reason: str) -> None:
        entry = waiter.entry
        now = utcnow()
        entry.state = state
        entry.end_reason = reason[:64]
        entry.ended_at = now
        if entry.wait_seconds is None:
            entry.wait_seconds = round(time.monotonic() - waiter.entered, 3)
        entry.save(only=entry.dirty_fields)

    def _connect(self, waiter: Waiter) -> QueueOutcome | None:
        """Bridge the caller to the offered agent(s); None when nobody answered (the caller waits on)."""
        offer = waiter.offer
        session = waiter.session
        result = None
        waiter.step = "bridge"
        try:
            # Inside the try: a caller gone or a switch error here must end the offer like a failed bridge,
            # or the reserved agents would wait for reconciliation.
            if self.prompts is not None:
                self._prepare_operator_prompt(waiter)
            result = session.bridge(self.dial_string(waiter, offer), timeout=self.settings.bridge_timeout)
        except CallHangup:
            self._offer_over(waiter, offer, "ORIGINATOR_CANCEL", caller_gone=True)
            raise
        except (SwitchError, commands.CommandError) as exc:  # a bad extension or route: this offer fails
            log.warning("bridge for %s failed: %s", waiter.uuid, exc)
        waiter.step = "after bridge"
        disposition = (_variable(result, "originate_disposition") or _variable(result, "DIALSTATUS")
                       or (getattr(result, "response", "") or "")).strip()
        answered = offer.answered_by
        if disposition.upper() in ("SUCCESS", "ANSWER"):
            # The leg FreeSWITCH actually bridged is the truth: with ring-all two phones may answer at once
            # and the first answer event is not always the winner (the other leg ends with LOSE_RACE).
            bridged_to = _variable(result, "last_bridge_to") or _variable(result, "bridge_uuid")
            answered = next((aid for aid, leg in offer.legs.items() if leg == bridged_to), answered)
            if answered is None and len(offer.agent_ids) == 1:
                answered = offer.agent_ids[0]
            if answered is not None and offer.answered_by is None:
                self._agent_answered(answered, offer.legs[answered])
        if answered is not None:
            handed_off = waiter.uuid in self.handed_off
            if not handed_off:
                # The bridge returned: the conversation is over (the agent's hang-up event may come later).
                self._end_call(answered, offer.legs[answered], "bridge ended")
            # Handed on (transfer, three-way, intercept): the agent's own leg decides when their call ends,
            # through its hang-up event or reconciliation, so a three-way agent is not offered a new call.
            self._offer_over(waiter, offer, "LOSE_RACE")
            waiter.offer = None
            if handed_off:
                # The caller talks to someone else now. The socket may already say "hung up" (the channel
                # left the socket application); keep it open until the channel itself is gone, as the
                # inbound connection reports, so closing it cannot cut the transferred caller off.
                self.handed_off.discard(waiter.uuid)
                self.wait_channel_gone(waiter.uuid, self.settings.bridge_timeout)
                return QueueOutcome("transferred", waiter.queue.name, agent_id=answered)
            return QueueOutcome("answered", waiter.queue.name, agent_id=answered)
        cause = _failure_cause(disposition, result)
        self._offer_over(waiter, offer, cause)
        waiter.offer = None
        if waiter.entry.state == "offering":
            waiter.entry.state = "waiting"
            waiter.entry.save(only=[QueueEntry.state])
        if session.hung_up:
            raise CallHangup(uuid=waiter.uuid)
        if waiter.deadline is not None and time.monotonic() >= waiter.deadline:
            # The maximum wait is over: no new offer for this caller, who overflows now (_serve).
            waiter.retry_after = float("inf")
        else:
            self._back_off_if_fast(waiter, offer)
        self.dispatch()
        return None

    def wait_channel_gone(self, uuid: str, timeout: float) -> bool:
        """Block until the inbound connection reports the channel's hang-up (True) or timeout (False)."""
        if uuid in self.ended_legs:
            return True
        gone = self._gone.setdefault(uuid, gevent.event.Event())
        try:
            return gone.wait(timeout)
        finally:
            self._gone.pop(uuid, None)
