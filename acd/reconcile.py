"""Reconciliation: agents, callers and queue entries brought in line with what a FreeSWITCH says exists now.

Part of the ACD (acd.dispatcher.Acd is composed of this mixin). Runs when a switch connects, after each
reconnect and every ``reconcile_interval`` seconds; the answers are read by switch.listings. Other parts hook
in through ``Acd.reconcilers`` (callables ``(server, channels)``, e.g. recorder.sweep), run at every pass.
"""
from __future__ import annotations

import logging
import time

import gevent

from acd.errors import AcdError
from acd.legs import AgentCall
from acd.models import Agent, QueueEntry, utcnow
from acd.waiting import record_missed
from switch import commands
from switch.errors import SwitchError
from switch.listings import parse_channels, parse_sofia_registrations

log = logging.getLogger(__name__)

# A call an agent answered this recently may not be in `show channels` yet: reconciliation leaves it alone.
IN_CALL_GRACE_SECONDS = 10.0


class ReconcileMixin:
    """Reconciliation of acd.dispatcher.Acd with each FreeSWITCH."""

    def _spawn_reconcile(self, conn) -> None:
        gevent.spawn(self._safe_reconcile, self._server_name(conn))

    def recheck_registration(self, agent_id: int, server: str) -> None:
        """After an unregistration: is another phone of the seat still registered on ``server``? (A browser
        phone closed beside the desk phone, or the other way round: the seat stays offerable.)"""
        agent = self.agents.get(agent_id)
        if agent is None:
            return
        try:
            registrations = parse_sofia_registrations(self.conn_for(server).api(
                commands.sofia_registrations(self.settings.sip_profile, agent.extension), timeout=10.0))
        except (SwitchError, AcdError, ValueError) as exc:
            log.info("registrations of %s on %s not read (reconciliation will): %s", agent.extension, server, exc)
            return
        contact = registrations.get(agent.extension)
        if contact is not None and not agent.registered:
            self.set_registered(agent_id, True, server, contact)

    def _safe_reconcile(self, server: str) -> None:
        try:
            self.reconcile(server)
        except (SwitchError, AcdError, ValueError) as exc:
            log.warning("reconciliation with %s failed: %s", server, exc)
        except Exception:  # noqa: BLE001 - a database error must not end the periodic reconciliation for good
            log.exception("reconciliation with %s failed", server)

    def reconcile(self, server: str) -> dict:
        """Bring agents and queue entries in line with what ``server`` says exists now."""
        conn = self.conn_for(server)
        report = {"registered": 0, "unregistered": 0, "released": 0, "ended": 0, "recognised": 0,
                  "abandoned": 0}
        core = conn.api(commands.global_getvar("core_uuid"), timeout=10.0).strip()
        if core and not core.startswith("-"):
            self.core_server[core] = server
        self.learn_peer_route(server, conn)
        registrations = parse_sofia_registrations(
            conn.api(commands.sofia_registrations(self.settings.sip_profile), timeout=10.0))
        for agent in list(self.agents.values()):
            contact = registrations.get(agent.extension)
            if contact is not None:
                report["registered"] += 1
                self.set_registered(agent.id, True, server, contact)
            elif agent.registered and agent.server in (server, ""):
                report["unregistered"] += 1
                self.set_registered(agent.id, False)
        channels = parse_channels(conn.api(commands.show_channels(), timeout=10.0))
        now = utcnow()
        for waiter in list(self.waiters.values()):
            # A caller FreeSWITCH no longer has (its hang-up event was lost or came too early) is gone.
            if waiter.entry.server in (server, "") and waiter.uuid not in channels \
                    and time.monotonic() - waiter.entered > 5.0:
                report["callers_gone"] = report.get("callers_gone", 0) + 1
                self._caller_gone(waiter)
        for uuid, gone in list(self._gone.items()):
            # A greenlet waiting for a channel's hang-up event (a transferred caller, up to bridge_timeout)
            # is released when its channel is gone from the switch it was on and the event was lost.
            if uuid not in channels and self.channel_server.get(uuid, server) == server:
                report["waits_released"] = report.get("waits_released", 0) + 1
                self.ended_legs[uuid] = None
                gone.set()
        in_flight = {leg for w in self.waiters.values() if w.offer and w.uuid in channels
                     for leg in w.offer.legs.values()}
        for agent in list(self.agents.values()):
            if not agent.leg_uuid or (agent.call_server and agent.call_server != server
                                      and len(self.connections()) > 1):
                continue
            if agent.state in ("reserved", "ringing"):
                if agent.leg_uuid in channels:
                    self.legs.claim(agent.leg_uuid, AgentCall(agent.id))
                elif agent.leg_uuid not in in_flight or (now - agent.since).total_seconds() > self._offer_grace(agent):
                    # No leg, and the caller is gone or the offer is older than any ring could last.
                    report["released"] += 1
                    self.offer_failed(agent.id, agent.leg_uuid, "LOST_CHANNEL", None)
            elif agent.state == "in_call":
                if agent.leg_uuid in channels:
                    report["recognised"] += 1
                    self.legs.claim(agent.leg_uuid, AgentCall(agent.id))
                    self.answered_at.setdefault(agent.id, time.monotonic())
                elif (now - agent.since).total_seconds() < IN_CALL_GRACE_SECONDS:
                    # FreeSWITCH lists a new leg a moment after creating it: the next pass decides.
                    report["too_new"] = report.get("too_new", 0) + 1
                else:
                    report["ended"] += 1
                    self._end_call(agent.id, agent.leg_uuid, "channel gone")
        for consult in self.consultations.stale(channels, time.monotonic(), grace=15.0):
            # A consultation leg this switch does not have (never created, or its hang-up event lost).
            agent = self.agents.get(consult.agent_id)
            if agent is None or agent.call_server in ("", server) or len(self.connections()) == 1:
                self.end_consultation(consult.leg, "lost")
        self.expire_wrap_up()
        for entry in QueueEntry.select().where(QueueEntry.state.in_(("waiting", "offering"))
                                               & (QueueEntry.server == server)):
            if entry.call_uuid not in self.waiters and entry.call_uuid in channels:
                # Left waiting by an earlier run of the app (killed, or the other app of a pair): its caller
                # still hears the hold music, which plays on with nobody in control. Back into this app.
                if self._requeue(conn, entry):
                    report["requeued"] = report.get("requeued", 0) + 1
            elif entry.call_uuid not in self.waiters and entry.call_uuid not in channels:
                entry.state, entry.end_reason, entry.ended_at = "abandoned", "lost on restart", utcnow()
                entry.save(only=entry.dirty_fields)
                record_missed(entry.caller_number, "cut_off", entry.call_uuid, entry.queue.name,
                              (entry.ended_at - entry.entered_at).total_seconds())
                report["abandoned"] += 1
        for reconciler in list(self.reconcilers):
            try:
                result = reconciler(server, channels)
            except Exception:  # noqa: BLE001 - one part's sweep must not stop the others or the ACD
                log.exception("reconciler %r failed for %s", reconciler, server)
                continue
            if isinstance(result, dict):
                report.update({k: v for k, v in result.items() if v})
        log.info("reconciled with %s: %s", server, report)
        self.kick()
        return report

    def _requeue(self, conn, entry: QueueEntry) -> bool:
        """Send a caller an earlier run left in a queue back into the app, straight to that queue (the
        hand-back mark hotline_queue, trusted through the ledger) with the wait they already had: the entry
        ends as moved (overflowed, "takeover:<queue>") and the new one starts at the old one's entry time."""
        queue = entry.queue.name
        mark = commands.scrub(queue)
        if not mark:
            return False
        self.handbacks.expect(entry.call_uuid, "hotline_queue", mark)
        self.requeued[entry.call_uuid] = entry.entered_at
        try:
            channel = conn.channel(entry.call_uuid, timeout=10.0)
            channel.setvar("hotline_queue", mark)
            reply = channel.transfer(commands.phone(self.settings.hotline_number), "default")
        except SwitchError as exc:
            log.warning("caller %s left waiting in %s: cannot send them back into the app: %s", entry.call_uuid,
                        queue, exc)
            self.requeued.pop(entry.call_uuid, None)
            return False
        if reply.strip().startswith("-ERR"):
            log.warning("caller %s left waiting in %s: the switch refused the transfer: %s", entry.call_uuid, queue,
                        reply.strip()[:120])
            self.requeued.pop(entry.call_uuid, None)
            return False
        entry.state, entry.end_reason, entry.ended_at = "overflowed", f"takeover:{queue}"[:64], utcnow()
        entry.wait_seconds = (entry.ended_at - entry.entered_at).total_seconds()
        entry.save(only=entry.dirty_fields)
        log.info("caller %s left waiting in %s by an earlier run: back into the queue", entry.call_uuid, queue)
        return True

    def _offer_grace(self, agent: Agent) -> float:
        queue = self.queues.get(agent.call_queue)
        if queue is None:
            return 90.0
        extra = self.settings.progressive_delay * self.settings.max_ring_all \
            if queue.strategy == "ring_progressively" else 0
        return queue.ring_timeout + extra + 30.0

    def expire_wrap_up(self) -> None:
        """End wrap-ups whose time is over (also those left over from before a restart)."""
        now = utcnow()
        for agent in list(self.agents.values()):
            if agent.state != "wrap_up" or agent.id in self._timers:
                continue
            queue = self.queues.get(agent.call_queue)
            seconds = queue.wrap_up_seconds if queue is not None else self.settings.default_wrap_up
            if (now - agent.since).total_seconds() >= seconds:
                self.transition(agent.id, "wrap_up_done")
            else:
                self._schedule_wrap_up(agent.id, seconds - (now - agent.since).total_seconds())

    def _periodic(self) -> None:
        while self._started:
            gevent.sleep(self.settings.reconcile_interval)
            for conn in self.connections():
                if getattr(conn, "connected", True):
                    self._safe_reconcile(self._server_name(conn))
