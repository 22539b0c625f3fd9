"""The public website's guides, notices and opinion poll (issue 11 item 4), through the Flask client on both
databases: what editors and the centre publish shows, nothing else does."""
from __future__ import annotations

import pytest

from caseflow import knowledge, public_notices
from caseflow.models import KnowledgeItem, PublicNotice
from ivr import polls
from ivr.models import PollAnswer
from webui.models import AuditLog

from .test_portal import known_captcha  # noqa: F401 (fixture: one-letter pictures)

SCRIPT = "<script>alert(1)</script>"


def _item(world, title, content, public=True, approved=True):
    item = knowledge.create_item(title, content, category=world.noise, publisher=world.admin,
                                 review_state="approved" if approved else "pending")
    if public:
        knowledge.set_public(item, True, world.admin)
    return item


# ------------------------------------------------------------------------------------------ guides
def test_editor_marks_an_item_public_and_it_shows_once_reviewed(world, login, client):
    """Should let an editor mark an item for the website (audited), show it there only once reviewed,
    with reviewed answers only, and refuse the flag to a user who may not edit."""
    item = knowledge.create_item("夜间施工噪音投诉办理指南", "可向城管部门反映。", publisher=world.admin)
    knowledge.add_answer(item, "已审核的答案", world.admin)
    pending = knowledge.add_answer(item, "待审核的答案", world.admin)
    KnowledgeItem.update(review_state="approved").where(KnowledgeItem.id == item.id).execute()
    knowledge.review(knowledge.answers_for(item, world.admin)[0], "approved", world.admin)
    assert client.get(f"/guides/{item.id}").status_code == 404
    centre = login(world.centre_user)
    assert centre.post_form(f"/kb/{item.id}/public", {"public": "1"}).status_code == 303
    assert KnowledgeItem.get_by_id(item.id).public
    assert AuditLog.select().where((AuditLog.action == "kb_public") & (AuditLog.obj_id == str(item.id))).exists()
    page = client.get(f"/guides/{item.id}").get_data(as_text=True)
    assert "可向城管部门反映" in page and "已审核的答案" in page and pending.content not in page
    assert "夜间施工噪音投诉办理指南" in client.get("/guides").get_data(as_text=True)
    knowledge.update_item(item, world.admin, content="改过的内容")  # back to review: off the site
    client.application.extensions["page_cache"].clear()  # changed here directly, not on the kb page (which does it)
    assert client.get(f"/guides/{item.id}").status_code == 404
    assert login(world.agent).post_form(f"/kb/{item.id}/public", {"public": ""}).status_code == 403
    centre.post_form(f"/kb/{item.id}/public", {"public": ""})
    assert not KnowledgeItem.get_by_id(item.id).public


def test_guides_are_searched_with_the_chinese_search(world, client):
    """Should find public reviewed items with the desk's search (噪声 扰民 finds 噪音扰民) and never an
    internal or unreviewed one, also by category."""
    _item(world, "噪音扰民怎么办", "夜间施工可以投诉。")
    _item(world, "内部口径：噪音扰民", "仅供话务员参考。", public=False)
    _item(world, "未审核：噪音扰民", "待审核。", approved=False)
    page = client.get("/guides?q=噪声 扰民").get_data(as_text=True)
    assert "噪音扰民怎么办" in page and "内部口径" not in page and "未审核" not in page
    assert "噪音扰民怎么办" in client.get(f"/guides?category={world.noise.id}").get_data(as_text=True)
    assert "没有匹配" in client.get("/guides?q=公积金").get_data(as_text=True)
    assert client.get("/guides?q=" + "长" * 500).status_code == 200


def test_script_in_a_guide_is_inert(world, client):
    """Should show script in a guide as text."""
    item = _item(world, SCRIPT, SCRIPT)
    page = client.get(f"/guides/{item.id}").get_data(as_text=True)
    assert SCRIPT not in page and "&lt;script&gt;" in page


def test_migration_adds_the_public_flag(db, world):
    """Should add knowledge_item.public to a database made before it, items staying internal."""
    from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

    from core.db import is_postgres
    from core.migrations import SchemaMigration
    from hotline.schema import all_models, create_schema

    item = knowledge.create_item("旧知识", "内容")
    migrator = PostgresqlMigrator(db) if is_postgres(db) else SqliteMigrator(db)
    migrate(migrator.drop_column("knowledge_item", "public"))
    assert "public" not in {c.name for c in db.get_columns("knowledge_item")}
    SchemaMigration.delete().where(SchemaMigration.name == "0003_knowledge_item_public").execute()
    assert "0003_knowledge_item_public" in create_schema(all_models())
    assert KnowledgeItem.get_by_id(item.id).public is False


# ------------------------------------------------------------------------------------------ notices
def test_notice_draft_review_publish_withdraw(world, login, client):
    """Should take a notice from draft through review to the website (a centre leader publishes), withdraw
    it, audit every move, and refuse moves to the wrong role or status."""
    centre, leader = login(world.centre_user), login(world.leader)
    assert centre.post_form("/centre/notices/", {"title": "春节期间热线服务安排", "body": "12345 全天候服务。"}
                            ).status_code == 303
    notice = PublicNotice.get()
    assert notice.status == "draft" and client.get(f"/notices/{notice.id}").status_code == 404
    centre.post_form(f"/centre/notices/{notice.id}", {"title": "春节期间热线服务安排（修订）", "body": "全天候服务。"})
    centre.post_form(f"/centre/notices/{notice.id}/move", {"move": "submit"})
    assert PublicNotice.get_by_id(notice.id).status == "review"
    response = centre.post_form(f"/centre/notices/{notice.id}/move", {"move": "publish"})
    assert response.status_code == 303 and PublicNotice.get_by_id(notice.id).status == "review"  # not a leader
    page = centre.post_form(f"/centre/notices/{notice.id}", {"title": "x", "body": "y"}, follow_redirects=True)
    assert "只有草稿" in page.get_data(as_text=True)
    assert 'value="publish"' not in centre.get(f"/centre/notices/{notice.id}").get_data(as_text=True)
    leader.post_form(f"/centre/notices/{notice.id}/move", {"move": "publish"})
    assert PublicNotice.get_by_id(notice.id).status == "published"
    assert "春节期间热线服务安排（修订）" in client.get("/notices").get_data(as_text=True)
    assert "全天候服务" in client.get(f"/notices/{notice.id}").get_data(as_text=True)
    leader.post_form(f"/centre/notices/{notice.id}/move", {"move": "withdraw"})
    assert client.get(f"/notices/{notice.id}").status_code == 404
    assert "春节" not in client.get("/notices").get_data(as_text=True)
    actions = {a.action for a in AuditLog.select().where(AuditLog.obj_type == "public_notice")}
    assert actions == {"notice_create", "notice_edit", "notice_submit", "notice_publish", "notice_withdraw"}
    for user in (world.east_user, world.agent):
        assert login(user).get("/centre/notices/").status_code == 403


def test_notice_input_is_checked_and_script_inert(world, login, client):
    """Should refuse an empty or over-long notice with a message and show script as text."""
    centre = login(world.centre_user)
    for title, body in (("", "正文"), ("标题", ""), ("长" * 201, "正文"), ("标题", "长" * 20001)):
        centre.post_form("/centre/notices/", {"title": title, "body": body})
    assert PublicNotice.select().count() == 0
    notice = public_notices.create(SCRIPT, SCRIPT, world.centre_user)
    public_notices.move(notice, "submit", world.centre_user)
    public_notices.move(notice, "publish", world.leader)
    page = client.get(f"/notices/{notice.id}").get_data(as_text=True)
    assert SCRIPT not in page and "&lt;script&gt;" in page
    with pytest.raises(public_notices.NoticeError):
        public_notices.move(notice, "publish", world.leader)


# ------------------------------------------------------------------------------------------ poll
@pytest.fixture
def poll(db):
    made = polls.create_poll("2026年市民满意度调查", "您对12345服务满意吗？|123\n您是否愿意推荐？|12")
    polls.activate_poll(made)
    return made


def _answer(client, poll, phone="13700001111", captcha="AAAAA", skip_last=False):
    client.get("/captcha.png")
    questions = polls.questions_of(poll)
    data = {f"q_{q.id}": q.choices[0] for q in (questions[:-1] if skip_last else questions)}
    return client.post("/poll", data={**data, "phone": phone, "captcha": captcha, "csrf_token": client.csrf_token()})


def test_no_active_poll(client, db):
    """Should say there is no poll when none is active."""
    assert "目前没有进行中的调查" in client.get("/poll").get_data(as_text=True)


def test_web_answer_counts_with_the_phone_once_per_number(app, client, poll):
    """Should record a web answer in the same answers as the phone (counted together), once per number
    whether the number answered on the web or on the phone, and audit it."""
    page = client.get("/poll").get_data(as_text=True)
    assert "您对12345服务满意吗？" in page and "按键 1" in page
    response = _answer(client, poll)
    assert response.status_code == 200 and 'data-testid="done"' in response.get_data(as_text=True)
    assert PollAnswer.select().where(PollAnswer.caller == "13700001111").count() == 2
    again = _answer(app.test_client(), poll)
    assert again.status_code == 409 and "已参加过" in again.get_data(as_text=True)
    phone_question = polls.questions_of(poll)[0]
    PollAnswer.create(question=phone_question, answer="1", caller="13900002222", call_uuid="uuid-1")  # the IVR's
    assert _answer(app.test_client(), poll, phone="13900002222").status_code == 409
    assert PollAnswer.select().count() == 3
    assert AuditLog.select().where(AuditLog.action == "portal_poll").count() == 1


@pytest.mark.parametrize("change, status", [({"captcha": "BBBBB"}, 400), ({"phone": "not-a-phone"}, 400),
                                            ({"phone": ""}, 400), ({"skip_last": True}, 400)])
def test_bad_poll_answers_are_refused(client, poll, change, status):
    """Should refuse a wrong picture code, a bad or missing phone number and an unanswered question,
    storing nothing."""
    response = _answer(client, poll, **change)
    assert response.status_code == status and 'data-testid="error"' in response.get_data(as_text=True)
    assert PollAnswer.select().count() == 0


def test_poll_needs_csrf_and_a_choice_from_the_list(client, poll):
    """Should refuse a post without the CSRF token and an answer that is not one of the keys."""
    assert client.post("/poll", data={"phone": "13700001111"}).status_code == 400
    client.get("/captcha.png")
    question = polls.questions_of(poll)[0]
    data = {f"q_{q.id}": q.choices[0] for q in polls.questions_of(poll)} | {f"q_{question.id}": "9"}
    response = client.post("/poll", data={**data, "phone": "13700001111", "captcha": "AAAAA",
                                          "csrf_token": client.csrf_token()})
    assert response.status_code == 400 and PollAnswer.select().count() == 0
