"""Call records page (with the tamper check), missed-call list with call-back, and the fax log."""
from __future__ import annotations

from recorder.missed import add_missed
from recorder.models import CallbackAttempt, FaxJob, MissedCall

from .test_web_recordings import login


def test_call_records_page_flags_altered_record(web, cdr, clock, people, db):
    """Should list call records with their disposition and show one edited in SQL as altered."""
    cdr.call_started("w-1", caller="13800000001")
    cdr.queue_entered("w-1", "consult")
    clock.advance(seconds=9)
    first = cdr.hangup("w-1", "ORIGINATOR_CANCEL", "caller")
    cdr.call_started("w-2", caller="13800000002")
    cdr.agent_answered("w-2", "1001")
    clock.advance(seconds=30)
    second = cdr.hangup("w-2")
    client = login(web, people["centre"])
    page = client.get("/calls/").get_data(as_text=True)
    assert 'data-call="w-1"' in page and 'data-call="w-2"' in page and 'data-testid="altered"' not in page
    db.execute_sql("UPDATE call_record SET wait_seconds = 1 WHERE id = %d" % first.id)
    page = client.get("/calls/").get_data(as_text=True)
    assert page.count('data-testid="altered"') == 1
    assert 'data-call="w-2"' not in client.get("/calls/?disposition=abandoned").get_data(as_text=True)
    assert client.get("/calls/?disposition=nonsense").status_code == 400
    assert client.get("/calls/?from=27.11.2026").status_code == 400
    assert client.get(f"/calls/{second.id}").status_code == 200
    agent_view = login(web, people["agent2"]).get("/calls/").get_data(as_text=True)
    assert 'data-call="w-2"' not in agent_view  # answered by 1001, not by 1002
    assert login(web, people["agent2"]).get(f"/calls/{second.id}").status_code == 404
    assert login(web, people["agent"]).get(f"/calls/{second.id}").status_code == 200


def test_missed_list_and_call_back(web, people):
    """Should show open missed calls and keep a call-back outcome posted from the list."""
    entry = add_missed("13812345678", "abandoned", queue="consult")
    client = login(web, people["agent"])
    page = client.get("/calls/missed").get_data(as_text=True)
    assert f'data-missed="{entry.id}"' in page and "13812345678" in page
    response = client.post_form(f"/calls/missed/{entry.id}/attempt", {"outcome": "no_answer", "note": "无人接"})
    assert response.status_code == 302
    assert CallbackAttempt.get().outcome == "no_answer" and CallbackAttempt.get().agent_id == people["agent"].id
    assert client.post_form(f"/calls/missed/{entry.id}/attempt", {"outcome": "???"}).status_code == 400
    assert client.post_form("/calls/missed/999999/attempt", {"outcome": "reached"}).status_code == 404
    assert client.post(f"/calls/missed/{entry.id}/attempt", data={"outcome": "reached"}).status_code in (400, 403)
    client.post_form(f"/calls/missed/{entry.id}/attempt", {"outcome": "reached"})
    assert MissedCall.get_by_id(entry.id).status == "done"
    assert f'data-missed="{entry.id}"' not in client.get("/calls/missed").get_data(as_text=True)
    assert f'data-missed="{entry.id}"' in client.get("/calls/missed?status=done").get_data(as_text=True)
    assert login(web, people["dept_a"]).get("/calls/missed").status_code == 403


def test_a_recording_that_filed_no_ticket_is_labelled(web, people):
    """Should show a caller listed because their IVR recording filed no ticket with that reason's label."""
    entry = add_missed("13812345679", "no_ticket")
    page = login(web, people["agent"]).get("/calls/missed").get_data(as_text=True)
    assert f'data-missed="{entry.id}"' in page and "录音无法受理" in page


def test_dial_uses_the_lent_dialler(web, people):
    """Should ring through the dialler the process lends, and say so when none is connected."""
    entry = add_missed("13812345678", "out_of_hours")
    client = login(web, people["agent"])
    response = client.post_form(f"/calls/missed/{entry.id}/dial")
    assert "message=nodialler" in response.headers["Location"]
    dialled = []
    web.extensions["hotline"].services.originate_callback = lambda user, number: dialled.append(
        (user.operator_no, number)) or "cb-uuid"
    response = client.post_form(f"/calls/missed/{entry.id}/dial")
    assert "message=calling" in response.headers["Location"] and dialled == [("1001", "13812345678")]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'name="call_uuid" value="cb-uuid"' in page
    client.post_form(f"/calls/missed/{entry.id}/attempt", {"outcome": "reached", "call_uuid": "cb-uuid"})
    assert CallbackAttempt.get().call_uuid == "cb-uuid"

    def refuse(user, number):
        raise ValueError("您的话机未注册 / your phone is not registered")
    web.extensions["hotline"].services.originate_callback = refuse
    other = add_missed("13812340000", "abandoned")
    response = client.post_form(f"/calls/missed/{other.id}/dial")
    assert "message=refused" in response.headers["Location"]
    assert "话机未注册" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_claimed_entry_is_not_called_twice(web, people):
    """Should refuse a second agent's call-back while the first holds the entry, and free it once the
    first agent writes down the outcome."""
    entry = add_missed("13812345678", "abandoned", queue="consult")
    dialled = []
    web.extensions["hotline"].services.originate_callback = lambda user, number: dialled.append(
        user.operator_no) or f"cb-{len(dialled)}"
    first, second = login(web, people["agent"]), login(web, people["agent2"])
    assert "message=calling" in first.post_form(f"/calls/missed/{entry.id}/dial").headers["Location"]
    page = second.get("/calls/missed").get_data(as_text=True)
    assert 'data-testid="claimed"' in page and people["agent"].name in page
    response = second.post_form(f"/calls/missed/{entry.id}/dial")
    assert "message=refused" in response.headers["Location"] and dialled == ["1001"]
    response = second.post_form(f"/calls/missed/{entry.id}/attempt", {"outcome": "reached"})
    assert "message=refused" in response.headers["Location"] and CallbackAttempt.select().count() == 0
    first.post_form(f"/calls/missed/{entry.id}/attempt", {"outcome": "busy", "call_uuid": "cb-1"})
    assert MissedCall.get_by_id(entry.id).claimed_by_id is None
    assert "message=calling" in second.post_form(f"/calls/missed/{entry.id}/dial").headers["Location"]
    assert dialled == ["1001", "1002"]


def test_fax_log_page(web, people):
    """Should list fax jobs with their state for the centre."""
    job = FaxJob.create(direction="out", number="02588886666", state="failed", error="NO_ANSWER")
    page = login(web, people["centre"]).get("/calls/fax").get_data(as_text=True)
    assert f'data-fax="{job.id}"' in page and "NO_ANSWER" in page


def test_call_detail_lists_only_the_tickets_the_viewer_may_see(web, cdr, clock, people):
    """Should list a call's ticket on its page only to whom caseflow's visibility rule shows that ticket:
    an agent whose role no longer sees every ticket still opens their own call, without its ticket."""
    from caseflow import services as case_services
    from caseflow.models import TicketCall
    from caseflow.roles import DEFAULT_PERMISSIONS, set_role_permissions

    cdr.call_started("w-3", caller="13800000003")
    cdr.agent_answered("w-3", "1001")
    clock.advance(seconds=20)
    record = cdr.hangup("w-3")
    ticket = case_services.create_ticket("楼道堆物", citizen_phone="13800000003", created_by=people["centre"])
    TicketCall.create(ticket=ticket, call_uuid="w-3")
    assert ticket.number in login(web, people["agent"]).get(f"/calls/{record.id}").get_data(as_text=True)
    set_role_permissions("agent", DEFAULT_PERMISSIONS["agent"] - {"ticket.view_all"})
    page = login(web, people["agent"]).get(f"/calls/{record.id}")
    assert page.status_code == 200 and ticket.number not in page.get_data(as_text=True)
    assert ticket.number in login(web, people["centre"]).get(f"/calls/{record.id}").get_data(as_text=True)
