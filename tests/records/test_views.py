"""Akten-Export in the browser: a GET download for sachbearbeitung and admin, offered where staff see the
event, the mailing and the Vorgang; an unfinished mailing is refused with a German message."""
from __future__ import annotations

import pytest

from ki_post.events import services as events
from ki_post.extensions import db
from ki_post.letters import pdf
from ki_post.letters.circulars import mail_circular
from ki_post.outbox.services import start_mailing
from tests.events.conftest import make_contacts, make_event, published  # noqa: F401 - fixtures
from tests.records.conftest import read_export, three_contacts
from tests.records.test_export import assert_manifest_exact


@pytest.mark.skipif(not pdf.pdf_available(), reason="LibreOffice (soffice) fehlt")
def test_event_export_download(staff_client, published):
    from ki_post.events.attendance import check_in
    from ki_post.events.questions import QuestionData, add_question

    event = published(3)
    a, b, c = event.invitations
    question = add_question(event, QuestionData("Anreise mit", "text"))
    events.answer(a, "zugesagt", companions=1, responses={question.id: ["Bahn"]})
    events.answer(b, "abgesagt")
    check_in(a)
    db.session.commit()
    page = staff_client.get(f"/veranstaltungen/{event.id}").get_data(as_text=True)
    assert f'href="/akten/veranstaltung/{event.id}.zip"' in page
    response = staff_client.get(f"/akten/veranstaltung/{event.id}.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.headers["Cache-Control"] == "no-store" or "no-store" in response.headers["Cache-Control"]
    disposition = response.headers["Content-Disposition"]
    assert f"Akten-Export_Veranstaltung_{event.id}_Veranstaltung-" in disposition and ".zip" in disposition
    export = read_export(response.data)
    assert_manifest_exact(export)
    who = "Sachbearbeitung (sachbearbeitung@ministerium.example)"  # the signed-in account
    assert f" von {who}" in export.files["LIESMICH.txt"].decode() and export.xml.get("ausgefuehrt_von") == who
    answers = export.csv("einladungen_und_antworten.csv")
    assert {row["Name"]: row["Antwort"] for row in answers} == {a.name: "Zusage", b.name: "Absage", c.name: "offen"}
    # The own questions and the attendance belong to the record too.
    assert {row["Name"]: (row["Anreise mit"], row["Anwesenheit"]) for row in answers}[a.name] == ("Bahn", "anwesend")
    (listing,) = [row for row in export.manifest if row["Datei"] == "teilnehmerliste.pdf"]
    assert listing["Anzahl"] == "1" and export.files["teilnehmerliste.pdf"].startswith(b"%PDF")


def test_reader_sees_no_export_link(client, make_user, published):
    event = published(1)
    make_user("admin", "admin@ministerium.example")
    client.login(make_user("lesen").email)
    assert "/akten/veranstaltung/" not in client.get(f"/veranstaltungen/{event.id}").get_data(as_text=True)
    assert client.get(f"/akten/veranstaltung/{event.id}.zip").status_code == 403


def test_unfinished_mailing_is_refused_with_a_german_message(staff_client):
    three_contacts()
    mailing = mail_circular("rundschreiben", list_name="Drei Städte", fmt="docx", subject="Zwischenstand", start=False)
    db.session.commit()
    page = staff_client.get(f"/postausgang/{mailing.id}").get_data(as_text=True)
    assert "/akten/aussendung/" not in page  # a draft: nothing to put on file
    start_mailing(mailing)
    db.session.commit()
    page = staff_client.get(f"/postausgang/{mailing.id}").get_data(as_text=True)
    assert f"/akten/aussendung/{mailing.id}.zip?zwischenstand=1" in page and "Akten-Export als Zwischenstand" in page
    response = staff_client.get(f"/akten/aussendung/{mailing.id}.zip")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/postausgang/{mailing.id}")
    assert "noch nicht abgeschlossen" in staff_client.get(response.headers["Location"]).get_data(as_text=True)


def test_vorgang_page_offers_the_export(staff_client):
    import io

    from ki_post.letters.services import ensure_shipped_templates, produce, template_by_name

    contacts = three_contacts()
    ensure_shipped_templates()
    production = produce(template_by_name("rundschreiben").latest, contacts, {"betreff": "Akte"}, "zip", io.BytesIO())
    db.session.commit()
    page = staff_client.get(f"/rundschreiben/archiv/{production.run.id}").get_data(as_text=True)
    assert f'href="/akten/vorgang/{production.run.id}.zip"' in page
