"""The case-engine web pages: department isolation on every route, roles, CSRF, masking, inert HTML, the
closed loop through forms, stale forms, the entry desk, knowledge base and organisation admin."""
from __future__ import annotations

import hashlib
import io
import re

import pytest

from caseflow import attachments, services
from caseflow import workflow as wf
from caseflow.models import Attachment, Department, KnowledgeItem, Ticket, User
from core.calendar import CalendarDay
from tests.pin_check import pin_in


def ticket_routes(t, file_id=0):
    """Every route that names a ticket: (method, path, form)."""
    return [
        ("GET", f"/tickets/{t.number}", None),
        ("POST", f"/tickets/{t.number}/act", {"event": "accept", "version": str(t.version)}),
        ("POST", f"/tickets/{t.number}/act", {"event": "return", "reason": "x"}),
        ("POST", f"/tickets/{t.number}/note", {"note": "偷看"}),
        ("POST", f"/tickets/{t.number}/attach", {"file": (io.BytesIO(b"data"), "a.txt")}),
        ("GET", f"/tickets/{t.number}/files/{file_id}", None),
    ]


def _send(client, method, path, form):
    if method == "GET":
        return client.get(path)
    form = dict(form)
    if "file" in form:
        form["file"] = (io.BytesIO(b"data"), "a.txt")  # a stream can be sent only once
    return client.post(path, data={**form, "csrf_token": client.csrf_token()}, content_type="multipart/form-data")


@pytest.mark.parametrize("index", range(6))
def test_every_ticket_route_isolated(app, world, login, tmp_path, index):
    """Should answer 404 on every ticket route to a department user outside the ticket's subtree, and
    leave the ticket untouched."""
    t = world.east_ticket
    row = attachments.add_attachment(t, app.extensions["hotline"].config.attachments_dir, b"secret", "s.txt",
                                     actor=world.east_user)
    t = Ticket.get_by_id(t.id)
    method, path, form = ticket_routes(t, row.id)[index]
    for outsider in (world.west_user, world.street_user):
        response = _send(login(outsider), method, path, form)
        assert response.status_code == 404, (outsider.operator_no, path, response.status_code)
    stored = Ticket.get_by_id(t.id)
    assert (stored.status, stored.version) == (wf.DISPATCHED, t.version)
    assert [h.action for h in services.timeline(t)] == ["create", "dispatch", "attach"]


def test_inside_subtree_allowed(world, login):
    """Should open the ticket to its own department with the full contact and the accept action."""
    page = login(world.east_user).get(f"/tickets/{world.east_ticket.number}").get_data(as_text=True)
    assert "13812345678" in page and "张三丰" in page and 'data-event="accept"' in page


@pytest.mark.parametrize("path,allowed", [
    ("/centre/", {"centre_user", "leader"}), ("/dept/", {"east_user", "west_user", "street_user"}),
    ("/entry/", {"entry", "centre_user", "leader"}), ("/admin/org/", {"admin"}),
    ("/admin/org/users", {"admin"}), ("/admin/org/roles", {"admin"}), ("/admin/org/calendar", {"admin"}),
    ("/kb/", {"agent", "centre_user", "leader", "admin", "entry", "east_user", "west_user", "street_user"}),
])
def test_role_checks(world, login, app, path, allowed):
    """Should open each desk only to its roles (403 for others, login redirect for anonymous)."""
    for name in ("agent", "centre_user", "leader", "admin", "entry", "east_user", "west_user", "street_user"):
        code = login(getattr(world, name)).get(path).status_code
        assert (code == 200) == (name in allowed), (name, path, code)
    anonymous = app.test_client().get(path)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_csrf_required(world, login):
    """Should refuse an action posted without the CSRF token."""
    client = login(world.east_user)
    response = client.post(f"/tickets/{world.east_ticket.number}/act", data={"event": "accept"})
    assert response.status_code == 400
    assert Ticket.get_by_id(world.east_ticket.id).status == wf.DISPATCHED


def test_masking_for_roles(world, login):
    """Should mask the citizen for roles that do not need the contact, and show it to the centre."""
    number = world.east_ticket.number
    agent_page = login(world.agent).get(f"/tickets/{number}").get_data(as_text=True)
    assert "138****5678" in agent_page and "13812345678" not in agent_page and "张**" in agent_page
    centre_page = login(world.centre_user).get(f"/tickets/{number}").get_data(as_text=True)
    assert "13812345678" in centre_page


def test_html_rendered_inert(world, login, clock):
    """Should show script and HTML from a citizen as text, never as markup."""
    t = services.create_ticket('<script>alert("x")</script><img src=x onerror=alert(1)>',
                               citizen_name="<b>王</b>", created_by=world.agent, clock=clock)
    page = login(world.centre_user).get(f"/tickets/{t.number}").get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "<img src=x" not in page and "<b>王</b>" not in page


def act(client, number, event, **fields):
    t = Ticket.get(Ticket.number == number)
    return client.post_form(f"/tickets/{number}/act", {"event": event, "version": str(t.version), **fields})


def test_closed_loop_through_forms(world, login, clock):
    """Should take a ticket from recorded to closed through the pages: dispatch, accept, reply, approve,
    call-back, close, each visible in the timeline."""
    t = services.create_ticket("噪音扰民投诉", type="complaint", category=world.noise, citizen_phone="13800000009",
                               created_by=world.agent, clock=clock)
    centre, dept = login(world.centre_user), login(world.east_user)
    desk = centre.get("/centre/?q=to_dispatch").get_data(as_text=True)
    assert t.number in desk and "★ 东区" in desk  # suggested from the category
    assert act(centre, t.number, "dispatch", department=str(world.east.id)).status_code == 303
    assert t.number in dept.get("/dept/").get_data(as_text=True)
    act(dept, t.number, "accept")
    act(dept, t.number, "reply", reply="已责令停工。")
    assert t.number in centre.get("/centre/?q=to_review").get_data(as_text=True)
    act(centre, t.number, "approve")
    act(centre, t.number, "call_back", satisfaction="satisfied")
    act(centre, t.number, "close")
    stored = Ticket.get_by_id(t.id)
    assert stored.status == wf.CLOSED and stored.satisfaction == "satisfied"
    page = centre.get(f"/tickets/{t.number}").get_data(as_text=True)
    timeline = page.split('data-testid="timeline"')[1]
    for word in ("派单", "签收", "答复", "审核通过", "回访", "办结"):
        assert word in timeline


def test_refusals_shown_clearly(world, login):
    """Should show why a transition is refused (missing reason, stale form, double post) and change nothing."""
    number = world.east_ticket.number
    dept = login(world.east_user)
    page = dept.post_form(f"/tickets/{number}/act", {"event": "return", "version": "1"},
                          follow_redirects=True).get_data(as_text=True)
    assert "理由不能为空" in page
    old_version = Ticket.get(Ticket.number == number).version
    act(dept, number, "accept")
    again = dept.post_form(f"/tickets/{number}/act", {"event": "accept", "version": str(old_version)},
                           follow_redirects=True).get_data(as_text=True)
    assert "已提交过" in again
    stale = login(world.centre_user).post_form(
        f"/tickets/{number}/act", {"event": "remind", "version": str(old_version)}, follow_redirects=True)
    assert stale.status_code == 200  # remind is passive: a stale page may still chase
    assert [h.action for h in services.timeline(world.east_ticket)].count("accept") == 1


def test_department_cannot_post_centre_action(world, login):
    """Should answer 403 when a department user posts a centre action on its own ticket."""
    response = act(login(world.east_user), world.east_ticket.number, "supervise")
    assert response.status_code == 403
    assert not Ticket.get_by_id(world.east_ticket.id).supervised


def test_search_scoped_and_validated(world, login):
    """Should search within the subtree and report bad dates clearly."""
    west = login(world.west_user)
    page = west.get("/tickets/search?phone=13812345678").get_data(as_text=True)
    assert world.east_ticket.number not in page
    page = login(world.centre_user).get("/tickets/search?text=噪声 扰民").get_data(as_text=True)
    assert world.east_ticket.number in page
    bad = login(world.centre_user).get("/tickets/search?date_from=tomorrow").get_data(as_text=True)
    assert "YYYY-MM-DD" in bad


def test_attachment_upload_and_download(world, login):
    """Should store an uploaded reply file with its sha256 and serve it back to the department."""
    dept = login(world.east_user)
    data = b"%PDF-1.4 reply letter"
    dept.post(f"/tickets/{world.east_ticket.number}/attach",
              data={"file": (io.BytesIO(data), "回复函.pdf"), "csrf_token": dept.csrf_token()},
              content_type="multipart/form-data")
    row = Attachment.get()
    assert row.sha256 == hashlib.sha256(data).hexdigest() and row.kind == "reply"
    response = dept.get(f"/tickets/{world.east_ticket.number}/files/{row.id}")
    assert response.status_code == 200 and response.data == data
    assert dept.get(f"/tickets/{world.west_ticket.number}/files/{row.id}").status_code == 404


def test_entry_desk_records_letter(world, login):
    """Should turn a letter with a scan into a ticket and tell the clerk its number and PIN."""
    clerk = login(world.entry)
    response = clerk.post("/entry/", data={
        "csrf_token": clerk.csrf_token(), "channel": "letter", "type": "suggestion", "urgency": "normal",
        "reply_by": "letter", "citizen_name": "冯老师", "citizen_address": "西区光明路12号",
        "content": "建议增加公交线路", "category": str(world.noise.id),
        "files": (io.BytesIO(b"scan"), "letter.jpg")}, content_type="multipart/form-data", follow_redirects=True)
    page = response.get_data(as_text=True)
    t = Ticket.get(Ticket.content == "建议增加公交线路")
    assert t.channel == "letter" and t.created_by_id == world.entry.id
    shown = re.search(r"查询密码 (\d{6})", page)  # shown once to give the citizen: the ticket holds only its hash
    assert t.number in page and shown and pin_in(shown.group(1), t)
    assert Attachment.get(Attachment.ticket == t).kind == "letter"
    empty = clerk.post_form("/entry/", {"channel": "letter", "content": "  "})
    assert empty.status_code == 400 and "不能为空" in empty.get_data(as_text=True)


def test_entry_completes_ivr_ticket(world, login, clock):
    """Should let the clerk complete a machine-made ticket before dispatch."""
    t = services.create_ticket("IVR录音，请收听后补录", actor_label="ivr", citizen_phone="13912345678", clock=clock)
    clerk = login(world.entry)
    assert t.number in clerk.get("/entry/").get_data(as_text=True)
    clerk.post_form(f"/entry/{t.number}/edit", {"title": "小区停水", "content": "小区停水三天", "type": "help",
                                                "urgency": "urgent", "reply_by": "phone", "version": "0"})
    stored = Ticket.get_by_id(t.id)
    assert (stored.title, stored.type, stored.urgency) == ("小区停水", "help", "urgent")


def test_knowledge_pages(world, login, clock):
    """Should search the knowledge base in Chinese, count views, and let editors add items."""
    from caseflow import knowledge

    item = knowledge.create_item("噪音扰民处理", "由属地街道处理", review_state="approved", clock=clock)
    agent = login(world.agent)
    page = agent.get("/kb/?q=噪声 扰民").get_data(as_text=True)
    assert "噪音扰民处理" in page
    agent.get(f"/kb/{item.id}")
    assert KnowledgeItem.get_by_id(item.id).views == 1
    assert agent.post_form("/kb/new", {"title": "x"}).status_code == 403
    centre = login(world.centre_user)
    centre.post_form("/kb/new", {"title": "新政策", "content": "内容"})
    assert KnowledgeItem.select().where(KnowledgeItem.title == "新政策").exists()
    assert centre.get("/kb/search.json?q=噪声").get_json()[0]["title"] == "噪音扰民处理"


def test_admin_org_pages(world, login):
    """Should create a department and a user, edit role permissions and the calendar, refuse bad input."""
    admin = login(world.admin)
    admin.post_form("/admin/org/", {"code": "E2", "name": "东区二街道", "parent": str(world.east.id)})
    e2 = Department.get(Department.code == "E2")
    assert e2.level == 3 and e2.path.startswith(world.east.path)
    page = admin.post_form("/admin/org/", {"code": "X", "name": "四级", "parent": str(e2.id)},
                           follow_redirects=True).get_data(as_text=True)
    assert "部门最多三级" in page and "at most three levels" not in page  # the user's language only
    admin.post_form("/admin/org/users", {"operator_no": "7201", "name": "新人", "password": "long-enough-1",
                                          "roles": ["dept"], "department": str(e2.id), "extension": "1050"})
    new = User.get(User.operator_no == "7201")
    assert new.department_id == e2.id and new.role_set == {"dept"}
    page = admin.post_form("/admin/org/users", {"operator_no": "7201", "name": "重复", "password": "long-enough-1"},
                           follow_redirects=True).get_data(as_text=True)
    assert "工号 7201 已存在" in page
    admin.post_form("/admin/org/roles", {"role": "entry", "permissions": ["ticket.create", "kb.view"]})
    from caseflow.roles import role_permissions
    assert role_permissions("entry") == {"ticket.create", "kb.view"}
    admin.post_form("/admin/org/calendar", {"what": "day", "day": "2026-10-01", "kind": "holiday", "name": "国庆"})
    assert CalendarDay.get().name == "国庆"
    page = admin.post_form("/admin/org/calendar", {"what": "day", "day": "someday", "kind": "holiday"},
                           follow_redirects=True).get_data(as_text=True)
    assert "YYYY-MM-DD" in page
    own = admin.post_form(f"/admin/org/users/{world.admin.id}", {"name": "管理员", "roles": ["agent"], "active": "1"},
                          follow_redirects=True).get_data(as_text=True)
    assert "不能取消自己的管理员权限" in own


def test_desks_show_overdue_first(world, login, clock):
    """Should show overdue work at once when the department opens its workbench."""
    from caseflow import jobs

    clock.advance(days=30)
    jobs.mark_overdue(clock)
    page = login(world.east_user).get("/dept/").get_data(as_text=True)
    alert = page.split('data-testid="overdue-alert"')[1].split("</div>")[0]
    assert world.east_ticket.number in alert and world.west_ticket.number not in page
    assert world.east_ticket.number in login(world.centre_user).get("/centre/?q=overdue").get_data(as_text=True)


def test_dates_from_forms(world, login):
    """Should read a reminder time and an extension date in the configured zone, and refuse bad dates."""
    import datetime as dt

    number = world.east_ticket.number
    centre, dept = login(world.centre_user), login(world.east_user)
    act(centre, number, "set_reminder", at="2026-03-05T09:30")
    stored = Ticket.get(Ticket.number == number)
    assert stored.remind_at == dt.datetime(2026, 3, 5, 1, 30)  # 09:30 Shanghai, stored as UTC
    page = act(dept, number, "request_extension", until="next week", reason="x").headers["Location"]
    follow = dept.get(page).get_data(as_text=True)
    assert "YYYY-MM-DD" in follow
    act(dept, number, "request_extension", until="2026-04-30", reason="需要检测报告")
    act(centre, number, "approve_extension")
    assert Ticket.get(Ticket.number == number).deadline == dt.datetime(2026, 4, 30, 15, 59, 59)
