"""Ticket search by category (with the categories below it) and saved searches per user (P5 §3.7.7,
P2 §3.2.7), on both databases."""
from __future__ import annotations

import pytest

from caseflow import org, saved_searches, services
from caseflow.models import SavedSearch
from caseflow.services import NotFound, TicketInputError


@pytest.fixture
def cats(org_setup, clock):
    """城市管理 > (噪音扰民 > 夜间施工), 食品安全; one ticket in each, all dispatched to east."""
    o = org_setup
    city = org.create_category("CITY", "城市管理")
    o.noise.parent = city
    o.noise.save()
    night = org.create_category("NIGHT", "夜间施工", o.noise)
    made = {}
    for cat in (city, o.noise, night, o.food):
        t = services.create_ticket(f"{cat.name}的问题", category=cat, created_by=o.agent, clock=clock)
        made[cat.code] = services.dispatch(t, o.centre_user, o.east, clock=clock)
    return city, night, made


def _numbers(tickets):
    return {t.number for t in tickets}


def test_category_tree_lists_parents_before_children(org_setup, cats):
    """Should list the configured categories as a tree with depths, children after their parent."""
    city, night, _made = cats
    tree = [(c.code, depth) for c, depth in org.category_tree()]
    assert tree.index(("CITY", 0)) < tree.index(("NOISE", 1)) < tree.index(("NIGHT", 2))
    assert ("FOOD", 0) in tree


def test_category_filter_includes_the_subtree(org_setup, cats):
    """Should find the tickets of a category and of every category below it, and none of the others."""
    o = org_setup
    city, night, made = cats
    found = _numbers(services.search_tickets(o.centre_user, category=city.id))
    assert found == {made[c].number for c in ("CITY", "NOISE", "NIGHT")}
    assert _numbers(services.search_tickets(o.centre_user, category=str(night.id))) == {made["NIGHT"].number}
    assert _numbers(services.search_tickets(o.centre_user, category="FOOD")) == {made["FOOD"].number}
    # combined with the other filters and within what the actor may see
    assert services.search_tickets(o.west_user, category=city.id) == []
    assert _numbers(services.search_tickets(o.centre_user, category=city.id, text="夜间施工")) == \
        {made["NIGHT"].number}
    with pytest.raises(TicketInputError, match="unknown category"):
        services.search_tickets(o.centre_user, category="NO-SUCH")


def test_save_list_run_delete(org_setup, cats, clock):
    """Should keep the current filters under a name, list them for their owner only, run them with the
    owner's visibility at the time, and delete them."""
    o = org_setup
    city, _night, made = cats
    row = saved_searches.save(o.east_user, "城市管理类", {"category": str(city.id), "status": "dispatched",
                                                        "text": ""}, clock=clock)
    assert saved_searches.filters_of(row) == {"category": str(city.id), "status": "dispatched"}
    assert [s.name for s in saved_searches.list_for(o.east_user)] == ["城市管理类"]
    assert saved_searches.list_for(o.west_user) == []
    _row, filters, tickets = saved_searches.run(o.east_user, row.id)
    assert _numbers(tickets) == {made[c].number for c in ("CITY", "NOISE", "NIGHT")}
    saved_searches.delete(o.east_user, row.id)
    assert saved_searches.list_for(o.east_user) == []


def test_bad_input_is_refused_clearly(org_setup, cats, clock):
    """Should refuse an over-long or empty name, unknown filter keys, filters that cannot run, a duplicate
    name, and another user's search id, storing nothing and losing nothing."""
    o = org_setup
    mine = saved_searches.save(o.east_user, "我的", {"phone": "13800000001"}, clock=clock)
    for name, filters, message in [
        ("x" * 65, {"phone": "1380000"}, "longer than 64"),
        ("  ", {"phone": "1380000"}, "give the search a name"),
        ("坏键", {"phone": "1380000", "sql": "1=1"}, "unknown search filter"),
        ("坏值", {"date_from": "yesterday"}, "YYYY-MM-DD"),
        ("坏状态", {"status": "teleported"}, "unknown status"),
        ("空", {"text": "  "}, "no filters"),
        ("太长", {"text": "噪" * 201}, "longer than 200"),
        ("我的", {"phone": "13900000000"}, "already have a search named"),
    ]:
        with pytest.raises(TicketInputError, match=message):
            saved_searches.save(o.east_user, name, filters, clock=clock)
    assert SavedSearch.select().count() == 1
    for other in (o.west_user, o.centre_user):
        for action in (saved_searches.run, saved_searches.delete, saved_searches.get_for):
            with pytest.raises(NotFound, match="no such saved search"):
                action(other, mine.id)
    with pytest.raises(NotFound):
        saved_searches.get_for(o.east_user, "1 OR 1=1")
    assert saved_searches.get_for(o.east_user, mine.id).name == "我的"


def test_tampered_row_is_refused(org_setup, clock):
    """Should refuse to run a stored search whose filters were altered to hold an unknown key."""
    o = org_setup
    row = saved_searches.save(o.east_user, "原样", {"phone": "13800000001"}, clock=clock)
    SavedSearch.update(filters='{"phone": "1", "user_id": 3}').where(SavedSearch.id == row.id).execute()
    with pytest.raises(TicketInputError, match="unknown search filter"):
        saved_searches.run(o.east_user, row.id)
    SavedSearch.update(filters="[1, 2]").where(SavedSearch.id == row.id).execute()
    with pytest.raises(TicketInputError, match="damaged"):
        saved_searches.run(o.east_user, row.id)
