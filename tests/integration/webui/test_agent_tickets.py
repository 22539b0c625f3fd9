"""The agent's ticket list: order, masking, paging, search and inert ticket text."""
from __future__ import annotations

import datetime as dt
import re

from caseflow.models import Department
from webui.app import mask_name
from webui.blueprints.agent_tickets import can_see_contact

from .conftest import PASSWORD


def numbers_on(page: str) -> list[str]:
    return re.findall(r'<td class="number">(?:<a href="[^"]*">)?(\d{8})', page)


def logged_in(app, make_user, operator_no="5001", roles=("agent",)):
    make_user(operator_no, roles=roles)
    client = app.test_client()
    client.login(operator_no, PASSWORD)
    return client


def test_newest_first_with_labels(app, make_user, make_ticket):
    """Should list tickets newest first with Chinese type, channel and status labels."""
    base = dt.datetime(2026, 3, 1, 2, 0)
    make_ticket(number="20000001", created_at=base, type="consult", channel="sms")
    make_ticket(number="20000002", created_at=base + dt.timedelta(hours=1), type="complaint", channel="phone")
    client = logged_in(app, make_user)
    page = client.get("/agent/tickets").get_data(as_text=True)
    assert numbers_on(page) == ["20000002", "20000001"]
    assert "投诉" in page and "咨询" in page and "短信" in page and "记录待分配" in page


def test_phone_and_name_are_masked_for_agents(app, make_user, make_ticket):
    """Should never show an agent the full phone number or name in the list."""
    make_ticket(citizen_phone="13912345678", citizen_name="欧阳娜娜")
    make_ticket(citizen_phone="13800000000", anonymous=True, citizen_name="匿名者")
    page = logged_in(app, make_user).get("/agent/tickets").get_data(as_text=True)
    assert "13912345678" not in page and "139****5678" in page
    assert "欧阳娜娜" not in page and mask_name("欧阳娜娜") in page and "*" in mask_name("欧阳娜娜")
    assert "匿名者" not in page and "匿名" in page


def test_pagination(app, make_user, make_ticket):
    """Should page by the configured size, clamp a page past the end, and refuse a non-number."""
    app.config["HOTLINE_PAGE_SIZE"] = 2
    base = dt.datetime(2026, 3, 1)
    for i in range(5):
        make_ticket(number=f"3000000{i}", created_at=base + dt.timedelta(minutes=i))
    client = logged_in(app, make_user)
    first = client.get("/agent/tickets").get_data(as_text=True)
    assert numbers_on(first) == ["30000004", "30000003"] and "第 1 / 3 页，共 5 件" in first
    assert 'href="/agent/tickets?page=2"' in first
    assert numbers_on(client.get("/agent/tickets?page=3").get_data(as_text=True)) == ["30000000"]
    assert numbers_on(client.get("/agent/tickets?page=99").get_data(as_text=True)) == ["30000000"]
    for bad in ("abc", "0", "-1", "1e3", "9" * 30):
        response = client.get(f"/agent/tickets?page={bad}")
        assert response.status_code == 400 and "页码" in response.get_data(as_text=True), bad


def test_search_by_number_or_phone_and_mine(app, make_user, make_ticket):
    """Should find a ticket by its acceptance number or the caller's phone, and filter to my own tickets."""
    client = logged_in(app, make_user)
    from caseflow.models import User

    me = User.get(User.operator_no == "5001")
    make_ticket(number="40000001", citizen_phone="13700000001")
    make_ticket(number="40000002", citizen_phone="13700000002", created_by=me)
    assert numbers_on(client.get("/agent/tickets?q=40000001").get_data(as_text=True)) == ["40000001"]
    assert numbers_on(client.get("/agent/tickets?q=13700000002").get_data(as_text=True)) == ["40000002"]
    assert numbers_on(client.get("/agent/tickets?mine=1").get_data(as_text=True)) == ["40000002"]
    empty = client.get("/agent/tickets?q=99999999").get_data(as_text=True)
    assert numbers_on(empty) == [] and "没有符合条件的工单" in empty
    assert client.get("/agent/tickets?q=" + "x" * 10_000).status_code == 200


def test_script_in_ticket_content_is_inert(app, make_user, make_ticket):
    """Should escape HTML and script in ticket text and names so they render as text."""
    make_ticket(title="", content='<script>alert("x")</script><img src=x onerror=alert(1)>',
                citizen_name="<b>坏人</b>")
    make_ticket(title='"><svg onload=alert(2)>')
    page = logged_in(app, make_user).get("/agent/tickets").get_data(as_text=True)
    assert "<script>alert" not in page and "<img src=x" not in page and "<svg" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "&lt;b&gt;" not in page or "<b>坏人</b>" not in page
    assert "&#34;&gt;&lt;svg onload=alert(2)&gt;" in page


def test_empty_list(app, make_user):
    """Should say there are no tickets yet."""
    assert "暂无工单" in logged_in(app, make_user).get("/agent/tickets").get_data(as_text=True)


def test_detail_link_only_when_the_page_exists(make_app, make_user, make_ticket):
    """Should link the acceptance number to the case engine's /tickets/<number> page, which opens with the
    same status label as the list; an app without that page shows the number unlinked."""
    from caseflow.workflow import STATUS_LABELS

    make_ticket(number="50000001")
    make_user("5002")
    full = make_app().test_client()
    full.login("5002", PASSWORD)
    listing = full.get("/agent/tickets").get_data(as_text=True)
    assert 'href="/tickets/50000001"' in listing
    detail = full.get("/tickets/50000001")
    text = detail.get_data(as_text=True)
    assert detail.status_code == 200 and "50000001" in text
    assert STATUS_LABELS["recorded"][0] in listing and STATUS_LABELS["recorded"][0] in text
    foundation = ["webui.blueprints.health", "webui.auth", "webui.blueprints.home", "webui.blueprints.agent_tickets"]
    plain = make_app(only_blueprints=foundation).test_client()
    plain.login("5002", PASSWORD)
    page = plain.get("/agent/tickets").get_data(as_text=True)
    assert 'href="/tickets/50000001"' not in page and "50000001" in page


def test_contact_visible_to_handling_department_only(make_user, make_ticket):
    """Should show contact details to the handling department and those above it, not to others."""
    district = Department.create(code="D1", name="某区", level=2, path="/1/")
    street = Department.create(code="S1", name="某街道", level=3, parent=district, path="/1/2/")
    other = Department.create(code="D2", name="另一区", level=2, path="/3/")
    ticket = make_ticket(department=street)
    assert can_see_contact(make_user("5101", roles=("dept",), department=street), ticket)
    assert can_see_contact(make_user("5102", roles=("dept_leader",), department=district), ticket)
    assert not can_see_contact(make_user("5103", roles=("dept",), department=other), ticket)
    assert not can_see_contact(make_user("5104", roles=("agent",), department=street), ticket)


def test_unmasked_contacts_are_audited(app, make_user, make_ticket):
    """Should record in the audit log which tickets' full contact details a user was shown."""
    from webui.models import AuditLog

    make_ticket(number="60000001", citizen_phone="13611112222")
    make_ticket(number="60000002", citizen_phone="13633334444")
    lead = logged_in(app, make_user, "5201", roles=("team_lead",))
    agent = logged_in(app, make_user, "5202", roles=("agent",))
    lead_page = lead.get("/agent/tickets").get_data(as_text=True)
    agent.get("/agent/tickets")
    rows = list(AuditLog.select().where(AuditLog.action == "view_contact"))
    assert "13611112222" in lead_page  # caseflow.roles: a team lead holds citizen.full_contact
    assert [r.operator_no for r in rows] == ["5201"]
    assert "60000001" in rows[0].detail and "60000002" in rows[0].detail
