"""The first sheet of an XLSX file as rows of values, read with bounded memory and time.

Why not openpyxl's read-only mode: it is twice as slow here (``bench/recipients.py``: 10,000 rows
in 1.0–1.4 s against 2.0–3.4 s) and not bounded on hostile files: it keeps the whole string table
(a 3 MB file with 3 GB of it: 30 s and 2.9 GB) and builds each row in full before handing it out
(a 13 KB file with one row of three million empty cells: 12 s and 949 MB). This reader builds no
tree at all: lxml calls it per start tag, end tag and text, empty cells are skipped, and every limit
is checked before the memory would be spent.

Limits: the declared unpacked size of the parts read (zipfile never hands out more than a part
declares: it stops there and fails the CRC check), the number of entries in the archive, columns
(a cell beyond ``max_columns`` with a value is an error, an empty one is ignored), the size of the
string table, the number of cell elements (empty ones too: they cost time), ascending row numbers
up to Excel's 1,048,576. Rows, cells with values and text are counted by the caller.
"""
from __future__ import annotations

import io
import posixpath
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from lxml import etree
from openpyxl.styles.numbers import is_date_format
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_DOC_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_BUILTIN_DATE_FORMATS = set(range(14, 23)) | {45, 46, 47}
EXCEL_MAX_ROW = 1_048_576
EXCEL_MAX_COLUMN = 16_384  # XFD
# Up to 10 letters: AAAAAAA2 (column 8 billion) is read as a column far beyond the limit, not as damage.
_REFERENCE = re.compile(r"([A-Z]{1,10})([0-9]{1,10})$")
_CHUNK = 256 * 1024


class XlsxError(Exception):
    """The workbook cannot be read; ``str(error)`` is a German message for the user."""


Row = tuple[int, list[Any]]


def _parser(target: object) -> etree.XMLParser:
    # No entities, no DTD, no network; libxml2's default size limits stay on (no huge_tree).
    return etree.XMLParser(target=target, resolve_entities=False, no_network=True, load_dtd=False)


class _Package:
    """The archive, with a budget of unpacked bytes for the parts this reader opens."""

    def __init__(self, data: bytes, *, max_unpacked: int, max_parts: int):
        try:
            self.archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, ValueError, OSError) as error:
            raise XlsxError("Die Datei ist keine lesbare XLSX-Datei (Excel-Arbeitsmappe).") from error
        infos = self.archive.infolist()
        if len(infos) > max_parts:
            raise XlsxError(f"Die XLSX-Datei besteht aus mehr als {max_parts:,} Teilen und wird nicht gelesen.".replace(",", "."))
        self.sizes = {info.filename: info.file_size for info in infos}
        self.budget = max_unpacked
        self.max_unpacked = max_unpacked

    def has(self, name: str) -> bool:
        return name in self.sizes

    def stream(self, name: str, handler: object) -> Any:
        """Feed part ``name`` to ``handler`` (an lxml parser target); returns what ``close()`` returns."""
        if name not in self.sizes:
            raise XlsxError("Die Datei ist keine lesbare XLSX-Datei (Excel-Arbeitsmappe): ein Teil fehlt.")
        self.budget -= self.sizes[name]
        if self.budget < 0:
            limit = self.max_unpacked // (1024 * 1024)
            raise XlsxError(f"Die XLSX-Datei ist entpackt größer als {limit} MB. Bitte teilen Sie sie auf oder speichern Sie sie als CSV.")
        parser = _parser(handler)
        drain = getattr(handler, "drain", lambda: ())  # rows finished so far, handed out chunk by chunk
        try:
            with self.archive.open(name) as part:
                while chunk := part.read(_CHUNK):
                    parser.feed(chunk)
                    yield from drain()
            result = parser.close()
        except XlsxError:
            raise
        except (etree.XMLSyntaxError, zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
                NotImplementedError, ValueError) as error:  # damaged, encrypted, unknown compression
            raise XlsxError("Die XLSX-Datei ist beschädigt und kann nicht gelesen werden.") from error
        yield from drain()
        return result

    def read(self, name: str, handler: object) -> Any:
        """Like ``stream`` for handlers that yield nothing."""
        generator = self.stream(name, handler)
        while True:
            try:
                next(generator)
            except StopIteration as done:
                return done.value


class _Relationships:
    """Id → (type, target) of a .rels part."""

    def __init__(self) -> None:
        self.found: dict[str, tuple[str, str]] = {}

    def start(self, tag: str, attrib: dict) -> None:
        if tag == f"{_PKG_REL}Relationship":
            self.found[attrib.get("Id", "")] = (attrib.get("Type", ""), attrib.get("Target", ""))

    def end(self, tag: str) -> None:
        pass

    def data(self, text: str) -> None:
        pass

    def close(self) -> dict[str, tuple[str, str]]:
        return self.found


class _Workbook:
    """The first sheet's relationship id, and whether dates count from 1904."""

    def __init__(self) -> None:
        self.first_sheet: str | None = None
        self.date1904 = False

    def start(self, tag: str, attrib: dict) -> None:
        if tag == f"{_MAIN}workbookPr":
            self.date1904 = attrib.get("date1904", "").lower() in ("1", "true")
        elif tag == f"{_MAIN}sheet" and self.first_sheet is None:
            self.first_sheet = attrib.get(f"{_DOC_REL}id")

    def end(self, tag: str) -> None:
        pass

    def data(self, text: str) -> None:
        pass

    def close(self) -> "_Workbook":
        return self


class _Styles:
    """Indexes of the cell formats (cellXfs) that show numbers as dates."""

    def __init__(self, max_entries: int) -> None:
        self.custom: dict[int, str] = {}
        self.formats: list[int] = []
        self.in_cell_xfs = False
        self.max_entries = max_entries

    def start(self, tag: str, attrib: dict) -> None:
        if tag == f"{_MAIN}numFmt":
            if len(self.custom) < self.max_entries:
                self.custom[_int(attrib.get("numFmtId"), -1)] = attrib.get("formatCode", "")
        elif tag == f"{_MAIN}cellXfs":
            self.in_cell_xfs = True
        elif tag == f"{_MAIN}xf" and self.in_cell_xfs:
            if len(self.formats) >= self.max_entries:
                raise XlsxError("Die XLSX-Datei ist beschädigt: zu viele Zellformate.")
            self.formats.append(_int(attrib.get("numFmtId"), 0))

    def end(self, tag: str) -> None:
        if tag == f"{_MAIN}cellXfs":
            self.in_cell_xfs = False

    def data(self, text: str) -> None:
        pass

    def close(self) -> set[int]:
        return {
            index for index, fmt in enumerate(self.formats)
            if fmt in _BUILTIN_DATE_FORMATS or (fmt in self.custom and is_date_format(self.custom[fmt]))
        }


class _SharedStrings:
    """The string table; rich-text runs joined, phonetic guides (rPh) left out."""

    def __init__(self, max_strings: int) -> None:
        self.strings: list[str] = []
        self.parts: list[str] | None = None
        self.in_text = False
        self.phonetic = 0
        self.max_strings = max_strings

    def start(self, tag: str, attrib: dict) -> None:
        if tag == f"{_MAIN}si":
            self.parts = []
        elif tag == f"{_MAIN}rPh":
            self.phonetic += 1
        elif tag == f"{_MAIN}t" and self.parts is not None and not self.phonetic:
            self.in_text = True

    def end(self, tag: str) -> None:
        if tag == f"{_MAIN}si":
            if len(self.strings) >= self.max_strings:
                raise XlsxError(
                    f"Die XLSX-Datei enthält mehr als {self.max_strings:,} verschiedene Texte. "
                    "Bitte teilen Sie sie auf.".replace(",", ".")
                )
            self.strings.append("".join(self.parts or ()))
            self.parts = None
        elif tag == f"{_MAIN}rPh":
            self.phonetic -= 1
        elif tag == f"{_MAIN}t":
            self.in_text = False

    def data(self, text: str) -> None:
        if self.in_text and self.parts is not None:
            self.parts.append(text)

    def close(self) -> list[str]:
        return self.strings


def _int(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() and len(text) < 10 else default


def column_index(reference: str) -> int | None:
    """0-based column of a reference like ``AB12``; None for anything that is not one."""
    match = _REFERENCE.match(reference or "")
    if not match:
        return None
    index = 0
    for char in match.group(1):
        index = index * 26 + ord(char) - 64
    return index - 1


class _Sheet:
    """Cells with values, row by row; empty cells cost nothing."""

    def __init__(self, shared: list[str], date_styles: set[int], epoch: datetime, max_columns: int,
                 max_cell_elements: int, too_wide: Callable[[int, int], Exception]) -> None:
        self.shared, self.date_styles, self.epoch = shared, date_styles, epoch
        self.max_columns, self.too_wide = max_columns, too_wide
        self.cell_elements_left = max_cell_elements
        self.row_cells = 0
        self.done: list[Row] = []
        self.row_number = 0
        self.values: list[Any] = []
        self.in_row = False
        self.cell: tuple[str, str, str] | None = None  # reference, type, style
        self.position = 0
        self.raw: list[str] | None = None      # text of <v>
        self.inline: list[str] | None = None   # text of <is><t>
        self.collecting: list[str] | None = None
        self.phonetic = 0

    def drain(self) -> Iterator[Row]:
        done, self.done = self.done, []
        return iter(done)

    def start(self, tag: str, attrib: dict) -> None:
        if tag == f"{_MAIN}row":
            reference = attrib.get("r")
            number = self.row_number + 1 if reference is None else _int(reference, -1)
            # Ascending, as the format demands: at most a million row elements, whatever the file says.
            if not self.row_number < number <= EXCEL_MAX_ROW:
                raise XlsxError("Die XLSX-Datei ist beschädigt: ungültige Zeilennummer.")
            self.row_number, self.values, self.position, self.in_row, self.row_cells = number, [], 0, True, 0
        elif tag == f"{_MAIN}c" and self.in_row:
            # Empty cells cost no memory but time: a 13 KB file can hold three million of them.
            self.cell_elements_left -= 1
            self.row_cells += 1
            if self.row_cells > EXCEL_MAX_COLUMN:
                raise XlsxError("Die XLSX-Datei ist beschädigt: eine Zeile hat mehr Zellen, als Excel Spalten hat.")
            if self.cell_elements_left < 0:
                raise XlsxError("Die XLSX-Datei hat zu viele Zellen (auch leere, formatierte zählen mit). Bitte teilen Sie sie auf.")
            self.cell = (attrib.get("r", ""), attrib.get("t", "n"), attrib.get("s", "0"))
            self.raw = self.inline = None
        elif self.cell is not None:
            if tag == f"{_MAIN}v":
                self.raw = self.collecting = []
            elif tag == f"{_MAIN}is":
                self.inline = []
            elif tag == f"{_MAIN}rPh":
                self.phonetic += 1
            elif tag == f"{_MAIN}t" and self.inline is not None and not self.phonetic:
                self.collecting = self.inline

    def end(self, tag: str) -> None:
        if tag == f"{_MAIN}c" and self.cell is not None:
            self._finish_cell(*self.cell)
            self.cell = self.collecting = None
        elif tag == f"{_MAIN}row" and self.in_row:
            if self.values:
                self.done.append((self.row_number, self.values))
            self.in_row = False
        elif tag in (f"{_MAIN}v", f"{_MAIN}t"):
            self.collecting = None
        elif tag == f"{_MAIN}rPh":
            self.phonetic -= 1

    def data(self, text: str) -> None:
        if self.collecting is not None:
            self.collecting.append(text)

    def close(self) -> None:
        return None

    def _finish_cell(self, reference: str, kind: str, style: str) -> None:
        column = column_index(reference) if reference else self.position
        if column is None:
            raise XlsxError(f"Die XLSX-Datei ist beschädigt: ungültiger Zellbezug „{reference[:20]}“.")
        self.position = column + 1
        value = self._value(kind, "".join(self.raw) if self.raw is not None else None, _int(style, 0))
        if value is None or value == "":
            return
        if column >= self.max_columns:
            raise self.too_wide(self.row_number, column + 1)
        if column >= len(self.values):
            self.values.extend([None] * (column + 1 - len(self.values)))
        self.values[column] = value

    def _value(self, kind: str, raw: str | None, style: int) -> Any:
        if kind == "inlineStr":
            return "".join(self.inline or ())
        if raw is None:
            return None
        if kind == "s":
            index = _int(raw.strip(), -1)
            if not 0 <= index < len(self.shared):
                raise XlsxError("Die XLSX-Datei ist beschädigt: Verweis auf einen fehlenden Text.")
            return self.shared[index]
        if kind == "b":
            return raw.strip() == "1"
        if kind == "n":
            try:
                number = float(raw)
            except ValueError:
                return raw
            if style in self.date_styles:
                try:
                    return from_excel(number, self.epoch)
                except (OverflowError, ValueError):
                    return number
            return int(number) if number.is_integer() and abs(number) < 1e15 else number
        if kind == "d":
            try:
                return datetime.fromisoformat(raw.strip())
            except ValueError:
                return raw
        return raw  # "str" (formula text), "e" (error value) and anything unknown: the text itself


def xlsx_rows(data: bytes, *, max_columns: int, max_strings: int, max_cell_elements: int, max_unpacked: int,
              max_parts: int, too_wide: Callable[[int, int], Exception]) -> Iterator[Row]:
    """(row number, values) of the first sheet's non-empty rows; values are None where cells are empty.

    ``too_wide(row, column)`` builds the error for a value beyond ``max_columns``.
    """
    package = _Package(data, max_unpacked=max_unpacked, max_parts=max_parts)
    if not package.has("xl/workbook.xml"):
        raise XlsxError("Die Datei ist keine lesbare XLSX-Datei (Excel-Arbeitsmappe).")
    workbook = package.read("xl/workbook.xml", _Workbook())
    relationships = package.read("xl/_rels/workbook.xml.rels", _Relationships()) if package.has("xl/_rels/workbook.xml.rels") else {}
    if workbook.first_sheet is None or workbook.first_sheet not in relationships:
        raise XlsxError("Die Arbeitsmappe enthält kein Tabellenblatt.")

    def part(kind: str, default: str) -> str | None:
        for rel_type, target in relationships.values():
            if rel_type.endswith("/" + kind):
                return _resolve(target)
        return default if package.has(default) else None

    shared: list[str] = []
    strings_part = part("sharedStrings", "xl/sharedStrings.xml")
    if strings_part:
        shared = package.read(strings_part, _SharedStrings(max_strings))
    date_styles: set[int] = set()
    styles_part = part("styles", "xl/styles.xml")
    if styles_part:
        date_styles = package.read(styles_part, _Styles(max_entries=100_000))
    epoch = CALENDAR_MAC_1904 if workbook.date1904 else CALENDAR_WINDOWS_1900
    sheet = _Sheet(shared, date_styles, epoch, max_columns, max_cell_elements, too_wide)
    yield from package.stream(_resolve(relationships[workbook.first_sheet][1]), sheet)


def _resolve(target: str) -> str:
    """A relationship target of the workbook as a name in the archive."""
    if target.startswith("/"):
        return posixpath.normpath(target.lstrip("/"))
    return posixpath.normpath(posixpath.join("xl", target))
