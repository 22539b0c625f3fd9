"""The report as an Excel workbook (.xlsx, openpyxl): the same rows the page shows, one sheet per table,
headers in the reader's language (Chinese by default). Numbers stay numbers (rates as per cent cells);
环比/同比 are the signed texts the page shows.
"""
from __future__ import annotations

import io
from typing import Callable

from openpyxl import Workbook
from openpyxl.styles import Font

from stats.figures import COUNT, RATE, SECONDS, Row, format_change
from stats.report import Report

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMATS = {RATE: "0.0%", SECONDS: "0.0", COUNT: "0"}


def report_xlsx(report: Report, translate: Callable[[str], str], label: Callable[[str, str], str]) -> bytes:
    """The workbook's bytes. ``translate(message id)`` gives headers and figure names, ``label(code, kind)``
    names channels and ticket types."""
    _ = translate
    points = _("pp")
    book = Workbook()
    sheet = book.active
    sheet.title = _("Overview")[:31]
    scope = report.scope_name or _("Whole city")
    sheet.append([_("Statistics"), scope])
    sheet.append([_("Period"), f"{report.period.first} ~ {report.period.last}"])
    sheet.append([_("Previous period"), f"{report.previous.first} ~ {report.previous.last}"])
    sheet.append([_("Same period last year"), f"{report.year_ago.first} ~ {report.year_ago.last}"])
    sheet.append([])
    _table(sheet, [_("Figure"), _("This period"), _("Previous period"), _("Change vs previous period"),
                   _("Same period last year"), _("Change vs last year")],
           report.figures, lambda row: _(row.label), points)

    for title, rows, kind in ((_("Tickets by channel"), report.channels, "channel"),
                              (_("Tickets by type"), report.types, "type")):
        part = book.create_sheet(title[:31])
        _table(part, [_("Channel") if kind == "channel" else _("Type"), _("This period"), _("Previous period"),
                      _("Change vs previous period"), _("Same period last year"), _("Change vs last year")],
               rows, lambda row, kind=kind: label(row.key, kind), points)

    daily = book.create_sheet(_("Daily volume")[:31])
    headers = [_("Date")] + ([_("Calls offered to agents")] if report.calls_shown else []) + [_("Tickets created")]
    _header(daily, headers)
    for day, calls, tickets in report.daily:
        daily.append([day.isoformat()] + ([calls] if report.calls_shown else []) + [tickets])

    ranks = book.create_sheet(_("Department ranking")[:31])
    _header(ranks, [_("Top departments by volume"), _("Tickets"), "", _("Top departments by overdue tickets"),
                    _("Overdue tickets"), _("Overdue rate")])
    for index in range(max(len(report.top_volume), len(report.top_overdue))):
        row: list = ["", "", ""]
        if index < len(report.top_volume):
            name, rank = report.top_volume[index]
            row[:2] = [name, rank.volume]
        if index < len(report.top_overdue):
            name, rank = report.top_overdue[index]
            row += [name, rank.overdue, rank.overdue_rate]
        ranks.append(row)
        if len(row) > 5 and row[5] is not None:
            ranks.cell(row=ranks.max_row, column=6).number_format = _FORMATS[RATE]
    for part in book.worksheets:
        part.column_dimensions["A"].width = 28
        for column in "BCDEF":
            part.column_dimensions[column].width = 16
    keep_text_as_text(book)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def keep_text_as_text(book: Workbook) -> None:
    """openpyxl stores any text beginning with "=" as a formula; names typed by people (departments) must
    never run in the reader's spreadsheet, so every such cell goes back to plain text."""
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    cell.data_type = "s"


def _header(sheet, names: list[str]) -> None:
    sheet.append(names)
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)


def _table(sheet, headers: list[str], rows: list[Row], name: Callable[[Row], str], points: str) -> None:
    _header(sheet, headers)
    for row in rows:
        sheet.append([name(row), row.value, row.previous, format_change(row.vs_previous, row.kind, points),
                      row.year_ago, format_change(row.vs_year_ago, row.kind, points)])
        for column in (2, 3, 5):
            sheet.cell(row=sheet.max_row, column=column).number_format = _FORMATS[row.kind]


def tables_xlsx(title: str, lines: list[tuple[str, str]], tables, translate: Callable[[str], str]) -> bytes:
    """A workbook of report tables (stats.breakdowns.Table): an overview sheet with ``lines`` (label, text),
    then one sheet per table; numbers stay numbers (rates as per cent cells), "=" texts stay text."""
    _ = translate
    book = Workbook()
    sheet = book.active
    sheet.title = _("Overview")[:31]
    sheet.append([_(title)])
    for label, text in lines:
        sheet.append([_(label), text])
    formats = {RATE: "0.0%", SECONDS: "0.0", COUNT: "0", "hours": "0.0"}
    for table in tables:
        part = book.create_sheet(_(table.title)[:31])
        _header(part, [_(c.label) for c in table.columns])
        for row in table.rows:
            part.append([row.get(c.key) for c in table.columns])
            for index, column in enumerate(table.columns, 1):
                if column.kind in formats:
                    part.cell(row=part.max_row, column=index).number_format = formats[column.kind]
        part.column_dimensions["A"].width = 28
    keep_text_as_text(book)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
