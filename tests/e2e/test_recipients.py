"""Browser: the Verteiler pages with axe-core, and an import through the UI preview."""
from __future__ import annotations

from sqlalchemy import func, select

from ki_post.extensions import db
from ki_post.recipients.models import Contact
from tests.e2e.conftest import assert_accessible, login
from tests.recipients.files import HEADERS, ROWS, csv_data


def test_list_contact_and_forms_are_accessible(page, live_app):
    login(page)
    page.goto("/verteiler/")
    assert page.get_by_role("heading", level=1).inner_text() == "Verteiler: Ansprechpersonen"
    assert_accessible(page)
    page.get_by_label("Regierungsbezirk").select_option("Köln")
    page.get_by_role("button", name="Filtern").click()
    assert "regierungsbezirk=K" in page.url
    assert_accessible(page)

    page.locator("tbody a").first.click()
    page.wait_for_url("**/verteiler/kontakte/*")
    assert page.get_by_role("heading", name="Verlauf").is_visible()
    assert_accessible(page)
    page.get_by_role("link", name="Anonymisieren oder löschen").click()
    assert_accessible(page)
    page.go_back()
    page.get_by_role("link", name="Bearbeiten").click()
    page.get_by_label("Nachname").fill("")
    page.get_by_role("button", name="Speichern").click()
    assert page.locator(".error-summary").is_visible()
    assert_accessible(page)

    for url in ("/verteiler/listen", "/verteiler/listen/1", "/verteiler/listen/1/bearbeiten", "/verteiler/kommunen/1"):
        page.goto(url)
        assert_accessible(page)


def test_import_through_preview_and_apply(page, live_app, tmp_path):
    rows = [list(r) for r in ROWS]
    rows[1][HEADERS.index("Nachname")] = ""
    path = tmp_path / "neue-ansprechpersonen.csv"
    path.write_bytes(csv_data(headers=[*HEADERS, "Sprechzeit"], rows=[[*r, "Di 10–12"] for r in rows]))
    with live_app.app_context():
        before = db.session.scalar(select(func.count(Contact.id)))

    login(page)
    page.goto("/verteiler/import")
    assert_accessible(page)
    page.get_by_label("Datei (CSV oder XLSX)").set_input_files(str(path))
    page.get_by_role("button", name="Hochladen und prüfen").click()
    page.wait_for_url("**/verteiler/import/*")
    assert page.get_by_role("heading", level=1).inner_text() == "Import-Vorschau"
    assert page.locator("#anzahl-neu").inner_text() == "2"
    assert page.locator("#anzahl-ungueltig").inner_text() == "1"
    assert "Der Nachname fehlt." in page.get_by_role("table", name="Ungültige Zeilen (werden nicht gespeichert)").inner_text()
    assert_accessible(page)

    page.get_by_label("Spalte „Sprechzeit“").select_option("notes")
    page.get_by_role("button", name="Zuordnung anwenden").click()
    assert_accessible(page)
    page.get_by_role("button", name="Import anwenden").click()
    page.wait_for_url("**/verteiler/")
    assert "Import abgeschlossen: 2 neu, 0 geändert, 0 unverändert, 1 ungültig." in page.locator(".messages").inner_text()
    assert_accessible(page)

    with live_app.app_context():
        assert db.session.scalar(select(func.count(Contact.id))) == before + 2
        assert db.session.scalar(select(Contact.notes).where(Contact.email == "s.jaeger@kreis-mettmann.example")) == "Di 10–12"
