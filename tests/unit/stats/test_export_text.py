"""The Excel export never turns text people typed into formulas."""
from __future__ import annotations

import io

from openpyxl import Workbook, load_workbook

from stats.export import keep_text_as_text


def test_text_beginning_with_equals_stays_text():
    """Should store a department named like a formula as the text it is, and leave numbers alone."""
    book = Workbook()
    book.active.append(["=HYPERLINK(\"http://x\",\"点我\")", 42, "普通部门"])
    keep_text_as_text(book)
    out = io.BytesIO()
    book.save(out)
    cells = list(load_workbook(io.BytesIO(out.getvalue())).active.iter_rows(values_only=False))[0]
    assert [c.data_type for c in cells] == ["s", "n", "s"]
    assert cells[0].value == "=HYPERLINK(\"http://x\",\"点我\")" and cells[1].value == 42
