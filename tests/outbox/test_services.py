"""Enqueue API, mail templates and MIME (standards.md §2.3 MIME-01…08)."""
from __future__ import annotations

import email
from email import policy

import pytest
from sqlalchemy import func, select

from ki_post.blobs import Blob
from ki_post.errors import ValidationError
from ki_post.extensions import db
from ki_post.outbox.models import OutboxAttachment, OutboxMessage
from ki_post.outbox.services import (
    Attachment,
    CalendarPart,
    build_mime,
    create_mailing,
    enqueue,
    render_mail,
    start_mailing,
)

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//KI-Post//DE\r\nMETHOD:REQUEST\r\n"
    "BEGIN:VEVENT\r\nUID:festakt-2017@ki-post\r\nDTSTAMP:20161228T100000Z\r\n"
    "DTSTART:20170208T100000Z\r\nSUMMARY:Festakt Kommunale Integrationszentren\r\n"
    "ORGANIZER:mailto:veranstaltungen@ministerium.example\r\n"
    "ATTENDEE;RSVP=TRUE:mailto:erika.muster@kreis.example\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
).encode()
DOCX = b"PK\x03\x04" + b"x" * 40_000


def parse(data: bytes):
    return email.message_from_bytes(data, policy=policy.default)


def make_message(mailing=None, **kw):
    mailing = mailing or create_mailing("einladung", "Einladung Festakt")
    args = dict(to_email="erika.muster@kreis.example", to_name="Erika Müster", subject="Einladung: Festakt am 8. Februar 2017",
                text="Sehr geehrte Frau Müster,\nwir laden Sie ein.\n", html="<p>Sehr geehrte Frau Müster,</p>")
    args.update(kw)
    return enqueue(mailing, **args)


def test_mime_calendar_invitation_structure(app):
    """MIME-01…05, MIME-07: calendar part last in multipart/alternative, base64, no disposition, bytes equal."""
    message = make_message(attachments=[Attachment("rundschreiben.docx",
                                                   "application/vnd.openxmlformats-officedocument.wordprocessingml.document", DOCX)],
                           calendar=CalendarPart("REQUEST", ICS))
    db.session.commit()
    data = build_mime(message)
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    mime = parse(data)
    assert mime.get_content_type() == "multipart/mixed"
    alternative, attachment = mime.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    kinds = [part.get_content_type() for part in alternative.get_payload()]
    assert kinds == ["text/plain", "text/html", "text/calendar"]
    calendar = alternative.get_payload()[-1]
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_param("charset").upper() == "UTF-8"
    assert calendar["Content-Transfer-Encoding"] == "base64"
    assert calendar["Content-Disposition"] is None and calendar["Content-ID"] is None
    assert calendar.get_payload(decode=True) == ICS
    assert sum(1 for part in mime.walk() if part.get_content_type() == "text/calendar") == 1
    assert attachment.get_filename() == "rundschreiben.docx"
    assert attachment.get_payload(decode=True) == DOCX
    # MIME-07 / DSG-05: exactly one recipient, no Cc/Bcc.
    assert mime["To"].addresses[0].addr_spec == "erika.muster@kreis.example"
    assert len(mime["To"].addresses) == 1 and mime["Cc"] is None and mime["Bcc"] is None
    assert mime["Message-ID"] == message.message_id and mime["Date"]
    assert mime["From"].addresses[0].addr_spec == "ki-post@localhost"


def test_subject_and_names_with_umlauts_are_rfc2047(app):
    app.config["MAIL_DEFAULT_SENDER"] = "Ministerium für Kinder – Veranstaltungen <veranstaltungen@ministerium.example>"
    message = make_message(subject="Einladung: Überblick für Kreise")
    raw = build_mime(message)
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    assert header_block.isascii(), "non-ASCII header bytes must be RFC 2047 encoded"
    mime = parse(raw)
    assert str(mime["Subject"]) == "Einladung: Überblick für Kreise"
    assert mime["To"].addresses[0].display_name == "Erika Müster"
    assert mime["From"].addresses[0].display_name == "Ministerium für Kinder – Veranstaltungen"


def test_text_only_with_calendar_still_alternative(app):
    message = make_message(html=None, calendar=CalendarPart("CANCEL", ICS.replace(b"METHOD:REQUEST", b"METHOD:CANCEL")))
    mime = parse(build_mime(message))
    assert [p.get_content_type() for p in mime.iter_parts()] == ["text/plain", "text/calendar"]
    assert mime.get_content_type() == "multipart/alternative"
    assert list(mime.iter_parts())[-1].get_param("method") == "CANCEL"


def test_calendar_method_must_match_ics(app):
    """MIME-02: the part's method equals METHOD inside the file."""
    with pytest.raises(ValidationError, match="METHOD"):
        make_message(calendar=CalendarPart("CANCEL", ICS))
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


@pytest.mark.parametrize("field,value", [
    ("subject", "Hallo\r\nBcc: opfer@example.org"),
    ("subject", "Hallo\nBcc: opfer@example.org"),
    ("to_name", "Erika\rBcc: opfer@example.org"),
    ("to_email", "erika@kreis.example\r\nBcc: opfer@example.org"),
    ("to_email", "erika@kreis.example, opfer@example.org"),
    ("to_email", "Erika <erika@kreis.example>"),
    ("to_email", "kein-at-zeichen"),
    ("subject", "Betreff mit \x00 Nullbyte"),
])
def test_header_injection_is_rejected(app, field, value):
    mailing = create_mailing("rundschreiben", "Rundschreiben")
    db.session.commit()
    with pytest.raises(ValidationError) as info:
        make_message(mailing, **{field: value})
    assert info.value.field == field
    assert any(word in str(info.value) for word in ("Zeilenumbruch", "E-Mail-Adresse"))
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_configured_sender_with_newline_is_rejected(app):
    app.config["MAIL_REPLY_TO"] = "a@b.example\r\nBcc: x@y.example"
    with pytest.raises(ValidationError, match="Zeilenumbruch"):
        make_message()


def test_identical_attachments_stored_once(app):
    mailing = create_mailing("rundschreiben", "Rundschreiben 1/2017")
    for number in range(5):
        make_message(mailing, to_email=f"person{number}@kreis.example",
                     attachments=[Attachment("rundschreiben.pdf", "application/pdf", b"%PDF-1.7 gleich" * 100)])
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Blob)) == 1
    assert db.session.scalar(select(func.count()).select_from(OutboxAttachment)) == 5


def test_render_at_enqueue_message_ids_unique_and_fixed(app):
    mailing = create_mailing("rundschreiben", "Rundschreiben")
    first = make_message(mailing, to_email="a@kreis.example")
    second = make_message(mailing, to_email="b@kreis.example")
    db.session.commit()
    assert first.message_id != second.message_id
    # Building twice gives the same bytes: the preview is what will be sent.
    assert build_mime(first) == build_mime(first)


def test_start_mailing_needs_messages_and_draft(app):
    mailing = create_mailing("rundschreiben", "Leer")
    with pytest.raises(ValidationError, match="keine Nachrichten"):
        start_mailing(mailing)
    make_message(mailing)
    start_mailing(mailing)
    assert mailing.state == "aktiv"
    with pytest.raises(ValidationError, match="Entwurf"):
        start_mailing(mailing)


def test_create_mailing_rejects_unknown_kind_and_empty_title(app):
    with pytest.raises(ValidationError, match="Unbekannte Art"):
        create_mailing("spam", "x")
    with pytest.raises(ValidationError, match="Titel"):
        create_mailing("rundschreiben", "  ")


def test_render_generic_mail_escapes_html_and_keeps_text(app):
    evil = "<script>alert(1)</script> {{ 7*7 }}"
    mail = render_mail("allgemein", {
        "betreff": "Hinweis zur Förderung", "anrede": "Sehr geehrte Frau Müster,",
        "absaetze": [evil, "Zweiter Absatz."], "absender": "Ihr Referat 512",
        "links": [{"text": "Antwort geben", "url": "https://ki-post.example/a?x=1&y=2"}],
    })
    assert mail.subject == "Hinweis zur Förderung"
    assert evil in mail.text  # plain text carries the data as is, never evaluated
    assert "49" not in mail.text and "49" not in mail.html
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html
    assert '<html lang="de">' in mail.html and "<h1" in mail.html
    assert ">Antwort geben</a>" in mail.html and "Antwort geben: https://ki-post.example/a?x=1&y=2" in mail.text
    assert "Zweiter Absatz." in mail.text and "Zweiter Absatz." in mail.html


def test_render_testversand(app):
    mail = render_mail("testversand", {"name": "Max", "app_name": "KI-Post", "zeitpunkt": "24. November 2026, 18:00 Uhr"})
    assert mail.subject == "Testnachricht von KI-Post"
    assert "Guten Tag Max" in mail.text and "Guten Tag Max" in mail.html


def test_render_subject_with_newline_from_data_is_rejected_at_enqueue(app):
    mail = render_mail("allgemein", {"betreff": "Hallo\r\nBcc: x@y.example", "anrede": "a", "absaetze": [], "absender": "b"})
    with pytest.raises(ValidationError, match="Zeilenumbruch"):
        make_message(subject=mail.subject)


def test_render_unknown_and_broken_templates(app, tmp_path, monkeypatch):
    with pytest.raises(ValidationError, match="fehlt"):
        render_mail("gibtsnicht", {})
    with pytest.raises(ValidationError, match="Unbekannte Mail-Vorlage"):
        render_mail("../../etc/passwd", {})
    with pytest.raises(ValidationError, match="unbekanntes Feld"):
        render_mail("testversand", {})


def test_sandbox_blocks_attribute_access(app, tmp_path, monkeypatch):
    from ki_post.outbox import services

    (tmp_path / "boese.txt").write_text("{% set subject %}x{% endset %}{{ ''.__class__.__mro__[1].__subclasses__() }}")
    monkeypatch.setattr(services, "MAIL_TEMPLATE_DIR", tmp_path)
    with pytest.raises(ValidationError, match="unerlaubten Zugriff"):
        render_mail("boese", {})


def test_mime_round_trip_of_awkward_content(app):
    """The hand-built MIME reads back exactly with an independent parser (email, policy.default)."""
    subject = "Einladung: Überörtliche Fachtagung der Kommunalen Integrationszentren – Gesundheit, Bildung, Arbeit " * 2
    text = ("Zeile mit Umlauten äöüß und Euro €\n.Zeile beginnt mit Punkt\n" + "x" * 300 + "\n"
            "Leerzeichen am Ende   \nTab\tmitten\n=3D ist kein Escape\n")
    html = "<p>Grüße &amp; mehr</p>\n" + "<p>" + "ä" * 200 + "</p>\n"
    message = make_message(subject=subject.strip(), text=text, html=html, to_name='Dr. "Erika" Müster, Kreis Höxter',
                           attachments=[Attachment("Rundschreiben Förderung „2027“.pdf", "application/pdf", b"%PDF\x00\xff" * 50),
                                        Attachment('plain "name".txt', "text/plain", b"abc")])
    raw = build_mime(message)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    mime = parse(raw)
    assert not mime.defects
    assert str(mime["Subject"]) == subject.strip()
    assert mime["To"].addresses[0].display_name == 'Dr. "Erika" Müster, Kreis Höxter'
    assert mime["To"].addresses[0].addr_spec == "erika.muster@kreis.example"
    # the wire form has CRLF line ends; the parser keeps them
    assert mime.get_body(("plain",)).get_content().replace("\r\n", "\n") == text
    assert mime.get_body(("html",)).get_content().replace("\r\n", "\n") == html
    first, second = mime.iter_attachments()
    assert first.get_filename() == "Rundschreiben Förderung „2027“.pdf"
    assert first.get_payload(decode=True) == b"%PDF\x00\xff" * 50
    assert second.get_filename() == 'plain "name".txt' and second.get_payload(decode=True) == b"abc"


def test_idn_domain_is_encoded_and_umlaut_local_part_kept(app):
    message = make_message(to_email="info@städteregion-aachen.example")
    assert message.to_email == "info@" + "städteregion-aachen".encode("idna").decode() + ".example"
    # RFC 6531: valid, sent with SMTPUTF8 (tests/outbox/test_international.py).
    assert make_message(to_email="jürgen@kreis.example").to_email == "jürgen@kreis.example"
