"""Benchmark: the case engine at scale on SQLite and PostgreSQL.

1. Ticket creation through ``caseflow.services.create_ticket`` (number drawing with collision retry,
   citizen profile, full-text index row, history row): rate and p50/p99 per ticket, measured on
   ``--timed`` tickets on top of the bulk-loaded ones (after one untimed: a process's first), with its SMS
   receipt and without; beside them, for a PostgreSQL server on this machine, the disk's flush (8 kB write +
   fdatasync: what a durable commit waits for) in the ``--keep`` folder or the temporary one.
2. ``--tickets`` tickets bulk-loaded (default 100,000; the issue's figure is 1,000,000:
   ``--tickets 1000000``) over 20 departments with realistic Chinese content, phones and statuses.
3. p50/p99 over ``--queries`` queries each of: the department workbench list (services.department_queue,
   first page of 50, overdue first then by deadline), the centre desk's page's reads ("centre lists": each
   CENTRE_QUEUES list, the lists' counts (the overdue one's is the banner's), the desk's due-soon tickets,
   materials.pending and the desk's notifications, as webui.blueprints.centre.index runs them), the big
   screen's overdue count for a district (stats.screen.overdue_count),
   ticket search by text (ranked n-gram full-text), ticket search by phone, and knowledge search over
   ``--kb`` items (default 100,000).

Runs on SQLite (a temporary file) and on PostgreSQL when reachable (``--pg URL``; a schema of its own,
dropped afterwards; ``--pg ""`` skips it). Prints each p99 beside its aim (issue 15 item 7: creation under
5 ms, every list and search under 50 ms at 1,000,000 tickets) and this process's CPU time per call; asserts
nothing.

    .venv/bin/python bench/caseflow.py [--tickets 100000] [--kb 100000] [--timed 2000] [--queries 200]
                                       [--pg postgresql://postgres@127.0.0.1:5432/test | --pg ""]
                                       [--only sqlite|postgres] [--keep var/bench] [--rows "ticket search text"]

``--keep DIR`` seeds the tickets once and reuses them (see ``open_database``); ``--rows`` runs some rows only.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import DEFAULT_PG, available_backends, bulk_insert, open_backend, pct  # noqa: E402

BATCH = 2000

PLACES = ["东湖路", "解放路", "建设路", "人民大道", "光明路", "青山路", "幸福小区", "阳光花园", "滨江新城", "龙泉镇",
          "西山街道", "东湖街道", "火车站", "中心医院", "实验小学", "农贸市场", "体育馆", "科技园"]
MATTERS = ["夜间施工噪音扰民", "广场舞音响声音过大", "流动摊贩占道经营", "路灯不亮", "井盖缺失", "下水道堵塞",
           "小区电梯长期故障", "物业乱收费", "餐饮油烟污染", "公交车不按站停靠", "出租车拒载", "超市出售过期食品",
           "违章搭建", "垃圾清运不及时", "停水停电未通知", "社保缴费咨询", "公积金提取咨询", "学校周边交通拥堵",
           "共享单车乱停放", "宠物犬扰民", "装修噪音", "道路积水", "树木倒伏", "违规收费", "燃气泄漏隐患"]
TAILS = ["，多次反映未解决，请尽快处理。", "，影响居民休息。", "，希望相关部门尽快核查。", "，已持续一周。",
         "，请给予答复。", "。"]
QUERIES = ["噪声 扰民", "噪音扰民", "路灯", "占道经营", "电梯故障", "过期食品", "油烟", "公交 不停靠", "物业收费",
           "下水道", "装修噪音", "违章搭建", "社保", "共享单车", "燃气"]


def make_org():
    """A centre, 6 districts with 2 streets each... 20 departments, a user each, a few categories."""
    from caseflow import org
    from caseflow.models import User

    centre = org.create_department("C", "热线中心", None, "centre")
    depts = []
    for i in range(6):
        d = org.create_department(f"D{i}", f"第{i}区", centre, "district")
        depts.append(d)
        for j in range(2):
            depts.append(org.create_department(f"D{i}S{j}", f"第{i}区{j}街道", d, "street"))
    for i in range(1):
        depts.append(org.create_department(f"B{i}", f"市局{i}", centre, "city_dept"))
    users = [User.create(operator_no=f"7{i:03d}", name=f"处理人{i}", password_hash="!", roles="dept", department=d)
             for i, d in enumerate(depts)]
    centre_user = User.create(operator_no="9001", name="派单员", password_hash="!", roles="centre", department=centre)
    agent = User.create(operator_no="1001", name="话务员", password_hash="!", roles="agent", department=centre)
    return depts, users, centre_user, agent


def text(rng):
    return rng.choice(PLACES) + rng.choice(MATTERS) + rng.choice(TAILS)


FIELDS = ("number", "type", "channel", "status", "title", "content", "citizen_phone", "citizen_name", "department",
          "created_at", "updated_at", "deadline", "overdue", "query_pin", "search_text")


def bulk_tickets(n: int, depts, rng, phones) -> float:
    """Insert n tickets in batches (index text included); returns seconds."""
    from caseflow import pins, search
    from caseflow.models import Ticket
    from core.db import database, is_postgres

    if not is_postgres():
        search.ensure_index("ticket")  # the triggers index each batch
    pin = pins.hash_pin("123456", pins.installed().current)  # one keyed hash for all: as wide as a real one
    numbers = rng.sample(range(10_000_000, 100_000_000), n)
    statuses = ["dispatched"] * 3 + ["in_progress"] * 3 + ["closed"] * 10 + ["archived"] * 6 + ["recorded", "replied"]
    start = time.perf_counter()
    base = dt.datetime(2025, 1, 1)
    for offset in range(0, n, BATCH):
        rows = []
        for k in range(offset, min(n, offset + BATCH)):
            content = text(rng)
            dept = rng.choice(depts)
            created = base + dt.timedelta(minutes=k * 525600 // max(n, 1))
            rows.append((str(numbers[k]), rng.choice(["consult", "complaint", "help", "report"]), "phone",
                         rng.choice(statuses), content[:30], content, rng.choice(phones), "市民", dept.id, created,
                         created, created + dt.timedelta(days=rng.randint(1, 20)), rng.random() < 0.05, pin,
                         search.index_text(content[:30], content)))
        with database.atomic():
            bulk_insert(Ticket, FIELDS, rows)
    if is_postgres():
        # The generated column and the GIN built once over the loaded rows (as the product's start or migration
        # builds them on a big table): kept up row by row, the load ran at a third of the speed.
        search.forget(database.obj)
        search.ensure_index("ticket", build=True)
        # What autovacuum does to a production server's freshly inserted rows (the test server runs without it):
        # hint bits set and the visibility map written once here, not by the first searches reading each page.
        database.execute_sql("VACUUM (ANALYZE) ticket")
    else:
        database.execute_sql("ANALYZE")
    return time.perf_counter() - start


def bulk_knowledge(n: int, rng) -> float:
    from caseflow import search
    from caseflow.models import KnowledgeItem
    from core.db import database, is_postgres

    search.ensure_index("knowledge_item")
    start = time.perf_counter()
    for offset in range(0, n, BATCH):
        rows = []
        for k in range(offset, min(n, offset + BATCH)):
            title = f"{rng.choice(MATTERS)}的处理办法（{k}）"
            content = "；".join(text(rng) for _ in range(4))
            rows.append({"title": title, "content": content, "review_state": "approved",
                         "search_text": search.index_text(title, title, content)})
        with database.atomic():
            KnowledgeItem.insert_many(rows).execute()
    database.execute_sql("ANALYZE knowledge_item" if is_postgres() else "ANALYZE")
    return time.perf_counter() - start


def timed(fn, count):
    """Wall milliseconds of each call, the process's CPU milliseconds of each (what the call itself cost,
    whatever else the machine was running) and the calling thread's alone: the process's also holds what the
    WAL checkpointer's thread (core.db.WalCheckpointer) spent meanwhile."""
    samples, cpu, own = [], [], []
    for _ in range(count):
        start, start_cpu, start_own = time.perf_counter(), time.process_time(), time.thread_time()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        own.append((time.thread_time() - start_own) * 1000)
    return samples, cpu, own


CREATE_AIM, LIST_AIM = 5.0, 50.0  # ms, p99 at 1,000,000 tickets (issue 15 item 7)


def disk_flush(folder: Path, count: int = 1000) -> list[float]:
    """Milliseconds of each of ``count`` 8 kB writes + fdatasync in a file in ``folder``: what a durable
    PostgreSQL commit waits for once (its WAL flush), measured on this machine's disk beside the creations. The
    file is written whole and synced first, as a WAL segment is (its size then never changes: no metadata to
    commit with each flush); a pause between flushes, as between commits, so the figure is the disk's, not a
    queue's."""
    path = folder / "disk-flush.probe"
    blocks = 256
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        block = os.urandom(8192)
        for n in range(blocks):
            os.pwrite(fd, block, n * 8192)
        os.fsync(fd)
        samples = []
        for n in range(count):
            os.pwrite(fd, block, (n % blocks) * 8192)
            start = time.perf_counter()
            os.fdatasync(fd)
            samples.append((time.perf_counter() - start) * 1000)
            time.sleep(0.001)
        return samples
    finally:
        os.close(fd)
        path.unlink()


def mount_point(path: Path) -> Path:
    """The mount point of the file system ``path`` is on."""
    path = path.resolve()
    while path.parent != path and path.parent.stat().st_dev == path.stat().st_dev:
        path = path.parent
    return path


def local_server(pg_url: str) -> bool:
    """Whether ``pg_url`` names a server on this machine (its host, or a Unix socket)."""
    from urllib.parse import urlsplit

    return (urlsplit(pg_url).hostname or "localhost") in ("localhost", "127.0.0.1", "::1")


def figure(what: str, scale: str, samples: list[float], cpu: list[float], own: list[float], aim: float) -> tuple:
    return (what, scale, pct(samples, 50), pct(samples, 99), pct(cpu, 99), pct(own, 99), aim)


def kept_org():
    """make_org's departments and users, read back from a kept database."""
    from caseflow.models import Department, User

    depts = list(Department.select().where(Department.code != "C").order_by(Department.id))
    users = list(User.select().where(User.operator_no.startswith("7")).order_by(User.id))
    return depts, users, User.get(User.operator_no == "9001"), User.get(User.operator_no == "1001")


def open_database(name: str, args, folder: Path, pg_url: str):
    """(database, cleanup, the kept seeding's record or None): a throw-away database, or with ``--keep DIR`` the
    one seeded before (SQLite DIR/caseflow-keep-<tickets>.sqlite3, PostgreSQL schema bench_caseflow_keep_<tickets>,
    seeded once: DIR/caseflow-<backend>-<tickets>.json records that seeding finished)."""
    import json

    from bench.common import open_kept_backend

    if not args.keep:
        return (*open_backend(name, folder, pg_url, "caseflow"), None)
    keep = Path(args.keep).resolve()
    keep.mkdir(parents=True, exist_ok=True)  # its first use: the seeding is recorded there
    meta = keep / f"caseflow-{name}-{args.tickets}.json"
    record = json.loads(meta.read_text()) if meta.exists() else None
    database, _url = open_kept_backend(name, keep / f"caseflow-keep-{args.tickets}.sqlite3",
                                       f"bench_caseflow_keep_{args.tickets}", pg_url, record is not None)
    return database, lambda: None, (meta, record)


def centre_rows(centre_user, level2, clock, queries: int) -> list[tuple]:
    """The centre desk's page's reads (webui.blueprints.centre.index) each timed on its own, and the big
    screen's overdue count for a district."""
    from caseflow import materials, services
    from caseflow.values import to_db
    from stats.queries import Scope
    from stats.screen import overdue_count

    rng, now = random.Random(7), to_db(clock.now())
    reads = [(kind, lambda kind=kind: services.centre_queue(centre_user, kind, clock=clock))
             for kind in services.CENTRE_QUEUES]
    reads += [("counts", lambda: services.queue_counts(centre_user, clock)),
              ("due soon", lambda: services.due_soon(centre_user, clock)),
              ("materials", lambda: materials.pending(centre_user)),
              ("notifications", lambda: services.notifications_for(centre_user, limit=20))]
    rows = [figure("centre lists", scale, *timed(read, queries), LIST_AIM) for scale, read in reads]
    screen = timed(lambda: overdue_count(Scope(rng.choice(level2).department), now), queries)
    return rows + [figure("screen overdue", "count, district", *screen, LIST_AIM)]


def run_backend(name: str, args, pg_url: str) -> tuple[list[tuple], list[tuple]]:
    """(figures with aims, bulk-load rates) for one backend."""
    import json

    from caseflow import knowledge, search, services
    from caseflow.models import KnowledgeItem
    from core.clock import FixedClock
    from caseflow.search_merging import start_fts_merger
    from core.db import start_wal_checkpointer

    rng = random.Random(12345)
    rows: list[tuple] = []
    loads: list[tuple] = []
    wanted = [word for word in args.rows.split(",") if word]

    def want(what: str) -> bool:
        return not wanted or any(word in what for word in wanted)

    with tempfile.TemporaryDirectory() as folder:
        database, cleanup, kept = open_database(name, args, Path(folder), pg_url)
        search.forget(database)
        checkpointer = start_wal_checkpointer(database)  # SQLite's WAL checkpointed as in the product
        merger = start_fts_merger(database)  # and its ticket index merged from a thread, as in the product
        try:
            phones = [f"13{rng.randint(0, 999999999):09d}" for _ in range(max(1000, args.tickets // 5))]
            if kept is not None and kept[1] is not None:
                print(f"{name}: reusing the database seeded {kept[1]['seeded']} ({kept[0]})", flush=True)
                depts, users, centre_user, agent = kept_org()
                search.ensure_all()  # as the product's start does
            else:
                depts, users, centre_user, agent = make_org()
                seconds = bulk_tickets(args.tickets, depts, rng, phones)
                loads.append((f"{args.tickets:,} tickets", args.tickets / max(seconds, 1e-9)))
                if kept is not None:
                    kept[0].write_text(json.dumps({"seeded": dt.datetime.now(dt.timezone.utc).isoformat(
                        timespec="seconds"), "tickets": args.tickets}))
            clock = FixedClock(dt.datetime(2026, 3, 4, 10, 0))
            level2 = [u for u in users if u.department.level == 2]
            if want("create_ticket"):
                # As in production, where each process that files tickets writes the SMS receipt with them
                # (channels.receipts; on PostgreSQL in the ticket's own statement); then without it, the same
                # number of tickets, for what the receipt costs (the aim is the row with it).
                from caseflow import pins
                from channels.receipts import Receipts
                from channels.settings import SmsSettings
                from core.config import load_config
                from core.heap import freeze_startup_objects

                receipts = Receipts(SmsSettings.from_config(load_config({"mode": "test"})), None)
                freeze_startup_objects()  # as run.py and the web workers do after their start (core.heap)
                for scale, connected in (("with its SMS receipt", True), ("no receipt", False)):
                    if connected:
                        pins.connect_receipt(receipts)

                    def create():
                        services.create_ticket(text(rng), type="complaint", citizen_phone=rng.choice(phones),
                                               citizen_name="市民", created_by=agent, clock=clock)

                    create()  # untimed: a process's first (PostgreSQL prepares the statement; caches fill)
                    created = timed(create, args.timed)
                    pins.disconnect_receipt(receipts)
                    rows.append(figure("create_ticket", f"{args.timed:,} on top, {scale}", *created, CREATE_AIM))
            if want("workbench list"):
                work = timed(lambda: services.department_queue(rng.choice(level2), limit=50), args.queries)
                rows.append(figure("workbench list", "first 50, district", *work, LIST_AIM))
            if want("centre lists"):
                rows.extend(centre_rows(centre_user, level2, clock, args.queries))
            if want("ticket search text"):
                by_text = timed(lambda: services.search_tickets(centre_user, text=rng.choice(QUERIES), limit=50),
                                args.queries)
                rows.append(figure("ticket search", "text", *by_text, LIST_AIM))
                dept_text = timed(lambda: services.search_tickets(rng.choice(level2), text=rng.choice(QUERIES),
                                                                  limit=50), args.queries)
                rows.append(figure("ticket search", "text, dept subtree", *dept_text, LIST_AIM))
            if want("ticket search phone"):
                by_phone = timed(lambda: services.search_tickets(centre_user, phone=rng.choice(phones)), args.queries)
                rows.append(figure("ticket search", "phone", *by_phone, LIST_AIM))
            if want("knowledge search"):
                have = KnowledgeItem.select().count()
                if have < args.kb:  # a kept database keeps its items
                    seconds = bulk_knowledge(args.kb - have, rng)
                    loads.append((f"{args.kb - have:,} knowledge items", (args.kb - have) / max(seconds, 1e-9)))
                kb = timed(lambda: knowledge.search_items(rng.choice(QUERIES)), args.queries)
                rows.append(figure("knowledge search", f"{args.kb:,} items", *kb, LIST_AIM))
        finally:
            if merger is not None:
                merger.stop()
                if merger.took_ms:
                    print(f"{name}: the full-text merging thread's {merger.steps} steps took p50 "
                          f"{pct(merger.took_ms, 50):.1f} ms, max {max(merger.took_ms):.1f} ms (the write lock "
                          "held within)", flush=True)
            if checkpointer is not None:
                checkpointer.stop()
            database.close()
            cleanup()
    return rows, loads


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--kb", type=int, default=100_000)
    parser.add_argument("--timed", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--pg", default=os.environ.get("HOTLINE_TEST_PG", DEFAULT_PG))
    parser.add_argument("--only", choices=["sqlite", "postgres"], default=None)
    parser.add_argument("--keep", default="",
                        help="a folder: seed once and reuse (SQLite file there, PostgreSQL schema "
                             "bench_caseflow_keep_<tickets>); each run's creations stay in it")
    parser.add_argument("--rows", default="",
                        help="only the rows whose 'what scale' holds one of these comma-separated words "
                             "(create_ticket, workbench list, centre lists, ticket search text, "
                             "ticket search phone, knowledge search)")
    args = parser.parse_args(argv)
    backends = available_backends(args.pg)
    if args.only:
        backends = [b for b in backends if b == args.only]
    print(f"caseflow bench: {args.tickets:,} tickets, {args.kb:,} knowledge items, {args.queries} queries each "
          f"(aims at 1,000,000 tickets, issue 15 item 7)")
    results = {backend: run_backend(backend, args, args.pg) for backend in backends}
    # The disk's flush only where it is a durable commit's floor: PostgreSQL's (SQLite's commits in WAL mode with
    # synchronous=NORMAL sync nothing) on this machine, with the creations measured.
    probed = Path(args.keep or tempfile.gettempdir())
    words = [word for word in args.rows.split(",") if word]
    flushes = disk_flush(probed) if "postgres" in results and local_server(args.pg) and (
        not words or any(word in "create_ticket" for word in words)) else []
    print(f"{'backend':<10} {'what':<18} {'scale':<34} {'p50 ms':>8} {'p99 ms':>8} {'cpu p99':>8} "
          f"{'own cpu':>8} {'aim p99':>8}  within")
    print("-" * 119)
    for backend, (rows, _loads) in results.items():
        for what, scale, p50, p99, cpu99, own99, aim in rows:
            print(f"{backend:<10} {what:<18} {scale:<34} {p50:8.2f} {p99:8.2f} {cpu99:8.2f} {own99:8.2f} {aim:8.1f}  "
                  f"{'yes' if p99 < aim else 'NO'}", flush=True)
    for backend, (_rows, loads) in results.items():
        for what, rate in loads:
            print(f"{backend:<10} bulk load of {what}: {rate:,.0f}/s")
    if flushes:
        slow = sum(ms > 2 for ms in flushes) / len(flushes) * 100
        print(f"this machine's disk ({probed}, the file system of {mount_point(probed)}), {len(flushes):,} 8 kB "
              f"writes + fdatasync: p50 {pct(flushes, 50):.2f} ms, p99 {pct(flushes, 99):.2f} ms, {slow:.1f} % over "
              "2 ms: what a durable PostgreSQL commit waits for once, the floor under the creations' tail when the "
              "server's pg_wal is on that file system")
    print("p50/p99: wall time of a call; cpu p99: this process's CPU time of a call (its own cost, not the wait "
          "for a shared machine's cores); own cpu: p99 of the calling thread's alone (without the SQLite WAL "
          "checkpointer's thread)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
