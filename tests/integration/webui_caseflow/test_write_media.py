"""Who may write to a ticket (notes, files), recordings played through the recorder, links to the call
record and IVR trace, one source of status labels, the blacklist and outbound fax from the ticket page."""
from __future__ import annotations

import datetime as dt
import io

import pytest

from caseflow import attachments, roles, services
from caseflow.models import Attachment, Citizen, TicketHistory, User
from caseflow.workflow import STATUS_LABELS, PermissionDenied
from recorder.models import CallRecord, FaxJob, Recording, RecordingAccess
from webui.models import AuditLog

from .conftest import PASSWORD


def _user(no, roles_, dept):
    from caseflow.accounts import hash_password

    return User.create(operator_no=no, name=f"用户{no}", password_hash=hash_password(PASSWORD), roles=roles_,
                       department=dept)


def _root(app):
    return app.extensions["hotline"].config.attachments_dir


# ---- 1. write permissions ---------------------------------------------------------------------------
def test_write_rule_in_the_services(app, world, clock):
    """Should let the handling department, the centre and the recorder of a ticket add notes and files,
    and refuse other agents, leaders and (by default) team leads with a clear message."""
    t = world.east_ticket
    other_agent = _user("1002", "agent", world.centre)
    lead = _user("1101", "team_lead", world.centre)
    city_leader = _user("8001", "leader", world.centre)
    for allowed in (world.east_user, world.centre_user, world.leader, world.agent):
        services.add_note(t, f"note by {allowed.operator_no}", actor=allowed, clock=clock)
        attachments.add_attachment(t, _root(app), b"data", "a.txt", actor=allowed, clock=clock)
    for refused in (other_agent, lead, city_leader):
        assert services.may_view(refused, t)
        with pytest.raises(PermissionDenied) as error:
            services.add_note(t, "x", actor=refused, clock=clock)
        assert str(error.value).startswith("您只能查看该工单") and "may view this ticket but not" in str(error.value)
        with pytest.raises(PermissionDenied):
            attachments.add_attachment(t, _root(app), b"data", "b.txt", actor=refused, clock=clock)
    with pytest.raises(services.NotFound):
        services.add_note(t, "x", actor=world.west_user, clock=clock)
    assert Attachment.select().where(Attachment.filename == "b.txt").count() == 0
    # The roles table decides for team leads.
    roles.set_role_permissions("team_lead", roles.DEFAULT_PERMISSIONS["team_lead"] | {"ticket.annotate"})
    services.add_note(t, "lead may now", actor=User.get_by_id(lead.id), clock=clock)
    notes = [h.note for h in services.timeline(t) if h.action == "note"]
    assert notes[-1] == "lead may now" and len(notes) == 5


def test_write_refused_on_the_page(world, login):
    """Should hide the note and upload forms from a viewer who may not write, and answer their posts with
    403 and the reason, storing nothing."""
    t = world.east_ticket
    viewer = _user("1003", "agent", world.centre)
    client = login(viewer)
    page = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert 'action="/tickets/%s/note"' % t.number not in page and 'name="file"' not in page
    note = client.post(f"/tickets/{t.number}/note", data={"note": "偷偷备注", "csrf_token": client.csrf_token()})
    upload = client.post(f"/tickets/{t.number}/attach", content_type="multipart/form-data",
                         data={"file": (io.BytesIO(b"x"), "x.txt"), "csrf_token": client.csrf_token()})
    for response in (note, upload):
        assert response.status_code == 403 and "您只能查看该工单" in response.get_data(as_text=True)
    assert not TicketHistory.select().where(TicketHistory.note == "偷偷备注").exists()
    assert Attachment.select().where(Attachment.ticket == t).count() == 0
    handler = login(world.east_user)
    assert 'name="file"' in handler.get(f"/tickets/{t.number}").get_data(as_text=True)
    ok = handler.post(f"/tickets/{t.number}/note", data={"note": "已联系", "csrf_token": handler.csrf_token()})
    assert ok.status_code == 303


# ---- 2. recordings and calls --------------------------------------------------------------------------
def _recording(app, ticket, call_uuid="c0ffee00-0000-4000-8000-000000000001", attach=True):
    """A call with an indexed recording file, linked to ``ticket`` (as the IVR does for a message)."""
    rec_root = app.extensions["hotline"].config.recordings_dir
    day = dt.date(2026, 3, 4)
    rel = f"{day.isoformat()}/{call_uuid}.wav"
    (rec_root / day.isoformat()).mkdir(parents=True, exist_ok=True)
    data = b"RIFF" + b"\x00" * 2000
    (rec_root / rel).write_bytes(data)
    call = CallRecord.create(call_uuid=call_uuid, caller=ticket.citizen_phone, called="12345")
    rec = Recording.create(call=call, call_uuid=call_uuid, kind="ivr_message", path=rel, day=day,
                           status="ok", size=len(data))
    services.link_call(ticket, call_uuid)
    if attach:
        Attachment.create(ticket=ticket, kind="recording", filename="message.wav", path="recordings/" + rel,
                          content_type="audio/wav", size=len(data))
    return call, rec


def test_recording_plays_through_the_recorder(app, world, login):
    """Should play a ticket's recording through /recordings/<id>/audio (Range, listen log), redirect the
    old file route there, and link the call record."""
    t = world.east_ticket
    call, rec = _recording(app, t)
    row = Attachment.get(Attachment.ticket == t)
    client = login(world.east_user)
    page = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert f'src="/recordings/{rec.id}/audio"' in page and f"/tickets/{t.number}/files/{row.id}" not in page
    assert f'href="/recordings/ticket/{t.number}"' in page
    moved = client.get(f"/tickets/{t.number}/files/{row.id}")
    assert moved.status_code == 302 and moved.headers["Location"].endswith(f"/recordings/{rec.id}/audio")
    part = client.get(f"/recordings/{rec.id}/audio", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.data) == 100
    assert [(a.user_id, a.action) for a in RecordingAccess.select()] == [(world.east_user.id, "listen")]
    # The department of another ticket cannot hear it even through the redirect.
    assert login(world.west_user).get(f"/recordings/{rec.id}/audio").status_code == 404
    centre = login(world.centre_user).get(f"/tickets/{t.number}").get_data(as_text=True)
    assert f'href="/calls/{call.id}"' in centre


def test_ticket_page_download_link_only_for_those_who_may(app, world, login):
    """Should show the recording's download link (下载备案) on the ticket page to the centre, both for an
    attached recording and a linked call's, and only the players to a department handler, whose download is
    refused with a 403 that says why."""
    t = world.east_ticket
    _call, attached = _recording(app, t)
    _call2, linked = _recording(app, t, "c0ffee00-0000-4000-8000-000000000003", attach=False)
    centre = login(world.centre_user).get(f"/tickets/{t.number}").get_data(as_text=True)
    for rec in (attached, linked):
        assert f'href="/recordings/{rec.id}/download"' in centre
    handler = login(world.east_user)
    page = handler.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert f'src="/recordings/{attached.id}/audio"' in page and f'src="/recordings/{linked.id}/audio"' in page
    assert f"/recordings/{attached.id}/download" not in page and f"/recordings/{linked.id}/download" not in page
    refused = handler.get(f"/recordings/{attached.id}/download")
    assert refused.status_code == 403 and "下载录音备案" in refused.get_data(as_text=True)


def test_linked_recording_without_attachment_and_ivr_trace(app, world, login):
    """Should list a linked call's recording that is not an attachment, and link the call's IVR trace."""
    from ivr.models import IvrTrace

    t = world.west_ticket
    call, rec = _recording(app, t, "c0ffee00-0000-4000-8000-000000000002", attach=False)
    IvrTrace.create(call_uuid=call.call_uuid, caller=t.citizen_phone, started_at=dt.datetime(2026, 3, 4, 2))
    page = login(world.centre_user).get(f"/tickets/{t.number}").get_data(as_text=True)
    assert 'data-testid="call-recordings"' in page and f'src="/recordings/{rec.id}/audio"' in page
    assert f'href="/admin/ivr/traces/{call.call_uuid}"' in page
    dept_page = login(world.west_user).get(f"/tickets/{t.number}").get_data(as_text=True)
    assert "/admin/ivr/traces/" not in dept_page and f'href="/calls/{call.id}"' not in dept_page


# ---- 4. one source of labels ----------------------------------------------------------------------------
def test_status_labels_from_one_table(world, login):
    """Should show the workflow's own status, type and channel labels on every page that lists a ticket."""
    t = world.east_ticket
    zh = STATUS_LABELS[t.status][0]
    centre = login(world.centre_user)
    pages = [centre.get(f"/tickets/{t.number}"), centre.get(f"/agent/tickets?q={t.number}"),
             centre.get(f"/tickets/search?number={t.number}"), login(world.east_user).get("/dept/")]
    for response in pages:
        text = response.get_data(as_text=True)
        assert response.status_code == 200 and zh in text and "已派发" not in text, response.request.path
    listing = pages[1].get_data(as_text=True)
    assert f'href="/tickets/{t.number}"' in listing and "投诉" in listing and "电话" in listing
    assert centre.get(f"/tickets/{t.number}").status_code == 200


# ---- 3. blacklist ---------------------------------------------------------------------------------------
def test_blacklist_page(world, login):
    """Should let the centre and the administrator list, add (with a reason) and remove numbers, audited,
    on the Citizen flag the IVR checks; others get 403 and bad input a clear error."""
    centre = login(world.centre_user)
    assert login(world.agent).get("/centre/blacklist").status_code == 403
    assert login(world.east_user).get("/centre/blacklist").status_code == 403
    missing = centre.post("/centre/blacklist", data={"phone": "13700000001", "reason": "",
                                                     "csrf_token": centre.csrf_token()}, follow_redirects=True)
    assert "请填写加入黑名单的原因" in missing.get_data(as_text=True) and not services.is_blacklisted("13700000001")
    bad = centre.post("/centre/blacklist", data={"phone": "<script>", "reason": "x",
                                                 "csrf_token": centre.csrf_token()}, follow_redirects=True)
    assert "电话号码格式不正确" in bad.get_data(as_text=True) and "<script>" not in bad.get_data(as_text=True)
    centre.post("/centre/blacklist", data={"phone": "137-0000-0001", "reason": "反复骚扰",
                                           "csrf_token": centre.csrf_token()})
    assert services.is_blacklisted("13700000001")
    page = login(world.admin).get("/centre/blacklist").get_data(as_text=True)
    assert "13700000001" in page and "反复骚扰" in page
    admin = login(world.admin)
    admin.post("/centre/blacklist/remove", data={"phone": "13700000001", "csrf_token": admin.csrf_token()})
    assert not services.is_blacklisted("13700000001")
    actions = [(a.operator_no, a.action) for a in AuditLog.select().where(AuditLog.obj_type == "citizen")]
    assert actions == [("9001", "blacklist_add"), ("0001", "blacklist_remove")]


def test_blacklist_from_harassment_ticket(world, login, clock):
    """Should offer centre roles a blacklist button on a harassment ticket only, and record it."""
    t = services.create_ticket("反复来电辱骂", type="harassment", citizen_phone="13600000066",
                               created_by=world.agent, clock=clock)
    centre = login(world.centre_user)
    assert 'data-testid="do-blacklist"' in centre.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert 'do-blacklist' not in centre.get(f"/tickets/{world.east_ticket.number}").get_data(as_text=True)
    assert 'do-blacklist' not in login(world.agent).get(f"/tickets/{t.number}").get_data(as_text=True)
    refused = login(world.agent).post(f"/tickets/{t.number}/blacklist", data={"reason": "x",
                                                                              "csrf_token": login(world.agent).csrf_token()})
    assert refused.status_code in (400, 403) and not services.is_blacklisted("13600000066")
    centre.post(f"/tickets/{t.number}/blacklist", data={"reason": "", "csrf_token": centre.csrf_token()})
    citizen = Citizen.get(Citizen.phone == "13600000066")
    assert citizen.blacklisted and t.number in citizen.blacklist_reason
    assert [h.action for h in services.timeline(t)][-1] == "blacklist"
    assert 'data-testid="blacklisted"' in centre.get(f"/tickets/{t.number}").get_data(as_text=True)
    other = login(world.centre_user)
    wrong = other.post(f"/tickets/{world.east_ticket.number}/blacklist",
                       data={"reason": "x", "csrf_token": other.csrf_token()}, follow_redirects=True)
    assert "只有骚扰类工单" in wrong.get_data(as_text=True)


# ---- 5. outbound fax of a reply document ------------------------------------------------------------------
PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
       b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def test_fax_attachment_from_ticket(app, world, login, clock):
    """Should fax a PDF attachment through FaxService (a queued job with its state on the page), refuse a
    bad number, a non-PDF and a viewer who may not write, each with a clear error."""
    from recorder.fax import FaxService

    app.extensions["hotline"].services.fax = FaxService.from_config(app.extensions["hotline"].config,
                                                                             clock=clock)
    t = world.east_ticket
    pdf = attachments.add_attachment(t, _root(app), PDF, "答复函.pdf", actor=world.east_user, clock=clock)
    txt = attachments.add_attachment(t, _root(app), b"%PDF-not really", "notes.txt", actor=world.east_user,
                                     clock=clock)
    client = login(world.east_user)
    page = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert 'data-testid="fax-form"' in page and f'value="{pdf.id}"' in page and f'value="{txt.id}"' not in page

    def send(who, attachment, number):
        return who.post(f"/tickets/{t.number}/fax", data={"attachment": str(attachment), "number": number,
                                                         "csrf_token": who.csrf_token()}, follow_redirects=True)

    assert "传真号码应为5至20位数字" in send(client, pdf.id, "12; uuid_kill").get_data(as_text=True)
    assert "只能传真PDF文件" in send(client, txt.id, "0571-8888 8888").get_data(as_text=True)
    assert "请选择要传真的附件" in send(client, 999999, "057188888888").get_data(as_text=True)
    assert FaxJob.select().count() == 0
    viewer = login(_user("1004", "agent", world.centre))
    assert send(viewer, pdf.id, "057188888888").status_code == 403
    done = send(client, pdf.id, "0571-8888 8888").get_data(as_text=True)
    job = FaxJob.get()
    assert (job.number, job.ticket_id, job.direction, job.state) == ("057188888888", t.id, "out", "queued")
    assert "传真已排队" in done and f'data-testid="fax-state-{job.id}">排队中' in done
    assert [h.action for h in services.timeline(t)][-1] == "fax"
    centre = login(world.centre_user).get(f"/tickets/{t.number}").get_data(as_text=True)
    assert 'href="/calls/fax"' in centre and 'data-testid="fax-form"' in centre


# ---- 6. consultation material requests ---------------------------------------------------------------------
def test_material_requests_on_the_centre_desk(app, world, login, clock):
    """Should list the callers' open material requests on the centre desk, mark one done, and fax a fax
    request the knowledge answer's PDF (queued FaxJob); department users cannot act on them."""
    from caseflow import knowledge
    from caseflow.models import MaterialRequest
    from recorder.fax import FaxService

    app.extensions["hotline"].services.fax = FaxService.from_config(app.extensions["hotline"].config,
                                                                             clock=clock)
    item = knowledge.create_item("办事指南", "市民服务中心办事指南全文", publisher=world.centre_user, clock=clock)
    stored = attachments.store_file(_root(app), PDF, "办事指南.pdf", clock)
    answer = knowledge.add_answer(item, "见附件", actor=world.centre_user, attachment=stored, clock=clock)
    sms = MaterialRequest.create(caller="13800138000", topic="投诉受理流程", channel="sms", address="13800138000")
    fax = MaterialRequest.create(caller="13800138001", topic="办事指南", channel="fax", address="0571-88888888")
    client = login(world.centre_user)
    page = client.get("/centre/").get_data(as_text=True)
    assert f'data-testid="material-{sms.id}"' in page and f'data-testid="material-fax-{fax.id}"' in page
    assert f'data-testid="material-fax-{sms.id}"' not in page and f'value="{answer.id}"' in page
    client.post(f"/centre/materials/{sms.id}/done", data={"csrf_token": client.csrf_token()})
    assert MaterialRequest.get_by_id(sms.id).status == "sent"
    again = client.post(f"/centre/materials/{sms.id}/done", data={"csrf_token": client.csrf_token()},
                        follow_redirects=True)
    assert "该资料索取已处理" in again.get_data(as_text=True)
    wrong = client.post(f"/centre/materials/{fax.id}/fax", data={"answer": "abc", "csrf_token": client.csrf_token()},
                        follow_redirects=True)
    assert "请选择带PDF附件的知识答案" in wrong.get_data(as_text=True) and FaxJob.select().count() == 0
    east = login(world.east_user)
    assert east.post(f"/centre/materials/{fax.id}/fax", data={"answer": str(answer.id),
                                                             "csrf_token": east.csrf_token()}).status_code == 403
    client.post(f"/centre/materials/{fax.id}/fax", data={"answer": str(answer.id), "csrf_token": client.csrf_token()})
    job = FaxJob.get()
    assert (job.number, job.direction, job.state) == ("057188888888", "out", "queued")
    assert MaterialRequest.get_by_id(fax.id).status == "sent"
    assert "暂无待处理的资料索取" in client.get("/centre/").get_data(as_text=True)


def test_fax_the_reply(app, world, login, clock):
    """Should render the reply as a PDF (kept as a reply attachment) and queue it by fax; a ticket without a
    reply is refused with the reason."""
    from recorder.fax import FaxService

    app.extensions["hotline"].services.fax = FaxService.from_config(app.extensions["hotline"].config,
                                                                             clock=clock)
    t = world.east_ticket
    client = login(world.east_user)
    assert 'data-testid="fax-form"' not in client.get(f"/tickets/{t.number}").get_data(as_text=True)
    none = client.post(f"/tickets/{t.number}/fax", data={"attachment": "reply", "number": "057188888888",
                                                        "csrf_token": client.csrf_token()}, follow_redirects=True)
    assert "该工单还没有答复内容" in none.get_data(as_text=True)
    t = services.transition(t, "accept", world.east_user, clock=clock)
    t = services.transition(t, "reply", world.east_user, reply="噪音问题已处理，施工单位已停止夜间施工。", clock=clock)
    page = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert 'value="reply"' in page
    client.post(f"/tickets/{t.number}/fax", data={"attachment": "reply", "number": "057188888888",
                                                 "csrf_token": client.csrf_token()})
    row = Attachment.get((Attachment.ticket == t) & (Attachment.kind == "reply"))
    stored = attachments.resolve(_root(app), row).read_bytes()
    assert row.filename == f"答复-{t.number}.pdf" and stored.startswith(b"%PDF-") and row.size == len(stored)
    job = FaxJob.get()
    assert (job.number, job.ticket_id, job.state) == ("057188888888", t.id, "queued") and job.pages >= 1
