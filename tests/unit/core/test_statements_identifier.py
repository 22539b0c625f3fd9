"""core.statements.identifier: the one quoting of a name spliced into hand-written SQL text."""
from __future__ import annotations

import pathlib
import re

from core.statements import identifier

ROOT = pathlib.Path(__file__).resolve().parents[3]
_OWN_QUOTING = re.compile(r"""replace\(\s*'"'\s*,\s*'""'\s*\)""")  # a name's quotes doubled by hand


def test_a_name_is_double_quoted_with_its_quotes_doubled():
    """Should quote a table or column name as SQL (PostgreSQL and SQLite) reads an identifier, a quote in it
    doubled, so no name can end the identifier early."""
    assert identifier("ticket") == '"ticket"'
    assert identifier('odd"name') == '"odd""name"'
    assert identifier("") == '""'


def test_the_product_quotes_names_in_one_place():
    """Should find the hand-written doubling ``replace('"', '""')`` (single-quoted arguments, as the new ticket's
    statement and the SMS receipt's guard each had a copy of it) in core/statements.py and in no other .py file
    below the project's top-level folders (.venv, tests, bench and node_modules aside; run.py and the other
    top-level files are not read). Quotes doubled another way (other quoting of the arguments, re.sub, a helper
    of another name) are not seen."""
    own = sorted(str(path.relative_to(ROOT)) for path in ROOT.glob("*/**/*.py")
                 if path.parts[len(ROOT.parts)] not in (".venv", "tests", "bench", "node_modules")
                 and _OWN_QUOTING.search(path.read_text(encoding="utf-8")))
    assert own == ["core/statements.py"]
