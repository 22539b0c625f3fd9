"""The team-lead console's event stream (/supervisor/stream) over HTTP (Flask test client), with the ACD on the
in-process doubles: the whole board at once, then only what changed."""
from __future__ import annotations

import json

import gevent

from tests.integration.acd.doubles import Session
from tests.integration.acd.test_web import PASSWORD, desk  # noqa: F401 - the fixture
from tests.waiting import stream_until


def _events(body: str) -> list[tuple[str, dict]]:
    """(event name, data) of every event of a server-sent event stream's body."""
    found = []
    for block in body.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


def test_console_stream_sends_a_state_change_and_waiting_callers(desk, client):  # noqa: F811
    """Should send an open console stream the whole board at once, then the row of the agent whose state
    changed (in the lead's language, with the totals) and never the row of an agent that did not change,
    the queue rows when a caller starts waiting, and let go of the ACD when the stream ends."""
    acd, world, agent, _agent_user, _lead = desk
    other = next(a for a in acd.agents.values() if a.id != agent.id)
    listeners = len(acd.listeners)
    client.login("9001", PASSWORD)
    callers = []

    def change():
        acd.transition(agent.id, "login")
        acd.transition(agent.id, "ready")
        session = Session(world, caller="13912345678")  # the queue nobody ready serves: the caller waits
        callers.append((session, gevent.spawn(acd.enter_queue, session, "suggest")))

    def caller_waits(body):
        return any(name == "changes" and data["totals"]["waiting"] == 1 and "queue_rows" in data
                   for name, data in _events(body))

    body = stream_until(client, "/supervisor/stream?max_seconds=60", caller_waits, then=change)
    assert body.startswith("retry: 2000\n\n")
    events = _events(body)
    name, first = events[0]
    assert name == "board" and "agents" not in first  # the board as shown, not the ACD's raw figures
    assert {row["agent_id"] for row in first["board"]["agent_rows"]} == {agent.id, other.id}
    assert first["board"]["totals"]["logged_out"] == 2
    changes = [data for name, data in events if name == "changes"]
    rows = [row for data in changes for row in data["agent_rows"]]
    assert rows and {row["agent_id"] for row in rows} == {agent.id}, rows  # the other agent did not change
    assert rows[-1]["state_label"] == "空闲" and "强制签出" in [a["label"] for a in rows[-1]["actions"]]
    assert changes[-1]["totals"]["idle"] == 1 and changes[-1]["totals"]["logged_out"] == 1
    waiting = [data["queue_rows"] for data in changes if "queue_rows" in data]
    assert waiting and {q["queue"]: q["waiting"] for q in waiting[-1]} == {"consult": 0, "suggest": 1}
    assert changes[-1]["totals"]["waiting"] == 1
    assert len(acd.listeners) == listeners
    session, job = callers[0]
    session.hangup_now()
    job.get(timeout=5)


def test_console_stream_is_for_team_leads_only(desk, client):  # noqa: F811
    """Should refuse the console's stream to an agent, as the console and its figures, and open nothing."""
    acd, *_ = desk
    listeners = len(acd.listeners)
    client.login("8001", PASSWORD)
    assert client.get("/supervisor/stream?max_seconds=1").status_code == 403
    assert client.get("/supervisor/stats").status_code == 403
    assert len(acd.listeners) == listeners
    client.logout()
    assert client.get("/supervisor/stream?max_seconds=1").status_code in (302, 401, 403)
