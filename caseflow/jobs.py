"""Deadline and reminder jobs (APScheduler job functions): warn before the deadline, mark overdue and
tell the centre, escalate long-overdue work to supervision, fire reminders set on tickets (remind_at).

Every job takes a clock, so tests drive them with a FixedClock instead of sleeping, and returns what it
did. ``register_jobs(scheduler, clock)`` adds them to a scheduler (run.py calls it).
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Optional

from caseflow import deadlines as dl
from caseflow import services
from caseflow import workflow as wf
from caseflow.models import Ticket
from caseflow.workflow import WorkflowError
from core.clock import Clock
from core.db import database

log = logging.getLogger(__name__)

# Overdue this long (beyond the deadline) and the ticket is put under supervision (督办).
ESCALATE_AFTER = dt.timedelta(days=3)
BATCH = 500


def warn_due_soon(clock: Clock, within: dt.timedelta = dl.WARN_BEFORE) -> list[str]:
    """Warn the handler and department once about tickets whose deadline is within ``within``."""
    now = services.to_db(clock.now())
    done = []
    query = (Ticket.select().where(Ticket.status.in_(list(wf.HANDLING_STATUSES)) & Ticket.warned_at.is_null()
                                   & ~Ticket.overdue & (Ticket.deadline >= now) & (Ticket.deadline < now + within))
             .order_by(Ticket.deadline).limit(BATCH))
    for ticket in query:
        with database.atomic():
            if Ticket.update(warned_at=now).where((Ticket.id == ticket.id) & Ticket.warned_at.is_null()).execute():
                text = f"临期提醒：工单 {ticket.number} 将于 {clock.local(ticket.deadline):%m-%d %H:%M} 到期"
                services._holder_notice(ticket, text, "warn", clock)
                services._history(ticket, None, "warn", ticket.status, ticket.status, text, now, label=services.SYSTEM)
                done.append(ticket.number)
    return done


def mark_overdue(clock: Clock) -> list[str]:
    """Flag tickets past their deadline, send the 催办 notice to the holder and tell the centre."""
    now = services.to_db(clock.now())
    done = []
    centre = services.centre_department()
    query = (Ticket.select().where(Ticket.status.in_(list(wf.HANDLING_STATUSES)) & ~Ticket.overdue
                                   & (Ticket.deadline < now)).order_by(Ticket.deadline).limit(BATCH))
    for ticket in query:
        with database.atomic():
            # Not a workflow transition (status is unchanged); the flag is guarded against a double run.
            if not Ticket.update(overdue=True).where((Ticket.id == ticket.id) & ~Ticket.overdue).execute():
                continue
            services._history(ticket, None, "overdue", ticket.status, ticket.status,
                              f"期限 {clock.local(ticket.deadline):%Y-%m-%d %H:%M}", now, label=services.SYSTEM)
        try:
            services.transition(ticket.id, "remind", None, "超期自动催办 / automatic reminder: overdue",
                                 system=True, clock=clock)
        except WorkflowError as exc:
            log.warning("could not remind overdue ticket %s: %s", ticket.number, exc)
        if centre is not None:
            services.notify(f"超期：工单 {ticket.number}（{ticket.department.name if ticket.department_id else ''}）",
                            department=centre, ticket=ticket, kind="overdue", clock=clock)
        done.append(ticket.number)
    return done


def escalate_supervision(clock: Clock, after: dt.timedelta = ESCALATE_AFTER) -> list[str]:
    """Put tickets overdue for longer than ``after`` under supervision (督办) once."""
    now = services.to_db(clock.now())
    done = []
    query = (Ticket.select().where(Ticket.status.in_(list(wf.HANDLING_STATUSES)) & Ticket.overdue
                                   & ~Ticket.supervised & (Ticket.deadline < now - after)).limit(BATCH))
    for ticket in query:
        try:
            services.transition(ticket.id, "supervise", None, "超期自动督办 / overdue: put under supervision",
                                 system=True, clock=clock)
            done.append(ticket.number)
        except WorkflowError as exc:
            log.warning("could not supervise ticket %s: %s", ticket.number, exc)
    return done


def fire_reminders(clock: Clock) -> list[str]:
    """Send the reminders operators set on tickets (remind_at reached) and clear them."""
    now = services.to_db(clock.now())
    done = []
    query = (Ticket.select().where(Ticket.remind_at.is_null(False) & (Ticket.remind_at <= now))
             .order_by(Ticket.remind_at).limit(BATCH))
    for ticket in query:
        if ticket.status not in wf.OPEN_STATUSES:
            Ticket.update(remind_at=None).where(Ticket.id == ticket.id).execute()
            continue
        try:
            services.transition(ticket.id, "remind", None, "预约提醒 / scheduled reminder", system=True,
                                 clock=clock, scheduled=True)
            if ticket.created_by_id and ticket.status in (wf.RECORDED, wf.DEFERRED):
                services.notify(f"提醒：工单 {ticket.number}（{ticket.title}）到了约定的处理时间",
                                user=ticket.created_by, ticket=ticket, kind="remind", clock=clock)
            done.append(ticket.number)
        except WorkflowError as exc:
            log.warning("reminder for %s failed: %s", ticket.number, exc)
    return done


def run_all(clock: Clock) -> dict[str, list[str]]:
    """Run every job once in a sensible order (tests, the CLI, and the scheduler's catch-up)."""
    return {
        "reminders": fire_reminders(clock),
        "warned": warn_due_soon(clock),
        "overdue": mark_overdue(clock),
        "supervised": escalate_supervision(clock),
    }


def _job(func, clock: Clock):
    def run():
        # A failing run is logged by the scheduler (the product's: core.jobguard, once per database outage);
        # the next run tries again.
        with database.connection_context():
            result = func(clock)
        if result:
            log.info("%s: %d ticket(s)", func.__name__, len(result))
        return result
    run.__name__ = f"caseflow_{func.__name__}"
    return run


def register_jobs(scheduler, clock: Optional[Clock] = None, every_seconds: int = 60) -> list:
    """Add the caseflow jobs to an APScheduler scheduler (interval trigger); returns the Job objects."""
    clock = clock or Clock()
    jobs = []
    for func in (fire_reminders, warn_due_soon, mark_overdue, escalate_supervision):
        jobs.append(scheduler.add_job(_job(func, clock), "interval", seconds=every_seconds,
                                      id=f"caseflow.{func.__name__}", replace_existing=True,
                                      max_instances=1, coalesce=True))
    return jobs
