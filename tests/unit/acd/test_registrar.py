"""acd.registrar.KamailioRegistrations: agents marked from Kamailio's location table."""
from __future__ import annotations

from types import SimpleNamespace

from acd.registrar import KamailioRegistrations
from switch.kamailio import REGISTRAR

ROUTE = "sofia/internal/{extension}@127.0.0.1:5070"


class FakeAcd:
    def __init__(self, *agents):
        self.agents = {a.id: a for a in agents}
        self.peer_routes = {}
        self.calls = []

    def set_registered(self, agent_id, registered, server="", contact=""):
        self.calls.append((agent_id, registered, server, contact))
        agent = self.agents[agent_id]
        agent.registered = registered
        if server:
            agent.server = server
        if contact:
            agent.contact = contact


def agent(id_, ext, registered=False, server="", contact=""):
    return SimpleNamespace(id=id_, extension=ext, registered=registered, server=server, contact=contact)


def test_agents_follow_the_location_table_and_switch_registrations_are_left_alone():
    """Should mark a seat found in the table registered through Kamailio (its route offered from every switch),
    unregister one of Kamailio's that left, and leave a phone registered on a switch to that switch."""
    on_switch = agent(3, "1003", True, "127.0.0.1:8021", "sip:1003@x")
    acd = FakeAcd(agent(1, "1001"), agent(2, "1002", True, REGISTRAR, "sip:1002@y"), on_switch, agent(4, ""))
    rows = {"1001": "sip:1001@10.0.0.5:5060"}
    watch = KamailioRegistrations(acd, lambda: dict(rows), ROUTE, interval=3600)
    assert watch.poll() == {"registered": 1, "unregistered": 1}
    assert acd.peer_routes == {REGISTRAR: ROUTE}
    assert acd.calls == [(1, True, REGISTRAR, "sip:1001@10.0.0.5:5060"), (2, False, "", "")]
    assert on_switch.registered and on_switch.server == "127.0.0.1:8021"
    acd.calls.clear()
    assert watch.poll() == {"registered": 1, "unregistered": 0}
    assert acd.calls == []  # nothing changed, nothing written
    rows["1003"] = "sip:1003@10.0.0.7:5060"
    watch.poll()
    assert acd.calls == [(3, True, REGISTRAR, "sip:1003@10.0.0.7:5060")]


def test_a_failed_read_changes_nothing(caplog):
    acd = FakeAcd(agent(1, "1001", True, REGISTRAR, "sip:1001@z"))
    failing = {"on": True}

    def fetch():
        if failing["on"]:
            raise OSError("connection refused")
        return {}

    watch = KamailioRegistrations(acd, fetch, ROUTE)
    assert watch.poll() is None and watch.poll() is None
    assert acd.calls == [] and acd.agents[1].registered
    assert sum("cannot read the registrations" in r.message for r in caplog.records) == 1  # logged once
    failing["on"] = False
    assert watch.poll() == {"registered": 0, "unregistered": 1}
