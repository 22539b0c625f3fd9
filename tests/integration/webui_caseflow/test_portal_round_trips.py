"""The public website's round trips (issue 11's aims at 1,000,000 tickets): on PostgreSQL every statement is a wait
for the server, under load most of a submission's, a look-up's or a filtered list's time (bench/portal.py). What
each of them sends is pinned here, on both databases: the category and region trees are not read per request, the
submission's limits are one statement, its web case is written before the ticket's shared day counts (held from
their upsert to the commit), and the look-up reads the case in one statement."""
from __future__ import annotations

import datetime as dt
import re
from contextlib import contextmanager

import pytest

from caseflow import org, portal
from caseflow.models import Category, Citizen, Ticket, WebCase
from channels.models import Message
from core.db import is_postgres
from tests.conftest import TEST_SECRET_KEY
from tests.integration.caseflow.test_create_statements import counted  # every statement's text
from webui.models import AuditLog


@pytest.fixture(autouse=True)
def known_captcha(monkeypatch):
    import webui.blueprints.portal as portal_bp

    monkeypatch.setattr(portal_bp, "CAPTCHA_ALPHABET", "A")


def _reads(seen: list[str], table: str) -> list[str]:
    seen = [" ".join(str(s).split()) for s in seen]
    return [s for s in seen if s.upper().startswith("SELECT") and re.search(rf'FROM\s+"{table}"', s)]


def _form(client, **overrides) -> dict:
    client.get("/captcha.png")
    data = {"type": "complaint", "content": "幸福小区门口夜间施工噪音很大。", "name": "王小明", "phone": "13700001111",
            "reply_by": "phone", "consent": "1", "captcha": "AAAAA", "csrf_token": client.csrf_token()}
    return data | overrides


@contextmanager
def commits_counted(database):
    """Every statement with whether it ran inside a transaction, and the transactions' commits: a write outside
    one is a commit of its own (autocommit), each a wait for PostgreSQL's WAL flush."""
    seen: list[tuple[str, bool]] = []
    committed: list[bool] = []
    kind = type(database)
    execute, commit = kind.execute_sql, kind.commit

    def execute_sql(self, sql, *args, **kwargs):
        seen.append((" ".join(str(sql).split()), self.in_transaction()))
        return execute(self, sql, *args, **kwargs)

    def counted_commit(self, *args, **kwargs):
        committed.append(True)
        return commit(self, *args, **kwargs)

    kind.execute_sql, kind.commit = execute_sql, counted_commit
    try:
        yield seen, committed
    finally:
        kind.execute_sql, kind.commit = execute, commit


WRITTEN = ("ticket_history", "ticket_day_count", "ticket", "web_case", "audit_log", "citizen", "message")


@pytest.fixture
def receipts_connected(tmp_path):
    """The receipt writers connected as a web worker connects them (hotline.worker: channels.receipts.connect)."""
    from caseflow import pins
    from channels import receipts
    from core.config import load_config

    connected = receipts.connect(load_config({"mode": "test", "var_dir": str(tmp_path / "var"),
                                              "secret_key": TEST_SECRET_KEY}))
    yield connected
    pins.disconnect_receipt(connected)


def _written(statement: str) -> list[str]:
    """The tables a write statement writes, in its order (PostgreSQL's new ticket is one WITH of several)."""
    inserts = re.findall(r'(?:INSERT INTO|UPDATE)\s+"(\w+)"', statement, re.IGNORECASE)
    return [t for t in inserts if t in WRITTEN] if re.match(r"(WITH|INSERT|UPDATE)\b", statement, re.I) else []


def test_a_submission_commits_once_and_writes_its_web_case_before_the_day_counts(db, client, world,
                                                                                 receipts_connected):
    """Should file a web case with no category or region read (the kept trees), its limits asked in one
    statement, the web case, the audit row and the SMS receipt inserted before the ticket's day counts, which
    come last, and one commit, with the receipt writers connected as in production. On PostgreSQL a submission
    without files is 3 round trips, with no savepoint: 2 reads and one statement writing the citizen's profile
    (made, or its empty fields filled: no read before it), the ticket, its history, the web case, the audit row,
    the receipt (unless the number opted out: its condition in the statement, no read before it) and the day
    counts, atomic with no BEGIN or COMMIT (12 with the receipt queued in the ticket's
    transaction: BEGIN, the statement, two savepoints and their releases, the two reads, the receipt's INSERT,
    the day counts, COMMIT). SQLite writes the same rows in a savepoint of the ticket's transaction."""
    street = org.create_region("R1", "东区")
    client.get("/write")  # the trees are read once here and kept
    data = _form(client, content="第一封信", category=str(world.noise.id), region=str(street.id))
    with commits_counted(db) as (seen, committed):
        response = client.post("/write", data=data)
    assert response.status_code == 200, response.get_data(as_text=True)
    statements = [s for s, _ in seen]
    assert bool([s for s in statements if "SAVEPOINT" in s.upper()]) == (not is_postgres()), statements
    assert not _reads(statements, "category") and not _reads(statements, "region"), statements
    assert len(_reads(statements, "web_case")) == 1, statements  # duplicate, address and phone limits together
    writes = [(_written(s), inside) for s, inside in seen if _written(s)]
    order = [table for tables, _ in writes for table in tables]
    assert order == ["citizen", "ticket", "ticket_history", "web_case", "audit_log", "message",
                     "ticket_day_count"], order
    outside = [tables for tables, inside in writes if not inside]  # each its own commit
    if is_postgres():
        assert writes == [(order, False)] and not committed, (writes, committed)  # one statement, its own commit
        round_trips = len(statements) + 2 * len(committed)  # psycopg2's BEGIN and the COMMIT are round trips
        assert round_trips == 3, statements
    else:  # SQLite: the profile made in the ticket's transaction, one commit for all
        assert outside == [] and len(committed) == 1, (writes, committed)
    ticket = Ticket.get(Ticket.content == "第一封信")
    assert (ticket.category_id, ticket.region_id) == (world.noise.id, street.id)
    assert WebCase.get(WebCase.ticket == ticket).consent
    assert ticket.citizen.phone == "13700001111"
    assert AuditLog.get((AuditLog.action == "portal_submit") & (AuditLog.obj_id == ticket.number))
    (receipt,) = Message.select().where(Message.ticket == ticket)
    assert receipt.purpose == "receipt" and receipt.address == "13700001111" and receipt.status == "queued"


def test_a_refused_submission_is_audited_and_leaves_nothing(db, client, world, monkeypatch):
    """Should audit a submission refused inside the ticket's transaction (its picture code used already: the
    web case's unique key), leaving no ticket, no audit row of it and no profile (written in the ticket's
    statement on PostgreSQL, in its transaction on SQLite)."""
    import webui.blueprints.portal as portal_bp

    assert client.post("/write", data=_form(client, content="第一封信")).status_code == 200
    used = WebCase.get().captcha_id
    monkeypatch.setattr(portal_bp, "_check_captcha", lambda answer: used)  # the same picture code again
    response = client.post("/write", data=_form(client, content="第二封信", phone="13700002222"))
    assert response.status_code == 400, response.get_data(as_text=True)
    assert not Ticket.select().where(Ticket.content == "第二封信").exists()
    assert not Citizen.select().where(Citizen.phone == "13700002222").exists()
    assert [a.action for a in AuditLog.select().order_by(AuditLog.id) if a.action.startswith("portal_")] == [
        "portal_submit", "portal_refused"]


def test_the_limits_in_one_statement_still_refuse(db, client, world, app):
    """Should still refuse the same text twice (409), an address past its limit and a phone past its limit
    (429), each count stopping at its limit."""
    app.config.update(HOTLINE_PORTAL_PER_ADDRESS=3, HOTLINE_PORTAL_PER_PHONE=2)
    assert client.post("/write", data=_form(client, content="诉求一")).status_code == 200
    assert client.post("/write", data=_form(client, content="诉求一")).status_code == 409
    assert client.post("/write", data=_form(client, content="诉求二")).status_code == 200
    assert client.post("/write", data=_form(client, content="诉求三")).status_code == 429  # the phone's 2
    assert client.post("/write", data=_form(client, content="诉求三", phone="13700002222")).status_code == 200
    assert client.post("/write", data=_form(client, content="诉求四", phone="13700003333")).status_code == 429
    assert WebCase.select().count() == 3


def test_a_chosen_category_must_still_be_active_and_known(db, client, world):
    """Should refuse an unknown or inactive category from the kept tree, as the form's check did."""
    hidden = org.create_category("OLD", "旧分类")
    Category.update(active=False).where(Category.id == hidden.id).execute()
    for value in (str(hidden.id), "999999", "x"):
        response = client.post("/write", data=_form(client, category=value))
        assert response.status_code == 400 and "category" in response.get_data(as_text=True), value
    assert WebCase.select().count() == 0


def test_a_new_category_on_the_admin_page_shows_on_the_form_at_once(app, client, world, login):
    """Should show a category the administrator adds on the write-in form at once (the kept trees are read
    again), and take it in a submission."""
    assert "新增分类" not in client.get("/write").get_data(as_text=True)
    admin = login(world.admin)
    assert admin.post_form("/admin/org/categories", {"what": "category", "code": "NEW", "name": "新增分类"}
                           ).status_code == 303
    assert "新增分类" in client.get("/write").get_data(as_text=True)
    added = Category.get(Category.code == "NEW")
    assert client.post("/write", data=_form(client, category=str(added.id))).status_code == 200


def test_a_filtered_list_reads_no_tree(db, client, world):
    """Should answer a list filtered by category and region from the kept trees: no category or region read,
    the same cases as the trees' own queries find (a district finds its streets' cases)."""
    district = org.create_region("R1", "东区")
    street = org.create_region("R11", "东区一街", district)
    child = org.create_category("NOISE1", "施工噪音", world.noise)
    client.get("/cases")
    url = f"/cases?category={world.noise.id}&region={district.id}"
    with counted(db) as seen:
        response = client.get(url)
    assert response.status_code == 200
    assert not _reads(seen, "category") and not _reads(seen, "region"), seen
    pickers = portal.Pickers()
    assert pickers.category_ids(world.noise.id) == org.category_subtree_ids(world.noise)
    assert child.id in pickers.category_ids(world.noise.id) and pickers.region_children[district.id] == [street.id]
    assert [(c.id, d) for c, d in pickers.category_tree] == [(c.id, d) for c, d in org.category_tree() if c.active]


def test_a_filtered_list_is_two_statements(db, client, world):
    """Should count a filtered list and read its page's rows (its ids inside) in two statements on PostgreSQL,
    each carrying its planner settings, with no BEGIN or COMMIT (six round trips before); the page in the
    list's order on both databases."""
    from tests.integration.caseflow.test_public_indexes import _published

    shown = _published(3, dt.datetime(2026, 1, 1))
    client.get("/cases")
    with commits_counted(db) as (seen, committed):
        response = client.get("/cases?type=complaint")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert [page.index(t.number) for t in reversed(shown)] == sorted(page.index(t.number) for t in shown)
    if is_postgres():
        listed = [s for s, _inside in seen if '"ticket"' in s]
        assert len(listed) == 2 and "COUNT(*)" in listed[0] and "= ANY(ARRAY(SELECT" in listed[1], listed
        assert all(s.startswith("SET LOCAL max_parallel_workers_per_gather = 0;") for s in listed), listed
        assert not [s for s, _inside in seen if s.upper() == "BEGIN"] and not committed, (seen, committed)


def test_a_look_up_reads_the_case_in_one_statement(db, world):
    """Should find a case by number and code (the web code or the ticket's PIN) in one statement, and answer
    None for a wrong code or an unknown number."""
    sub = portal.Submission(type="complaint", content="路灯不亮", name="王", phone="13700001111")
    key = TEST_SECRET_KEY.encode()  # the product's key: the web codes' and the tickets' PINs' (caseflow.pins)
    ticket, code = portal.submit(sub, ip="10.0.0.1", captcha_id="c1", root=None, key=key)
    with counted(db) as seen:
        found = portal.find_case(ticket.number, code, key)
    assert found is not None and found.id == ticket.id and len(seen) == 1, seen
    assert portal.find_case(ticket.number, ticket.plain_pin, key).id == ticket.id
    assert portal.find_case(ticket.number, "WRONGCODE1", key) is None
    assert portal.find_case(ticket.number, code, b"j" * 40) is None  # the code's hash is keyed
    assert portal.find_case("99999999", code, key) is None
    assert portal.find_case(world.east_ticket.number, code, key) is None
    assert portal.find_case(world.east_ticket.number, world.east_pin, key).id == world.east_ticket.id


def test_a_look_up_reads_its_throttles_in_one_statement(db, client, world, app):
    """Should ask the wrong look-ups of the address and of the number in one statement, and still lock the
    number after its limit of wrong codes (429) while another number is still looked up."""
    app.config.update(HOTLINE_PORTAL_LOOKUP_LIMIT=3, HOTLINE_PORTAL_LOOKUP_LIMIT_PER_IP=100)
    number, pin = world.east_ticket.number, world.east_pin
    token = client.csrf_token()
    with counted(db) as seen:
        assert client.post("/follow", data={"number": number, "code": pin, "csrf_token": token}).status_code == 303
    assert len(_reads(seen, "audit_log")) == 1, seen
    for _ in range(3):
        assert client.post("/follow", data={"number": number, "code": "WRONG", "csrf_token": token}).status_code == 404
    assert client.post("/follow", data={"number": number, "code": pin, "csrf_token": token}).status_code == 429
    other = app.test_client()
    west = world.west_ticket
    assert other.post("/follow", data={"number": west.number, "code": world.west_pin,
                                       "csrf_token": other.csrf_token()}).status_code == 303


def test_the_list_filters_are_rendered_once_per_language(app, client, world, login, monkeypatch):
    """Should render the published list's filter options once per language and keep them (the chosen ones
    selected on each page, HTML in a name escaped), and render them again at once after a category is added on
    the administrator's page."""
    import webui.blueprints.portal as portal_bp

    org.create_category("ESC", "<b>噪音</b>")
    rendered = []
    render = portal_bp._render_filter_options
    monkeypatch.setattr(portal_bp, "_render_filter_options", lambda: rendered.append(1) or render())
    first = client.get("/cases").get_data(as_text=True)
    page = client.get(f"/cases?type=help&category={world.noise.id}").get_data(as_text=True)
    assert len(rendered) == 1
    assert '<option value="help" selected>' in page and f'<option value="{world.noise.id}" selected>' in page
    assert " selected>" not in first and "&lt;b&gt;噪音&lt;/b&gt;" in first and "<b>噪音" not in first
    client.get("/cases?lang=en")
    assert len(rendered) == 2  # another language
    admin = login(world.admin)
    assert admin.post_form("/admin/org/categories", {"what": "category", "code": "NEW", "name": "新增分类"}
                           ).status_code == 303
    assert "新增分类" in client.get("/cases").get_data(as_text=True)


def test_the_write_form_reuses_the_kept_tree_options(app, client, world, monkeypatch):
    """Should render the write form's category and region options from the list filters' kept HTML (rendered
    once per language, not ~100 options a form), the ones a refused form chose selected again, a name escaped."""
    import webui.blueprints.portal as portal_bp

    org.create_category("ESC", "<b>噪音</b>")
    region = org.create_region("R1", "东城区")
    rendered = []
    render = portal_bp._render_filter_options
    monkeypatch.setattr(portal_bp, "_render_filter_options", lambda: rendered.append(1) or render())
    first = client.get("/write").get_data(as_text=True)
    assert f'<option value="{world.noise.id}">' in first and " selected>" not in first
    assert "&lt;b&gt;噪音&lt;/b&gt;" in first and "<b>噪音" not in first
    client.get("/captcha.png")
    refused = client.post("/write", data={"type": "complaint", "content": "", "category": str(world.noise.id),
                                          "region": str(region.id), "reply_by": "phone", "captcha": "AAAAA",
                                          "csrf_token": client.csrf_token()})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert f'<option value="{world.noise.id}" selected>' in page
    assert f'<option value="{region.id}" selected>' in page
    assert len(rendered) == 1
