"""No module over about 500 lines without a reason at its top (issue 10; docs/architecture.md, "Module size").

Every .py module of the project is read: the product's packages, run.py, bench/, scripts/ and the tests'
support code (tests/fakeswitch, conftest.py, helpers). Test modules (``test_*.py``) are left out: they are
lists of cases, each standing alone, and grow by one case at a time. A longer module says why in its module
docstring, on a line of its own starting ``Long because:``; otherwise it is split where a seam shows.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MOST_LINES = 500
REASON = "Long because:"
SKIP = {".venv", "node_modules", ".git", "var", "hotline12345.egg-info"}


def modules() -> list[Path]:
    """Every .py file of the project but the test modules themselves."""
    return sorted(p for p in ROOT.rglob("*.py")
                  if not SKIP.intersection(p.relative_to(ROOT).parts) and not p.name.startswith("test_"))


def has_reason(source: str) -> bool:
    """True when the module docstring has a line starting ``Long because:`` followed by some words."""
    doc = ast.get_docstring(ast.parse(source)) or ""
    return any(line.strip().startswith(REASON) and line.strip()[len(REASON):].strip()
               for line in doc.splitlines())


def too_long(files: dict[str, str]) -> list[str]:
    """``path: N lines`` for every file of ``files`` (path -> source) over MOST_LINES without a reason."""
    found = []
    for path, source in sorted(files.items()):
        lines = len(source.splitlines())
        if lines > MOST_LINES and not has_reason(source):
            found.append(f"{path}: {lines} lines")
    return found


def test_the_check_reads_the_reason_from_the_module_docstring():
    """Should pass a long module whose docstring gives a reason, fail one without, one whose reason is empty
    and one whose reason is only a comment, and pass a module of exactly MOST_LINES lines."""
    body = "x = 1\n" * MOST_LINES
    reasoned = '"""A module.\n\nLong because: one table of 300 rows.\n"""\n' + body
    empty = '"""A module.\n\nLong because:\n"""\n' + body
    commented = '"""A module."""\n# Long because: a comment is not the docstring\n' + body
    files = {"a.py": reasoned, "b.py": empty, "c.py": commented, "d.py": '"""Short."""\nx = 1\n',
             "e.py": body, "f.py": body + "y = 2\n"}
    assert too_long(files) == [f"b.py: {MOST_LINES + 4} lines", f"c.py: {MOST_LINES + 2} lines",
                               f"f.py: {MOST_LINES + 1} lines"]
    assert has_reason(reasoned) and not has_reason(empty) and not has_reason(commented)


def test_no_module_is_long_without_a_reason():
    """Should find no module over MOST_LINES lines without a ``Long because:`` line in its docstring."""
    files = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in modules()}
    assert len(files) > 100
    found = too_long(files)
    assert found == [], (f"modules over {MOST_LINES} lines: split them where a seam shows, or say why in "
                         f"the module docstring ('{REASON} ...'):\n" + "\n".join(found))
