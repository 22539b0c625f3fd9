"""Benchmark of the analysis (issue 14): report pages at scale, hotspot keywords and detection, and the
dispatch suggestion model, on SQLite and PostgreSQL. Prints tables beside the aims; asserts nothing.

    .venv/bin/python -m bench.analysis                       # 1,000,000 tickets, 10,000,000 call records
    .venv/bin/python -m bench.analysis --tickets 100000 --calls 1000000 --backend sqlite --runs 10
    .venv/bin/python -m bench.analysis --backend postgres --keep        # then --reuse <the schema printed>
    .venv/bin/python -m bench.analysis --backend sqlite --keep --generate-only   # then --reuse <the file printed>
    .venv/bin/python -m bench.analysis --backend sqlite --reuse FILE --reports-only --check-kept Asia/Kolkata

Figures and what they led to: docs/performance.md.

History: tickets over the 400 days before now drawn from stats.sample_tickets (18 departments, realistic
wording), with dispatch/accept/reply history rows and statuses; call records spread over the same days, written
in bulk, then their quarter-hour counts rebuilt as after an import (recorder.aggregates; the time is printed).
Reports: each /stats/r/<report> page (and /stats/hotspots) fetched through the real app as the centre
leader for the last full month and for the last 365 days, ``--runs`` times: p50 and p99 against the aims
(month < 1 s, year < 5 s). Hotspots: keyword extraction rate (tickets/s over titles and contents), the
index of the rule's horizon, one scan, and detection (index the new tickets and scan) after a 停水 spike.
Suggestions: held-out top-1/top-3 on the 360-ticket labelled sample and training time, then training on
the generated history (up to stats.suggestions.MAX_SAMPLES tickets).
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

from bench.common import DEFAULT_PG, bulk_insert, open_backend, pct

REPORTS = ("calls", "agents", "region", "category", "status", "urgency", "speed", "departments")
MONTH_AIM, YEAR_AIM = 1.0, 5.0
DAYS = 400
STATUSES = (("closed", 62), ("archived", 8), ("dispatched", 8), ("in_progress", 8), ("replied", 4),
            ("recorded", 4), ("answered", 6))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


# Call records are made by the database itself (10 million rows through Python took most of an hour), in the
# order of their start as in service: row n starts at n/total of the span plus up to 5 minutes; each other
# figure is a multiplicative hash of the row number, the same on both databases and in every run.
CALL_SELECT = """
SELECT {uuid}, '[]', {caller}, '12345', CASE WHEN s.h % 100 < 85 THEN 'inbound' ELSE 'outbound' END, '',
       {at}, '[]', '', '[]', {answered}, {ended}, s.h % 41, 30 + s.h % 571, 0, '', '', 'answered', a.id, a.no,
       {true}, ''
FROM (SELECT n, (n * 2654435761) % 4294967291 AS h,
             n * {spread} / {total} + (n * 2246822519) % 4294967291 % 300 AS e,
             (n * 3266489917) % 4294967291 % 40 AS k FROM {series}) AS s
JOIN bench_agent AS a ON a.k = s.k"""
CALL_COLUMNS = ("call_uuid, other_uuids, caller, called, direction, server, started_at, ivr_path, queue, "
                "agents_offered, answered_at, ended_at, wait_seconds, talk_seconds, hold_seconds, hangup_cause, "
                "hangup_side, disposition, agent_id, agent_no, finalised, mac")
CALL_BLOCK = 500_000


def insert_calls(first: int, last: int, total: int, since: dt.datetime, span_seconds: int) -> None:
    """Call records number ``first`` to ``last`` (inclusive) of ``total`` started over ``span_seconds`` from
    ``since``, answered by the agents of the bench_agent table (k, id, no), written by one INSERT ... SELECT."""
    from core.db import database, is_postgres

    if is_postgres():
        at = "%s::timestamp + s.e * interval '1 second'"
        sql = CALL_SELECT.format(
            uuid="'bench-' || lpad(n::text, 9, '0')", caller="'138' || lpad((n % 100000000)::text, 8, '0')",
            at=at % "%(since)s", answered=f"({at % '%(since)s'}) + interval '12 seconds'",
            ended=f"({at % '%(since)s'}) + interval '200 seconds'", true="true", spread=span_seconds - 300,
            total=max(total, 1),
            series="generate_series(%(first)s::bigint, %(last)s) AS g(n)")
        sql = sql.replace(" % ", " %% ")  # the modulo, not a parameter
        database.execute_sql(f"INSERT INTO call_record ({CALL_COLUMNS}) {sql}",
                             {"since": since, "first": first, "last": last})
        return
    epoch = int(since.replace(tzinfo=dt.timezone.utc).timestamp())
    sql = CALL_SELECT.format(
        uuid="'bench-' || substr('000000000' || n, -9)", caller="'138' || substr('00000000' || (n % 100000000), -8)",
        at=f"datetime({epoch} + s.e, 'unixepoch')", answered=f"datetime({epoch} + s.e + 12, 'unixepoch')",
        ended=f"datetime({epoch} + s.e + 200, 'unixepoch')", true="1", spread=span_seconds - 300,
        total=max(total, 1), series="g")
    database.execute_sql(f"INSERT INTO call_record ({CALL_COLUMNS}) WITH RECURSIVE g(n) AS "
                         f"(SELECT {int(first)} UNION ALL SELECT n + 1 FROM g WHERE n < {int(last)}) {sql}")


def generate(tickets: int, calls: int, now: dt.datetime, seed: int = 1414, say=print) -> dict:
    """Fill the bound database: the sample organisation, a centre leader, ``tickets`` tickets with history
    and ``calls`` call records over the DAYS before ``now``."""
    from caseflow import daycounts, durations
    from caseflow.accounts import hash_password
    from caseflow.models import Ticket, TicketHistory, User
    from core.db import database, is_postgres
    from recorder import aggregates
    from stats import sample_tickets as st

    if is_postgres():  # writing and counting 10 million rows outlasts the product's 30 s statement limit
        database.execute_sql("SET statement_timeout = 0")
    made = st.install()
    centre = made["departments"]["CENTRE"]
    leader = User.create(operator_no="5001", name="领导", password_hash=hash_password("bench-pass-1"),
                         roles="leader,centre_leader,centre", department=centre)
    agents = [User.create(operator_no=f"{1000 + n}", name=f"话务员{n}", password_hash="x", roles="agent",
                          department=centre) for n in range(40)]
    rng = random.Random(seed)
    statuses = [s for s, w in STATUSES for _ in range(w)]
    span = dt.timedelta(days=DAYS)
    started = time.perf_counter()
    number = 10000000
    ticket_names = ("number", "type", "channel", "status", "urgency", "title", "content", "category", "region",
                    "department", "created_at", "updated_at", "dispatched_at", "deadline", "replied_at",
                    "closed_at", "overdue", "satisfaction")
    history_names = ("ticket", "action", "department", "at", "from_status", "to_status")
    for block in range(0, tickets, 20000):
        ticket_rows, meta = [], []
        for n in range(block, min(tickets, block + 20000)):
            t = st.draw(rng)
            # Ids rise with time as in service (the hotspot index starts from the id of its horizon).
            at = now - span + span * (n / tickets) + dt.timedelta(seconds=rng.randrange(60))
            status = rng.choice(statuses)
            dept = made["departments"][t.department].id if status not in ("recorded", "answered") else None
            dispatched = at + dt.timedelta(minutes=rng.randint(5, 600)) if dept else None
            replied = dispatched + dt.timedelta(hours=rng.randint(2, 200)) if dept and status in (
                "closed", "archived", "replied") else None
            closed = replied + dt.timedelta(hours=rng.randint(1, 48)) if replied and status != "replied" else None
            number += 1
            ticket_rows.append((
                f"{number:08d}", rng.choice(("complaint", "help", "consult", "report", "suggestion")),
                rng.choice(("phone", "phone", "phone", "web", "sms", "mailbox")), status,
                rng.choice(("normal",) * 8 + ("urgent", "emergency")), t.title, t.content,
                made["categories"][t.category].id if t.category else None,
                made["regions"][t.region].id if t.region else None, dept, at, at, dispatched,
                dispatched + dt.timedelta(days=5) if dispatched else None, replied, closed,
                bool(replied and dispatched and replied - dispatched > dt.timedelta(days=5)),
                rng.choice(("satisfied", "satisfied", "basic", "unsatisfied")) if closed else ""))
            meta.append((dept, dispatched, replied))
        with database.atomic():
            bulk_insert(Ticket, ticket_names, ticket_rows)
            ids = dict(Ticket.select(Ticket.number, Ticket.id).where(
                Ticket.number.between(ticket_rows[0][0], ticket_rows[-1][0])).tuples())
            history = []
            for row, (dept, dispatched, replied) in zip(ticket_rows, meta):
                if not dept:
                    continue
                tid = ids[row[0]]
                history.append((tid, "dispatch", dept, dispatched, "recorded", "dispatched"))
                history.append((tid, "accept", dept, dispatched + dt.timedelta(hours=1), "dispatched", "in_progress"))
                if replied:
                    history.append((tid, "reply", dept, replied, "in_progress", "replied"))
            bulk_insert(TicketHistory, history_names, history)
        if (block // 20000) % 10 == 0 or block + 20000 >= tickets:
            say(f"  tickets {block + len(ticket_rows):,} / {tickets:,} ({time.perf_counter() - started:.0f} s)")
    started = time.perf_counter()
    kept = durations.rebuild()  # written around the workflow: the kept figures are rebuilt as after an import
    say(f"  handling durations kept: {kept:,} rows ({time.perf_counter() - started:.0f} s)")
    started = time.perf_counter()
    kept = daycounts.rebuild()
    say(f"  tickets per day and value kept: {kept:,} rows ({time.perf_counter() - started:.0f} s)")
    started = time.perf_counter()
    with database.atomic():
        database.execute_sql("CREATE TEMPORARY TABLE bench_agent (k INTEGER, id INTEGER, no VARCHAR(16))")
        for k, agent in enumerate(agents):
            database.execute_sql("INSERT INTO bench_agent VALUES (%d, %d, '%s')" % (k, agent.id, agent.operator_no))
    since, seconds = now - span, int(span.total_seconds())
    for block in range(0, calls, CALL_BLOCK):
        with database.atomic():
            insert_calls(block, min(calls, block + CALL_BLOCK) - 1, calls, since, seconds)
        say(f"  calls {min(calls, block + CALL_BLOCK):,} / {calls:,} ({time.perf_counter() - started:.0f} s)")
    database.execute_sql("DROP TABLE bench_agent")
    # The records were written in bulk, not finalised one by one through the recorder: their counts per
    # quarter-hour are built as after an import (python -m recorder.aggregates rebuild).
    started = time.perf_counter()
    slots, agent_slots = aggregates.rebuild()
    rebuilt = time.perf_counter() - started
    say(f"  call counts rebuilt: {slots:,} quarter-hours x direction, {agent_slots:,} x agent ({rebuilt:.0f} s)")
    database.execute_sql("ANALYZE")  # the planner sees the generated volume, as it would in service
    return {"made": made, "leader": leader, "rebuilt": rebuilt}


def time_pages(client, paths, runs: int) -> dict[str, list[float]]:
    """Fetch each path ``runs`` times; seconds per fetch (a page that fails is reported as such)."""
    times = {}
    for path in paths:
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get(path)
            samples.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: HTTP {response.status_code}")
        times[path] = samples
    return times


def report_figures(db_url: str, var_dir: Path, now: dt.datetime, runs: int, say=print) -> list[tuple]:
    """p50/p99 of every report page for the last full month and the last 365 days."""
    from core.config import load_config
    from webui.app import create_app

    config = load_config({"database_url": db_url, "var_dir": str(var_dir), "mode": "test",
                          "secret_key": "bench-secret-key-" + "a" * 32, "load_demo": False})
    app = create_app(config)
    app.testing = True
    client = app.test_client()
    client.get("/login")
    with client.session_transaction() as session:
        token = session["csrf"]
    response = client.post("/login", data={"operator_no": "5001", "password": "bench-pass-1", "csrf_token": token})
    if response.status_code not in (302, 303):
        raise RuntimeError(f"the benchmark's leader could not log in (HTTP {response.status_code})")
    today = now.date()
    month_last = today.replace(day=1) - dt.timedelta(days=1)
    month = (month_last.replace(day=1), month_last)
    year = (today - dt.timedelta(days=365), today - dt.timedelta(days=1))
    rows = []
    for label, (first, last), aim in (("month", month, MONTH_AIM), ("year", year, YEAR_AIM)):
        query = f"period=custom&from={first}&to={last}"
        paths = [f"/stats/r/{r}?{query}" for r in REPORTS] + [f"/stats/hotspots?{query}"]
        for path, samples in time_pages(client, paths, runs).items():
            name = path.split("?")[0].rsplit("/", 1)[-1]
            rows.append((name, label, pct(samples, 50), pct(samples, 99), aim))
            say(f"  {name:12s} {label:5s} p99 {pct(samples, 99):.3f} s")
    return rows


def hotspot_figures(now: dt.datetime, say=print) -> list[tuple]:
    """Keyword extraction rate, the horizon's index, one scan, and detection after a spike."""
    from caseflow import services
    from caseflow.models import Region, Ticket
    from stats import hotspots
    from stats.keywords import place_words, tokenizer, topics

    tokenizer()  # the dictionary and IDF loads are once per process, not per ticket
    topics("停水", "预热")
    settings = hotspots.HotspotSettings()
    names = [n for (n,) in Region.select(Region.name).tuples()]
    places = place_words(names)
    texts = list(Ticket.select(Ticket.title, Ticket.content).order_by(Ticket.id.desc()).limit(20000).tuples())
    started = time.perf_counter()
    chars = 0
    for title, content in texts:
        topics(title, content, places=places)
        chars += len(title) + len(content)
    rate_seconds = time.perf_counter() - started
    rows = [("keyword extraction", f"{len(texts):,} tickets", rate_seconds,
             f"{len(texts) / rate_seconds:,.0f} tickets/s, {chars / rate_seconds / 1000:,.0f}k chars/s")]
    horizon = Ticket.select().where(Ticket.created_at >= now - settings.horizon).count()
    started = time.perf_counter()
    indexed = hotspots.index_all(now, settings)
    rows.append(("index the rule's horizon", f"{indexed:,} tickets ({horizon:,} in {settings.horizon.days + 1} days)",
                 time.perf_counter() - started, ""))
    scans = []
    for _ in range(5):
        started = time.perf_counter()
        result = hotspots.scan(now, settings)
        scans.append(time.perf_counter() - started)
    rows.append(("scan (all streets and districts)", f"{len(result.spikes)} spikes", pct(scans, 99), "p99 of 5"))
    street = Region.get(Region.code == "R-DH-XFJD")
    for n in range(settings.min_count):
        services.create_ticket(f"幸福小区第{n + 1}栋从早上开始停水，一直没有来水。", title="停水", region=street)
    started = time.perf_counter()
    hotspots.index_all(utcnow(), settings)
    result = hotspots.scan(utcnow(), settings)
    found = [w for w in result.raised if w.topic == "停水"]
    rows.append(("detection after a 停水 spike", "found" if found else "NOT FOUND", time.perf_counter() - started,
                 "index the new tickets + scan"))
    return rows


def suggestion_figures(var_dir: Path, now: dt.datetime, say=print) -> list[tuple]:
    """Accuracy and time on the labelled sample; time on the generated history."""
    from stats import sample_tickets as st
    from stats import suggestions
    from stats.suggestions import Example, Places

    made = st.install()
    sample = st.sample(360, seed=14)
    examples = [Example(t.title, t.content, made["categories"][t.category].id if t.category else None,
                        made["regions"][t.region].id if t.region else None, made["departments"][t.department].id)
                for t in sample]
    started = time.perf_counter()
    outcome = suggestions.fit(examples, Places.load())
    rows = [("labelled sample", f"{len(examples)} tickets, {outcome.departments} departments",
             time.perf_counter() - started, outcome.trained.top1, outcome.trained.top3)]
    started = time.perf_counter()
    run = suggestions.train_and_store(suggestions.model_path(var_dir), now)
    rows.append(("generated history", f"{run.samples:,} tickets, {run.departments} departments",
                 time.perf_counter() - started, run.top1, run.top3))
    return rows


def check_kept(now: dt.datetime, zone: str, say=print) -> list[tuple]:
    """Every kept figure the reports read (stats.report_queries) against the same figure counted from the
    tickets, for the last full month and the last 365 days as local days in ``zone``: (figure, period, equal)."""
    from zoneinfo import ZoneInfo

    from peewee import fn

    from caseflow.models import Ticket
    from stats import report_queries as rq
    from stats.breakdowns import Filters
    from stats.periods import Period
    from stats.queries import Scope, department_directory

    tz, today, rows = ZoneInfo(zone), now.date(), []
    month_last = today.replace(day=1) - dt.timedelta(days=1)
    paths, _names = department_directory()
    for label, period in (("month", Period("custom", month_last.replace(day=1), month_last)),
                          ("year", Period("custom", today - dt.timedelta(days=365), today - dt.timedelta(days=1)))):
        start, end = period.bounds(tz)
        checks = {d: (lambda d=d, **kw: rq.tickets_by(d, Scope(), Filters(), start, end, **kw))
                  for d in ("region", "category", "status", "urgency")}
        checks["departments"] = lambda **kw: rq.department_counts(Scope(), Filters(), start, end, now, paths, 2, **kw)
        checks["speed"] = lambda **kw: rq.speed_table(Scope(), Filters(), start, end, 2, **kw)
        for what, figures in checks.items():
            rows.append((what, label, figures() == figures(direct=True)))
            say(f"  kept {what:12s} {label:5s} {'equal' if rows[-1][2] else 'DIFFERENT'}")
        recorded = {user: f.tickets for user, f in rq.agent_figures(start, end)[0].items() if f.tickets}
        rows.append(("agents (tickets)", label, recorded == dict(
            Ticket.select(Ticket.created_by, fn.COUNT(Ticket.id))
            .where((Ticket.created_at >= start) & (Ticket.created_at < end), Ticket.created_by.is_null(False))
            .group_by(Ticket.created_by).tuples())))
    return rows


def run_backend(name: str, args, say=print) -> dict:
    from core.db import database

    with tempfile.TemporaryDirectory(prefix="bench-analysis-") as folder:
        folder = Path(folder)
        if args.reuse:
            url = _pg_url(args.pg, args.reuse) if name == "postgres" else f"sqlite:///{Path(args.reuse).resolve()}"
            from core import db as core_db
            from hotline.schema import create_schema

            core_db.bind_database(url).connect(reuse_if_open=True)
            if name == "postgres":
                database.execute_sql("SET statement_timeout = 0")
            cleanup = lambda: None  # noqa: E731 - a history reused is kept
            say(f"[{name}] reusing the history in {args.reuse}")
            started = time.perf_counter()
            steps = create_schema()  # a step added since the history was made (and its backfill) runs here
            if steps:
                database.execute_sql("ANALYZE")
                say(f"[{name}] migrated: {', '.join(steps)} ({time.perf_counter() - started:.0f} s)")
            from stats.models import HotspotWarning, IndexMark, TicketTopic

            for model in (HotspotWarning, TicketTopic, IndexMark):  # what an earlier run indexed and raised
                model.delete().execute()
        else:
            keep_at = Path(args.sqlite_dir).resolve() if args.keep and name == "sqlite" else folder
            keep_at.mkdir(parents=True, exist_ok=True)
            _database, cleanup = open_backend(name, keep_at, args.pg, "analysis")
            url = f"sqlite:///{keep_at / 'bench.sqlite3'}" if name == "sqlite" else _pg_url(args.pg)
        if args.keep and name == "postgres":
            cleanup = lambda: say(f"[{name}] kept: --reuse {url.rsplit('%3D', 1)[-1]}")  # noqa: E731
        elif args.keep:
            cleanup = lambda: say(f"[{name}] kept: --reuse {url[len('sqlite:///'):]}")  # noqa: E731
        try:
            now = utcnow()
            generated = rebuilt = float("nan")
            if not args.reuse:
                say(f"[{name}] generating {args.tickets:,} tickets and {args.calls:,} call records ...")
                started = time.perf_counter()
                rebuilt = generate(args.tickets, args.calls, now, say=say)["rebuilt"]
                generated = time.perf_counter() - started
            if args.generate_only:
                return {"generated": generated, "rebuilt": rebuilt, "reports": [], "hotspots": [], "model": []}
            say(f"[{name}] reports ...")
            reports = report_figures(url, folder / "var", now, args.runs, say=say)
            checked = []
            if args.check_kept:
                from core import db as core_db

                core_db.bind_database(url).connect(reuse_if_open=True)
                if name == "postgres":  # the direct queries of a year outlast a call's statement limit
                    database.execute_sql("SET statement_timeout = 0")
                say(f"[{name}] kept figures against the tickets ({args.check_kept}) ...")
                checked = check_kept(now, args.check_kept, say=say)
            if args.reports_only:
                return {"generated": generated, "rebuilt": rebuilt, "reports": reports, "hotspots": [], "model": [],
                        "checked": checked}
            from core import db as core_db

            core_db.bind_database(url).connect(reuse_if_open=True)
            if name == "postgres":  # the first ticket made builds the full-text index over every ticket
                database.execute_sql("SET statement_timeout = 0")
            say(f"[{name}] hotspots ...")
            spots = hotspot_figures(now, say=say)
            say(f"[{name}] dispatch suggestions ...")
            model = suggestion_figures(folder / "var", now, say=say)
            return {"generated": generated, "rebuilt": rebuilt, "reports": reports, "hotspots": spots, "model": model,
                    "checked": checked}
        finally:
            if not database.is_closed():
                database.close()
            cleanup()


def _pg_url(pg: str, schema: str = "") -> str:
    """The URL of ``schema``, by default the one bench.common.open_backend made for this process (label
    "analysis")."""
    import os

    from core.db import in_schema

    return in_schema(pg, schema or f"bench_analysis_{os.getpid()}")


def print_tables(name: str, figures: dict, args, out=sys.stdout) -> None:
    w = out.write
    if args.reuse:
        w(f"\n== {name}: the history of schema {args.reuse} ==\n")
    else:
        w(f"\n== {name}: {args.tickets:,} tickets, {args.calls:,} call records (generated in "
          f"{figures['generated']:.0f} s; the call counts rebuilt from them in {figures['rebuilt']:.0f} s) ==\n")
    w(f"{'report':14s}{'period':8s}{'p50 s':>10s}{'p99 s':>10s}{'aim s':>8s}  within\n")
    for report, period, p50, p99, aim in figures["reports"]:
        w(f"{report:14s}{period:8s}{p50:10.3f}{p99:10.3f}{aim:8.1f}  {'yes' if p99 < aim else 'NO'}\n")
    if figures.get("checked"):
        w(f"\n{'kept figure':18s}{'period':8s}as counted from the tickets\n")
        for what, period, equal in figures["checked"]:
            w(f"{what:18s}{period:8s}{'equal' if equal else 'DIFFERENT'}\n")
    w(f"\n{'hotspots':34s}{'over':44s}{'seconds':>9s}  note\n")
    for what, over, seconds, note in figures["hotspots"]:
        w(f"{what:34s}{over:44s}{seconds:9.3f}  {note}\n")
    w(f"\n{'dispatch suggestions':22s}{'trained on':34s}{'seconds':>9s}{'top-1':>8s}{'top-3':>8s}\n")
    for what, over, seconds, top1, top3 in figures["model"]:
        show = lambda v: "—" if v is None else f"{100 * v:.1f}%"  # noqa: E731
        w(f"{what:22s}{over:34s}{seconds:9.2f}{show(top1):>8s}{show(top3):>8s}\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analysis", description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=20, help="fetches of each report page (p99 over them)")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL URL (a schema of its own is used)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the generated history (PostgreSQL: its schema; SQLite: --sqlite-dir) for --reuse")
    parser.add_argument("--reuse", metavar="SCHEMA_OR_FILE", default="",
                        help="measure the history a --keep run left (PostgreSQL: the schema; SQLite: the file)")
    parser.add_argument("--sqlite-dir", default="var/bench-analysis",
                        help="SQLite with --keep: the folder the history is kept in (bench.sqlite3)")
    parser.add_argument("--generate-only", action="store_true", help="make the history, measure nothing")
    parser.add_argument("--reports-only", action="store_true", help="measure the report pages only")
    parser.add_argument("--check-kept", metavar="ZONE", default="",
                        help="also compare every kept figure with the tickets' own count, local days in ZONE "
                             "(e.g. Asia/Kolkata; slow: the direct queries of a year)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.tickets < 1000 or args.calls < 0 or args.runs < 1:
        parser.error("at least 1,000 tickets, no negative call count, at least one run")
    if (args.reuse or args.keep) and args.backend == "both":
        parser.error("--keep and --reuse go with one --backend")
    if args.reuse and args.backend == "postgres" and not args.reuse.replace("_", "").isalnum():
        parser.error("--reuse: a schema name (letters, digits, underscores)")
    if args.reuse and args.backend == "sqlite" and not Path(args.reuse).is_file():
        parser.error("--reuse: the SQLite file a --keep run left")
    import logging
    import os

    os.environ.setdefault("HOTLINE_ARGON2_PROFILE", "cheapest")
    logging.basicConfig(level=logging.WARNING)
    say = (lambda *_a, **_k: None) if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    results = {}
    for name in backends:
        if name == "postgres":
            try:
                import psycopg2

                psycopg2.connect(args.pg, connect_timeout=3).close()
            except Exception as exc:  # noqa: BLE001 - reported, the other backend still runs
                print(f"PostgreSQL not reachable ({exc}); skipped", file=sys.stderr)
                continue
        results[name] = run_backend(name, args, say=say)
    for name, figures in results.items():
        print_tables(name, figures, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
