"""The audit log page for administrators and centre leaders."""
from __future__ import annotations

import datetime as dt

from webui.models import AuditLog

from .conftest import PASSWORD


def entry(action, operator_no, at, **fields):
    return AuditLog.create(action=action, operator_no=operator_no, at=at, **fields)


def test_admin_browses_and_filters(app, make_user):
    """Should list entries newest first in local time, filter by operator, action and local dates."""
    admin = make_user("7001", roles=("admin",), name="管理员")
    entry("login_failed", "1234", dt.datetime(2026, 3, 1, 15, 59), ip="10.0.0.1")   # 03-01 23:59 Shanghai
    entry("login_failed", "1234", dt.datetime(2026, 3, 1, 16, 1), ip="10.0.0.1")    # 03-02 00:01 Shanghai
    entry("view_contact", "5678", dt.datetime(2026, 3, 2, 2, 0), detail="<script>x</script>")
    client = app.test_client()
    client.login("7001", PASSWORD)
    page = client.get("/admin/audit").get_data(as_text=True)
    assert page.index("2026-03-02 10:00:00") < page.index("2026-03-02 00:01:00") < page.index("2026-03-01 23:59:00")
    assert "登录失败" in page and "查看联系方式" in page and "管理员" in page
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    only = client.get("/admin/audit?operator_no=1234&from=2026-03-02&to=2026-03-02").get_data(as_text=True)
    assert "2026-03-02 00:01:00" in only and "23:59:00" not in only and "10:00:00" not in only
    by_action = client.get("/admin/audit?action=view_contact").get_data(as_text=True)
    assert "5678" in by_action and "1234" not in by_action.split("<tbody>", 1)[1]
    assert admin.id


def test_bad_dates_and_roles(logged_in):
    """Should answer a malformed date with 400 and refuse agents."""
    leader, agent = logged_in("7002", roles=("centre_leader",)), logged_in("7003", roles=("agent",))
    assert leader.get("/admin/audit").status_code == 200
    response = leader.get("/admin/audit?from=03/01/2026")
    assert response.status_code == 400 and "日期格式" in response.get_data(as_text=True)
    assert agent.get("/admin/audit").status_code == 403
