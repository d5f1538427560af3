"""Akten-Export: a mailed circular (sent through aiosmtpd), an archived Vorgang and an event as one ZIP
whose manifest (CSV and XML) describes exactly its files; letters as PDF/A; erased persons stay erased."""
from __future__ import annotations

import hashlib
import io

import pytest

from ki_post.blobs import load_blob
from ki_post.extensions import db
from ki_post.letters import pdf
from ki_post.letters.circulars import mail_circular
from ki_post.outbox.models import Mailing, MessageState
from ki_post.outbox.worker import Worker
from ki_post.records import services
from ki_post.recipients.models import Contact
from ki_post.recipients.services import anonymise_contact
from tests.pdfa import assert_pdfa
from tests.records.conftest import MINISTRY, NS, read_export, three_contacts

needs_soffice = pytest.mark.skipif(not pdf.pdf_available(), reason="LibreOffice (soffice) fehlt")
SUBJECT = "Förderung 2027"
FIELDS = ("name", "titel", "art", "medientyp", "erstellt", "sha256", "groesse", "anzahl")


def export_bytes(package) -> bytes:
    buffer = io.BytesIO()
    package.write(buffer)
    return buffer.getvalue()


def assert_manifest_exact(export) -> None:
    """Every file listed once, with its size and SHA-256; nothing extra; the XML says the same as the CSV."""
    files = {name: data for name, data in export.files.items() if name not in ("manifest.csv", "manifest.xml", "LIESMICH.txt")}
    readme = export.files["LIESMICH.txt"].decode("utf-8")
    assert f"Dateien: {len(files)} (ohne LIESMICH.txt und Manifest)" in readme and "Anzahl: Einträge" in readme
    listed = [row["Datei"] for row in export.manifest]
    assert sorted(listed) == sorted(files) and len(set(listed)) == len(listed)
    for row in export.manifest:
        data = files[row["Datei"]]
        assert row["SHA-256"] == hashlib.sha256(data).hexdigest()
        assert int(row["Größe (Bytes)"]) == len(data)
        assert int(row["Anzahl"]) >= 1 or row["Art"].endswith("(CSV)")
    entries = export.xml.findall("m:dateien/m:datei", NS)
    assert export.xml.get("anzahl") == str(len(entries)) == str(len(export.manifest))
    from_xml = [[element.findtext(f"m:{tag}", namespaces=NS) or "" for tag in FIELDS] for element in entries]
    assert from_xml == [list(row.values()) for row in export.manifest]


@pytest.fixture
def sent_circular(smtp_app, smtp):
    """A circular as PDF to three towns, sent through the SMTP server; then one addressee is anonymised."""
    contacts = three_contacts()
    mailing = mail_circular("rundschreiben", list_name="Drei Städte", fmt="pdf", subject=SUBJECT)
    db.session.commit()
    Worker(smtp_app).run(once=True)
    db.session.expire_all()
    assert {m.state for m in mailing.messages} == {MessageState.GESENDET}
    erased = contacts[2]
    erased_email = erased.email
    anonymise_contact(erased)
    db.session.commit()
    return mailing.id, erased_email


@needs_soffice
def test_mailing_export_is_the_record_of_the_circular(sent_circular):
    mailing_id, erased_email = sent_circular
    export = read_export(export_bytes(services.mailing_package(mailing_id)))
    assert_manifest_exact(export)
    mailing = db.session.get(Mailing, mailing_id)

    (template,) = [row for row in export.manifest if row["Art"] == "Vorlage (DOCX)"]
    from ki_post.letters.services import template_by_name
    assert export.files[template["Datei"]] == load_blob(template_by_name("rundschreiben").latest.blob_key)

    letters = [row for row in export.manifest if row["Datei"].startswith("briefe/")]
    assert len(letters) == 2 and all(row["Medientyp"] == "application/pdf" for row in letters)  # the erased one is gone
    for row in letters:
        data = export.files[row["Datei"]]
        message = next(m for m in mailing.messages if m.attachments and m.attachments[0].blob_sha256 == row["SHA-256"])
        organisation = db.session.get(Contact, message.contact_id).organisation.name
        assert_pdfa(data, title=f"Rundschreiben: {SUBJECT} – {organisation}", author=MINISTRY)

    log = export.csv("versandprotokoll.csv")
    assert len(log) == 3  # one row per recipient
    assert [row["Message-ID"] for row in log] == [m.message_id for m in mailing.messages]
    assert all(row["Message-ID"].startswith("<") and row["Ergebnis"] == "gesendet" and row["Zeitpunkt"] for row in log)
    anonymised = [row for row in log if row["Empfänger"] == "(anonymisiert)"]
    assert len(anonymised) == 1 and anonymised[0]["Datei"] == "" and anonymised[0]["E-Mail"] == "(anonymisiert)"
    for row in log:
        if row is not anonymised[0]:
            assert row["Datei"] and f"briefe/{row['Datei']}" in export.files
    # Nothing of the erased person comes back from anywhere: not in the log, the manifest or a file name.
    everything = b"".join(data for name, data in export.files.items() if not name.endswith(".pdf")) + "".join(export.files).encode()
    assert erased_email.encode() not in everything and b"Muster2" not in everything
    assert any("anonymisiert" in (note.text or "") for note in export.xml.findall("m:hinweis", NS))


def test_cli_export_exit_codes_and_german_errors(smtp_app, smtp, tmp_path):
    runner = smtp_app.test_cli_runner()
    target = tmp_path / "akte.zip"
    result = runner.invoke(args=["records", "export", "--mailing", "999999", str(target)])
    assert result.exit_code == 1 and "Aussendung 999999 nicht gefunden." in result.output and not target.exists()
    result = runner.invoke(args=["records", "export", str(target)])
    assert result.exit_code == 2 and "genau eine von --mailing, --run oder --event" in result.output
    result = runner.invoke(args=["records", "export", "--mailing", "1", "--event", "1", str(target)])
    assert result.exit_code == 2

    three_contacts()
    mailing = mail_circular("rundschreiben", list_name="Drei Städte", fmt="docx", subject=SUBJECT, start=False)
    db.session.commit()
    result = runner.invoke(args=["records", "export", "--mailing", str(mailing.id), str(target)])
    assert result.exit_code == 1 and "ist ein Entwurf und wurde nicht versandt" in result.output and not target.exists()

    from ki_post.outbox.services import start_mailing
    start_mailing(db.session.get(Mailing, mailing.id))
    db.session.commit()
    result = runner.invoke(args=["records", "export", "--mailing", str(mailing.id), str(target)])
    assert result.exit_code == 1 and "noch nicht abgeschlossen" in result.output and "--unvollstaendig" in result.output
    assert not target.exists() and not list(tmp_path.glob(".akten-*"))  # no half-written file left behind

    if pdf.pdf_available():
        result = runner.invoke(args=["records", "export", "--mailing", str(mailing.id), "--unvollstaendig", str(target)])
        assert result.exit_code == 0, result.output
        assert "Hinweis: Zwischenstand" in result.output
        export = read_export(target.read_bytes())
        assert_manifest_exact(export)
        log = export.csv("versandprotokoll.csv")
        assert [row["Ergebnis"] for row in log] == ["wartend"] * 3 and all(row["Message-ID"] for row in log)
        # Sent as DOCX: each letter as sent, and beside it its PDF/A for the files.
        kinds = sorted(row["Art"] for row in export.manifest if row["Datei"].startswith("briefe/"))
        assert kinds == ["Brief wie versandt (DOCX)"] * 3 + ["Brief, PDF/A-Fassung für die Akte"] * 3

        Worker(smtp_app).run(once=True)
        result = runner.invoke(args=["records", "export", "--mailing", str(mailing.id), str(target)])
        assert result.exit_code == 0 and "Zwischenstand" not in result.output


@needs_soffice
def test_run_export_keeps_erased_letters_for_the_administration_only(app, tmp_path):
    from ki_post.letters.services import produce, template_by_name, ensure_shipped_templates

    contacts = three_contacts()
    ensure_shipped_templates()
    version = template_by_name("rundschreiben").latest
    production = produce(version, contacts, {"betreff": SUBJECT}, "zip", io.BytesIO(), user="sb@ministerium.example")
    db.session.commit()
    anonymise_contact(contacts[0])
    db.session.commit()
    run_id = production.run.id

    for admin, letters in ((False, 2), (True, 3)):
        export = read_export(export_bytes(services.run_package(run_id, include_restricted=admin)))
        assert_manifest_exact(export)
        docx = [row for row in export.manifest if row["Art"] == "Brief wie versandt (DOCX)"]
        pdfa = [row for row in export.manifest if row["Art"] == "Brief, PDF/A-Fassung für die Akte"]
        assert len(docx) == len(pdfa) == letters
        listing = export.csv("briefliste.csv")
        assert len(listing) == 3
        assert sum(row["Empfänger"] == "(nur für die Verwaltung)" for row in listing) == 3 - letters
        notes = [note.text for note in export.xml.findall("m:hinweis", NS)]
        assert bool(notes) is (not admin)
    organisation = pdfa[0]["Titel"]
    assert_pdfa(export.files[pdfa[0]["Datei"]], title=load_title(export.files[docx[0]["Datei"]]), author=MINISTRY)
    assert organisation


def load_title(docx: bytes) -> str:
    from docx import Document

    return Document(io.BytesIO(docx)).core_properties.title


def test_template_version_found_from_the_job_or_the_audit_entry(app):
    from sqlalchemy import delete

    from ki_post.auth.models import AuditEntry
    from ki_post.letters.models import JobKind, JobState, LetterJob
    from ki_post.records.package import Package
    from ki_post.records.services import _mailing_version, _template

    three_contacts()
    mailing = mail_circular("rundschreiben", list_name="Drei Städte", fmt="docx", subject=SUBJECT, start=False)
    db.session.commit()
    version = _mailing_version(mailing)
    assert version is not None and version.template.name == "rundschreiben"  # the CLI's road: from the audit entry
    db.session.execute(delete(AuditEntry).where(AuditEntry.action == "aussendung.rundschreiben"))
    assert _mailing_version(mailing) is None
    package = Package("x", "x", mailing.created_at)
    _template(package, None)
    assert package.entries == [] and "nicht vermerkt" in package.notes[0]
    db.session.add(LetterJob(kind=JobKind.MAILING, params={"version_id": version.id}, input_hash="0" * 64,
                             state=JobState.FERTIG, mailing_id=mailing.id))
    db.session.flush()
    assert _mailing_version(mailing) == version  # the web's road: from the job that prepared the mailing
