"""The team lead's scope (班长管辖): a lead sees on the console (page, figures, event stream) and acts on only the
agents of the groups they lead (caseflow.org.lead_scope); the administrator sees all; over HTTP with the ACD
on the in-process doubles, on both databases."""
from __future__ import annotations

from acd.models import SupervisorAction
from caseflow import org
from caseflow.accounts import create_user
from caseflow.models import User
from tests.integration.acd.test_console_stream import _events
from tests.integration.acd.test_web import PASSWORD, desk  # noqa: F401 - the fixture
from tests.waiting import stream_until


def _teams(desk):  # noqa: F811
    """Group A: agent 8001 led by 9001; group B: agent 8002. Returns (agent A, agent B)."""
    acd, _world, agent, agent_user, lead_user = desk
    other = next(a for a in acd.agents.values() if a.id != agent.id)
    team_a, team_b = org.create_group("A", "早班一组"), org.create_group("B", "早班二组")
    org.set_groups(agent_user, [team_a])
    org.set_groups(User.get_by_id(other.user_id), [team_b])
    org.set_groups(lead_user, [], leads=[team_a])
    return agent, other


def test_lead_scope_is_the_members_of_the_groups_led(desk):  # noqa: F811
    """Should give everyone to the administrator and to every lead while no group has a lead, then the
    members of the groups a lead leads (a lead is a member), and nobody to a team lead who leads none."""
    acd, _world, agent, agent_user, lead_user = desk
    admin = create_user("0001", "管理员", PASSWORD, roles="admin")
    idle_lead = create_user("9002", "二班长", PASSWORD, roles="team_lead")
    assert org.lead_scope(lead_user) is None  # no leads configured: one console for all, as before
    _teams(desk)
    assert org.lead_scope(lead_user) == {agent_user.id, lead_user.id}
    assert org.lead_scope(admin) is None
    assert org.lead_scope(idle_lead) == frozenset()
    assert [g.code for g in org.groups_led_by(lead_user)] == ["A"] and org.groups_of(lead_user)[0].code == "A"


def test_lead_sees_only_the_agents_of_the_groups_led(desk, client):  # noqa: F811
    """Should list on the console page and its figures only the agents of the lead's groups (the totals
    counted over them), and every agent for the administrator."""
    acd, *_ = desk
    agent, other = _teams(desk)
    create_user("0001", "管理员", PASSWORD, roles="admin")
    client.login("9001", PASSWORD)
    page = client.get("/supervisor/").get_data(as_text=True)
    assert f'data-agent="{agent.id}"' in page and f'data-agent="{other.id}"' not in page and "李四" not in page
    stats = client.get("/supervisor/stats").get_json()
    assert [row["agent_id"] for row in stats["agents"]] == [agent.id]
    assert stats["board"]["totals"]["logged_out"] == 1
    assert {q["queue"] for q in stats["queues"]} == {"consult", "suggest"}  # queues stay whole
    client.logout()
    client.login("0001", PASSWORD)
    assert {row["agent_id"] for row in client.get("/supervisor/stats").get_json()["agents"]} == {agent.id, other.id}


def test_lead_acts_only_on_the_agents_of_the_groups_led(desk, client):  # noqa: F811
    """Should refuse (403, recorded as refused with who tried) every console action on an agent outside the
    lead's groups, carry it out on one inside, and let the administrator act on any."""
    acd, *_ = desk
    agent, other = _teams(desk)
    create_user("0001", "管理员", PASSWORD, roles="admin")
    for one in (agent, other):
        acd.transition(one.id, "login")
        acd.transition(one.id, "ready")
    client.login("9001", PASSWORD)
    for action in ("monitor", "whisper", "barge", "force_logout", "set_break"):
        reply = client.post_form("/supervisor/action", {"action": action, "agent_id": other.id})
        assert reply.status_code == 403 and reply.get_json()["error"] == "该话务员不在您带领的班组", action
        row = SupervisorAction.select().order_by(SupervisorAction.id.desc()).get()
        assert (row.action, row.actor_label, row.target_agent_id, row.ok) == (action, "9001", other.id, False)
    assert acd.agents[other.id].status == "available"  # nothing was done to it
    assert client.post_form("/supervisor/action", {"action": "force_logout", "agent_id": agent.id}).status_code == 200
    assert acd.agents[agent.id].status == "logged_out"
    client.logout()
    client.login("0001", PASSWORD)
    assert client.post_form("/supervisor/action", {"action": "force_logout", "agent_id": other.id}).status_code == 200
    assert acd.agents[other.id].status == "logged_out"


def test_lead_stream_carries_only_the_agents_of_the_groups_led(desk, client):  # noqa: F811
    """Should send a scoped lead's console stream the board of their agents only, and no change of an agent
    outside their groups."""
    acd, *_ = desk
    agent, other = _teams(desk)
    client.login("9001", PASSWORD)

    def change():
        # The agent outside the scope first: a row of theirs would come before the awaited one, or with it.
        for one in (other, agent):
            acd.transition(one.id, "login")

    def agent_changed(body):
        return any(name == "changes" and data["agent_rows"] for name, data in _events(body))

    events = _events(stream_until(client, "/supervisor/stream?max_seconds=60", agent_changed, then=change))
    boards = [data["board"]["agent_rows"] for name, data in events if name == "board"]
    assert boards and all([row["agent_id"] for row in rows] == [agent.id] for rows in boards)
    changed = [row["agent_id"] for name, data in events if name == "changes" for row in data["agent_rows"]]
    assert changed and set(changed) == {agent.id}, changed


def test_administrator_names_the_leads_of_groups(desk, client):  # noqa: F811
    """Should let the administrator mark on a user's page the groups the user leads (a member of them too),
    audited, and show the leads on the groups page."""
    from caseflow.models import Group
    from webui.models import AuditLog

    acd, _world, _agent, _agent_user, lead_user = desk
    create_user("0001", "管理员", PASSWORD, roles="admin")
    team = org.create_group("A", "早班一组")
    client.login("0001", PASSWORD)
    reply = client.post_form(f"/admin/org/users/{lead_user.id}", {
        "name": lead_user.name, "roles": "team_lead", "extension": "1900", "active": "1", "leads": str(team.id)})
    assert reply.status_code == 303
    assert org.groups_led_by(lead_user) == [Group.get_by_id(team.id)] and org.groups_of(lead_user)
    assert AuditLog.select().where((AuditLog.action == "user_update") & AuditLog.detail.contains("leads=A")).exists()
    assert "班长" in client.get("/admin/org/groups").get_data(as_text=True)


def test_migration_adds_the_lead_flag_to_existing_memberships(desk):  # noqa: F811
    """Should add user_group.lead to an existing database (migration 0015), existing members not leads."""
    from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

    from caseflow.models import UserGroup
    from core.db import database, is_postgres
    from core.migrations import SchemaMigration
    from hotline.schema import create_schema

    _acd, _world, _agent, agent_user, _lead_user = desk
    team = org.create_group("A", "早班一组")
    db = database.obj
    migrator = PostgresqlMigrator(db) if is_postgres(db) else SqliteMigrator(db)
    migrate(migrator.drop_column("user_group", "lead"))
    db.execute_sql("INSERT INTO user_group (user_id, group_id) VALUES (%s, %s)".replace(
        "%s", "%s" if is_postgres(db) else "?"), (agent_user.id, team.id))
    step = "0015_user_group_lead"
    SchemaMigration.delete().where(SchemaMigration.name == step).execute()
    assert step in create_schema()
    assert [(link.user_id, link.lead) for link in UserGroup.select()] == [(agent_user.id, False)]
