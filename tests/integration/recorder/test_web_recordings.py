"""Recordings pages: search, playback with Range, download rights, access log, department scope, chart."""
from __future__ import annotations

import pytest

from caseflow import services
from caseflow.models import Ticket
from recorder.models import RecordingAccess
from tests.unit.recorder.test_wavfile import write_pcm

from .conftest import PASSWORD


def recorded_call(cdr, store, clock, uuid, caller, agent, department=None, seconds=2.0):
    """A finished, recorded call answered by ``agent`` and a ticket (in ``department``) linked to it."""
    cdr.call_started(uuid, caller=caller, called="12345")
    rec = store.begin(uuid)
    cdr.agent_answered(uuid, agent)
    write_pcm(store.raw_path(rec), seconds=seconds)
    clock.advance(seconds=seconds)
    cdr.hangup(uuid, "NORMAL_CLEARING", "caller")
    rec = store.finish(rec)
    ticket = services.create_ticket("道路破损，请尽快修复", citizen_phone=caller, call_uuid=uuid)
    if department is not None:
        Ticket.update(department=department).where(Ticket.id == ticket.id).execute()
    rec = type(rec).get_by_id(rec.id)
    return rec, Ticket.get_by_id(ticket.id)


@pytest.fixture
def calls(cdr, web_store, clock, people):
    a = recorded_call(cdr, web_store, clock, "web-a", "13800000001", "1001", people["A"])
    b = recorded_call(cdr, web_store, clock, "web-b", "13900000002", "1002", people["B"])
    return {"a": a, "b": b}


def login(web, user):
    client = web.test_client()
    response = client.login(user.operator_no, PASSWORD)
    assert response.status_code in (200, 302), response.data[:300]
    return client


def test_search_by_ticket_caller_agent_and_date(web, calls, people):
    """Should find recordings by acceptance number, caller, agent and day, and refuse a malformed date."""
    client = login(web, people["centre"])
    (rec_a, ticket_a), (rec_b, _t) = calls["a"], calls["b"]
    page = client.get(f"/recordings/?ticket={ticket_a.number}").get_data(as_text=True)
    assert f'data-recording="{rec_a.id}"' in page and f'data-recording="{rec_b.id}"' not in page
    page = client.get("/recordings/?caller=13900000002").get_data(as_text=True)
    assert f'data-recording="{rec_b.id}"' in page and f'data-recording="{rec_a.id}"' not in page
    page = client.get("/recordings/?agent=1001").get_data(as_text=True)
    assert f'data-recording="{rec_a.id}"' in page and f'data-recording="{rec_b.id}"' not in page
    day = rec_a.day.isoformat()
    page = client.get(f"/recordings/?from={day}&to={day}").get_data(as_text=True)
    assert f'data-recording="{rec_a.id}"' in page and f'data-recording="{rec_b.id}"' in page
    assert "data-recording" not in client.get("/recordings/?from=2000-01-01&to=2000-01-02").get_data(as_text=True)
    bad = client.get("/recordings/?from=yesterday")
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.get_data(as_text=True)
    assert client.get("/recordings/?ticket=12'--").status_code == 400
    assert 'data-testid="storage-chart"' in client.get("/recordings/").get_data(as_text=True)


def test_playback_ranges_and_listen_log(web, calls, people, web_store):
    """Should answer 206 with Content-Range (from the start when no range is named), 416 past the end, and
    log one listen per playback (the first byte), not one per range request."""
    client = login(web, people["centre"])
    rec = calls["a"][0]
    data = web_store.local_path(rec).read_bytes()
    size = len(data)
    first = client.get(f"/recordings/{rec.id}/audio")
    assert first.status_code == 206 and first.headers["Accept-Ranges"] == "bytes"
    assert first.headers["Content-Range"] == f"bytes 0-{size - 1}/{size}" and first.data == data
    part = client.get(f"/recordings/{rec.id}/audio", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.headers["Content-Range"] == f"bytes 100-199/{size}"
    assert part.data == data[100:200] and part.headers["Content-Length"] == "100"
    tail = client.get(f"/recordings/{rec.id}/audio", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.data == data[-10:]
    beyond = client.get(f"/recordings/{rec.id}/audio", headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{size}"
    assert beyond.data == b""
    ignored = client.get(f"/recordings/{rec.id}/audio", headers={"Range": "bytes=0-1,5-9"})
    assert ignored.status_code == 206 and ignored.data == data
    listens = RecordingAccess.select().where(RecordingAccess.recording == rec.id)
    assert [a.action for a in listens] == ["listen", "listen"]
    assert all(a.user_id == people["centre"].id and a.user_label.startswith("3001") for a in listens)
    other = calls["b"][0]  # a first request that skips byte 0 is still a listen
    sly = client.get(f"/recordings/{other.id}/audio", headers={"Range": "bytes=1-"})
    assert sly.status_code == 206
    assert RecordingAccess.select().where(RecordingAccess.recording == other.id).count() == 1
    log_page = client.get(f"/recordings/{rec.id}").get_data(as_text=True)
    assert 'data-testid="access-log"' in log_page and "李主任" in log_page


def test_listening_streams_slices_never_a_download(web, cdr, web_store, clock, people, monkeypatch):
    """Should give a listener a long recording only in slices (206, Accept-Ranges, no Content-Disposition,
    Cache-Control no-store), whether the player names no range or asks for all of it, and log one listen."""
    from webui.blueprints import recordings

    LISTEN_SLICE = 64 * 1024  # a smaller slice than the product's, so that a 20 s recording is "long"
    monkeypatch.setattr(recordings, "LISTEN_SLICE", LISTEN_SLICE)
    rec, _ticket = recorded_call(cdr, web_store, clock, "web-long", "13700000003", "1001", people["A"],
                                 seconds=20.0)
    data = web_store.local_path(rec).read_bytes()
    size = len(data)
    assert size > 2 * LISTEN_SLICE
    client = login(web, people["agent"])
    for asked in ({}, {"Range": "bytes=0-"}, {"Range": f"bytes=0-{size - 1}"}):
        answer = client.get(f"/recordings/{rec.id}/audio", headers=asked)
        assert answer.status_code == 206, asked
        assert answer.headers["Content-Range"] == f"bytes 0-{LISTEN_SLICE - 1}/{size}"
        assert answer.data == data[:LISTEN_SLICE] and answer.headers["Accept-Ranges"] == "bytes"
        assert "Content-Disposition" not in answer.headers
        assert answer.headers["Cache-Control"] == "no-store" and answer.headers["Content-Type"] == "audio/wav"
    # A player that follows the slices hears it all, each answer at most one slice.
    heard, at = b"", 0
    while at < size:
        piece = client.get(f"/recordings/{rec.id}/audio", headers={"Range": f"bytes={at}-"})
        assert piece.status_code == 206 and 0 < len(piece.data) <= LISTEN_SLICE
        heard, at = heard + piece.data, at + len(piece.data)
    assert heard == data
    actions = [a.action for a in RecordingAccess.select().where(RecordingAccess.recording == rec.id)]
    assert actions == ["listen"] * 4  # the three asks from byte 0 and the player's first request


def test_download_rights(web, calls, people):
    """Should let the centre and the ticket's department leader download (logged, an attachment, not kept in
    a cache), and refuse agents and department handlers with a 403 that says why, and other departments."""
    rec = calls["a"][0]
    centre = login(web, people["centre"]).get(f"/recordings/{rec.id}/download")
    assert centre.status_code == 200 and "attachment" in centre.headers["Content-Disposition"]
    assert centre.headers["Cache-Control"] == "no-store" and centre.data[:4] == b"RIFF"
    assert login(web, people["dept_a_leader"]).get(f"/recordings/{rec.id}/download").status_code == 200
    refused = login(web, people["agent"]).get(f"/recordings/{rec.id}/download")
    assert refused.status_code == 403
    assert "下载备案需要“下载录音备案”权限" in refused.get_data(as_text=True)
    assert login(web, people["dept_a"]).get(f"/recordings/{rec.id}/download").status_code == 403
    assert login(web, people["dept_b_leader"]).get(f"/recordings/{rec.id}/download").status_code == 404
    assert login(web, people["admin"]).get(f"/recordings/{rec.id}/download").status_code == 403
    downloads = RecordingAccess.select().where(RecordingAccess.action == "download")
    assert sorted(a.user.operator_no for a in downloads) == ["3001", "4002"]


def test_download_is_a_permission(web, calls, people):
    """Should follow recording.download as set on the roles page: taken from the centre it refuses, given to
    agents it lets an agent download the calls they answered (and only those)."""
    from caseflow.roles import DEFAULT_PERMISSIONS, reset_role_permissions, set_role_permissions

    (rec_a, _ta), (rec_b, _tb) = calls["a"], calls["b"]
    set_role_permissions("centre", DEFAULT_PERMISSIONS["centre"] - {"recording.download"})
    set_role_permissions("agent", DEFAULT_PERMISSIONS["agent"] | {"recording.download"})
    try:
        centre = login(web, people["centre"])
        assert centre.get(f"/recordings/{rec_a.id}/download").status_code == 403
        assert centre.get(f"/recordings/{rec_a.id}/audio").status_code == 206
        assert 'data-testid="recording-download"' not in centre.get(f"/recordings/{rec_a.id}").get_data(as_text=True)
        agent = login(web, people["agent"])
        assert agent.get(f"/recordings/{rec_a.id}/download").status_code == 200
        assert agent.get(f"/recordings/{rec_b.id}/download").status_code == 404
        assert 'data-testid="recording-download"' in agent.get(f"/recordings/{rec_a.id}").get_data(as_text=True)
    finally:
        reset_role_permissions("centre")
        reset_role_permissions("agent")


def test_download_link_only_for_those_who_may(web, calls, people):
    """Should show the download link on the recording, search and ticket-recordings pages to whoever may
    download, and only the player to a listener."""
    rec, ticket = calls["a"]
    href = f'href="/recordings/{rec.id}/download"'
    for who, shown in (("centre", True), ("dept_a_leader", True), ("agent", False), ("dept_a", False)):
        client = login(web, people[who])
        for url in (f"/recordings/{rec.id}", "/recordings/", f"/recordings/ticket/{ticket.number}"):
            page = client.get(url).get_data(as_text=True)
            assert f'data-recording="{rec.id}"' in page or url == f"/recordings/{rec.id}", (who, url)
            assert (href in page) is shown, (who, url)


def test_department_hears_only_its_own_tickets(web, calls, people):
    """Should show a department the recordings of its tickets and nothing of another department's."""
    (rec_a, ticket_a), (rec_b, ticket_b) = calls["a"], calls["b"]
    client = login(web, people["dept_a"])
    page = client.get("/recordings/").get_data(as_text=True)
    assert f'data-recording="{rec_a.id}"' in page and f'data-recording="{rec_b.id}"' not in page
    assert client.get(f"/recordings/{rec_a.id}/audio").status_code == 206
    assert client.get(f"/recordings/{rec_b.id}").status_code == 404
    assert client.get(f"/recordings/{rec_b.id}/audio", headers={"Range": "bytes=0-"}).status_code == 404
    # Another department's ticket answers exactly like a number that does not exist.
    assert client.get(f"/recordings/ticket/{ticket_b.number}").status_code == 404
    assert client.get(f"/recordings/ticket/{ticket_a.number}").status_code == 200
    assert 'data-testid="storage-chart"' not in page
    agent = login(web, people["agent"])
    page = agent.get("/recordings/").get_data(as_text=True)
    assert f'data-recording="{rec_a.id}"' in page and f'data-recording="{rec_b.id}"' not in page


def test_recordings_of_a_ticket(web, calls, people):
    """Should list a ticket's recordings with a player on the recording page."""
    rec, ticket = calls["a"]
    client = login(web, people["centre"])
    page = client.get(f"/recordings/ticket/{ticket.number}").get_data(as_text=True)
    assert f'data-recording="{rec.id}"' in page
    detail = client.get(f"/recordings/{rec.id}").get_data(as_text=True)
    assert f'src="/recordings/{rec.id}/audio"' in detail
    assert client.get("/recordings/ticket/99999999").status_code == 404
    assert client.get("/recordings/ticket/abc").status_code == 404


def test_anonymous_and_wrong_roles_refused(web, calls, people):
    """Should send anonymous users to log in and refuse roles without access to recordings."""
    rec = calls["a"][0]
    anonymous = web.test_client().get(f"/recordings/{rec.id}/audio")
    assert anonymous.status_code in (302, 401, 403)
    assert login(web, people["admin"]).get("/recordings/").status_code == 403


@pytest.mark.parametrize("query", ["caller=" + "1" * 40, "agent=%3Cscript%3E", "ticket=1234567890",
                                   "from=2026-13-01", "from=2026-01-10&to=2026-01-01",
                                   "from=2020-01-01&to=2026-01-01", "caller=138%27%20OR%201%3D1"])
def test_hostile_search_input_is_refused_clearly(web, people, query):
    """Should answer malformed, oversized and hostile search fields with a 400 that says what is wrong."""
    response = login(web, people["centre"]).get(f"/recordings/?{query}")
    assert response.status_code == 400
    assert 'data-testid="search-error"' in response.get_data(as_text=True)


def test_odd_page_numbers_and_unknown_recordings(web, calls, people):
    """Should treat a nonsense page number as the first page and unknown ids as not found."""
    client = login(web, people["centre"])
    assert client.get("/recordings/?page=-3").status_code == 200
    assert client.get("/recordings/?page=" + "9" * 30).status_code == 200
    assert client.get("/recordings/999999/audio").status_code == 404
    assert client.get("/recordings/999999/download").status_code == 404


def test_access_log_names_the_client_behind_the_proxy(web, calls, people):
    """Should note the listener's own address behind the trusted reverse proxy (HOTLINE_TRUST_PROXY), as every
    other audit does, not the proxy's 127.0.0.1."""
    web.config["HOTLINE_TRUST_PROXY"] = "1"
    client = login(web, people["centre"])
    rec = calls["a"][0]
    client.get(f"/recordings/{rec.id}/audio", headers={"X-Forwarded-For": "203.0.113.9"})
    listen = RecordingAccess.get(RecordingAccess.recording == rec.id)
    assert listen.remote_addr == "203.0.113.9"
