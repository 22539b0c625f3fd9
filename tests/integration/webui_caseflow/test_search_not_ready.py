"""The ticket search page while PostgreSQL's full-text index of a big ticket table is still being built (the
product's start builds it; a request never does on a big table: caseflow.search.ensure_index)."""
from __future__ import annotations

import pytest

from caseflow import search
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
