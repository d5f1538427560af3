"""Reading import files: the XLSX reader agrees with openpyxl on ordinary workbooks, and every bomb of
the adversarial test (and its relatives) ends in a German error, in bounded memory.

The three bombs of the issue run in a child process with an address-space limit, so a regression
fails the test with a figure instead of taking the machine's memory.
"""
from __future__ import annotations

import io
import json
import resource
import struct
import subprocess
import sys
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ki_post.recipients.importer import ImportFileError, read_table
from ki_post.recipients.reading import MAX_CELLS, MAX_COLUMNS, MAX_TEXT
from ki_post.recipients.xlsx import XlsxError, xlsx_rows
from tests.recipients.files import inline_cell, xlsx_package, xlsx_shared_strings

ROOT = Path(__file__).resolve().parents[2]


# --- The reader against openpyxl (the oracle) on ordinary workbooks ---------------------------------

def openpyxl_rows(data: bytes) -> list[tuple[int, list]]:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    rows = [(n, list(values)) for n, values in enumerate(workbook.worksheets[0].iter_rows(values_only=True), start=1)]
    workbook.close()
    return normalised(rows)


def our_rows(data: bytes, **limits) -> list[tuple[int, list]]:
    options = {"max_columns": MAX_COLUMNS, "max_strings": MAX_CELLS, "max_cell_elements": 2 * MAX_CELLS,
               "max_unpacked": 64 << 20, "max_parts": 1000,
               "too_wide": lambda row, column: XlsxError(f"zu breit: Zeile {row}, Spalte {column}")}
    return normalised(xlsx_rows(data, **{**options, **limits}))


def normalised(rows) -> list[tuple[int, list]]:
    result = []
    for number, values in rows:
        values = [None if value == "" else value for value in values]
        while values and values[-1] is None:
            values.pop()
        if values:
            result.append((number, values))
    return result


def test_reader_matches_openpyxl_on_types_dates_and_sheets():
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Kommune", "PLZ", "Seit", "Aktiv", "Anteil", "Formel", "Termin"])
    sheet.append(["Köln", 50679, date(2016, 12, 28), True, 1.5, "=1+1", datetime(2017, 2, 8, 11, 0)])
    sheet["C4"] = "später"
    workbook.create_sheet("Zweites Blatt")["A1"] = "wird nicht gelesen"
    buffer = io.BytesIO()
    workbook.save(buffer)
    data = buffer.getvalue()
    assert our_rows(data) == openpyxl_rows(data)
    table = read_table(data, "x.xlsx")
    assert table.rows == [(2, ["Köln", "50679", "28.12.2016", "ja", "1.5", "", "08.02.2017 11:00"]), (4, ["", "", "später"])]


def test_1904_dates_and_rich_text_with_phonetic_guides():
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.epoch = __import__("openpyxl").utils.datetime.CALENDAR_MAC_1904
    workbook.active.append(["Termin", date(2017, 2, 8)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert our_rows(buffer.getvalue()) == openpyxl_rows(buffer.getvalue()) == [(1, ["Termin", datetime(2017, 2, 8)])]

    rich = xlsx_package(['<row r="1"><c r="A1" t="s"><v>0</v></c></row>'],
                        ['<si><r><t>Dr. </t></r><r><rPr><b/></rPr><t>Jäger</t></r><rPh sb="0" eb="1"><t>ヤ</t></rPh></si>'])
    assert our_rows(rich) == [(1, ["Dr. Jäger"])]


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Co")), max_size=30)
_VALUE = st.one_of(st.none(), _TEXT, st.integers(-10**12, 10**12), st.booleans(),
                   st.floats(allow_nan=False, allow_infinity=False, width=32), st.dates(date(1901, 1, 1), date(2099, 12, 31)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_VALUE, max_size=8), min_size=1, max_size=12))
def test_reader_agrees_with_openpyxl_on_any_table(table):
    """Random tables (gaps, empty rows, types, any text) written by openpyxl: both readers agree."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    for row in table:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert our_rows(buffer.getvalue()) == openpyxl_rows(buffer.getvalue())


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.one_of(st.just(""), _TEXT), max_size=6), min_size=1, max_size=10))
def test_reader_agrees_with_openpyxl_on_shared_strings_as_excel_writes_them(table):
    data = xlsx_shared_strings(table)
    assert our_rows(data) == openpyxl_rows(data)


# --- Bombs: German error, bounded memory ------------------------------------------------------------

_CHILD = """
import json, sys, time

def peak_mb():
    # VmHWM: the high-water mark of this program's memory (ru_maxrss would include the parent's before exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

sys.path.insert(0, sys.argv[1])
from ki_post.recipients.importer import ImportFileError, read_table
data = open(sys.argv[2], "rb").read()
start = time.perf_counter()
try:
    table = read_table(data, sys.argv[3])
    outcome = "gelesen: %d Zeilen" % len(table.rows)
except ImportFileError as error:
    outcome = str(error)
print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - start,
                  "peak_mb": peak_mb()}))
"""
CHILD_MEMORY = 1024 * 1024 * 1024  # address space of the child: a regression fails, the machine keeps its memory


def read_in_child(tmp_path, data: bytes, name: str) -> dict:
    path = tmp_path / name
    path.write_bytes(data)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))

    result = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), str(path), name], capture_output=True, text=True,
                            timeout=300, preexec_fn=limit)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_issue_bomb_cell_reference_AAAAAAA2(tmp_path):
    """1.5 KB, 5 GB before: AAAAAAA is column 321,272,407."""
    data = xlsx_package(['<row r="1">', inline_cell("A1", "E-Mail"), "</row>",
                         '<row r="2">', inline_cell("AAAAAAA2", "x"), "</row>"])
    assert len(data) < 2000
    figures = read_in_child(tmp_path, data, "bombe.xlsx")
    assert "Zeile 2 hat Werte bis Spalte 321.272.407" in figures["outcome"]
    assert f"höchstens {MAX_COLUMNS} Spalten" in figures["outcome"]
    assert figures["peak_mb"] < 250


def test_issue_bomb_shared_strings_unpacking_far_beyond_the_file(tmp_path):
    """A few hundred KB that unpack to 200 MB of string table (the issue had 3 MB → 3 GB: bench/)."""
    piece = "<si><t>" + "A" * 10_000 + "</t></si>"
    data = xlsx_package(['<row r="1"><c r="A1" t="s"><v>0</v></c></row>'], (piece for _ in range(20_000)))
    assert len(data) < 2_000_000
    figures = read_in_child(tmp_path, data, "bombe.xlsx")
    assert "entpackt größer als 64 MB" in figures["outcome"]
    assert figures["peak_mb"] < 250


def test_issue_bomb_csv_with_400000_columns(tmp_path):
    data = ("E-Mail;" + ";".join(f"Spalte {i}" for i in range(400_000)) + "\r\na@b.example;x\r\n").encode()
    figures = read_in_child(tmp_path, data, "breit.csv")
    assert "Zeile 1 hat Werte bis Spalte 400.001" in figures["outcome"]
    assert figures["peak_mb"] < 250


def test_wide_csv_upload_answers_with_a_small_german_page(staff_client):
    data = ("E-Mail;" + ";".join(f"Spalte {i}" for i in range(400_000)) + "\r\na@b.example;x\r\n").encode()
    response = staff_client.submit("/verteiler/import", {"file": (io.BytesIO(data), "breit.csv")},
                                   form_url="/verteiler/import", content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f"höchstens {MAX_COLUMNS} Spalten" in page
    assert len(page) < 100_000  # 541 MB before


def test_empty_cells_far_right_cost_nothing():
    """Styled empty cells in column XFD on every row (216 KB; 50 s and 2.7 GB before) read as nothing."""
    rows = ['<row r="1">' + inline_cell("A1", "E-Mail") + "</row>"]
    rows += [f'<row r="{i}">{inline_cell(f"A{i}", f"a{i}@x.example")}<c r="XFD{i}" s="0"/><c r="AAAAAAA{i}"/></row>'
             for i in range(2, 20_000)]
    table = read_table(xlsx_package(rows), "x.xlsx")
    assert len(table.rows) == 19_998 and table.headers == ["E-Mail"]
    assert {len(cells) for _, cells in table.rows} == {1}


def test_a_row_with_more_cells_than_excel_has_columns_is_damage():
    """One row of three million empty cells fits in 13 KB (12 s and 949 MB for openpyxl)."""
    full = xlsx_package(['<row r="1">', inline_cell("A1", "E-Mail"), inline_cell("B1", "Name"), "<c/>" * 16_381,
                         '<c r="XFD1" s="0"/></row>'])
    assert read_table(full, "x.xlsx").headers == ["E-Mail", "Name"]  # a full row of 16,384 cells is fine
    bomb = xlsx_package(['<row r="1">', inline_cell("A1", "E-Mail"), "<c/>" * 3_000_000, "</row>"])
    assert len(bomb) < 20_000
    with pytest.raises(ImportFileError, match="mehr Zellen, als Excel Spalten hat"):
        read_table(bomb, "x.xlsx")


def test_empty_cell_elements_are_counted_too():
    """Three million empty cells fit in 13 KB; each costs parsing time, so they count against a limit."""
    data = xlsx_package(['<row r="1">', inline_cell("A1", "E-Mail"), "<c/>" * 1_001, "</row>"])
    with pytest.raises(XlsxError, match="zu viele Zellen"):
        our_rows(data, max_cell_elements=1_000)
    assert our_rows(data, max_cell_elements=1_002) == [(1, ["E-Mail"])]


def test_row_numbers_must_ascend():
    """Otherwise a file could repeat row 1 without end, each row element costing time."""
    data = xlsx_package(['<row r="2">', inline_cell("A2", "E-Mail"), '</row><row r="2"/>'])
    with pytest.raises(ImportFileError, match="ungültige Zeilennummer"):
        read_table(data, "x.xlsx")


def test_more_distinct_texts_than_allowed_is_refused_while_reading():
    data = xlsx_package(['<row r="1"><c r="A1" t="s"><v>0</v></c></row>'], (f"<si><t>{i}</t></si>" for i in range(1_001)))
    with pytest.raises(XlsxError, match="mehr als 1.000 verschiedene Texte"):
        our_rows(data, max_strings=1_000)


def test_one_long_text_in_many_cells_is_refused_before_it_is_copied():
    cells = ['<row r="1">' + inline_cell("A1", "Notizen") + "</row>"]
    cells += [f'<row r="{i}"><c r="A{i}" t="s"><v>0</v></c></row>' for i in range(2, MAX_TEXT // 30_000 + 4)]
    data = xlsx_package(cells, ["<si><t>" + "x" * 30_000 + "</t></si>"])
    with pytest.raises(ImportFileError, match="Zeichen Text"):
        read_table(data, "x.xlsx")


def test_more_cells_than_allowed_in_csv_is_refused_before_parsing():
    with pytest.raises(ImportFileError, match="mehr als 1.000.000 Zellen"):
        read_table(b"E-Mail" + b";" * (MAX_CELLS + 1) + b"\r\n", "x.csv")


def test_long_header_is_refused():
    with pytest.raises(ImportFileError, match="Spaltenüberschrift in Spalte 2 ist länger als 200 Zeichen"):
        read_table(("E-Mail;" + "x" * 201 + "\r\na@b.example;y\r\n").encode(), "x.csv")


def test_row_number_beyond_excel_is_damage():
    data = xlsx_package(['<row r="99999999999">', inline_cell("A1", "E-Mail"), "</row>"])
    with pytest.raises(ImportFileError, match="ungültige Zeilennummer"):
        read_table(data, "x.xlsx")


def test_too_many_parts_is_refused_before_reading():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(1_001):
            archive.writestr(f"x/{i}", "")
    with pytest.raises(ImportFileError, match="mehr als 1.000 Teilen"):
        read_table(buffer.getvalue(), "x.xlsx")


def test_a_part_that_unpacks_to_more_than_it_declares_is_damage():
    """The size check trusts the declared sizes: zipfile stops reading there and checks the CRC."""
    data = xlsx_package(['<row r="1"><c r="A1" t="s"><v>0</v></c></row>'], ["<si><t>" + "A" * 5_000_000 + "</t></si>"])
    data = _declare_size(data, "xl/sharedStrings.xml", 1_000)
    with pytest.raises(ImportFileError, match="beschädigt"):
        read_table(data, "x.xlsx")


def _declare_size(data: bytes, name: str, size: int) -> bytes:
    """Rewrite the uncompressed size of ``name`` in its local header and in the central directory."""
    blob = bytearray(data)
    encoded = name.encode()
    for signature, size_offset, name_offset in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        position = 0
        while (position := blob.find(signature, position)) >= 0:
            name_length = struct.unpack_from("<H", blob, position + name_offset - (2 if signature == b"PK\x03\x04" else 18))[0]
            if bytes(blob[position + name_offset:position + name_offset + name_length]) == encoded:
                if struct.unpack_from("<I", blob, position + size_offset)[0] != 0xFFFFFFFF:
                    struct.pack_into("<I", blob, position + size_offset, size)
                else:  # zip64: the real size sits in the extra field
                    extra_offset = position + name_offset + name_length
                    struct.pack_into("<Q", blob, extra_offset + 4, size)
            position += 4
    return bytes(blob)


def test_nothing_else_than_a_workbook_is_a_german_error():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hallo.txt", "kein Excel")
    for data in (buffer.getvalue(), xlsx_package([])[:300], b"PK\x03\x04" + b"\x00" * 100):
        with pytest.raises(ImportFileError, match="XLSX"):
            read_table(data, "liste.xlsx")
