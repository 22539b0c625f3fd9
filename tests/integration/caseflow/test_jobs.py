"""Deadline and reminder jobs driven by a FixedClock: warn, overdue, supervision, scheduled reminders."""
from __future__ import annotations

import datetime as dt

from apscheduler.schedulers.background import BackgroundScheduler

from caseflow import jobs, services
from caseflow import workflow as wf
from caseflow.models import Notification, Ticket
from core.calendar import HOLIDAY, WORKDAY, set_day


def test_deadline_uses_stored_calendar(org_setup, clock):
    """Should compute a dispatched complaint's deadline on the administrator's calendar."""
    o = org_setup
    # clock: Wed 2026-03-04. Declare Thu 5th a holiday and Sat 7th a make-up day.
    set_day("2026-03-05", HOLIDAY, "测试假日")
    set_day("2026-03-07", WORKDAY, "测试调休")
    t = services.create_ticket("咨询", type="consult", created_by=o.agent, clock=clock)
    t = services.dispatch(t, o.centre_user, o.east, clock=clock)
    # 3 working days after Wed 4th: Fri 6th, Sat 7th, Mon 9th.
    assert clock.local(t.deadline) == dt.datetime(2026, 3, 9, 23, 59, 59, tzinfo=clock.tz)


def test_warn_overdue_supervise_sequence(org_setup, clock):
    """Should warn once a day before, mark overdue with a 催办 and centre notice, then supervise."""
    o = org_setup
    t = services.dispatch(services.create_ticket("求助", type="help", created_by=o.agent, clock=clock),
                          o.centre_user, o.east, clock=clock)
    t = services.transition(t, "accept", o.east_user, clock=clock)
    assert jobs.run_all(clock) == {"reminders": [], "warned": [], "overdue": [], "supervised": []}
    clock.set(t.deadline.replace(tzinfo=dt.timezone.utc) - dt.timedelta(hours=5))
    assert jobs.warn_due_soon(clock) == [t.number]
    assert jobs.warn_due_soon(clock) == []  # once only
    assert Notification.select().where(Notification.user == o.east_user, Notification.kind == "warn").exists()
    overdue, soon = services.due_soon_and_overdue(o.east_user, clock)
    assert (overdue, [x.id for x in soon]) == ([], [t.id])
    clock.advance(hours=6)
    assert jobs.mark_overdue(clock) == [t.number]
    assert jobs.mark_overdue(clock) == []
    stored = Ticket.get_by_id(t.id)
    assert stored.overdue and stored.remind_count == 1 and stored.status == wf.IN_PROGRESS
    assert Notification.select().where(Notification.department == o.centre, Notification.kind == "overdue").exists()
    assert [x.id for x in services.centre_queue(o.centre_user, "overdue", clock=clock)] == [t.id]
    assert [x.id for x in services.due_soon_and_overdue(o.east_user, clock)[0]] == [t.id]
    assert services.department_queue(o.east_user)[0].id == t.id
    assert jobs.escalate_supervision(clock) == []
    clock.advance(days=4)
    assert jobs.escalate_supervision(clock) == [t.number]
    assert Ticket.get_by_id(t.id).supervised
    actions = [h.action for h in services.timeline(t)]
    assert actions[-4:] == ["warn", "overdue", "remind", "supervise"]


def test_scheduled_reminder(org_setup, clock):
    """Should fire a reminder the operator set on a deferred ticket at that time, once."""
    o = org_setup
    t = services.create_ticket("需要查证后回复", created_by=o.agent, clock=clock)
    at = clock.now() + dt.timedelta(hours=2)
    t = services.transition(t, "defer", o.agent, at=at, clock=clock)
    assert jobs.fire_reminders(clock) == []
    clock.advance(hours=2, minutes=1)
    assert jobs.fire_reminders(clock) == [t.number]
    assert jobs.fire_reminders(clock) == []
    stored = Ticket.get_by_id(t.id)
    assert stored.remind_at is None and stored.remind_count == 1
    assert Notification.select().where(Notification.user == o.agent, Notification.kind == "remind").exists()


def test_extension_clears_overdue(org_setup, clock):
    """Should clear the overdue flag when an extension is approved."""
    o = org_setup
    t = services.dispatch(services.create_ticket("求助", type="help", created_by=o.agent, clock=clock),
                          o.centre_user, o.east, clock=clock)
    clock.advance(days=10)
    jobs.mark_overdue(clock)
    t = Ticket.get_by_id(t.id)
    t = services.transition(t, "request_extension", o.east_user, until=clock.now() + dt.timedelta(days=3),
                            reason="等待检测结果", clock=clock)
    t = services.transition(t, "approve_extension", o.centre_user, clock=clock)
    assert not t.overdue and jobs.mark_overdue(clock) == []


def test_register_jobs_on_scheduler(db, clock):
    """Should add the four jobs to an APScheduler scheduler without starting it."""
    scheduler = BackgroundScheduler()
    added = jobs.register_jobs(scheduler, clock, every_seconds=30)
    assert {j.id for j in added} == {"caseflow.fire_reminders", "caseflow.warn_due_soon",
                                     "caseflow.mark_overdue", "caseflow.escalate_supervision"}
    for job in added:
        assert job.func() is None or isinstance(job.func(), list)  # runs cleanly on an empty database
