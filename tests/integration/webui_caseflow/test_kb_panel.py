"""The JSON the agent desk's knowledge panel reads: /kb/search.json and /kb/<id>.json."""
from __future__ import annotations

from caseflow import knowledge
from caseflow.models import KnowledgeItem, User


def _items(world, clock):
    """An approved item with one approved and one pending answer, and a pending item on the same topic."""
    item = knowledge.create_item("夜间施工噪音扰民如何处理", "无证夜间施工造成噪音扰民的，由属地生态环境部门查处。",
                                 category=world.noise, publisher=world.centre_user, review_state="approved",
                                 clock=clock)
    knowledge.review(knowledge.add_answer(item, "请告知施工地点和时间。", clock=clock), "approved")
    knowledge.add_answer(item, "未审核的答案", clock=clock)
    draft = knowledge.create_item("噪音扰民草稿", "尚未审核", clock=clock)
    return item, draft


def test_search_json_gives_the_panel_marked_snippets_and_facts(world, login, clock):
    """Should list reviewed items only when asked, with the query's words marked in title and snippet,
    the publisher's department, the category and the published date."""
    item, draft = _items(world, clock)
    agent = login(world.agent)
    everything = agent.get("/kb/search.json?q=噪声 扰民").get_json()
    assert {row["id"] for row in everything} == {item.id, draft.id}  # the old box still sees all
    rows = agent.get("/kb/search.json?approved=1&q=噪声 扰民").get_json()
    assert [row["id"] for row in rows] == [item.id]
    row = rows[0]
    assert [p["text"] for p in row["title_marks"] if p["hit"]] == ["扰民"]
    assert "".join(p["text"] for p in row["title_marks"]) == item.title
    assert any(p["hit"] and p["text"] == "扰民" for p in row["snippet"])
    assert (row["department"], row["category"], row["published"]) == ("热线中心", "噪音扰民", "2026-03-04")
    assert row["review_state"] == "approved" and row["data_url"] == f"/kb/{item.id}.json"


def test_item_json_shows_reviewed_answers_and_counts_a_view(world, login, clock):
    """Should give the item's text and its reviewed answers, count the view, and hide an unreviewed item."""
    item, draft = _items(world, clock)
    agent = login(world.agent)
    data = agent.get(f"/kb/{item.id}.json?approved=1").get_json()
    assert data["content"] == item.content
    assert [a["content"] for a in data["answers"]] == ["请告知施工地点和时间。"]
    assert KnowledgeItem.get_by_id(item.id).views == 1
    # an unreviewed answer reaches editors and reviewers only, never an agent (P5 §3.7.2 应答的审核)
    assert len(agent.get(f"/kb/{item.id}.json").get_json()["answers"]) == 1
    assert len(login(world.centre_user).get(f"/kb/{item.id}.json").get_json()["answers"]) == 2
    assert agent.get(f"/kb/{draft.id}.json?approved=1").status_code == 404
    assert agent.get("/kb/999999.json").status_code == 404


def test_kb_json_needs_login_and_the_right(world, app, login, clock):
    """Should send an anonymous caller to the login page and refuse a user without kb.view (403)."""
    item, _draft = _items(world, clock)
    anonymous = app.test_client()
    for url in ("/kb/search.json?q=噪音", f"/kb/{item.id}.json"):
        assert anonymous.get(url).status_code in (302, 303, 401)
    nobody = User.create(operator_no="3001", name="无角色", password_hash=world.agent.password_hash, roles="",
                         department=world.centre)
    client = login(nobody)
    assert client.get("/kb/search.json?q=噪音").status_code == 403
    assert client.get(f"/kb/{item.id}.json").status_code == 403


def test_search_json_hostile_and_oversized_queries(world, login, clock):
    """Should return markup in a query or title as plain text pieces (the page escapes them), and cope with
    an empty, oversized or punctuation-only query."""
    knowledge.create_item("<img src=x onerror=alert(1)>噪音", "<script>alert(1)</script>噪音扰民", review_state="approved",
                          clock=clock)
    agent = login(world.agent)
    rows = agent.get("/kb/search.json?approved=1&q=噪音<b>").get_json()
    assert "".join(p["text"] for p in rows[0]["title_marks"]) == "<img src=x onerror=alert(1)>噪音"
    assert agent.get("/kb/search.json?q=").get_json() == []
    assert agent.get("/kb/search.json?q=" + "噪" * 5000).status_code == 200
    assert agent.get("/kb/search.json?q=%22%27%3B--").get_json() == []
