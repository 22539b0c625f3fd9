"""ACD administration pages (/admin/acd): queues, agents and guest agents through the real forms with CSRF,
bad input refused with a clear error and nothing changed, every change audited and picked up by the
running ACD without a restart; and the demo set-up (acd.demo) that matches the default IVR tree."""
from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import gevent
import pytest

from acd.demo import DEMO_AGENTS, DEMO_CHAT_QUEUES, load_acd_demo
from acd.dispatcher import Acd, AcdSettings, create_agent, create_queue
from acd.models import Agent, AgentSkill, Queue, SupervisorAction
from acd.strategies import STRATEGIES
from caseflow.models import User
from tests.integration.acd.admin_pages import (  # noqa: F401 - people: the fixture
    PASSWORD, assert_only_staff_get_in, audits, people)
from tests.integration.acd.conftest import wait_for
from tests.integration.acd.doubles import Conn, Pool, Session, World
from webui.blueprints.admin_acd import parse_extension_ranges
from webui.models import AuditLog

TREE = Path(__file__).resolve().parents[3] / "ivr" / "default_tree.toml"


@pytest.fixture
def running(app, prompts):
    """An ACD over the in-process switch double, lent to the web app as the product does."""
    world = World()
    acd = Acd(Pool(Conn(world)), settings=AcdSettings(reconcile_interval=3600), prompts=prompts)
    acd.start()
    app.extensions["hotline"].services.acd = acd
    yield acd, world
    acd.stop()
    app.extensions["hotline"].services.acd = None


def queue_form(**changes) -> dict:
    form = {"name": "consult", "display_name": "政策咨询", "skill": "consult", "strategy": "least_talk_time",
            "ring_timeout": "20", "max_wait": "180", "overflow_kind": "callback", "overflow_target": "",
            "wrap_up_seconds": "15", "announce_interval": "30", "answer_target_seconds": "15",
            "moh": "local_stream://moh", "callback_key": "1", "no_answer_break": "1", "active": "1"}
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def admin(client):
    client.login("0001", PASSWORD)
    return client


def today(app) -> dt.date:
    """Today in the app's time zone (Asia/Shanghai), which is not the UTC date every evening."""
    return app.extensions["hotline"].services.clock.today()


# ------------------------------------------------------------------------------------------ access
def test_pages_refuse_anonymous_and_other_roles(client, people):
    """Should send anonymous users to the login page and refuse agents and leaders (403) on every page."""
    queue = create_queue("general", "general")
    agent = create_agent(people["agent"], {"general": 5})
    pages = ["/admin/acd/", "/admin/acd/queues/new", f"/admin/acd/queues/{queue.id}", "/admin/acd/agents",
             "/admin/acd/agents/new", f"/admin/acd/agents/{agent.id}", "/admin/acd/guests"]
    assert_only_staff_get_in(client, pages, [("/admin/acd/queues/new", queue_form(name="x1", skill="x1")),
                                             (f"/admin/acd/agents/{agent.id}", {"level_general": "9"})])
    assert Queue.select().count() == 1 and AgentSkill.get(AgentSkill.agent == agent.id).level == 5


def test_post_without_csrf_token_changes_nothing(client, people):
    """Should refuse a queue form posted without the CSRF token."""
    admin(client)
    response = client.post("/admin/acd/queues/new", data=queue_form())
    assert response.status_code in (400, 403) and Queue.select().count() == 0


def test_team_lead_sees_queues_and_sets_skills_only(client, people):
    """Should let a team lead read queues and change an agent's skill levels, but not create queues, change a
    queue's structure (its name here) or extensions."""
    queue = create_queue("general", "general", display_name="综合服务")
    agent = create_agent(people["agent"], {"general": 5})
    client.login("8001", PASSWORD)
    assert "综合服务" in client.get("/admin/acd/").get_data(as_text=True)
    assert client.get(f"/admin/acd/queues/{queue.id}").status_code == 200
    assert client.get("/admin/acd/queues/new").status_code == 403
    assert client.post_form(f"/admin/acd/queues/{queue.id}", queue_form(name=None, skill="general",
                                                                       strategy="random")).status_code == 403
    assert client.post_form("/admin/acd/agents/new", {"user": people["lead"].id, "extension": "1008"}
                            ).status_code == 403
    response = client.post_form(f"/admin/acd/agents/{agent.id}", {"level_general": "8", "tier_general": "2",
                                                                 "extension": "1005"})
    assert response.status_code == 303
    skill = AgentSkill.get(AgentSkill.agent == agent.id)
    assert (skill.level, skill.position) == (8, 2)
    assert Agent.get_by_id(agent.id).extension == "1000"  # a lead's form changes skills only
    assert Queue.get_by_id(queue.id).strategy == "least_talk_time"
    (row,) = audits("acd_agent_skills")
    assert row.operator_no == "8001" and "general:5" in row.detail and "general:8/2" in row.detail


def test_team_lead_changes_a_queues_shift_settings_only(client, running, people):
    """Should show a team lead the shift settings as editable and the rest read-only, save and audit a shift
    change the running ACD sees, refuse a structural change (403, audited, nothing saved), and refuse agents."""
    acd, _world = running
    queue = Queue.create(**{k: v for k, v in queue_form(name="general", skill="general").items()
                            if k not in ("no_answer_break", "active")})
    acd.load()
    client.login("8001", PASSWORD)
    page = client.get(f"/admin/acd/queues/{queue.id}").get_data(as_text=True)
    for field in ("strategy", "ring_timeout", "max_wait", "wrap_up_seconds", "announce_interval"):
        assert f'name="{field}" disabled' not in page, field
    for field in ("display_name", "skill", "overflow_kind", "overflow_target", "moh", "callback_key",
                  "answer_target_seconds"):
        assert f'name="{field}" disabled' in page, field
    assert 'name="no_answer_break" value="1" disabled' not in page and 'name="active" value="1" disabled' in page
    # What the browser sends: the enabled fields only (no_answer_break unticked = off).
    shift = {"strategy": "random", "ring_timeout": "25", "max_wait": "240", "wrap_up_seconds": "30",
             "announce_interval": "60"}
    assert client.post_form(f"/admin/acd/queues/{queue.id}", shift).status_code == 303
    saved = Queue.get_by_id(queue.id)
    assert (saved.strategy, saved.ring_timeout, saved.max_wait, saved.wrap_up_seconds, saved.announce_interval,
            saved.no_answer_break, saved.skill, saved.active) == ("random", 25, 240, 30, 60, False, "general", True)
    assert acd.queues["general"].ring_timeout == 25
    (row,) = audits("acd_queue_update")
    assert row.operator_no == "8001" and "ring_timeout=25" in row.detail and "skill" not in row.detail
    for structural in ({"skill": "other"}, {"overflow_kind": "voicemail"}, {"active": "0"}, {"moh": "x.wav"}):
        assert client.post_form(f"/admin/acd/queues/{queue.id}", {**shift, **structural}).status_code == 403, structural
    after = Queue.get_by_id(queue.id)
    assert (after.skill, after.overflow_kind, after.active, after.moh) == ("general", "callback", True,
                                                                           "local_stream://moh")
    assert len(audits("acd_queue_update_refused")) == 4
    client.logout()
    client.login("1001", PASSWORD)
    assert client.post_form(f"/admin/acd/queues/{queue.id}", shift).status_code == 403


# ------------------------------------------------------------------------------------------ queues
def test_admin_creates_and_edits_a_queue_and_the_running_acd_sees_it(client, running, people):
    """Should create a queue from the form, change its rule, and have the running ACD use both at once."""
    acd, _world = running
    admin(client)
    page = client.get("/admin/acd/queues/new").get_data(as_text=True)
    for code in STRATEGIES:
        assert f'value="{code}"' in page
    assert "通话时间均衡" in page and "同时振铃" in page and "逐个追加振铃" in page
    response = client.post_form("/admin/acd/queues/new", queue_form())
    assert response.status_code == 303
    queue = Queue.get(Queue.name == "consult")
    assert (queue.display_name, queue.max_wait, queue.overflow_kind, queue.callback_key) == ("政策咨询", 180,
                                                                                           "callback", "1")
    assert acd.queue_for("consult").name == "consult"
    create_queue("general", "general")
    response = client.post_form(f"/admin/acd/queues/{queue.id}", queue_form(
        name=None, strategy="ring_all", ring_timeout="25", overflow_kind="queue", overflow_target="general",
        announce_interval="0", callback_key="", no_answer_break=None))
    assert response.status_code == 303
    assert acd.queues["consult"].strategy == "ring_all" and acd.queues["consult"].ring_timeout == 25
    assert (acd.queues["consult"].overflow_kind, acd.queues["consult"].overflow_target) == ("queue", "general")
    assert acd.queues["consult"].no_answer_break is False and acd.queues["consult"].callback_key == ""
    assert [a.obj_id for a in audits("acd_queue_create")] == ["consult"]
    (update,) = audits("acd_queue_update")
    assert "strategy=ring_all" in update.detail and update.operator_no == "0001"
    listing = client.get("/admin/acd/").get_data(as_text=True)
    assert "同时振铃" in listing and "政策咨询" in listing


@pytest.mark.parametrize("changes, message", [
    ({"strategy": "fastest_agent"}, "未知的分配策略"),
    ({"ring_timeout": "-5"}, "振铃超时须在5到120之间"),
    ({"max_wait": "99999999999999999999"}, "最长等待须为整数"),
    ({"wrap_up_seconds": "abc"}, "话后整理须为整数"),
    ({"announce_interval": "3"}, "报位间隔须为0"),
    ({"overflow_kind": "sms"}, "未知的溢出方式"),
    ({"overflow_kind": "queue", "overflow_target": "nowhere"}, "溢出目标队列"),
    ({"overflow_kind": "queue", "overflow_target": "consult"}, "不能溢出到自身"),
    ({"overflow_kind": "number", "overflow_target": "12345; rm"}, "溢出号码"),
    ({"moh": "local_stream://moh' & evil"}, "等待音乐"),
    ({"moh": "../../etc/passwd.wav"}, "等待音乐"),
    ({"callback_key": "A"}, "留言回拨按键"),
    ({"name": "Consult Queue"}, "队列编码须以小写字母开头"),
    ({"skill": ""}, "技能编码"),
    ({"display_name": ""}, "队列名称须为1-100个字符"),
    ({"display_name": "x" * 101}, "队列名称须为1-100个字符"),
])
def test_bad_queue_input_is_refused_and_nothing_changes(client, people, changes, message):
    """Should answer bad queue input with a 400 page naming the problem in the user's language (Chinese, not
    "中文 / English") and store nothing."""
    admin(client)
    response = client.post_form("/admin/acd/queues/new", queue_form(**changes))
    text = response.get_data(as_text=True)
    errors = text.split('data-testid="errors"', 1)[1].split("</ul>", 1)[0]
    assert response.status_code == 400 and message in errors and " / " not in errors
    assert Queue.select().count() == 0 and audits("acd_queue_create") == []
    assert 'name="display_name"' in text  # the form comes back with what was typed


def test_queue_edit_conflicts_are_refused(client, people):
    """Should refuse a skill another queue serves, an overflow loop, and switching off an overflow target."""
    general = create_queue("general", "general", overflow_kind="queue", overflow_target="consult")
    consult = create_queue("consult", "consult")
    admin(client)
    response = client.post_form("/admin/acd/queues/new", queue_form(name="consult2", skill="general"))
    assert response.status_code == 400 and "已由队列 general 服务" in response.get_data(as_text=True)
    response = client.post_form(f"/admin/acd/queues/{consult.id}", queue_form(
        name=None, overflow_kind="queue", overflow_target="general"))
    assert response.status_code == 400 and "形成循环" in response.get_data(as_text=True)
    response = client.post_form(f"/admin/acd/queues/{consult.id}", queue_form(name=None, active=None))
    assert response.status_code == 400 and "不能停用" in response.get_data(as_text=True)
    assert Queue.get_by_id(consult.id).overflow_kind == "callback" and Queue.get_by_id(consult.id).active
    assert Queue.get_by_id(general.id).skill == "general" and Queue.select().count() == 2


def test_queue_with_waiting_callers_stays_on(client, running, people):
    """Should refuse to switch off a queue while a caller waits in it, and allow it once the caller left."""
    acd, world = running
    queue = create_queue("consult", "consult", announce_interval=0, max_wait=0)
    acd.load()
    admin(client)
    session = Session(world, caller="13900003333")
    job = gevent.spawn(acd.enter_queue, session, "consult")
    wait_for(lambda: acd.queue_waiters.get("consult"), what="caller waiting")
    response = client.post_form(f"/admin/acd/queues/{queue.id}", queue_form(name=None, active=None))
    assert response.status_code == 400 and "1 位来电者在等待" in response.get_data(as_text=True)
    assert "consult" in acd.queues and Queue.get_by_id(queue.id).active
    session.hangup_now()
    job.get(timeout=5)
    response = client.post_form(f"/admin/acd/queues/{queue.id}", queue_form(name=None, active=None))
    assert response.status_code == 303 and "consult" not in acd.queues


def test_english_pages_use_english_labels(client, people):
    """Should show the rules and errors in English second to Chinese, and pages in English on request."""
    admin(client)
    client.post_form("/language", {"lang": "en", "next": "/admin/acd/"})
    page = client.get("/admin/acd/queues/new").get_data(as_text=True)
    assert "least talk time" in page and "ring progressively" in page and "New queue" in page


def test_html_in_names_is_shown_as_text(client, people):
    """Should store a queue name with markup as typed and show it escaped, never as markup."""
    admin(client)
    hostile = '<script>alert(1)</script><b onmouseover="x">综合</b>'
    assert client.post_form("/admin/acd/queues/new", queue_form(display_name=hostile)).status_code == 303
    assert Queue.get(Queue.name == "consult").display_name == hostile
    for url in ("/admin/acd/", f"/admin/acd/queues/{Queue.get().id}"):
        text = client.get(url).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    response = client.post_form("/admin/acd/queues/new", queue_form(name="x2", skill="<img src=x>"))
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and "<img src=x>" not in text and "&lt;img src=x&gt;" in text


# ------------------------------------------------------------------------------------------ agents
def test_admin_creates_an_agent_who_then_takes_a_call_without_restart(client, running, people):
    """Should make a user an agent from the form and have the running ACD offer them the next caller."""
    acd, world = running
    create_queue("consult", "consult", wrap_up_seconds=0, announce_interval=0)
    acd.load()
    world.add_phone("1003")
    admin(client)
    page = client.get("/admin/acd/agents/new").get_data(as_text=True)
    assert "1001 王晓燕" in page and "1000-1019" in page
    response = client.post_form("/admin/acd/agents/new", {"user": people["agent"].id, "extension": "1003",
                                                         "server": "", "position": "0", "level_consult": "7",
                                                         "tier_consult": ""})
    assert response.status_code == 303
    agent = Agent.get(Agent.user == people["agent"].id)
    assert agent.extension == "1003" and User.get_by_id(people["agent"].id).extension == "1003"
    assert acd.skills[agent.id] == {"consult": (7, 0)} and acd.by_extension["1003"] == agent.id
    (row,) = audits("acd_agent_create")
    assert row.obj_id == "1001" and "extension=1003" in row.detail and "consult:7" in row.detail
    acd.reconcile(world.server)  # the periodic reconciliation finds the phone registered
    acd.transition(agent.id, "login")
    acd.transition(agent.id, "ready")
    session = Session(world, caller="13900002222")
    outcome = gevent.spawn(acd.enter_queue, session, "consult").get(timeout=5)
    assert outcome.outcome == "answered" and outcome.agent_id == agent.id
    listing = client.get("/admin/acd/agents").get_data(as_text=True)
    assert "1003" in listing and "consult:7" in listing


@pytest.mark.parametrize("changes, message", [
    ({"extension": "1000"}, "已由话务员 8001 使用"),
    ({"extension": "1008"}, "已分配给用户 8001"),
    ({"extension": "2999"}, "不在交换机用户目录中"),
    ({"extension": "10a0"}, "分机号须为2-10位数字"),
    ({"level_consult": "11"}, "技能 consult 的级别须在1到10之间"),
    ({"level_consult": "-1"}, "技能 consult 的级别须在1到10之间"),
    ({"level_unknown": "5"}, "未知技能"),
    ({"tier_consult": "1000"}, "梯队须在0到99之间"),
    ({"server": "10.0.0.9:8021"}, "未知的交换机"),
    ({"position": "-3"}, "座席编号须在0到9999之间"),
    ({"user": "999999"}, "请选择一个启用的用户"),
])
def test_bad_agent_input_is_refused_and_nothing_changes(client, people, changes, message):
    """Should answer bad agent input with a 400 page naming the problem and create no agent."""
    create_queue("consult", "consult")
    lead_agent = create_agent(people["lead"], {"consult": 5}, extension="1000")
    people["agent"].extension = None
    people["agent"].save()
    admin(client)
    form = {"user": people["agent"].id, "extension": "1004", "server": "", "position": "0", "level_consult": "5"}
    form.update(changes)
    response = client.post_form("/admin/acd/agents/new", form)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert Agent.select().count() == 1 and Agent.get_by_id(lead_agent.id).extension == "1000"
    assert User.get_by_id(people["agent"].id).extension is None and audits("acd_agent_create") == []


def test_extension_of_another_user_and_a_second_agent_row_are_refused(client, people):
    """Should refuse an extension on another user's record, and making an agent of an agent twice."""
    create_queue("consult", "consult")
    create_agent(people["agent"], {"consult": 5})
    admin(client)
    response = client.post_form("/admin/acd/agents/new", {"user": people["leader"].id, "extension": "1008",
                                                         "level_consult": "5"})
    assert response.status_code == 400 and "已分配给用户 8001" in response.get_data(as_text=True)
    response = client.post_form("/admin/acd/agents/new", {"user": people["agent"].id, "extension": "1000",
                                                         "level_consult": "5"})
    assert response.status_code == 400 and "已是话务员" in response.get_data(as_text=True)
    assert Agent.select().count() == 1


def test_agent_edit_moves_extension_only_when_logged_out(client, running, people):
    """Should refuse to move a logged-in agent's extension, then move it once they are logged out."""
    acd, world = running
    create_queue("consult", "consult")
    agent = create_agent(people["agent"], {"consult": 5})
    acd.load()
    acd.transition(agent.id, "login")
    admin(client)
    form = {"extension": "1006", "server": "127.0.0.1:8021", "position": "3", "level_consult": "6"}
    response = client.post_form(f"/admin/acd/agents/{agent.id}", form)
    assert response.status_code == 400 and "签出后才能修改分机" in response.get_data(as_text=True)
    assert Agent.get_by_id(agent.id).extension == "1000"
    acd.transition(agent.id, "logout")
    response = client.post_form(f"/admin/acd/agents/{agent.id}", form)
    assert response.status_code == 303 and acd.agents[agent.id].server == "127.0.0.1:8021"
    assert acd.agents[agent.id].extension == "1006" and acd.agents[agent.id].position == 3
    assert acd.by_extension.get("1006") == agent.id and "1000" not in acd.by_extension
    assert acd.skills[agent.id] == {"consult": (6, 0)}
    assert User.get_by_id(people["agent"].id).extension == "1006"
    assert [a.action for a in AuditLog.select().where(AuditLog.action.startswith("acd_agent"))
            .order_by(AuditLog.id)] == ["acd_agent_update", "acd_agent_skills"]


def test_agent_skills_removed_and_agent_deleted(client, running, people):
    """Should drop a skill left empty, and remove an agent only when logged out."""
    acd, _world = running
    create_queue("consult", "consult")
    create_queue("general", "general")
    agent = create_agent(people["agent"], {"consult": 5, "general": 4})
    acd.load()
    admin(client)
    response = client.post_form(f"/admin/acd/agents/{agent.id}", {"extension": "1000", "server": "",
                                                                 "position": "0", "level_consult": "",
                                                                 "level_general": "4"})
    assert response.status_code == 303 and acd.skills[agent.id] == {"general": (4, 0)}
    acd.transition(agent.id, "login")
    client.post_form(f"/admin/acd/agents/{agent.id}/delete")
    assert Agent.get_or_none(Agent.id == agent.id) is not None
    acd.transition(agent.id, "logout")
    assert client.post_form(f"/admin/acd/agents/{agent.id}/delete").status_code == 303
    assert Agent.get_or_none(Agent.id == agent.id) is None and agent.id not in acd.agents
    assert [a.obj_id for a in audits("acd_agent_delete")] == ["1001"]


def test_pages_work_without_a_running_acd(client, people):
    """Should save to the database and say the ACD will load it, when no ACD runs in this process."""
    create_queue("consult", "consult")
    admin(client)
    page = client.get("/admin/acd/agents/new").get_data(as_text=True)
    assert "话务分配服务未运行" in page
    response = client.post_form("/admin/acd/agents/new", {"user": people["agent"].id, "extension": "1000",
                                                         "level_consult": "3"})
    assert response.status_code == 303 and Agent.select().count() == 1


def test_extension_ranges_setting():
    """Should read HOTLINE_AGENT_EXTENSIONS ranges and refuse a malformed one."""
    assert parse_extension_ranges("1000-1002, 2001") == {"1000", "1001", "1002", "2001"}
    for bad in ("10-x", "1005-1000", "abc", "1000-99999"):
        with pytest.raises(ValueError):
            parse_extension_ranges(bad)


def test_configured_extension_directory_is_used(db_url, tmp_path, people):
    """Should accept only the extensions HOTLINE_AGENT_EXTENSIONS names when it is set."""
    from core.config import load_config
    from tests.conftest import app_for_tests
    from webui.app import create_app

    app = app_for_tests(create_app(load_config({"database_url": db_url, "var_dir": str(tmp_path / "var"),
                                              "mode": "test", "secret_key": "test-secret-key-" + "z" * 32,
                                              "load_demo": False, "HOTLINE_AGENT_EXTENSIONS": "2000-2009"})))
    client = app.test_client()
    create_queue("consult", "consult")
    client.login("0001", PASSWORD)
    response = client.post_form("/admin/acd/agents/new", {"user": people["leader"].id, "extension": "1004",
                                                         "level_consult": "3"})
    assert response.status_code == 400 and "2000-2009" in response.get_data(as_text=True)
    response = client.post_form("/admin/acd/agents/new", {"user": people["leader"].id, "extension": "2004",
                                                         "level_consult": "3"})
    assert response.status_code == 303


# ------------------------------------------------------------------------------------------ guests
def test_team_lead_puts_a_leader_on_the_phones_for_a_day(app, client, running, people):
    """Should make a leader a guest agent for the day at the extension an administrator gave them (recorded
    as a team-lead action), then end it."""
    acd, _world = running
    create_queue("complaint", "complaint")
    acd.load()
    User.update(extension="1009").where(User.id == people["leader"].id).execute()
    client.login("8001", PASSWORD)
    today = app.extensions["hotline"].services.clock.today()
    assert today == acd.clock.today()
    response = client.post_form("/admin/acd/guests", {"user": people["leader"].id, "extension": "1009",
                                                     "day": today.isoformat(), "level_complaint": "9"})
    assert response.status_code == 303
    agent = Agent.get(Agent.user == people["leader"].id)
    assert agent.guest_until == today and agent.extension == "1009"
    assert acd.skills[agent.id] == {"complaint": (9, 0)}
    action = SupervisorAction.get(SupervisorAction.action == "add_guest_agent")
    assert action.actor_label == "8001" and action.target_agent_id == agent.id
    page = client.get("/admin/acd/guests").get_data(as_text=True)
    assert "吴市长" in page and today.isoformat() in page and "值班中" in page
    assert client.post_form(f"/admin/acd/guests/{agent.id}/end").status_code == 303
    assert acd.skills.get(agent.id, {}) == {} and Agent.get_by_id(agent.id).guest_until < today
    assert [a.action for a in AuditLog.select().where(AuditLog.action.startswith("acd_guest"))
            .order_by(AuditLog.id)] == ["acd_guest_add", "acd_guest_end"]


def test_team_lead_cannot_assign_an_extension(app, client, running, people):
    """Should refuse a team lead who gives a leader without an extension one through the guest form (only an
    administrator assigns extensions), writing nothing; an administrator may."""
    create_queue("complaint", "complaint")
    client.login("8001", PASSWORD)
    form = {"user": people["leader"].id, "extension": "1009", "day": today(app).isoformat(), "level_complaint": "9"}
    response = client.post_form("/admin/acd/guests", form)
    assert response.status_code == 400 and "只有管理员可以为用户 5001 分配分机" in response.get_data(as_text=True)
    assert User.get_by_id(people["leader"].id).extension is None
    assert Agent.select().count() == 0 and SupervisorAction.select().count() == 0
    client.logout()
    client.login("0001", PASSWORD)
    assert client.post_form("/admin/acd/guests", form).status_code == 303
    assert User.get_by_id(people["leader"].id).extension == "1009"


def test_guest_form_has_no_extension_field_for_a_team_lead(app, client, running, people):
    """Should leave the extension field out of a team lead's guest form (an administrator's has it), tell a
    lead whose leader has no extension that an administrator must assign one, and put a leader who has one on
    the phones at it."""
    acd, _world = running
    create_queue("complaint", "complaint")
    acd.load()
    client.login("8001", PASSWORD)
    page = client.get("/admin/acd/guests").get_data(as_text=True)
    assert 'name="extension"' not in page and 'data-testid="own-extension"' in page
    form = {"user": people["leader"].id, "day": today(app).isoformat(), "level_complaint": "9"}
    response = client.post_form("/admin/acd/guests", form)
    assert response.status_code == 400 and "请管理员先为其分配分机" in response.get_data(as_text=True)
    assert Agent.select().count() == 0
    User.update(extension="1009").where(User.id == people["leader"].id).execute()
    assert client.post_form("/admin/acd/guests", form).status_code == 303
    assert Agent.get(Agent.user == people["leader"].id).extension == "1009"
    client.logout()
    client.login("0001", PASSWORD)
    page = client.get("/admin/acd/guests").get_data(as_text=True)
    assert 'name="extension"' in page and 'data-testid="own-extension"' not in page


@pytest.mark.parametrize("changes, message", [
    ({"day": "2020-01-01"}, "日期须在今天"),
    ({"day": "tomorrow"}, "日期格式须为"),
    ({"day": "2026-02-30"}, "日期格式须为"),
    ({"level_complaint": ""}, "请至少选择一项技能"),
    ({"level_complaint": "0"}, "请至少选择一项技能"),
    ({"level_complaint": "12"}, "级别须在1到10之间"),
    ({"extension": ""}, "没有分机"),
    ({"extension": "1000"}, "已分配给用户 1001"),
    ({"user": "abc"}, "请选择一个启用的用户"),
])
def test_bad_guest_input_is_refused(app, client, running, people, changes, message):
    """Should refuse a bad guest request with a clear error and make nobody an agent."""
    create_queue("complaint", "complaint")
    client.login("0001", PASSWORD)
    form = {"user": people["leader"].id, "extension": "1009", "day": today(app).isoformat(),
            "level_complaint": "9"}
    form.update(changes)
    response = client.post_form("/admin/acd/guests", form)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert Agent.select().count() == 0 and SupervisorAction.select().count() == 0


def test_regular_agent_cannot_become_a_guest(app, client, running, people):
    """Should refuse guest duty for a regular agent (their skills would be removed when the day ends)."""
    create_queue("complaint", "complaint")
    agent = create_agent(people["agent"], {"complaint": 4})
    client.login("0001", PASSWORD)
    response = client.post_form("/admin/acd/guests", {"user": people["agent"].id,
                                                     "day": today(app).isoformat(), "level_complaint": "9"})
    assert response.status_code == 400 and "已是正式话务员" in response.get_data(as_text=True)
    assert Agent.get_by_id(agent.id).guest_until is None


# -------------------------------------------------------------------------------------------- demo
def test_demo_queues_match_the_default_ivr_tree_and_agents_get_extensions(db):
    """Should create one queue per skill the default tree routes to and make the demo users agents, once."""
    from caseflow.demo import load_demo

    load_demo()
    made = load_acd_demo()
    tree = tomllib.loads(TREE.read_text(encoding="utf-8"))
    tree_skills = {node["skill"] for node in tree["nodes"].values() if node.get("kind") == "queue"}
    assert tree_skills and {q.skill for q in Queue.select()} == tree_skills
    assert set(tree["settings"]["skills"]) == tree_skills
    assert Queue.get(Queue.name == "general").strategy == "least_talk_time"
    for queue in Queue.select():
        assert queue.strategy in STRATEGIES and queue.display_name
        if queue.overflow_kind == "queue":
            assert Queue.get(Queue.name == queue.overflow_target).active
    agents = {a.user.operator_no: a for a in Agent.select(Agent, User).join(User)}
    assert set(agents) == set(DEMO_AGENTS) == {"1001", "1002", "8001"}
    assert {no: a.extension for no, a in agents.items()} == {"1001": "1000", "1002": "1001", "8001": "1008"}
    for no, skills in DEMO_AGENTS.items():
        assert {s.skill: s.level for s in agents[no].skills} == skills
        assert set(skills) <= tree_skills
    every_skill_served = {s.skill for s in AgentSkill.select()}
    assert every_skill_served == tree_skills
    assert len(made) == len(tree_skills) + len(DEMO_CHAT_QUEUES) + 3
    assert load_acd_demo() == [] and Queue.select().count() == len(tree_skills) and Agent.select().count() == 3


def test_demo_agent_reaches_the_desk(app, client, running):
    """Should turn demo agent 1001's desk from "not set up as an agent" into their desk once the demo loads."""
    from caseflow.demo import DEMO_PASSWORD, load_demo

    acd, _world = running
    load_demo()
    client.login("1001", DEMO_PASSWORD)
    assert "您尚未配置为话务员" in client.get("/desk/").get_data(as_text=True)
    load_acd_demo()
    acd.load()
    text = client.get("/desk/").get_data(as_text=True)
    assert "您尚未配置为话务员" not in text and "话务系统未连接" not in text and "已签出" in text
    assert acd.queue_for("consult").display_name == "政策咨询"


def test_demo_does_nothing_without_demo_users_or_with_queues(db):
    """Should create queues but no agents without the demo users, and nothing once the ACD is configured."""
    made = load_acd_demo()
    assert Agent.select().count() == 0 and all(line.startswith(("queue", "chat queue")) for line in made)
    Queue.delete().execute()
    create_queue("mine", "mine")
    assert load_acd_demo() == [] and [q.name for q in Queue.select()] == ["mine"]


def test_every_page_renders_for_admin_and_lead(client, running, people):
    """Should render every page with data in it for an administrator and a team lead."""
    acd, _world = running
    queue = create_queue("consult", "consult", display_name="咨询")
    agent = create_agent(people["agent"], {"consult": 5})
    acd.load()
    for operator_no in ("0001", "8001"):
        client.login(operator_no, PASSWORD)
        for url in ("/admin/acd/", f"/admin/acd/queues/{queue.id}", "/admin/acd/agents",
                    f"/admin/acd/agents/{agent.id}", "/admin/acd/guests"):
            response = client.get(url)
            assert response.status_code == 200, (operator_no, url)
        assert client.get("/admin/acd/queues/999").status_code == 404
        client.logout()
