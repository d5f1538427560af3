"""Calendar replies uploaded on the calendar-replies page: one road with ``mailbox ingest``, a result per file."""
from __future__ import annotations

import io
from email import message_from_bytes, policy

from sqlalchemy import func, select

from ki_post.auth.models import AuditEntry
from ki_post.events.models import CalendarReply
from ki_post.events.replies import calendar_parts
from ki_post.extensions import db
from tests.events.test_replies import _setup, invitation, raw

URL = "/veranstaltungen/kalenderantworten"
UPLOAD = URL + "/hochladen"
MAX = "max.mueller@stadt-beispiel.example"
ERIKA = "erika.beispiel@kreis-beispiel.example"
HANS = "hans.tentativ@stadt-zwei.example"


def bare_ics(name: str) -> bytes:
    """The calendar part of a fixture mail, as a calendar program saves it to a file."""
    return calendar_parts(message_from_bytes(raw(name), policy=policy.default))[0]


def upload(client, files):
    return client.submit(UPLOAD, {"dateien": [(io.BytesIO(data), name) for name, data in files]}, form_url=URL,
                         content_type="multipart/form-data")


def results(page: str) -> str:
    start = page.index("Ergebnis des Hochladens")
    return page[start:page.index("</section>", start)]


def test_several_files_with_a_broken_one_each_get_a_result(staff_client, published, make_contacts):
    event = _setup(published, make_contacts)
    response = upload(staff_client, [
        ("max.eml", raw("exchange_base64.eml")),
        ("kaputt.ics", b"BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nATTENDEE;PARTSTAT=ACC"),
        ("erika.ics", bare_ics("google.eml")),
        ("outlook.msg", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100),
        ("notiz.txt", b"Bitte zurueckrufen"),
        ("leer.eml", b""),
        ("kein-kalender.eml", raw("not_a_reply.eml")),
    ])
    assert response.status_code == 200
    page = results(response.get_data(as_text=True))
    # Per file, in the order chosen: what it was and what changed.
    assert page.index("max.eml") < page.index("kaputt.ics") < page.index("erika.ics") < page.index("outlook.msg")
    assert f"{MAX} (ACCEPTED): übernommen" in page
    assert f"{ERIKA} (ACCEPTED): übernommen" in page
    assert "<strong>kaputt.ics</strong>: <span class=\"state-bad\">nicht übernommen</span> weder Kalenderantwort" in page
    assert "Outlook-Dateien (.msg) kann KI-Post nicht lesen" in page
    assert "<strong>notiz.txt</strong>: <span class=\"state-bad\">nicht übernommen</span> Keine .eml- oder .ics-Datei" in page
    assert "Die Datei ist leer" in page
    assert "4 Mails gelesen, 2 übernommen, 2 nicht verarbeitet." in page
    # The good ones are applied and committed, with their audit entries.
    db.session.expire_all()
    assert invitation(event, MAX).state == "zugesagt" and invitation(event, ERIKA).state == "zugesagt"
    assert invitation(event, HANS).state == "offen"
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "kalenderantwort.uebernommen")) == 2

    # The same files again: recognised, nothing new.
    again = results(upload(staff_client, [("max.eml", raw("exchange_base64.eml"))]).get_data(as_text=True))
    assert f"{MAX}: bereits verarbeitet" in again
    assert db.session.scalar(select(func.count(CalendarReply.id))) == 2


def test_an_unknown_attendee_lands_in_the_list_for_people(staff_client, published, make_contacts):
    _setup(published, make_contacts)
    page = upload(staff_client, [("fremd.eml", raw("unknown_attendee.eml"))]).get_data(as_text=True)
    assert "unbekannt@irgendwo.example (ACCEPTED): zur Prüfung" in results(page)
    table = page[page.index("<caption>Offene Kalenderantworten"):]
    assert "unbekannt@irgendwo.example" in table  # the table below shows it at once


def test_uploads_are_bounded_before_parsing(staff_client, published, make_contacts, app):
    event = _setup(published, make_contacts)
    app.config.update(REPLY_UPLOAD_MAX_FILES=2, REPLY_UPLOAD_MAX_BYTES=4096)
    page = upload(staff_client, [("a.eml", raw("exchange_base64.eml"))] * 3).get_data(as_text=True)
    assert "Höchstens 2 Dateien auf einmal" in page and 'class="error-summary"' in page
    assert db.session.scalar(select(func.count(CalendarReply.id))) == 0
    big = raw("exchange_base64.eml") + b"\r\n" + b"x" * 5000
    page = results(upload(staff_client, [("gross.eml", big), ("erika.ics", bare_ics("google.eml"))]).get_data(as_text=True))
    assert "<strong>gross.eml</strong>: <span class=\"state-bad\">nicht übernommen</span> Größer als 4 KB" in page
    db.session.expire_all()
    assert invitation(event, MAX).state == "offen" and invitation(event, ERIKA).state == "zugesagt"
    assert "Bitte mindestens eine" in upload(staff_client, []).get_data(as_text=True)


def test_only_staff_may_upload_and_readers_see_no_form(client, make_user, published, make_contacts):
    _setup(published, make_contacts)
    make_user("admin")
    client.login(make_user("lesen").email)
    page = client.get(URL).get_data(as_text=True)
    assert "Dateien einlesen" not in page and 'type="file"' not in page
    token = client.csrf_token("/")
    response = client.post(UPLOAD, data={"csrf_token": token, "dateien": (io.BytesIO(raw("exchange_base64.eml")), "a.eml")},
                           content_type="multipart/form-data")
    assert response.status_code == 403
    assert db.session.scalar(select(func.count(CalendarReply.id))) == 0
