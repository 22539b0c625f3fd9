"""Knowledge answers kept up (P5 §3.7.2): edited (back to review), deleted softly, viewed (last-viewed
time), given a file checked by content, each change in the history; and the schema step for old databases."""
from __future__ import annotations

import datetime as dt
import hashlib

import peewee
import pytest

from caseflow import knowledge, materials
from caseflow.attachments import AttachmentError
from caseflow.knowledge import KnowledgeError
from caseflow.models import KnowledgeAnswer, KnowledgeHistory, KnowledgeItem
from caseflow.workflow import PermissionDenied
from core.clock import FixedClock
from core.db import is_postgres

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def answered(org_setup, clock):
    item = knowledge.create_item("噪音扰民的处理流程", "由属地街道处理", review_state="approved", clock=clock)
    answer = knowledge.review(knowledge.add_answer(item, "请拨打属地街道电话。", clock=clock), "approved")
    return item, answer


def test_edit_goes_back_to_review_and_keeps_the_old_text(org_setup, answered, clock):
    """Should save an edited text as unreviewed (agents no longer see it until reviewed again), keep the old
    text in the history with who changed it, and leave an unchanged save alone."""
    o = org_setup
    item, answer = answered
    assert knowledge.answers_for(item, o.agent) == [answer]
    edited = knowledge.edit_answer(answer, o.centre_user, content="请拨打12345转属地街道。", remarks="新电话",
                                   clock=clock)
    assert (edited.content, edited.review_state, edited.updated_by_id) == \
        ("请拨打12345转属地街道。", "pending", o.centre_user.id)
    assert knowledge.answers_for(item, o.agent) == []
    assert [a.id for a in knowledge.answers_for(item, o.centre_user)] == [answer.id]
    [row] = [h for h in knowledge.history(item) if h.action != "review"]
    assert (row.action, row.actor_id, row.before) == ("edit", o.centre_user.id, "请拨打属地街道电话。")
    knowledge.review(edited, "approved", o.leader)
    assert [a.id for a in knowledge.answers_for(item, o.agent)] == [answer.id]
    knowledge.edit_answer(edited, o.centre_user, content="请拨打12345转属地街道。", clock=clock)
    assert KnowledgeAnswer.get_by_id(answer.id).review_state == "approved"  # nothing changed: still reviewed


def test_bad_edits_change_nothing(org_setup, answered, clock):
    """Should refuse an empty or over-long text and an agent's edit, changing nothing."""
    o = org_setup
    _item, answer = answered
    for content, message in (("   ", "must not be empty"), ("答" * 50001, "longer than 50000")):
        with pytest.raises(KnowledgeError, match=message):
            knowledge.edit_answer(answer, o.centre_user, content=content, clock=clock)
    with pytest.raises(PermissionDenied):
        knowledge.edit_answer(answer, o.agent, content="改", clock=clock)
    stored = KnowledgeAnswer.get_by_id(answer.id)
    assert (stored.content, stored.review_state) == ("请拨打属地街道电话。", "approved")
    assert not KnowledgeHistory.select().where(KnowledgeHistory.action != "review").exists()


def test_delete_is_soft_and_hides_the_answer_everywhere(org_setup, answered, clock, tmp_path):
    """Should hide a deleted answer from every reader, the fax materials and further changes, while its
    text and file stay stored and the history says who deleted it and why."""
    o = org_setup
    item, answer = answered
    answer = knowledge.attach_file(answer, o.centre_user, tmp_path, PDF, "流程.pdf", clock)
    knowledge.review(answer, "approved", o.leader)
    assert [a.id for _i, a in materials.fax_answers("噪音")] == [answer.id]
    knowledge.delete_answer(answer, o.centre_user, "已过时", clock=clock)
    assert knowledge.answers_for(item, o.centre_user) == [] and materials.fax_answers("噪音") == []
    for change in (lambda: knowledge.edit_answer(answer, o.centre_user, content="x", clock=clock),
                   lambda: knowledge.delete_answer(answer, o.centre_user, clock=clock),
                   lambda: knowledge.review(KnowledgeAnswer.get_by_id(answer.id), "approved", o.leader)):
        with pytest.raises(KnowledgeError, match="deleted"):
            change()
    with pytest.raises(KnowledgeError, match="no such answer"):
        knowledge.answer_for(item, answer.id, o.centre_user)
    stored = KnowledgeAnswer.get_by_id(answer.id)
    assert stored.content == "请拨打属地街道电话。" and (tmp_path / stored.attachment_path).read_bytes() == PDF
    last = knowledge.history(item)[-1]
    assert (last.action, last.actor_id, last.note, last.before) == \
        ("delete", o.centre_user.id, "已过时", "请拨打属地街道电话。")


def test_views_set_the_last_viewed_time(org_setup, answered, clock):
    """Should count a view of the item and of each answer shown, and set their last-viewed time."""
    item, answer = answered
    assert KnowledgeAnswer.get_by_id(answer.id).last_viewed_at is None
    later = FixedClock(clock.now() + dt.timedelta(hours=2))
    knowledge.record_view(item, later, answers=(answer,))
    stored = KnowledgeAnswer.get_by_id(answer.id)
    assert stored.views == 1 and stored.last_viewed_at == dt.datetime(2026, 3, 4, 4, 0)  # 12:00 Shanghai
    assert KnowledgeItem.get_by_id(item.id).last_viewed_at == stored.last_viewed_at


def test_file_checked_by_content_and_stored_with_sha256(org_setup, answered, clock, tmp_path):
    """Should store an answer's file with its size and sha256, typed by its content, put the answer back to
    review, serve it (counting a view), and refuse a file whose content is not what its name says, an
    unaccepted type, an empty or oversized file, leaving nothing behind."""
    o = org_setup
    item, answer = answered
    done = knowledge.attach_file(answer, o.centre_user, tmp_path, PDF, "办事指南.pdf", clock)
    assert (done.attachment_name, done.attachment_size, done.attachment_sha256, done.attachment_type,
            done.review_state) == ("办事指南.pdf", len(PDF), hashlib.sha256(PDF).hexdigest(), "application/pdf",
                                   "pending")
    path, kind = knowledge.answer_file(done, tmp_path, clock)
    assert path.read_bytes() == PDF and kind == "application/pdf"
    assert KnowledgeAnswer.get_by_id(answer.id).views == 1
    before = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    for data, name, message in ((b"<html><script>alert(1)</script>", "guide.pdf", "not a .pdf"),
                                (b"MZ\x90\x00\x03\x00\x00\x00", "tool.exe", "not accepted"),
                                (b"<svg onload=alert(1)>", "pic.png", "not a .png"),
                                (b"GIF89a....", "readme.txt", "not a .txt"),
                                (b"", "empty.pdf", "empty")):
        with pytest.raises(AttachmentError, match=message):
            knowledge.attach_file(done, o.centre_user, tmp_path, data, name, clock)
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == before
    assert KnowledgeAnswer.get_by_id(answer.id).attachment_name == "办事指南.pdf"
    with pytest.raises(PermissionDenied):
        knowledge.attach_file(done, o.agent, tmp_path, PDF, "a.pdf", clock)
    with pytest.raises(AttachmentError, match="larger"):
        knowledge.store_answer_file(tmp_path, b"%PDF-" + b"0" * knowledge.MAX_ANSWER_FILE, "big.pdf", clock)
    # a refused file on a new answer adds no answer at all
    with pytest.raises(AttachmentError):
        knowledge.add_answer(item, "带附件的答案", o.centre_user, clock=clock,
                             file=(tmp_path, b"<html>", "x.pdf"))
    assert KnowledgeAnswer.select().count() == 1
    text = knowledge.add_answer(item, "文本附件", o.centre_user, clock=clock,
                                file=(tmp_path, "第一条\n第二条".encode(), "说明.txt"))
    assert text.attachment_type.startswith("text/plain")


def test_schema_step_upgrades_an_old_database(db):
    """Should add the new answer columns to a database made before them, keeping its answers."""
    from core.migrations import SchemaMigration
    from hotline.schema import all_models, create_schema

    item = KnowledgeItem.create(title="旧知识")
    db.drop_tables([KnowledgeHistory, KnowledgeAnswer], cascade=is_postgres(db))

    class OldAnswer(peewee.Model):
        """knowledge_answer as it was before answers could be edited."""

        item = peewee.ForeignKeyField(KnowledgeItem, on_delete="CASCADE")
        content = peewee.TextField()
        attachment_name = peewee.CharField(max_length=255, default="")
        attachment_path = peewee.CharField(max_length=512, default="")
        attachment_size = peewee.BigIntegerField(default=0)
        attachment_sha256 = peewee.CharField(max_length=64, default="")
        views = peewee.IntegerField(default=0)
        review_state = peewee.CharField(max_length=16, default="pending")
        remarks = peewee.TextField(default="")
        created_at = peewee.DateTimeField(default=dt.datetime(2026, 1, 1))

        class Meta:
            database = db
            table_name = "knowledge_answer"

    db.create_tables([OldAnswer])
    OldAnswer.create(item=item.id, content="旧答案", review_state="approved")
    SchemaMigration.delete().where(SchemaMigration.name == "0002_knowledge_answer_upkeep").execute()
    assert "0002_knowledge_answer_upkeep" in create_schema(all_models())
    [answer] = knowledge.answers_for(item, None)
    assert (answer.content, answer.deleted_at, answer.last_viewed_at, answer.attachment_type) == \
        ("旧答案", None, None, "")
    knowledge.delete_answer(answer, None, "迁移后可删除")
    assert knowledge.answers_for(item, None) == []
