"""Ticket search pages: the category filter (a tree, the subtree included) and saved searches per user."""
from __future__ import annotations

from caseflow import org, services
from caseflow.models import SavedSearch


def _city(world, clock):
    city = org.create_category("CITY", "城市管理")
    world.noise.parent = city
    world.noise.save()
    food = org.create_category("FOOD", "食品安全")
    other = services.dispatch(services.create_ticket("东区某饭店食品过期", category=food, created_by=world.agent,
                                                     clock=clock), world.centre_user, world.east, clock=clock)
    return city, other


def test_category_filter_on_the_page(world, login, clock):
    """Should offer the categories as an indented tree and find a child category's ticket by its parent."""
    city, other = _city(world, clock)
    client = login(world.east_user)
    page = client.get("/tickets/search").get_data(as_text=True)
    assert page.index(">城市管理<") < page.index(">　噪音扰民<")
    found = client.get(f"/tickets/search?category={city.id}").get_data(as_text=True)
    assert world.east_ticket.number in found and other.number not in found
    bad = client.get("/tickets/search?category=NOPE").get_data(as_text=True)
    assert "未知的分类" in bad


def test_save_run_and_delete_through_the_pages(world, login, clock):
    """Should save the shown filters under a name, list it for its owner only, run it and delete it,
    with Chinese and English labels."""
    city, other = _city(world, clock)
    owner = login(world.east_user)
    page = owner.get(f"/tickets/search?category={city.id}").get_data(as_text=True)
    assert 'data-testid="save-search"' in page and "保存当前查询为" in page
    response = owner.post_form("/tickets/searches", {"name": "城市管理类", "category": str(city.id)})
    assert response.status_code == 303
    row = SavedSearch.get(SavedSearch.name == "城市管理类")
    ran = owner.get(response.headers["Location"]).get_data(as_text=True)
    assert "查询已保存" in ran and world.east_ticket.number in ran and other.number not in ran
    assert "城市管理类" in ran.split('data-testid="saved-searches"')[1]
    assert "城市管理类" not in login(world.west_user).get("/tickets/search").get_data(as_text=True)
    owner.post_form("/language", {"lang": "en"})
    english = owner.get("/tickets/search").get_data(as_text=True)
    assert "Saved searches" in english and "Delete" in english
    assert owner.post_form(f"/tickets/searches/{row.id}/delete").status_code == 303
    assert not SavedSearch.select().exists()


def test_bad_input_and_other_users_searches(world, login, clock):
    """Should refuse an over-long name and unknown filter keys with a clear message, answer 404 saying why
    for another user's search (run or delete), and refuse a post without the CSRF token."""
    owner, stranger = login(world.east_user), login(world.west_user)
    long_name = owner.post_form("/tickets/searches", {"name": "名" * 65, "phone": "13812345678"},
                                follow_redirects=True).get_data(as_text=True)
    assert "查询名称超过64字" in long_name
    unknown = owner.post_form("/tickets/searches", {"name": "坏", "phone": "13812345678", "owner": "1"},
                              follow_redirects=True).get_data(as_text=True)
    assert "未知的查询条件" in unknown
    assert not SavedSearch.select().exists()
    owner.post_form("/tickets/searches", {"name": "我的", "phone": "13812345678"})
    row = SavedSearch.get()
    for response in (stranger.get(f"/tickets/searches/{row.id}"),
                     stranger.post_form(f"/tickets/searches/{row.id}/delete")):
        assert response.status_code == 404
        assert "没有找到该查询" in response.get_data(as_text=True)
    assert stranger.post(f"/tickets/searches/{row.id}/delete").status_code in (400, 403)
    assert owner.post("/tickets/searches", data={"name": "无令牌", "phone": "1"}).status_code in (400, 403)
    assert [s.name for s in SavedSearch.select()] == ["我的"]
    assert world.east_ticket.number in owner.get(f"/tickets/searches/{row.id}").get_data(as_text=True)
