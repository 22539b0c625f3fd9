"""The dial-out policy page (/admin/dialout): the rules in force and the dial-out log, administrators only,
read only, audited, numbers masked unless the viewer may see citizens' numbers; both databases."""
from __future__ import annotations

import datetime as dt

import pytest

from recorder.models import DialOutLog
from caseflow.roles import ROLES
from webui.models import AuditLog

from .conftest import PASSWORD
from .test_one_language import findings

REFUSED_ABROAD = "不允许拨打国际号码 00442079460000 / international numbers may not be dialled (transfer)"


def _login(app, user):
    client = app.test_client()
    client.login(user.operator_no, PASSWORD)
    return client


def _log(**fields):
    fields.setdefault("at", dt.datetime(2026, 3, 2, 2, 0))  # naive UTC: 10:00 in Asia/Shanghai
    fields.setdefault("actor", "system")
    fields.setdefault("purpose", "overflow")
    fields.setdefault("number", "02587654321")
    fields.setdefault("number_class", "domestic")
    fields.setdefault("allowed", True)
    return DialOutLog.create(**fields)


def test_admin_sees_the_policy_in_force_and_the_log_masked(make_app, make_user):
    """Should show an administrator the configured rules (purpose and role in words), both caps, the area code
    and the dial template, and the log in one language with citizens' numbers masked (seats and 110 in full),
    audit the view and write nothing else."""
    app = make_app(HOTLINE_DIALOUT_RULES="transfer/team_lead=mobile,international", HOTLINE_AREA_CODE="0571",
                   HOTLINE_DIALOUT_DAILY_CAP="20", HOTLINE_DIALOUT_CALLER_CAP="0",
                   HOTLINE_DIALOUT_TEMPLATE="sofia/gateway/telecom/{number}")
    admin = make_user("0001", roles=("admin",), name="管理员")
    agent = make_user("1001", roles=("agent",), name="李话务")
    _log(actor=f"user:{agent.id}", user=agent, purpose="transfer", number="00442079460000",
         number_class="international", allowed=False, reason=REFUSED_ABROAD)
    _log(actor="caller:13900001111", purpose="material_fax", number="13800000001", number_class="mobile")
    _log(actor=f"user:{agent.id}", user=agent, purpose="outbound", number="110", number_class="emergency")
    before = DialOutLog.select().count()

    page = _login(app, admin).get("/admin/dialout")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and findings(html, "zh") == []
    assert "转接" in html and "班长" in html and "手机, 国际" in html and "任何用途" in html and "任何角色" in html
    assert ">20<" in html and "不限" in html and "0571" in html and "sofia/gateway/telecom/{number}" in html
    assert html.count('data-testid="dialout-row"') == 3
    assert "138****0001" in html and "13800000001" not in html and "139****1111" in html
    assert "004****0000" in html and "00442079460000" not in html and "不允许拨打国际号码 004****0000" in html
    assert ">110<" in html and "1001 李话务" in html and "号码已脱敏" in html
    assert "international numbers" not in html
    assert DialOutLog.select().count() == before
    [seen] = AuditLog.select().where(AuditLog.action == "log_view")
    assert (seen.user_id, seen.obj_type, seen.obj_id) == (admin.id, "log", "dialout")

    admin.language, admin.name, agent.name = "en", "Admin", "Li Hua"  # names are data, in the page's language
    admin.save()
    agent.save()
    english = _login(app, admin).get("/admin/dialout").get_data(as_text=True)
    assert findings(english, "en") == []
    assert "international numbers may not be dialled (transfer)" in english and "Material by fax" in english
    assert "Mobile, International" in english and "Caller 139****1111" in english


def test_a_viewer_allowed_full_contact_sees_numbers_in_full(app, make_user):
    """Should show the numbers unmasked to an administrator who also holds a role with citizen.full_contact."""
    both = make_user("0002", roles=("admin", "centre"))
    _log(actor="caller:13900001111", purpose="material_fax", number="13800000001", number_class="mobile")
    html = _login(app, both).get("/admin/dialout").get_data(as_text=True)
    assert "13800000001" in html and "13900001111" in html and "号码已脱敏" not in html


@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
def test_other_roles_are_refused(app, make_user, role):
    """Should refuse every role but the administrator (403) and send an anonymous visitor to the login."""
    user = make_user("7777", roles=(role,))
    assert _login(app, user).get("/admin/dialout").status_code == 403
    anonymous = app.test_client().get("/admin/dialout")
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
    assert AuditLog.select().where(AuditLog.action == "log_view").count() == 0


def test_filters_and_paging(app, make_user):
    """Should filter by operator number, purpose, class, outcome and local days (the end day whole), and
    show 50 rows a page, newest first, the pager keeping the filters."""
    admin = make_user("0001", roles=("admin",))
    agent = make_user("1001", roles=("agent",))
    start = dt.datetime(2026, 3, 1, 16, 30)  # naive UTC: 00:30 on 2 March in Asia/Shanghai
    for minute in range(60):
        _log(at=start + dt.timedelta(minutes=minute), actor=f"user:{agent.id}", user=agent, purpose="outbound",
             number=f"139000{minute:05d}", number_class="mobile")
    _log(at=dt.datetime(2026, 3, 1, 15, 0), purpose="fax", number="00442079460000",  # 23:00 on 1 March
         number_class="international", allowed=False, reason=REFUSED_ABROAD)
    client = _login(app, admin)

    def rows(query):
        response = client.get("/admin/dialout" + query)
        assert response.status_code == 200, query
        return response.get_data(as_text=True)

    first = rows("")
    assert first.count('data-testid="dialout-row"') == 50 and "第 1 / 2 页，共 61 条" in first
    assert first.index("139****0059") < first.index("139****0058") and "139****0009" not in first
    assert 'href="/admin/dialout?page=2"' in first
    second = rows("?page=2")
    assert second.count('data-testid="dialout-row"') == 11 and "004****0000" in second
    assert rows("?page=9").count('data-testid="dialout-row"') == 11  # past the end: the last page
    mine = rows("?user=1001")
    assert "共 60 条" in mine and 'href="/admin/dialout?page=2&amp;user=1001"' in mine
    assert "共 0 条" not in rows("?user=0001") and "没有符合条件的记录" in rows("?user=0001")
    assert "共 1 条" in rows("?purpose=fax") and "共 60 条" in rows("?purpose=outbound")
    assert "共 1 条" in rows("?class=international") and "共 60 条" in rows("?class=mobile&outcome=allowed")
    assert "共 1 条" in rows("?outcome=refused")
    assert "共 1 条" in rows("?to=2026-03-01") and "共 60 条" in rows("?from=2026-03-02")
    assert "共 61 条" in rows("?from=2026-03-01&to=2026-03-02")
    assert "没有符合条件的记录" in rows("?from=2026-03-03")
    assert "共 0 条" not in rows("?purpose=overflow")


@pytest.mark.parametrize("query,message", [
    ("?user=9999", "没有该工号的用户"), ("?purpose=dial_anything", "未知的外呼用途"),
    ("?class=planet", "未知的号码类别"), ("?outcome=maybe", "结果只能是已放行或已拒绝"),
    ("?from=2026-13-01", "日期格式应为 2026-03-01"), ("?to=yesterday", "日期格式应为 2026-03-01"),
    ("?from=2026-03-05&to=2026-03-01", "起始日期晚于截止日期"), ("?page=0", "页"), ("?page=x", "页")])
def test_bad_filter_values_are_a_clear_error(app, make_user, query, message):
    """Should answer a filter value that is not one of the choices with a 400 that says what is wrong."""
    admin = make_user("0001", roles=("admin",))
    response = _login(app, admin).get("/admin/dialout" + query)
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_the_admin_menu_links_the_page(app, make_user):
    """Should list the page in an administrator's menu and not in an agent's."""
    admin = make_user("0001", roles=("admin",))
    agent = make_user("1001", roles=("agent",))
    assert 'href="/admin/dialout"' in _login(app, admin).get("/admin/org/").get_data(as_text=True)
    assert 'href="/admin/dialout"' not in _login(app, agent).get("/agent/tickets").get_data(as_text=True)
