"""Knowledge base: items, answers, review, views, and ranked Chinese search on both databases."""
from __future__ import annotations

import pytest

from caseflow import knowledge
from caseflow.knowledge import KnowledgeError
from caseflow.models import KnowledgeAnswer, KnowledgeItem
from caseflow.workflow import PermissionDenied

SAMPLE = [
    ("噪音扰民的处理流程", "居民反映噪音扰民，由属地街道和生态环境部门处理。"),
    ("夜间施工许可", "夜间施工须取得许可证明，并公告周边居民。"),
    ("广场舞音量过大", "公共场所娱乐活动音量不得干扰周边居民，属地街道协调。"),
    ("过期食品投诉", "购买到过期食品可向市场监管部门投诉，要求十倍赔偿。"),
    ("公积金提取", "职工购房、租房可申请提取住房公积金。"),
    ("社保缴费基数", "灵活就业人员养老保险缴费基数按上年度社平工资确定。"),
    ("宠物犬扰民", "养犬人应当采取措施防止犬吠干扰他人正常生活。"),
    ("WiFi信号覆盖", "公共场所免费WiFi由通信管理局协调运营商。"),
    ("交通噪声监测", "道路交通噪声超标可申请生态环境部门监测。"),
]


@pytest.fixture
def kb(db, clock):
    return {title: knowledge.create_item(title, content, review_state="approved", clock=clock)
            for title, content in SAMPLE}


def titles(results):
    return [item.title for item, _score in results]


def test_variation_finds_noise_item(kb):
    """Should find 噪音扰民 for the query 噪声 扰民 and rank it first."""
    results = knowledge.search_items("噪声 扰民")
    assert titles(results)[0] == "噪音扰民的处理流程"
    assert "交通噪声监测" in titles(results)
    assert "公积金提取" not in titles(results)


def test_exact_substring_first(kb):
    """Should put an exact phrase match above partial matches."""
    assert titles(knowledge.search_items("过期食品"))[0] == "过期食品投诉"
    assert titles(knowledge.search_items("十倍赔偿")) == ["过期食品投诉"]


def test_single_character_and_latin(kb):
    """Should find a single character and a Latin word, case-insensitively."""
    assert "宠物犬扰民" in titles(knowledge.search_items("犬"))
    assert titles(knowledge.search_items("wifi")) == ["WiFi信号覆盖"]


def test_ranking_by_matched_grams(kb):
    """Should rank items with more matched grams higher."""
    scores = dict((i.title, s) for i, s in knowledge.search_items("夜间施工噪音"))
    assert scores["夜间施工许可"] > scores.get("广场舞音量过大", 0)


def test_no_match_and_hostile_queries(kb):
    """Should return nothing for an unrelated or empty query and survive FTS syntax in the query."""
    assert knowledge.search_items("量子计算机") == []
    assert knowledge.search_items("") == []
    for hostile in ('" OR 1=1 --', "NEAR(噪音", "噪音* AND", "'; DROP TABLE knowledge_item; --", "x" * 5000):
        knowledge.search_items(hostile)
    assert KnowledgeItem.select().count() == len(SAMPLE)


def test_update_reindexes(kb):
    """Should find an item by its new text and not by its old text after an edit."""
    item = kb["公积金提取"]
    knowledge.update_item(item, content="住房公积金贷款额度计算方法")
    assert "公积金提取" in titles(knowledge.search_items("贷款额度"))
    assert "公积金提取" not in titles(knowledge.search_items("职工"))
    assert KnowledgeItem.get_by_id(item.id).review_state == "pending"
    knowledge.delete_item(item)
    assert knowledge.search_items("贷款额度") == []


def test_answers_views_review(kb, org_setup, clock):
    """Should hold several answers with review state and count views of items and answers."""
    o = org_setup
    item = kb["夜间施工许可"]
    a1 = knowledge.add_answer(item, "请提供施工地点", actor=o.centre_user, clock=clock)
    knowledge.add_answer(item, "22时后禁止施工", actor=o.centre_user, clock=clock)
    with pytest.raises(PermissionDenied):
        knowledge.add_answer(item, "x", actor=o.east_user)
    with pytest.raises(PermissionDenied):
        knowledge.review(a1, "approved", actor=o.centre_user)
    knowledge.review(a1, "approved", actor=o.leader, remarks="准确")
    knowledge.record_view(item, clock, answer=a1)
    knowledge.record_view(item, clock)
    item = KnowledgeItem.get_by_id(item.id)
    assert item.views == 2 and item.last_viewed_at is not None
    assert KnowledgeAnswer.get_by_id(a1.id).views == 1
    assert [a.review_state for a in item.answers.order_by(KnowledgeAnswer.id)] == ["approved", "pending"]


def test_approved_only_filter(kb, clock):
    """Should hide items still pending review when only approved ones are asked for."""
    knowledge.create_item("噪音扰民新规定", "草稿", clock=clock)
    assert "噪音扰民新规定" in titles(knowledge.search_items("噪音扰民"))
    assert "噪音扰民新规定" not in titles(knowledge.search_items("噪音扰民", approved_only=True))


def test_bad_input(db):
    """Should refuse an empty title and an oversized content."""
    with pytest.raises(KnowledgeError):
        knowledge.create_item("  ", "内容")
    with pytest.raises(KnowledgeError):
        knowledge.create_item("标题", "长" * (knowledge.MAX_CONTENT + 1))
