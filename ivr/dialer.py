"""Places the calls of outbound IVR campaigns, paced to the free channels.

``dials_to_start`` is the pacing rule (pure). ``Dialer.tick()`` (run every few seconds by the scheduler)
counts the switch's channels, starts as many originates as the rule allows, each in its own greenlet, and
keeps attempts and outcomes. An answered call runs ``socket`` into the app's outbound server, where
``ivr.runner`` recognises it by the ``hotline_attempt`` channel variable and plays the campaign's tree.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import re
import uuid as uuidlib
from dataclasses import dataclass

from ivr.campaigns import note_failed_attempt
from ivr.models import OutboundAttempt, OutboundCampaign
from switch import commands

log = logging.getLogger(__name__)

ORIGINATE_TIMEOUT = 40  # seconds a citizen's phone may ring


def dials_to_start(pending: int, in_flight: int, max_parallel: int, free_channels: int) -> int:
    """How many new calls to place now: never above the campaign's parallel limit or the free channels."""
    return max(0, min(pending, max_parallel - in_flight, free_channels))


def free_channels(channel_count: int, max_calls: int, reserve_ratio: float = 0.2) -> int:
    """Channels outbound campaigns may use: a share is always kept free for citizens calling in."""
    reserve = math.ceil(max_calls * reserve_ratio)
    return max(0, max_calls - reserve - channel_count)


def parse_channel_count(text: str) -> int | None:
    """``show channels count`` -> the number (None when the reply is not one)."""
    match = re.search(r"([0-9]+)\s+total", text or "")
    return int(match.group(1)) if match else None


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass
class Dialer:
    """Runs the campaigns over an inbound connection (switch.inbound.InboundConnection or a pool's member)."""

    connection: object
    config: object
    max_calls: int = 0  # 0: the configured max_calls
    dialout: object = None  # recorder.dialout.DialOut; None: the configured policy (its carrier template)
    caller_id: str = "12345"

    def _spawn(self, fn, *args):
        import gevent

        return gevent.spawn(fn, *args)

    def originate_command(self, attempt: OutboundAttempt, call_uuid: str) -> str:
        """The originate: the citizen's leg, then the app's socket (switch.commands.CommandError for a bad
        number)."""
        from recorder.dialout import DialOut

        host, port = self.config.outbound
        # The campaign's numbers through the dial-out policy (recorder.dialout.DialRefused when refused).
        dialout = self.dialout or DialOut.from_config(self.config)
        leg = dialout.dial_string(dialout.authorise(attempt.phone, "campaign", detail=f"attempt {attempt.id}"))
        # The socket's argument has spaces: originate quotes it, or the socket would get only host:port
        # (a synchronous socket without `full`) and the dialplan and context "async" and "full)".
        return commands.originate(leg, commands.app("socket", f"{host}:{port} async full"),
                                  {"origination_uuid": call_uuid, "hotline_attempt": attempt.id,
                                   "origination_caller_id_number": self.caller_id,
                                   "origination_caller_id_name": self.caller_id,
                                   "originate_timeout": ORIGINATE_TIMEOUT, "ignore_early_media": "true"})

    def tick(self, now: dt.datetime | None = None) -> int:
        """Start the calls the pacing allows; returns how many were started."""
        now = now or _utcnow()
        try:
            count = parse_channel_count(self.connection.api(commands.show_channels_count()))
        except Exception as exc:  # noqa: BLE001 - switch down: try again next tick
            log.warning("dialer: cannot count channels: %s", exc)
            return 0
        if count is None:
            return 0
        room = free_channels(count, self.max_calls or self.config.max_calls)
        started = 0
        for campaign in OutboundCampaign.select().where(OutboundCampaign.status == "running").order_by(
                OutboundCampaign.id):
            in_flight = (OutboundAttempt.select().where((OutboundAttempt.campaign == campaign)
                                                        & (OutboundAttempt.state == "calling")).count())
            retry_before = now - dt.timedelta(minutes=campaign.retry_minutes)
            due = (OutboundAttempt.select().where(
                (OutboundAttempt.campaign == campaign) & (OutboundAttempt.state == "pending")
                & ((OutboundAttempt.last_attempt_at.is_null()) | (OutboundAttempt.last_attempt_at < retry_before)))
                .order_by(OutboundAttempt.attempts, OutboundAttempt.id))
            wanted = dials_to_start(due.count(), in_flight, campaign.max_parallel, room - started)
            for attempt in due.limit(wanted):
                call_uuid = str(uuidlib.uuid4())
                attempt.state, attempt.attempts = "calling", attempt.attempts + 1
                attempt.last_attempt_at, attempt.last_call_uuid = now, call_uuid
                attempt.save()
                self._spawn(self._originate, attempt.id, call_uuid)
                started += 1
        return started

    def _originate(self, attempt_id: int, call_uuid: str) -> None:
        from recorder.dialout import DialRefused

        attempt = OutboundAttempt.get_by_id(attempt_id)
        try:
            command = self.originate_command(attempt, call_uuid)
        except (DialRefused, commands.CommandError) as exc:
            # No retry would fare better: the attempt fails at once, the reason in the log and DialOutLog.
            log.warning("dialer: %s refused: %s", attempt.phone, exc)
            attempt.attempts = max(attempt.attempts, attempt.campaign.max_attempts)
            note_failed_attempt(attempt, "DIALOUT_REFUSED")
            return
        try:
            result = self.connection.bgapi(command, timeout=ORIGINATE_TIMEOUT + 30)
            ok, body = result.ok, result.body
        except Exception as exc:  # noqa: BLE001 - a lost connection is a failed attempt, retried later
            ok, body = False, f"-ERR {type(exc).__name__}"
        attempt = OutboundAttempt.get_by_id(attempt_id)
        if ok:
            log.info("dialer: %s answered (attempt %s)", attempt.phone, attempt.id)
            return  # the IVR runner finishes the attempt when the call ends
        cause = body.replace("-ERR", "").strip() or "FAILED"
        log.info("dialer: %s not reached: %s", attempt.phone, cause)
        if attempt.state == "calling":
            note_failed_attempt(attempt, cause)


def schedule_dialer(scheduler, pool, config, seconds: float = 5.0) -> Dialer:
    """Run the dialer every ``seconds`` on the scheduler (run.py wiring), over the first connected switch."""
    from core.db import database

    class _FirstConnected:
        def _conn(self):
            for conn in pool.all():
                if conn.connected:
                    return conn
            raise ConnectionError("no FreeSWITCH connected")

        def api(self, command, timeout=None):
            return self._conn().api(command, timeout=timeout)

        def bgapi(self, command, timeout=None):
            return self._conn().bgapi(command, timeout=timeout)

    dialer = Dialer(_FirstConnected(), config)

    def job():
        with database.connection_context():
            dialer.tick()

    scheduler.add_job(job, "interval", seconds=seconds, id="ivr-dialer", max_instances=1, coalesce=True)
    return dialer
