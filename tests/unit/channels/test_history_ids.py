"""The ticket history is never deleted by the product: channels.notices' cursor relies on it on SQLite, which
gives a new row the id of the newest row deleted (no AUTOINCREMENT), below a cursor that moved past it."""
from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[3]
# A history row deleted, or a ticket (its history goes with it: ON DELETE CASCADE).
DELETERS = re.compile(r"\b(?:Ticket|TicketHistory)\.delete\(|DELETE\s+FROM\s+\"?ticket(?:_history)?\b"
                      r"|\b\w*(?:ticket|history)\w*\.delete_instance\(", re.I)


def test_no_product_code_deletes_ticket_history():
    """Should find no product module (tests and benchmarks aside) that deletes a history row or a ticket: were
    one added, SQLite could reuse the newest id below the notice cursor and lose its notice (channels.notices:
    give TicketHistory AUTOINCREMENT by a table rebuild, or move the cursor back, before adding it)."""
    found = sorted(f"{path.relative_to(ROOT)}: {match.group()}" for path in ROOT.glob("*/**/*.py")
                   if path.parts[len(ROOT.parts)] not in (".venv", "tests", "bench", "node_modules")
                   for match in DELETERS.finditer(path.read_text(encoding="utf-8")))
    assert found == []


def test_the_scan_finds_a_deleter():
    """Should recognise the ways a ticket or its history is deleted (the scan above is not vacuous)."""
    for line in ("TicketHistory.delete().where(x)", "Ticket.delete().execute()", "ticket.delete_instance()",
                 'execute_sql("DELETE FROM ticket_history WHERE id = 1")', "old_history.delete_instance()"):
        assert DELETERS.search(line), line
    for line in ("TicketDayCount.delete().execute()", "item.delete_instance(recursive=True)",
                 "DELETE FROM ticket_fts_config WHERE k = 1"):
        assert not DELETERS.search(line), line
