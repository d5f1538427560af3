"""Browser: compose a circular for the demo Verteiler, preview it record by record, download the ZIP, prepare a mailing."""
from __future__ import annotations

import io
import shutil
import zipfile

import pytest

from docx import Document

from tests.e2e.conftest import assert_accessible, login


def finished_job(page) -> None:
    """On the job page after a submit: wait until the worker has finished it (the page reloads itself)."""
    page.wait_for_url("**/rundschreiben/auftraege/*")
    page.get_by_role("heading", name="Ergebnis").wait_for(timeout=60000)
    assert page.locator("#auftrag-balken").get_attribute("value") == "100"


def test_compose_preview_and_download_zip(page, tmp_path, letter_worker):
    letter_worker.start()
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
    page.get_by_role("button", name="Briefe erstellen und herunterladen").click()
    finished_job(page)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="herunterladen").click()
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
    page.goto("/rundschreiben/erstellen")
    page.get_by_label("Betreff").fill("Ausbau der Kommunalen Integrationszentren")
    page.get_by_label("Datum").fill("2016-12-28")
    page.get_by_label("Verteiler").select_option(label="Alle KI-Dezernate")
    page.get_by_label("Brief als DOCX-Anhang (Word)").check()
    page.get_by_role("button", name="Als Aussendung vorbereiten").click()
    finished_job(page)
    assert page.get_by_text("als Entwurf vorbereitet; noch ist nichts gesendet").is_visible()
    page.get_by_role("link", name="Zur Aussendung").click()
    page.wait_for_url("**/postausgang/*")
    assert page.locator("#zustand").inner_text() == "Entwurf"
    assert page.get_by_role("button", name="Senden (53 Nachrichten)").is_visible()
    assert_accessible(page)

    page.goto("/rundschreiben/archiv/")
    assert_accessible(page)
    page.locator("table a").first.click()
    assert page.locator("table tbody tr").count() == 53
    assert_accessible(page)


def test_empty_placeholders_and_per_person_problems_in_the_browser(page, live_app, tmp_path, letter_worker):
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
    page.get_by_role("button", name="Briefe erstellen und herunterladen").click()
    letter_worker.start()
    finished_job(page)
    assert page.get_by_text(broken_name, exact=False).first.is_visible()  # listed under "Ohne Brief"
    with page.expect_download() as download_info:
        page.get_by_role("link", name="herunterladen").click()
    target = tmp_path / "briefe.zip"
    download_info.value.save_as(target)
    with zipfile.ZipFile(target) as archive:
        assert len(archive.namelist()) == 52


@pytest.mark.parametrize("output, label, suffix", [
    ("zip", "ZIP mit einer DOCX-Datei je Empfänger", ".zip"),
    ("merged_pdf", "Ein PDF-Dokument für den Druck (alle Briefe)", ".pdf"),
])
def test_letter_job_shows_progress_to_100_percent_then_the_download(page, tmp_path, letter_worker, output, label, suffix):
    """The job page before the worker took the job (0 von 53, accessible), the page following the job by
    itself to 100 %, the download; a second click with the same input lands on the same job."""
    if output.endswith("_pdf") and not shutil.which("soffice"):
        pytest.skip("LibreOffice fehlt")
    login(page, "sachbearbeitung")
    page.goto("/rundschreiben/erstellen")
    page.get_by_label("Betreff").fill("Fortschritt")
    page.get_by_label("Datum").fill("2016-12-28")
    page.get_by_label("Verteiler").select_option(label="Alle KI-Dezernate")
    page.get_by_label(label).check()
    button = page.get_by_role("button", name="Briefe erstellen und herunterladen")
    button.click()
    page.wait_for_url("**/rundschreiben/auftraege/*")
    job_url = page.url
    bar = page.locator("progress#auftrag-balken")
    status = page.get_by_role("region", name="Fortschritt").get_by_role("status")
    assert bar.get_attribute("value") == "0" and status.inner_text().startswith("0 von 53 Briefen")
    assert page.locator("#auftrag-zustand").inner_text() == "wartet"
    assert_accessible(page)

    page.go_back()  # the compose page again: the same input gives the same job, not a second one
    page.wait_for_url("**/rundschreiben/erstellen")
    page.get_by_label("Betreff").fill("Fortschritt")
    page.get_by_label("Datum").fill("2016-12-28")
    page.get_by_label("Verteiler").select_option(label="Alle KI-Dezernate")
    page.get_by_label(label).check()
    page.get_by_role("button", name="Briefe erstellen und herunterladen").click()
    page.wait_for_url("**/rundschreiben/auftraege/*")
    assert page.url == job_url

    letter_worker.start()
    page.get_by_role("heading", name="Ergebnis").wait_for(timeout=120000)
    assert bar.get_attribute("value") == "100"
    assert status.inner_text().startswith("53 von 53 Briefen (100 %)")
    assert page.locator("#auftrag-zustand").inner_text() == "fertig"
    assert page.evaluate("document.activeElement.id") == "auftrag-ergebnis"  # focus moved to the result
    assert_accessible(page)
    names = []
    for _ in range(2):  # downloading twice serves the stored file twice
        with page.expect_download() as download_info:
            page.get_by_role("link", name="herunterladen").click()
        target = tmp_path / f"{len(names)}{suffix}"
        download_info.value.save_as(target)
        names.append(download_info.value.suggested_filename)
        assert names[-1].endswith(suffix)
    assert (tmp_path / f"0{suffix}").read_bytes() == (tmp_path / f"1{suffix}").read_bytes()
    if suffix == ".zip":
        with zipfile.ZipFile(tmp_path / "0.zip") as archive:
            assert len(archive.namelist()) == 53
    else:
        assert (tmp_path / "0.pdf").read_bytes().startswith(b"%PDF")
