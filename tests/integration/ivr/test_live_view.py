"""Live IVR view: the runner keeps the registry up to date; team leads read it as JSON and on the chart."""
from __future__ import annotations

from caseflow import accounts
from ivr.live import LiveCalls
from ivr.models import IvrTreeVersion
from tests.fakeswitch import Hangup, Press, WaitFor
from tests.integration.ivr.test_admin import admin_client  # noqa: F401 - the fixture


class WatchedLive(LiveCalls):
    """A registry that also keeps every move, so a test sees the path even on a fast fake switch."""

    def __init__(self):
        super().__init__()
        self.moves = []

    def move(self, uuid, node):
        self.moves.append(node)
        super().move(uuid, node)


def test_runner_tracks_the_caller_node_by_node(phone):
    """Should show the caller at each node while the call runs and forget the call when it ends."""
    live = phone.services.live = WatchedLive()
    seen = []
    call = phone.call([Press("2"), WaitFor("playback", "self_menu"), Hangup()], wait=False)
    phone.fs.wait_for(lambda: live.counts(phone.trees.active().id), 10.0, "a caller in the live view")
    seen.append(dict(live.counts(phone.trees.active().id)))
    phone.finish(call)
    assert seen and sum(seen[0].values()) == 1
    assert live.moves[:3] == ["blacklist", "welcome", "main"] and "self_menu" in live.moves
    assert len(live) == 0 and live.snapshot()["total"] == 0


def test_live_json_for_team_leads_not_agents(admin_client):  # noqa: F811
    """Should give team leads the callers per node as JSON and refuse agents."""
    app = admin_client.application
    live = app.extensions["hotline"].services.ivr_live = LiveCalls()
    active = IvrTreeVersion.get(IvrTreeVersion.active)
    live.start("u1", active.id, "main")
    live.start("u2", active.id, "main")
    live.start("u3", active.id, "status_query")
    accounts.create_user("8001", "班长", "lead-password-1", roles=("team_lead",))
    admin_client.logout()
    admin_client.login("8001", "lead-password-1")
    data = admin_client.get("/admin/ivr/live.json").get_json()
    assert data["total"] == 3
    (version,) = data["versions"]
    assert version["version"] == active.version and version["active"] is True
    assert version["nodes"][0] == {"node": "main", "callers": 2, "longest_s": 0}
    admin_client.logout()
    admin_client.login("1001", "agent-password-1")
    assert admin_client.get("/admin/ivr/live.json").status_code == 403


def test_chart_shows_callers_per_node(admin_client):  # noqa: F811
    """Should draw a badge with the number of callers on the nodes where callers are now."""
    live = admin_client.application.extensions["hotline"].services.ivr_live = LiveCalls()
    active = IvrTreeVersion.get(IvrTreeVersion.active)
    live.start("u1", active.id, "self_menu")
    live.start("u2", active.id, "self_menu")
    page = admin_client.get("/admin/ivr/").get_data(as_text=True)
    assert page.count('class="ivr-live"') == 1 and 'data-callers="2"' in page
    live.end("u1")
    live.end("u2")
    assert 'class="ivr-live"' not in admin_client.get("/admin/ivr/").get_data(as_text=True)
