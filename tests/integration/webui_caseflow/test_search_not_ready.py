"""The ticket search and knowledge pages while PostgreSQL's full-text index of a big table is still being built
(the product's start builds it; a request never does on a big table: caseflow.search.ensure_index)."""
from __future__ import annotations

import pytest

from caseflow import knowledge, search
from core.db import is_postgres


def test_search_pages_say_the_index_is_being_built(world, login, db, monkeypatch):
    """Should answer a text search (the desk's, the public website's) with a clear line in the page's
    language, not a server error."""
    if not is_postgres(db):
        pytest.skip("SQLite builds its full-text tables on any size")
    client = login(world.east_user)
    db.execute_sql("DROP INDEX ticket_search_tsv")
    monkeypatch.setattr(search, "SMALL_TABLE_BYTES", 0)
    search.forget(db)
    search.forget()
    response = client.get("/tickets/search?text=噪音")
    assert response.status_code == 200
    assert "全文索引尚未建成" in response.get_data(as_text=True)
    public = client.application.test_client().get("/cases?q=噪音")
    assert public.status_code == 503
    assert "全文索引尚未建成" in public.get_data(as_text=True)
    search.forget()


@pytest.fixture
def knowledge_index_missing(world, db, monkeypatch):
    """A reviewed item whose full-text index is not built yet: on PostgreSQL the index dropped on a table
    counted as big (what a request meets after a migration); SQLite builds its tables on any size, so there
    the index check answers as PostgreSQL's does."""
    knowledge.create_item("噪音扰民怎么办", "夜间施工可以投诉。", publisher=world.admin, review_state="approved")
    if is_postgres(db):
        db.execute_sql("DROP INDEX knowledge_item_search_tsv")
        monkeypatch.setattr(search, "SMALL_TABLE_BYTES", 0)
    else:
        built = search.ensure_index
        monkeypatch.setattr(search, "ensure_index",
                            lambda table, build=False: table != "knowledge_item" and built(table, build))
    search.forget(db)
    search.forget()
    yield
    search.forget(db)
    search.forget()


def test_knowledge_pages_say_the_index_is_being_built(world, login, knowledge_index_missing):
    """Should answer a knowledge search (the knowledge base page, the desk panel's JSON, the ticket page's
    box, the public website's guides) with the index line in the page's language, not a server error."""
    client = login(world.east_user)
    page = client.get("/kb/?q=噪音")
    assert page.status_code == 503 and "全文索引尚未建成" in page.get_data(as_text=True)
    panel = client.get("/kb/search.json?approved=1&q=噪音")
    assert panel.status_code == 503 and "全文索引尚未建成" in panel.get_json()["error"]
    ticket = client.get(f"/tickets/{world.east_ticket.number}?kbq=噪音")
    assert ticket.status_code == 200 and "全文索引尚未建成" in ticket.get_data(as_text=True)
    public = client.application.test_client()
    guides = public.get("/guides?q=噪音")
    assert guides.status_code == 503 and "全文索引尚未建成" in guides.get_data(as_text=True)
    english = public.get("/guides?q=噪音&lang=en").get_data(as_text=True)
    assert "still being built" in english and "全文索引尚未建成" not in english
    assert public.get("/guides").status_code == 200  # the list without a query needs no index
