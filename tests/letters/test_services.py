"""Services on both databases: templates and versions, sender profile, production, archive, CLI."""
from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile

import pytest
from docx import Document
from docx2python import docx2python
from sqlalchemy import func, select

from ki_post.blobs import load_blob, sha256_of
from ki_post.errors import ValidationError
from ki_post.extensions import db
from ki_post.letters import pdf, services
from ki_post.letters.models import ArchivedLetter, LetterRun, LetterTemplate, LetterTemplateVersion, SenderProfile
from ki_post.recipients.addressing import address_lines, salutation
from ki_post.recipients.services import resolve_recipients, verteiler_by_name
from tests.letters.test_engine import make_docx

needs_soffice = pytest.mark.skipif(not pdf.pdf_available(), reason="LibreOffice (soffice) fehlt: apt-get install libreoffice-writer-nogui")
needs_poppler = pytest.mark.skipif(not shutil.which("pdftotext"), reason="pdftotext fehlt (apt-get install poppler-utils)")

FIELDS = {"datum": "2016-12-28", "betreff": "Ausbau der Kommunalen Integrationszentren", "aktenzeichen": "9506"}


def shipped():
    return services.template_by_name("rundschreiben").latest


def test_shipped_template_is_registered_once(app):
    assert services.ensure_shipped_templates() == 1
    assert services.ensure_shipped_templates() == 0
    template = services.template_by_name("rundschreiben")
    assert template.shipped and template.latest.number == 1 and template.latest.warnings == []


def test_upload_creates_versions_and_warns_about_unknown_placeholders(app):
    version, warnings = services.upload_template("Einladung", make_docx("{{ anrede }}"), user="a@b.example")
    assert (version.number, warnings) == (1, [])
    version2, warnings = services.upload_template("Einladung", make_docx("{{ anrede }} {{ betref }}"))
    assert version2.number == 2 and version2.template_id == version.template_id
    assert "betref" in warnings[0] and version2.warnings == warnings
    assert load_blob(version2.blob_key)[:2] == b"PK"


@pytest.mark.parametrize("data, message", [
    (b"Hallo", "kein Word-Dokument"),
    (make_docx("x")[:500], "beschädigt"),
    (make_docx("Sehr geehrte {{ anrede }"), "„{{ anrede }“"),
])
def test_bad_uploads_change_nothing(app, data, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        services.upload_template("Kaputt", data)
    db.session.rollback()
    assert db.session.scalar(select(func.count(LetterTemplate.id))) == 0
    assert db.session.scalar(select(func.count(LetterTemplateVersion.id))) == 0


def test_sender_profile_defaults_and_update(app):
    profile = services.sender_profile()
    assert profile.ansprechperson == "Agnes Heuvelmann" and len(profile.unterzeichnende) == 2
    services.update_sender_profile({"telefon": "0211 855-1234", "unterzeichnende": "Erika Muster; Referatsleiterin\n\nMax Beispiel;"})
    db.session.commit()
    profile = db.session.scalar(select(SenderProfile))
    assert profile.telefon == "0211 855-1234"
    assert profile.unterzeichnende == [{"name": "Erika Muster", "funktion": "Referatsleiterin"}, {"name": "Max Beispiel", "funktion": ""}]
    with pytest.raises(ValidationError, match="Name; Funktion"):
        services.update_sender_profile({"unterzeichnende": "; nur Funktion"})


def test_letter_context_for_kreis_and_stadt(app, demo):
    contacts = resolve_recipients(verteiler_id=verteiler_by_name("Alle KI-Dezernate").id)
    kreis = next(c for c in contacts if c.organisation.kind == "kreis")
    stadt = next(c for c in contacts if c.organisation.kind == "kreisfreie_stadt")
    sender = services.sender_dict(services.sender_profile())
    context = services.letter_context(kreis, FIELDS, sender)
    assert context["ist_kreis"] and not context["ist_kreisfreie_stadt"]
    assert context["datum"] == "28. Dezember 2016"  # ANR-10
    assert context["anrede"] == salutation(kreis) and context["anschrift"] == address_lines(kreis)
    assert services.letter_context(stadt, FIELDS, sender)["ist_kreisfreie_stadt"]


def test_bad_fields_are_refused(app):
    with pytest.raises(ValidationError, match="kein gültiges Datum"):
        services.clean_fields({"datum": "2016-13-45"})
    with pytest.raises(ValidationError, match="Ungültiger Feldname"):
        services.clean_fields({"frist{{": "x"})


def test_zip_has_one_personalised_docx_per_recipient(app, demo):
    contacts = resolve_recipients(verteiler_id=verteiler_by_name("Alle KI-Dezernate").id)
    assert len(contacts) == 53
    target = io.BytesIO()
    result = services.produce(shipped(), contacts, FIELDS, "zip", target, user="test")
    db.session.commit()
    assert result.count == 53 and result.filename.endswith(".zip")
    archive = zipfile.ZipFile(io.BytesIO(target.getvalue()))
    names = archive.namelist()
    assert len(names) == len(set(names)) == 53
    by_org = {c.organisation.name: c for c in contacts}
    for name in names:
        assert re.fullmatch(r"2016-12-28_Ausbau-der-Kommunalen-Integrationszentren_[^/\\:*?\"<>|]+\.docx", name), name
        organisation = name.rsplit("_", 1)[1][:-5]
        contact = by_org[next(o for o in by_org if services.safe_filename(o, 60) == organisation)]
        data = archive.read(name)
        paragraphs = [p.text for p in Document(io.BytesIO(data)).paragraphs]
        assert salutation(contact) in paragraphs
        assert address_lines(contact) == [p for p in paragraphs if p in address_lines(contact)]
        with docx2python(io.BytesIO(data)) as parsed:
            text = parsed.text
        assert salutation(contact) in text
        if contact.organisation.kind in ("kreis", "staedteregion"):
            assert "drei weitere Personalstellen" in text and "zwei weitere Personalstellen" not in text
        else:
            assert contact.organisation.kind == "kreisfreie_stadt"
            assert "zwei weitere Personalstellen" in text and "drei weitere Personalstellen" not in text
    # Archived exactly as produced: same bytes, hash, template version, fields.
    run = db.session.scalar(select(LetterRun))
    letters = db.session.scalars(select(ArchivedLetter).where(ArchivedLetter.run_id == run.id)).all()
    assert len(letters) == 53 and run.letter_count == 53
    for letter in letters:
        assert sha256_of(archive.read(letter.filename)) == letter.sha256
        assert services.archived_letter(letter.id)[1] == archive.read(letter.filename)
        assert letter.template_version_id == shipped().id and letter.fields["betreff"] == FIELDS["betreff"]


def test_preview_shows_recipient_k(app, demo):
    contacts = resolve_recipients(verteiler_id=verteiler_by_name("Alle KI-Dezernate").id)
    index, text = services.preview(shipped(), contacts, FIELDS, 2)
    assert index == 2 and salutation(contacts[2]) in text and address_lines(contacts[2])[0] in text
    assert services.preview(shipped(), contacts, FIELDS, 999)[0] == 52
    assert db.session.scalar(select(func.count(ArchivedLetter.id))) == 0  # a preview archives nothing


def test_pdf_without_libreoffice_says_how_to_install(app, demo, monkeypatch, tmp_path):
    # A machine without LibreOffice: nothing on PATH, nothing configured.
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("KI_POST_SOFFICE", raising=False)
    app.config["SOFFICE_PATH"] = ""
    contacts = resolve_recipients(verteiler_id=verteiler_by_name("Alle KI-Dezernate").id)[:1]
    with pytest.raises(pdf.LibreOfficeMissing, match="apt-get install libreoffice-writer-nogui"):
        services.produce(shipped(), contacts, FIELDS, "merged_pdf", io.BytesIO())
    db.session.rollback()
    assert db.session.scalar(select(func.count(ArchivedLetter.id))) == 0


@needs_soffice
@needs_poppler
def test_merged_docx_restarts_page_numbers_per_letter(app, demo, tmp_path):
    contacts = resolve_recipients(verteiler_id=verteiler_by_name("Alle KI-Dezernate").id)[:3]
    target = io.BytesIO()
    result = services.produce(shipped(), contacts, FIELDS, "merged", target)
    db.session.commit()
    assert result.count == 3
    merged = target.getvalue()
    document = Document(io.BytesIO(merged))
    assert len(document.sections) == 3
    for section in document.sections:
        sect = section._sectPr
        assert sect.find("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}titlePg") is not None
        num = sect.find("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}pgNumType")
        assert num.get("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}start") == "1"
    # LibreOffice prints it: each letter counts its own pages ("Seite 1 von N" restarts).
    pdf_path = tmp_path / "druck.pdf"
    pdf_path.write_bytes(pdf.convert_to_pdf([merged])[0])
    text = subprocess.run(["pdftotext", "-layout", str(pdf_path), "-"], capture_output=True, text=True, check=True).stdout
    pages = text.split("\f")[:-1]
    numbers = [re.search(r"Seite (\d+) von (\d+)", page).groups() for page in pages]
    numbers = [(int(a), int(b)) for a, b in numbers]
    letters, current = [], []
    for page, total in numbers:
        if page == 1 and current:
            letters.append(current)
            current = []
        current.append((page, total))
    letters.append(current)
    assert len(letters) == 3
    for letter, contact in zip(letters, contacts):
        total = letter[0][1]
        assert letter == [(k, total) for k in range(1, total + 1)]
    for contact, page_index in zip(contacts, [0, len(letters[0]), len(letters[0]) + len(letters[1])]):
        assert salutation(contact) in pages[page_index]  # every letter starts on a new page with its first page


@needs_soffice
def test_pdf_zip_converts_in_one_batch(app, demo):
    contacts = resolve_recipients(verteiler_id=verteiler_by_name("Alle KI-Dezernate").id)[:2]
    target = io.BytesIO()
    services.produce(shipped(), contacts, FIELDS, "zip_pdf", target)
    archive = zipfile.ZipFile(io.BytesIO(target.getvalue()))
    assert len(archive.namelist()) == 2
    assert all(name.endswith(".pdf") and archive.read(name).startswith(b"%PDF") for name in archive.namelist())


def test_cli_render_and_templates(app, demo, runner, tmp_path):
    result = runner.invoke(args=["letters", "templates"])
    assert result.exit_code == 0 and "rundschreiben" in result.output
    out = tmp_path / "briefe.zip"
    result = runner.invoke(args=["letters", "render", "--template", "rundschreiben", "--out", str(out),
                                 "--list", "Alle KI-Dezernate", "--set", "betreff=Test & <Sonder>", "--set", "frist=31. Januar"])
    assert result.exit_code == 0, result.output
    assert "53 Briefe geschrieben" in result.output
    with zipfile.ZipFile(out) as archive:
        assert len(archive.namelist()) == 53
        first = Document(io.BytesIO(archive.read(archive.namelist()[0])))
        assert any(p.text == "Test & <Sonder>" for p in first.paragraphs)
    assert db.session.scalar(select(func.count(ArchivedLetter.id))) == 53


def test_cli_errors(app, demo, runner, tmp_path):
    result = runner.invoke(args=["letters", "render", "--template", "gibtsnicht", "--out", str(tmp_path / "x.zip")])
    assert result.exit_code != 0 and "Die Vorlage „gibtsnicht“ gibt es nicht" in result.output
    result = runner.invoke(args=["letters", "render", "--template", "rundschreiben", "--out", str(tmp_path / "x.zip"), "--list", "Nein"])
    assert result.exit_code != 0 and "Verteiler „Nein“ gibt es nicht" in result.output
    result = runner.invoke(args=["letters", "render", "--template", "rundschreiben", "--out", str(tmp_path / "x.zip"), "--set", "ohne-gleich"])
    assert result.exit_code != 0 and "FELD=WERT" in result.output
    assert db.session.scalar(select(func.count(ArchivedLetter.id))) == 0


def test_demo_loader_is_idempotent(app):
    from ki_post.letters.demo import load_demo

    assert load_demo() == {"letter_templates": 1}
    db.session.commit()
    assert load_demo() == {"letter_templates": 0}
    db.session.commit()
    assert db.session.scalar(select(func.count(SenderProfile.id))) == 1
    assert db.session.scalar(select(func.count(LetterTemplateVersion.id))) == 1


@needs_soffice
@needs_poppler
def test_cli_merged_pdf_for_all_active_contacts(app, demo, runner, tmp_path):
    out = tmp_path / "druck.pdf"
    result = runner.invoke(args=["letters", "render", "--template", "rundschreiben", "--out", str(out), "--merged", "--pdf",
                                 "--set", "betreff=Ausbau", "--set", "datum=2016-12-28"])
    assert result.exit_code == 0, result.output
    assert "53 Briefe geschrieben" in result.output
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert len(re.findall(r"Seite 1 von \d", text)) == 53
    assert text.count("28. Dezember 2016") >= 53
