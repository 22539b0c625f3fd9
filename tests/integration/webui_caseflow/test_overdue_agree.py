"""One overdue (issue 15): the centre desk's banner, its 超期 tab (list and count), the department desk's banner
and the big screen's count all say a ticket past its deadline is overdue, before the minute's sweep
(caseflow.jobs.mark_overdue) has flagged it and after. On a fresh demo database the centre's banner said 1 and
its tab 0 until the sweep ran."""
from __future__ import annotations

import datetime as dt
import re

from caseflow import jobs
from caseflow.models import Ticket
from caseflow.services import to_db
from stats import screen
from stats.queries import Scope


def _centre_desk(client) -> tuple[int, int, set[str]]:
    """(the banner's overdue count, the 超期 tab's count, the numbers its list shows marked overdue)."""
    html = client.get("/centre/?q=overdue").get_data(as_text=True)
    banner = re.search(r'data-testid="overdue-alert">[^<]*?(\d+) · \d+</p>', html)
    tab = re.search(r'data-testid="tab-overdue">[^<]*<span class="badge count">(\d+)</span>', html)
    marked = set(re.findall(r'<tr class="overdue" data-number="(\d+)"', html))
    assert marked == set(re.findall(r'data-number="(\d+)"', html))  # every row of the list has the mark
    return int(banner.group(1)) if banner else 0, int(tab.group(1)), marked


def test_a_ticket_past_its_deadline_is_overdue_everywhere_before_the_sweep(world, login, clock):
    """Should count, list and mark the ticket past its deadline as overdue on the centre's banner and tab, the
    department's banner, the ticket's page and the big screen alike, the sweep not yet run; and the same once it
    has."""
    late, deadline = world.east_ticket, Ticket.get_by_id(world.east_ticket.id).deadline
    Ticket.update(deadline=deadline + dt.timedelta(days=30)).where(Ticket.id == world.west_ticket.id).execute()
    clock.set(deadline.replace(tzinfo=dt.timezone.utc) + dt.timedelta(hours=1))
    centre, dept = login(world.centre_user), login(world.east_user)
    for swept in (False, True):
        assert Ticket.get_by_id(late.id).overdue is swept
        assert _centre_desk(centre) == (1, 1, {late.number}), swept
        alert = dept.get("/dept/").get_data(as_text=True).split('data-testid="overdue-alert"')[1]
        assert f'<tr class="overdue" data-number="{late.number}"' in alert
        assert 'class="badge overdue"' in centre.get(f"/tickets/{late.number}").get_data(as_text=True)
        assert 'class="badge overdue"' not in centre.get(f"/tickets/{world.west_ticket.number}").get_data(as_text=True)
        now = to_db(clock.now())
        assert (screen.overdue_count(Scope(None), now), screen.overdue_count(Scope(world.east), now)) == (1, 1)
        assert jobs.mark_overdue(clock) == ([] if swept else [late.number])
