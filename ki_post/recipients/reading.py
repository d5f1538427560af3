"""Reading an import file (CSV or XLSX, told apart by content) into a header and rows of text.

Pure: bytes in, a ``Table`` out, or an ``ImportFileError`` with a German message. Every limit is
checked while reading, before the memory for what lies beyond it is spent:

- ``MAX_ROWS`` data rows, ``MAX_COLUMNS`` columns (an empty cell further right does not count),
  ``MAX_CELLS`` cells (rows × their width), ``MAX_TEXT`` characters in all cells together (one long
  text referenced by a million XLSX cells would otherwise be copied a million times);
- header texts of at most ``MAX_HEADER_LENGTH`` characters (they are shown in the preview);
- XLSX: ``XLSX_MAX_UNPACKED`` bytes unpacked for the parts read, at most ``XLSX_MAX_PARTS`` entries,
  ``XLSX_MAX_CELL_ELEMENTS`` cell elements (empty ones cost time), no more distinct texts than cells
  (see ``xlsx.py``).

The largest file these limits allow (50,000 rows of 17 columns) takes about as long as the worst
file they let through; nothing beyond costs more.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ..formatting import zahl
from ..errors import ValidationError
from ..exports import unneutralise
from .xlsx import XlsxError, xlsx_rows

MAX_ROWS = 50_000
MAX_COLUMNS = 200
MAX_CELLS = 1_000_000
MAX_TEXT = 32_000_000
MAX_HEADER_LENGTH = 200
XLSX_MAX_CELL_ELEMENTS = 2 * MAX_CELLS  # with empty, formatted cells
XLSX_MAX_UNPACKED = 64 * 1024 * 1024
XLSX_MAX_PARTS = 1_000
_DELIMITER_SAMPLE = 64 * 1024  # characters the delimiter is guessed from


class ImportFileError(ValidationError):
    """The file cannot be read at all (CLI exit status 2); nothing is written."""


@dataclass
class Table:
    """A read file: header texts, and data rows with the row number the spreadsheet shows."""

    headers: list[str]
    rows: list[tuple[int, list[str]]]
    file_kind: str  # "CSV" or "XLSX"
    encoding: str = ""
    delimiter: str = ""


def check_size(data: bytes, limit: int) -> None:
    if limit and len(data) > limit:
        raise ImportFileError(f"Die Datei ist größer als {limit // (1024 * 1024)} MB. Bitte teilen Sie sie auf.")


def _too_wide(row: int, column: int) -> ImportFileError:
    return ImportFileError(
        f"Zeile {zahl(row)} hat Werte bis Spalte {zahl(column)}; gelesen werden höchstens {MAX_COLUMNS} Spalten. "
        "Bitte entfernen Sie nicht benötigte Spalten oder teilen Sie die Datei auf."
    )


def _too_many_cells() -> ImportFileError:
    return ImportFileError(f"Die Datei hat mehr als {zahl(MAX_CELLS)} Zellen (Zeilen × Spalten). Bitte teilen Sie sie auf.")


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        return value.strftime("%d.%m.%Y %H:%M") if (value.hour or value.minute) else value.strftime("%d.%m.%Y")
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    # Our export prefixes an apostrophe to formula-like text (``+49 …``); without undoing it a
    # re-import of that export would change every such cell.
    return unneutralise(str(value).strip()).strip()


def collect(rows_iter: Iterable[tuple[int, list[Any]]]) -> tuple[list[str] | None, list[tuple[int, list[str]]]]:
    """Header and non-empty data rows as text, within the limits."""
    headers: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    cells_seen = text_seen = 0
    for number, values in rows_iter:
        cells = [_cell_text(value) for value in values]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        if len(cells) > MAX_COLUMNS:
            raise _too_wide(number, len(cells))
        cells_seen += len(cells)
        text_seen += sum(map(len, cells))
        if cells_seen > MAX_CELLS:
            raise _too_many_cells()
        if text_seen > MAX_TEXT:
            raise ImportFileError(f"Die Datei enthält mehr als {zahl(MAX_TEXT)} Zeichen Text. Bitte teilen Sie sie auf.")
        if headers is None:
            for index, header in enumerate(cells, start=1):
                if len(header) > MAX_HEADER_LENGTH:
                    raise ImportFileError(
                        f"Die Spaltenüberschrift in Spalte {index} ist länger als {MAX_HEADER_LENGTH} Zeichen. "
                        "Die erste Zeile muss die Spaltenüberschriften enthalten (z. B. Kommune, Anrede, Vorname, Nachname, E-Mail)."
                    )
            headers = cells
        else:
            rows.append((number, cells))
        if len(rows) > MAX_ROWS:
            raise ImportFileError(f"Die Datei hat mehr als {zahl(MAX_ROWS)} Zeilen. Bitte teilen Sie sie auf.")
    return headers, rows


# --- CSV ---------------------------------------------------------------------------------------------

def decode_text(data: bytes) -> tuple[str, str]:
    """(text, encoding): BOMs first, then strict UTF-8, else Windows-1252 as German Excel writes it."""
    for bom, encoding in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                raise ImportFileError("Die Datei ist beschädigt: Ihre Zeichenkodierung passt nicht zu ihrem Anfang.") from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "iso-8859-1"


def _detect_delimiter(text: str, is_known_header: Callable[[str], bool]) -> str:
    """The delimiter that splits the header into the most known columns (then: the most columns)."""
    first_lines = "\n".join(text[:_DELIMITER_SAMPLE].splitlines()[:20])
    best, best_score = ";", (-1, -1)
    for delimiter in (";", ",", "\t", "|"):
        try:
            rows = list(csv.reader(io.StringIO(first_lines, newline=""), delimiter=delimiter))
        except csv.Error:
            continue
        header = next((row for row in rows if any(cell.strip() for cell in row)), [])
        known = sum(1 for cell in header if is_known_header(cell))
        score = (known, len(header))
        if score > best_score:
            best, best_score = delimiter, score
    return best


def read_csv(data: bytes, is_known_header: Callable[[str], bool]) -> Table:
    text, encoding = decode_text(data)
    if "\x00" in text:
        raise ImportFileError("Die Datei ist weder eine CSV- noch eine XLSX-Datei.")
    text = text.lstrip("\ufeff")
    delimiter = _detect_delimiter(text, is_known_header)
    # Every cell costs the csv module a list slot before the limits below can look at its row:
    # more delimiters than cells allowed means more cells than allowed (counting quoted ones too).
    if text.count(delimiter) > MAX_CELLS:
        raise _too_many_cells()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    # A spreadsheet shows one row per record, also when a quoted cell holds a line break.
    try:
        headers, rows = collect(enumerate(reader, start=1))
    except csv.Error as error:
        raise ImportFileError(f"Die CSV-Datei ist fehlerhaft und kann nicht gelesen werden ({error}).") from None
    if headers is None:
        raise ImportFileError("Die Datei ist leer.")
    return Table(headers=headers, rows=rows, file_kind="CSV", encoding=encoding, delimiter=delimiter)


# --- XLSX --------------------------------------------------------------------------------------------

def read_xlsx(data: bytes) -> Table:
    rows = xlsx_rows(data, max_columns=MAX_COLUMNS, max_strings=MAX_CELLS, max_cell_elements=XLSX_MAX_CELL_ELEMENTS,
                     max_unpacked=XLSX_MAX_UNPACKED, max_parts=XLSX_MAX_PARTS, too_wide=_too_wide)
    try:
        headers, table_rows = collect(rows)
    except XlsxError as error:
        raise ImportFileError(str(error)) from None
    if headers is None:
        raise ImportFileError("Die Datei ist leer.")
    return Table(headers=headers, rows=table_rows, file_kind="XLSX")


def read_table(data: bytes, filename: str, is_known_header: Callable[[str], bool]) -> Table:
    """CSV or XLSX by content (the name only breaks ties); ImportFileError when unreadable."""
    if not data or not data.strip(b"\x00 \t\r\n\xef\xbb\xbf"):
        raise ImportFileError("Die Datei ist leer.")
    lower = (filename or "").lower()
    if data.startswith(b"PK\x03\x04"):
        return read_xlsx(data)
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError("Das alte Excel-Format (.xls) wird nicht unterstützt. Bitte speichern Sie die Datei als .xlsx oder CSV.")
    if lower.endswith((".xlsx", ".xlsm")):
        raise ImportFileError("Die Datei heißt .xlsx, ist aber keine Excel-Arbeitsmappe.")
    if data.startswith((b"%PDF", b"\x89PNG", b"\xff\xd8\xff", b"GIF8")) or (b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff"))):
        raise ImportFileError("Die Datei ist weder eine CSV- noch eine XLSX-Datei.")
    return read_csv(data, is_known_header)
