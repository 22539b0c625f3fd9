"""Alarm banner and list, the process log page and the audit log's filters, by role."""
from __future__ import annotations

import datetime as dt
import logging

from core.logsetup import LOG_FORMAT, log_file
from ops.alarms import AlarmService
from ops.models import SystemAlarm
from webui.models import AuditLog

from .conftest import PASSWORD


def test_banner_shows_alarms_to_team_leads_and_the_centre_and_acknowledge_is_audited(app, make_user):
    """Should show open alarms on /supervisor and /centre (banner poll), refuse agents, and acknowledge
    with an audit row, after which the alarm leaves the banner."""
    make_user("8001", roles=("team_lead",))
    make_user("9001", roles=("centre",))
    make_user("1001", roles=("agent",))
    row = AlarmService(notify=None).raise_alarm("switch_down", "FreeSWITCH a:8021 未连接", subject="a:8021",
                                                severity="critical")
    lead, centre, agent = app.test_client(), app.test_client(), app.test_client()
    lead.login("8001", PASSWORD)
    centre.login("9001", PASSWORD)
    agent.login("1001", PASSWORD)
    for client, page in ((lead, "/supervisor/"), (centre, "/centre/")):
        html = client.get(page).get_data(as_text=True)
        assert 'id="alarm-banner"' in html and "ops_banner.js" in html, page
    data = centre.get("/alarms/shown").get_json()
    assert [(a["kind"], a["label"], a["severity"]) for a in data["alarms"]] == [
        ("switch_down", "FreeSWITCH 断开", "critical")]
    assert agent.get("/alarms/shown").status_code == 403
    assert agent.post_form(data["alarms"][0]["ack_url"]).status_code == 403
    response = lead.post_form(data["alarms"][0]["ack_url"], headers={"Accept": "application/json"})
    assert response.get_json() == {"ok": True, "id": row.id}
    assert lead.get("/alarms/shown").get_json() == {"alarms": []}
    assert SystemAlarm.get_by_id(row.id).acknowledged_by.operator_no == "8001"
    assert AuditLog.get(AuditLog.action == "alarm_ack").obj_id == str(row.id)
    assert "FreeSWITCH a:8021" in lead.get("/alarms").get_data(as_text=True)
    assert lead.post_form("/alarms/999/ack", headers={"Accept": "application/json"}).status_code == 404


def test_process_log_for_administrators_only_with_filters(app, make_user):
    """Should show the configured log file newest first, filtered by time, level and text, to
    administrators only, audit each view, and refuse malformed filters."""
    make_user("0001", roles=("admin",))
    make_user("9001", roles=("centre_leader",))
    path = log_file(app.extensions["hotline"].config)
    path.parent.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter(LOG_FORMAT)
    lines = []
    for when, level, message in ((dt.datetime(2026, 3, 1, 8, 0), logging.INFO, "started"),
                                 (dt.datetime(2026, 3, 1, 9, 0), logging.WARNING, "login failed for 1234"),
                                 (dt.datetime(2026, 3, 1, 10, 0), logging.ERROR, "ESL lost\nTraceback: boom")):
        record = logging.LogRecord("switch.inbound", level, __file__, 1, message, None, None)
        record.created = when.timestamp()
        record.msecs = 0
        lines.append(formatter.format(record))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    admin, leader = app.test_client(), app.test_client()
    admin.login("0001", PASSWORD)
    leader.login("9001", PASSWORD)
    assert leader.get("/admin/log").status_code == 403
    page = admin.get("/admin/log").get_data(as_text=True)
    assert page.index("ESL lost") < page.index("login failed") < page.index("started")
    assert "Traceback: boom" in page
    warn = admin.get("/admin/log?level=WARNING").get_data(as_text=True)
    assert "ESL lost" in warn and "login failed" in warn and "started" not in warn
    timed = admin.get("/admin/log?from=2026-03-01T08:30&to=2026-03-01T09:30").get_data(as_text=True)
    assert "login failed" in timed and "ESL lost" not in timed and "started" not in timed
    assert "1234" in admin.get("/admin/log?q=1234").get_data(as_text=True)
    assert admin.get("/admin/log?level=LOUD").status_code == 400
    assert admin.get("/admin/log?from=yesterday").status_code == 400
    assert admin.get("/admin/log?page=0").status_code == 400
    assert AuditLog.select().where(AuditLog.action == "log_view").count() >= 3


def test_audit_log_filters_by_time_address_and_refusals(app, make_user):
    """Should filter the audit log by local time of day, by address or object, and to refusals only."""
    make_user("0001", roles=("admin",))
    AuditLog.create(action="login_failed", operator_no="1234", at=dt.datetime(2026, 3, 1, 1, 0), ip="10.0.0.9")
    AuditLog.create(action="view_contact", operator_no="5678", at=dt.datetime(2026, 3, 1, 3, 0), obj_type="ticket",
                    obj_id="42")
    admin = app.test_client()
    admin.login("0001", PASSWORD)

    def body(query):
        return admin.get("/admin/audit?" + query).get_data(as_text=True).split("<tbody>", 1)[-1]
    assert "5678" in body("from=2026-03-01T10:00") and "1234" not in body("from=2026-03-01T10:00")
    assert "1234" in body("to=2026-03-01T10:00") and "5678" not in body("to=2026-03-01T10:00")
    assert "1234" in body("where=10.0.0.9") and "5678" not in body("where=10.0.0.9")
    assert "5678" in body("where=42") and "1234" not in body("where=42")
    assert "1234" in body("refusals=1") and "5678" not in body("refusals=1")
    assert admin.get("/admin/audit?from=2026-03-01T25:99").status_code == 400
