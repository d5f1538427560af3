"""ki_post/exports.py: formula neutralisation, CSV for German Excel, XLSX read back with openpyxl."""
from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from openpyxl import load_workbook

from ki_post.exports import csv_bytes, neutralise, unneutralise, xlsx_bytes

DANGEROUS = ["=1+1", "+49 211 1234", "-2", "@SUM(A1)", " =HYPERLINK(\"http://x\")", "\t=1", "\r=1", "\n+1", "   @x",
             "'=schon", "''+1"]  # apostrophes in the data get one more, so re-import can tell them apart


@pytest.mark.parametrize("value", DANGEROUS)
def test_neutralise_prefixes_formula_starts(value):
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["Köln", "a=b", "", "E-Mail", "x@y.example", "'abc", "'"])
def test_neutralise_leaves_harmless_text(value):
    assert neutralise(value) == value


@pytest.mark.parametrize("value", [*DANGEROUS, "Köln", "a=b", "", "'abc", "'"])
def test_unneutralise_undoes_exactly_what_neutralise_added(value):
    assert unneutralise(neutralise(value)) == value


@pytest.mark.parametrize("text,expected", [
    ("'+49 5231 62-0", "+49 5231 62-0"),
    ("'=x", "=x"),          # also when typed by hand: the same rule, no way to tell the two apart
    ("''=x", "'=x"),        # only one apostrophe goes
    ("'abc", "'abc"),       # neutralise would not have prefixed "abc"
    ("'", "'"),
    ("+49", "+49"),
])
def test_unneutralise_only_removes_the_guard_apostrophe(text, expected):
    assert unneutralise(text) == expected


def test_neutralise_non_text():
    assert neutralise(None) == "" and neutralise(5) == 5 and neutralise(-5) == -5


def test_csv_is_utf8_bom_semicolon_crlf():
    data = csv_bytes(["Name", "Ort"], [["Jäger; Anna", "Köln"], ["=1+1", "Zeile\nzwei"], [True, date(2016, 12, 28)]])
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert text.startswith("Name;Ort\r\n")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert rows == [["Name", "Ort"], ["Jäger; Anna", "Köln"], ["'=1+1", "Zeile\nzwei"], ["ja", "28.12.2016"]]


def test_xlsx_neutralised_bold_frozen_header():
    data = xlsx_bytes(["Name", "Telefon"], [["=cmd|' /C calc'!A0", "+49 211"], ["Jäger", "@x"], ["ok", 3]], "Alle KI: Dezernate/2016")
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet.title == "Alle KI  Dezernate 2016"
    assert sheet["A1"].value == "Name" and sheet["A1"].font.bold
    assert sheet.freeze_panes == "A2"
    assert sheet["A2"].value == "'=cmd|' /C calc'!A0" and sheet["A2"].data_type == "s"
    assert sheet["B2"].value == "'+49 211" and sheet["B3"].value == "'@x"
    assert sheet["B4"].value == 3
    assert not any(cell.data_type == "f" for row in sheet.iter_rows() for cell in row)
