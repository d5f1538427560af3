"""`flask recipients import|export|lists`: output format and exit status 0/1/2."""
from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from ki_post.extensions import db
from ki_post.recipients.models import Contact, Verteiler
from tests.recipients.files import HEADERS, ROWS, csv_data, xlsx_data


def contacts() -> int:
    return db.session.scalar(select(func.count(Contact.id)))


def test_import_all_valid_exit_0_then_idempotent(runner, tmp_path):
    path = tmp_path / "liste.xlsx"
    path.write_bytes(xlsx_data())
    result = runner.invoke(args=["recipients", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["3 neu, 0 geändert, 0 unverändert, 0 ungültig"]
    assert contacts() == 3
    again = runner.invoke(args=["recipients", "import", str(path)])
    assert again.exit_code == 0 and again.output.splitlines()[0] == "0 neu, 0 geändert, 3 unverändert, 0 ungültig"


def test_import_with_invalid_rows_exit_1_imports_the_valid_ones(runner, tmp_path):
    rows = [list(r) for r in ROWS]
    rows[2][HEADERS.index("E-Mail")] = "kaputt@"
    path = tmp_path / "liste.csv"
    path.write_bytes(csv_data(rows=rows))
    result = runner.invoke(args=["recipients", "import", str(path), "--list", "KI Köln"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0] == "2 neu, 0 geändert, 0 unverändert, 1 ungültig"
    assert lines[-1] == "Zeile 4: „kaputt@“ ist keine gültige E-Mail-Adresse."
    assert contacts() == 2
    assert len(db.session.scalar(select(Verteiler).where(Verteiler.name == "KI Köln")).members) == 2


def test_dry_run_writes_nothing(runner, tmp_path):
    rows = [list(r) for r in ROWS]
    rows[0][HEADERS.index("Nachname")] = ""
    path = tmp_path / "liste.csv"
    path.write_bytes(csv_data(rows=rows))
    result = runner.invoke(args=["recipients", "import", str(path), "--dry-run"])
    assert result.exit_code == 1
    assert result.output.splitlines() == ["Probelauf, nichts gespeichert: 2 neu, 0 geändert, 0 unverändert, 1 ungültig",
                                          "Zeile 2: Der Nachname fehlt."]
    assert contacts() == 0


def test_unreadable_file_exit_2_nothing_written(runner, tmp_path):
    missing = runner.invoke(args=["recipients", "import", str(tmp_path / "fehlt.csv")])
    assert missing.exit_code == 2 and "kann nicht gelesen werden" in missing.output
    path = tmp_path / "ohne-mail.csv"
    path.write_bytes(b"Kommune;Nachname\r\nK\xf6ln;Koch\r\n")
    result = runner.invoke(args=["recipients", "import", str(path)])
    assert result.exit_code == 2 and "keine Spalte „E-Mail“" in result.output
    empty = tmp_path / "leer.csv"
    empty.write_bytes(b"")
    assert runner.invoke(args=["recipients", "import", str(empty)]).exit_code == 2
    assert contacts() == 0


def test_export_csv_and_xlsx_round_trip(runner, tmp_path, demo):
    target = tmp_path / "alle.csv"
    result = runner.invoke(args=["recipients", "export", str(target), "--list", "Alle KI-Dezernate"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"53 Ansprechpersonen nach {target} exportiert."
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert rows[0][:3] == ["Kommune", "Art", "Regierungsbezirk"] and len(rows) == 54

    xlsx = tmp_path / "alle.xlsx"
    assert runner.invoke(args=["recipients", "export", str(xlsx)]).exit_code == 0
    sheet = load_workbook(xlsx).active
    assert sheet.max_row == 54 and sheet["A1"].font.bold

    # the export imports back unchanged
    again = runner.invoke(args=["recipients", "import", str(target)])
    assert again.exit_code == 0 and again.output.splitlines()[0] == "0 neu, 0 geändert, 53 unverändert, 0 ungültig"


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_export_reimports_without_changes_and_keeps_formula_like_text(runner, tmp_path, demo, suffix):
    first, second = db.session.scalars(select(Contact).order_by(Contact.id).limit(2))
    first.phone = "+49 5231 62-0"
    first.extra = {"Kürzel": "=A1"}
    second.function = "- kommissarisch -"
    second.office_title = "'=Amt"  # an apostrophe that belongs to the data
    db.session.commit()
    target = tmp_path / f"alle.{suffix}"
    assert runner.invoke(args=["recipients", "export", str(target)]).exit_code == 0
    raw = target.read_bytes()
    cells = raw.decode("utf-8-sig") if suffix == "csv" else [c.value for row in load_workbook(io.BytesIO(raw)).active.iter_rows() for c in row]
    assert "'+49 5231 62-0" in cells and "''=Amt" in cells  # the export keeps its formula guard

    dry = runner.invoke(args=["recipients", "import", str(target), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines()[0] == "Probelauf, nichts gespeichert: 0 neu, 0 geändert, 53 unverändert, 0 ungültig"
    assert runner.invoke(args=["recipients", "import", str(target)]).exit_code == 0
    db.session.expire_all()
    first, second = db.session.get(Contact, first.id), db.session.get(Contact, second.id)
    assert first.phone == "+49 5231 62-0" and first.extra == {"Kürzel": "=A1"}
    assert second.function == "- kommissarisch -" and second.office_title == "'=Amt"


def test_export_errors(runner, tmp_path):
    assert runner.invoke(args=["recipients", "export", str(tmp_path / "x.pdf")]).exit_code == 2
    result = runner.invoke(args=["recipients", "export", str(tmp_path / "x.csv"), "--list", "Fehlt"])
    assert result.exit_code == 1 and "Verteiler „Fehlt“ gibt es nicht." in result.output


def test_lists(runner, demo):
    result = runner.invoke(args=["recipients", "lists"])
    assert result.exit_code == 0
    assert result.output.splitlines() == ["Alle KI-Dezernate\t53 Ansprechpersonen\talle aktiven Ansprechpersonen"]
