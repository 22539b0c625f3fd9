"""Knowledge answers through the pages: edit (back to review), delete, last-viewed time, files up and down,
with role checks, CSRF and the audit log."""
from __future__ import annotations

import io

from caseflow import knowledge
from caseflow.models import KnowledgeAnswer
from webui.models import AuditLog

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _item(clock):
    item = knowledge.create_item("噪音扰民处理", "由属地街道处理", review_state="approved", clock=clock)
    answer = knowledge.review(knowledge.add_answer(item, "请拨打属地街道电话。", clock=clock), "approved")
    return item, answer


def test_edit_hides_from_agents_until_reviewed(world, login, clock):
    """Should save an edited answer as unreviewed, hide it from agents (page and desk JSON) until a reviewer
    approves it, audit the edit, and refuse agents and posts without CSRF."""
    item, answer = _item(clock)
    centre, agent = login(world.centre_user), login(world.agent)
    base = f"/kb/{item.id}/answers/{answer.id}"
    assert agent.post_form(f"{base}/edit", {"content": "改"}).status_code == 403
    assert centre.post(f"{base}/edit", data={"content": "改"}).status_code in (400, 403)
    page = centre.post_form(f"{base}/edit", {"content": "请拨打12345。"}, follow_redirects=True).get_data(as_text=True)
    assert "需重新审核" in page
    assert KnowledgeAnswer.get_by_id(answer.id).review_state == "pending"
    assert "请拨打12345" not in agent.get(f"/kb/{item.id}").get_data(as_text=True)
    assert agent.get(f"/kb/{item.id}.json").get_json()["answers"] == []
    assert AuditLog.select().where(AuditLog.action == "kb_answer_edit").count() == 1
    login(world.leader).post_form(f"/kb/{item.id}/review", {"answer": str(answer.id), "state": "approved"})
    assert "请拨打12345" in agent.get(f"/kb/{item.id}").get_data(as_text=True)


def test_delete_and_last_viewed(world, login, clock):
    """Should show the last-viewed time once viewed, delete softly with a reason (audited, listed in the
    changes), and answer 404 with the reason for a deleted or unknown answer."""
    item, answer = _item(clock)
    centre = login(world.centre_user)
    centre.get(f"/kb/{item.id}")
    page = centre.get(f"/kb/{item.id}").get_data(as_text=True)
    assert KnowledgeAnswer.get_by_id(answer.id).last_viewed_at is not None
    assert "2026-03-04 10:00" in page.split(f'data-testid="kb-answer-{answer.id}"')[1].split("</small>")[0]
    centre.post_form(f"/kb/{item.id}/answers/{answer.id}/delete", {"reason": "已过时"})
    page = centre.get(f"/kb/{item.id}").get_data(as_text=True)
    assert f'data-testid="kb-answer-{answer.id}"' not in page and "已过时" in page.split('data-testid="kb-history"')[1]
    assert KnowledgeAnswer.get_by_id(answer.id).content == "请拨打属地街道电话。"
    assert AuditLog.select().where(AuditLog.action == "kb_answer_delete").count() == 1
    for url in (f"/kb/{item.id}/answers/{answer.id}/delete", f"/kb/{item.id}/answers/99999/edit"):
        response = centre.post_form(url, {"content": "x"})
        assert response.status_code == 404 and "没有找到该答案" in response.get_data(as_text=True)


def test_file_upload_and_download(world, login, clock):
    """Should upload an answer's file checked by content, let editors download it at once and agents only
    after review, and refuse a file whose content lies about its type."""
    item, answer = _item(clock)
    centre, agent = login(world.centre_user), login(world.agent)
    base = f"/kb/{item.id}/answers/{answer.id}/file"
    bad = centre.post_form(base, {"file": (io.BytesIO(b"<html><script>x</script>"), "guide.pdf")},
                           content_type="multipart/form-data", follow_redirects=True).get_data(as_text=True)
    assert "文件内容与扩展名 .pdf 不符" in bad and KnowledgeAnswer.get_by_id(answer.id).attachment_name == ""
    assert agent.post_form(base, {"file": (io.BytesIO(PDF), "a.pdf")},
                           content_type="multipart/form-data").status_code == 403
    centre.post_form(base, {"file": (io.BytesIO(PDF), "办事指南.pdf")}, content_type="multipart/form-data")
    stored = KnowledgeAnswer.get_by_id(answer.id)
    assert (stored.attachment_name, stored.attachment_type, stored.review_state) == \
        ("办事指南.pdf", "application/pdf", "pending")
    download = centre.get(base)
    assert download.status_code == 200 and download.data == PDF and download.mimetype == "application/pdf"
    assert agent.get(base).status_code == 404  # waiting for review: agents do not see it
    login(world.leader).post_form(f"/kb/{item.id}/review", {"answer": str(answer.id), "state": "approved"})
    assert agent.get(base).data == PDF
    assert AuditLog.select().where(AuditLog.action == "kb_answer_file").count() == 1
    page = centre.post_form(f"/kb/{item.id}/answers", {"content": "新答案", "file": (io.BytesIO(b"MZ\x90\x00"), "x.exe")},
                            content_type="multipart/form-data", follow_redirects=True).get_data(as_text=True)
    assert "不支持的文件类型 .exe" in page and not KnowledgeAnswer.select().where(KnowledgeAnswer.content == "新答案").exists()
