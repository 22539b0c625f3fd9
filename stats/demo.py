"""DEMO DATA ONLY: a few weeks of history for the statistics page under `make run` (run.py calls it right
after the demo organisation is loaded, never on a database that had data before).

Tickets of the last two months and of the same weeks a year ago, taken through the real workflow at past
moments (created, dispatched, replied on time or late, reviewed, called back with a rating, closed), and
queue calls (acd.models.QueueEntry rows whose call_uuid starts with ``demo-history-``) for those days, so
volumes, 15-second answer rate, overdue and satisfaction rates, 环比 and 同比 all show numbers. Nothing is
created for today: today's figures are the live ones.
"""
from __future__ import annotations

import datetime as dt
import logging
import random

from caseflow import services
from caseflow.models import Category, Department, User
from caseflow.workflow import WorkflowError
from core.clock import Clock, FixedClock

log = logging.getLogger(__name__)

DEMO_CALL_PREFIX = "demo-history-"
RECENT_DAYS = 62  # this month and the whole of last month, this week and last week
SEED = 12345

# (channel, weight): most tickets come by phone.
CHANNEL_WEIGHTS = [("phone", 60), ("web", 14), ("sms", 9), ("email", 6), ("mailbox", 5), ("fax", 2), ("letter", 4)]
# (type, category code, department code, content) samples; departments with a demo handler (caseflow.demo).
SAMPLES = [
    ("complaint", "ZYRM", "DH", "小区附近工地夜间施工噪音扰民。"),
    ("complaint", "ZDJY", "DH", "路口流动摊贩占道经营，影响通行。"),
    ("complaint", "WYGL", "XS", "物业公司不维修漏水的楼顶。"),
    ("complaint", "CSGL", "CGJ", "人行道井盖缺失，存在安全隐患。"),
    ("report", "DQWR", "HBJ", "餐馆油烟直排，气味很大。"),
    ("help", "CSGL", "CGJ", "小区门口路灯不亮，请求维修。"),
    ("suggestion", "CSGL", "XS", "建议在公园增设公共厕所。"),
    ("consult", "SBZX", "", "咨询医保异地就医备案如何办理。"),
    ("consult", "GJFW", "", "咨询公交线路调整后的首末班时间。"),
    ("praise", "CSGL", "", "表扬环卫工人及时清理积水。"),
]
HANDLERS = {"DH": "7001", "XS": "7301", "CGJ": "7201", "HBJ": "7401"}
SATISFACTION_WEIGHTS = [("satisfied", 80), ("basic", 12), ("unsatisfied", 8)]


def load_demo_history(clock: Clock, days: int = RECENT_DAYS) -> dict[str, int]:
    """Create the demo history (see the module docstring); returns how many tickets and calls were made.
    Does nothing when the demo users are missing or demo history exists already."""
    from acd.models import QueueEntry

    users = {u.operator_no: u for u in User.select().where(User.operator_no.in_(
        ["1001", "6001", "9001", "9002", *HANDLERS.values()]))}
    if len(users) < 4 + len(HANDLERS) or QueueEntry.select().where(
            QueueEntry.call_uuid.startswith(DEMO_CALL_PREFIX)).exists():
        log.info("demo history not loaded: demo users missing or history present")
        return {"tickets": 0, "calls": 0}
    rng = random.Random(SEED)
    today = clock.now().date()
    recent = [today - dt.timedelta(days=n) for n in range(days, 0, -1)]
    year_ago = [day.replace(year=day.year - 1) if not (day.month == 2 and day.day == 29)
                else day.replace(year=day.year - 1, day=28) for day in recent]
    made = {"tickets": 0, "calls": 0}
    db = User._meta.database
    for batch, scale in ((year_ago, 0.8), (recent, 1.0)):
        with db.atomic():
            for day in batch:
                busy = 1.0 if day.weekday() < 5 else 0.55
                made["calls"] += _calls(day, clock, rng, int(rng.randint(36, 56) * busy * scale))
                for _ in range(max(1, int(rng.randint(3, 6) * busy * scale))):
                    if _ticket(day, clock, rng, users):
                        made["tickets"] += 1
    log.info("demo history: %(tickets)s tickets and %(calls)s queue calls over past weeks", made)
    return made


def _moment(day: dt.date, clock: Clock, rng: random.Random) -> dt.datetime:
    """A local working-hours moment of ``day`` (aware)."""
    return dt.datetime.combine(day, dt.time(rng.randint(8, 20), rng.randint(0, 59), rng.randint(0, 59)),
                               tzinfo=clock.tz)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _calls(day: dt.date, clock: Clock, rng: random.Random, count: int) -> int:
    """``count`` finished queue calls on ``day``: mostly answered quickly, some late, some abandoned."""
    from acd.models import Agent, Queue, QueueEntry

    queues = {q.name: q for q in Queue.select()}
    if not queues:
        return 0
    agents = list(Agent.select())
    rows = []
    for n in range(count):
        entered = _moment(day, clock, rng)
        uuid = f"{DEMO_CALL_PREFIX}{day:%Y%m%d}-{n:04d}"
        queue = queues.get(rng.choice(list(queues)))
        roll = rng.random()
        base = {"call_uuid": uuid, "queue": queue, "caller_number": f"1390000{rng.randint(0, 9999):04d}",
                "entered_at": _utc(entered)}
        if roll < 0.08:  # the caller hung up while waiting
            wait = rng.uniform(8, 90)
            rows.append({**base, "state": "abandoned", "wait_seconds": round(wait, 1), "end_reason": "caller hung up",
                         "ended_at": _utc(entered + dt.timedelta(seconds=wait))})
            continue
        if roll < 0.10:  # left a call-back request
            wait = rng.uniform(30, 120)
            rows.append({**base, "state": "callback_requested", "wait_seconds": round(wait, 1),
                         "end_reason": "call-back key", "ended_at": _utc(entered + dt.timedelta(seconds=wait))})
            continue
        wait = rng.uniform(2, 14) if roll < 0.86 else rng.uniform(16, 75)
        talk = rng.uniform(60, 420)
        answered = entered + dt.timedelta(seconds=wait)
        rows.append({**base, "state": "bridged", "wait_seconds": round(wait, 1), "talk_seconds": round(talk, 1),
                     "agent": rng.choice(agents) if agents else None, "answered_at": _utc(answered),
                     "ended_at": _utc(answered + dt.timedelta(seconds=talk)), "end_reason": "hangup"})
    QueueEntry.insert_many(rows).execute()
    return len(rows)


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def _ticket(day: dt.date, clock: Clock, rng: random.Random, users: dict[str, User]) -> bool:
    """One ticket created on ``day`` and taken as far through the workflow as the time since allows."""
    now = clock.now()
    kind, category_code, dept_code, content = rng.choice(SAMPLES)
    channel = _pick(rng, CHANNEL_WEIGHTS)
    at = _moment(day, clock, rng)
    category = Category.get_or_none(Category.code == category_code)
    creator = users["1001"] if channel == "phone" else users["6001"]
    phone = f"1380000{rng.randint(0, 9999):04d}"

    def clk(moment: dt.datetime) -> FixedClock:
        return FixedClock(moment, tz=str(clock.tz))

    try:
        t = services.create_ticket(content, type=kind, channel=channel, category=category, citizen_phone=phone,
                                   citizen_name="演示市民", created_by=creator, clock=clk(at))
        centre, leader = users["9001"], users["9002"]
        if not dept_code:  # answered on the spot by the agent, rated at the call-back
            at += dt.timedelta(minutes=rng.randint(3, 20))
            t = services.transition(t, "answer", users["1001"], reply="已当场答复。", clock=clk(at))
        else:
            department = Department.get(Department.code == dept_code)
            handler = users[HANDLERS[dept_code]]
            at += dt.timedelta(hours=rng.uniform(0.3, 3))
            if at >= now:
                return True
            t = services.dispatch(t, centre, department, clock=clk(at))
            at += dt.timedelta(hours=rng.uniform(1, 20))
            if at >= now:
                return True
            t = services.transition(t, "accept", handler, clock=clk(at))
            deadline = clock.local(t.deadline)
            # Most departments reply in time; some late, so the overdue figures are not empty.
            at = (at + (deadline - at) * rng.uniform(0.2, 0.9) if deadline > at and rng.random() < 0.85
                  else max(at, deadline) + dt.timedelta(hours=rng.uniform(4, 96)))
            if at >= now:
                return True
            t = services.transition(t, "reply", handler, reply="已现场核查并处理完毕。", clock=clk(at))
            at += dt.timedelta(hours=rng.uniform(1, 20))
            if at >= now:
                return True
            t = services.transition(t, "approve", centre, clock=clk(at))
        at += dt.timedelta(hours=rng.uniform(4, 30))
        if at >= now:
            return True
        satisfaction = _pick(rng, SATISFACTION_WEIGHTS)
        t = services.call_back(t, centre, satisfaction, clock=clk(at))
        if satisfaction != "unsatisfied":
            at += dt.timedelta(hours=rng.uniform(0.5, 6))
            if at < now:
                services.transition(t, "close", leader, clock=clk(at))
    except WorkflowError as error:  # a demo step the rules refuse: keep what was made, say why
        log.info("demo history ticket stopped early: %s", error)
    return True
