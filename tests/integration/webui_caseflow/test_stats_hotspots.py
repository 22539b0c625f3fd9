"""Hotspot warnings on a realistic week of Chinese tickets, on SQLite and PostgreSQL: ordinary noise
raises nothing; a 停水 spike from one street raises one warning at the fifth ticket (not before, not
twice), to the duty leader's alarm; the page lists it with rising topics and a word cloud, drills down to
the tickets, and the centre marks it handled (audited, alarm cleared). Scope and refusals as on /stats."""
from __future__ import annotations

import datetime as dt
import random

import pytest

from caseflow import services
from caseflow.models import Region, Ticket
from ops.models import SystemAlarm
from stats import hotspots
from stats import sample_tickets as st
from stats.hotspots import HotspotSettings
from stats.jobs import HotspotJob
from stats.models import HotspotWarning
from webui.models import AuditLog

SPIKE = (  # the same outage in one street, as different callers put it
    ("幸福街道停水", "市民来电反映：幸福街道幸福小区从今天早上开始停水，到现在还没有来水，也没有看到停水通知。"),
    ("反映没水问题", "来电人称，幸福里3栋家里没水了，打自来水公司电话一直占线，老人孩子等着做饭。"),
    ("人民路停水", "人民路附近整片停水，烧水做饭都成问题，请尽快恢复供水。"),
    ("停水", "春晖苑小区突然断水，物业说是市政管道的问题，什么时候能来水？"),
    ("停水多久", "来电咨询：幸福小区停水什么时候恢复，自来水公司没有任何通知。"),
    ("幸福里停水", "幸福里停水大半天了，楼上楼下都没有水，希望尽快来水。"),
    ("停水未恢复", "市民投诉：幸福街道停水到现在还没恢复供水，自来水公司电话打不通。"),
)


@pytest.fixture
def town(world):
    """The sample's departments, categories and districts/streets beside the world's organisation."""
    return st.install()


def naive(clock) -> dt.datetime:
    return clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None)


def noise(town, end: dt.datetime, days: float = 8, per_day: int = 36, seed: int = 7, first: int = 70000000) -> int:
    """Ordinary tickets over the ``days`` before ``end`` (every department's matters, every street)."""
    rng = random.Random(seed)
    rows, step = [], dt.timedelta(days=1) / per_day
    for n in range(int(days * per_day)):
        t = st.draw(rng)
        at = end - dt.timedelta(days=days) + step * n + dt.timedelta(minutes=rng.randint(0, 20))
        rows.append({"number": f"{first + n:08d}", "title": t.title, "content": t.content, "status": "recorded",
                     "category": town["categories"][t.category].id if t.category else None,
                     "region": town["regions"][t.region].id if t.region else None, "created_at": at, "updated_at": at})
    Ticket.insert_many(rows).execute()
    return len(rows)


class Alarms:
    """The duty leader's alarm as ops.alarms takes it."""

    def __init__(self):
        self.raised = []

    def __call__(self, kind, text, *, subject=""):
        from ops.alarms import AlarmService

        self.raised.append((kind, subject, text))
        return AlarmService(notify=None).raise_alarm(kind, text, subject=subject)


@pytest.fixture
def job(clock):
    alarms = Alarms()
    return HotspotJob(HotspotSettings(), alarm=alarms, now=lambda: naive(clock)), alarms


def spike_tickets(town, clock, agent, count, start=0):
    street = town["regions"]["R-DH-XFJD"]
    made = []
    for title, content in SPIKE[start:start + count]:
        clock.advance(minutes=12)
        made.append(services.create_ticket(content, title=title, type="complaint", region=street,
                                           category=town["categories"]["GS"], created_by=agent, clock=clock))
    return made


def test_noise_raises_nothing(town, clock, job):
    """Should index a week of ordinary tickets and find no spike at any time of the next day, while ordinary
    tickets keep coming."""
    job, alarms = job
    noise(town, naive(clock))
    for step in range(12):
        result = job.run()
        assert result.raised == [], [(s.key, s.count, s.baseline) for s in result.spikes]
        clock.advance(hours=2)
        noise(town, naive(clock), days=2 / 24, per_day=36, seed=100 + step, first=71000000 + 100 * step)
    assert HotspotWarning.select().count() == 0 and alarms.raised == []
    assert hotspots.TicketTopic.select().count() > 1000


def test_water_spike_in_one_street_fires_once(town, clock, job, world):
    """Should stay quiet at four 停水 tickets from 幸福街道, warn at the fifth (the street, not also its
    district), and not again for the sixth and seventh nor after the warning is handled."""
    job, alarms = job
    noise(town, naive(clock))
    assert job.run().raised == []
    spike_tickets(town, clock, world.agent, 4)
    assert job.run().raised == []
    spike_tickets(town, clock, world.agent, 1, start=4)
    raised = job.run().raised
    assert [(w.topic, w.place_name, w.level, w.count) for w in raised] == [("停水", "幸福街道", "street", 5)]
    assert len(alarms.raised) == 1 and alarms.raised[0][0] == "hotspot" and "停水" in alarms.raised[0][2]
    assert SystemAlarm.select().where(SystemAlarm.kind == "hotspot").count() == 1
    spike_tickets(town, clock, world.agent, 2, start=5)
    assert job.run().raised == []
    hotspots.mark_handled(raised[0].id, world.centre_user, "已联系水务集团抢修", naive(clock))
    clock.advance(minutes=10)
    assert job.run().raised == []
    assert HotspotWarning.select().count() == 1 and len(alarms.raised) == 1


def test_similar_open_tickets_are_offered_for_merging(town, clock, job, world):
    """Should offer the other open 停水 tickets of the same district, not a ticket of another district."""
    job, _alarms = job
    made = spike_tickets(town, clock, world.agent, 3)
    other = services.create_ticket("西山街道枫林小区停水，一直没有来水。", title="停水", region=town["regions"]["R-XS-XSJD"],
                                   created_by=world.agent, clock=clock)
    job.run()
    similar = hotspots.similar_open_tickets(made[0])
    ids = [t.id for t, _score in similar]
    assert made[1].id in ids or made[2].id in ids
    assert other.id not in ids and made[0].id not in ids


@pytest.fixture
def warned(town, clock, job, world):
    job, _alarms = job
    noise(town, naive(clock))
    tickets = spike_tickets(town, clock, world.agent, 6)
    job.run()
    return HotspotWarning.get(), tickets


def test_page_lists_the_warning_rising_topics_and_cloud(warned, login, world):
    """Should show the open warning, 停水 among the rising topics and in the cloud, and drill down."""
    warning, tickets = warned
    client = login(world.leader)
    html = client.get("/stats/hotspots").get_data(as_text=True)
    assert f'data-testid="warning-{warning.id}"' in html and "幸福街道" in html
    assert 'data-testid="rising-停水"' in html and 'data-testid="word-cloud"' in html
    drill = client.get(f"/stats/hotspots/tickets?warning={warning.id}").get_data(as_text=True)
    for t in tickets:
        assert t.number in drill
    topic = client.get("/stats/hotspots/tickets?topic=停水&period=week").get_data(as_text=True)
    assert all(t.number in topic for t in tickets)
    street = Region.get(Region.code == "R-DH-XFJD")
    filtered = client.get(f"/stats/hotspots?region={street.id}").get_data(as_text=True)
    assert 'data-testid="rising-停水"' in filtered
    assert AuditLog.select().where(AuditLog.action == "stats_view").count() == 4


def test_centre_marks_the_warning_handled(warned, login, world):
    """Should mark it handled with the note, clear its alarm and audit it."""
    warning, _tickets = warned
    client = login(world.centre_user)
    response = client.post_form(f"/stats/hotspots/warnings/{warning.id}/handle", data={"note": "已通知水务集团"})
    assert response.status_code == 303
    warning = HotspotWarning.get_by_id(warning.id)
    assert warning.handled_at is not None and warning.handled_note == "已通知水务集团"
    assert AuditLog.select().where(AuditLog.action == "hotspot_handled").count() == 1
    html = client.get("/stats/hotspots").get_data(as_text=True)
    assert 'data-testid="no-warnings"' in html and 'data-testid="hotspot-handled"' in html
    assert client.post_form("/stats/hotspots/warnings/99999/handle").status_code == 404
    assert client.post_form(f"/stats/hotspots/warnings/{warning.id}/handle",
                            data={"note": "长" * 300}).status_code == 400


def test_scope_and_refusals(warned, login, world):
    """Should refuse an agent (403, audited) and a department user's handling; a district leader sees the
    warning only once one of its tickets is theirs."""
    from caseflow.accounts import hash_password
    from caseflow.models import User

    from .conftest import PASSWORD

    warning, tickets = warned
    assert login(world.agent).get("/stats/hotspots").status_code == 403
    assert AuditLog.select().where(AuditLog.action == "stats_denied").count() == 1
    leader = User.create(operator_no="7002", name="郑区长", password_hash=hash_password(PASSWORD),
                         roles="dept_leader,dept", department=world.east)
    client = login(leader)
    assert 'data-testid="no-warnings"' in client.get("/stats/hotspots").get_data(as_text=True)
    assert client.get(f"/stats/hotspots/tickets?warning={warning.id}").status_code == 403
    services.dispatch(tickets[0], world.centre_user, world.east)
    html = client.get("/stats/hotspots").get_data(as_text=True)
    assert f'data-testid="warning-{warning.id}"' in html
    drill = client.get(f"/stats/hotspots/tickets?warning={warning.id}").get_data(as_text=True)
    assert tickets[0].number in drill and tickets[1].number not in drill
    assert client.post_form(f"/stats/hotspots/warnings/{warning.id}/handle").status_code == 403
    assert client.get("/stats/suggestions").status_code == 403


@pytest.mark.parametrize("query", ["period=custom&from=2016-01-01&to=2025-12-31", "region=abc", "category=99999",
                                   "region=99999"])
def test_bad_filters_are_refused(warned, login, world, query):
    """Should answer 400 with a message to a malformed filter or a 10-year period."""
    response = login(world.leader).get(f"/stats/hotspots?{query}")
    assert response.status_code == 400


def test_topic_is_required_for_the_drill_down(warned, login, world):
    """Should refuse a drill-down without a topic or warning."""
    assert login(world.leader).get("/stats/hotspots/tickets").status_code == 400


def test_ticket_page_offers_similar_tickets_for_merging(town, clock, job, world, login):
    """Should list the other open 停水 tickets of the street under the merge form, as the master's choices."""
    job, _alarms = job
    made = spike_tickets(town, clock, world.agent, 3)
    job.run()
    html = login(world.centre_user).get(f"/tickets/{made[0].number}").get_data(as_text=True)
    block = html.split('data-testid="similar-tickets"')[1].split("</div>")[0]
    assert made[1].number in block or made[2].number in block
    assert made[0].number not in block
