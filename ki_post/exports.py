"""Spreadsheet exports shared by every package: CSV for German Excel, XLSX via openpyxl.

Every cell goes through ``neutralise`` so that data such as ``=HYPERLINK(…)`` is shown, never run
(CSV/formula injection, OWASP).
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

FORMULA_START = re.compile(r"^[\s]*[=+\-@]")  # also after leading blanks, tabs, CR/LF
# Characters XML 1.0 cannot hold; openpyxl refuses them.
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
SHEET_TITLE_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def _needs_guard(text: str) -> bool:
    # Text already starting with apostrophes before a formula start is guarded once more, so that
    # ``unneutralise`` can tell our apostrophe from one in the data ("'=x" ↔ "''=x").
    text = text.lstrip("'")
    return bool(FORMULA_START.match(text)) or text[:1] in ("\t", "\r")


def neutralise(value: Any) -> Any:
    """Text that a spreadsheet would read as a formula gets a leading apostrophe; other values pass."""
    if value is None:
        return ""
    if isinstance(value, str) and _needs_guard(value):
        return "'" + value
    return value


def unneutralise(text: str) -> str:
    """Undo ``neutralise`` for text read back from a spreadsheet, so an export re-imports unchanged.

    One apostrophe goes, and only before text that ``neutralise`` would prefix: ``'+49 211`` becomes
    ``+49 211``, ``''=x`` becomes ``'=x``, while ``'abc`` stays as it is. A file not made by our
    export is read by the same rule, there is no way to tell: a typed ``'=x`` becomes ``=x`` (a
    spreadsheet hides that apostrophe as a text marker too).
    """
    if text.startswith("'") and _needs_guard(text[1:]):
        return text[1:]
    return text


def _text(value: Any) -> str:
    value = neutralise(value)
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, datetime):
        return value.strftime("%d.%m.%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    return str(value)


def csv_bytes(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 with BOM, semicolon, CRLF, every field quoted when needed: opens as-is in German Excel."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([_text(header) for header in headers])
    for row in rows:
        writer.writerow([_text(cell) for cell in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _cell(value: Any) -> Any:
    value = neutralise(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.replace(tzinfo=None)  # Excel has no time zones
    if isinstance(value, str):
        value = _ILLEGAL_XML.sub("", value)
    return value


def xlsx_bytes(headers: Sequence[str], rows: Iterable[Sequence[Any]], sheet_title: str = "Daten") -> bytes:
    """One sheet, bold frozen header row, autofilter, every text cell neutralised and stored as text."""
    workbook = Workbook(write_only=False)
    sheet = workbook.active
    sheet.title = (SHEET_TITLE_FORBIDDEN.sub(" ", sheet_title).strip() or "Daten")[:31]
    sheet.append([_cell(header) for header in headers])
    widths = [len(str(header)) for header in headers]
    for row in rows:
        cells = [_cell(value) for value in row]
        sheet.append(cells)
        for index, value in enumerate(cells[: len(widths)]):
            widths[index] = max(widths[index], min(len(str(value)), 60))
    bold = Font(bold=True)
    for cell in sheet[1]:
        cell.font = bold
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # never a formula, whatever the text says
    sheet.freeze_panes = "A2"
    if headers:
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{max(sheet.max_row, 1)}"
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width + 2
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
