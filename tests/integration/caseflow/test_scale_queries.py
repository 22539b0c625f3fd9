"""The case engine's lists and searches as bench/caseflow.py measures them at a million tickets (issue 15 item
7), on both databases: the department workbench read as a merge of ordered per-department lists, the full-text
search's windows of ids and its scope applied by PostgreSQL's GIN index, the ranking without token sets, the
creation's conflict-tolerant inserts, and the migration step bringing an existing index to its layout."""
from __future__ import annotations

import datetime as dt
import itertools

import pytest

from caseflow import search, services
from caseflow import workflow as wf
from caseflow.models import Citizen, Ticket
from caseflow.visibility import _visibility_scope, _visibility_sql, subtree_department_ids
from core.db import is_postgres
from tests.integration.caseflow.test_public_indexes import _statements

NUMBERS = itertools.count(20_000_000)
BASE = dt.datetime(2026, 1, 5, 9, 0)


def _ticket(department, status, *, overdue=False, deadline=None, ticket_id=None, text="占道经营", handler=None,
            created_by=None, upper=None):
    fields = dict(number=str(next(NUMBERS)), type="complaint", channel="phone", status=status, title=text,
                  content=text, department=department, upper_department=upper, handler=handler,
                  created_by=created_by, created_at=BASE, updated_at=BASE, deadline=deadline, overdue=overdue,
                  search_text=search.index_text(text, text))
    if ticket_id is not None:
        fields["id"] = ticket_id
    return Ticket.create(**fields)


def _reference_queue(actor, statuses, limit, where=None):
    """The workbench as one sorted query (what department_queue answered before it merged lists)."""
    departments = subtree_department_ids(actor.department)
    cond = Ticket.department.in_(departments) & Ticket.status.in_(list(statuses))
    query = (Ticket.select(Ticket.id).where(cond if where is None else cond & where)
             .order_by(Ticket.overdue.desc(), Ticket.deadline.asc(nulls="LAST"), Ticket.id).limit(limit))
    return [row.id for row in query]


@pytest.fixture
def workbench(org_setup):
    """Tickets over the east district's subtree and elsewhere: overdue or not, deadlines equal, apart and
    missing, in the workbench's statuses and others."""
    o = org_setup
    days = [None, BASE + dt.timedelta(days=1), BASE + dt.timedelta(days=2), BASE + dt.timedelta(days=1)]
    for n, (department, status, overdue) in enumerate(itertools.product(
            (o.east, o.east_street, o.east_street2, o.west),
            (wf.DISPATCHED, wf.IN_PROGRESS, wf.UNSATISFIED, wf.CLOSED), (False, True))):
        for k in range(3):
            _ticket(department, status, overdue=overdue, deadline=days[(n + k) % 4],
                    handler=o.east_user if (n + k) % 2 else None)
    return o


@pytest.mark.parametrize("limit", [1, 5, 50])
def test_workbench_is_the_sorted_subtree(workbench, limit, monkeypatch):
    """Should list exactly what one sorted query over the subtree lists, in its order (overdue first, then by
    deadline with none last, then by id), whether the lists are merged per department or per status."""
    o = workbench
    cases = [((wf.DISPATCHED, wf.IN_PROGRESS), None),
             ((wf.IN_PROGRESS,), Ticket.handler.is_null(False)),
             ((wf.DISPATCHED, wf.IN_PROGRESS), (Ticket.status == wf.DISPATCHED) | Ticket.handler.is_null()),
             ((wf.UNSATISFIED,), None)]
    for streams in (64, 1):
        monkeypatch.setattr(services, "MAX_QUEUE_STREAMS", streams)
        for actor in (o.east_user, o.east_street_user, o.west_user, o.bureau_user):
            for statuses, where in cases:
                got = [t.id for t in services.department_queue(actor, statuses, limit=limit, where=where)]
                assert got == _reference_queue(actor, statuses, limit, where), (streams, actor.operator_no, statuses)
    east = services.department_queue(o.east_user, limit=50)
    assert east and all(t.department.name for t in east)  # the holding department comes with each row


def test_workbench_indexes_exist(db):
    """Should build the indexes the workbench reads its lists from."""
    names = {index.name for index in db.get_indexes("ticket")}
    assert {"ticket_workbench_held", "ticket_workbench_status"} <= names


def test_bucket_marks_cover_a_window_exactly():
    """Should cover [low, high) with the coarsest aligned buckets and nothing outside it."""
    assert search.bucket_marks(0, 4096) == ["~a0"]
    assert search.bucket_marks(4096 * 6, 4096 * 9) == ["~a8", "~a7", "~a6"]
    assert search.bucket_marks(0, 1 << 15) == ["~b0"]
    sizes = {letter: 1 << shift for letter, shift in search.BUCKETS}
    for low, high in ((0, 1 << 22), (4096 * 5, 4096 * 700), (1 << 18, (1 << 21) + 4096 * 3)):
        covered = []
        for m in search.bucket_marks(low, high):
            start = int(m[2:]) * sizes[m[1]]
            covered.append((start, start + sizes[m[1]]))
        covered.sort()
        assert covered[0][0] == low and covered[-1][1] == high
        assert all(a[1] == b[0] for a, b in zip(covered, covered[1:]))
    with pytest.raises(ValueError):
        search.bucket_marks(1, 4096)


def test_next_window_sized_from_the_newest_match():
    """Should widen WINDOW_GROWTH times while nothing is found, else size the next window for the rows still wanted
    at the density seen from the newest match down (a department's empty top, its newest tickets not dispatched
    yet, does not count), a quarter more, at least one bucket and at most SIZED_GROWTH times the last."""
    smallest = 1 << search.BUCKETS[-1][1]
    assert search.next_span(8192, 0, 0, 300) == 8192 * search.WINDOW_GROWTH
    assert search.next_span(65536, 60, 30_000, 240) == 150_000  # not 368,640: 73,728 ids read from the top
    assert search.next_span(8192, 4, 2000, 296) == 8192 * search.SIZED_GROWTH  # 4 matches: a rough guess
    assert search.next_span(8192, 290, 8000, 10) == smallest  # at least a bucket


def test_recent_candidates_across_windows(org_setup, monkeypatch):
    """Should find the newest matching ids first wherever they lie (ids spread over many buckets, windows
    grown from a small first one), as many as asked and no others, with and without a scope."""
    o = org_setup
    ids = [3, 4100, 9000, 40_000, 70_000, 300_000, 2_200_000, 2_200_001, 5_000_000]
    for n, ticket_id in enumerate(ids):
        _ticket(o.east if n % 2 else o.west, wf.DISPATCHED, ticket_id=ticket_id, text="下水道堵塞")
    _ticket(o.east, wf.DISPATCHED, ticket_id=5_000_100, text="路灯不亮")
    monkeypatch.setattr(search, "FIRST_WINDOW", 4096)
    for limit in (1, 2, 4, 9, 20):
        found = search.candidate_ids("ticket", search.query_grams("下水道"), limit, mode="all", order="recent")
        assert found == sorted(ids, reverse=True)[:limit]
    east = sorted((i for n, i in enumerate(ids) if n % 2), reverse=True)
    restrict, params = _visibility_sql(o.east_user)
    scope = _visibility_scope(o.east_user)
    assert search.candidate_ids("ticket", search.query_grams("下水道"), 20, restrict_sql=restrict,
                                restrict_params=params, mode="all", order="recent", scope=scope) == east
    if is_postgres():  # the index alone applies the scope
        assert search.candidate_ids("ticket", search.query_grams("下水道"), 20, mode="all", order="recent",
                                    scope=scope) == east
    assert search.candidate_ids("ticket", ["没有"], 5, order="recent") == []


def test_department_search_starts_below_a_backlog_it_may_not_see(org_setup, db, monkeypatch):
    """Should find a district's newest matches under a backlog of 800,000 newer ids it may not see (recorded, not
    dispatched yet), and nothing for a department holding none; on PostgreSQL, after the empty first window, one
    probe for the district's newest ticket: the next window is the first one's width ending at that ticket's
    bucket, not one widened eight times across the backlog."""
    o = org_setup
    east = [2_000, 9_000, 40_000, 70_000, 100_000]
    for ticket_id in east:
        _ticket(o.east, wf.DISPATCHED, ticket_id=ticket_id, text="下水道堵塞")
    _ticket(o.west, wf.DISPATCHED, ticket_id=110_000, text="下水道堵塞")
    for ticket_id in range(200_000, 1_000_001, 50_000):
        _ticket(None, wf.RECORDED, ticket_id=ticket_id, text="下水道堵塞", created_by=o.agent)
    monkeypatch.setattr(search, "FIRST_WINDOW", 4096)
    with _statements(db, monkeypatch) as seen:
        found = [t.id for t in services.search_tickets(o.east_user, text="下水道", limit=50)]
    assert found == sorted(east, reverse=True)
    windows = [params[0] for sql, params in seen if sql.startswith("SELECT t.id") and "@@" in sql]
    if is_postgres(db):  # 100,000 lies in 4,096-id bucket 24: [98,304, 102,400)
        assert windows[0].endswith("('~a244')") and windows[1].endswith("('~a24')"), windows
        assert search._scope_end(db, "ticket", _visibility_scope(o.east_user), 1 << 20) == 102_400
        assert search._scope_end(db, "ticket", _visibility_scope(o.bureau_user), 1 << 20) == 0
    assert services.search_tickets(o.bureau_user, text="下水道", limit=50) == []


def test_words_the_scope_cannot_match_end_the_walk_with_the_same_ids(org_setup, db, monkeypatch):
    """Should return, for words no ticket holds, words only other departments' tickets hold, rare words deep down and
    common ones, in a district and for the centre, the ids the plain query (no windows: the GIN's whole answer
    sorted) gives, in its order; a word the district cannot match stops after its newest window (one EXISTS over
    the ids below, its own marks), not walking every window down to the table's bottom."""
    if not is_postgres(db):
        pytest.skip("PostgreSQL's id windows")
    o = org_setup
    for n, ticket_id in enumerate(range(1_000, 2_000_000, 37_000)):
        _ticket(o.east_street if n % 3 else o.west, wf.DISPATCHED, ticket_id=ticket_id, text="下水道堵塞扰民")
    for ticket_id in (5, 70_000):
        _ticket(o.east, wf.IN_PROGRESS, ticket_id=ticket_id, text="路灯不亮")
    _ticket(o.west, wf.DISPATCHED, ticket_id=1_500_000, text="占道经营")
    for ticket_id in range(2_100_000, 2_300_000, 40_000):  # a backlog not dispatched yet: the district's probe
        _ticket(None, wf.RECORDED, ticket_id=ticket_id, text="下水道堵塞", created_by=o.agent)
    monkeypatch.setattr(search, "FIRST_WINDOW", 4096)
    search.ensure_index("ticket", build=True)  # the plain query reads the GIN's column
    for user in (o.east_user, o.centre_user):
        scope = _visibility_scope(user)
        for query in ("噪声 扰民", "占道经营", "路灯", "下水道", "扰民 下水道", "无此词"):
            grams = search.query_grams(query)
            for mode, limit in itertools.product(("all", "any"), (1, 5, 300)):
                terms = "(" + (" & " if mode == "all" else " | ").join(f"'{g}'" for g in grams) + ")"
                plain = [row[0] for row in db.execute_sql(
                    f"SELECT t.id FROM ticket t WHERE {search.document('ticket')} @@ %s::tsquery "
                    f"ORDER BY t.id DESC LIMIT %s", (terms + (f" & ({scope})" if scope else ""), limit))]
                with _statements(db, monkeypatch) as seen:
                    got = search.candidate_ids("ticket", grams, limit, mode=mode, order="recent", scope=scope)
                assert got == plain, (user.operator_no, query, mode, limit)
                asked = [params for sql, params in seen if sql.startswith("WITH") and f"'{grams[0]}'" in params[0]]
                windows = [sql for sql, _params in seen if sql.startswith("SELECT t.id")]
                if not plain:  # nothing to find: asked once below the newest window, not 2,300,000 ids walked
                    assert len(asked) == 1 and len(windows) <= 2, (user.operator_no, query, mode, len(windows))
                elif mode == "all" and query == "路灯":  # ids 5 and 70,000: asked, answered yes, walked on
                    assert len(asked) == 1 and got == [70_000, 5][:limit]


def test_sqlite_scope_read_from_its_index(org_setup, db, monkeypatch):
    """Should check a scoped search's rule on SQLite from the scope's index (id and the rule's columns), not from
    each match's ticket row: the plan of the candidates' statement reads it covering."""
    if is_postgres():
        pytest.skip("PostgreSQL's GIN applies the scope (test_recent_candidates_across_windows)")
    o = org_setup
    _ticket(o.east, wf.DISPATCHED, text="下水道堵塞")
    statements = []
    execute = db.execute_sql
    monkeypatch.setattr(db, "execute_sql", lambda sql, params=None, *a, **k: (
        statements.append((sql, params)), execute(sql, params, *a, **k))[1])
    restrict, params = _visibility_sql(o.east_user)
    assert search.candidate_ids("ticket", ["下水"], 5, restrict_sql=restrict, restrict_params=params,
                                order="recent", scope=_visibility_scope(o.east_user))
    sql, params = next((sql, params) for sql, params in statements if "MATCH" in sql)
    plan = " / ".join(row[-1] for row in execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())
    assert "COVERING INDEX ticket_fts_scope" in plan, plan


@pytest.mark.parametrize("who", ["east_user", "east_street_user", "west_user", "bureau_user", "entry", "agent",
                                 "centre_user"])
def test_text_search_scope_is_the_visibility_rule(org_setup, clock, who):
    """Should find by text exactly the matching tickets the user may see (the GIN's marker lexemes on
    PostgreSQL agree with the SQL rule): held in the subtree, handed down by it, recorded by the user, the
    entry desk's machine-made ones."""
    o = org_setup
    made = [services.create_ticket("小区下水道堵塞", citizen_phone="13800000001", created_by=o.agent),
            services.create_ticket("下水道堵塞冒水", created_by=None)]
    for department in (o.east, o.west, o.bureau):
        made.append(services.dispatch(services.create_ticket(f"{department.name}下水道堵塞", created_by=o.agent),
                                      o.centre_user, department, clock=clock))
    made.append(services.transition(services.dispatch(services.create_ticket("街道下水道堵塞", created_by=o.agent),
                                                       o.centre_user, o.east, clock=clock),
                                     "sub_dispatch", o.east_user, department=o.east_street, clock=clock))
    user = getattr(o, who)
    visible = {t.id for t in services.visible_tickets(user)}
    expected = {t.id for t in made if t.id in visible}
    assert {t.id for t in services.search_tickets(user, text="下水道")} == expected
    user.active = False
    assert services.search_tickets(user, text="下水道") == []


def test_text_scorer_agrees_with_the_token_scorer():
    """Should rank a row from its text as the token-set scorer ranks its stored tokens."""
    texts = [("东湖路路灯不亮", "晚上十点以后整条路都是黑的，请尽快修复。", "东湖路12号"),
             ("WiFi信号差", "ＡＢＣ公司 12345 热线", "abc路"), ("噪音扰民", "夜间施工噪音扰民，多次反映未解决", ""),
             ("", "", ""), ("量子", "音量太大", "")]
    queries = ["路灯", "噪声 扰民", "噪音扰民", "wifi", "ｗｉｆｉ 信号", "abc", "12345热线", "路", "量子计算机", "公司"]
    for title, content, address in texts:
        for query in queries:
            grams = search.query_grams(query)
            tokens = set(search.index_grams(f"{title} {content} {address}"))
            assert search.text_scorer(query, grams)(title, content, address) == \
                search.scorer(query, grams)(tokens, title + content), (query, title)


def test_creation_draws_again_after_a_taken_number(org_setup, monkeypatch):
    """Should draw another number when the first is taken (no savepoint, no error), and reuse the citizen
    recorded meanwhile under the same phone."""
    o = org_setup
    first = services.create_ticket("路灯不亮", citizen_phone="13800000009", created_by=o.agent)
    draws = iter([first.number, first.number, "30000001"])
    monkeypatch.setattr(services, "generate_number", lambda: next(draws))
    second = services.create_ticket("井盖缺失", citizen_phone="13800000009", created_by=o.agent)
    assert second.number == "30000001" and second.id != first.id
    assert Ticket.get_by_id(second.id).content == "井盖缺失"
    assert second.citizen_id == first.citizen_id
    assert Citizen.select().where(Citizen.phone == "13800000009").count() == 1
    assert [t.id for t in services.search_tickets(o.centre_user, text="井盖")] == [second.id]


def test_migration_brings_the_search_index_to_its_layout(db, org_setup):
    """Should rebuild an existing database's full-text index in the current layout once (PostgreSQL: the GIN
    over the marker lexemes; SQLite: the FTS5 page size), the searches still finding what they found."""
    from core.migrations import SchemaMigration
    from hotline.schema import create_schema

    ticket = services.create_ticket("路灯不亮", created_by=org_setup.agent)
    step = "0010_search_index_layout"
    if is_postgres():
        db.execute_sql("DROP INDEX ticket_search_tsv")
        db.execute_sql("CREATE INDEX ticket_search_tsv ON ticket USING gin (search_tsv)")
    else:
        db.execute_sql("INSERT INTO ticket_fts(ticket_fts, rank) VALUES ('pgsz', 4050)")
    SchemaMigration.delete().where(SchemaMigration.name == step).execute()
    assert step in create_schema()
    assert step not in create_schema()
    if is_postgres():
        definition = db.execute_sql("SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                                    "AND indexname = 'ticket_search_tsv'").fetchone()[0]
        assert "array_to_tsvector" in definition
    else:
        assert db.execute_sql("SELECT v FROM ticket_fts_config WHERE k = 'pgsz'").fetchone()[0] == search.FTS_PAGE_SIZE
    assert [t.id for t in services.search_tickets(org_setup.centre_user, text="路灯")] == [ticket.id]


def test_migration_gives_the_gin_a_small_pending_list(db, org_setup):
    """Should give an existing PostgreSQL GIN index the options of a new one (a small pending list: every search
    reads it whole), its pending entries moved into the index, the searches still finding what they found."""
    from core.migrations import SchemaMigration
    from hotline.schema import create_schema

    if not is_postgres():
        pytest.skip("PostgreSQL's GIN option")

    def options():
        return sorted(db.execute_sql("SELECT reloptions FROM pg_class WHERE oid = 'ticket_search_tsv'::regclass")
                      .fetchone()[0] or [])

    wanted = sorted(option.replace(" ", "") for option in search.GIN_OPTIONS.split(","))
    first = services.create_ticket("路灯不亮", created_by=org_setup.agent)
    assert options() == wanted
    db.execute_sql("ALTER INDEX ticket_search_tsv RESET (fastupdate, gin_pending_list_limit)")  # PostgreSQL's own
    second = services.create_ticket("路灯又不亮", created_by=org_setup.agent)  # its entries in the pending list
    step = "0020_search_index_pending_list"
    SchemaMigration.delete().where(SchemaMigration.name == step).execute()
    assert step in create_schema()
    assert options() == wanted
    assert [t.id for t in services.search_tickets(org_setup.centre_user, text="路灯")] == [second.id, first.id]
