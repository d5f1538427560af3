"""Import: encodings, delimiters, headers, preview, apply, idempotency, every bad-input case of issue 3."""
from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import func, select

from ki_post.auth.models import AuditEntry
from ki_post.errors import RowError
from ki_post.extensions import db
from ki_post.recipients.importer import ImportFileError, apply_import, preview_import, read_table
from ki_post.recipients.models import Contact, Organisation, Verteiler
from tests.recipients.files import HEADERS, ROWS, csv_data, xlsx_data


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# --- Reading: encodings and delimiters (pure) ---------------------------------------------------

@pytest.mark.parametrize("variant", [
    dict(encoding="cp1252", delimiter=";", newline="\r\n"),              # German Excel
    dict(encoding="utf-8", delimiter=";", newline="\r\n", bom=True),     # Excel "CSV UTF-8"
    dict(encoding="utf-8", delimiter=",", newline="\n"),                 # LibreOffice/Python default
    dict(encoding="utf-8", delimiter="\t", newline="\n"),                # tab-separated
    dict(encoding="utf-16", delimiter="\t", newline="\r\n"),             # Excel "Unicode-Text"
])
def test_read_csv_variants(variant):
    table = read_table(csv_data(**variant), "liste.csv")
    assert table.headers == HEADERS
    assert [number for number, _ in table.rows] == [2, 3, 4]
    assert table.rows[0][1][6] == "Jäger" and table.rows[2][1][0] == "StädteRegion Aachen"


def test_read_xlsx():
    table = read_table(xlsx_data(), "liste.xlsx")
    assert table.file_kind == "XLSX" and table.headers == HEADERS
    assert table.rows[1][1][9] == "50679"


def test_row_numbers_as_the_spreadsheet_shows_them():
    rows = [ROWS[0], ["", "", "", "", "", "", "", "", "", "", "", "", ""], ROWS[1]]
    data = csv_data(rows=[[*ROWS[0][:7], "Zeile\nzwei", *ROWS[0][8:]], ROWS[1]], delimiter=";")
    assert [n for n, _ in read_table(data).rows] == [2, 3]  # a line break inside a cell is one row
    assert [n for n, _ in read_table(xlsx_data(rows=rows)).rows] == [2, 4]  # blank row 3 skipped, numbers kept


@pytest.mark.parametrize("data,name,message", [
    (b"", "leer.csv", "leer"),
    (b"\xef\xbb\xbf\r\n\r\n", "leer.csv", "leer"),
    (b"%PDF-1.4 binary", "liste.pdf", "weder eine CSV- noch eine XLSX-Datei"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "bild.csv", "weder eine CSV- noch eine XLSX-Datei"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "alt.xls", ".xls"),
    (b"Kommune;Name\r\nx;y\r\n", "liste.xlsx", "keine Excel-Arbeitsmappe"),
])
def test_unreadable_files(data, name, message):
    with pytest.raises(ImportFileError, match=message):
        read_table(data, name)


def test_zip_that_is_not_xlsx_and_damaged_xlsx():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hallo.txt", "kein Excel")
    with pytest.raises(ImportFileError, match="XLSX"):
        read_table(buffer.getvalue(), "liste.xlsx")
    with pytest.raises(ImportFileError, match="XLSX"):
        read_table(xlsx_data()[:500], "liste.xlsx")


# --- Preview and apply ------------------------------------------------------------------------------

def test_header_without_email_column_is_an_error_and_writes_nothing(app):
    data = csv_data(headers=[h for h in HEADERS if h != "E-Mail"], rows=[r[:11] + r[12:] for r in ROWS])
    with pytest.raises(ImportFileError, match="keine Spalte „E-Mail“"):
        apply_import(data, "x.csv")
    db.session.rollback()
    assert count(Contact) == 0 and count(Organisation) == 0


def test_headers_match_ignoring_case_spaces_and_order(app):
    headers = ["  e-mail ", "NACHNAME", "vorname", "kommune", "Art", "Lieblingsfarbe"]
    rows = [["a.b@x.example", "Becker", "Anna", "Kreis Wesel", "Kreis", "grün"]]
    result = apply_import(csv_data(headers=headers, rows=rows, delimiter=","), "x.csv")
    db.session.commit()
    assert result.counts == {"neu": 1, "geaendert": 0, "unveraendert": 0, "ungueltig": 0}
    assert result.unknown_columns == ["Lieblingsfarbe"]
    contact = db.session.scalar(select(Contact))
    assert (contact.first_name, contact.last_name, contact.email) == ("Anna", "Becker", "a.b@x.example")
    assert contact.organisation.name == "Kreis Wesel" and contact.organisation.kind == "kreis"
    assert contact.extra == {"Lieblingsfarbe": "grün"}


def test_import_creates_organisations_and_contacts_and_is_idempotent(app):
    data = xlsx_data()
    preview = preview_import(data, "liste.xlsx")
    assert preview.counts == {"neu": 3, "geaendert": 0, "unveraendert": 0, "ungueltig": 0}
    assert count(Contact) == 0  # the preview writes nothing
    result = apply_import(data, "liste.xlsx")
    db.session.commit()
    assert result.counts["neu"] == 3 and count(Contact) == 3 and count(Organisation) == 3
    jaeger = db.session.scalar(select(Contact).where(Contact.last_name == "Jäger"))
    assert jaeger.email == "s.jaeger@kreis-mettmann.example"  # normalised
    assert (jaeger.anrede, jaeger.academic_title, jaeger.organisation.postcode) == ("frau", "Dr.", "40822")
    aachen = db.session.scalar(select(Organisation).where(Organisation.name == "StädteRegion Aachen"))
    assert aachen.kind == "staedteregion" and aachen.regierungsbezirk == "Köln"

    for again in (data, csv_data()):  # same file twice, and the same data as CSV
        second = apply_import(again, "liste")
        db.session.commit()
        assert second.counts == {"neu": 0, "geaendert": 0, "unveraendert": 3, "ungueltig": 0}
    assert count(Contact) == 3 and count(Organisation) == 3


def test_changed_rows_list_their_changes(app):
    apply_import(csv_data(), "a.csv")
    db.session.commit()
    rows = [list(row) for row in ROWS]
    rows[0][6] = "Jäger-Schulz"
    rows[1][8] = "Postfach 10 35 64"
    changed = preview_import(csv_data(rows=rows), "b.csv")
    assert changed.counts == {"neu": 0, "geaendert": 2, "unveraendert": 1, "ungueltig": 0}
    first, second = changed.of("geaendert")
    assert first.row == 2 and ("Nachname", "Jäger", "Jäger-Schulz") in first.changes
    assert second.row == 3 and any(label.endswith("Straße") and new == "Postfach 10 35 64" for label, _, new in second.changes)
    apply_import(csv_data(rows=rows), "b.csv")
    db.session.commit()
    assert db.session.scalar(select(Organisation.street).where(Organisation.name == "Köln")) == "Postfach 10 35 64"


@pytest.mark.parametrize("column,value,reason", [
    ("E-Mail", "keine-adresse", "ist keine gültige E-Mail-Adresse"),
    ("E-Mail", "", "Die E-Mail-Adresse fehlt"),
    ("Nachname", "", "Der Nachname fehlt"),
    ("Art", "Dorf", "Unbekannte Art „Dorf“"),
    ("Anrede", "Dr.", "Unbekannte Anrede"),
    ("Regierungsbezirk", "Oberbayern", "Unbekannter Regierungsbezirk"),
    ("Vorname", "x" * 101, "zu lang"),
])
def test_invalid_rows_have_row_number_and_german_reason_and_are_not_written(app, column, value, reason):
    rows = [list(row) for row in ROWS]
    rows[1][HEADERS.index(column)] = value
    result = apply_import(csv_data(rows=rows, encoding="utf-8"), "x.csv")
    db.session.commit()
    assert result.counts == {"neu": 2, "geaendert": 0, "unveraendert": 0, "ungueltig": 1}
    error = result.invalid[0]
    assert isinstance(error, RowError) and error.row == 3 and reason in str(error) and str(error).startswith("Zeile 3: ")
    assert count(Contact) == 2
    assert db.session.scalar(select(Contact).where(Contact.last_name == "Koch")) is None


def test_duplicate_email_in_same_file_names_the_first_row(app):
    rows = [*ROWS, [*ROWS[0][:11], "s.jaeger@KREIS-mettmann.example", ""]]
    result = preview_import(xlsx_data(rows=rows))
    assert [str(e) for e in result.invalid] == ["Zeile 5: Die E-Mail-Adresse s.jaeger@kreis-mettmann.example steht schon in Zeile 2."]


def test_import_into_a_list_and_audit(app):
    result = apply_import(csv_data(), "x.csv", list_name="Import November")
    db.session.commit()
    verteiler = db.session.scalar(select(Verteiler).where(Verteiler.name == "Import November"))
    assert verteiler is not None and len(verteiler.members) == 3 and result.list_name == "Import November"
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "kontakte.importiert"))
    assert entry.details["neu"] == 3 and entry.details["ungueltig"] == 0


def test_mapping_of_unknown_columns(app):
    headers = ["Mail", "Nachname", "Dienstgrad", "Sprechzeiten"]
    rows = [["x@y.example", "Wolf", "Landrätin", "Mo 9–12"]]
    data = csv_data(headers=headers, rows=rows, encoding="utf-8")
    result = apply_import(data, "x.csv", mapping={"Dienstgrad": "office_title", "Sprechzeiten": "-"})
    db.session.commit()
    contact = db.session.scalar(select(Contact))
    assert contact.office_title == "Landrätin" and contact.extra == {}
    assert result.unknown_columns == ["Dienstgrad", "Sprechzeiten"]


def test_size_limit(app):
    with pytest.raises(ImportFileError, match="größer als 1 MB"):
        preview_import(b"x" * (1024 * 1024 + 1), "x.csv", limit=1024 * 1024)


def test_script_and_template_strings_are_stored_literally(app):
    rows = [[*ROWS[0][:5], "{{ 7*7 }}", "<script>alert(1)</script>", "=HYPERLINK(\"x\")", *ROWS[0][8:]]]
    apply_import(csv_data(rows=rows, encoding="utf-8"), "x.csv")
    db.session.commit()
    contact = db.session.scalar(select(Contact))
    assert (contact.first_name, contact.last_name, contact.function) == ("{{ 7*7 }}", "<script>alert(1)</script>", "=HYPERLINK(\"x\")")


def test_contradicting_organisation_rows_first_wins_with_a_warning_and_stay_idempotent(app):
    # Another person of the same Kommune (same name and Kommune would be a likely duplicate, skipped)
    second = [*ROWS[0][:5], "Sonja", *ROWS[0][6:8], "Andere Straße 1", *ROWS[0][9:11], "zweite@kreis-mettmann.example", ""]
    data = csv_data(rows=[*ROWS, second])
    result = apply_import(data, "x.csv")
    db.session.commit()
    assert result.counts["neu"] == 4
    assert result.warnings == ["Zeile 5: Straße „Andere Straße 1“ für Kreis Mettmann weicht von Zeile 2 ab "
                               "(„Düsseldorfer Straße 26“); übernommen wird Zeile 2."]
    assert db.session.scalar(select(Organisation.street).where(Organisation.name == "Kreis Mettmann")) == "Düsseldorfer Straße 26"
    again = apply_import(data, "x.csv")
    assert again.counts == {"neu": 0, "geaendert": 0, "unveraendert": 4, "ungueltig": 0}
