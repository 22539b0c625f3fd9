"""Alarms to the duty leader's phones (值班领导): the SMS side of the one alarm path.

Alarms are stored, counted and shown by ops.alarms (one table, one page); every newly opened alarm is handed
to the ``notify`` hook the composition root gives the alarm service, which is a ``DutyPhones`` built on the
SMS channel's settings: one urgent SMS per alarm and duty phone (HOTLINE_DUTY_PHONES; quiet hours and
opt-outs do not hold it), idempotent by the alarm's id. A part of the channels that needs a person now (an
SMS given up on) raises its alarm through ``core.alarms.raise_alarm`` like every other floor.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

from channels.outbox import enqueue
from core.clock import Clock
from core.db import database

log = logging.getLogger(__name__)


@dataclass
class DutyPhones:
    """``notify(alarm)`` for ops.alarms.AlarmService: queue the alarm's SMS to every duty phone. Without
    duty phones the alarm stays on the consoles and the centre's desk only."""

    settings: object
    clock: Optional[Clock] = None

    def __call__(self, alarm) -> int:
        phones = tuple(getattr(self.settings, "duty_phones", ()) or ())
        if not phones:
            return 0
        kind = f"{alarm.kind} {alarm.subject}".strip() if getattr(alarm, "subject", "") else alarm.kind
        queued = 0
        with database.atomic():
            for phone in phones:
                if enqueue(phone, "alarm", {"kind": kind, "text": alarm.text}, purpose="alarm",
                           dedupe_key=f"alarm:{alarm.id}:{phone}", answer=True, settings=self.settings,
                           clock=self.clock) is not None:
                    queued += 1
        log.info("alarm %s %s: texted to %d duty phone(s)", alarm.kind, alarm.id, queued)
        return queued
