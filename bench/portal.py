"""Benchmark: the public website and Open311 at scale, on SQLite and PostgreSQL (issue 11).

``--tickets`` tickets (default 1,000,000) over two years, ``--published`` of them (default 200,000) closed, disclosed
by the centre and consented to by their writers (web cases), plus web cases that are not published, the tickets'
history rows and Open311 requests of one client, are bulk-loaded (batches, progress shown). The product's web app
then serves on a local port through its own HTTP server (webui.server, gevent, monkey-patched as run.py), and
``--clients`` clients (default 50) send requests at once over keep-alive connections, each with its own cookie
session like a browser, ``--requests`` requests per row (default 500). Rows:

- public pages: the home page (latest published cases, last month's figures) and the monthly figures page;
- the published list: first page, with filters (type, category, region, month, page 1-5) and with a search word;
- a published case's page;
- a case lookup: acceptance number + query code posted to /follow (the check, the throttle, the audit row), and
  the case page it opens (status words, timeline, reply);
- a submission: the write-in form posted with the picture code (the picture fetched first, as a browser does; the
  bench knows the answer because the picture alphabet is set to one letter), a new ticket each;
- Open311: services.json, requests.json (the specification's default: the last 90 days, at most 1,000), with a
  service_code and status filter, requests/{id}.json, and POST requests.json with an API key.

Per row: requests per second, and p50/p99 in ms as the clients saw them (waiting behind the other clients
included) and inside the app (from the request reaching the app to its last byte), beside the issue's aim:
p99 under 50 ms for reads and 100 ms for a submission. Each client sends its own address (X-Forwarded-For, the app
trusting one proxy) and each run its own texts and phone numbers (the same text within 10 minutes is refused as a
duplicate, and a kept database holds the earlier runs'); limits that would refuse a client's many submissions
(HOTLINE_PORTAL_*, HOTLINE_OPEN311_*) are raised through the configuration. ``--rows`` picks rows by their exact
names, ``--trace`` prints where each serving process's slowest requests waited (bench/portal_trace.py). Asserts
nothing.

Two modes (``--think-ms 0,1000``): a closed loop (0: each client sends its next call as soon as the last is
answered: the serving processes' saturation throughput, the clients queueing behind each other) and paced (each
client waits a think time, exponential with the given mean, after each call: what 50 visitors at once see).
``--web-workers N`` serves PostgreSQL through N worker processes (bench/portal_load.py; SQLite has one process, as
the product refuses web workers there). ``--keep DIR`` keeps the seeded database and reuses it next time.

Long because: one bench's bulk seeding of four tables at a million rows and its twenty rows over both databases
read as one story; the clients, the in-app timing and the serving workers are bench/portal_load.py already.

    .venv/bin/python bench/portal.py [--tickets 1000000] [--published 200000] [--clients 50] [--requests 500]
                                     [--pg postgresql://postgres@127.0.0.1:5432/test | --pg ""] [--backend sqlite]
                                     [--keep var/bench] [--web-workers 2] [--think-ms 0,1000] [--pg-pool 10]
"""
from __future__ import annotations

from gevent import monkey

monkey.patch_all()  # as run.py: the web server, the clients and PostgreSQL's waits are greenlets

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import DEFAULT_PG, available_backends, pct  # noqa: E402
from bench.portal_load import (NO_FREEZE, RUN, chosen, open_database, run_row, serve_worker,  # noqa: E402
                               start_workers, stop_workers, timed_app)
from bench.portal_trace import ENV, tracer  # noqa: E402

BATCH = 5000
CODE = "BENCHCODE7"  # the query code of every seeded web case (only its salted hash is stored)
PIN = "246810"  # the query PIN of every seeded ticket (only its keyed hash is stored, caseflow.pins)
SECRET_KEY = "p" * 40  # the served app's: the key of that hash
READ_AIM, WRITE_AIM = 50.0, 100.0  # ms, p99 (issue 11)
BY_FILTERS = "  filters "  # the list with filters' timings per combination of filters are named so

PLACES = ["东湖路", "解放路", "建设路", "人民大道", "光明路", "青山路", "幸福小区", "阳光花园", "滨江新城", "龙泉镇",
          "西山街道", "火车站", "中心医院", "实验小学", "农贸市场", "体育馆", "科技园"]
MATTERS = ["夜间施工噪音扰民", "广场舞音响声音过大", "流动摊贩占道经营", "路灯不亮", "井盖缺失", "下水道堵塞",
           "小区电梯长期故障", "物业乱收费", "餐饮油烟污染", "公交车不按站停靠", "违章搭建", "垃圾清运不及时",
           "停水停电未通知", "共享单车乱停放", "道路积水", "树木倒伏", "燃气泄漏隐患"]
REPLIES = ["经核实，已责成施工单位夜间停工。", "已安排维修，现已恢复正常。", "已联系物业整改，并加强巡查。",
           "执法人员已现场处置，将持续跟踪。", "相关部门已答复，详见办理结果。"]
WORDS = ["噪音", "路灯", "井盖", "电梯", "油烟", "违章搭建", "积水", "物业"]
TYPES = ["complaint", "report", "help", "consult", "suggestion", "praise"]


def progress(label: str, done: int, total: int, started: float) -> None:
    rate = done / max(time.perf_counter() - started, 1e-9)
    print(f"\r  {label}: {done:,}/{total:,} ({rate:,.0f}/s)", end="" if done < total else "\n", flush=True)


# ------------------------------------------------------------------------------------------ seed
def bulk(model, rows: list[dict]) -> None:
    """Insert ``rows`` (dicts keyed by field name, all with the same keys) in one statement batch on the
    connection itself: peewee's own insert_many spends ten times longer writing the SQL than the database
    spends running it."""
    from core.db import database, is_postgres

    if not rows:
        return
    # Peewee fills defaults in Python, not in the table: give every other field its default.
    defaults = {f.name: f.default for f in model._meta.sorted_fields
                if f.name not in rows[0] and f.default is not None}
    fields = [model._meta.fields[name] for name in [*rows[0], *defaults]]
    for name, default in defaults.items():
        value = default() if callable(default) else default
        for row in rows:
            row[name] = value
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    table = model._meta.table_name
    if is_postgres():
        from psycopg2.extras import execute_values

        with database.connection().cursor() as cursor:
            execute_values(cursor, f'INSERT INTO "{table}" ({columns}) VALUES %s',
                           [tuple(row[f.name] for f in fields) for row in rows], page_size=1000)
    else:
        def value(v):  # as peewee writes them: datetimes as text, booleans as 0/1
            return str(v) if isinstance(v, dt.datetime) else int(v) if isinstance(v, bool) else v

        database.connection().executemany(
            f'INSERT INTO "{table}" ({columns}) VALUES ({", ".join("?" * len(fields))})',
            [tuple(value(row[f.name]) for f in fields) for row in rows])


def make_org():
    """Centre and six districts (departments), ten top categories with three children, six districts of
    regions with three streets each."""
    from caseflow import org
    from caseflow.models import User

    centre = org.create_department("C", "热线中心", None, "centre")
    depts = [org.create_department(f"D{i}", f"第{i}区", centre, "district") for i in range(6)]
    categories, regions = [], []
    for i in range(10):
        top = org.create_category(f"K{i}", f"{MATTERS[i][:4]}类")
        categories += [top] + [org.create_category(f"K{i}{j}", f"{MATTERS[i]}{j}", top) for j in range(3)]
    for i in range(6):
        district = org.create_region(f"R{i}", f"第{i}区")
        regions += [district] + [org.create_region(f"R{i}{j}", f"第{i}区{j}街道", district) for j in range(3)]
    admin = User.create(operator_no="9000", name="管理员", password_hash="!", roles="admin", department=centre)
    return depts, categories, regions, admin


def seed(n: int, published: int, rng: random.Random, now: dt.datetime, depts, categories, regions, client) -> dict:
    """Bulk-load the tickets, web cases, history rows and Open311 requests; returns what the clients need."""
    from caseflow import pins, portal, search
    from caseflow.models import Ticket, TicketHistory, WebCase
    from channels.models import Open311Request
    from core.db import database, is_postgres

    # The full-text index is built once after the load (as caseflow.search builds it for rows written before
    # it existed): kept up row by row, it took most of the load's time on both databases.
    search.ensure_index("ticket")
    if is_postgres():
        database.execute_sql("DROP INDEX IF EXISTS ticket_search_tsv")
    else:
        for trigger in ("ticket_fts_ai", "ticket_fts_ad", "ticket_fts_au"):
            database.execute_sql(f"DROP TRIGGER IF EXISTS {trigger}")
    numbers = rng.sample(range(10_000_000, 100_000_000), n)
    every = max(1, n // max(published, 1))  # every n-th ticket is a published web case
    span = dt.timedelta(days=730)
    start = now - span
    code_hash = portal.hash_code(CODE, SECRET_KEY.encode())
    pin_hash = pins.hash_pin(PIN, SECRET_KEY.encode())  # one keyed hash for every ticket, as wide as a real one
    out = {"published": [], "open_web": [], "api": []}
    started = time.perf_counter()
    for offset in range(0, n, BATCH):
        tickets, cases, history, api = [], [], [], []
        for k in range(offset, min(n, offset + BATCH)):
            ident = k + 1
            created = start + span * k / n
            place, matter = rng.choice(PLACES), rng.choice(MATTERS)
            content = f"{place}{matter}，请尽快处理。联系人王先生，电话139{k:08d}。"
            category = rng.choice(categories)
            is_published = k % every == 0 and len(out["published"]) < published
            web = is_published or k % 7 == 1
            status = "closed" if is_published else rng.choice(
                ["recorded", "dispatched", "in_progress", "replied", "approved", "closed", "closed", "archived"])
            closed = created + dt.timedelta(days=rng.randint(1, 15)) if status in ("closed", "archived") else None
            reply = rng.choice(REPLIES) if status in ("replied", "approved", "closed", "archived") else ""
            tickets.append({
                "id": ident, "number": str(numbers[k]), "type": rng.choice(TYPES),
                "channel": "web" if web else rng.choice(["phone", "phone", "phone", "sms", "api"]),
                "status": status, "title": f"{place}{matter}"[:30], "content": content,
                "category": category.id, "region": rng.choice(regions).id, "citizen_name": "王先生",
                "citizen_phone": f"139{k:08d}", "citizen_address": f"{place}{k % 90 + 1}号",
                "department": rng.choice(depts).id, "created_at": created, "updated_at": closed or created,
                "deadline": created + dt.timedelta(days=rng.randint(3, 20)), "reply": reply,
                "replied_at": closed - dt.timedelta(hours=5) if closed else None, "closed_at": closed,
                "satisfaction": rng.choice(["satisfied", "basic", "unsatisfied", ""]) if closed else "",
                "public": is_published, "query_pin": pin_hash,
                "search_text": search.index_text(f"{place}{matter}"[:30], content, f"{place}{k % 90 + 1}号")})
            history.append({"ticket": ident, "at": created, "actor_label": "网站 web", "action": "create",
                            "from_status": "", "to_status": "recorded"})
            if closed:
                history.append({"ticket": ident, "at": closed, "actor_label": "system", "action": "close",
                                "from_status": "approved", "to_status": status})
            if web:
                cases.append({"ticket": ident, "box": "web", "consent": is_published or k % 2 == 0,
                              "code_hash": code_hash, "ip": f"10.{k % 250}.{k // 250 % 250}.{k % 7}",
                              "digest": f"{k:064x}", "captcha_id": f"seed-{k}", "created_at": created})
                if is_published:
                    out["published"].append(str(numbers[k]))
                elif status not in ("closed", "archived") and len(out["open_web"]) < 5000:
                    out["open_web"].append(str(numbers[k]))
            if not web and tickets[-1]["channel"] == "api":
                api.append({"ticket": ident, "client": client.id, "token": f"{k:024x}", "service_code": category.code,
                            "lat": 30.25 + rng.random() / 10, "long": 120.15 + rng.random() / 10,
                            "created_at": created})
                if created > now - dt.timedelta(days=80) and len(out["api"]) < 5000:
                    out["api"].append(str(numbers[k]))
        with database.atomic():
            for model, rows in ((Ticket, tickets), (TicketHistory, history), (WebCase, cases), (Open311Request, api)):
                bulk(model, rows)
        progress("tickets", min(n, offset + BATCH), n, started)
    indexing = time.perf_counter()
    search.forget(database.obj)
    # PostgreSQL: CREATE INDEX with the statement timeout lifted (core.db.schema_change), built whatever the
    # table's size (build=True, as the product's start); SQLite: the triggers again and an FTS rebuild.
    search.ensure_index("ticket", build=True)
    print(f"  full-text index built in {time.perf_counter() - indexing:,.0f} s", flush=True)
    if is_postgres():
        for table in ("ticket", "ticket_history", "web_case", "open311_request"):
            database.execute_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                 f"(SELECT COALESCE(MAX(id), 1) FROM {table}))")
        portal.ensure_statistics()  # as the product's start does (hotline.product)
        vacuum(database)
    else:
        database.execute_sql("ANALYZE")
    print(f"  seeded in {time.perf_counter() - started:,.0f} s: {n:,} tickets, {len(out['published']):,} published",
          flush=True)
    return out


TABLES = ("ticket", "ticket_history", "web_case", "open311_request")


def vacuum(database) -> None:
    """PostgreSQL: VACUUM (ANALYZE) the bench's tables, as the automatic vacuum would soon after a load (the test
    server runs without it), and say how much of each is all-visible. The visibility map lets the list's count
    and page read index entries alone; without it every entry also read its table row (Heap Fetches). Run after
    seeding and again on each reuse: an earlier run's submissions, and a seeding whose VACUUM ran while another
    session's transaction was open (it then marks no newer page all-visible: 70 % of the pages at 100,000
    tickets while another seeding ran beside it), leave pages that every later run read row by row."""
    connection = database.connection()
    connection.commit()
    connection.autocommit = True  # VACUUM runs outside a transaction
    try:
        with connection.cursor() as cursor:
            # The bench's tables only (not every schema of the database), without core.db's statement timeout:
            # on a busy machine the ticket table alone took longer.
            cursor.execute("SET statement_timeout = 0")
            for table in TABLES:
                cursor.execute(f"VACUUM (ANALYZE) {table}")
            cursor.execute("RESET statement_timeout")
            cursor.execute("SELECT relname, relallvisible, relpages FROM pg_class WHERE relname = ANY(%s) "
                           "AND relnamespace = current_schema()::regnamespace ORDER BY relname", (list(TABLES),))
            shares = [f"{name} {seen / max(pages, 1):.0%}" for name, seen, pages in cursor.fetchall()]
        print(f"  vacuumed; pages all-visible: {', '.join(shares)}", flush=True)
    finally:
        connection.autocommit = True  # as peewee opens them (was False: later statements stayed in an open
        # transaction on a pooled connection)


# ------------------------------------------------------------------------------------------ rows
def rows_for(data: dict, key: str, categories, regions, rng: random.Random, now: dt.datetime):
    """[(kind, step, aim)] of the rows run against the seeded data."""
    published, open_web, api = data["published"], data["open_web"], data["api"]
    months = [(now - dt.timedelta(days=30 * i)).strftime("%Y-%m") for i in range(1, 24)]
    week_ago = (now - dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def home(b, i):
        b.request("home page", "GET", "/")

    def figures(b, i):
        b.request("figures page", "GET", f"/figures?month={rng.choice(months[:12])}")

    def listing(b, i):
        b.request("published list", "GET", "/cases")

    def filtered(b, i):
        query = {"type": rng.choice(TYPES), "category": rng.choice(categories).id,
                 "region": rng.choice(regions).id, "month": rng.choice(months), "page": rng.randint(1, 5)}
        for name in rng.sample(list(query), rng.randint(0, 3)):  # one to all five filters
            del query[name]
        # Also timed per combination of filters (the breakdown under the row): a tail of a few combinations is a
        # query plan to read (EXPLAIN), not the machine.
        b.request("list, filters", "GET", "/cases?" + urlencode(query), also=f"{BY_FILTERS}{'+'.join(query)}")

    def text(b, i):
        b.request("list, search word", "GET", "/cases?" + urlencode({"q": rng.choice(WORDS)}))

    def case(b, i):
        b.request("published case", "GET", f"/cases/{rng.choice(published)}")

    def lookup(b, i):
        number = rng.choice(open_web)
        form = {"number": number, "code": CODE, "csrf_token": b.csrf("/follow")}
        b.request("case lookup", "POST", "/follow", form, expect=(303,))
        b.request("case page", "GET", f"/follow/{number}")

    def submit(b, i):
        b.request("(picture)", "GET", "/captcha.png")
        # RUN: this run's texts and numbers its own (a kept database holds the earlier runs').
        form = {"type": rng.choice(TYPES),
                "content": f"第{RUN}-{i}号压测来信：{rng.choice(PLACES)}{rng.choice(MATTERS)}。",
                "category": rng.choice(categories).id, "region": rng.choice(regions).id, "name": "李女士",
                "phone": f"137{(RUN * 1000 + i) % 10 ** 8:08d}", "reply_by": "phone", "consent": "1",
                "captcha": "AAAAA", "csrf_token": b.csrf("/write")}
        b.request("submission", "POST", "/write", form)

    def o311_services(b, i):
        b.request("Open311 services", "GET", "/open311/v2/services.json")

    def o311_list(b, i):
        b.request("Open311 requests", "GET", "/open311/v2/requests.json")

    def o311_filtered(b, i):
        b.request("Open311 requests, filters", "GET", "/open311/v2/requests.json?" + urlencode(
            {"service_code": rng.choice(categories).code, "status": "closed", "start_date": week_ago,
             "api_key": key}))

    def o311_one(b, i):
        b.request("Open311 request", "GET", f"/open311/v2/requests/{rng.choice(api)}.json?api_key={key}")

    def o311_post(b, i):
        b.request("Open311 POST", "POST", "/open311/v2/requests.json", {
            "api_key": key, "service_code": rng.choice(categories).code, "lat": "30.27", "long": "120.16",
            "description": f"第{i}号压测请求：{rng.choice(MATTERS)}", "attribute[type]": rng.choice(TYPES)})

    # (kind, step, aim, share of --requests): a requests list answers up to 1,000 requests, so fewer calls.
    return [("home page", home, READ_AIM, 1), ("figures page", figures, READ_AIM, 1),
            ("published list", listing, READ_AIM, 1), ("list, filters", filtered, READ_AIM, 1),
            ("list, search word", text, READ_AIM, 1), ("published case", case, READ_AIM, 1),
            ("case lookup", lookup, READ_AIM, 1), ("submission", submit, WRITE_AIM, 1),
            ("Open311 services", o311_services, READ_AIM, 1), ("Open311 requests", o311_list, READ_AIM, 0.1),
            ("Open311 requests, filters", o311_filtered, READ_AIM, 0.5), ("Open311 request", o311_one, READ_AIM, 1),
            ("Open311 POST", o311_post, WRITE_AIM, 1)]


def seeded(backend: str, args, database, meta: Path | None, rng: random.Random, clock, now):
    """(data, API key, categories, regions): seeded now, or read back from a kept database."""
    import json

    from caseflow.models import Category, Region
    from channels import open311

    with database.connection_context():
        if meta is not None and meta.exists():
            kept = json.loads(meta.read_text())
            print(f"{backend}: reusing the database seeded {kept['seeded']} ({meta})", flush=True)
            if backend == "postgres":
                vacuum(database)
            categories = list(Category.select().where(Category.code.startswith("K")).order_by(Category.id))
            regions = list(Region.select().where(Region.code.startswith("R")).order_by(Region.id))
            return kept["data"], kept["key"], categories, regions
        depts, categories, regions, admin = make_org()
        client, key = open311.issue_key("压测接入方", by=admin, clock=clock)
        print(f"{backend}: seeding", flush=True)
        data = seed(args.tickets, args.published, rng, now, depts, categories, regions, client)
    if meta is not None:
        meta.write_text(json.dumps({"seeded": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                    "data": data, "key": key}))
    return data, key, categories, regions


def run_backend(backend: str, args) -> list[tuple]:
    from caseflow import portal, search
    from core import db as core_db
    from core.clock import Clock
    from core.config import load_config
    from core.heap import freeze_startup_objects
    from webui.app import Services, create_app
    from webui.server import HttpServer
    import webui.blueprints.portal as portal_bp

    rng = random.Random(11)
    out = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        database, url, meta, cleanup = open_database(backend, args, folder)
        serving, workers, server = database, [], None
        search.forget(database)
        try:
            clock = Clock("Asia/Shanghai")
            now = clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None)
            data, key, categories, regions = seeded(backend, args, database, meta, rng, clock, now)
            with database.connection_context():
                # As the product's start (hotline.product) before serving: the full-text structures (built
                # whatever the table's size) and the list's statistics.
                search.forget(database)
                search.ensure_all()
                portal.ensure_statistics()
            if backend == "postgres" and args.pg_pool:
                url += f"&max_connections={args.pg_pool}"  # core.db's pool for each process (default 20)
            mapping = {"database_url": url, "mode": "test", "load_demo": False, "var_dir": str(folder / "var"),
                       "secret_key": SECRET_KEY, "HOTLINE_CALL_PROCESS": "http://127.0.0.1:9",
                       "HOTLINE_PORTAL_PER_ADDRESS": "1000000", "HOTLINE_PORTAL_PER_PHONE": "1000000",
                       "HOTLINE_OPEN311_PER_ADDRESS": "1000000", "HOTLINE_OPEN311_PER_KEY": "1000000",
                       "HOTLINE_OPEN311_POSTS_PER_HOUR": "1000000",
                       # Each client its own address (X-Forwarded-For, bench.portal_load.client_address), as
                       # visitors behind the product's reverse proxy: an address's counts are its own.
                       "HOTLINE_TRUST_PROXY": "1"}
            if args.web_workers and backend == "postgres":
                database.close_all()  # the workers open their own
                workers = start_workers(args.web_workers, mapping)
                ports = [w.port for w in workers]
                print(f"  serving through {len(ports)} web workers (hotline.worker), clients round robin", flush=True)
            else:
                if args.web_workers:
                    print("  SQLite: one process (the product refuses web workers on SQLite: hotline.worker)",
                          flush=True)
                if backend == "postgres" and args.pg_pool:
                    database.close_all()
                    serving = core_db.bind_database(url)
                portal_bp.CAPTCHA_ALPHABET = "A"  # the picture is still drawn and checked; the bench knows it
                app = create_app(load_config(mapping), Services(clock=clock))
                if not args.no_freeze:
                    # As a web worker does (core.heap.freeze_startup_objects); here it also keeps the bench's own
                    # data (the seeded numbers: some 200,000 strings) out of the collector's full passes, which
                    # stopped the app in this process.
                    freeze_startup_objects()
                server = HttpServer(("127.0.0.1", 0), timed_app(app))
                server.start()
                ports = [server.server_port]
            rows = rows_for(data, key, categories, regions, rng, now)
            rows = chosen(rows, args)
            for think in args.think_ms:
                mode = "closed" if not think else f"paced {think:g}"
                print(f"  {mode}: " + ("each client sends its next call when answered" if not think else
                                      f"each client thinks {think:g} ms on average (exponential) between calls"),
                      flush=True)
                for kind, step, aim, share in rows:
                    calls = max(args.clients, int(args.requests * share))
                    timings, inside, seconds, errors = run_row(ports, args.clients, calls, step, think)
                    for name in (kind, "case page") if kind == "case lookup" else (kind,):
                        seen, app_ms = timings.get(name, []), inside.get(name, [])
                        line = (backend, mode, name, len(seen), len(seen) / seconds, pct(seen, 50), pct(seen, 99),
                                pct(app_ms, 50), pct(app_ms, 99), READ_AIM if name == "case page" else aim,
                                os.getloadavg()[0])
                        out.append(line)
                        print_row(line)
                    print_breakdown(inside)
                    if errors:
                        print(f"  {len(errors)} failed, first: {errors[0]}", flush=True)
        finally:
            if server is not None:
                server.stop()
                if tracer() is not None:
                    tracer().report(sys.stdout)
            stop_workers(workers)
            if serving is not database:
                serving.close_all()
            database.close()
            cleanup()
    return out


HEADER = (f"{'backend':<9}{'mode':<12}{'what':<27}{'calls':>7}{'calls/s':>9}{'client p50':>12}{'p99':>9}"
          f"{'in app p50':>12}{'p99':>9}{'aim p99':>9}{'load':>10}")


def print_breakdown(inside: dict) -> None:
    """The list with filters' in-app times per combination of filters, the highest p99 first."""
    split = sorted((name for name in inside if name.startswith(BY_FILTERS)), key=lambda n: -pct(inside[n], 99))
    if split:
        print(f"{'':<9}{'by filters (in app)':<32}{'calls':>7}{'p50':>9}{'p99':>9}", flush=True)
    for name in split:
        print(f"{'':<9}{name[len(BY_FILTERS):]:<32}{len(inside[name]):>7}{pct(inside[name], 50):>9.1f}"
              f"{pct(inside[name], 99):>9.1f}", flush=True)


def print_row(line) -> None:
    backend, mode, kind, calls, rate, c50, c99, a50, a99, aim, load = line
    verdict = "ok" if a99 <= aim else "over"
    print(f"{backend:<9}{mode:<12}{kind:<27}{calls:>7}{rate:>9.0f}{c50:>12.1f}{c99:>9.1f}{a50:>12.1f}{a99:>9.1f}"
          f"{aim:>8.0f} {verdict:<4}{load:>6.1f}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--published", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--pg", default=DEFAULT_PG)
    parser.add_argument("--backend", choices=("both", "sqlite", "postgres"), default="both")
    parser.add_argument("--only", default="", help="comma-separated words: run only the rows naming one")
    parser.add_argument("--rows", default="",
                        help="';'-separated exact row names, e.g. 'list, filters;case lookup;submission' (case lookup "
                             "also times the case page)")
    parser.add_argument("--trace", action="store_true",
                        help="each serving process prints its slowest requests, the longest runs without a greenlet "
                             "switch and the garbage collector's pauses when it stops (bench/portal_trace.py)")
    parser.add_argument("--pg-pool", type=int, default=0,
                        help="PostgreSQL: at most this many connections in each serving process's pool (0: core.db's "
                             "default, 20)")
    parser.add_argument("--web-workers", type=int, default=0,
                        help="PostgreSQL: serve through this many web worker processes (hotline.worker), the clients "
                             "spread over them round robin (0: the app in the bench's process)")
    parser.add_argument("--think-ms", default="0",
                        help="comma-separated modes: 0 = closed loop (the next call when answered), T = paced, each "
                             "client waiting T ms on average (exponential) after each call; e.g. 0,1000")
    parser.add_argument("--keep", default="",
                        help="a folder: keep the seeded database (SQLite file there, PostgreSQL schema "
                             "bench_portal_keep_<tickets>_<published>) and reuse it when seeded before")
    parser.add_argument("--no-freeze", action="store_true",
                        help="the serving processes leave the objects of their start to the garbage collector's full "
                             "passes (no core.heap.freeze_startup_objects), to compare")
    parser.add_argument("--serve-worker", action="store_true", help=argparse.SUPPRESS)  # portal_load.serve_worker
    args = parser.parse_args(argv)
    if args.serve_worker:
        return serve_worker()
    args.think_ms = [float(t) for t in args.think_ms.split(",")]
    if args.trace:
        os.environ[ENV] = "1"  # the web workers inherit it
    if args.no_freeze:
        os.environ[NO_FREEZE] = "1"
    logging.basicConfig(level=logging.WARNING)
    backends = [b for b in available_backends(args.pg) if args.backend in ("both", b)]
    print(f"portal bench ({dt.date.today()}): {args.tickets:,} tickets, {args.published:,} published, "
          f"{args.clients} clients, {args.requests:,} calls a row; times in ms")
    results = []
    for backend in backends:
        print(HEADER)
        results += run_backend(backend, args)
    print("\n" + HEADER)
    for line in results:
        print_row(line)
    print(f"aim (issue 11): p99 under {READ_AIM:.0f} ms for reads, {WRITE_AIM:.0f} ms for a submission, "
          f"with {args.clients} clients at once; 'ok'/'over' compares the p99 inside the app; load: the 1-minute "
          "load average at the row's end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
