"""The phone-menu admin pages: chart, node edits into new versions, activation refused with reasons,
prompt texts re-rendered, uploads validated, polls, traces."""
from __future__ import annotations

import io
import re
import wave

import pytest

from caseflow import accounts
from caseflow.models import MaterialRequest
from ivr.models import IvrTrace, IvrTreeVersion, Poll, PollQuestion, PromptText
from ivr.store import TreeStore
from ivr.tree import load_tree


@pytest.fixture
def admin_client(db, db_url, ivr_config, trees):
    """A logged-in administrator on an app whose sounds live in a temporary directory."""
    from tests.conftest import app_for_tests
    from webui.app import Services, create_app

    config = ivr_config.replace(database_url=db_url, load_demo=False)
    app = app_for_tests(create_app(config, Services(trees=trees)))
    accounts.create_user("9001", "管理员", "admin-password-1", roles=("admin",))
    accounts.create_user("1001", "话务员", "agent-password-1", roles=("agent",))
    client = app.test_client()
    assert client.login("9001", "admin-password-1").status_code in (302, 303)
    trees.ensure_default()
    return client


def test_tree_page_draws_the_chart(admin_client):
    """Should draw the active tree as an SVG flow chart with every node and say it has no problems."""
    page = admin_client.get("/admin/ivr/").get_data(as_text=True)
    assert "<svg" in page and 'data-node="main"' in page and 'data-node="complaint_record"' in page
    assert 'data-testid="no-problems"' in page


def test_agents_cannot_edit_the_tree(admin_client):
    """Should refuse the admin pages to an agent."""
    admin_client.logout()
    admin_client.login("1001", "agent-password-1")
    assert admin_client.get("/admin/ivr/").status_code == 403
    response = admin_client.post_form("/admin/ivr/activate", {"version": "1"})
    assert response.status_code == 403


def test_node_edit_makes_a_new_version_then_activation(admin_client):
    """Should save a node edit as a new inactive version and activate it on request."""
    v1 = IvrTreeVersion.get(IvrTreeVersion.version == 1)
    response = admin_client.post_form("/admin/ivr/save", {
        "version": v1.id, "what": "node", "node": "main", "f_prompt": "main_menu", "f_timeout": "8",
        "f_keys": "1=human_time\n2=self_menu\n8=lang_zh\n9=lang_en\n*=@repeat", "f_on_fail": "human_time",
        "f_timeout_route": "human_time"})
    assert response.status_code == 303
    v2 = IvrTreeVersion.get(IvrTreeVersion.version == 2)
    assert not v2.active and TreeStore().tree_of(v2).node("main").get("timeout") == 8
    admin_client.post_form("/admin/ivr/activate", {"version": v2.id})
    assert IvrTreeVersion.get_by_id(v2.id).active and not IvrTreeVersion.get_by_id(v1.id).active


def test_activation_refused_with_reasons(admin_client):
    """Should refuse to activate a version with problems and list each with its node."""
    v1 = IvrTreeVersion.get(IvrTreeVersion.version == 1)
    admin_client.post_form("/admin/ivr/save", {
        "version": v1.id, "what": "node", "node": "main", "f_prompt": "no_such_prompt",
        "f_keys": "1=human_time\n*=@repeat", "f_on_fail": "main", "f_timeout_route": "main"})
    v2 = IvrTreeVersion.get(IvrTreeVersion.version == 2)
    page = admin_client.get(f"/admin/ivr/?version={v2.id}").get_data(as_text=True)
    problems = re.sub(r"<[^>]+>", "", page.split('data-testid="problems"', 1)[1].split("</ul>", 1)[0])
    # Each problem under its node's name (kind and wording), linked to the node's form; no node id shown.
    # ... in the page's language only (ivr writes them "中文 / English").
    assert "按键菜单: 未知的提示音 &#39;no_such_prompt&#39;" in problems
    assert "按键菜单: 没有来电者操作的循环" in problems
    assert "语言选择 · 语言：英语: 从开始节点无法到达" in problems
    assert "unknown prompt" not in problems and "unreachable" not in problems
    assert "node=main#node-form" in page.split('data-testid="problems"', 1)[1].split("</ul>", 1)[0]
    response = admin_client.post_form("/admin/ivr/activate", {"version": v2.id}, follow_redirects=True)
    text = response.get_data(as_text=True)
    assert "拒绝启用" in text or "Activation refused" in text
    assert IvrTreeVersion.get_by_id(v1.id).active and not IvrTreeVersion.get_by_id(v2.id).active


def test_bad_edits_are_refused_clearly(admin_client):
    """Should refuse malformed keys, unknown targets and broken source with a message, storing nothing."""
    v1 = IvrTreeVersion.get(IvrTreeVersion.version == 1)
    for form in ({"what": "node", "node": "main", "f_keys": "1 human_time"},
                 {"what": "node", "node": "main", "f_keys": "1=nowhere"},
                 {"what": "node", "node": "main", "f_timeout": "soon"},
                 {"what": "source", "source": "[tree\nstart="},
                 {"what": "source", "source": "x" * 300000}):
        response = admin_client.post_form("/admin/ivr/save", {"version": v1.id, **form}, follow_redirects=True)
        assert response.status_code == 200
        assert 'class="flash error"' in response.get_data(as_text=True), form
    assert IvrTreeVersion.select().count() == 1


def test_settings_edit(admin_client):
    """Should change the duty numbers as a new version."""
    v1 = IvrTreeVersion.get(IvrTreeVersion.version == 1)
    settings = {f"s_{k}": (", ".join(v) if isinstance(v, list) else str(v))
                for k, v in load_tree().settings.items()}
    settings["s_duty_mobile"] = "13912345678"
    admin_client.post_form("/admin/ivr/save", {"version": v1.id, "what": "settings", **settings})
    v2 = IvrTreeVersion.get(IvrTreeVersion.version == 2)
    tree = TreeStore().tree_of(v2)
    assert tree.setting("duty_mobile") == "13912345678" and tree.setting("skills") == load_tree().setting("skills")


def test_answering_hours_shown_and_switched(admin_client, trees):
    """Should show how the tree answers (24 hours with the shipped tree), switch office hours on and forward
    rest days from the settings form, and refuse a value it does not understand without a new version."""
    page = admin_client.get("/admin/ivr/").get_data(as_text=True)
    shown = re.search(r'data-testid="answering">(.*?)</p>', page, re.S).group(1)
    assert "人工全天24小时接听" in shown and "休息日和节假日：与工作日相同" in shown
    v1 = IvrTreeVersion.get(IvrTreeVersion.version == 1)
    admin_client.post_form("/admin/ivr/save", {"version": v1.id, "what": "settings", "s_office_hours": "true",
                                               "s_rest_days": "forward"})
    v2 = IvrTreeVersion.get(IvrTreeVersion.version == 2)
    page = admin_client.get(f"/admin/ivr/?version={v2.id}").get_data(as_text=True)
    shown = re.search(r'data-testid="answering">(.*?)</p>', page, re.S).group(1)
    assert "工作日 08:00-20:00 人工接听" in shown and "转接值班电话" in shown
    response = admin_client.post_form("/admin/ivr/save", {"version": v2.id, "what": "settings",
                                                          "s_office_hours": "maybe"}, follow_redirects=True)
    assert "仅工作时间人工接听：&#39;maybe&#39; 须为是或否" in response.get_data(as_text=True)
    assert IvrTreeVersion.select().count() == 2


def test_tree_saved_before_answering_settings(admin_client, trees):
    """Should not change an installed tree that predates office_hours/rest_days, say which rule it follows,
    and offer the settings so the administrator can add them."""
    old = load_tree().source.replace("office_hours = false\n", "").replace('rest_days = "staffed"\n', "")
    version = trees.add_version(old, comment="an old tree")
    page = admin_client.get(f"/admin/ivr/?version={version.id}").get_data(as_text=True)
    assert "此版本早于休息日设置" in page and 'id="s_office_hours"' in page and 'id="s_rest_days"' in page
    admin_client.post_form("/admin/ivr/save", {"version": version.id, "what": "settings", "s_office_hours": "",
                                               "s_rest_days": "closed"})
    newest = IvrTreeVersion.select().order_by(IvrTreeVersion.id.desc()).first()
    tree = TreeStore().tree_of(newest)
    assert tree.setting("rest_days") == "closed" and "office_hours" not in tree.settings


def test_prompt_text_change_renders_again(admin_client, ivr_config):
    """Should store a new wording and render it with real TTS at the switch's rate."""
    response = admin_client.post_form("/admin/ivr/prompts/text", {"lang": "zh", "key": "goodbye",
                                                                   "text": "再见，欢迎再次来电。"})
    assert response.status_code == 303
    assert PromptText.get().text == "再见，欢迎再次来电。"
    with wave.open(str(ivr_config.sounds_dir / "zh" / "goodbye.wav"), "rb") as handle:
        assert handle.getframerate() == 8000 and handle.getnchannels() == 1
    page = admin_client.get("/admin/ivr/prompts").get_data(as_text=True)
    assert "再见，欢迎再次来电。" in page
    audio = admin_client.get("/admin/ivr/prompts/zh/goodbye.wav")
    assert audio.status_code == 200 and audio.data[:4] == b"RIFF"
    bad = admin_client.post_form("/admin/ivr/prompts/text", {"lang": "zh", "key": "nosuch", "text": "x"},
                                 follow_redirects=True)
    assert "未知的提示音 &#39;nosuch&#39;" in bad.get_data(as_text=True)


def _wav(seconds: float) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(b"\x20\x00" * int(16000 * seconds))
    return buffer.getvalue()


def test_prompt_upload_validated(admin_client, ivr_config):
    """Should install a WAV upload and refuse a file that is not audio or far too short."""
    ok = admin_client.post_form("/admin/ivr/prompts/upload", {"lang": "zh", "key": "welcome",
                                                              "file": (io.BytesIO(_wav(1.5)), "welcome.wav")},
                                content_type="multipart/form-data")
    assert ok.status_code == 303
    with wave.open(str(ivr_config.sounds_dir / "zh" / "welcome.wav"), "rb") as handle:
        assert handle.getframerate() == 8000
    for data, name in ((b"<script>alert(1)</script>", "x.wav"), (_wav(0.05), "short.wav")):
        bad = admin_client.post_form("/admin/ivr/prompts/upload", {"lang": "zh", "key": "welcome",
                                                                   "file": (io.BytesIO(data), name)},
                                     content_type="multipart/form-data", follow_redirects=True)
        assert 'class="flash error"' in bad.get_data(as_text=True)


def test_polls_created_and_activated(admin_client):
    """Should create a poll from question lines, refuse bad keys, and make one poll active."""
    admin_client.post_form("/admin/ivr/polls", {"what": "create", "title": "公交满意度",
                                                "questions": "您对公交满意吗？满意按1，不满意按2 | 12\n准点吗 | 123"})
    poll = Poll.get()
    assert [q.choices for q in poll.questions.order_by(PollQuestion.position)] == ["12", "123"]
    bad = admin_client.post_form("/admin/ivr/polls", {"what": "create", "title": "x", "questions": "q | 1a"},
                                 follow_redirects=True)
    assert 'class="flash error"' in bad.get_data(as_text=True) and Poll.select().count() == 1
    admin_client.post_form("/admin/ivr/polls", {"what": "activate", "poll": poll.id})
    assert Poll.get_by_id(poll.id).active


def test_trace_page(admin_client):
    """Should show a call's trace with nodes, times and keys, the caller's number masked."""
    import datetime as dt
    import json

    now = dt.datetime(2026, 1, 5, 2, 0)
    IvrTrace.create(call_uuid="abc-123", caller="13800138000", started_at=now, ended_at=now, outcome="completed",
                    tickets="12345678", entries=json.dumps([{"at": "2026-01-05T10:00:00.000+08:00", "node": "main",
                                                              "what": "key", "keys": "2"}]))
    page = admin_client.get("/admin/ivr/traces/abc-123").get_data(as_text=True)
    assert "main" in page and "12345678" in page and "13800138000" not in page
    listing = admin_client.get("/admin/ivr/traces").get_data(as_text=True)
    assert "abc-123" in listing


def test_campaign_pages(admin_client):
    """Should start a group call from a form, refuse bad numbers, and list attempts."""
    from ivr.models import OutboundAttempt, OutboundCampaign

    admin_client.post_form("/admin/ivr/campaigns", {"what": "group", "title": "停水通知", "message": "明天停水。",
                                                    "phones": "13800138000\n13900000000", "max_parallel": "5"})
    campaign = OutboundCampaign.get()
    assert campaign.kind == "group" and campaign.max_parallel == 5 and OutboundAttempt.select().count() == 2
    bad = admin_client.post_form("/admin/ivr/campaigns", {"what": "group", "title": "x", "message": "y",
                                                          "phones": "13800138000 not-a-number"},
                                 follow_redirects=True)
    assert 'class="flash error"' in bad.get_data(as_text=True) and OutboundCampaign.select().count() == 1
    none_due = admin_client.post_form("/admin/ivr/campaigns", {"what": "satisfaction"}, follow_redirects=True)
    assert 'class="flash error"' in none_due.get_data(as_text=True)
    admin_client.post_form("/admin/ivr/campaigns", {"what": "pause", "campaign": campaign.id})
    assert OutboundCampaign.get_by_id(campaign.id).status == "paused"
    page = admin_client.get("/admin/ivr/campaigns").get_data(as_text=True)
    assert "停水通知" in page and "13800138000" not in page


def test_satisfaction_campaign_needs_the_call_back_right(admin_client):
    """Should refuse a satisfaction campaign to the administrator (no ticket.callback: the campaign reads
    every approved citizen's number and result), and build it for the centre from the tickets it may see."""
    from caseflow import services as case_services
    from caseflow.models import Ticket
    from ivr.models import OutboundAttempt, OutboundCampaign

    ticket = case_services.create_ticket("噪音扰民", citizen_phone="13700001111")
    Ticket.update(status="approved").where(Ticket.id == ticket.id).execute()
    refused = admin_client.post_form("/admin/ivr/campaigns", {"what": "satisfaction"}, follow_redirects=True)
    assert 'class="flash error"' in refused.get_data(as_text=True) and "您没有回访权限" in refused.get_data(
        as_text=True)
    assert OutboundCampaign.select().count() == 0
    accounts.create_user("3001", "热线办", "centre-password-1", roles=("centre",))
    admin_client.login("3001", "centre-password-1")
    admin_client.post_form("/admin/ivr/campaigns", {"what": "satisfaction"})
    campaign = OutboundCampaign.get()
    assert campaign.kind == "satisfaction"
    assert [a.ticket_number for a in OutboundAttempt.select()] == [ticket.number]
