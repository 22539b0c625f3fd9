"""A scan of the product's source for the usual ways of deleting the ticket history (DELETERS): channels.notices'
cursor relies on no history row being deleted on SQLite, which gives a new row the id of the newest row deleted
(no AUTOINCREMENT), below a cursor that moved past it."""
from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[3]
# A history row deleted, or a ticket (its history goes with it: ON DELETE CASCADE).
DELETERS = re.compile(r"\b(?:Ticket|TicketHistory)\.delete\(|DELETE\s+FROM\s+\"?ticket(?:_history)?\b"
                      r"|\b\w*(?:ticket|history)\w*\.delete_instance\(", re.I)


def test_no_product_code_deletes_ticket_history():
    """Should find none of DELETERS' forms (``Ticket.delete(`` or ``TicketHistory.delete(``, ``DELETE FROM`` ticket
    or ticket_history in SQL text, ``.delete_instance(`` on a name holding ticket or history) in the .py files
    below the project's top-level folders, .venv, tests, bench and node_modules aside (run.py and the other
    top-level files are not read). A deletion written another way (a table or model name built at run time, a
    variable named otherwise, a cascade from another table) is not seen. Were one added, SQLite could reuse the
    newest id below the notice cursor and lose its notice (channels.notices: give TicketHistory AUTOINCREMENT by
    a table rebuild, or move the cursor back, before adding it)."""
    found = sorted(f"{path.relative_to(ROOT)}: {match.group()}" for path in ROOT.glob("*/**/*.py")
                   if path.parts[len(ROOT.parts)] not in (".venv", "tests", "bench", "node_modules")
                   for match in DELETERS.finditer(path.read_text(encoding="utf-8")))
    assert found == []


def test_the_scan_finds_a_deleter():
    """Should match DELETERS in the five deleting lines listed (``TicketHistory.delete(``, ``Ticket.delete(``,
    ``.delete_instance(`` on a ticket and on an old_history, ``DELETE FROM ticket_history`` in SQL text: the scan
    above is not vacuous) and not in three look-alikes (another model's delete, ``.delete_instance(`` on a name
    without ticket or history, ``DELETE FROM`` the ticket_fts_config table)."""
    for line in ("TicketHistory.delete().where(x)", "Ticket.delete().execute()", "ticket.delete_instance()",
                 'execute_sql("DELETE FROM ticket_history WHERE id = 1")', "old_history.delete_instance()"):
        assert DELETERS.search(line), line
    for line in ("TicketDayCount.delete().execute()", "item.delete_instance(recursive=True)",
                 "DELETE FROM ticket_fts_config WHERE k = 1"):
        assert not DELETERS.search(line), line
