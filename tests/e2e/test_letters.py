"""Browser: compose a circular for the demo Verteiler, preview it record by record, download the ZIP, prepare a mailing."""
from __future__ import annotations

import io
import zipfile

from docx import Document

from tests.e2e.conftest import assert_accessible, login


def test_compose_preview_and_download_zip(page, tmp_path):
    login(page, "sachbearbeitung")
    page.get_by_role("link", name="Rundschreiben", exact=True).first.click()
    page.wait_for_url("**/rundschreiben/")
    assert page.get_by_role("heading", level=1).inner_text() == "Rundschreiben"
    assert_accessible(page)

    page.get_by_role("link", name="Platzhalter").click()
    assert page.locator("td", has_text="Sehr geehrte Frau Dr. Schmidt,").count() >= 1
    assert_accessible(page)
    page.go_back()

    page.get_by_role("link", name="Rundschreiben erstellen").click()
    assert page.get_by_label("Ansprechperson").input_value() == "Agnes Heuvelmann"
    assert_accessible(page)
    page.get_by_label("Betreff").fill("Ausbau der Kommunalen Integrationszentren")
    page.get_by_label("Datum").fill("2016-12-28")
    page.get_by_label("Verteiler").select_option(label="Alle KI-Dezernate")
    page.get_by_role("button", name="Vorschau").click()
    assert page.get_by_role("heading", name="Vorschau: Brief 1 von 53").is_visible()
    first = page.locator("pre").text_content()  # the text alternative, folded under the page image
    assert "28. Dezember 2016" in first and ("Sehr geehrte" in first or "Guten Tag" in first)
    assert_accessible(page)
    page.get_by_role("button", name="Nächster Brief").click()
    assert page.get_by_role("heading", name="Vorschau: Brief 2 von 53").is_visible()
    assert page.locator("pre").text_content() != first

    page.get_by_label("ZIP mit einer DOCX-Datei je Empfänger").check()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Briefe erstellen und herunterladen").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".zip")
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        assert len(names) == 53
        texts = [p.text for p in Document(io.BytesIO(archive.read(names[0]))).paragraphs]
        assert "Ausbau der Kommunalen Integrationszentren" in texts

    # The same form, finished the other way: a draft mailing in the Postausgang, nothing sent yet.
    page.get_by_label("Brief als DOCX-Anhang (Word)").check()
    page.get_by_role("button", name="Als Aussendung vorbereiten").click()
    page.wait_for_url("**/postausgang/*")
    assert page.get_by_text("als Entwurf vorbereitet; noch ist nichts gesendet").is_visible()
    assert page.locator("#zustand").inner_text() == "Entwurf"
    assert page.get_by_role("button", name="Senden (53 Nachrichten)").is_visible()
    assert_accessible(page)

    page.goto("/rundschreiben/archiv/")
    assert_accessible(page)
    page.locator("table a").first.click()
    assert page.locator("table tbody tr").count() == 53
    assert_accessible(page)


def test_empty_placeholders_and_per_person_problems_in_the_browser(page, live_app, tmp_path):
    """Upload a template with an extra field and a per-person calculation; the compose page stops twice
    (empty placeholder, then the people whose letter cannot be made), each time accessibly, then produces."""
    from ki_post.extensions import db
    from ki_post.recipients.models import Contact

    with live_app.app_context():
        broken = db.session.query(Contact).order_by(Contact.id).first()
        broken.function = ""
        for contact in db.session.query(Contact).filter(Contact.id != broken.id):
            contact.function = contact.function or "Dezernat"
        db.session.commit()
        broken_name = broken.full_name
    document = Document()
    document.add_paragraph("Bitte bis {{ felder.frist }} zurück. Kennziffer {{ 100 // (kontakt.funktion|length) }}")
    template = tmp_path / "frist.docx"
    document.save(template)

    login(page, "sachbearbeitung")
    page.goto("/rundschreiben/vorlagen/neu")
    page.get_by_label("Name der Vorlage").fill("Frist")
    page.get_by_label("Word-Datei (DOCX)").set_input_files(str(template))
    page.get_by_role("button", name="Prüfen und speichern").click()
    page.wait_for_url("**/rundschreiben/")
    assert page.get_by_text("felder.frist").first.is_visible()

    page.goto("/rundschreiben/erstellen")
    page.get_by_label("Vorlage").select_option(label="Frist (Version 1)")
    page.get_by_label("Betreff").fill("Frist")
    page.get_by_label("Verteiler").select_option(label="Alle KI-Dezernate")
    page.get_by_role("button", name="Briefe erstellen und herunterladen").click()
    summary = page.locator(".error-summary")
    assert "felder.frist (Zusatzfeld ohne Wert)" in summary.inner_text()
    assert_accessible(page)

    page.get_by_label("Leere Platzhalter bestätigen", exact=False).check()
    page.get_by_role("button", name="Briefe erstellen und herunterladen").click()
    assert "Für 1 von 53 Empfängerinnen und Empfängern lässt sich kein Brief erstellen" in page.locator(".error-summary").inner_text()
    assert page.get_by_text(broken_name, exact=False).first.is_visible()
    assert_accessible(page)

    page.get_by_label("Briefe ohne die genannten Empfängerinnen und Empfänger erstellen").check()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Briefe erstellen und herunterladen").click()
    target = tmp_path / "briefe.zip"
    download_info.value.save_as(target)
    with zipfile.ZipFile(target) as archive:
        assert len(archive.namelist()) == 52
