"""Web pages of the letters package: access, upload validation, compose with preview and download."""
from __future__ import annotations

import io
import zipfile

import pytest
from docx import Document
from sqlalchemy import func, select

from ki_post.extensions import db
from ki_post.letters import services
from ki_post.letters.models import ArchivedLetter, LetterTemplateVersion, SenderProfile
from ki_post.outbox.models import Mailing, OutboxMessage
from ki_post.outbox.services import eml_files
from ki_post.recipients.models import Verteiler
from tests.letters.test_engine import make_docx

PAGES = ["/rundschreiben/", "/rundschreiben/vorlagen/neu", "/rundschreiben/platzhalter", "/rundschreiben/absender",
         "/rundschreiben/erstellen", "/rundschreiben/archiv/"]


def test_pages_need_login(client):
    for url in PAGES:
        assert client.get(url).status_code == 302


def test_pages_render_for_reading_staff(client, make_user, demo):
    make_user("admin", "admin@ministerium.example")
    client.login(make_user("lesen").email)
    form_pages = {"/rundschreiben/vorlagen/neu", "/rundschreiben/absender"}  # forms they could not send
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == (403 if url in form_pages else 200), url
        assert response.get_data(as_text=True).count("<h1>") == 1
    page = client.get("/rundschreiben/").get_data(as_text=True)
    assert "rundschreiben" in page and "wird bei der ersten Verwendung gespeichert" in page
    help_page = client.get("/rundschreiben/platzhalter").get_data(as_text=True)
    assert "{{ anrede }}" in help_page and "Sehr geehrte Frau Dr. Schmidt," in help_page and "{{ felder.NAME }}" in help_page
    # Looking changes nothing: the shipped template and the sender profile are only stored when used.
    assert db.session.scalar(select(func.count(LetterTemplateVersion.id))) == 0
    assert db.session.scalar(select(func.count(SenderProfile.id))) == 0
    # Reading staff may not change anything.
    token = client.csrf_token("/rundschreiben/absender")
    assert client.post("/rundschreiben/absender", data={"csrf_token": token, "ministerium": "X"}).status_code == 403


def upload(client, name, data, filename="vorlage.docx"):
    return client.submit("/rundschreiben/vorlagen/neu", {"name": name, "description": "", "file": (io.BytesIO(data), filename)},
                         content_type="multipart/form-data", follow_redirects=True)


@pytest.mark.parametrize("data, message", [
    (b"%PDF-1.4", "kein Word-Dokument im DOCX-Format"),
    (make_docx("x")[:400], "beschädigt"),
    (make_docx("Sehr geehrte {% if x %}", "Text"), "Fehler im Platzhalter „{% if x %}“ (Haupttext, Absatz 1): der Block wird nicht geschlossen"),
])
def test_upload_errors_are_shown_and_change_nothing(staff_client, data, message):
    response = upload(staff_client, "Neu", data)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and message in page and 'class="error-summary"' in page
    assert db.session.scalar(select(func.count(LetterTemplateVersion.id))) == 0


def test_upload_new_version_with_warning(staff_client):
    services.ensure_shipped_templates()
    db.session.commit()
    page = upload(staff_client, "rundschreiben", make_docx("{{ anrede }} {{ unbekannt }}")).get_data(as_text=True)
    assert "als Version 2 gespeichert" in page and "unbekannt" in page


def test_sender_profile_is_editable(staff_client):
    response = staff_client.submit("/rundschreiben/absender", {
        "ministerium": "Ministerium für Kinder, Jugend, Familie, Gleichstellung, Flucht und Integration", "ansprechperson": "Erika Muster",
        "unterzeichnende": "Erika Muster; Referatsleiterin"}, follow_redirects=True)
    assert "gespeichert" in response.get_data(as_text=True)
    profile = db.session.scalar(select(SenderProfile))
    assert profile.ansprechperson == "Erika Muster" and profile.unterzeichnende == [{"name": "Erika Muster", "funktion": "Referatsleiterin"}]


def compose_data(client, **extra):
    page = client.get("/rundschreiben/erstellen").get_data(as_text=True)
    assert "Agnes Heuvelmann" in page  # pre-filled from the sender profile
    version = db.session.scalar(select(LetterTemplateVersion))
    choice = f"v:{version.id}" if version else "shipped:rundschreiben"
    verteiler = db.session.scalar(select(Verteiler).where(Verteiler.name == "Alle KI-Dezernate"))
    data = {"version_id": choice, "datum": "2016-12-28", "betreff": "Ausbau der KI <2017>", "aktenzeichen": "9506",
            "ansprechperson": "Agnes Heuvelmann", "telefon": "", "telefax": "", "email": "", "extra": "",
            "verteiler_id": str(verteiler.id), "kind": "", "regierungsbezirk": "", "output": "zip"}
    data.update(extra)
    return data


def run_worker() -> None:
    """The outbox worker loop, as `flask outbox work --once` runs it: idle, it runs the letter jobs."""
    from flask import current_app

    from ki_post.outbox.worker import Worker

    Worker(current_app._get_current_object()).run(once=True)


def job_of(response):
    """The job a compose submit redirected to."""
    from ki_post.letters.models import LetterJob

    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    location = response.headers["Location"]
    assert "/rundschreiben/auftraege/" in location
    return db.session.get(LetterJob, int(location.rstrip("/").rsplit("/", 1)[1]))


def produced(client, response):
    """Submit → job page → worker → the job's file (the response of its download)."""
    job = job_of(response)
    run_worker()
    page = client.get(f"/rundschreiben/auftraege/{job.id}").get_data(as_text=True)
    assert "herunterladen" in page, page
    return client.get(f"/rundschreiben/auftraege/{job.id}/datei")


def prepared_mailing(client, response) -> tuple[str, str]:
    """Submit → job page → worker → the URL of the prepared mailing and the finished job page."""
    job = job_of(response)
    run_worker()
    db.session.expire_all()
    assert job.state == "fertig", job.error
    page = client.get(f"/rundschreiben/auftraege/{job.id}").get_data(as_text=True)
    assert f'href="/postausgang/{job.mailing_id}"' in page
    return f"/postausgang/{job.mailing_id}", page


def test_compose_preview_record_by_record(staff_client, demo):
    data = compose_data(staff_client, action="preview", index="1")
    page = staff_client.submit("/rundschreiben/erstellen", data).get_data(as_text=True)
    assert "Vorschau: Brief 2 von 53" in page
    assert "Ausbau der KI &lt;2017&gt;" in page  # escaped in the page
    assert db.session.scalar(select(func.count(ArchivedLetter.id))) == 0


def test_compose_filters_narrow_the_verteiler(staff_client, demo):
    data = compose_data(staff_client, action="preview", kind="kreisfreie_stadt")
    page = staff_client.submit("/rundschreiben/erstellen", data).get_data(as_text=True)
    assert "Vorschau: Brief 1 von 22" in page  # the 22 kreisfreie Städte of NRW
    assert "zwei weitere Personalstellen" in page


def test_compose_with_a_registered_version(staff_client, demo):
    services.ensure_shipped_templates()
    db.session.commit()
    data = compose_data(staff_client, action="preview")
    assert data["version_id"].startswith("v:")
    assert "Vorschau: Brief 1 von 53" in staff_client.submit("/rundschreiben/erstellen", data).get_data(as_text=True)
    data["version_id"] = "v:99999"
    assert "Diese Vorlagenversion gibt es nicht." in staff_client.submit("/rundschreiben/erstellen", data).get_data(as_text=True)


def test_compose_without_recipients_is_an_error(staff_client, demo):
    data = compose_data(staff_client, action="produce", verteiler_id="")
    page = staff_client.submit("/rundschreiben/erstellen", data).get_data(as_text=True)
    assert "Bitte einen Verteiler, einen Filter oder einzelne Kontakte wählen." in page


def test_compose_produces_zip_and_archive(staff_client, demo):
    response = produced(staff_client, staff_client.submit("/rundschreiben/erstellen", compose_data(staff_client, action="produce")))
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert len(archive.namelist()) == 53
    assert any(p.text == "Ausbau der KI <2017>" for p in Document(io.BytesIO(archive.read(archive.namelist()[0]))).paragraphs)
    letter = db.session.scalar(select(ArchivedLetter).order_by(ArchivedLetter.id))
    page = staff_client.get(f"/rundschreiben/archiv/{letter.run_id}").get_data(as_text=True)
    assert letter.filename in page
    assert staff_client.get(f"/rundschreiben/archiv/brief/{letter.id}").data == archive.read(letter.filename)
    again = zipfile.ZipFile(io.BytesIO(staff_client.get(f"/rundschreiben/archiv/{letter.run_id}/zip").data))
    assert sorted(again.namelist()) == sorted(archive.namelist())
    assert staff_client.get("/rundschreiben/archiv/brief/99999").status_code == 404


@pytest.mark.parametrize("override, message", [
    ({"verteiler_id": "abc"}, "Ungültige Auswahl der Empfängerinnen und Empfänger."),
    ({"kind": "dorf"}, "Unbekannte Art „dorf“."),
    ({"output": "exe"}, "Unbekannte Ausgabeart."),
    ({"datum": "kein Datum"}, "Bitte ein gültiges Datum angeben."),
])
def test_compose_rejects_forged_choices(staff_client, demo, override, message):
    data = compose_data(staff_client, action="produce", **override)
    response = staff_client.submit("/rundschreiben/erstellen", data)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert db.session.scalar(select(func.count(ArchivedLetter.id))) == 0
    assert message in response.get_data(as_text=True)


def test_compose_prepares_a_draft_mailing_with_the_letter_attached(staff_client, demo):

    data = compose_data(staff_client, action="mailing", attachment_format="docx")
    response = staff_client.submit("/rundschreiben/erstellen", data)
    url, job_page = prepared_mailing(staff_client, response)
    mailing = db.session.scalar(select(Mailing))
    assert url.endswith(f"/postausgang/{mailing.id}")
    assert "als Entwurf vorbereitet; noch ist nichts gesendet" in job_page
    page = staff_client.get(url).get_data(as_text=True)
    assert "Testnachricht an mich senden" in page
    assert "Senden (53 Nachrichten)" in page
    # A draft: one waiting message per recipient, nothing sent, nothing written by a transport.
    assert mailing.state == "entwurf" and mailing.kind == "rundschreiben" and mailing.title == "Ausbau der KI <2017>"
    messages = mailing.messages
    assert len(messages) == 53 and len({m.to_email for m in messages}) == 53
    assert {m.state for m in messages} == {"wartend"} and not any(m.eml_file or m.sent_at for m in messages)
    assert eml_files() == []
    (attachment,) = messages[0].attachments
    assert attachment.filename.startswith("2016-12-28_Ausbau-der-KI-2017_") and attachment.filename.endswith(".docx")
    document = Document(io.BytesIO(services.load_blob(attachment.blob_sha256)))
    assert any(p.text == "Ausbau der KI <2017>" for p in document.paragraphs)
    assert "Ausbau der KI <2017>" in messages[0].text
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == 53


def test_compose_mailing_validates_like_the_download(staff_client, demo, monkeypatch, tmp_path, app):
    page = staff_client.submit("/rundschreiben/erstellen", compose_data(staff_client, action="mailing", verteiler_id="")).get_data(as_text=True)
    assert "Bitte einen Verteiler, einen Filter oder einzelne Kontakte wählen." in page
    page = staff_client.submit("/rundschreiben/erstellen", compose_data(staff_client, action="mailing", betreff="")).get_data(as_text=True)
    assert "Bitte einen Betreff angeben." in page
    # A machine without LibreOffice: PDF is refused with the download path's German hint.
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("KI_POST_SOFFICE", raising=False)
    app.config["SOFFICE_PATH"] = ""
    data = compose_data(staff_client, action="mailing", attachment_format="pdf")
    page = staff_client.submit("/rundschreiben/erstellen", data).get_data(as_text=True)
    assert "apt-get install libreoffice-writer-nogui" in page and 'class="error-summary"' in page
    assert db.session.scalar(select(func.count(Mailing.id))) == 0


def test_reader_cannot_prepare_a_mailing(client, make_user, demo):
    make_user("admin", "admin@ministerium.example")
    client.login(make_user("lesen").email)
    response = client.submit("/rundschreiben/erstellen", compose_data(client, action="mailing"))
    assert response.status_code == 403
    assert db.session.scalar(select(func.count(Mailing.id))) == 0


def test_lesen_may_preview_letters_but_not_produce_them(client, make_user, demo):
    """The compose page of a read-only account posts to the preview route; nothing is registered or made."""
    from tests.core.test_access_walk import snapshot

    make_user("admin")
    client.login(make_user("lesen").email)
    page = client.get("/rundschreiben/erstellen").get_data(as_text=True)
    assert 'action="/rundschreiben/vorschau"' in page and 'value="produce"' not in page and 'value="mailing"' not in page
    data = compose_data(client, action="preview", index="1")
    before = snapshot()
    answer = client.submit("/rundschreiben/vorschau", data, form_url="/rundschreiben/erstellen")
    assert answer.status_code == 200 and "Vorschau: Brief 2 von 53" in answer.get_data(as_text=True)
    assert snapshot() == before  # not even the shipped template was registered
    for action in ("produce", "mailing"):
        assert client.submit("/rundschreiben/vorschau", dict(data, action=action), form_url="/rundschreiben/erstellen").status_code == 403
        assert client.submit("/rundschreiben/erstellen", dict(data, action=action)).status_code == 403
