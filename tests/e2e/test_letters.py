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
    first = page.locator("pre").inner_text()
    assert "28. Dezember 2016" in first and ("Sehr geehrte" in first or "Guten Tag" in first)
    assert_accessible(page)
    page.get_by_role("button", name="Nächster Brief").click()
    assert page.get_by_role("heading", name="Vorschau: Brief 2 von 53").is_visible()
    assert page.locator("pre").inner_text() != first

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
